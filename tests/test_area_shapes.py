"""Areas, properly (issue 11, point 1): circles, combinations, repair, per-channel outlines.

Hostile geometries each get their documented behaviour: bowties and other invalid
outlines are repaired keeping every lobe and reported (or refused naming the problem
when strict), holes stay holes, swapped coordinates are refused with a hint, 20,000
vertices are simplified outward-only to each channel's limit, points and lines are
refused.
"""

from __future__ import annotations

import math

import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from tocsin.geo.areas import AreaError, area_km2, parse_area_geojson
from tocsin.geo.shapes import (
    CHANNEL_MAX_POINTS,
    channel_outline,
    channel_polygons,
    circle_area,
    circle_feature,
    combine_areas,
    parse_circle,
)

BOWTIE = [[4.0, 50.0], [5.0, 51.0], [5.0, 50.0], [4.0, 51.0], [4.0, 50.0]]
SQUARE = [[4.30, 50.80], [4.32, 50.80], [4.32, 50.82], [4.30, 50.82], [4.30, 50.80]]


def _polygon(*rings: list[list[float]]) -> dict:
    return {"type": "Polygon", "coordinates": list(rings)}


def test_bowtie_is_repaired_keeping_both_lobes_and_reported():
    repairs: list[dict] = []
    area = parse_area_geojson(_polygon(BOWTIE), repairs=repairs)
    assert area.is_valid and len(shapely.get_parts(area)) == 2
    # buffer(0) would keep one triangle; both lobes together are the whole outline.
    lobe = Polygon([(4.0, 50.0), (4.5, 50.5), (4.0, 51.0)])
    assert area_km2(area) == pytest.approx(2 * area_km2(lobe), rel=1e-3)
    assert area_km2(Polygon(BOWTIE).buffer(0)) < 0.6 * area_km2(area)
    (report,) = repairs
    assert report["code"] == "area_repaired" and report["parts"] == 2
    assert report["at"] == pytest.approx([4.5, 50.5])
    assert "crosses itself at lon 4.500000, lat 50.500000" in report["message"]
    assert "keeping every lobe" in report["message"]


def test_strict_parsing_still_refuses_the_bowtie_naming_the_point():
    with pytest.raises(AreaError, match="crosses itself at lon 4.500000"):
        parse_area_geojson(_polygon(BOWTIE))


def test_spike_is_dropped_and_said():
    spike = [[4.3, 50.8], [4.4, 50.8], [4.4, 50.9], [4.4, 51.0], [4.4, 50.9], [4.3, 50.9],
             [4.3, 50.8]]
    repairs: list[dict] = []
    area = parse_area_geojson(_polygon(spike), repairs=repairs)
    assert area.equals(box(4.3, 50.8, 4.4, 50.9))
    assert repairs[0]["dropped"] == "zero-width parts"
    assert "zero width" in repairs[0]["message"]


def test_hole_outside_its_shell_becomes_a_part_not_lost():
    hole_outside = [[4.5, 50.5], [4.6, 50.5], [4.6, 50.6], [4.5, 50.6], [4.5, 50.5]]
    repairs: list[dict] = []
    area = parse_area_geojson(_polygon(SQUARE, hole_outside), repairs=repairs)
    assert area.covers(Point(4.55, 50.55)) and area.covers(Point(4.31, 50.81))
    assert repairs and repairs[0]["parts"] == 2


def test_a_valid_hole_stays_a_hole():
    outer = [[4.0, 50.0], [4.4, 50.0], [4.4, 50.4], [4.0, 50.4], [4.0, 50.0]]
    hole = [[4.1, 50.1], [4.1, 50.3], [4.3, 50.3], [4.3, 50.1], [4.1, 50.1]]
    repairs: list[dict] = []
    area = parse_area_geojson(_polygon(outer, hole), repairs=repairs)
    assert not repairs and not area.covers(Point(4.2, 50.2))
    # Outward-only for CAP: holes are cut open, the rings still cover the area.
    assert channel_outline(area, "cap").covers(area)


def test_zero_area_outline_is_refused_naming_the_problem():
    flat = [[4.3, 50.8], [4.4, 50.8], [4.5, 50.8], [4.3, 50.8]]
    with pytest.raises(AreaError) as err:
        parse_area_geojson(_polygon(flat), repairs=[])
    assert "encloses no area" in err.value.reason


@pytest.mark.parametrize("geometry, words", [
    ({"type": "Point", "coordinates": [4.3, 50.8]}, "not a Point; for a point and a radius "
                                                    "give a circle (LAT,LON,RADIUS_KM)"),
    ({"type": "LineString", "coordinates": [[4.3, 50.8], [4.4, 50.9]]},
     "not a LineString; a line encloses no area"),
])
def test_points_and_lines_are_refused(geometry, words):
    with pytest.raises(AreaError) as err:
        parse_area_geojson(geometry, repairs=[])
    assert words in err.value.reason


def test_swapped_coordinates_are_refused_with_a_hint():
    swapped = [[lat, lon] for lon, lat in SQUARE]
    with pytest.raises(AreaError, match="lat,lon"):
        parse_area_geojson(_polygon(swapped), repairs=[])


def _many_vertices(n: int) -> Polygon:
    ring = [(4.35 + 0.1 * math.cos(2 * math.pi * i / n) * (1 + 0.02 * math.sin(37 * i)),
             50.85 + 0.07 * math.sin(2 * math.pi * i / n)) for i in range(n)]
    return Polygon(ring)


@pytest.mark.parametrize("channel", ["cap", "cb", "lbsms"])
def test_20000_vertices_fit_each_channel_outward_only(channel):
    area = _many_vertices(20_000)
    assert area.is_valid
    rings = channel_polygons(area, channel)
    assert all(4 <= len(r) <= CHANNEL_MAX_POINTS[channel] for r in rings)
    outline = channel_outline(area, channel)
    assert outline.covers(area)  # never shrinks: everyone inside stays inside
    assert area_km2(outline) < area_km2(area) * 1.05  # and it grows only a little


def test_cb_limit_is_tighter_than_cap():
    assert CHANNEL_MAX_POINTS["cb"] == 250 and CHANNEL_MAX_POINTS["cap"] == 500
    area = _many_vertices(2_000)
    assert max(len(r) for r in channel_polygons(area, "cb")) <= 250


def test_unknown_channel_outline_is_refused():
    with pytest.raises(AreaError) as err:
        channel_polygons(box(4.3, 50.8, 4.4, 50.9), "fax")
    assert err.value.field == "channels"


def test_circle_is_drawn_in_metres():
    lat, lon, r = parse_circle("50.7346, 4.2406, 2")
    circle = circle_area(lat, lon, r)
    assert area_km2(circle) == pytest.approx(math.pi * 4, rel=0.01)
    feature = circle_feature("50.7346,4.2406,2")
    assert feature["properties"]["circle"] == {"lat": 50.7346, "lon": 4.2406, "radius_km": 2.0}


@pytest.mark.parametrize("text, words", [
    ("50.7,4.2", "LAT,LON,RADIUS_KM"),
    ("a,b,c", "three numbers"),
    ("50.7,4.2,0", "less than 0.1 km"),
    ("50.7,4.2,-1", "less than 0.1 km"),
    ("50.7,4.2,0.05", "less than 0.1 km"),
    ("50.7,4.2,2000", "in metres"),
    ("95,4.2,1", "out of range"),
    ("4.2406,50.7346,2", "50.7346,4.2406 would be in Belgium"),
    ("48.85,2.35,1", "outside Belgium"),
    ("nan,4.2,1", "finite"),
])
def test_bad_circles_name_the_problem(text, words):
    with pytest.raises(AreaError) as err:
        parse_circle(text)
    assert err.value.field == "circle" and words in err.value.reason


def test_circle_passes_through_the_geojson_parser():
    area = parse_area_geojson(circle_feature("50.8466,4.3528,1"))
    assert area_km2(area) == pytest.approx(math.pi, rel=0.01)


def test_combined_areas_merge_and_ignore_lines():
    circle = circle_area(50.81, 4.31, 1)
    square = Polygon(SQUARE)
    line = shapely.LineString([(4.0, 50.0), (4.1, 50.1)])
    area = combine_areas([circle, square, line])
    assert circle.difference(area).area < 1e-12 and square.difference(area).area < 1e-12
    assert area_km2(area) < area_km2(circle) + area_km2(square)
    with pytest.raises(AreaError):
        combine_areas([line])


def test_one_circle_helper_serves_the_composer_and_the_command_line(engine):
    """The composer's circle (``geo.places``: a place or coordinates) and the CLI's
    ``--circle`` (``geo.shapes``) are the same polygon with the same radius limits."""
    from shapely.geometry import shape

    from tocsin.geo import places, shapes

    composer = places.circle_area(engine, "50.73, 4.24", "2")
    cli = circle_feature("50.73,4.24,2")
    assert shape(composer.geometry).equals_exact(shape(cli["geometry"]), 1e-12)
    assert shape(composer.geometry).equals_exact(circle_area(50.73, 4.24, 2), 1e-12)
    assert (places.MIN_RADIUS_KM, places.MAX_RADIUS_KM) == (
        shapes.MIN_AREA_CIRCLE_KM, shapes.MAX_AREA_CIRCLE_KM)
