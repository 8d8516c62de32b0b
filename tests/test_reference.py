"""Reference authorities: counts, repairs, languages, hierarchy (SPEC F1, F13)."""

from __future__ import annotations

import time

import pytest
import shapely
import sqlalchemy as sa

from tocsin.authorities.models import Authority
from tocsin.authorities.reference_rules import GERMAN_SPEAKING_NIS, official_languages
from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.geo.reference import load_authorities


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('ref')}/t.db")
    upgrade(engine)
    started = time.perf_counter()
    with transaction(engine) as session:
        report = load_authorities(session)
    elapsed = time.perf_counter() - started
    print(f"\nload_authorities on SQLite: {elapsed:.2f} s ({report.seconds:.2f} s in loader)")
    with transaction(engine) as session:
        authorities = {a.id: a for a in session.scalars(sa.select(Authority))}
        session.expunge_all()
    yield engine, report, authorities, elapsed
    engine.dispose()


def test_counts(loaded):
    _, report, authorities, elapsed = loaded
    kinds = [a.kind for a in authorities.values()]
    assert len(authorities) == 593
    assert kinds.count("municipality") == 581
    assert kinds.count("province") == 11  # 10 provinces + Brussels-Capital 04000
    assert kinds.count("federal") == 1
    assert report.created == 593 and report.updated == 0
    assert all(a.agreement_type == 1 for a in authorities.values())
    assert elapsed < 20


def test_three_repaired_and_all_valid(loaded):
    _, report, authorities, _ = loaded
    assert sorted((i, n) for i, n, _ in report.repaired) == [
        ("11044", "Stabroek"), ("23002", "Asse"), ("38014", "Koksijde")
    ]
    assert all("Self-intersection" in reason for *_, reason in report.repaired)
    for a in authorities.values():
        geom = shapely.from_geojson(a.territory)
        assert geom.geom_type in ("Polygon", "MultiPolygon"), a.id
        assert geom.is_valid, a.id
        assert (a.min_lon, a.min_lat, a.max_lon, a.max_lat) == pytest.approx(geom.bounds)


@pytest.mark.parametrize(
    ("nis", "languages"),
    [
        ("63001", "de,fr"),  # Amel, German-speaking region
        ("21004", "fr,nl"),  # Brussels city
        ("04000", "fr,nl"),
        ("62063", "fr"),  # Liège city
        ("60000", "fr,de"),  # province of Liège
        ("23003", "nl"),  # Beersel
        ("20001", "nl"),  # Flemish Brabant
        ("20002", "fr"),  # Walloon Brabant
        ("BE", "fr,nl,de"),
    ],
)
def test_languages(loaded, nis, languages):
    assert loaded[2][nis].languages == languages


def test_parents_names_population(loaded):
    authorities = loaded[2]
    assert authorities["BE"].parent_id is None
    assert authorities["21004"].parent_id == "04000"
    assert authorities["04000"].parent_id == "BE"
    assert authorities["62063"].parent_id == "60000"
    assert authorities["23003"].parent_id == "20001"
    assert authorities["60000"].parent_id == "BE"
    assert sum(a.parent_id == "04000" for a in authorities.values()) == 19
    assert all(
        authorities[a.parent_id].kind in ("province", "federal")
        for a in authorities.values() if a.parent_id
    )
    assert authorities["63001"].name_de == "Amel"
    assert authorities["63001"].name_fr == "Amblève"
    assert all(authorities[n].name_de for n in GERMAN_SPEAKING_NIS)
    assert authorities["04000"].name_nl == "Brussels Hoofdstedelijk Gewest"
    municipalities = [a for a in authorities.values() if a.kind == "municipality"]
    assert authorities["BE"].population == sum(a.population for a in municipalities)
    assert authorities["04000"].population == sum(
        a.population for a in municipalities if a.parent_id == "04000"
    )


def test_municipalities_lie_in_their_province(loaded):
    authorities = loaded[2]
    provinces = {
        a.id: shapely.from_geojson(a.territory).buffer(1e-6)
        for a in authorities.values() if a.kind != "municipality"
    }
    for a in authorities.values():
        if a.kind == "municipality":
            geom = shapely.from_geojson(a.territory)
            assert provinces[a.parent_id].covers(geom), a.id
            assert provinces["BE"].covers(geom), a.id


def test_load_is_idempotent(loaded):
    engine = loaded[0]
    with transaction(engine) as session:
        session.get(Authority, "23003").agreement_type = 2
        session.get(Authority, "23003").name_fr = "changed"
    with transaction(engine) as session:
        report = load_authorities(session)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 592)
    with transaction(engine) as session:
        beersel = session.get(Authority, "23003")
        assert beersel.name_fr == "Beersel"
        assert beersel.agreement_type == 2  # an agreement set by the federal operator is kept
        assert session.scalar(sa.select(sa.func.count()).select_from(Authority)) == 593


def test_official_languages_rules():
    assert official_languages("63087", "03000", "60000") == ["de", "fr"]
    assert official_languages("21001", "04000", None) == ["fr", "nl"]
    assert official_languages("11002", "02000", "10000") == ["nl"]
    assert official_languages("BE") == ["fr", "nl", "de"]
    with pytest.raises(ValueError, match="nis"):
        official_languages("1234", "02000")
    with pytest.raises(ValueError, match="region_nis"):
        official_languages("11002", None)


@pytest.mark.postgres
def test_load_on_postgres_valid_for_postgis(pg_empty_engine):
    engine = pg_empty_engine
    with transaction(engine) as session:
        assert load_authorities(session).created == 593
    with transaction(engine) as session:
        assert load_authorities(session).unchanged == 593
        invalid = session.scalar(sa.text(
            "SELECT count(*) FROM authority "
            "WHERE NOT ST_IsValid(ST_GeomFromGeoJSON(territory))"
        ))
        assert invalid == 0
