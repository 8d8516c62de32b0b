"""Demo population: reproducible, realistic, importable (SPEC F7 data, demo)."""

from __future__ import annotations

import math
import shutil
import time
from collections import Counter

import pytest
import shapely
import sqlalchemy as sa

from tocsin.campaigns.services import CampaignRequest, estimate_campaign
from tocsin.core.db import make_engine
from tocsin.core.migrate import upgrade
from tocsin.subscribers.demo import (
    GERMAN_SPEAKING_NIS,
    build_demo_population,
    generate_demo_population,
    load_best_addresses,
    load_municipalities,
    write_subscriber_csv,
)
from tocsin.subscribers.importer import import_subscribers
from tocsin.subscribers.models import Address, ContactPoint, Subscriber
from tocsin.subscribers.rules import in_belgium, normalise_mobile


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    return engine


def test_reproducible_for_a_seed():
    a, _ = build_demo_population(500, seed=7)
    b, _ = build_demo_population(500, seed=7)
    c, _ = build_demo_population(500, seed=8)
    assert a == b
    assert a != c


def test_best_sample_skips_zero_coordinates():
    by_nis, skipped = load_best_addresses()
    assert skipped == 47
    assert set(by_nis) == {"21004", "23027", "63049"}
    assert all(in_belgium(a.lat, a.lon) for rows in by_nis.values() for a in rows)


def test_generate_counts_and_rules(engine):
    start = time.perf_counter()
    report = generate_demo_population(engine, 20_000)
    assert time.perf_counter() - start < 20
    assert report.subscribers == 20_000
    assert report.skipped_zero_coordinates == 47
    assert 0.82 < report.mobiles / 20_000 < 0.89
    assert 0.66 < report.emails / 20_000 < 0.75
    assert 1.17 < report.addresses / 20_000 < 1.23
    assert report.best_addresses > 0 and report.shared_mobiles > 0
    assert report.best_addresses + report.random_addresses == report.addresses

    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(Subscriber)) == 20_000
        ids = conn.execute(sa.select(Subscriber.external_id).order_by(Subscriber.id)
                           .limit(2)).scalars().all()
        assert ids == ["DEMO-000001", "DEMO-000002"]
        points = conn.execute(sa.select(ContactPoint.kind, ContactPoint.value,
                                        ContactPoint.verified_at)).all()
        assert all(p.verified_at is not None for p in points)
        assert sum(p.kind == "mobile" for p in points) == report.mobiles
        mobiles = [p.value for p in points if p.kind == "mobile"]
        assert all(m.startswith("+324") and m[4] in "56789" and len(m) == 12 for m in mobiles)
        for m in mobiles[:200]:
            assert normalise_mobile(m) == m
        shared = Counter(mobiles)
        assert 0 < sum(c for c in shared.values() if c > 1) < 0.05 * 20_000
        emails = [p.value for p in points if p.kind == "email"]
        assert len(set(emails)) == len(emails)
        assert all(e.rsplit("@", 1)[1] in {"example.org", "example.net", "example.com"}
                   for e in emails)
        rows = conn.execute(sa.select(Address.lat, Address.lon, Address.nis, Address.position,
                                      Subscriber.language)
                            .join(Subscriber, Subscriber.id == Address.subscriber_id)).all()
    assert all(in_belgium(r.lat, r.lon) for r in rows)

    region = {m.nis: m.reg_nis for m in load_municipalities()}
    by_region: dict[str, Counter[str]] = {}
    for r in rows:
        if r.position != 0:
            continue
        key = "de" if r.nis in GERMAN_SPEAKING_NIS else region[r.nis]
        by_region.setdefault(key, Counter())[r.language] += 1
    assert set(by_region["02000"]) == {"nl"}
    assert set(by_region["03000"]) == {"fr"}
    assert set(by_region["de"]) == {"de"}
    brussels = by_region["04000"]
    assert 0.6 < brussels["fr"] / (brussels["fr"] + brussels["nl"]) < 0.8
    # Flanders has about 58 % of Belgium's population.
    assert 0.54 < sum(by_region["02000"].values()) / 20_000 < 0.62


def test_twice_refused(engine):
    generate_demo_population(engine, 10)
    with pytest.raises(ValueError, match="already exist"):
        generate_demo_population(engine, 10)


def test_demo_round_trips_through_csv_import(engine, tmp_path):
    records, _ = build_demo_population(300, seed=3)
    rows = [
        {"subscriber_id": r.external_id, "language": r.language, "mobile": r.mobile,
         "email": r.email, "lat": a.lat, "lon": a.lon}
        for r in records for a in r.addresses
    ]
    path = write_subscriber_csv(rows, tmp_path / "demo.csv")
    report = import_subscribers(engine, path.read_bytes())
    assert report.errors == []
    assert report.subscribers == 300
    assert report.addresses == sum(len(r.addresses) for r in records)


# ------------------------------------------------- spread over territories, opt-in (issue 7.9)

GRAND_PLACE = (4.3525, 50.8467)  # lon, lat


def _box_1km(lon: float, lat: float) -> dict:
    """A 1 km x 1 km GeoJSON box centred on (lon, lat)."""
    dlat = 0.5 / 111.2
    dlon = 0.5 / (111.2 * math.cos(math.radians(lat)))
    ring = [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat],
            [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]
    return {"type": "Polygon", "coordinates": [ring]}


@pytest.fixture(scope="module")
def demo_engine(reference_db, tmp_path_factory):
    """The reference authorities plus the 20,000 default demo subscribers."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    shutil.copy(reference_db, path)
    eng = make_engine(f"sqlite:///{path}")
    generate_demo_population(eng, 20_000)
    yield eng
    eng.dispose()


def test_brussels_city_centre_reaches_demo_subscribers(demo_engine):
    estimate = estimate_campaign(demo_engine, CampaignRequest(
        authority_id="21004", texts={"fr": "Test", "nl": "Test"}, channels=["sms", "email"],
        area_geojson=_box_1km(*GRAND_PLACE)))
    assert sum(estimate["recipients"].values()) > 0


def test_demo_addresses_spread_over_the_municipality():
    """Each quarter of Brussels city's bounding box gets its share of the territory's
    subscribers (in proportion to its area), not all of them as the north-east did."""
    records, _ = build_demo_population(20_000)
    brussels = next(m for m in load_municipalities() if m.nis == "21004")
    points = [(a.lon, a.lat) for r in records for a in r.addresses if a.nis == "21004"]
    assert len(points) > 300
    minx, miny, maxx, maxy = brussels.geometry.bounds
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    for x0, x1 in ((minx, midx), (midx, maxx)):
        for y0, y1 in ((miny, midy), (midy, maxy)):
            area_share = (brussels.geometry.intersection(shapely.box(x0, y0, x1, y1)).area
                          / brussels.geometry.area)
            share = sum(x0 <= x < x1 and y0 <= y < y1 for x, y in points) / len(points)
            assert abs(share - area_share) < 0.08, (x0, y0, share, area_share)
    assert all(brussels.geometry.covers(shapely.Point(p)) for p in points)


def test_information_reaches_opted_in_demo_subscribers(demo_engine):
    alert = estimate_campaign(demo_engine, CampaignRequest(
        authority_id="21004", texts={"fr": "Test", "nl": "Test"}, channels=["sms", "email"],
        municipality_nis="21004"))
    info = estimate_campaign(demo_engine, CampaignRequest(
        authority_id="21004", texts={"fr": "Info", "nl": "Info"}, channels=["sms", "email"],
        municipality_nis="21004", kind="information"))
    reached, everyone = sum(info["recipients"].values()), sum(alert["recipients"].values())
    assert 0.2 * everyone < reached < 0.4 * everyone


def test_demo_template_for_information_reaches_some(demo_engine):
    from tocsin.messages.templates import list_templates, seed_demo_templates

    seed_demo_templates(demo_engine, ["21004"])
    info = next(t for t in list_templates(demo_engine, "21004") if t.kind == "information")
    estimate = estimate_campaign(demo_engine, CampaignRequest(
        authority_id="21004", texts=info.texts, channels=info.channels,
        municipality_nis="21004", kind="information",
        fields={"street": "rue Haute", "until": "18:00"}))
    assert sum(estimate["recipients"].values()) > 0


def test_opt_in_share_is_about_thirty_percent():
    records, report = build_demo_population(20_000)
    share = sum(r.info_opt_in for r in records) / len(records)
    assert 0.27 < share < 0.33
    assert report.info_opt_ins == sum(r.info_opt_in for r in records)


def test_municipalities_drawn_by_population():
    records, _ = build_demo_population(20_000)
    homes = Counter(r.addresses[0].nis for r in records)
    # Antwerpen (11002, ~530,000 people) against Herstappe (73028, ~90 people).
    assert homes["11002"] > 700
    assert homes["11002"] > 50 * max(homes["73028"], 1)


def test_every_address_inside_its_municipality_and_reproducible():
    a, _ = build_demo_population(3_000, seed=11)
    b, _ = build_demo_population(3_000, seed=11)
    assert a == b
    geometry = {m.nis: m.geometry for m in load_municipalities()}
    for r in a:
        for address in r.addresses:
            assert geometry[address.nis].covers(shapely.Point(address.lon, address.lat)), r


def test_twenty_thousand_build_in_a_few_seconds():
    load_municipalities()
    start = time.perf_counter()
    build_demo_population(20_000, seed=5)
    assert time.perf_counter() - start < 3
