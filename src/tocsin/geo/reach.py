"""Reach and bleed of location-based channels before sending (SPEC F17; research note
``location-based-channels.md`` §1.4, §2.5).

Location-based SMS and cell broadcast reach phones by cell, and cells do not follow
the drawn outline: phones just outside the area get the message too ("bleed"). The
estimate says, per channel and per operator, how many phones are expected inside
and outside the area, as a low–high range, how large the bleed area is (km²) and
how far it reaches (km), from a cell model (``tocsin.geo.cellmodel``; the synthetic
model unless an operator's cells were imported). Where the model has no cells it
falls back to the UK Emergency Alerts buffer formula (:func:`uk_bleed_distance_m`).

Computed in Belgian Lambert 2008 (EPSG:3812). With A the area (already clipped to
the authority's territory), for each operator o with market share s_o:

- S_o: the cells whose best-server area meets A; F_o: the union of their coverage;
- inside_o = phones(A) × s_o × f, f = :data:`LOCATED_FRACTION` (LB-SMS: phones the
  network has located recently) or :data:`CB_CAPABLE` (cell broadcast: 4G/5G phones);
- outside_o = phones(F_o \\ A) × s_o × f;
- range: low = best-server footprint only, × :data:`LOW_FACTOR` × f; high = the
  coverage footprint, every phone reached (factor 1);
- bleed_km2 = |∪F_o \\ A|; max_bleed_km = the furthest point of ∪F_o from A.

phones(R) is the UK ward method on municipalities (``cellmodel.phones_in``); phones
outside Belgium are not counted (no population layer there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from tocsin.geo import cellmodel as cm
from tocsin.geo.reference import polygonal

#: Location-based channels and the share of phones each reaches.
LOCATION_CHANNELS = ("lbsms", "cb")
#: LB-SMS: share of phones located in the operator's database (phones idle for more
#: than two hours are "sometimes not detected", BE-Alert FAQ).
LOCATED_FRACTION = 0.92
#: Cell broadcast: share of phones able to show it (4G/5G; ~80 % in the UK test, HCWS740).
CB_CAPABLE = 0.8
#: The low end of a range: this share of the expected phones.
LOW_FACTOR = 0.8
#: Phones per inhabitant (research note §2.5 default).
PHONES_PER_CAPITA = 1.0
#: Part of the area without model cells that triggers the fallback, m².
FALLBACK_MIN_M2 = 10_000.0
_SQ_MI_PER_KM2 = 2.589988


def reach_factor(channel: str) -> float:
    """The share of phones in coverage that ``channel`` reaches (0..1).
    Raises ValueError for a channel that is not location-based."""
    if channel == "lbsms":
        return LOCATED_FRACTION
    if channel == "cb":
        return CB_CAPABLE
    raise ValueError(f"channel: {channel!r} is not a location-based channel (lbsms, cb)")


def uk_bleed_distance_m(phones_per_km2: float) -> float:
    """How far beyond an area cells reach, metres, from the phone density: the UK
    Emergency Alerts formula clamp(5900 − 1250·log10(phones per mi²), 500, 5000), 1,500
    below one phone per mi² (alphagov emergency-alerts-utils ``polygons.py``,
    notifications-admin PR #3833: 800 MHz masts ~5 km, 1800 MHz ~500 m)."""
    per_mi2 = phones_per_km2 * _SQ_MI_PER_KM2
    if per_mi2 < 1:
        return 1500.0
    return float(min(max(5900.0 - 1250.0 * math.log10(per_mi2), 500.0), 5000.0))


@dataclass
class OperatorFootprint:
    """One operator's part of the footprint (EPSG:3812 geometries)."""

    operator: cm.OperatorSpec
    synthetic: bool
    source: str
    cells: int
    cell_ids: list[str]
    low: BaseGeometry  # best-server footprint outside A
    high: BaseGeometry  # coverage footprint outside A
    phones_low: float = 0.0  # phones in ``low`` (whole population, before shares)
    phones_high: float = 0.0
    fallback_m2: float = 0.0
    sectors: list[tuple[str, BaseGeometry]] = field(default_factory=list)


@dataclass
class Footprint:
    """What the cells reaching an area cover (EPSG:3812)."""

    area: BaseGeometry
    phones_area: float
    model: cm.CellModel
    operators: list[OperatorFootprint]
    bleed: BaseGeometry
    max_bleed_m: float


def _union(geoms: Any) -> BaseGeometry:
    geoms = [g for g in geoms if g is not None and not g.is_empty]
    return polygonal(shapely.union_all(geoms)) if geoms else Polygon()


def _grown_boxes_inside(geoms: Any, margins: Any, area: BaseGeometry) -> Any:
    """Whether each of ``geoms``' bounding boxes grown by ``margins`` (metres) lies in
    the (prepared) ``area``: then the geometry grown by its margin does too."""
    if len(geoms) == 0:
        return np.array([], dtype=bool)
    bounds = shapely.bounds(geoms)
    m = (np.asarray(margins, dtype=float) + 1.0)[:, None]
    boxes = shapely.box(*(bounds + np.hstack([-m, -m, m, m])).T)
    return shapely.contains(area, boxes) & ~np.isnan(bounds[:, 0])


def _max_distance(geom: BaseGeometry, area: BaseGeometry) -> float:
    """The furthest vertex of ``geom`` from ``area``'s outline (metres); ``geom`` lies
    outside ``area``. Indexed: nearest outline segment per vertex."""
    if geom.is_empty:
        return 0.0
    points = shapely.points(shapely.get_coordinates(geom.simplify(10)))
    rings = shapely.get_rings(shapely.get_parts(area))
    segments = []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        segments.append(shapely.linestrings(np.stack([c[:-1], c[1:]], axis=1)))
    tree = shapely.STRtree(np.concatenate(segments))
    _, distances = tree.query_nearest(points, return_distance=True, all_matches=False)
    return float(np.max(distances)) if len(distances) else 0.0


def _operator_footprint(o: cm.OperatorCells, area: BaseGeometry,
                        phones_area_per_km2: float, keep_sectors: bool) -> OperatorFootprint:
    sites = o.tree.query(area, predicate="intersects")
    # Sites whose coverage may leave the area: their box grown by the margin is not
    # inside it (a box holds the grown area, so no edge site is missed).
    edge_mask = ~_grown_boxes_inside(o.site_area[sites], o.site_margin[sites], area)
    edge, interior = sites[edge_mask], sites[~edge_mask]
    cells = int(sum(len(o.site_sectors[i]) for i in interior))
    sector_idx = (np.concatenate([o.site_sectors[i] for i in edge])
                  if len(edge) else np.array([], dtype=int))
    best = o.sectors(sector_idx)
    # Sectors whose grown box lies inside the area are hit and add no bleed: keep them
    # out of the (costly) unions; test the others exactly.
    inner = _grown_boxes_inside(best, o.site_margin[o.sector_site[sector_idx]], area)
    rest = ~inner & ~shapely.is_empty(best)
    rest[rest] = shapely.intersects(best[rest], area)
    cells += int(inner.sum())
    inner_idx = sector_idx[inner]
    sector_idx, best = sector_idx[rest], best[rest]
    cells += len(sector_idx)
    # The coverage of a set of cells grown by one margin is their union grown by it:
    # one buffer per margin instead of a union of a buffer per cell.
    best_union = _union(best)
    margins = o.site_margin[o.sector_site[sector_idx]]
    groups = np.unique(margins)
    if len(groups) == 1:
        cover = best_union.buffer(float(groups[0]), quad_segs=2)
    else:
        cover = _union([_union(best[margins == m]).buffer(float(m), quad_segs=2)
                        for m in groups])
    low = polygonal(shapely.difference(best_union, area))
    high = polygonal(shapely.difference(cover, area))
    fallback_m2 = 0.0
    if not o.synthetic:
        # Imported models may leave holes: the part of A no cell serves is estimated
        # with the UK buffer formula (research note §1.4).
        served = _union(list(o.sectors(np.concatenate(
            [o.site_sectors[i] for i in sites]))) if len(sites) else [])
        uncovered = polygonal(shapely.difference(area, served))
        if uncovered.area > FALLBACK_MIN_M2:
            fallback_m2 = float(uncovered.area)
            d = uk_bleed_distance_m(phones_area_per_km2)
            ring = polygonal(shapely.difference(uncovered.buffer(d, quad_segs=4), area))
            low, high = _union([low, ring]), _union([high, ring])
    ids = [o.cell_ids[j] for j in interior_sectors(o, interior)] + \
        [o.cell_ids[j] for j in inner_idx] + [o.cell_ids[j] for j in sector_idx]
    fp = OperatorFootprint(o.operator, o.synthetic, o.source, cells, ids, low, high,
                           fallback_m2=fallback_m2)
    if keep_sectors:
        interior_idx = np.concatenate([np.array(interior_sectors(o, interior), dtype=int),
                                       inner_idx]).astype(int)
        inner = o.sectors(interior_idx) if len(interior_idx) else np.array([], dtype=object)
        fp.sectors = [(o.cell_ids[j], g) for j, g in zip(interior_idx, inner, strict=True)]
        fp.sectors += [(o.cell_ids[j], g) for j, g in zip(sector_idx, best, strict=True)]
    return fp


def interior_sectors(o: cm.OperatorCells, sites: Any) -> list[int]:
    """Sector indices of ``sites`` (all their sectors)."""
    return [int(j) for i in sites for j in o.site_sectors[i]]


def footprint(area_wgs84: BaseGeometry, model: cm.CellModel | None = None,
              keep_sectors: bool = False) -> Footprint:
    """The cells reaching ``area_wgs84`` (lon/lat, clipped to the territory) and what
    they cover beyond it. ``model``: default the synthetic one. ``keep_sectors``: keep
    each cell's best-server area (for the map layer; slower on large areas)."""
    model = model or cm.synthetic_model()
    area = polygonal(cm.project(area_wgs84))
    if not area.is_valid:
        area = polygonal(shapely.make_valid(area))
    shapely.prepare(area)
    phones_area = cm.phones_in(area, PHONES_PER_CAPITA)
    density = phones_area / (area.area / 1e6) if area.area > 0 else 0.0
    ops = [_operator_footprint(o, area, density, keep_sectors)
           for o in model.operators]
    for fp in ops:
        fp.phones_low = cm.phones_in(fp.low, PHONES_PER_CAPITA)
        fp.phones_high = cm.phones_in(fp.high, PHONES_PER_CAPITA)
    bleed = _union([fp.high for fp in ops])
    max_bleed = _max_distance(bleed, area)
    return Footprint(area, phones_area, model, ops, bleed, max_bleed)


def _rnd(x: float) -> int:
    return int(round(x))


def channel_estimate(fp: Footprint, channel: str) -> dict[str, Any]:
    """The estimate of ``channel`` (``lbsms`` | ``cb``) from a :func:`footprint`.

    Returns ``{"phones_inside": [low, high], "phones_inside_expected": n,
    "phones_outside": [low, high], "phones_outside_expected": n, "bleed_km2": km²,
    "max_bleed_km": km, "cells": N, "by_operator": {key: {"name", "mcc", "mnc",
    "share", "cells", "phones_inside": [low, high], "phones_outside": [low, high],
    "model": "synthetic"|"imported", "fallback_km2"}}, "model": "synthetic" |
    "imported" | "mixed", "model_label": "synthetic cell model" (or what is
    imported), "model_version", "model_seed", "fallback_km2": km² of the area
    estimated by the UK buffer formula, "reach_factor": f}``; phones are counts.
    Raises ValueError for a channel that is not location-based.
    """
    f = reach_factor(channel)
    by_operator: dict[str, dict[str, Any]] = {}
    totals = np.zeros(6)
    for op in fp.operators:
        s = op.operator.share
        values = (fp.phones_area * s * LOW_FACTOR * f, fp.phones_area * s,
                  op.phones_low * s * LOW_FACTOR * f, op.phones_high * s,
                  fp.phones_area * s * f, op.phones_high * s * f)
        totals += values
        by_operator[op.operator.key] = {
            "name": op.operator.name, "mcc": op.operator.mcc, "mnc": op.operator.mnc,
            "share": s, "cells": op.cells,
            "phones_inside": [_rnd(values[0]), _rnd(values[1])],
            "phones_outside": [_rnd(values[2]), _rnd(values[3])],
            "model": "synthetic" if op.synthetic else "imported",
            "source": op.source, "fallback_km2": round(op.fallback_m2 / 1e6, 3)}
    return {
        "phones_inside": [_rnd(totals[0]), _rnd(totals[1])],
        "phones_inside_expected": _rnd(totals[4]),
        "phones_outside": [_rnd(totals[2]), _rnd(totals[3])],
        "phones_outside_expected": _rnd(totals[5]),
        "bleed_km2": round(fp.bleed.area / 1e6, 2),
        "max_bleed_km": round(fp.max_bleed_m / 1000, 2),
        "cells": sum(op.cells for op in fp.operators),
        "by_operator": by_operator,
        "model": fp.model.kind,
        "model_label": fp.model.label,
        "model_version": fp.model.info.get("version"),
        "model_seed": fp.model.info.get("seed"),
        "fallback_km2": round(sum(op.fallback_m2 for op in fp.operators) / 1e6, 3),
        "reach_factor": f,
    }


def estimate_reach(area_wgs84: BaseGeometry, channels: list[str],
                   model: cm.CellModel | None = None) -> dict[str, dict[str, Any]]:
    """``{channel: channel_estimate}`` for the location-based ``channels`` among
    ``channels`` (others ignored), one footprint computed for all of them."""
    wanted = [c for c in channels if c in LOCATION_CHANNELS]
    if not wanted:
        return {}
    fp = footprint(area_wgs84, model)
    return {c: channel_estimate(fp, c) for c in wanted}


def cells_layer(area_wgs84: BaseGeometry, model: cm.CellModel | None = None,
                max_cells: int = 3000) -> dict[str, Any]:
    """The map layer of the cells an area uses and its bleed, a GeoJSON
    FeatureCollection in WGS84: one Feature per cell (best-server area; properties
    ``kind: "cell"``, ``cell_id``, ``operator``, ``synthetic``), then one ``kind:
    "bleed"`` Feature (the area outside the drawn one that may get the message).
    Top-level ``tocsin_cell_model`` carries the model's label (``synthetic: true``
    and the disclaimer for the synthetic model); ``truncated`` says when more than
    ``max_cells`` cells were left out (the bleed is always there)."""
    fp = footprint(area_wgs84, model, keep_sectors=True)
    back = cm.to_wgs84()
    features: list[dict[str, Any]] = []
    total = sum(len(op.sectors) for op in fp.operators)
    for op in fp.operators:
        for cell_id, geom in op.sectors:
            if len(features) >= max_cells:
                break
            g = shapely.simplify(cm.project(geom, back), 1e-5)
            features.append({"type": "Feature", "geometry": shapely.geometry.mapping(g),
                             "properties": {"kind": "cell", "cell_id": cell_id,
                                            "operator": op.operator.key,
                                            "synthetic": op.synthetic}})
    if not fp.bleed.is_empty:
        g = shapely.simplify(cm.project(fp.bleed, back), 1e-5)
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(g),
                         "properties": {"kind": "bleed",
                                        "km2": round(fp.bleed.area / 1e6, 2),
                                        "max_km": round(fp.max_bleed_m / 1000, 2)}})
    return {"type": "FeatureCollection", "features": features,
            "tocsin_cell_model": {**fp.model.info, "label": fp.model.label,
                                  "kind": fp.model.kind},
            "truncated": max(total - max_cells, 0)}
