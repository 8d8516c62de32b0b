"""Hardened XML parsing and XSD validation for CAP 1.2 documents.

CAP messages arrive from outside (other alerting systems, integrators), so
they are parsed with a libxml2 configuration that cannot be turned against
us: no DTD loading, no entity substitution, no network access, no huge-tree
mode, and any ``<!DOCTYPE`` is refused outright (it is never needed in CAP
and is the carrier of billion-laughs and external-entity (XXE) attacks).
Validation uses the official OASIS CAP 1.2 schema shipped in ``data/``.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from importlib.resources import files

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
"""The CAP 1.2 XML namespace (CAP 1.2 §3.3.1)."""

DEFAULT_MAX_BYTES = 1024 * 1024
"""Default size limit for one document: 1 MiB (bytes)."""

# Cheap pre-scan before libxml2 sees the bytes: a DOCTYPE or ENTITY
# declaration is refused without being parsed at all. Documents in UTF-16
# slip past this byte scan, so the parsed tree's docinfo is checked as well.
_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


_SCHEMA_LOCK = threading.Lock()


class CapParseError(ValueError):
    """Raised when a document is too large, not well-formed, hostile or not CAP."""


def _hardened_parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers are not safe to share between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def _as_bytes(data: bytes | bytearray | memoryview, field: str) -> bytes:
    if isinstance(data, str):
        raise CapParseError(f"{field}: expected bytes, got str (encode the document first)")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CapParseError(f"{field}: expected bytes, got {type(data).__name__}")
    return bytes(data)


def parse_xml(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> etree._Element:
    """Parse untrusted XML bytes with the hardened parser and return the root element.

    Args:
        data: the raw document (any encoding declared in its XML declaration).
        max_bytes: size limit in bytes (default 1 MiB); larger input is refused
            before parsing.

    Returns:
        The root ``lxml.etree._Element``.

    Raises:
        CapParseError: empty or too large input, a DOCTYPE / ENTITY declaration
            (billion laughs, XXE), or a document that is not well-formed (the
            message carries libxml2's line number).
    """
    raw = _as_bytes(data, "document")
    if not raw.strip():
        raise CapParseError("document: empty input")
    if len(raw) > max_bytes:
        raise CapParseError(f"document: {len(raw)} bytes exceeds the limit of {max_bytes} bytes")
    if _DTD_MARKERS.search(raw):
        raise CapParseError(
            "document: DOCTYPE/ENTITY declarations are not allowed (CAP needs no DTD)"
        )
    try:
        root = etree.fromstring(raw, parser=_hardened_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else "?"
        raise CapParseError(f"document: not well-formed XML at line {line}: {exc.msg}") from exc
    if root is None:
        raise CapParseError("document: no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise CapParseError(
            "document: DOCTYPE/ENTITY declarations are not allowed (CAP needs no DTD)"
        )
    return root


def parse_cap(
    data: bytes | bytearray | memoryview, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> etree._Element:
    """Parse an untrusted CAP 1.2 document and return its ``<alert>`` root element.

    Only well-formedness and the root element are checked here; call
    :func:`validate_xsd` for schema validation.

    Args:
        data: raw document bytes.
        max_bytes: size limit in bytes (default 1 MiB).

    Returns:
        The ``{urn:oasis:names:tc:emergency:cap:1.2}alert`` element.

    Raises:
        CapParseError: see :func:`parse_xml`; also when the root element is not a
            CAP 1.2 ``alert`` (CAP 1.2 §3.2.1).
    """
    root = parse_xml(data, max_bytes=max_bytes)
    expected = f"{{{CAP_NS}}}alert"
    if root.tag != expected:
        raise CapParseError(
            f"alert: root element is {root.tag!r}, expected {expected!r} (CAP 1.2 §3.2.1)"
        )
    return root


@cache
def cap_schema() -> etree.XMLSchema:
    """Return the OASIS CAP 1.2 XSD, loaded once from the package data.

    Raises:
        FileNotFoundError: when ``tocsin/cap/data/CAP-v1.2.xsd`` is missing from
            the installed package.
    """
    xsd = files("tocsin.cap").joinpath("data", "CAP-v1.2.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(xsd, parser=_hardened_parser()))


def validate_xsd(
    data: bytes | bytearray | memoryview | etree._Element,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[str]:
    """Validate a CAP document against the OASIS CAP 1.2 XML Schema (CAP 1.2 §3.4).

    Args:
        data: raw document bytes (parsed with the hardened parser) or an
            element already obtained from :func:`parse_cap`.
        max_bytes: size limit in bytes for raw input (default 1 MiB).

    Returns:
        A list of human-readable errors, each starting with ``line N:``; empty
        when the document is valid. Well-formedness and hardening failures are
        reported in the same list rather than raised, so callers have one
        contract: an empty list means valid.
    """
    if isinstance(data, etree._Element):
        root = data
    else:
        try:
            root = parse_xml(data, max_bytes=max_bytes)
        except CapParseError as exc:
            match = re.search(r"at line (\d+)", str(exc))
            return [f"line {match.group(1) if match else 1}: {exc}"]
    schema = cap_schema()
    # The schema keeps its last error log on the shared instance, so validating
    # and reading the log must not interleave between threads.
    with _SCHEMA_LOCK:
        if schema.validate(root):
            return []
        return [f"line {err.line}: {err.message}" for err in schema.error_log]
