"""Alert-area shapes beyond drawn polygons: circles, combinations, per-channel outlines
(SPEC F16, F18, F31).

Pure geometry, no database. Geometries are shapely objects in WGS84 lon/lat
(RFC 7946 axis order); circles are drawn in metres by
:func:`tocsin.cap.validate.circle_geometry` (the one copy of that rule).

What each channel accepts as an outline (vertices per ring, closing point
included) is :data:`CHANNEL_MAX_POINTS`; :func:`channel_polygons` fits an area
into it by outward-only simplification (``tocsin.cap.polygons``): a person inside
the area is always inside the outline sent, the outline may reach a little further.
"""

from __future__ import annotations

import json
import math
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from tocsin.cap.polygons import AreaConversionError, area_to_cap_polygons, cap_polygons_union
from tocsin.cap.validate import circle_geometry, near_country
from tocsin.core.i18n import N_
from tocsin.geo.areas import AreaError
from tocsin.geo.reference import polygonal

#: Most points per polygon ring each channel accepts (closing point included).
#: CAP: receivers choke on longer rings (UK Emergency Alerts, IPAWS practice);
#: cell broadcast: operator CBCs take at most 250 (research note §2.1, "anchors");
#: location-based SMS goes to the same operator systems as cell broadcast.
CHANNEL_MAX_POINTS = {"cap": 500, "cb": 250, "lbsms": 250}

#: Largest circle radius for an alert area, in km: Belgium is ~280 km across, so a
#: larger radius is a mistake (a radius in metres, a misplaced decimal point).
#: The composer's circles (``tocsin.geo.places``) use these limits too.
MAX_AREA_CIRCLE_KM = 300.0
#: Smallest circle radius, km (100 m: below it a circle holds a building, not an area).
MIN_AREA_CIRCLE_KM = 0.1


def parse_circle(text: str, field: str = "circle") -> tuple[float, float, float]:
    """``(lat, lon, radius_km)`` from ``"LAT,LON,RADIUS_KM"`` (CAP 1.2 §3.2.4 order,
    comma-separated like the CLI's ``--circle 50.73,4.24,2``; a space after the
    commas is allowed).

    Raises AreaError(field, reason) when it is not three numbers, a coordinate is out
    of range (latitude -90..90, longitude -180..180), the radius is less than
    :data:`MIN_AREA_CIRCLE_KM` (0.1 km) or more than :data:`MAX_AREA_CIRCLE_KM` km
    (300), or the centre is not in Belgium (with a hint when swapping latitude and
    longitude would put it there).
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if len(parts) != 3:
        raise AreaError(field, N_("%(text)s is not LAT,LON,RADIUS_KM (e.g. 50.7346,4.2406,2)"),
                text=f"{text!r}")
    try:
        lat, lon, radius = (float(p) for p in parts)
    except ValueError:
        raise AreaError(field, N_("%(text)s is not three numbers LAT,LON,RADIUS_KM"),
                text=f"{text!r}") from None
    if not all(math.isfinite(v) for v in (lat, lon, radius)):
        raise AreaError(field, N_("%(text)s is not three finite numbers"), text=f"{text!r}")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise AreaError(field, N_(
                      "the centre %(lat)s,%(lon)s is out of range (latitude -90..90, "
                      "longitude -180..180)"), lat=lat, lon=lon)
    if radius < MIN_AREA_CIRCLE_KM:
        raise AreaError(field, N_(
                      "the radius %(radius)s km is less than %(MIN_AREA_CIRCLE_KM)s km "
                      "(100 m)"), radius=f"{radius:g}",
                              MIN_AREA_CIRCLE_KM=f"{MIN_AREA_CIRCLE_KM:g}")
    if radius > MAX_AREA_CIRCLE_KM:
        raise AreaError(field, N_(
                      "the radius %(radius)s km is more than %(MAX_AREA_CIRCLE_KM)s km "
                      "(Belgium is about 280 km across); is it in metres?"), radius=f"{radius:,g}",
                              MAX_AREA_CIRCLE_KM=f"{MAX_AREA_CIRCLE_KM:,.0f}")
    centre = shapely.Point(lon, lat)
    if not near_country(centre, "BE"):
        if near_country(shapely.Point(lat, lon), "BE"):
            raise AreaError(field, N_(
                          "the centre %(lat)s,%(lon)s is outside Belgium; it is written "
                          "LAT,LON: %(lon)s,%(lat)s would be in Belgium"), lat=lat, lon=lon)
        raise AreaError(field, N_("the centre %(lat)s,%(lon)s (lat,lon) is outside Belgium"),
                lat=lat, lon=lon)
    return lat, lon, radius


def circle_area(lat: float, lon: float, radius_km: float) -> Polygon:
    """The circle of ``radius_km`` around ``lat, lon`` as a 64-vertex Polygon, lon/lat.

    Drawn in metres (:func:`tocsin.cap.validate.circle_geometry`); inputs as checked
    by :func:`parse_circle`. The one circle helper: the composer's circles
    (``tocsin.geo.places.circle_area``, a place or coordinates) are drawn by it too.
    """
    geom = circle_geometry(lat, lon, radius_km)
    assert isinstance(geom, Polygon)  # a radius > 0 near Belgium is one ring
    return geom


def circle_feature(text: str, field: str = "circle") -> dict[str, Any]:
    """A GeoJSON Feature of the circle ``"LAT,LON,RADIUS_KM"``, its properties
    ``{"circle": {"lat", "lon", "radius_km"}}``; raises what :func:`parse_circle` raises."""
    lat, lon, radius = parse_circle(text, field)
    geometry = json.loads(shapely.to_geojson(circle_area(lat, lon, radius)))
    return {"type": "Feature", "geometry": geometry,
            "properties": {"circle": {"lat": lat, "lon": lon, "radius_km": radius}}}


def combine_areas(parts: list[BaseGeometry]) -> Polygon | MultiPolygon:
    """The union of area ``parts`` (circles, municipalities, drawn polygons), lon/lat.

    Overlapping parts merge (one message per phone, SPEC F16); lines and points are
    ignored. Raises AreaError("area", …) when no part covers any ground.
    """
    merged = polygonal(shapely.union_all([polygonal(p) for p in parts])) if parts else Polygon()
    if merged.is_empty:
        raise AreaError("area", N_("contains no polygon"))
    return merged


def channel_polygons(area: BaseGeometry, channel: str) -> list[list[tuple[float, float]]]:
    """``area`` as the polygon rings ``channel`` accepts: ``[[(lat, lon), …], …]``.

    Each ring has at most ``CHANNEL_MAX_POINTS[channel]`` points (500 for ``cap``,
    250 for ``cb`` and ``lbsms``), no holes, and together they cover ``area``: the
    simplification only ever moves the outline outward (``tocsin.cap.polygons``).

    Raises AreaError("area", …) for an unknown channel or an area that cannot be
    fitted; KeyError never escapes.
    """
    limit = CHANNEL_MAX_POINTS.get(channel)
    if limit is None:
        raise AreaError("channels", N_("%(channel)s has no polygon outline (one of %(value)s)"),
                channel=f"{channel!r}", value=', '.join(CHANNEL_MAX_POINTS))
    try:
        return area_to_cap_polygons(area, max_points=limit)
    except AreaConversionError as exc:
        raise AreaError("area", str(exc).removeprefix("area: ")) from None


def channel_outline(area: BaseGeometry, channel: str) -> BaseGeometry:
    """The union of :func:`channel_polygons` as one lon/lat geometry (what the channel
    really covers; contains ``area``)."""
    return cap_polygons_union(channel_polygons(area, channel))
