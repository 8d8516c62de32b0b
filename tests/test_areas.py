"""Alert areas: GeoJSON parsing, errors, clipping and measuring (SPEC F3, F16)."""

from __future__ import annotations

import json
import math

import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box

from tocsin.authorities.models import Authority
from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.geo.areas import (
    AreaError,
    area_km2,
    clip_to_territory,
    municipality_area,
    parse_area_geojson,
    territory_of,
)
from tocsin.geo.reference import load_authorities

SQUARE = [[4.30, 50.80], [4.32, 50.80], [4.32, 50.82], [4.30, 50.82], [4.30, 50.80]]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = make_engine(f"sqlite:///{tmp_path_factory.mktemp('areas')}/t.db")
    upgrade(eng)
    with transaction(eng) as session:
        load_authorities(session)
    yield eng
    eng.dispose()


def _polygon(coords=SQUARE):
    return {"type": "Polygon", "coordinates": [coords]}


def _feature(geometry):
    return {"type": "Feature", "properties": {}, "geometry": geometry}


def test_parse_polygon_feature_and_collection():
    bare = parse_area_geojson(_polygon())
    assert isinstance(bare, Polygon) and bare.bounds == (4.30, 50.80, 4.32, 50.82)
    assert parse_area_geojson(json.dumps(_feature(_polygon()))).equals(bare)
    assert parse_area_geojson(json.dumps(_polygon()).encode()).equals(bare)
    other = [[5.0, 50.0], [5.01, 50.0], [5.01, 50.01], [5.0, 50.0]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            _feature(_polygon()),
            _feature(_polygon(other)),
            _feature({"type": "Point", "coordinates": [4.31, 50.81]}),  # a label: ignored
        ],
    }
    union = parse_area_geojson(collection)
    assert isinstance(union, MultiPolygon) and len(union.geoms) == 2
    multi = {"type": "MultiPolygon", "coordinates": [[SQUARE], [other]]}
    assert parse_area_geojson(multi).equals(union)


def test_overlapping_features_are_merged():
    shifted = [[x + 0.01, y] for x, y in SQUARE]
    area = parse_area_geojson(
        {
            "type": "FeatureCollection",
            "features": [_feature(_polygon()), _feature(_polygon(shifted))],
        }
    )
    assert isinstance(area, Polygon)
    assert area.bounds == pytest.approx((4.30, 50.80, 4.33, 50.82))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("{not json", "is not JSON"),
        (b"\xff\xfe", "is not UTF-8"),
        ("[1, 2]", "is not a GeoJSON object"),
        ({"type": "Banana"}, "not a GeoJSON type"),
        (
            {"type": "Point", "coordinates": [4.3, 50.8]},
            "must be a Polygon or MultiPolygon, not a Point",
        ),
        (_feature({"type": "LineString", "coordinates": [[4, 50], [5, 51]]}), "not a LineString"),
        ({"type": "Feature", "geometry": None}, "has no geometry"),
        (
            {
                "type": "FeatureCollection",
                "features": [_feature({"type": "Point", "coordinates": [4, 50]})],
            },
            "contains no polygon (found: Point)",
        ),
        (_polygon([[4.3, 50.8], [4.3, 95.0], [4.4, 50.8], [4.3, 50.8]]), "out of range"),
        (_polygon([[4.3, 50.8], [4.4, 50.8], [4.4, 50.9], [4.3, 50.9]]), "is not closed"),
        (_polygon([[4.3, 50.8], [4.4, 50.8], [4.3, 50.8]]), "at least 4"),
        (
            _polygon([[4.3, "50.8"], [4.4, 50.8], [4.4, 50.9], [4.3, 50.8]]),
            "not a [lon, lat] position",
        ),
    ],
)
def test_bad_input_names_field_and_reason(data, reason):
    with pytest.raises(AreaError) as err:
        parse_area_geojson(data, field="campaign.area")
    assert err.value.field == "campaign.area"
    assert reason in err.value.reason
    assert str(err.value).startswith("campaign.area: ")


def test_swapped_lat_lon_is_pointed_out():
    swapped = [[lat, lon] for lon, lat in SQUARE]
    with pytest.raises(AreaError, match=r"look like lat,lon"):
        parse_area_geojson(_polygon(swapped))


def test_self_intersection_names_the_crossing_point():
    bowtie = [[4.0, 50.0], [5.0, 51.0], [5.0, 50.0], [4.0, 51.0], [4.0, 50.0]]
    with pytest.raises(AreaError) as err:
        parse_area_geojson(_polygon(bowtie))
    assert "crosses itself at lon 4.500000, lat 50.500000" in err.value.reason


def test_too_many_vertices():
    n = 100_001
    ring = [
        [4.35 + 0.1 * math.cos(2 * math.pi * i / n), 50.85 + 0.1 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    ring.append(ring[0])
    with pytest.raises(AreaError, match="more than 100,000 vertices"):
        parse_area_geojson(_polygon(ring))


def test_area_km2_in_lambert_2008(engine):
    # A 1 km x 1 km square projected back from Lambert 2008 measures 1 km².
    back = Transformer.from_crs("EPSG:3812", "EPSG:4326", always_xy=True)
    x0, y0 = 650_000.0, 665_000.0
    ring = [back.transform(x, y) for x, y in
            [(x0, y0), (x0 + 1000, y0), (x0 + 1000, y0 + 1000), (x0, y0 + 1000)]]
    assert area_km2(Polygon(ring)) == pytest.approx(1.0, rel=1e-3)
    with transaction(engine) as session:
        be = session.get(Authority, "BE")
        assert area_km2(territory_of(be)) == pytest.approx(30_689, rel=0.01)  # Statbel: 30,689 km²
    assert area_km2(Polygon()) == 0.0


def test_clip_to_territory(engine):
    with transaction(engine) as session:
        beersel = session.get(Authority, "23003")
        territory = territory_of(beersel)
        assert territory_of(beersel) is territory  # cached
        minx, miny, maxx, maxy = territory.bounds
        # A box twice as wide as Beersel, centred on it: clipped to Beersel.
        big = box(minx - (maxx - minx) / 2, miny, maxx + (maxx - minx) / 2, maxy)
        clipped = clip_to_territory(big, beersel)
        assert clipped.equals_exact(territory, 1e-9) or clipped.symmetric_difference(
            territory
        ).area < 1e-12
        half = box(minx, miny, (minx + maxx) / 2, maxy)
        assert area_km2(clip_to_territory(half, territory, name="Beersel")) < area_km2(territory)

        far = box(5.5, 50.0, 5.6, 50.1)
        with pytest.raises(AreaError) as err:
            clip_to_territory(far, beersel)
        assert err.value.field == "area"
        assert err.value.reason == "lies outside the territory of Beersel"

        # Touching along the shared border only: no area inside, so outside.
        uccle = territory_of(session.get(Authority, "21016"))
        with pytest.raises(AreaError, match="outside the territory of Beersel"):
            clip_to_territory(uccle, beersel)

        swapped = shapely.transform(half, lambda xy: xy[:, ::-1])
        with pytest.raises(AreaError, match="lat,lon"):
            clip_to_territory(swapped, beersel)


def test_municipality_area(engine):
    with transaction(engine) as session:
        geom, name = municipality_area(session, "63001")
        assert name == "Amblève"
        assert municipality_area(session, "63001", language="de")[1] == "Amel"
        assert geom.is_valid and 100 < area_km2(geom) < 200
        with pytest.raises(AreaError) as err:
            municipality_area(session, "99999")
        assert (err.value.field, err.value.reason) == ("municipality", "unknown NIS code '99999'")
        with pytest.raises(AreaError, match="5-digit"):
            municipality_area(session, "BE")
        with pytest.raises(AreaError, match="unknown NIS"):
            municipality_area(session, "60000")  # a province, not a municipality


# --- fix round: hostile nesting and size, areas far outside Belgium -----------------------


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    '{"type": "Polygon", "coordinates": ' + "[" * 100_000,
    '{"type": "Feature", "geometry": ' + '{"a": ' * 50_000,
])
def test_deeply_nested_json_is_refused_before_parsing(text):
    for data in (text, text.encode()):
        with pytest.raises(AreaError) as err:
            parse_area_geojson(data)
        assert err.value.field == "area" and "nested too deeply" in err.value.reason


def test_nesting_inside_strings_does_not_count():
    feature = {"type": "Feature", "properties": {"note": "[[[[" * 100},
               "geometry": _polygon()}
    assert parse_area_geojson(json.dumps(feature)).is_valid


def test_nested_geometry_collections_are_refused():
    geometry = _polygon()
    for _ in range(40):
        geometry = {"type": "GeometryCollection", "geometries": [geometry]}
    with pytest.raises(AreaError, match="nested too deeply"):
        parse_area_geojson(json.dumps(geometry))
    with pytest.raises(AreaError, match="nested too deeply"):
        parse_area_geojson(geometry)  # already-parsed input too


def test_oversized_geojson_is_refused_with_its_size():
    from tocsin.geo.areas import MAX_GEOJSON_BYTES

    text = '{"type": "Polygon", "coordinates": []}' + " " * MAX_GEOJSON_BYTES
    with pytest.raises(AreaError, match="MiB"):
        parse_area_geojson(text)


def test_outside_belgium_says_where_the_area_is(engine):
    with transaction(engine) as session:
        beersel = session.get(Authority, "23003")
        england = box(-1.0, 52.9, -0.9, 53.0)
        with pytest.raises(AreaError) as err:
            clip_to_territory(england, beersel)
        reason = err.value.reason
        assert reason.startswith("lies outside the territory of Beersel")
        assert "outside Belgium" in reason and "52.95" in reason and "(lat,lon)" in reason


def test_cli_campaign_send_with_a_deeply_nested_area(engine, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tocsin.cli import app
    from tocsin.core.db import get_engine
    from tocsin.core.settings import get_settings

    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    get_engine.cache_clear()
    deep = tmp_path / "deep.geojson"
    deep.write_text("[" * 100_000)
    result = CliRunner().invoke(app, ["campaign", "send", "--authority", "23003", "--area",
                                      str(deep), "--text", "fr=Alerte", "--channels", "cap"])
    assert result.exit_code == 1 and "nested too deeply" in result.output
    assert "Traceback" not in result.output
