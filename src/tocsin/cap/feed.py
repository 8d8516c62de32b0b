"""Atom feeds of CAP alerts for alert maps and display panels (RFC 4287).

Each entry points at its CAP 1.2 document with
``<link rel="alternate" type="application/cap+xml">``, the convention used by
CAP aggregators (e.g. the WMO alert hub and NWS feeds). Long feeds are split
into pages linked with ``first`` / ``previous`` / ``next`` (RFC 5005 §3).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from tocsin.cap.build import CapBuildError, brussels_time, xml_text_problem

ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE = "application/cap+xml"
ATOM_MEDIA_TYPE = "application/atom+xml"
# RFC 5005 §3 paging relations; "prev" is the IANA-registered synonym of "previous".
PAGING_RELATIONS = ("first", "previous", "prev", "next", "last")
MSG_TYPE_SCHEME = "urn:oasis:names:tc:emergency:cap:1.2#msgType"

# RFC 3987 absolute IRI: a scheme, a colon, no whitespace.
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"]+$")


class FeedBuildError(ValueError):
    """Raised when a feed field cannot be written as valid Atom; names the field."""


@dataclass(frozen=True)
class FeedEntry:
    """One alert in an Atom feed.

    Attributes:
        identifier: the CAP identifier; used as ``atom:id`` when it is already
            an absolute IRI (e.g. ``urn:oid:...``), otherwise ``cap_url`` is.
        title: usually the CAP headline.
        updated: aware datetime of the last change (CAP ``sent``).
        summary: plain-text summary (usually the CAP description).
        cap_url: absolute URL of the CAP 1.2 document.
        sender: the CAP sender, written as the entry's author.
        msg_type: the CAP ``msgType`` (``Alert``, ``Update``, ``Cancel``), written
            as an ``atom:category`` so panels can act without fetching the
            document; empty = none.
    """

    identifier: str
    title: str
    updated: datetime
    summary: str
    cap_url: str
    sender: str
    msg_type: str = ""


def _text(name: str, value: str, *, required: bool = True) -> str:
    problem = xml_text_problem(name, value, required=required)
    if problem is not None:
        raise FeedBuildError(problem)
    return value


def _iri(name: str, value: str) -> str:
    _text(name, value)
    if not _ABSOLUTE_IRI.match(value):
        raise FeedBuildError(f"{name}: {value!r} is not an absolute IRI (RFC 4287 §4.2.6)")
    return value


def _time(name: str, value: datetime) -> str:
    try:
        return brussels_time(value)
    except CapBuildError as exc:
        raise FeedBuildError(f"{name}: {str(exc).removeprefix('time: ')}") from exc


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def build_atom_feed(
    feed_id: str,
    title: str,
    self_url: str,
    updated: datetime,
    entries: Sequence[FeedEntry],
    links: Mapping[str, str] | None = None,
) -> bytes:
    """Build an Atom 1.0 feed listing CAP alerts (RFC 4287).

    Args:
        feed_id: permanent absolute IRI identifying the feed (``atom:id``); the
            same for every page of a paged feed (RFC 5005 §3).
        title: feed title.
        self_url: absolute URL where this feed is served (``rel="self"``).
        updated: aware datetime of the most recent change.
        entries: alerts, written in the given order (newest first is usual).
        links: paging links, relation -> absolute URL; relations are those of
            RFC 5005 §3 (``first``, ``previous``/``prev``, ``next``, ``last``).

    Returns:
        UTF-8 bytes with an XML declaration; times are RFC 3339 in
        Europe/Brussels local time without fractional seconds.

    Raises:
        FeedBuildError: a missing or empty required field, a relative IRI, a
            naive datetime, or a character XML cannot carry (names the field).
    """
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    _sub(root, "id", _iri("feed_id", feed_id))
    _sub(root, "title", _text("title", title))
    _sub(root, "updated", _time("updated", updated))
    _sub(root, "link", rel="self", type=ATOM_MEDIA_TYPE, href=_iri("self_url", self_url))
    for rel, href in (links or {}).items():
        if rel not in PAGING_RELATIONS:
            raise FeedBuildError(f"links: {rel!r} is not one of {', '.join(PAGING_RELATIONS)}")
        _sub(root, "link", rel=rel, type=ATOM_MEDIA_TYPE, href=_iri(f"links.{rel}", href))
    for i, entry in enumerate(entries):
        name = f"entries[{i}]"
        if not isinstance(entry, FeedEntry):
            raise FeedBuildError(f"{name}: expected FeedEntry, got {type(entry).__name__}")
        cap_url = _iri(f"{name}.cap_url", entry.cap_url)
        identifier = _text(f"{name}.identifier", entry.identifier)
        element = _sub(root, "entry")
        _sub(element, "id", identifier if _ABSOLUTE_IRI.match(identifier) else cap_url)
        _sub(element, "title", _text(f"{name}.title", entry.title))
        _sub(element, "updated", _time(f"{name}.updated", entry.updated))
        # RFC 4287 §4.1.1: every entry needs an author when the feed has none.
        author = _sub(element, "author")
        _sub(author, "name", _text(f"{name}.sender", entry.sender))
        _sub(
            element, "summary", _text(f"{name}.summary", entry.summary, required=False), type="text"
        )
        if entry.msg_type:
            _sub(element, "category", term=_text(f"{name}.msg_type", entry.msg_type),
                 scheme=MSG_TYPE_SCHEME)
        _sub(element, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=cap_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
