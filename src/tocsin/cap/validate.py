"""Validate CAP alerts: the OASIS CAP 1.2 XSD plus the rules the schema cannot express.

Pure functions, no database, no network. The schema types ``polygon``,
``circle`` and ``references`` as plain strings, so a document can pass the XSD
and still be unusable by a cell-broadcast centre or an alert map. The extra
rules come from the CAP 1.2 data dictionary (OASIS CAP 1.2 §3.2):

- ``identifier`` and ``sender`` contain no spaces, commas or the restricted
  characters ``<`` and ``&`` (§3.2.1);
- ``references`` is present for ``msgType`` Update, Cancel, Ack and Error and is
  a whitespace-separated list of ``sender,identifier,sent`` triples (§3.2.1);
  they name *earlier* messages: a reference with this alert's own sender sent
  after this alert is an error (one clock: impossible), one from another
  sender a warning (another clock may be slightly off);
- ``sent``, ``effective``, ``onset``, ``expires`` and the references' times
  can be converted to UTC (years 1-9999: ``9999-12-31T23:59:59-14:00`` is in
  the year 10000 in UTC, which receivers cannot store);
- ``expires`` is not before the alert's ``sent`` (§3.2.2);
- a ``polygon`` has at least 4 ``lat,lon`` pairs, the first and last pairs the
  same — checked on the text, because shapely closes rings silently — and its
  ring does not cross itself (§3.2.4);
- a ``circle`` is ``lat,lon radius`` with the radius in kilometres, 0 to
  20,000 (half the Earth's circumference; §3.2.4); radius 0 is a point;
- coordinates are WGS 84 degrees: latitude -90..90, longitude -180..180.

Warnings (legal, but probably wrong) for a deployment in ``country``: points
that lie outside the country as written but inside when swapped (written
lon,lat), an area wholly outside the country, a circle more than 1,000 km in
radius (larger than the country: a radius in metres?), and a ``description`` or
``instruction`` longer than one cell-broadcast message (15 pages of 93 GSM-7
characters = 1,395, or of 41 UCS-2 characters = 615; 3GPP TS 23.041 §9.4.1.2,
3GPP TS 23.038 §6.1.2.2). CAP 1.1 documents are read-only: the rules that
still apply are checked and a warning says the document is CAP 1.1.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import shapely
import shapely.affinity
from lxml import etree
from pyproj import Geod, Transformer
from shapely.geometry import Point, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from tocsin.cap.xml import (
    CAP11_NS,
    CAP_NS,
    DEFAULT_MAX_BYTES,
    CapParseError,
    cap_schema,
    cap_version,
    parse_cap,
    schema_lock,
)
from tocsin.geo.reference import polygonal
from tocsin.messages.sms import analyse

#: Pages in one cell-broadcast message (3GPP TS 23.041 §9.4.1.2.2: at most 15 pages).
CB_PAGES = 15
#: Characters in one cell-broadcast page: 82 octets of user data hold 93 GSM-7
#: septets or 41 UCS-2 characters (3GPP TS 23.041 §9.4.1.2.2, TS 23.038 §6.1.2.2).
CB_PAGE_CHARS = {"GSM-7": 93, "UCS-2": 41}
#: Most characters one cell-broadcast message carries: 1,395 GSM-7 or 615 UCS-2.
CB_MAX_CHARS = {encoding: CB_PAGES * n for encoding, n in CB_PAGE_CHARS.items()}

#: Countries a deployment can be checked against: ISO 3166-1 code -> name.
COUNTRIES = {"BE": "Belgium"}

#: Slack around the country outline, in degrees (~3 km). The shipped province
#: outline strays up to 0.03 degrees from the municipal borders (on the coast).
COUNTRY_MARGIN_DEG = 0.03

#: Largest circle radius, in km: half the Earth's circumference is ~20,004 km
#: (pole to pole), so no circle on Earth has a larger radius.
MAX_CIRCLE_KM = 20_000.0

#: Circle radius above which a warning says the circle is larger than the country,
#: in km (Belgium is ~280 km across): often a radius written in metres.
LARGE_CIRCLE_KM = 1_000.0

#: Rough width of each country Tocsin knows, in km, for the large-circle warning.
COUNTRY_WIDTH_KM = {"BE": 280}

#: The range of times a CAP date-time may have once converted to UTC: most
#: systems (Python, SQL databases) cannot store a time outside years 1-9999.
_UTC_RANGE = "0001-01-01T00:00:00Z..9999-12-31T23:59:59Z"

_FORBIDDEN_ID = re.compile(r"[\s,<&]")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)$")
#: The CAP 1.2 XSD pattern of ``sent``/``effective``/``onset``/``expires``.
_CAP_DATETIME = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
_REFERENCE_TYPES = ("Update", "Cancel", "Ack", "Error")
# Elements that may repeat, so that a path names which one (``info[2]``).
_REPEATABLE = frozenset({"info", "area", "polygon", "circle", "geocode", "parameter",
                         "resource", "eventCode", "category", "responseType"})
_VALIDITY_AT = re.compile(r"^(?P<what>[^\[]+)\[(?P<x>[-0-9.eE+]+) (?P<y>[-0-9.eE+]+)\]$")


@dataclass(frozen=True)
class Issue:
    """One finding: ``element`` is a path inside ``alert`` (``info[1]/area[2]/polygon[1]``,
    ``identifier``, ``document`` for the bytes themselves); ``message`` says what and why."""

    element: str
    message: str
    #: ``message``'s English template (a msgid) and params, when it is written once per
    #: language (docs/decisions/0018): the web layer shows it translated.
    template: str = field(default="", compare=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def translatable(cls, element: str, template: str, **params: Any) -> Issue:
        """An issue whose message is ``template % params`` (``template`` marked ``N_``)."""
        return cls(element, template % params if params else template, template, params)

    def to_json(self) -> dict[str, Any]:
        """``{"element", "message"}``, plus ``"template"`` and ``"params"`` (JSON-ready,
        ``core.errors.params_json``) for a translatable issue."""
        out: dict[str, Any] = {"element": self.element, "message": self.message}
        if self.template:
            from tocsin.core.errors import params_json

            out.update(template=self.template, params=params_json(self.params))
        return out

    def __str__(self) -> str:
        return f"{self.element}: {self.message}"


@dataclass
class ValidationReport:
    """Result of :func:`validate_cap`.

    ``cap_version`` is ``"1.2"``, ``"1.1"`` or None when the document could not
    be read as CAP at all. ``valid`` is true when there is no error; warnings
    never make a document invalid.
    """

    cap_version: str | None
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """``{"valid", "cap_version", "errors": [{"element", "message"}], "warnings": [...]}``."""
        return {
            "valid": self.valid,
            "cap_version": self.cap_version,
            "errors": [i.to_json() for i in self.errors],
            "warnings": [i.to_json() for i in self.warnings],
        }


# ----------------------------------------------------------------------------- CAP text grammar


def element_path(element: etree._Element) -> str:
    """Path of ``element`` below the ``alert`` root: ``info[1]/area[2]/polygon[1]``.

    Repeatable elements carry their 1-based position among siblings of the same
    name; the root itself is ``alert``.
    """
    parts: list[str] = []
    node = element
    while node.getparent() is not None:
        name = etree.QName(node).localname
        if name in _REPEATABLE:
            index = 1 + sum(1 for s in node.itersiblings(preceding=True) if s.tag == node.tag)
            name = f"{name}[{index}]"
        parts.append(name)
        node = node.getparent()
    return "/".join(reversed(parts)) or "alert"


def _number(token: str) -> float | None:
    if not _NUMBER.match(token):
        return None
    value = float(token)
    return value if math.isfinite(value) else None


def parse_point(token: str) -> tuple[float, float]:
    """``(lat, lon)`` of one CAP coordinate pair ``"lat,lon"`` (WGS 84 degrees, CAP 1.2 §3.2.4).

    Raises ValueError (reason only) when the token is not two decimal numbers
    separated by a comma. Ranges are not checked here (see :func:`range_problem`).
    """
    parts = token.split(",")
    if len(parts) != 2:
        raise ValueError(f"{token!r} is not a 'lat,lon' pair")
    lat, lon = _number(parts[0]), _number(parts[1])
    if lat is None or lon is None:
        raise ValueError(f"{token!r} is not a 'lat,lon' pair of decimal degrees")
    return lat, lon


def parse_polygon_text(text: str | None) -> list[tuple[float, float]]:
    """The ``(lat, lon)`` points of a CAP ``polygon`` text, as written (not closed, not checked).

    Raises ValueError naming the 1-based point that is not a ``lat,lon`` pair,
    or when the text is empty.
    """
    tokens = (text or "").split()
    if not tokens:
        raise ValueError("is empty; a polygon is a list of 'lat,lon' pairs")
    points = []
    for n, token in enumerate(tokens, start=1):
        try:
            points.append(parse_point(token))
        except ValueError as exc:
            raise ValueError(f"point {n}: {exc}") from None
    return points


def parse_circle_text(text: str | None) -> tuple[float, float, float]:
    """``(lat, lon, radius_km)`` of a CAP ``circle`` text ``"lat,lon radius"`` (CAP 1.2 §3.2.4).

    Raises ValueError when it is not a centre pair followed by one radius in
    kilometres, or the radius is negative or above :data:`MAX_CIRCLE_KM`.
    """
    tokens = (text or "").split()
    if len(tokens) != 2:
        raise ValueError(f"{(text or '').strip()!r} is not 'lat,lon radius' "
                         f"(a centre and a radius in kilometres)")
    lat, lon = parse_point(tokens[0])
    radius = _number(tokens[1])
    if radius is None:
        raise ValueError(f"radius {tokens[1]!r} is not a number of kilometres")
    if radius < 0:
        raise ValueError(f"radius {tokens[1]} km is negative; it must be >= 0")
    if radius > MAX_CIRCLE_KM:
        raise ValueError(f"radius {radius:,g} km is more than {MAX_CIRCLE_KM:,.0f} km, half "
                         f"the Earth's circumference: no circle on Earth is that large "
                         f"(CAP radii are in kilometres, not metres)")
    return lat, lon, radius


def range_problem(points: list[tuple[float, float]]) -> str | None:
    """Why the first out-of-range ``(lat, lon)`` point is wrong (WGS 84), or None."""
    for n, (lat, lon) in enumerate(points, start=1):
        if not -90 <= lat <= 90:
            return f"point {n}: latitude {lat:g} is outside -90..90"
        if not -180 <= lon <= 180:
            return f"point {n}: longitude {lon:g} is outside -180..180"
    return None


def parse_cap_datetime(text: str | None) -> dt.datetime | None:
    """An aware datetime from a CAP date-time text, or None when it cannot be read.

    Accepts ISO 8601 with an offset (CAP 1.2 §3.3.2 requires one, ``-00:00``
    for UTC); a time without an offset gives None.
    """
    if not text or not text.strip():
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def utc_problem(value: dt.datetime) -> str | None:
    """Why the aware ``value`` cannot be converted to UTC, or None when it can.

    ``9999-12-31T23:59:59-14:00`` is in the year 10000 in UTC and
    ``0001-01-01T00:00:00+14:00`` before the year 1: valid ISO 8601 and CAP
    text, but no receiver (nor Python, nor a SQL database) can store them.
    """
    try:
        value.astimezone(dt.UTC)
    except OverflowError:
        side = "after the year 9999" if value.year >= 9999 else "before the year 1"
        return (f"{value.isoformat()} is {side} in UTC, outside the times systems can "
                f"store ({_UTC_RANGE})")
    return None


def references_problems(text: str) -> list[str]:
    """What is wrong with a CAP ``references`` value (CAP 1.2 §3.2.1); empty when well-formed.

    The value is one or more ``sender,identifier,sent`` triples separated by
    whitespace; sender and identifier without ``<``/``&``, ``sent`` a CAP
    date-time (``YYYY-MM-DDThh:mm:ss+hh:mm``) that can be converted to UTC.
    The order in time is checked by :func:`later_references`.
    """
    triples = text.split()
    if not triples:
        return ["is empty; expected 'sender,identifier,sent' triples separated by spaces"]
    problems = []
    for n, triple in enumerate(triples, start=1):
        parts = triple.split(",")
        if len(parts) != 3:
            problems.append(f"reference {n} {triple!r} is not a 'sender,identifier,sent' triple")
            continue
        sender, identifier, sent = parts
        if not sender or not identifier:
            problems.append(f"reference {n} {triple!r} has an empty sender or identifier")
        elif _FORBIDDEN_ID.search(sender + identifier):
            problems.append(f"reference {n} {triple!r}: sender and identifier cannot hold "
                            f"'<' or '&'")
        when = parse_cap_datetime(sent) if _CAP_DATETIME.match(sent) else None
        if when is None:
            problems.append(f"reference {n}: sent {sent!r} is not a CAP date-time "
                            f"(YYYY-MM-DDThh:mm:ss+hh:mm)")
        elif (beyond := utc_problem(when)) is not None:
            problems.append(f"reference {n}: sent {beyond}")
    return problems


def later_references(text: str, sent_at: dt.datetime) -> list[tuple[int, str, str]]:
    """``(n, sender, sent)`` of the well-formed ``references`` triples sent after ``sent_at``.

    References name earlier messages (CAP 1.2 §3.2.1), so each one is a mistake:
    impossible when the reference has the alert's own sender (one clock), a
    clock or time-zone slip when it comes from another sender.
    """
    later = []
    for n, triple in enumerate(text.split(), start=1):
        parts = triple.split(",")
        if len(parts) != 3 or not _CAP_DATETIME.match(parts[2]):
            continue
        when = parse_cap_datetime(parts[2])
        if when is not None and utc_problem(when) is None and when > sent_at:
            later.append((n, parts[0], parts[2]))
    return later


def _fmt(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def ring_problem(ring: Polygon, label: str) -> str | None:
    """Why the lon/lat ``ring`` of ``label`` (an areaDesc) is not a simple ring, or None.

    Names the crossing point as ``lat,lon`` (CAP order), e.g. "the polygon of
    Zone A crosses itself (self-intersection) at 50.85,4.35 (lat,lon): a ring
    must not intersect itself" (CAP 1.2 §3.2.4).
    """
    if ring.is_valid:
        return None
    what, where = invalidity(ring)
    at = f" at {_fmt(where[0])},{_fmt(where[1])} (lat,lon)" if where else ""
    kind = ("crosses itself (self-intersection)" if "self-intersection" in what.lower()
            else f"is not a valid ring ({what})")
    return f"the polygon of {label} {kind}{at}: a ring must not intersect itself"


def invalidity(ring: Polygon) -> tuple[str, tuple[float, float] | None]:
    """``(what, (lat, lon) or None)``: why a lon/lat polygon is invalid and where."""
    explanation = explain_validity(ring)
    match = _VALIDITY_AT.match(explanation)
    if match is None:
        return explanation, None
    return match["what"].strip(), (float(match["y"]), float(match["x"]))


@lru_cache(maxsize=1)
def _lambert2008() -> tuple[Transformer, Transformer]:
    return (Transformer.from_crs("EPSG:4326", "EPSG:3812", always_xy=True),
            Transformer.from_crs("EPSG:3812", "EPSG:4326", always_xy=True))


@lru_cache(maxsize=256)
def _local_aeqd(lat: float, lon: float) -> tuple[Transformer, Transformer]:
    local = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +datum=WGS84 +units=m"
    return (Transformer.from_crs("EPSG:4326", local, always_xy=True),
            Transformer.from_crs(local, "EPSG:4326", always_xy=True))


def circle_geometry(lat: float, lon: float, radius_km: float) -> BaseGeometry:
    """A CAP circle as a shapely geometry in WGS 84 lon/lat (-180..180, -90..90).

    The circle is drawn in metres: in Belgian Lambert 2008 (EPSG:3812) when the
    centre is in or near Belgium, otherwise in an azimuthal equidistant
    projection centred on it (true distances from the centre anywhere), with 64
    vertices. A radius of 0 gives the centre ``Point``. A circle that crosses
    the antimeridian (±180°) is split into a ``MultiPolygon`` of its two sides;
    one that holds a pole reaches that pole along every meridian; one that holds
    both poles is the world minus the part around the centre's antipode.

    Raises ValueError for a radius above :data:`MAX_CIRCLE_KM` (20,000 km).
    """
    if radius_km <= 0:
        return Point(lon, lat)
    if radius_km > MAX_CIRCLE_KM:
        raise ValueError(f"radius {radius_km:,g} km is more than {MAX_CIRCLE_KM:,.0f} km, "
                         f"half the Earth's circumference")
    near_belgium = 1.0 <= lon <= 8.0 and 48.0 <= lat <= 53.0 and radius_km <= 500
    forward, back = _lambert2008() if near_belgium else _local_aeqd(lat, lon)
    x, y = forward.transform(lon, lat)
    disc = Point(x, y).buffer(radius_km * 1000.0, quad_segs=16)
    ring = np.asarray(back.transform(*disc.exterior.xy)).T  # (lon, lat) rows, closed
    north, south = (_geod().inv(lon, lat, lon, pole)[2] <= radius_km * 1000.0
                    for pole in (90.0, -90.0))
    if not near_belgium and (north or south or _crosses_antimeridian(ring)):
        return _wrapped_circle(ring, north, south)
    return Polygon(ring)


@lru_cache(maxsize=1)
def _geod() -> Geod:
    return Geod(ellps="WGS84")


def _crosses_antimeridian(ring: Any) -> bool:
    return bool(np.any(np.abs(np.diff(ring[:, 0])) > 180.0))


def _wrapped_circle(ring: Any, north: bool, south: bool) -> BaseGeometry:
    """The lon/lat area inside a circle ``ring`` that crosses ±180° or holds a pole.

    The longitudes are unwrapped (no jump of more than 180° between neighbours),
    the ring is closed over the pole it winds around, and the shape is cut into
    the -180..180 world by shifting copies by multiples of 360°.
    """
    lons, lats = ring[:, 0].copy(), ring[:, 1]
    jumps = np.diff(lons)
    lons[1:] -= 360.0 * np.cumsum(np.round(jumps / 360.0))
    points = list(zip(lons.tolist(), lats.tolist(), strict=True))
    winds = abs(points[-1][0] - points[0][0]) > 180.0
    if winds and north != south:  # around one pole: close the ring over it
        pole = 90.0 if north else -90.0
        points = [*points, (points[-1][0], pole), (points[0][0], pole), points[0]]
    shape_ = shapely.make_valid(Polygon(points))
    world = shapely.box(-180.0, -90.0, 180.0, 90.0)
    parts = [shapely.intersection(shapely.affinity.translate(shape_, xoff=k * 360.0), world)
             for k in range(-2, 3)]
    inside = polygonal(shapely.union_all(parts))
    if north and south:  # the ring encloses the antipode: the circle is the rest
        return polygonal(shapely.difference(world, inside))
    return inside


@lru_cache(maxsize=4)
def country_territory(country: str) -> BaseGeometry:
    """The outline of a deployment's country, WGS 84 lon/lat, prepared, cached per process.

    Belgium is the union of the provinces shipped in ``tocsin/geo/data`` (no
    database needed): it is meant for "is this area anywhere near the country"
    warnings (see :func:`near_country`), not for clipping (use
    ``tocsin.geo.areas.clip_to_territory`` with an authority for that).

    Raises ValueError for a country Tocsin has no outline of.
    """
    if country not in COUNTRIES:
        raise ValueError(f"country: {country!r} is not one of {', '.join(COUNTRIES)}")
    from tocsin.geo.reference import PROVINCES_FILE

    text = (resources.files("tocsin.geo") / "data" / PROVINCES_FILE).read_text(encoding="utf-8")
    parts = [shapely.make_valid(shape(f["geometry"])) for f in json.loads(text)["features"]]
    outline = shapely.union_all(parts)
    shapely.prepare(outline)
    return outline


def near_country(geom: BaseGeometry, country: str) -> bool:
    """Whether ``geom`` (lon/lat) touches ``country`` or lies within :data:`COUNTRY_MARGIN_DEG`.

    Raises ValueError for an unknown country.
    """
    return bool(shapely.dwithin(geom, country_territory(country), COUNTRY_MARGIN_DEG))


def swapped(geom: BaseGeometry) -> BaseGeometry:
    """``geom`` with x and y exchanged (lon,lat <-> lat,lon)."""
    return shapely.transform(geom, lambda xy: xy[:, ::-1].copy())


# ----------------------------------------------------------------------------- validation


def _ns(root: etree._Element) -> str:
    return etree.QName(root).namespace or CAP_NS


def _children(parent: etree._Element, ns: str, name: str) -> list[etree._Element]:
    return parent.findall(f"{{{ns}}}{name}")


def _text(parent: etree._Element, ns: str, name: str) -> str | None:
    child = parent.find(f"{{{ns}}}{name}")
    return None if child is None or child.text is None else child.text


def as_cap12(root: etree._Element) -> etree._Element:
    """A CAP 1.1 tree rebuilt in the CAP 1.2 namespace, for the CAP 1.2 schema.

    CAP 1.1's ``resource`` may omit ``mimeType`` (required only since CAP 1.2):
    a placeholder is added so that this difference is not reported. Comments
    and processing instructions are left out; positions of elements are kept.
    """
    old = f"{{{CAP11_NS}}}"

    def tag(element: etree._Element) -> str:
        name = str(element.tag)
        return f"{{{CAP_NS}}}{name[len(old):]}" if name.startswith(old) else name

    def copy_into(source: etree._Element, target: etree._Element) -> None:
        target.text = source.text
        for child in source:
            if not isinstance(child.tag, str):
                continue
            new = etree.SubElement(target, tag(child), attrib=dict(child.attrib))
            copy_into(child, new)
            new.tail = child.tail

    tree = etree.Element(tag(root), attrib=dict(root.attrib), nsmap={None: CAP_NS})
    copy_into(root, tree)
    for resource in tree.iter(f"{{{CAP_NS}}}resource"):
        if resource.find(f"{{{CAP_NS}}}mimeType") is None:
            placeholder = etree.Element(f"{{{CAP_NS}}}mimeType")
            placeholder.text = "application/octet-stream"
            desc = resource.find(f"{{{CAP_NS}}}resourceDesc")
            resource.insert(0 if desc is None else resource.index(desc) + 1, placeholder)
    return tree


def schema_issues(root: etree._Element) -> list[Issue]:
    schema = cap_schema()
    with schema_lock():
        if schema.validate(root):
            return []
        log = list(schema.error_log)
    issues = []
    for entry in log:
        element = "alert"
        if entry.path:
            try:
                found = root.getroottree().xpath(entry.path)
            except etree.XPathError:
                found = []
            if isinstance(found, list) and found and isinstance(found[0], etree._Element):
                element = element_path(found[0])
        message = re.sub(r"\{urn:oasis:names:tc:emergency:cap:1\.[12]\}", "", entry.message)
        issues.append(Issue(element, f"{message} (line {entry.line}; OASIS CAP 1.2 schema)"))
    return issues


def identifier_problems(root: etree._Element) -> list[Issue]:
    """``identifier`` and ``sender`` containing a space, a comma, < or & (CAP 1.2 §3.2.1),
    one Issue each naming the element."""
    errors: list[Issue] = []
    _check_identifiers(root, _ns(root), errors)
    return errors


def _check_identifiers(root: etree._Element, ns: str, errors: list[Issue]) -> None:
    for name in ("identifier", "sender"):
        value = _text(root, ns, name)
        if value is None:
            continue  # the schema reports a missing one
        bad = _FORBIDDEN_ID.search(value)
        if bad:
            what = {",": "a comma", "<": "'<'", "&": "'&'"}.get(bad.group(), "a space")
            errors.append(Issue(name, f"{value!r} contains {what}; CAP 1.2 §3.2.1 forbids "
                                      f"spaces, commas and the restricted characters < and &"))


def _check_references(root: etree._Element, ns: str, sent: dt.datetime | None,
                      errors: list[Issue], warnings: list[Issue]) -> None:
    msg_type = (_text(root, ns, "msgType") or "").strip()
    references = _text(root, ns, "references")
    if references is None:
        if msg_type in _REFERENCE_TYPES:
            errors.append(Issue("references", f"msgType {msg_type} must name the earlier "
                                              f"message(s) in <references> as "
                                              f"'sender,identifier,sent' (CAP 1.2 §3.2.1)"))
        return
    for problem in references_problems(references):
        errors.append(Issue("references", f"{problem} (CAP 1.2 §3.2.1)"))
    if sent is None:
        return
    sender = (_text(root, ns, "sender") or "").strip()
    for n, ref_sender, ref_sent in later_references(references, sent):
        message = (f"reference {n} was sent {ref_sent}, after this alert's sent time "
                   f"{sent.isoformat()}; references name earlier messages (CAP 1.2 §3.2.1)")
        if ref_sender == sender:
            errors.append(Issue("references", message))
        else:
            warnings.append(Issue("references", f"{message}: check the clock or time zone "
                                                f"of {ref_sender} or of this sender"))


def _check_texts(info: etree._Element, ns: str, warnings: list[Issue]) -> None:
    for name in ("description", "instruction"):
        element = info.find(f"{{{ns}}}{name}")
        text = (element.text or "").strip() if element is not None else ""
        if element is None or not text:
            continue
        try:
            facts = analyse(text)
        except ValueError:
            continue
        limit = CB_MAX_CHARS[facts.encoding]
        if facts.units > limit:
            warnings.append(Issue(element_path(element), (
                f"{facts.units:,} {facts.encoding} characters: longer than one cell-broadcast "
                f"message carries ({CB_PAGES} pages of {CB_PAGE_CHARS[facts.encoding]} = "
                f"{limit:,} {facts.encoding} characters; 3GPP TS 23.041); cell broadcast "
                f"would cut it")))


def _area_label(area: etree._Element, ns: str) -> str:
    desc = " ".join((_text(area, ns, "areaDesc") or "").split())
    return f"area {desc!r}" if desc else "the area"


def _check_polygon(polygon: etree._Element, label: str, errors: list[Issue]
                   ) -> BaseGeometry | None:
    path = element_path(polygon)
    try:
        points = parse_polygon_text(polygon.text)
    except ValueError as exc:
        errors.append(Issue(path, f"{exc} (CAP 1.2 §3.2.4)"))
        return None
    problem = range_problem(points)
    if problem:
        errors.append(Issue(path, f"{problem} (WGS 84 lat,lon; CAP 1.2 §3.2.4)"))
        return None
    usable = True
    if len(points) < 4:
        errors.append(Issue(path, f"the polygon of {label} has {len(points)} points; at least "
                                  f"4 are required, the last repeating the first "
                                  f"(CAP 1.2 §3.2.4)"))
        usable = False
    if points[0] != points[-1]:
        errors.append(Issue(path, (
            f"the polygon of {label} is not closed: its first point "
            f"{_fmt(points[0][0])},{_fmt(points[0][1])} and last point "
            f"{_fmt(points[-1][0])},{_fmt(points[-1][1])} differ; the first and last pairs "
            f"must be the same (CAP 1.2 §3.2.4)")))
        points = [*points, points[0]]
    if not usable or len(points) < 4:
        return None
    ring = Polygon([(lon, lat) for lat, lon in points])
    problem = ring_problem(ring, label)
    if problem is not None:
        errors.append(Issue(path, f"{problem} (CAP 1.2 §3.2.4)"))
        return shapely.make_valid(ring)
    return ring


def large_circle_warning(radius_km: float, country: str | None) -> str | None:
    """The warning for a legal but absurd circle radius (above :data:`LARGE_CIRCLE_KM`)."""
    if radius_km <= LARGE_CIRCLE_KM:
        return None
    if country in COUNTRY_WIDTH_KM:
        than = f"larger than {COUNTRIES[country]} (about {COUNTRY_WIDTH_KM[country]} km across)"
    else:
        than = "larger than a country"
    return (f"radius {radius_km:,g} km: the circle is {than}; check that the radius is in "
            f"kilometres (CAP 1.2 §3.2.4) and not in metres")


def _check_circle(circle: etree._Element, country: str | None, errors: list[Issue],
                  warnings: list[Issue]) -> BaseGeometry | None:
    path = element_path(circle)
    try:
        lat, lon, radius = parse_circle_text(circle.text)
    except ValueError as exc:
        errors.append(Issue(path, f"{exc} (CAP 1.2 §3.2.4)"))
        return None
    problem = range_problem([(lat, lon)])
    if problem:
        errors.append(Issue(path, f"centre: {problem.removeprefix('point 1: ')} "
                                  f"(WGS 84 lat,lon; CAP 1.2 §3.2.4)"))
        return None
    large = large_circle_warning(radius, country)
    if large is not None:
        warnings.append(Issue(path, large))
    return circle_geometry(lat, lon, radius)


def _check_area(area: etree._Element, ns: str, country: str | None,
                errors: list[Issue], warnings: list[Issue]) -> None:
    label = _area_label(area, ns)
    shapes: list[tuple[etree._Element, BaseGeometry]] = []
    for polygon in _children(area, ns, "polygon"):
        geom = _check_polygon(polygon, label, errors)
        if geom is not None:
            shapes.append((polygon, geom))
    for circle in _children(area, ns, "circle"):
        geom = _check_circle(circle, country, errors, warnings)
        if geom is not None:
            shapes.append((circle, geom))
    if country is None or not shapes:
        return
    name = COUNTRIES[country]
    swap_warned = False
    inside = [near_country(geom, country) for _, geom in shapes]
    for (element, geom), near in zip(shapes, inside, strict=True):
        if not near and near_country(swapped(geom), country):
            swap_warned = True
            warnings.append(Issue(element_path(element), (
                f"{label} lies outside {name} as written but inside it with latitude and "
                f"longitude swapped: CAP points are lat,lon (CAP 1.2 §3.2.4), these look "
                f"like lon,lat")))
    if not swap_warned and not any(inside):
        warnings.append(Issue(element_path(area), f"{label} lies outside {name}, where this "
                                                  f"deployment alerts"))


def _checked_time(element: etree._Element | None, errors: list[Issue]) -> dt.datetime | None:
    """The aware time of a CAP date-time element, or None when absent, unreadable (the
    schema reports it) or outside the UTC range (an error naming the element)."""
    if element is None:
        return None
    value = parse_cap_datetime(element.text)
    if value is None:
        return None
    problem = utc_problem(value)
    if problem is not None:
        errors.append(Issue(element_path(element), problem))
        return None
    return value


def _check_info(info: etree._Element, ns: str, sent: dt.datetime | None, country: str | None,
                errors: list[Issue], warnings: list[Issue]) -> None:
    for name in ("effective", "onset"):
        _checked_time(info.find(f"{{{ns}}}{name}"), errors)
    expires_el = info.find(f"{{{ns}}}expires")
    expires = _checked_time(expires_el, errors)
    if expires_el is not None and sent is not None:
        if expires is not None and expires < sent:
            errors.append(Issue(element_path(expires_el), (
                f"{expires.isoformat()} is before the alert's sent time {sent.isoformat()} "
                f"(CAP 1.2 §3.2.2)")))
    _check_texts(info, ns, warnings)
    for area in _children(info, ns, "area"):
        _check_area(area, ns, country, errors, warnings)


def _infos(root: etree._Element, ns: str) -> Iterator[etree._Element]:
    yield from _children(root, ns, "info")


def validate_cap(
    xml_bytes: bytes | bytearray | memoryview,
    *,
    country: str | None = "BE",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ValidationReport:
    """Validate a CAP document: OASIS CAP 1.2 XSD plus the rules it cannot express.

    Args:
        xml_bytes: the raw document (hardened parsing: no DTD, no entities, no
            network, at most ``max_bytes``, encoding from the XML declaration).
        country: ISO 3166-1 code of the deployment (``"BE"``) for the
            "outside the country" and "swapped lat,lon" warnings; None skips them.
        max_bytes: size limit in bytes (default 1 MiB).

    Returns:
        A :class:`ValidationReport`. Errors and warnings name the element
        (``info[1]/area[2]/polygon[1]``); a document that cannot be parsed gives
        one error on ``document`` (or ``alert`` for a root that is not CAP).
        Never raises for bad input.

    Raises:
        ValueError: ``country`` is not one Tocsin knows (a programming error).
    """
    if country is not None and country not in COUNTRIES:
        raise ValueError(f"country: {country!r} is not one of {', '.join(COUNTRIES)}")
    try:
        root = parse_cap(xml_bytes, max_bytes=max_bytes, accept_cap11=True)
    except CapParseError as exc:
        where, _, reason = str(exc).partition(": ")
        return ValidationReport(None, [Issue(where if where == "alert" else "document",
                                             reason or str(exc))])
    version = cap_version(root)
    ns = _ns(root)
    report = ValidationReport(version)
    if version == "1.1":
        report.warnings.append(Issue("alert", (
            "CAP 1.1 document (namespace urn:oasis:names:tc:emergency:cap:1.1): read-only in "
            "Tocsin; checked with the CAP 1.2 schema and rules that apply to CAP 1.1 too. "
            "Alerts Tocsin publishes are CAP 1.2")))
        report.errors.extend(schema_issues(as_cap12(root)))
    else:
        report.errors.extend(schema_issues(root))
    _check_identifiers(root, ns, report.errors)
    sent = _checked_time(root.find(f"{{{ns}}}sent"), report.errors)
    _check_references(root, ns, sent, report.errors, report.warnings)
    for info in _infos(root, ns):
        _check_info(info, ns, sent, country, report.errors, report.warnings)
    return report
