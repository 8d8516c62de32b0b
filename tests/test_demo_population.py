"""Demo population: reproducible, realistic, importable (SPEC F7 data, demo)."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import sqlalchemy as sa

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
