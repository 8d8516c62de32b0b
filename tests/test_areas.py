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


# --- issue 7.4: a MultiPolygon whose parts overlap is their union -------------------------

def test_overlapping_multipolygon_parts_are_merged():
    shifted = [[x + 0.01, y] for x, y in SQUARE]  # overlaps SQUARE by half
    area = parse_area_geojson({"type": "MultiPolygon", "coordinates": [[SQUARE], [shifted]]})
    assert isinstance(area, Polygon) and area.is_valid
    assert area.bounds == pytest.approx((4.30, 50.80, 4.33, 50.82))
    # A part inside another, and a part touching along an edge: still one area.
    inner = [[4.305, 50.805], [4.31, 50.805], [4.31, 50.81], [4.305, 50.81], [4.305, 50.805]]
    beside = [[x + 0.02, y] for x, y in SQUARE]
    area = parse_area_geojson(_feature({"type": "MultiPolygon",
                                        "coordinates": [[SQUARE], [inner], [beside]]}))
    assert area.is_valid and area.bounds == pytest.approx((4.30, 50.80, 4.34, 50.82))
    assert area_km2(area) == pytest.approx(area_km2(box(4.30, 50.80, 4.34, 50.82)), rel=1e-6)


def test_a_multipolygon_part_that_crosses_itself_is_still_refused():
    bowtie = [[4.0, 50.0], [5.0, 51.0], [5.0, 50.0], [4.0, 51.0], [4.0, 50.0]]
    with pytest.raises(AreaError) as err:
        parse_area_geojson({"type": "MultiPolygon", "coordinates": [[SQUARE], [bowtie]]})
    assert err.value.field == "area"
    assert err.value.reason == ("polygon 2 is not a valid polygon: the outline crosses itself "
                                "at lon 4.500000, lat 50.500000")


# --- issue 7.3: one message for an area cut at the territory's border ---------------------

def test_cut_warning_says_km2_and_share():
    from tocsin.geo.areas import cut_warning

    w = cut_warning(12.5, 10.0, "Beersel")
    assert w == {"code": "area_cut", "field": "area", "km2": 2.5, "share": 0.2,
                 "message": "The area was cut at the border of Beersel: 2.5 km² (20% of the "
                            "area) lies outside and will not be alerted."}
    assert cut_warning(10.0, 10.0, "Beersel") is None
    assert cut_warning(10.0, 9.95, "Beersel") is None  # 0.5 %: a border drawn a bit off
    big = cut_warning(3000.0, 2998.0, "Belgium")  # 0.07 % but 2 km²: a village is left out
    assert big is not None and "2.0 km² (less than 1% of the area)" in big["message"]
    assert cut_warning(0.0, 0.0, "Beersel") is None


def test_clip_with_warning_names_the_country_for_the_federal_authority(engine):
    from tocsin.geo.areas import clip_with_warning

    with transaction(engine) as session:
        be = session.get(Authority, "BE")
        # From Bouillon into France: the French part is never targeted (SPEC F3).
        across = box(5.0, 49.70, 5.1, 49.85)
        clipped, cut = clip_with_warning(across, be)
        assert area_km2(clipped) < area_km2(across)
        assert cut is not None and cut["message"].startswith(
            "The area was cut at the border of Belgium: ")
        assert 0 < cut["share"] < 1
        assert clip_with_warning(box(4.30, 50.80, 4.31, 50.81), be)[1] is None


# --- issue 7.10: areas named as people do ---------------------------------------------------

@pytest.fixture(scope="module")
def places():
    """Real Belgian places (the shipped reference data) as the pure naming rule sees them."""
    from tocsin.geo import naming
    from tocsin.geo.reference import arrondissements, reference_authorities

    refs, _ = reference_authorities()
    km2 = {r.id: area_km2(r.territory) for r in refs}
    by_id = {r.id: r for r in refs}
    provinces = {r.id: naming.province_place(r.id, r.name_fr, r.name_nl, km2[r.id])
                 for r in refs if r.kind == "province"}
    arrs = arrondissements()

    def piece(nis: str, share: float = 1.0):
        r = by_id[nis]
        muni = naming.municipality_place(nis, r.name_fr, r.name_nl, r.name_de, r.languages,
                                         km2[nis])
        return naming.Piece(muni, km2[nis] * share, provinces[str(r.parent_id)], arrs[nis])

    municipalities = [r.id for r in refs if r.kind == "municipality"]
    country = naming.Place("BE", naming.COUNTRY_NAMES, km2=km2["BE"])
    return piece, municipalities, by_id, len(provinces), country


def test_area_names_the_country_a_province_or_a_municipality(places):
    from tocsin.geo.naming import area_names

    piece, municipalities, by_id, count, country = places

    def name(pieces):
        return area_names(pieces, province_count=count, country=country)

    everything = [piece(n) for n in municipalities]
    assert name(everything) == {
        "fr": "Belgique", "nl": "België", "de": "Belgien", "en": "Belgium"}
    # Nearly all of it (a strip along the border left out) is still the country.
    nearly = [piece(n, 0.97) for n in municipalities]
    assert name(nearly)["nl"] == "België"
    # Without the country's surface (or one province left out) it is never the country.
    assert area_names(everything, province_count=count)["en"] == \
        "581 municipalities in 11 provinces"
    no_wb = [piece(n) for n in municipalities if by_id[n].parent_id != "20002"]
    assert name(no_wb)["en"] == "554 municipalities in 10 provinces"
    namur = [piece(n) for n in municipalities if by_id[n].parent_id == "90000"]
    assert name(namur) == {
        "fr": "Province de Namur", "nl": "Provincie Namen", "de": "Provinz Namur",
        "en": "Province of Namur"}
    liege = [piece(n) for n in municipalities if by_id[n].parent_id == "60000"]
    assert name(liege)["de"] == "Provinz Lüttich"
    brussels = [piece(n) for n in municipalities if by_id[n].parent_id == "04000"]
    assert name(brussels)["en"] == "Brussels-Capital Region"
    # One municipality, whole or a drawn part of it: its name, never "(zone)".
    assert name([piece("23003")])["fr"] == "Beersel"
    assert name([piece("23003", 0.01)]) == dict.fromkeys(("fr", "nl", "de", "en"), "Beersel")
    assert name([piece("62063", 0.2)]) == {
        "fr": "Liège", "nl": "Luik", "de": "Lüttich", "en": "Liège"}
    assert name([piece("11002", 0.2)])["en"] == "Antwerp"
    assert name([piece("63001")])["de"] == "Amel"
    assert name([]) == {}


def test_area_names_several_municipalities(places):
    from tocsin.geo.naming import area_names

    piece, municipalities, by_id, count, country = places

    def name(pieces):
        return area_names(pieces, province_count=count, country=country)

    # Beersel, Dilbeek and Halle: all in the arrondissement of Halle-Vilvoorde.
    three = [piece("23003", 0.5), piece("23016", 0.3), piece("23027", 0.4)]
    assert name(three) == {
        "fr": "3 communes de Hal-Vilvorde", "nl": "3 gemeenten in Halle-Vilvoorde",
        "de": "3 Gemeinden in Halle-Vilvoorde", "en": "3 municipalities in Halle-Vilvoorde"}
    # An arrondissement named after its chief town says "arrondissement".
    mechelen = [piece(n) for n in ("12025", "12007", "12009")]
    assert name(mechelen) == {
        "fr": "3 communes de l'arrondissement de Malines",
        "nl": "3 gemeenten in het arrondissement Mechelen",
        "de": "3 Gemeinden im Bezirk Mechelen",
        "en": "3 municipalities in the arrondissement of Mechelen"}
    # Two arrondissements of one province: the province.
    namur = [piece("92094", 0.3), piece("91034", 0.3), piece("93014", 0.5)]
    assert name(namur)["fr"] == "3 communes de la province de Namur"
    assert name(namur)["nl"] == "3 gemeenten in de provincie Namen"
    # Brussels municipalities: the region (their arrondissement is the region itself).
    ixl = [piece("21009", 0.5), piece("21004", 0.1), piece("21015", 0.5)]
    assert name(ixl)["nl"] == "3 gemeenten in het Brussels Hoofdstedelijk Gewest"
    # Across provinces: how many.
    across = [piece("23003"), piece("21016"), piece("25031", 0.5)]
    assert name(across)["en"] == "3 municipalities in 3 provinces"
    # Two: both names, in each language.
    assert name([piece("23003", 0.5), piece("23016", 0.5)]) == {
        "fr": "Beersel et Dilbeek", "nl": "Beersel en Dilbeek", "de": "Beersel und Dilbeek",
        "en": "Beersel and Dilbeek"}
    # A sliver over a border (a line drawn a few metres off) does not count.
    assert name([piece("23003", 0.3), piece("23016", 0.0005)])["fr"] == "Beersel"


def test_area_names_from_the_database(engine):
    """The collector (geo.areas.area_names) feeds the rule real surfaces."""
    from tocsin.geo.areas import area_names

    with transaction(engine) as session:
        be = session.get(Authority, "BE")
        assert area_names(session, territory_of(be), None, be)["fr"] == "Belgique"
        halle = session.get(Authority, "23027")
        spot = territory_of(halle).representative_point().buffer(0.002)
        assert area_names(session, spot, None, halle)["nl"] == "Halle"
        assert area_names(session, territory_of(session.get(Authority, "20001")), None,
                          be)["de"] == "Provinz Flämisch-Brabant"
