"""Alert areas: parse GeoJSON drawn on the map, clip to a territory, measure (SPEC F3, F16).

Geometries are shapely objects in WGS84 lon/lat (GeoJSON axis order, RFC 7946
§3.1.1). Areas are measured in Belgian Lambert 2008 (EPSG:3812), an
equal-area-enough conformal projection for Belgium.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
import sqlalchemy as sa
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity
from sqlalchemy.orm import Session

from tocsin.authorities.models import Authority
from tocsin.core.errors import InputError, Phrase, phrase, warning
from tocsin.core.i18n import N_
from tocsin.geo.naming import Place, municipality_place
from tocsin.geo.reference import polygonal

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAX_VERTICES = 100_000
#: Largest GeoJSON text accepted, in bytes: 100,000 vertices at ~40 bytes each fit in 4 MB.
MAX_GEOJSON_BYTES = 16 * 1024 * 1024
#: Deepest JSON nesting accepted (arrays and objects). A MultiPolygon in a Feature
#: in a FeatureCollection is 7 levels deep; deeper input is refused before
#: ``json.loads`` so that it can never exhaust the parser's recursion.
MAX_JSON_DEPTH = 64
#: Deepest nesting of GeometryCollections (RFC 7946 §3.1.8 advises against any).
MAX_COLLECTION_DEPTH = 4
MIN_AREA_M2 = 1.0  # below this an intersection is a sliver along a shared border
#: A cut is reported when more than this share of the area lies outside the territory…
CUT_WARNING_SHARE = 0.01
#: …or at least this many km² (a 1 % cut of a province-wide area is a town).
CUT_WARNING_KM2 = 1.0
#: Generous bounding box of Belgium (lon/lat, degrees), used for the swapped-axes hint.
BELGIUM_BBOX = (2.3, 49.3, 6.5, 51.6)

_POLYGONAL_TYPES = ("Polygon", "MultiPolygon")
_GEOMETRY_TYPES = (
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection",
)
_AT_RE = re.compile(r"^(?P<what>[^\[]+)\[(?P<x>[-0-9.eE+]+) (?P<y>[-0-9.eE+]+)\]$")


class AreaError(InputError):
    """An area that cannot be used, with the input ``field`` and a human ``reason``."""


@lru_cache(maxsize=1)
def _to_lambert2008() -> Transformer:
    return Transformer.from_crs("EPSG:4326", "EPSG:3812", always_xy=True)


def area_km2(geom: BaseGeometry) -> float:
    """Area of ``geom`` (WGS84 lon/lat) in square kilometres, in EPSG:3812 (Lambert 2008)."""
    if geom.is_empty:
        return 0.0
    transformer = _to_lambert2008()

    def project(x: NDArray[Any], y: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        return transformer.transform(x, y)  # type: ignore[no-any-return]

    projected = shapely.transform(geom, project, interleaved=False)
    return float(projected.area) / 1e6


def _in_belgium(lon: float, lat: float) -> bool:
    min_lon, min_lat, max_lon, max_lat = BELGIUM_BBOX
    return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def _swap_hint(points: list[tuple[float, float]]) -> str:
    if points and all(_in_belgium(lat, lon) for lon, lat in points):
        return phrase(N_(
            "; the coordinates look like lat,lon: GeoJSON positions are lon,lat "
            "(RFC 7946 §3.1.1), swapping them would place the area in Belgium"))
    return ""


#: GEOS's validity problems (``explain_validity``, lower case) in an operator's words.
_GEOS_PROBLEMS = {
    "self-intersection": N_("the outline crosses itself"),
    "ring self-intersection": N_("the outline crosses itself"),
    "too few points": N_("too few points"),
    "hole lies outside shell": N_("a hole lies outside the outline"),
    "holes are nested": N_("holes are nested"),
    "interior is disconnected": N_("the inside is cut in two"),
    "nested shells": N_("outlines are nested"),
    "duplicate rings": N_("a ring is repeated"),
    "invalid coordinate": N_("a position is not a number"),
    "ring is not closed": N_("a ring is not closed"),
}


def _describe_invalidity(geom: BaseGeometry) -> Phrase | str:
    """Why ``geom`` is not valid, in an operator's words: a :class:`Phrase` (translated
    where shown) such as "the outline crosses itself at lon 4.300000, lat 50.750000"."""
    explanation = explain_validity(geom)
    match = _AT_RE.match(explanation)
    if match is None:
        return explanation
    what = match["what"].strip().lower()
    words: Any = phrase(_GEOS_PROBLEMS[what]) if what in _GEOS_PROBLEMS else what
    if "self-intersection" in what:
        words = phrase(N_("the outline crosses itself"))
    return phrase(N_("%(what)s at lon %(lon)s, lat %(lat)s"), what=words,
                  lon=f"{float(match['x']):.6f}", lat=f"{float(match['y']):.6f}")


def _check_positions(
    coords: Any, geometry_type: str, field: str
) -> list[list[list[tuple[float, float]]]]:
    """Polygons as lists of rings of (lon, lat), checked per RFC 7946 §3.1.6."""
    polygons = [coords] if geometry_type == "Polygon" else coords
    if not isinstance(polygons, list):
        raise AreaError(field, N_("%(geometry_type)s coordinates must be an array"),
                geometry_type=geometry_type)
    out: list[list[list[tuple[float, float]]]] = []
    vertices = 0
    for p, rings in enumerate(polygons, start=1):
        if not isinstance(rings, list) or not rings:
            raise AreaError(field, N_("polygon %(p)s has no rings"), p=p)
        checked_rings: list[list[tuple[float, float]]] = []
        for r, ring in enumerate(rings, start=1):
            where = phrase(N_("polygon %(p)s, ring %(r)s"), p=p, r=r)
            if not isinstance(ring, list):
                raise AreaError(field, N_("%(where)s must be an array of positions"), where=where)
            vertices += len(ring)
            if vertices > MAX_VERTICES:
                raise AreaError(field, N_("has more than %(MAX_VERTICES)s vertices; simplify it"),
                        MAX_VERTICES=f"{MAX_VERTICES:,}")
            points: list[tuple[float, float]] = []
            for position in ring:
                if (
                    not isinstance(position, list | tuple)
                    or len(position) < 2
                    or not all(
                        isinstance(v, int | float) and not isinstance(v, bool)
                        for v in position[:2]
                    )
                ):
                    raise AreaError(field,
                            N_("%(where)s: %(position)s is not a [lon, lat] position"), where=where,
                            position=f"{position!r}")
                lon, lat = float(position[0]), float(position[1])
                if not (math.isfinite(lon) and math.isfinite(lat)):
                    raise AreaError(field, N_("%(where)s: %(position)s is not a finite position"),
                            where=where, position=f"{position!r}")
                points.append((lon, lat))
            bad = [(x, y) for x, y in points if not (-180 <= x <= 180 and -90 <= y <= 90)]
            if bad:
                lon, lat = bad[0]
                raise AreaError(
                    field,
                    N_(
                              "%(where)s: position [%(lon)s, %(lat)s] is out of range (longitude "
                              "-180..180, latitude -90..90)%(value)s"), where=where, lon=lon,
                                      lat=lat, value=_swap_hint(points),
                )
            if len(points) < 4:
                raise AreaError(
                    field, N_("%(where)s has %(value)s positions; a ring needs at least 4"),
                            where=where, value=len(points)
                )
            if points[0] != points[-1]:
                raise AreaError(
                    field, N_("%(where)s is not closed: its first and last positions differ"),
                            where=where
                )
            checked_rings.append(points)
        out.append(checked_rings)
    return out


def _geometry_to_polygon(geometry: Any, field: str, depth: int = 0,
                         repairs: list[dict[str, Any]] | None = None
                         ) -> Polygon | MultiPolygon:
    if not isinstance(geometry, dict) or geometry.get("type") not in _GEOMETRY_TYPES:
        raise AreaError(field, N_("is not a GeoJSON geometry (RFC 7946 §3.1)"))
    kind = geometry["type"]
    if kind == "GeometryCollection":
        if depth >= MAX_COLLECTION_DEPTH:
            raise AreaError(field, N_(
                          "is nested too deeply: GeometryCollections more than "
                          "%(MAX_COLLECTION_DEPTH)s levels deep (RFC 7946 §3.1.8 advises "
                          "against nesting them at all)"),
                                  MAX_COLLECTION_DEPTH=MAX_COLLECTION_DEPTH)
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise AreaError(field, N_("GeometryCollection has no 'geometries' array"))
        return _union_polygonal(members, field, what="geometry", depth=depth + 1,
                                repairs=repairs)
    if kind not in _POLYGONAL_TYPES:
        hint = {"Point": "; for a point and a radius give a circle (LAT,LON,RADIUS_KM)",
                "MultiPoint": "; for points and a radius give circles (LAT,LON,RADIUS_KM)",
                "LineString": "; a line encloses no area: close it into a polygon",
                "MultiLineString": "; lines enclose no area: close them into polygons"}
        raise AreaError(field, N_("must be a Polygon or MultiPolygon, not a %(kind)s%(value)s"),
                kind=kind, value=hint.get(kind, ''))
    polygons = _check_positions(geometry.get("coordinates"), kind, field)
    points = [pt for rings in polygons for ring in rings for pt in ring]
    # Tocsin alerts only inside Belgium (SPEC F3): an outline that lies wholly
    # off the coast of Somalia but in Belgium once its axes are swapped was
    # written lat,lon (a frequent slip: CAP polygons are lat,lon, GeoJSON lon,lat).
    if not any(_in_belgium(lon, lat) for lon, lat in points) and _swap_hint(points):
        raise AreaError(field, N_("lies outside Belgium%(value)s"), value=_swap_hint(points))
    if len(polygons) > 1:
        return _union_of_parts(polygons, field, repairs)
    geom = shape({"type": "Polygon", "coordinates": polygons[0]})
    if geom.is_empty:
        raise AreaError(field, N_("contains no polygon"))
    if not geom.is_valid:
        if repairs is None:
            raise AreaError(field, N_("is not a valid polygon: %(value)s"),
                    value=_describe_invalidity(geom))
        return repair_polygon(geom, field, phrase(N_("the polygon")), repairs)
    return geom


#: The repair report per (a part of a MultiPolygon, more than one part kept, zero-width
#: parts dropped).
_REPAIRED = {
    (False, False, False): N_("The polygon was not valid (%(problem)s); it was repaired into "
                              "%(parts)s part keeping every lobe."),
    (False, True, False): N_("The polygon was not valid (%(problem)s); it was repaired into "
                             "%(parts)s parts keeping every lobe."),
    (False, False, True): N_("The polygon was not valid (%(problem)s); it was repaired into "
                             "%(parts)s part keeping every lobe; parts of zero width (spikes, "
                             "folds) cover no ground and were dropped."),
    (False, True, True): N_("The polygon was not valid (%(problem)s); it was repaired into "
                            "%(parts)s parts keeping every lobe; parts of zero width (spikes, "
                            "folds) cover no ground and were dropped."),
    (True, False, False): N_("Polygon %(p)s was not valid (%(problem)s); it was repaired into "
                             "%(parts)s part keeping every lobe."),
    (True, True, False): N_("Polygon %(p)s was not valid (%(problem)s); it was repaired into "
                            "%(parts)s parts keeping every lobe."),
    (True, False, True): N_("Polygon %(p)s was not valid (%(problem)s); it was repaired into "
                            "%(parts)s part keeping every lobe; parts of zero width (spikes, "
                            "folds) cover no ground and were dropped."),
    (True, True, True): N_("Polygon %(p)s was not valid (%(problem)s); it was repaired into "
                           "%(parts)s parts keeping every lobe; parts of zero width (spikes, "
                           "folds) cover no ground and were dropped."),
}


def repair_polygon(geom: BaseGeometry, field: str, label: str,
                   repairs: list[dict[str, Any]]) -> Polygon | MultiPolygon:
    """``geom`` (an invalid Polygon) repaired with ``shapely.make_valid``, the repair
    appended to ``repairs``.

    ``make_valid`` (GEOS "linework" method) keeps every lobe of a bowtie or of a
    ring that crosses itself, as separate parts; ``buffer(0)``, which drops lobes
    wound the wrong way, is never used. Parts the repair leaves as lines or points
    (a spike or a fold of zero width) cover no ground and are dropped; the report
    says so. The repaired geometry is checked to keep the whole surface the
    outline encloses (its area is at least the input's unsigned shoelace area of
    each lobe, to 1e-9 relative): a repair that would lose ground is refused.

    Appends ``{"code": "area_repaired", "field", "label", "problem", "at": [lon, lat]
    or None, "parts": number of polygons kept, "dropped": "zero-width parts"|None,
    "message"}``. Raises AreaError(field, reason naming the problem) when nothing
    polygonal is left (the outline encloses no area).
    """
    problem = _describe_invalidity(geom)
    match = _AT_RE.match(explain_validity(geom))
    at = [float(match["x"]), float(match["y"])] if match else None
    fixed = shapely.make_valid(geom)
    kept = polygonal(fixed)
    if kept.is_empty or area_km2(kept) * 1e6 < MIN_AREA_M2:
        raise AreaError(field, N_("%(label)s encloses no area (%(problem)s); draw it again"),
                label=label, problem=problem)
    dropped = any(not isinstance(p, Polygon | MultiPolygon) and not p.is_empty
                  for p in shapely.get_parts(fixed))
    # No lobe lost: every vertex of the outline is still on or inside the area.
    vertices = shapely.points(shapely.get_coordinates(geom))
    lost = ~shapely.dwithin(vertices, kept, 1e-9)
    if dropped:
        lines = shapely.union_all([p for p in shapely.get_parts(fixed)
                                   if not isinstance(p, Polygon | MultiPolygon)])
        lost &= ~shapely.dwithin(vertices, lines, 1e-9)
    if lost.any():  # pragma: no cover - make_valid keeps every vertex
        raise AreaError(field, N_(
                      "%(label)s is not a valid polygon (%(problem)s) and cannot be "
                      "repaired without losing part of it; draw it again"), label=label,
                              problem=problem)
    parts = len(shapely.get_parts(kept))
    number = label.removeprefix("polygon ") if label.startswith("polygon ") else None
    template = _REPAIRED[(number is not None, parts != 1, dropped)]
    repairs.append(warning(
        "area_repaired", field, template,
        extra={"label": label, "problem": problem, "at": at, "parts": parts,
               "dropped": "zero-width parts" if dropped else None},
        problem=problem, parts=parts, **({"p": number} if number is not None else {})))
    return kept


def _union_of_parts(polygons: list[list[list[tuple[float, float]]]],
                    field: str, repairs: list[dict[str, Any]] | None = None
                    ) -> Polygon | MultiPolygon:
    """The union of the parts of a MultiPolygon, each checked on its own.

    Parts that overlap or touch are merged: operators draw a multi-part area as
    several shapes, and a point in two of them is simply in the area (RFC 7946
    §3.1.7 asks for non-overlapping parts, but a union is what was meant). A part
    whose own outline crosses itself is still an error, naming the part.
    """
    parts: list[BaseGeometry] = []
    for p, rings in enumerate(polygons, start=1):
        part = shape({"type": "Polygon", "coordinates": rings})
        if part.is_empty:
            continue
        if not part.is_valid:
            if repairs is None:
                raise AreaError(field, N_("polygon %(p)s is not a valid polygon: %(value)s"), p=p,
                        value=_describe_invalidity(part))
            part = repair_polygon(part, field, phrase(N_("polygon %(p)s"), p=p), repairs)
        parts.append(part)
    merged = polygonal(shapely.union_all(parts)) if parts else Polygon()
    if merged.is_empty:
        raise AreaError(field, N_("contains no polygon"))
    return merged


def _union_polygonal(items: list[Any], field: str, what: str,
                     depth: int = 0, repairs: list[dict[str, Any]] | None = None
                     ) -> Polygon | MultiPolygon:
    parts: list[BaseGeometry] = []
    seen: list[str] = []
    for i, item in enumerate(items, start=1):
        geometry = item.get("geometry") if what == "feature" and isinstance(item, dict) else item
        if what == "feature" and (not isinstance(item, dict) or item.get("type") != "Feature"):
            raise AreaError(field, N_("feature %(i)s is not a GeoJSON Feature"), i=i)
        kind = geometry.get("type") if isinstance(geometry, dict) else None
        seen.append(str(kind))
        # Markers and lines drawn beside the area (labels, routes) are not part of it.
        if kind in _POLYGONAL_TYPES or kind == "GeometryCollection":
            try:
                parts.append(_geometry_to_polygon(geometry, field, depth, repairs))
            except AreaError as exc:
                if "nested too deeply" in exc.reason:
                    raise
                raise AreaError(field, N_("%(what)s %(i)s: %(reason_)s"),
                                what=phrase(N_("feature") if what == "feature" else N_("geometry")),
                                i=i, reason_=phrase(exc.template, **exc.params)) from None
    if not parts:
        found = ", ".join(sorted(set(seen))) or "nothing"
        raise AreaError(field, N_("contains no polygon (found: %(found)s)"), found=found)
    merged = polygonal(shapely.union_all(parts))
    if merged.is_empty:
        raise AreaError(field, N_("contains no polygon"))
    return merged


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str) -> int:
    """Deepest nesting of arrays and objects in JSON ``text``, brackets in strings ignored.

    Linear time and constant stack (regular expressions and numpy), so it is
    safe on hostile input; unbalanced text gives the depth reached.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _load_json(text: str, field: str) -> Any:
    """``json.loads`` of GeoJSON text, refused first when too large or nested too deeply."""
    size = len(text.encode("utf-8")) if len(text) * 4 > MAX_GEOJSON_BYTES else len(text)
    if size > MAX_GEOJSON_BYTES:
        raise AreaError(field, N_(
                      "is %(value)s MiB of GeoJSON; at most %(value2)s MiB is accepted "
                      "(simplify the outline)"), value=f"{size / 1024 / 1024:.1f}",
                              value2=MAX_GEOJSON_BYTES // (1024 * 1024))
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise AreaError(field, N_(
                      "is nested too deeply: arrays and objects %(depth)s levels deep, at "
                      "most %(MAX_JSON_DEPTH)s make sense in GeoJSON"), depth=f"{depth:,}",
                              MAX_JSON_DEPTH=MAX_JSON_DEPTH)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AreaError(
            field, N_("is not JSON: %(msg)s at line %(lineno)s, column %(colno)s"), msg=exc.msg,
                    lineno=exc.lineno, colno=exc.colno
        ) from None
    except RecursionError:  # not reached after the depth check; a last guard
        raise AreaError(field, N_("is nested too deeply to be read as JSON")) from None


def parse_area_geojson(data: str | bytes | dict[str, Any], field: str = "area",
                       repairs: list[dict[str, Any]] | None = None) -> BaseGeometry:
    """The (Multi)Polygon described by GeoJSON ``data`` (RFC 7946), WGS84 lon/lat.

    Accepts a bare Polygon or MultiPolygon geometry, a Feature holding one, a
    FeatureCollection (the union of its polygonal features; points and lines
    are ignored) or a GeometryCollection. Rings must be closed and have at
    least 4 positions (RFC 7946 §3.1.6); at most 100,000 vertices in total.

    Returns a valid shapely Polygon or MultiPolygon.

    Raises AreaError(field, reason) when ``data`` is not UTF-8 or not JSON, larger
    than :data:`MAX_GEOJSON_BYTES` (16 MiB), nested deeper than
    :data:`MAX_JSON_DEPTH` levels (checked before parsing: hostile input such as
    ``[[[[…`` cannot exhaust the parser), GeometryCollections nested deeper than
    :data:`MAX_COLLECTION_DEPTH`, not
    GeoJSON, holds no polygon or the wrong geometry type, has out-of-range
    coordinates (with a hint when they look like lat,lon), too many vertices,
    or a self-intersecting outline (the crossing point is named).

    ``repairs``: a list to repair invalid outlines instead (self-intersections,
    bowties, holes outside their shell): each is repaired by :func:`repair_polygon`
    (every lobe kept) and reported by appending to the list. Without it
    (``None``, the default) an invalid outline is refused.
    """
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_GEOJSON_BYTES:
            raise AreaError(field, N_(
                          "is %(value)s MiB of GeoJSON; at most %(value2)s MiB is accepted "
                          "(simplify the outline)"), value=f"{len(data) / 1024 / 1024:.1f}",
                                  value2=MAX_GEOJSON_BYTES // (1024 * 1024))
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AreaError(field, N_("is not UTF-8 text (byte %(start)s)"),
                    start=exc.start) from None
    if isinstance(data, str):
        data = _load_json(data, field)
    if not isinstance(data, dict) or "type" not in data:
        raise AreaError(field, N_("is not a GeoJSON object (no 'type' member)"))
    kind = data["type"]
    if kind == "FeatureCollection":
        features = data.get("features")
        if not isinstance(features, list):
            raise AreaError(field, N_("FeatureCollection has no 'features' array"))
        return _union_polygonal(features, field, what="feature", repairs=repairs)
    if kind == "Feature":
        geometry = data.get("geometry")
        if geometry is None:
            raise AreaError(field, N_("Feature has no geometry"))
        return _geometry_to_polygon(geometry, field, repairs=repairs)
    if kind in _GEOMETRY_TYPES:
        return _geometry_to_polygon(data, field, repairs=repairs)
    raise AreaError(field, N_("%(kind)s is not a GeoJSON type"), kind=f"{kind!r}")


@lru_cache(maxsize=1024)
def _territory_from_text(text: str) -> BaseGeometry:
    geom = shapely.from_geojson(text)
    shapely.prepare(geom)
    return geom


def territory_of(authority: Authority) -> BaseGeometry:
    """The authority's territory as a (prepared) shapely (Multi)Polygon, WGS84.

    Cached by territory text, so repeated calls do not re-parse the GeoJSON.
    Do not mutate the result: it is shared.
    """
    return _territory_from_text(authority.territory)


def clip_to_territory(
    area: BaseGeometry,
    territory: BaseGeometry | Authority,
    name: str | None = None,
    field: str = "area",
) -> Polygon | MultiPolygon:
    """``area`` clipped to ``territory`` (an Authority or a geometry), SPEC F3/F16.

    ``name`` is used in the error message (default: the authority's French
    name, or "the authority"). Returns the polygonal intersection.

    Raises AreaError(field, "lies outside the territory of <name>") when the
    intersection is empty or smaller than 1 m² (in EPSG:3812); the reason
    hints at swapped lat,lon when swapping would put the area inside, and
    says where the area lies (``lat,lon``) when it is outside Belgium.
    """
    if isinstance(territory, Authority):
        name = name or territory.name("fr")
        territory = territory_of(territory)
    name = name or phrase(N_("the authority"))
    clipped = polygonal(shapely.intersection(area, territory))
    if clipped.is_empty or area_km2(clipped) * 1e6 < MIN_AREA_M2:
        hint = ""
        swapped = shapely.transform(area, lambda xy: xy[:, ::-1])
        if shapely.intersects(swapped, territory):
            hint = phrase(N_(" (its coordinates look like lat,lon: GeoJSON positions are "
                             "lon,lat)"))
        else:
            hint = _where_outside(area)
        raise AreaError(field, N_("lies outside the territory of %(name)s%(hint)s"), name=name,
                hint=hint)
    return clipped


def territory_label(authority: Authority) -> str:
    """The authority's territory named for an operator: "Belgium" for the federal
    authority (its territory is the country), otherwise its name in its first
    official language ("Beersel", "Liège")."""
    if authority.kind == "federal":
        return phrase(N_("Belgium"))
    return authority.name(authority.language_list[0] if authority.language_list else "fr")


def _format_km2(km2: float) -> str:
    if km2 >= 10:
        return f"{km2:,.0f}"
    return f"{km2:.1f}" if km2 >= 0.1 else f"{km2:.2f}"


def cut_warning(area_km2_before: float, area_km2_after: float,
                territory: str) -> dict[str, Any] | None:
    """The warning that an area was cut at the border of ``territory``, or ``None``.

    ``area_km2_before``: the area as drawn or imported, ``area_km2_after``: what is
    left inside the territory (km², EPSG:3812); ``territory``: its name for the
    operator (:func:`territory_label`: "Belgium", "Beersel"). Nothing is ever
    targeted outside the authority's territory nor outside Belgium (SPEC F3); this
    says so whenever the part left out is more than :data:`CUT_WARNING_SHARE` of
    the area or at least :data:`CUT_WARNING_KM2`.

    Returns ``{"code": "area_cut", "field": "area", "km2": left out (rounded to
    0.01 km²), "share": left out / before (0..1, rounded to 0.001), "message"}``:
    one message for the composer's estimate, the launch confirmation, the CLI and
    the CAP import. Pure.
    """
    cut = max(area_km2_before - area_km2_after, 0.0)
    if area_km2_before <= 0 or (cut / area_km2_before <= CUT_WARNING_SHARE
                                and cut < CUT_WARNING_KM2):
        return None
    share = cut / area_km2_before
    extra = {"km2": round(cut, 2), "share": round(share, 3)}
    if share >= 0.01:
        return warning("area_cut", "area", N_(
            "The area was cut at the border of %(territory)s: %(km2)s km² (%(percent)s of "
            "the area) lies outside and will not be alerted."), extra=extra,
            territory=territory, km2=_format_km2(cut), percent=f"{share:.0%}")
    return warning("area_cut", "area", N_(
        "The area was cut at the border of %(territory)s: %(km2)s km² (less than 1%% of "
        "the area) lies outside and will not be alerted."), extra=extra,
        territory=territory, km2=_format_km2(cut))


def clip_with_warning(area: BaseGeometry, authority: Authority, field: str = "area",
                      name: str | None = None
                      ) -> tuple[Polygon | MultiPolygon, dict[str, Any] | None]:
    """``(area clipped to the authority's territory, cut warning or None)``.

    :func:`clip_to_territory` then :func:`cut_warning`, the territory named by
    :func:`territory_label` unless ``name`` is given. Raises what
    :func:`clip_to_territory` raises.
    """
    label = name or territory_label(authority)
    clipped = clip_to_territory(area, territory_of(authority), name=label, field=field)
    return clipped, cut_warning(area_km2(area), area_km2(clipped), label)


def _where_outside(area: BaseGeometry) -> str:
    """``": it lies around 52.950,-1.010 (lat,lon), outside Belgium"`` when ``area`` is
    nowhere near Belgium (within ~3 km of its outline), else ``""``."""
    from tocsin.cap.validate import near_country

    if area.is_empty or near_country(area, "BE"):
        return ""
    point = area.representative_point()
    return phrase(N_(": it lies around %(lat)s,%(lon)s (lat,lon), outside Belgium"),
                  lat=f"{point.y:.3f}", lon=f"{point.x:.3f}")


def municipality_area(
    session: Session, nis: str, language: str = "fr"
) -> tuple[BaseGeometry, str]:
    """``(territory, name in language)`` of the municipality with NIS code ``nis``.

    Raises AreaError("municipality", ...) when ``nis`` is not a 5-digit code
    or no municipality has it.
    """
    nis = str(nis).strip()
    if not re.fullmatch(r"\d{5}", nis):
        raise AreaError("municipality", N_("%(nis)s is not a 5-digit NIS code"), nis=f"{nis!r}")
    authority = session.scalars(
        sa.select(Authority).where(Authority.id == nis, Authority.kind == "municipality")
    ).one_or_none()
    if authority is None:
        raise AreaError("municipality", N_("unknown NIS code %(nis)s"), nis=f"{nis!r}")
    return territory_of(authority), authority.name(language)


@lru_cache(maxsize=2048)
def _km2_of_text(text: str) -> float:
    return area_km2(_territory_from_text(text))


def territory_km2(authority: Authority) -> float:
    """The authority's surface in km² (EPSG:3812), cached by territory text."""
    return _km2_of_text(authority.territory)


def _municipality_place(m: Authority) -> Place:
    return municipality_place(m.id, m.name_fr, m.name_nl, m.name_de, m.language_list,
                              territory_km2(m))


def _piece_km2(area: BaseGeometry, municipality: Authority) -> float:
    """km² of ``area`` (prepared) inside ``municipality``; 0 when they only touch."""
    territory = territory_of(municipality)
    if not area.intersects(territory):
        return 0.0
    if area.contains(territory):
        return territory_km2(municipality)
    # Cut the (possibly country-wide) area to the municipality's box first: the
    # intersection then works on a few hundred vertices instead of the whole area.
    # (Not shapely.clip_by_rect: its output may be invalid, and then so is the area.)
    near = shapely.intersection(area, shapely.box(*territory.bounds))
    return area_km2(polygonal(shapely.intersection(near, territory)))


def area_names(session: Session, area: BaseGeometry, nis: str | None,
               authority: Authority) -> dict[str, str]:
    """The area's name in fr, nl, de and en (:func:`tocsin.geo.naming.area_names`).

    ``area``: WGS84, already clipped to the authority's territory; ``nis``: the
    municipality chosen whole (then named after it). Reads the municipalities the
    area touches, their provinces (and arrondissements from the shipped data) and
    the country; falls back to the authority's name when the area touches no
    municipality.
    """
    from tocsin.geo import naming
    from tocsin.geo.reference import arrondissements

    if nis is not None:
        chosen = session.get(Authority, nis)
        if chosen is not None and chosen.kind == "municipality":
            return dict(_municipality_place(chosen).names)
    minx, miny, maxx, maxy = area.bounds
    candidates = session.scalars(sa.select(Authority).where(
        Authority.kind == "municipality", Authority.min_lon <= maxx,
        Authority.max_lon >= minx, Authority.min_lat <= maxy,
        Authority.max_lat >= miny)).all()
    # A copy to prepare: ``area`` may be shared (a cached territory).
    prepared = shapely.from_wkb(shapely.to_wkb(area))
    shapely.prepare(prepared)
    touched = [(m, km2) for m in candidates if (km2 := _piece_km2(prepared, m)) > 0]
    parents = {p.id: p for p in session.scalars(sa.select(Authority).where(
        Authority.id.in_({m.parent_id for m, _ in touched if m.parent_id})))}
    provinces = {pid: naming.province_place(p.id, p.name_fr, p.name_nl, territory_km2(p))
                 for pid, p in parents.items()}
    arrs = arrondissements()
    pieces = [naming.Piece(_municipality_place(m), km2,
                           provinces.get(m.parent_id or "") or naming.Place(
                               m.parent_id or "", {}, km2=0.0),
                           arrs.get(m.id))
              for m, km2 in touched]
    province_count = session.scalar(sa.select(sa.func.count()).select_from(Authority)
                                    .where(Authority.kind == "province")) or 0
    federal = session.scalars(sa.select(Authority).where(Authority.kind == "federal")).first()
    country = (naming.Place(federal.id, naming.COUNTRY_NAMES, km2=territory_km2(federal))
               if federal is not None else None)
    names = naming.area_names(pieces, country=country, province_count=int(province_count))
    return names or {lang: authority.name(lang) for lang in naming.LANGUAGES}
