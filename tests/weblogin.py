"""Logging in to the web platform from tests, the way a browser does (form + CSRF token)."""

from __future__ import annotations

import re

import httpx
from fastapi.testclient import TestClient


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the form"
    return m.group(1)


def log_in(client: TestClient, username: str, password: str,
           environment: str = "simulation") -> httpx.Response:
    """Post the login form; the response is 303 to ``/`` on success."""
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password,
                                       "environment": environment, "csrf_token": token},
                       follow_redirects=False)


def session_csrf(client: TestClient, username: str, password: str,
                 environment: str = "simulation", page: str = "/") -> str:
    """Log in and return the session's CSRF token (read from ``page``)."""
    r = log_in(client, username, password, environment)
    assert r.status_code == 303, r.text
    return csrf_of(client.get(page).text)
