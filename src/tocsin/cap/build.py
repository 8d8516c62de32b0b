"""Build CAP 1.2 alert messages (OASIS Common Alerting Protocol, version 1.2).

Pure functions over plain dataclasses: no database, no I/O. The output is
checked against the official OASIS XSD before it is returned, so a document
leaving :func:`build_alert` is always schema-valid.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree

from tocsin.cap.xml import CAP_NS, validate_xsd

BRUSSELS = ZoneInfo("Europe/Brussels")

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
RESPONSE_TYPES = (
    "Shelter",
    "Evacuate",
    "Prepare",
    "Execute",
    "Avoid",
    "Monitor",
    "Assess",
    "AllClear",
    "None",
)
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# CAP 1.2 §3.2.1: identifier and sender "MUST NOT include spaces, commas or
# restricted characters (< and &)"; any whitespace is refused, not just U+0020.
_FORBIDDEN_ID_CHARS = re.compile(r"[\s,<&]")
# CAP 1.2 §3.3.2 dateTime: no fractional seconds, an explicit offset, never "Z".
_CAP_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[-+]\d{2}:\d{2}$")
# xs:language (RFC 3066 shape), as the XSD checks it.
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
# Characters XML 1.0 cannot carry at all (§2.2 Char production).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class CapBuildError(ValueError):
    """Raised when an alert cannot be expressed as valid CAP 1.2; names the field."""


@dataclass(frozen=True)
class CapCircle:
    """A CAP circle: centre in WGS84 degrees, radius in kilometres (CAP 1.2 §3.2.4 circle)."""

    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class CapArea:
    """One CAP ``<area>`` (CAP 1.2 §3.2.4).

    Attributes:
        area_desc: human-readable description of the area (required).
        polygons: closed rings, each a list of ``(lat, lon)`` WGS84 degrees with
            at least 4 points and first == last; no holes (CAP has none).
        circles: circles; ``(lat, lon, radius_km)`` tuples are accepted too.
        geocodes: ``(valueName, value)`` pairs, e.g. ``("NIS", "23003")``.
        altitude, ceiling: feet above mean sea level (CAP 1.2 §3.2.4); ceiling
            needs altitude.
    """

    area_desc: str
    polygons: Sequence[Sequence[tuple[float, float]]] = ()
    circles: Sequence[CapCircle | tuple[float, float, float]] = ()
    geocodes: Sequence[tuple[str, str]] = ()
    altitude: float | None = None
    ceiling: float | None = None


@dataclass(frozen=True)
class CapInfo:
    """One CAP ``<info>`` block, one per language (CAP 1.2 §3.2.2).

    Attributes:
        language: RFC 3066 code such as ``"fr-BE"`` or ``"nl-BE"``.
        category: one category or several (``Geo``, ``Met``, ``Safety`` ...).
        event, urgency, severity, certainty: required CAP fields.
        effective, onset, expires: aware datetimes, written in Europe/Brussels time.
        web: absolute URI with more information.
        parameters, event_codes: ``(valueName, value)`` pairs.
    """

    language: str
    category: str | Sequence[str]
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    sender_name: str | None = None
    web: str | None = None
    contact: str | None = None
    response_types: Sequence[str] = ()
    audience: str | None = None
    event_codes: Sequence[tuple[str, str]] = ()
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    parameters: Sequence[tuple[str, str]] = ()
    areas: Sequence[CapArea] = ()


@dataclass(frozen=True)
class CapAlert:
    """One CAP ``<alert>`` message (CAP 1.2 §3.2.1).

    Attributes:
        identifier: unique per sender; no whitespace, ``,``, ``<`` or ``&``.
        sender: globally unique sender id (same character rules).
        sent: aware datetime of sending.
        status: ``Actual``, ``Exercise``, ``System``, ``Test`` or ``Draft``.
        msg_type: ``Alert``, ``Update``, ``Cancel``, ``Ack`` or ``Error``.
        scope: ``Public``, ``Restricted`` (needs ``restriction``) or ``Private``
            (needs ``addresses``).
        references: earlier messages as ``(sender, identifier, sent)``, ``sent`` an
            aware datetime or the CAP time text exactly as the earlier alert wrote it; required
            for ``Update``/``Cancel``/``Ack``/``Error`` by CAP 1.2 §3.2.1 usage.
        infos: one block per language.
        expires: default ``expires`` for every info that sets none.
    """

    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str = "Public"
    references: Sequence[tuple[str, str, datetime | str]] = ()
    infos: Sequence[CapInfo] = ()
    expires: datetime | None = None
    source: str | None = None
    restriction: str | None = None
    addresses: str | None = None
    codes: Sequence[str] = ()
    note: str | None = None
    incidents: Sequence[str] = ()


def brussels_time(dt: datetime) -> str:
    """Format an aware datetime as CAP time in Europe/Brussels local time.

    Shape: ``YYYY-MM-DDThh:mm:ss+hh:mm``: ``+01:00`` in winter, ``+02:00`` in
    summer, no fractional seconds and never ``Z`` (CAP 1.2 §3.3.2).
    Fractional seconds are truncated.

    Raises:
        CapBuildError: when ``dt`` is naive (its instant would be a guess).
    """
    if not isinstance(dt, datetime):
        raise CapBuildError(f"time: expected datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise CapBuildError(f"time: {dt.isoformat()} is naive; CAP needs an aware datetime")
    return dt.astimezone(BRUSSELS).replace(microsecond=0).isoformat()


def xml_text_problem(name: str, value: object, *, required: bool) -> str | None:
    """Why ``value`` cannot be the text of XML element ``name``, or None.

    Not a ``str``; empty when ``required``; or a character XML 1.0 §2.2 forbids
    (C0 controls other than tab, LF, CR; U+FFFE, U+FFFF). Shared by the CAP and
    Atom builders.
    """
    if not isinstance(value, str):
        return f"{name}: expected str, got {type(value).__name__}"
    if required and not value.strip():
        return f"{name}: required, got an empty string"
    bad = _XML_ILLEGAL.search(value)
    if bad:
        return f"{name}: character U+{ord(bad.group()):04X} cannot be written in XML 1.0"
    return None


def _text(name: str, value: str | None, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise CapBuildError(f"{name}: required")
        return None
    problem = xml_text_problem(name, value, required=required)
    if problem is not None:
        raise CapBuildError(problem)
    return value


def _token(name: str, value: str) -> str:
    text = _text(name, value, required=True)
    assert text is not None
    bad = _FORBIDDEN_ID_CHARS.search(text)
    if bad:
        raise CapBuildError(
            f"{name}: {text!r} contains {bad.group()!r}; spaces, commas, '<' and '&' "
            "are not allowed (CAP 1.2 §3.2.1)"
        )
    return text


def _enum(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise CapBuildError(f"{name}: {value!r} is not one of {', '.join(allowed)} (CAP 1.2)")
    return value


def _time(name: str, dt: datetime) -> str:
    try:
        return brussels_time(dt)
    except CapBuildError as exc:
        raise CapBuildError(f"{name}: {str(exc).removeprefix('time: ')}") from exc


def _number(value: float) -> str:
    # Six decimals is ~0.1 m; trailing zeros are dropped to keep polygons short.
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _coordinate(name: str, lat: float, lon: float) -> tuple[float, float]:
    try:
        flat, flon = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise CapBuildError(f"{name}: coordinates must be numbers, got {lat!r},{lon!r}") from exc
    if not (math.isfinite(flat) and math.isfinite(flon)):
        raise CapBuildError(f"{name}: coordinates must be finite, got {lat!r},{lon!r}")
    if not -90.0 <= flat <= 90.0:
        raise CapBuildError(f"{name}: latitude {flat} outside -90..90 (WGS84, CAP 1.2 §3.2.4)")
    if not -180.0 <= flon <= 180.0:
        raise CapBuildError(f"{name}: longitude {flon} outside -180..180 (WGS84, CAP 1.2 §3.2.4)")
    return flat, flon


def format_polygon(name: str, ring: Sequence[tuple[float, float]]) -> str:
    """Format one ring as CAP polygon text ``"lat,lon lat,lon ..."``.

    Args:
        name: field name used in error messages (e.g. ``info[0].area[1].polygon[0]``).
        ring: ``(lat, lon)`` pairs in WGS84 degrees.

    Raises:
        CapBuildError: fewer than 4 points, first point != last point, or
            coordinates out of range (CAP 1.2 §3.2.4 polygon).
    """
    points = [_coordinate(f"{name}[{i}]", *point) for i, point in enumerate(ring)]
    texts = [f"{_number(lat)},{_number(lon)}" for lat, lon in points]
    if len(texts) < 4:
        raise CapBuildError(
            f"{name}: {len(texts)} points; a CAP polygon needs at least 4 (CAP 1.2 §3.2.4)"
        )
    if texts[0] != texts[-1]:
        raise CapBuildError(
            f"{name}: not closed, first point {texts[0]} != last point {texts[-1]} (CAP 1.2 §3.2.4)"
        )
    return " ".join(texts)


def format_circle(name: str, circle: CapCircle | tuple[float, float, float]) -> str:
    """Format a circle as CAP circle text ``"lat,lon radius_km"`` (CAP 1.2 §3.2.4).

    Raises:
        CapBuildError: coordinates out of range, or a negative / non-finite radius.
    """
    if isinstance(circle, CapCircle):
        lat, lon, radius = circle.lat, circle.lon, circle.radius_km
    else:
        try:
            lat, lon, radius = circle
        except (TypeError, ValueError) as exc:
            raise CapBuildError(f"{name}: expected (lat, lon, radius_km)") from exc
    flat, flon = _coordinate(name, lat, lon)
    try:
        fradius = float(radius)
    except (TypeError, ValueError) as exc:
        raise CapBuildError(f"{name}: radius must be a number of kilometres") from exc
    if not math.isfinite(fradius) or fradius < 0:
        raise CapBuildError(f"{name}: radius {radius!r} km must be finite and >= 0")
    return f"{_number(flat)},{_number(flon)} {_number(fradius)}"


def _sub(parent: etree._Element, tag: str, text: str | None) -> None:
    if text is not None:
        etree.SubElement(parent, f"{{{CAP_NS}}}{tag}").text = text


def _pair(parent: etree._Element, tag: str, name: str, pair: tuple[str, str]) -> None:
    try:
        value_name, value = pair
    except (TypeError, ValueError) as exc:
        raise CapBuildError(f"{name}: expected a (valueName, value) pair") from exc
    element = etree.SubElement(parent, f"{{{CAP_NS}}}{tag}")
    _sub(element, "valueName", _text(f"{name}.valueName", value_name, required=True))
    _sub(element, "value", _text(f"{name}.value", value, required=True))


def _build_area(parent: etree._Element, name: str, area: CapArea) -> None:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}area")
    _sub(element, "areaDesc", _text(f"{name}.area_desc", area.area_desc, required=True))
    for i, ring in enumerate(area.polygons):
        _sub(element, "polygon", format_polygon(f"{name}.polygons[{i}]", ring))
    for i, circle in enumerate(area.circles):
        _sub(element, "circle", format_circle(f"{name}.circles[{i}]", circle))
    for i, pair in enumerate(area.geocodes):
        _pair(element, "geocode", f"{name}.geocodes[{i}]", pair)
    if area.ceiling is not None and area.altitude is None:
        raise CapBuildError(f"{name}.ceiling: needs altitude (CAP 1.2 §3.2.4)")
    for tag, value in (("altitude", area.altitude), ("ceiling", area.ceiling)):
        if value is not None:
            if not math.isfinite(float(value)):
                raise CapBuildError(f"{name}.{tag}: must be a finite number of feet")
            _sub(element, tag, _number(float(value)))


def _build_info(
    parent: etree._Element, name: str, info: CapInfo, default_expires: datetime | None
) -> None:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}info")
    language = _text(f"{name}.language", info.language, required=True)
    assert language is not None
    if not _LANGUAGE.match(language):
        raise CapBuildError(
            f"{name}.language: {language!r} is not an RFC 3066 code like 'fr-BE' (CAP 1.2 §3.2.2)"
        )
    _sub(element, "language", language)
    categories = [info.category] if isinstance(info.category, str) else list(info.category)
    if not categories:
        raise CapBuildError(f"{name}.category: at least one category is required")
    for category in categories:
        _sub(element, "category", _enum(f"{name}.category", category, CATEGORIES))
    _sub(element, "event", _text(f"{name}.event", info.event, required=True))
    for response_type in info.response_types:
        _sub(
            element,
            "responseType",
            _enum(f"{name}.response_types", response_type, RESPONSE_TYPES),
        )
    _sub(element, "urgency", _enum(f"{name}.urgency", info.urgency, URGENCIES))
    _sub(element, "severity", _enum(f"{name}.severity", info.severity, SEVERITIES))
    _sub(element, "certainty", _enum(f"{name}.certainty", info.certainty, CERTAINTIES))
    _sub(element, "audience", _text(f"{name}.audience", info.audience))
    for i, pair in enumerate(info.event_codes):
        _pair(element, "eventCode", f"{name}.event_codes[{i}]", pair)
    expires = info.expires if info.expires is not None else default_expires
    for tag, value in (("effective", info.effective), ("onset", info.onset), ("expires", expires)):
        if value is not None:
            _sub(element, tag, _time(f"{name}.{tag}", value))
    _sub(element, "senderName", _text(f"{name}.sender_name", info.sender_name))
    _sub(element, "headline", _text(f"{name}.headline", info.headline))
    _sub(element, "description", _text(f"{name}.description", info.description))
    _sub(element, "instruction", _text(f"{name}.instruction", info.instruction))
    web = _text(f"{name}.web", info.web)
    if web is not None and not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", web):
        raise CapBuildError(f"{name}.web: {web!r} is not an absolute URI (CAP 1.2 §3.2.2)")
    _sub(element, "web", web)
    _sub(element, "contact", _text(f"{name}.contact", info.contact))
    for i, pair in enumerate(info.parameters):
        _pair(element, "parameter", f"{name}.parameters[{i}]", pair)
    for i, area in enumerate(info.areas):
        _build_area(element, f"{name}.areas[{i}]", area)


def _references(alert: CapAlert) -> str | None:
    parts = []
    for i, reference in enumerate(alert.references):
        try:
            sender, identifier, sent = reference
        except (TypeError, ValueError) as exc:
            raise CapBuildError(f"references[{i}]: expected (sender, identifier, sent)") from exc
        if isinstance(sent, str):
            # Already written as in the referenced alert: keep it character for character.
            if not _CAP_DATETIME.match(sent):
                raise CapBuildError(
                    f"references[{i}].sent: {sent!r} is not a CAP time like "
                    "2026-12-01T08:00:00+01:00 (CAP 1.2 §3.3.2)"
                )
            sent_text = sent
        else:
            sent_text = _time(f"references[{i}].sent", sent)
        parts.append(
            ",".join(
                (
                    _token(f"references[{i}].sender", sender),
                    _token(f"references[{i}].identifier", identifier),
                    sent_text,
                )
            )
        )
    return " ".join(parts) if parts else None


def parse_references(text: str | None) -> list[tuple[str, str, str]]:
    """Split a CAP ``references`` value into ``(sender, identifier, sent)`` triples.

    ``sent`` stays the text as written (CAP 1.2 §3.2.1: the triples identify the
    earlier messages exactly). Raises ``CapBuildError`` for a malformed triple.
    """
    out = []
    for i, triple in enumerate((text or "").split()):
        parts = triple.split(",")
        if len(parts) != 3 or not all(parts) or not _CAP_DATETIME.match(parts[2]):
            raise CapBuildError(
                f"references[{i}]: {triple!r} is not sender,identifier,sent (CAP 1.2 §3.2.1)"
            )
        out.append((parts[0], parts[1], parts[2]))
    return out


def build_alert_element(alert: CapAlert) -> etree._Element:
    """Build the ``<alert>`` element tree for ``alert`` (children in XSD order).

    Raises:
        CapBuildError: any field that CAP 1.2 §3.2 does not allow, naming the field.
    """
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", _token("identifier", alert.identifier))
    _sub(root, "sender", _token("sender", alert.sender))
    _sub(root, "sent", _time("sent", alert.sent))
    _sub(root, "status", _enum("status", alert.status, STATUSES))
    _sub(root, "msgType", _enum("msg_type", alert.msg_type, MSG_TYPES))
    _sub(root, "source", _text("source", alert.source))
    _sub(root, "scope", _enum("scope", alert.scope, SCOPES))
    if alert.scope == "Restricted" and not alert.restriction:
        raise CapBuildError("restriction: required when scope is Restricted (CAP 1.2 §3.2.1)")
    if alert.scope == "Private" and not alert.addresses:
        raise CapBuildError("addresses: required when scope is Private (CAP 1.2 §3.2.1)")
    _sub(root, "restriction", _text("restriction", alert.restriction))
    _sub(root, "addresses", _text("addresses", alert.addresses))
    for i, code in enumerate(alert.codes):
        _sub(root, "code", _text(f"codes[{i}]", code, required=True))
    _sub(root, "note", _text("note", alert.note))
    references = _references(alert)
    if references is None and alert.msg_type in ("Update", "Cancel", "Ack", "Error"):
        raise CapBuildError(f"references: required for msgType {alert.msg_type} (CAP 1.2 §3.2.1)")
    _sub(root, "references", references)
    if alert.incidents:
        _sub(
            root,
            "incidents",
            " ".join(_token(f"incidents[{i}]", x) for i, x in enumerate(alert.incidents)),
        )
    for i, info in enumerate(alert.infos):
        _build_info(root, f"infos[{i}]", info, alert.expires)
    return root


def build_alert(alert: CapAlert) -> bytes:
    """Serialise ``alert`` as a CAP 1.2 document and check it against the OASIS XSD.

    Returns:
        UTF-8 bytes with an XML declaration, namespace
        ``urn:oasis:names:tc:emergency:cap:1.2``, elements in XSD order, times in
        Europe/Brussels as ``YYYY-MM-DDThh:mm:ss+hh:mm`` (CAP 1.2 §3.3.2).

    Raises:
        CapBuildError: a field CAP 1.2 does not allow (the message names it), or
            the rare case where the result still fails XSD validation.
    """
    root = build_alert_element(alert)
    errors = validate_xsd(root)
    if errors:
        raise CapBuildError("alert: result fails the CAP 1.2 XSD: " + "; ".join(errors))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def reference_of(xml: str | bytes) -> tuple[str, str, str]:
    """The ``(sender, identifier, sent)`` of a CAP 1.2 alert Tocsin built, ``sent`` as written.

    For the ``references`` of an Update or Cancel (CAP 1.2 §3.2.1). The parser
    resolves no entities and fetches nothing. Raises ``CapBuildError`` when an
    element is missing.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml, parser)
    values = []
    for tag in ("sender", "identifier", "sent"):
        text = root.findtext(f"{{{CAP_NS}}}{tag}")
        if not text:
            raise CapBuildError(f"references: the referenced alert has no {tag}")
        values.append(text.strip())
    return values[0], values[1], values[2]
