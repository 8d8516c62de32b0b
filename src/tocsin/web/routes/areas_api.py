"""JSON API of the composer's ways to choose an area without the map (issue 9.2, WCAG 2.1
SC 2.1.1): a circle around coordinates or a municipality, and pasted GeoJSON.

Both answer the area as a GeoJSON geometry that the composer then posts as
``area_geojson`` to the estimate and the launch, which clip it to the territory and
say what was cut. Nothing is written. Errors are ``{"error": {"field", "reason"}}``
with 422 naming ``circle.center``, ``circle.radius_km`` or ``geojson``; 401 logged
out; 403 without the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.requests import Request

from tocsin.geo import places
from tocsin.geo.areas import MAX_GEOJSON_BYTES
from tocsin.web.deps import current_operator, engine_of, require_api_csrf

router = APIRouter(prefix="/api/areas", tags=["areas"])
_GUARDS = [Depends(current_operator), Depends(require_api_csrf)]


class CircleIn(BaseModel):
    """A circle: its centre (coordinates "lat, lon" or a municipality name) and radius."""

    center: str = Field(max_length=200, description='"50.73, 4.24" (latitude first) or a '
                        "Belgian municipality's name (fr, nl or de)")
    radius_km: float | str = Field(description="radius in km, 0.1 to 300")


class GeoJsonIn(BaseModel):
    """Pasted GeoJSON text (RFC 7946): a Polygon, MultiPolygon, Feature or FeatureCollection."""

    geojson: str = Field(max_length=MAX_GEOJSON_BYTES)


@router.post("/circle", dependencies=_GUARDS)
def circle(body: CircleIn, request: Request) -> dict[str, Any]:
    """``{"geometry", "lat", "lon", "radius_km", "place", "nis"}``: the circle as a GeoJSON
    Polygon (WGS84); ``place``/``nis`` name the municipality whose centre was used."""
    c = places.circle_area(engine_of(request), body.center, body.radius_km)
    return {"geometry": c.geometry, "lat": c.lat, "lon": c.lon, "radius_km": c.radius_km,
            "place": c.place, "nis": c.nis}


@router.post("/geojson", dependencies=_GUARDS)
def geojson(body: GeoJsonIn) -> dict[str, Any]:
    """``{"geometry"}``: the (Multi)Polygon the pasted GeoJSON describes."""
    return {"geometry": places.checked_geojson(body.geojson)}
