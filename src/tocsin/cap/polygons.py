"""Turn an alert area (shapely geometry) into CAP 1.2 polygons.

CAP polygons (CAP 1.2 §3.2.4) are single closed rings of ``lat,lon`` pairs:
no holes, no multi-parts. Receivers (cell broadcast centres, alert maps,
display panels) also choke on very long rings, so each ring is capped at
:data:`MAX_POINTS` points. The conversion must never *shrink* the area — a
person inside the real area must be inside some CAP polygon — so every step
is outward only and the final result is verified to cover the input.

Steps: repair (``make_valid``), grow by a margin then Douglas-Peucker
simplify with a tolerance smaller than the margin, cut every remaining hole
open with overlapping half-planes, round to 6 decimals, verify coverage and
ring validity; on failure retry with a coarser tolerance.
"""

from __future__ import annotations

from collections.abc import Iterable

import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

MAX_POINTS = 500
"""Largest number of points (closing point included) in one CAP polygon."""

DECIMALS = 6
"""Decimal places of the output coordinates (~0.1 m)."""

# Douglas-Peucker tolerances tried in order, in degrees (1e-5 deg ~ 0.7-1.1 m
# in Belgium). The margin grown before simplifying is twice the tolerance, so
# the simplified boundary stays at least one tolerance (>= 5e-6 deg) outside
# the original: far more than the 5e-7 deg that rounding to 6 decimals moves
# a vertex.
_TOLERANCES = tuple(
    base * scale for scale in (1e-5, 1e-4, 1e-3, 1e-2) for base in (0.5, 0.7, 1.0, 1.5, 2.0, 3.0)
) + (5e-2,)
# Pieces cut apart overlap by twice this (degrees), so that rounding the cut
# vertices can never open a seam between neighbouring pieces.
_CUT_OVERLAP = 1e-5
_MAX_CUT_DEPTH = 64


class AreaConversionError(ValueError):
    """Raised when a geometry cannot be converted into CAP polygons."""


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    """The non-empty polygonal parts of any geometry (lines and points dropped)."""
    if geom.is_empty:
        return []
    if isinstance(geom, Polygon):
        return [geom]
    if isinstance(geom, MultiPolygon):
        return [p for p in geom.geoms if not p.is_empty]
    if hasattr(geom, "geoms"):
        return [p for part in geom.geoms for p in _polygons(part)]
    return []


def _fill_tiny_holes(polygon: Polygon, size: float) -> Polygon:
    # Filling a hole only enlarges the area (outward-safe); holes smaller than
    # the cut overlap cannot be cut open and are a metre or so wide anyway.
    kept = []
    for ring in polygon.interiors:
        minx, miny, maxx, maxy = ring.bounds
        if maxx - minx > size or maxy - miny > size:
            kept.append(ring)
    if len(kept) == len(polygon.interiors):
        return polygon
    return Polygon(polygon.exterior, kept)


def _split_holes(polygon: Polygon, depth: int = 0) -> list[Polygon]:
    """Cut ``polygon`` into hole-free pieces whose union is ``polygon``.

    The widest hole is cut by a line through the middle of its bounding box
    (vertical if the hole is wider than tall, else horizontal). The two
    half-planes overlap by ``2 * _CUT_OVERLAP`` so the union has no seam.
    Pieces that still have holes (a C-shaped hole, several holes) recurse.
    """
    polygon = _fill_tiny_holes(polygon, 4 * _CUT_OVERLAP)
    if not polygon.interiors:
        return [polygon]
    if depth > _MAX_CUT_DEPTH:
        raise AreaConversionError(
            f"area: could not cut {len(polygon.interiors)} holes open in {_MAX_CUT_DEPTH} steps"
        )
    hole = max(polygon.interiors, key=lambda ring: Polygon(ring).area)
    hminx, hminy, hmaxx, hmaxy = hole.bounds
    minx, miny, maxx, maxy = polygon.bounds
    pad = 1.0  # degrees; the half-planes must reach beyond the polygon
    if hmaxx - hminx >= hmaxy - hminy:
        cut = (hminx + hmaxx) / 2
        halves = (
            box(minx - pad, miny - pad, cut + _CUT_OVERLAP, maxy + pad),
            box(cut - _CUT_OVERLAP, miny - pad, maxx + pad, maxy + pad),
        )
    else:
        cut = (hminy + hmaxy) / 2
        halves = (
            box(minx - pad, miny - pad, maxx + pad, cut + _CUT_OVERLAP),
            box(minx - pad, cut - _CUT_OVERLAP, maxx + pad, maxy + pad),
        )
    pieces: list[Polygon] = []
    for half in halves:
        for part in _polygons(polygon.intersection(half)):
            pieces.extend(_split_holes(part, depth + 1))
    return pieces


def _ring(polygon: Polygon) -> list[tuple[float, float]] | None:
    """Counter-clockwise exterior as closed ``(lat, lon)`` rounded to 6 decimals.

    Returns None when rounding collapsed the ring (fewer than 4 points).
    """
    exterior = orient(polygon, sign=1.0).exterior
    points: list[tuple[float, float]] = []
    for lon, lat in exterior.coords:
        point = (round(lat, DECIMALS), round(lon, DECIMALS))
        if not points or points[-1] != point:
            points.append(point)
    if points[0] != points[-1]:
        points.append(points[0])
    return points if len(points) >= 4 else None


def _attempt(polygon: Polygon, tolerance: float,
             max_points: int = MAX_POINTS) -> list[list[tuple[float, float]]] | None:
    rings: list[list[tuple[float, float]]] = []
    # Mitre joins add no arc vertices; with a limit >= 1 the bevel still lies
    # outside the round buffer, so the grown shape contains the original.
    grown = polygon.buffer(2 * tolerance, quad_segs=2, join_style="mitre", mitre_limit=3.0)
    simplified = grown.simplify(tolerance, preserve_topology=True)
    for part in _polygons(shapely.make_valid(simplified)):
        for piece in _split_holes(part):
            ring = _ring(piece)
            if ring is None:
                continue
            if len(ring) > max_points:
                return None
            rings.append(ring)
    return rings


def _covers(rings: list[list[tuple[float, float]]], original: BaseGeometry) -> bool:
    shapes = [Polygon([(lon, lat) for lat, lon in ring]) for ring in rings]
    if not shapes or not all(shape.is_valid for shape in shapes):
        return False
    return bool(shapely.union_all(shapes).covers(original))


def area_to_cap_polygons(geom: BaseGeometry, max_points: int = MAX_POINTS
                         ) -> list[list[tuple[float, float]]]:
    """Convert an area into CAP polygons that together cover it.

    Args:
        geom: shapely ``Polygon`` or ``MultiPolygon`` (other geometries are
            accepted if they contain polygons) in WGS84, **lon/lat** axis order
            as in GeoJSON. Invalid input (self-intersections) is repaired with
            ``shapely.make_valid`` first; dangling lines that the repair leaves
            behind are kept as thin polygons so they stay covered.
        max_points: most points per ring (closing point included): 500 for CAP
            (:data:`MAX_POINTS`), 250 for cell broadcast
            (``tocsin.geo.shapes.CHANNEL_MAX_POINTS``); at least 4.

    Returns:
        A list of rings, each a list of ``(lat, lon)`` tuples in degrees rounded
        to 6 decimals, counter-clockwise, closed (first == last), at least 4 and
        at most ``max_points`` points, valid, without holes (CAP 1.2 §3.2.4).
        The union of the rings covers ``geom``: the area is only ever enlarged
        (by about a metre for small areas, by up to a few hundred metres for a
        province whose outline must fit in 500 points), never shrunk. Each part
        of a multi-part area gets its own simplification tolerance.

    Raises:
        AreaConversionError: empty or non-polygonal input, coordinates outside
            WGS84 bounds, or no tolerance up to 0.05 degrees yields rings within
            the point limit that cover the area.
    """
    if max_points < 4:
        raise AreaConversionError(f"max_points: {max_points} is fewer than the 4 points of "
                                  f"the smallest ring")
    if not isinstance(geom, BaseGeometry):
        raise AreaConversionError(f"area: expected a shapely geometry, got {type(geom).__name__}")
    repaired = shapely.make_valid(geom) if not geom.is_valid else geom
    polygons = _polygons(repaired)
    if not polygons:
        raise AreaConversionError(f"area: {geom.geom_type} has no polygonal part")
    minx, miny, maxx, maxy = repaired.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise AreaConversionError(f"area: bounds {repaired.bounds} are not WGS84 lon/lat degrees")
    leftovers = [
        part
        for part in getattr(repaired, "geoms", [repaired])
        if not part.is_empty and not isinstance(part, Polygon | MultiPolygon)
    ]
    if leftovers:
        # Spikes and slivers that make_valid turns into lines: give them width
        # and merge them in, so the CAP area still reaches them.
        merged = shapely.union_all(polygons + [p.buffer(_CUT_OVERLAP) for p in leftovers])
        polygons = _polygons(merged)
    rings: list[list[tuple[float, float]]] = []
    for index, polygon in enumerate(polygons):
        for tolerance in _TOLERANCES:
            candidate = _attempt(polygon, tolerance, max_points)
            if candidate is not None and _covers(candidate, polygon):
                rings.extend(candidate)
                break
        else:
            raise AreaConversionError(
                f"area: part {index} cannot be covered by CAP polygons of <= {max_points} "
                f"points (tried tolerances up to {_TOLERANCES[-1]} degrees)"
            )
    return rings


def cap_polygons_union(rings: Iterable[list[tuple[float, float]]]) -> BaseGeometry:
    """Union of CAP ``(lat, lon)`` rings as one shapely geometry in lon/lat (for checks)."""
    return shapely.union_all([Polygon([(lon, lat) for lat, lon in ring]) for ring in rings])
