"""Alert areas chosen without the map (issue 9.2, WCAG 2.1 SC 2.1.1 and 2.5.1): a circle
around coordinates or a named place, and pasted GeoJSON checked before it is used.

What a "place" can be today: the name of a Belgian municipality (in French, Dutch or
German, accents and case ignored), whose centre is its territory's representative
point (a point inside it, near its middle). Street addresses are not looked up: the
platform holds no address register yet (the official one, BeSt-Address, is issue 10),
and the subscribers' own addresses are personal data given for alerting, never used as
a gazetteer.

The returned areas are GeoJSON geometries (RFC 7946, WGS84 lon/lat) that the composer
posts as ``area_geojson``: the estimate and the launch clip them to the territory and
say what was cut, as for an area drawn on the map.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from shapely.geometry import mapping
from sqlalchemy.engine import Engine

from tocsin.authorities.models import Authority
from tocsin.core.db import read_transaction
from tocsin.core.i18n import N_
from tocsin.geo.areas import BELGIUM_BBOX, AreaError, parse_area_geojson, territory_of
from tocsin.geo.shapes import MAX_AREA_CIRCLE_KM, MIN_AREA_CIRCLE_KM
from tocsin.geo.shapes import circle_area as circle_polygon

#: The composer's circle radius limits, km: the one pair of ``geo.shapes`` (a CLI
#: ``--circle`` and the composer's circle accept the same radii).
MAX_RADIUS_KM = MAX_AREA_CIRCLE_KM
MIN_RADIUS_KM = MIN_AREA_CIRCLE_KM
_NUMBER = r"[-+]?\d+(?:[.,]\d+)?"
_COORDS = re.compile(rf"^\s*({_NUMBER})\s*[,; ]\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class Circle:
    """A circle area: ``geometry`` (GeoJSON Polygon, WGS84 lon/lat, 64 vertices),
    ``lat``/``lon`` of the centre (degrees), ``radius_km``, ``place`` (the
    municipality named, or None for coordinates) and ``nis`` (its NIS code)."""

    geometry: dict[str, Any]
    lat: float
    lon: float
    radius_km: float
    place: str | None = None
    nis: str | None = None


def _fold(text: str) -> str:
    """Lower case without accents or punctuation ("Sint-Pieters-Leeuw" → "sint pieters leeuw")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.lower()).split())


def _in_belgium(lat: float, lon: float) -> bool:
    x0, y0, x1, y1 = BELGIUM_BBOX
    return x0 <= lon <= x1 and y0 <= lat <= y1


def parse_coordinates(text: str, field: str = "center") -> tuple[float, float] | None:
    """``(lat, lon)`` from "50.73, 4.24" (latitude first, as on a map app; WGS84
    degrees; "50.73 4.24", "50.73; 4.24" and "50,73; 4,24" also read), or None when
    ``text`` is not two numbers. Raises AreaError(field, reason) when the numbers are
    out of range or outside Belgium (with a hint when they look swapped)."""
    m = _COORDS.match(text)
    if not m:
        return None
    a, b = (float(v.replace(",", ".")) for v in m.groups())
    if not (-90 <= a <= 90 and -180 <= b <= 180):
        raise AreaError(field, N_(
                      "%(a)s, %(b)s are not a latitude and a longitude (latitude first, "
                      "between -90 and 90)"), a=f"{a:g}", b=f"{b:g}")
    if not _in_belgium(a, b):
        if _in_belgium(b, a):
            raise AreaError(field, N_(
                          "%(a)s, %(b)s is outside Belgium; write the latitude first: %(b2)s, "
                          "%(a2)s"), a=f"{a:g}", b=f"{b:g}", b2=f"{b:g}", a2=f"{a:g}")
        raise AreaError(field, N_("%(a)s, %(b)s is outside Belgium"), a=f"{a:g}", b=f"{b:g}")
    return a, b


def find_municipality(engine: Engine, name: str, field: str = "center"
                      ) -> tuple[str, str, float, float]:
    """The Belgian municipality called ``name`` (French, Dutch or German name; case,
    accents and hyphens ignored): ``(nis, name as typed in the register, lat, lon)`` of
    its representative point. Raises AreaError(field, reason) when no municipality or
    several have that name."""
    wanted = _fold(name)
    if not wanted:
        raise AreaError(field, N_("give coordinates (latitude, longitude) or a municipality name"))
    with read_transaction(engine) as s:
        rows = s.execute(sa.select(Authority.id, Authority.name_fr, Authority.name_nl,
                                   Authority.name_de)
                         .where(Authority.kind == "municipality")).all()
        hits = [(nis, n) for nis, *names in rows for n in names if n and _fold(n) == wanted]
        if not hits:
            raise AreaError(field, N_(
                          "no Belgian municipality is called “%(value)s”; street addresses are "
                          "not searched yet (give the coordinates of the place instead)"),
                                  value=name.strip())
        if len({nis for nis, _ in hits}) > 1:
            raise AreaError(field, N_("several municipalities are called “%(value)s”"),
                    value=name.strip())
        nis, label = hits[0]
        authority = s.get(Authority, nis)
        assert authority is not None
        point = territory_of(authority).representative_point()
    return nis, label, point.y, point.x


def circle_area(engine: Engine, center: str, radius_km: float | str,
                field: str = "circle") -> Circle:
    """The circle of ``radius_km`` km around ``center``: coordinates ("50.73, 4.24",
    latitude first) or a municipality name (its representative point).

    The circle is :func:`tocsin.geo.shapes.circle_area` (the one circle of every
    channel: metres, Belgian Lambert 2008, 64 vertices). Raises AreaError naming
    ``<field>.center`` or ``<field>.radius_km`` with the reason (not a number, out of
    range, unknown place, outside Belgium).
    """
    try:
        radius = float(str(radius_km).strip().replace(",", "."))
    except ValueError:
        raise AreaError(f"{field}.radius_km",
                N_("give the radius in kilometres, e.g. 2.5")) from None
    if not math.isfinite(radius) or not MIN_RADIUS_KM <= radius <= MAX_RADIUS_KM:
        raise AreaError(f"{field}.radius_km", N_(
                      "the radius must be between %(MIN_RADIUS_KM)s and %(MAX_RADIUS_KM)s "
                      "km"), MIN_RADIUS_KM=f"{MIN_RADIUS_KM:g}", MAX_RADIUS_KM=f"{MAX_RADIUS_KM:g}")
    text = (center or "").strip()
    place = nis = None
    coords = parse_coordinates(text, f"{field}.center")
    if coords is None:
        nis, place, lat, lon = find_municipality(engine, text, f"{field}.center")
    else:
        lat, lon = coords
    geometry = mapping(circle_polygon(lat, lon, radius))
    return Circle(json.loads(json.dumps(geometry)), round(lat, 6), round(lon, 6), radius,
                  place, nis)


def checked_geojson(data: str, field: str = "geojson") -> dict[str, Any]:
    """Pasted GeoJSON as the (Multi)Polygon geometry it describes (see
    :func:`tocsin.geo.areas.parse_area_geojson` for what is accepted). Raises
    AreaError(field, reason) naming what is wrong."""
    if not (data or "").strip():
        raise AreaError(field,
                N_("paste a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection"))
    geometry = parse_area_geojson(data, field)
    return json.loads(json.dumps(mapping(geometry)))
