"""Tocsin: open-source public-warning platform."""
__version__ = "0.1.0"
