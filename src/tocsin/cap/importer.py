"""Turn an upstream CAP alert (a weather service, a neighbouring country) into draft content.

Pure: no database, no network. :func:`import_cap` reads a CAP 1.2 (or CAP 1.1)
document with the hardened parser and returns an :class:`ImportedAlert` — the
kind, per-language texts and content fields, the area as a shapely geometry,
the CAP parameters and expiry — that ``tocsin.campaigns.drafts.save_draft``
stores as a draft campaign for an operator to check and launch.

What an operator expects (README, "CAP import"): an alert that cannot become a
correct public alert is refused with every such problem listed
(:class:`CapImportError`, ``problems``): an identifier or sender with spaces,
commas, < or & (CAP 1.2 §3.2.1), a missing identifier, sender, sent, status,
msgType or scope, a scope other than Public. A value the operator sets in the
composer (CAP category, event, urgency, severity, certainty; the expiry) that is
missing, not a CAP 1.2 value, or already past makes a *blocked* draft: it is
imported with the problem listed in ``blocking`` and cannot be launched until the
operator chooses that value (an expired upstream warning may still describe a
danger the operator wants to re-issue, with a new expiry).

Otherwise it is more forgiving than :func:`tocsin.cap.validate.validate_cap`: a polygon
whose last point does not repeat the first is closed (and a warning says so),
schema deviations are reported as warnings, languages Tocsin does not send are
skipped with a warning. What cannot be turned into a correct alert is an error
(:class:`CapImportError`) naming the element: hostile or broken XML, no
``info``, a ring that crosses itself, coordinates written lon,lat, out-of-range
coordinates, an alert without any area that can be placed on a map.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import shapely
from lxml import etree
from shapely.geometry import Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry

from tocsin.cap.build import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES
from tocsin.cap.validate import (
    COUNTRIES,
    Issue,
    as_cap12,
    circle_geometry,
    element_path,
    identifier_problems,
    large_circle_warning,
    later_references,
    near_country,
    parse_cap_datetime,
    parse_circle_text,
    parse_polygon_text,
    range_problem,
    ring_problem,
    schema_issues,
    swapped,
    utc_problem,
)
from tocsin.cap.xml import DEFAULT_MAX_BYTES, CapParseError, cap_version, parse_cap
from tocsin.core.errors import phrase
from tocsin.core.i18n import N_
from tocsin.messages.sms import analyse

#: CAP ``info`` language (primary subtag of RFC 3066 / BCP 47) -> Tocsin language.
LANGUAGES = {"fr": "fr", "nl": "nl", "de": "de", "en": "en"}

#: CAP 1.2 §3.2.2: an ``info`` without ``language`` is in ``en-US``.
DEFAULT_CAP_LANGUAGE = "en-US"

#: ``geocode`` valueNames read as Belgian NIS (REFNIS) codes; Tocsin writes ``NIS``.
NIS_VALUE_NAMES = frozenset({"NIS", "NIS5", "REFNIS", "NIS-CODE", "NIS_CODE", "INS"})

#: Largest base SMS text made from an imported alert, in segments: three
#: segments (459 GSM-7 or 201 UCS-2 characters) say what happens and what to do.
DEFAULT_SMS_SEGMENTS = 3

#: Appended where the SMS text is cut mid-sentence; three full stops stay in GSM-7.
ELLIPSIS = "..."

_NIS = re.compile(r"^\d{5}$")
_KIND_BY_STATUS = {"Test": "test", "Exercise": "exercise"}
_ALERT_URGENCIES = ("Immediate", "Expected")
_ALERT_SEVERITIES = ("Extreme", "Severe")
_MAX_EVENT = 200


class CapImportError(ValueError):
    """An upstream CAP alert that cannot become a draft: ``element`` names where
    (``info[1]/area[2]/polygon[1]``, ``document``, ``status``…), ``reason`` says why;
    ``problems`` lists every refusal found (the first is ``element: reason``)."""

    def __init__(self, element: str, reason: str, problems: list[Issue] | None = None
                 ) -> None:
        super().__init__(f"{element}: {reason}")
        self.problems = problems or [Issue(element, reason)]
        self.element = element
        self.reason = reason

    @classmethod
    def translatable(cls, element: str, template: str, **params: Any) -> CapImportError:
        """A refusal whose reason is ``template % params`` (``template`` marked ``N_``),
        shown in the reader's language by the web layer."""
        issue = Issue.translatable(element, template, **params)
        return cls(element, issue.message, [issue])


@dataclass
class ImportedAlert:
    """What an upstream CAP alert says, in Tocsin's terms.

    Attributes:
        cap_version: ``"1.2"`` or ``"1.1"``.
        identifier, sender, sent, status, msg_type, references: the upstream
            alert's own values (``sent`` aware, None when unreadable).
        kind: ``alert``, ``warning``, ``test`` or ``exercise``.
        texts: language (fr, nl, de, en) -> base text, the SMS text, at most
            ``sms_max_segments`` segments; in the order of the ``info`` blocks.
        content: language -> content fields (``sms``, ``cap_event``,
            ``cap_headline``, ``cap_description``, ``cap_instruction``; empty
            ones left out).
        area: union of the polygons and circles, shapely geometry in WGS 84
            lon/lat (RFC 7946 order), or None when the area is given only by
            NIS geocodes.
        area_nis: NIS codes from ``geocode`` (5 digits), in order, no repeats.
        area_name: the ``areaDesc`` values joined, at most 300 characters.
        cap_params: ``category``, ``event``, ``urgency``, ``severity``,
            ``certainty`` (CAP 1.2 §3.2.2 values only).
        expires: earliest ``expires`` of the kept ``info`` blocks (aware) or None;
            an expiry that cannot be converted to UTC (``9999-12-31T23:59:59-14:00``
            is in the year 10000 there) is left out with a warning, and so is
            such a ``sent``.
        warnings: what was repaired, skipped or looks wrong.
        blocking: CAP value (``category``, ``event``, ``urgency``, ``severity``,
            ``certainty``) or ``expires`` -> why the upstream one cannot be used; the
            draft cannot be launched until the operator chooses each of them.
    """

    cap_version: str
    identifier: str
    sender: str
    sent: dt.datetime | None
    status: str
    msg_type: str
    references: str | None
    kind: str
    texts: dict[str, str]
    content: dict[str, dict[str, str]]
    area: BaseGeometry | None
    area_nis: list[str]
    area_name: str
    cap_params: dict[str, str]
    expires: dt.datetime | None
    warnings: list[Issue] = field(default_factory=list)
    blocking: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; ``area`` as a GeoJSON geometry, times RFC 3339."""
        return {
            "cap_version": self.cap_version, "identifier": self.identifier,
            "sender": self.sender, "sent": self.sent.isoformat() if self.sent else None,
            "status": self.status, "msg_type": self.msg_type, "references": self.references,
            "kind": self.kind, "texts": self.texts, "content": self.content,
            "area": mapping(self.area) if self.area is not None else None,
            "area_nis": self.area_nis, "area_name": self.area_name,
            "cap": self.cap_params,
            "expires": self.expires.isoformat() if self.expires else None,
            "warnings": [w.to_json() for w in self.warnings],
            "blocking": [{"element": blocking_field(k), "message": v}
                         for k, v in self.blocking.items()],
        }


def blocking_field(name: str) -> str:
    """The launch request's field for a ``blocking`` key: ``cap.urgency``, ``expires_at``."""
    return "expires_at" if name == "expires" else f"cap.{name}"


# ----------------------------------------------------------------------------- texts


def _clean(text: str | None) -> str:
    """Text of a CAP element with each line stripped and runs of blank lines squeezed."""
    if not text:
        return ""
    lines = [" ".join(line.split()) for line in text.strip().splitlines()]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def shorten_sms(text: str, max_segments: int) -> str:
    """``text`` cut to fit in ``max_segments`` SMS segments (3GPP TS 23.040), sensibly.

    Whitespace is collapsed to single spaces. A text that fits is returned as
    is; otherwise it is cut at the end of a sentence when one ends in the last
    40 % of what fits, else at a word boundary with ``...`` appended. Segments
    are counted by ``tocsin.messages.sms.analyse`` (the encoding may drop from
    UCS-2 to GSM-7 when the cut removes the only non-GSM character).

    Raises ValueError when ``max_segments`` < 1.
    """
    if max_segments < 1:
        raise ValueError(f"max_segments: {max_segments} is below 1")
    text = _one_line(text)
    if not text or analyse(text).segments <= max_segments:
        return text

    def fits(n: int) -> bool:
        return analyse(text[:n].rstrip() + ELLIPSIS).segments <= max_segments

    lo, hi = 0, len(text)  # fits(lo) holds, fits(hi) does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    cut = text[:lo]
    # A sentence that ends exactly at the cut counts too.
    sentence_end = max(cut.rfind(p) for p in (". ", "! ", "? "))
    if len(text) > lo and text[lo] == " " and cut.endswith((".", "!", "?")):
        sentence_end = lo - 1
    if sentence_end >= 0.6 * lo:
        return cut[:sentence_end + 1]
    space = cut.rfind(" ")
    if space >= 0.6 * lo:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ELLIPSIS


def base_sms_text(headline: str, instruction: str, description: str, event: str,
                  max_segments: int) -> str:
    """The base (SMS) text of an imported ``info``: what happens, then what to do.

    ``headline`` (or, without one, ``event``) followed by ``instruction`` (or,
    without one, ``description``), joined into one sentence flow and shortened
    with :func:`shorten_sms`. Empty when every part is empty.
    """
    text = joined_sms_text(headline, instruction, description, event)
    return shorten_sms(text, max_segments) if text else ""


def joined_sms_text(headline: str, instruction: str, description: str, event: str) -> str:
    """:func:`base_sms_text` before shortening."""
    first = _one_line(headline or event)
    rest = _one_line(instruction or description)
    if first and rest:
        if rest.lower().startswith(first.lower()):
            return rest
        text = first if first.endswith((".", "!", "?", ":")) else first + "."
        return f"{text} {rest}"
    return first or rest


# ----------------------------------------------------------------------------- areas


@dataclass
class _Areas:
    shapes: list[BaseGeometry] = field(default_factory=list)
    nis: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    #: ``(path, label, lat, lon)`` of circles of radius 0, left out of the area.
    points: list[tuple[str, str, float, float]] = field(default_factory=list)


def _polygon(element: etree._Element, label: str, country: str | None,
             warnings: list[Issue]) -> BaseGeometry:
    path = element_path(element)
    try:
        points = parse_polygon_text(element.text)
    except ValueError as exc:
        raise CapImportError(path, f"{exc} (CAP 1.2 §3.2.4)") from None
    problem = range_problem(points)
    if problem:
        raise CapImportError(path, f"{problem} (WGS 84 lat,lon; CAP 1.2 §3.2.4)")
    if points[0] != points[-1]:
        points = [*points, points[0]]
        warnings.append(Issue.translatable(path, N_(
            "the polygon of %(label)s was not closed (its last point did not repeat the "
            "first, CAP 1.2 §3.2.4): closed it by adding the first point at the end"),
            label=label))
    if len(set(points)) < 3:
        raise CapImportError.translatable(path, N_(
            "the polygon of %(label)s has %(count)s distinct points; a ring needs at least 3 "
            "(CAP 1.2 §3.2.4)"), label=label, count=len(set(points)))
    ring = Polygon([(lon, lat) for lat, lon in points])
    problem = ring_problem(ring, label)
    if problem is not None:
        raise CapImportError(path, f"{problem}; fix the area upstream")
    _check_order(ring, path, label, country)
    return ring


def _check_order(geom: BaseGeometry, path: str, label: str, country: str | None) -> None:
    if country is None:
        return
    if not near_country(geom, country) and near_country(swapped(geom), country):
        raise CapImportError(path, (
            f"{label} lies outside {COUNTRIES[country]} as written but inside it with "
            f"latitude and longitude swapped: the points are written lon,lat, CAP needs "
            f"lat,lon (CAP 1.2 §3.2.4); fix the coordinate order upstream"))


def _circle(element: etree._Element, label: str, country: str | None, areas: _Areas,
            warnings: list[Issue]) -> BaseGeometry | None:
    path = element_path(element)
    try:
        lat, lon, radius = parse_circle_text(element.text)
    except ValueError as exc:
        raise CapImportError(path, f"{exc} (CAP 1.2 §3.2.4)") from None
    problem = range_problem([(lat, lon)])
    if problem:
        raise CapImportError(path, f"centre: {problem.removeprefix('point 1: ')} "
                                   f"(WGS 84 lat,lon; CAP 1.2 §3.2.4)")
    _check_order(Point(lon, lat), path, label, country)
    if radius == 0:
        # Legal CAP (an epicentre, a spill): a place, not an area to alert.
        areas.points.append((path, label, lat, lon))
        return None
    large = large_circle_warning(radius, country)
    if large is not None:
        warnings.append(Issue.translatable(path, N_("%(problem)s; check the area in the "
                                                    "composer"), problem=large))
    return circle_geometry(lat, lon, radius)


def _read_areas(info: etree._Element, ns: str, country: str | None, areas: _Areas,
                warnings: list[Issue]) -> None:
    for area in info.findall(f"{{{ns}}}area"):
        desc = _one_line(area.findtext(f"{{{ns}}}areaDesc") or "")
        label = phrase(N_("area %(name)s"), name=repr(desc)) if desc else phrase(N_("the area"))
        found = False
        for element in area:
            if not isinstance(element.tag, str):
                continue
            name = etree.QName(element).localname
            if name not in ("polygon", "circle"):
                continue
            key = (name, " ".join((element.text or "").split()))
            if key in areas.seen:  # the same shape repeated in another language's info
                found = True
                continue
            areas.seen.add(key)
            geom = (_polygon(element, label, country, warnings) if name == "polygon"
                    else _circle(element, label, country, areas, warnings))
            if geom is not None:
                areas.shapes.append(geom)
                found = True
        for geocode in area.findall(f"{{{ns}}}geocode"):
            value_name = _one_line(geocode.findtext(f"{{{ns}}}valueName") or "")
            value = _one_line(geocode.findtext(f"{{{ns}}}value") or "")
            if value_name.upper() not in NIS_VALUE_NAMES:
                continue
            if not _NIS.match(value):
                warnings.append(Issue.translatable(element_path(geocode), N_(
                    "NIS code %(value)s is not 5 digits; left out"), value=repr(value)))
                continue
            found = True
            if value not in areas.nis:
                areas.nis.append(value)
        if desc and desc not in areas.names and found:
            areas.names.append(desc)
        if not found and not any(p[0].startswith(element_path(area) + "/")
                                 for p in areas.points):
            warnings.append(Issue.translatable(element_path(area), N_(
                "%(label)s has no polygon, circle or NIS geocode that places it on a map; "
                "left out"), label=label))


def _point_text(label: str, lat: float, lon: float) -> str:
    return phrase(N_("the circle of %(label)s is a point, not an area: centre %(lat)s,%(lon)s "
                     "(lat,lon), radius 0 km"), label=label, lat=f"{lat:g}", lon=f"{lon:g}")


# ----------------------------------------------------------------------------- alert


def _text(parent: etree._Element, ns: str, name: str) -> str:
    return (parent.findtext(f"{{{ns}}}{name}") or "").strip()


def _kind(status: str, urgency: str, severity: str) -> str:
    if status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    if urgency in _ALERT_URGENCIES and severity in _ALERT_SEVERITIES:
        return "alert"
    return "warning"


def _cap_params(info: etree._Element, ns: str, warnings: list[Issue],
                blocking: dict[str, str]) -> dict[str, str]:
    params: dict[str, str] = {}
    allowed = {"category": CATEGORIES, "urgency": URGENCIES, "severity": SEVERITIES,
               "certainty": CERTAINTIES}
    for name, values in allowed.items():
        value = _text(info, ns, name)
        if value in values:
            params[name] = value
            continue
        if value:
            warnings.append(Issue.translatable(f"{element_path(info)}/{name}", N_(
                "%(value)s is not a CAP 1.2 %(name)s; left out"), value=repr(value), name=name))
        # CAP 1.2 §3.2.2: required in every info. Not guessed: the operator chooses.
        blocking[name] = (f"{value!r} is not a CAP 1.2 {name}" if value else
                          f"the upstream alert has no {name}") + (
            f" ({element_path(info)}/{name}); choose one in the composer before launch")
    event = _one_line(_text(info, ns, "event"))
    if not event:
        blocking["event"] = (f"the upstream alert has no event ({element_path(info)}/event); "
                             f"write one in the composer before launch")
    if len(event) > _MAX_EVENT:
        warnings.append(Issue.translatable(f"{element_path(info)}/event", N_(
            "longer than %(limit)s characters; shortened"), limit=_MAX_EVENT))
        event = event[:_MAX_EVENT - len(ELLIPSIS)].rstrip() + ELLIPSIS
    if event:
        params["event"] = event
    return params


#: CAP 1.2 §3.2.1: required in every alert, and what Tocsin needs to trace the draft.
_REQUIRED_ALERT = ("identifier", "sender", "sent", "status", "msgType", "scope")


def _alert_problems(root: etree._Element, ns: str) -> list[Issue]:
    """The alert-level problems that refuse an import (see the module docstring)."""
    problems = [Issue(name, "missing: CAP 1.2 §3.2.1 requires it in every alert")
                for name in _REQUIRED_ALERT if not _text(root, ns, name)]
    problems += identifier_problems(root)
    scope = _text(root, ns, "scope")
    if scope and scope != "Public":
        problems.append(Issue("scope", f"{scope!r}: the upstream alert is not for the public "
                                       f"(CAP 1.2 §3.2.1); Tocsin warns the public only"))
    return problems


def _parse(xml_bytes: bytes | bytearray | memoryview, max_bytes: int) -> etree._Element:
    try:
        return parse_cap(xml_bytes, max_bytes=max_bytes, accept_cap11=True)
    except CapParseError as exc:
        where, _, reason = str(exc).partition(": ")
        raise CapImportError(where if where == "alert" else "document", reason) from None


def import_cap(
    xml_bytes: bytes | bytearray | memoryview,
    *,
    country: str | None = "BE",
    sms_max_segments: int = DEFAULT_SMS_SEGMENTS,
    now: dt.datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ImportedAlert:
    """Read an upstream CAP 1.2 (or 1.1) alert as draft content (see the module docstring).

    Args:
        xml_bytes: the raw document; parsed with the hardened parser (no DTD,
            no entities, no network, at most ``max_bytes`` = 1 MiB by default,
            encoding from the XML declaration).
        country: deployment country (``"BE"``) for the coordinate-order check;
            None skips it.
        sms_max_segments: longest base SMS text, in segments (default 3).
        now: the current time (aware) for the "already expired" warning.
        max_bytes: size limit in bytes.

    Mapping: each ``info`` in fr / nl / de / en (``fr-BE`` and ``fr`` are both
    fr; the first ``info`` per language wins) gives ``cap_event``,
    ``cap_headline``, ``cap_description``, ``cap_instruction`` and the base SMS
    text (headline + instruction, else description; :func:`base_sms_text`).
    ``status`` Test -> test, Exercise -> exercise, Actual (or Draft) -> alert
    when urgency is Immediate/Expected and severity Extreme/Severe, else
    warning (values of the first kept ``info``). Polygons, circles (drawn in
    EPSG:3812) and NIS geocodes of the kept ``info`` blocks make the area.

    Returns:
        An :class:`ImportedAlert`.

    Raises:
        CapImportError: hostile, oversize or malformed XML (``document``), a
            root that is not CAP (``alert``), ``status`` System or unknown,
            ``msgType`` Ack/Error, no ``info`` or none in a language Tocsin
            sends, no text, a polygon or circle that is not well-formed, out of
            range, self-intersecting or written lon,lat, a circle radius above
            20,000 km, or no area at all (a circle of radius 0 is a point, not an
            area: left out with a warning beside other shapes, an error naming
            it when it is the only one).
    """
    if country is not None and country not in COUNTRIES:
        raise ValueError(f"country: {country!r} is not one of {', '.join(COUNTRIES)}")
    root = _parse(xml_bytes, max_bytes)
    version = cap_version(root)
    ns = etree.QName(root).namespace or ""
    warnings: list[Issue] = []
    if version == "1.1":
        warnings.append(Issue.translatable("alert", N_(
            "CAP 1.1 document: read as CAP 1.2 (Tocsin publishes CAP 1.2 only)")))
    schema = schema_issues(as_cap12(root) if version == "1.1" else root)
    for issue in schema:
        warnings.append(Issue.translatable(issue.element, N_(
            "not valid CAP 1.2, imported anyway: %(detail)s"), detail=issue.message))

    refusals = _alert_problems(root, ns)
    status = _text(root, ns, "status")
    msg_type = _text(root, ns, "msgType") or "Alert"
    if status == "System":
        raise CapImportError.translatable("status", N_(
            "System messages are for the alerting network itself (CAP 1.2 §3.2.1), not for "
            "the public; not imported"))
    if status not in ("Actual", "Exercise", "Test", "Draft"):
        raise CapImportError.translatable("status", N_(
            "%(value)s is not a CAP 1.2 status (Actual, Exercise, System, Test, Draft)"),
            value=repr(status))
    if status == "Draft":
        warnings.append(Issue.translatable("status", N_(
            "the upstream alert is a Draft (not actionable, CAP 1.2 §3.2.1); imported as a "
            "real alert draft")))
    if msg_type in ("Ack", "Error"):
        raise CapImportError.translatable("msgType", N_(
            "an %(msg_type)s message acknowledges or rejects other messages and carries no "
            "alert; not imported"), msg_type=msg_type)
    if msg_type in ("Update", "Cancel"):
        upstream_refs = _text(root, ns, "references")
        warnings.append(Issue.translatable("msgType", N_(
            "the upstream message is a CAP %(msg_type)s of %(references)s; the draft is a new "
            "Tocsin message, not a CAP %(msg_type)s of one of its campaigns"),
            msg_type=msg_type,
            references=upstream_refs or phrase(N_("an earlier alert"))))

    infos = root.findall(f"{{{ns}}}info")
    if not infos:
        raise CapImportError.translatable("info", N_(
            "the alert has no info block: no text and no area to import (CAP 1.2 §3.2.2)"))
    kept: list[tuple[str, etree._Element]] = []
    for info in infos:
        tag = _text(info, ns, "language") or DEFAULT_CAP_LANGUAGE
        lang = LANGUAGES.get(tag.split("-")[0].lower())
        if lang is None:
            warnings.append(Issue.translatable(f"{element_path(info)}/language", N_(
                "%(tag)s is not a language Tocsin sends (%(languages)s); this info is left "
                "out"), tag=repr(tag), languages=", ".join(LANGUAGES)))
        elif any(lang == k for k, _ in kept):
            warnings.append(Issue.translatable(f"{element_path(info)}/language", N_(
                "a second info in %(tag)s (%(lang)s); only the first one is used"),
                tag=repr(tag), lang=lang))
        else:
            kept.append((lang, info))
    if not kept:
        found = ", ".join(sorted({_text(i, ns, "language") or DEFAULT_CAP_LANGUAGE
                                  for i in infos}))
        raise CapImportError.translatable("info", N_(
            "no info block in a language Tocsin sends (%(languages)s); found %(found)s"),
            languages=", ".join(LANGUAGES), found=found)

    texts: dict[str, str] = {}
    content: dict[str, dict[str, str]] = {}
    for lang, info in kept:
        fields = {
            "cap_event": _one_line(_text(info, ns, "event")),
            "cap_headline": _one_line(_text(info, ns, "headline")),
            "cap_description": _clean(info.findtext(f"{{{ns}}}description")),
            "cap_instruction": _clean(info.findtext(f"{{{ns}}}instruction")),
        }
        sms = base_sms_text(fields["cap_headline"], fields["cap_instruction"],
                            fields["cap_description"], fields["cap_event"], sms_max_segments)
        if not sms:
            warnings.append(Issue.translatable(element_path(info), N_(
                "no event, headline, description or instruction: nothing to say; left out")))
            continue
        full = joined_sms_text(fields["cap_headline"], fields["cap_instruction"],
                               fields["cap_description"], fields["cap_event"])
        if sms != full:
            warnings.append(Issue.translatable(element_path(info), N_(
                "the SMS text (%(lang)s) was shortened to %(length)s characters to fit in "
                "%(segments)s SMS segments; check it before launch"),
                lang=lang, length=len(sms), segments=sms_max_segments))
        texts[lang] = sms
        content[lang] = {"sms": sms, **{k: v for k, v in fields.items() if v}}
    if not texts:
        raise CapImportError.translatable("info", N_("no info block has any text to send"))

    areas = _Areas()
    for _, info in kept:
        _read_areas(info, ns, country, areas, warnings)
    if not areas.shapes and not areas.nis and areas.points:
        path, label, lat, lon = areas.points[0]
        raise CapImportError.translatable(path, N_(
            "%(point)s (CAP 1.2 §3.2.4 allows it, e.g. for an epicentre); the alert has no "
            "other shape, so there is no area to alert. Write the alert in the composer and "
            "draw the area to warn there, or ask the sender for a polygon or a circle with a "
            "radius"), point=_point_text(label, lat, lon))
    for path, label, lat, lon in areas.points:
        warnings.append(Issue.translatable(path, N_(
            "%(point)s; left out, the alert's other shapes make the area"),
            point=_point_text(label, lat, lon)))
    if not areas.shapes and not areas.nis:
        raise CapImportError.translatable("area", N_(
            "no area that can be placed on a map: the alert needs a polygon, a circle or a "
            "NIS geocode (CAP 1.2 §3.2.4)"))
    area = shapely.union_all(areas.shapes) if areas.shapes else None

    first = kept[0][1]
    blocking: dict[str, str] = {}
    cap_params = _cap_params(first, ns, warnings, blocking)
    kind = _kind(status, cap_params.get("urgency", ""), cap_params.get("severity", ""))
    expiries = []
    for _, info in kept:
        expiry = parse_cap_datetime(info.findtext(f"{{{ns}}}expires"))
        problem = utc_problem(expiry) if expiry is not None else None
        if problem is not None:
            warnings.append(Issue(f"{element_path(info)}/expires", (
                f"{problem}; left out: the draft has no expiry, set one in the composer")))
        elif expiry is not None:
            expiries.append(expiry)
    expires = min(expiries) if expiries else None
    now = now or dt.datetime.now(dt.UTC)
    if expires is not None and expires <= now:
        warnings.append(Issue.translatable(f"{element_path(first)}/expires", N_(
            "the upstream alert expired at %(at)s; set a new expiry before launch"),
            at=expires.isoformat()))
        blocking["expires"] = (f"the upstream alert expired at {expires.isoformat()} "
                               f"({element_path(first)}/expires); set a new expiry, in the "
                               f"future, before launch")
    sent = parse_cap_datetime(root.findtext(f"{{{ns}}}sent"))
    problem = utc_problem(sent) if sent is not None else None
    if problem is not None:
        warnings.append(Issue("sent", f"{problem}; left out"))
        sent = None
    references = _text(root, ns, "references") or None
    if references and sent is not None:
        for n, ref_sender, ref_sent in later_references(references, sent):
            warnings.append(Issue("references", (
                f"reference {n} ({ref_sender}) was sent {ref_sent}, after the alert itself "
                f"({sent.isoformat()}); references name earlier messages (CAP 1.2 §3.2.1)")))
    if refusals:
        raise CapImportError(refusals[0].element, refusals[0].message, refusals)
    area_name = ", ".join(areas.names)
    if len(area_name) > 300:
        area_name = area_name[:297].rstrip(" ,") + ELLIPSIS
    return ImportedAlert(
        cap_version=version,
        identifier=_text(root, ns, "identifier"),
        sender=_text(root, ns, "sender"),
        sent=sent,
        status=status, msg_type=msg_type,
        references=references,
        kind=kind, texts=texts, content=content, area=area, area_nis=areas.nis,
        area_name=area_name, cap_params=cap_params, expires=expires, warnings=warnings,
        blocking=blocking,
    )
