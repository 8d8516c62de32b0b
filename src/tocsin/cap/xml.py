"""Hardened XML parsing and XSD validation for CAP 1.2 (and read-only CAP 1.1) documents.

CAP messages arrive from outside (other alerting systems, integrators), so
they are parsed with a libxml2 configuration that cannot be turned against
us: no DTD loading, no entity substitution, no network access, no huge-tree
mode, and any ``<!DOCTYPE`` is refused outright (it is never needed in CAP
and is the carrier of billion-laughs and external-entity (XXE) attacks).
Input is limited to :data:`DEFAULT_MAX_BYTES` (1 MiB) and libxml2's default
nesting limit (256 levels) stays on. The character encoding is the one the XML
declaration names (XML 1.0 §4.3.3; UTF-8 when none, UTF-16 by its byte-order
mark). Validation uses the official OASIS CAP 1.2 schema shipped in ``data/``.
"""

from __future__ import annotations

import os
import re
import threading
from functools import cache
from importlib.resources import files

from lxml import etree

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
"""The CAP 1.2 XML namespace (CAP 1.2 §3.3.1)."""

CAP11_NS = "urn:oasis:names:tc:emergency:cap:1.1"
"""The CAP 1.1 XML namespace: such documents are read (imported, validated), never written."""

CAP_VERSIONS = {CAP_NS: "1.2", CAP11_NS: "1.1"}
"""XML namespace -> CAP version, for the versions Tocsin can read."""

DEFAULT_MAX_BYTES = 1024 * 1024
"""Default size limit for one document: 1 MiB (bytes)."""

# Cheap pre-scan before libxml2 sees the bytes: a DOCTYPE or ENTITY
# declaration is refused without being parsed at all. Documents in UTF-16
# slip past this byte scan, so the parsed tree's docinfo is checked as well.
_DTD_MARKERS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


_SCHEMA_LOCK = threading.Lock()


def schema_lock() -> threading.Lock:
    """The lock to hold while validating with :func:`cap_schema` and reading its error log.

    The compiled schema keeps its last error log on the shared instance, so
    validating and reading the log must not interleave between threads.
    """
    return _SCHEMA_LOCK


class CapParseError(ValueError):
    """Raised when a document is too large, not well-formed, hostile or not CAP."""


def _size_label(size: int) -> str:
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


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


def read_cap_file(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a CAP file, never reading more than ``max_bytes`` + 1 of them.

    Raises:
        OSError: the file cannot be opened or read (missing, a directory, no access).
        CapParseError: the file is larger than ``max_bytes`` (1 MiB by default);
            the message gives its size and the limit.
    """
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            size = os.fstat(f.fileno()).st_size
            raise CapParseError(
                f"document: {max(size, len(data))} bytes exceeds the limit of {max_bytes} "
                f"bytes ({_size_label(max_bytes)})"
            )
    return data


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
        raise CapParseError(
            f"document: {len(raw)} bytes exceeds the limit of {max_bytes} bytes "
            f"({_size_label(max_bytes)})"
        )
    if _DTD_MARKERS.search(raw):
        raise CapParseError(
            "document: DOCTYPE/ENTITY declarations are not allowed (CAP needs no DTD)"
        )
    try:
        root = etree.fromstring(raw, parser=_hardened_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else "?"
        if "amplification" in exc.msg or "entity reference loop" in exc.msg:
            # A DOCTYPE the byte scan could not see (UTF-16): libxml2 stops the expansion.
            raise CapParseError(
                f"document: refused at line {line}: entity expansion is not allowed "
                f"(billion laughs / XXE; CAP needs no DOCTYPE): {exc.msg}"
            ) from exc
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
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    accept_cap11: bool = False,
) -> etree._Element:
    """Parse an untrusted CAP document and return its ``<alert>`` root element.

    Only well-formedness and the root element are checked here; call
    :func:`validate_xsd` for schema validation (or ``tocsin.cap.validate`` for
    the full CAP 1.2 rules).

    Args:
        data: raw document bytes.
        max_bytes: size limit in bytes (default 1 MiB).
        accept_cap11: also accept a CAP 1.1 ``alert`` (read-only use: validation
            and import); :func:`cap_version` tells which one was read.

    Returns:
        The ``{urn:oasis:names:tc:emergency:cap:1.2}alert`` element (or the
        CAP 1.1 one when ``accept_cap11``).

    Raises:
        CapParseError: see :func:`parse_xml`; also when the root element is not a
            CAP 1.2 ``alert`` (CAP 1.2 §3.2.1), or not a CAP 1.1 one either when
            ``accept_cap11``.
    """
    root = parse_xml(data, max_bytes=max_bytes)
    accepted = (CAP_NS, CAP11_NS) if accept_cap11 else (CAP_NS,)
    if root.tag not in {f"{{{ns}}}alert" for ns in accepted}:
        expected = " or ".join(repr(f"{{{ns}}}alert") for ns in accepted)
        raise CapParseError(
            f"alert: root element is {root.tag!r}, expected {expected} (CAP 1.2 §3.2.1)"
        )
    return root


def cap_version(root: etree._Element) -> str:
    """``"1.2"`` or ``"1.1"``: the CAP version of a parsed ``alert`` element.

    Raises:
        CapParseError: the element is not in a CAP 1.2 or 1.1 namespace.
    """
    namespace = etree.QName(root).namespace
    if namespace not in CAP_VERSIONS:
        raise CapParseError(f"alert: namespace {namespace!r} is not CAP 1.2 or CAP 1.1")
    return CAP_VERSIONS[namespace]


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
