"""Subscribers with an address in an area, on SQLite (R*Tree) and PostgreSQL (PostGIS)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon, Polygon, box

from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.geo.spatial import subscribers_in_area
from tocsin.subscribers.models import Address, Subscriber

# A 0.1° square with a square hole, near Brussels.
SHELL = [(4.0, 50.0), (4.1, 50.0), (4.1, 50.1), (4.0, 50.1), (4.0, 50.0)]
HOLE = [(4.04, 50.04), (4.06, 50.04), (4.06, 50.06), (4.04, 50.06), (4.04, 50.04)]
AREA = Polygon(SHELL, [HOLE])


def _sqlite_engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    return engine


def _insert(engine, subscribers):
    """``subscribers``: list of lists of (lon, lat); returns the subscriber ids in order."""
    ids = []
    with transaction(engine) as session:
        for n, points in enumerate(subscribers):
            sub = Subscriber(external_id=f"s{n}", language="fr")
            sub.addresses = [
                Address(position=i, lon=lon, lat=lat) for i, (lon, lat) in enumerate(points)
            ]
            session.add(sub)
        session.flush()
        ids = [s.id for s in session.scalars(sa.select(Subscriber).order_by(Subscriber.id))]
    return ids


def _random_subscribers(seed=7, count=1500):
    rng = np.random.default_rng(seed)
    subscribers = []
    for _ in range(count):
        k = int(rng.integers(1, 4))
        lons = rng.uniform(3.95, 4.15, k)
        lats = rng.uniform(49.95, 50.15, k)
        subscribers.append(list(zip(lons.tolist(), lats.tolist(), strict=True)))
    # Points exactly on the shell, on a vertex, on the hole's edge: inside.
    subscribers += [[(4.05, 50.0)], [(4.0, 50.1)], [(4.04, 50.05)], [(4.1, 50.07)]]
    return subscribers


def _expected(ids, subscribers, area):
    return sorted(
        i for i, pts in zip(ids, subscribers, strict=True)
        if any(shapely.intersects_xy(area, lon, lat) for lon, lat in pts)
    )


def test_boundary_hole_and_outside_bbox(tmp_path):
    engine = _sqlite_engine(tmp_path)
    ids = _insert(engine, [
        [(4.02, 50.02)],  # inside
        [(4.05, 50.05)],  # in the hole
        [(4.05, 50.0)],  # on an edge of the shell
        [(4.0, 50.0)],  # on a vertex
        [(4.04, 50.05)],  # on the hole's edge
        [(5.0, 51.0)],  # outside the bbox
        [(4.05, 50.05), (4.09, 50.09)],  # one in the hole, one inside: counted once
        [(4.1000001, 50.05)],  # just outside the bbox
        [],  # no address
    ])
    with transaction(engine) as session:
        assert subscribers_in_area(session, AREA) == [ids[i] for i in (0, 2, 3, 4, 6)]
        assert subscribers_in_area(session, Polygon()) == []
        # A concave area: the point is in its bbox but not in it.
        l_shape = Polygon([(4.0, 50.0), (4.1, 50.0), (4.1, 50.03), (4.03, 50.03),
                           (4.03, 50.1), (4.0, 50.1)])
        assert ids[6] not in subscribers_in_area(session, l_shape)
        assert subscribers_in_area(session, l_shape) == [ids[i] for i in (0, 2, 3)]
        # Two distant parts: one bbox query per part.
        two = MultiPolygon([box(4.01, 50.01, 4.03, 50.03), box(4.99, 50.99, 5.01, 51.01)])
        assert subscribers_in_area(session, two) == [ids[0], ids[5]]
        with pytest.raises(ValueError, match="area"):
            subscribers_in_area(session, "POLYGON((0 0, 1 0, 1 1, 0 0))")
    engine.dispose()


def test_random_points_match_brute_force_sqlite(tmp_path):
    engine = _sqlite_engine(tmp_path)
    subscribers = _random_subscribers()
    ids = _insert(engine, subscribers)
    with transaction(engine) as session:
        got = subscribers_in_area(session, AREA)
    assert got == _expected(ids, subscribers, AREA)
    assert 500 < len(got) < len(ids)
    engine.dispose()


@pytest.mark.postgres
def test_postgres_and_sqlite_agree(tmp_path, pg_empty_engine):
    subscribers = _random_subscribers(seed=11)
    sqlite_engine = _sqlite_engine(tmp_path)
    sqlite_ids = _insert(sqlite_engine, subscribers)
    pg_engine = pg_empty_engine
    pg_ids = _insert(pg_engine, subscribers)
    # Map each backend's ids to the subscriber's position in the list.
    areas = [
        AREA,
        MultiPolygon([box(4.01, 50.01, 4.03, 50.03), box(4.07, 50.07, 4.12, 50.12)]),
        Polygon([(4.0, 50.0), (4.1, 50.0), (4.1, 50.03), (4.03, 50.03), (4.03, 50.1),
                 (4.0, 50.1)]),
    ]
    for area in areas:
        with transaction(sqlite_engine) as session:
            lite = [sqlite_ids.index(i) for i in subscribers_in_area(session, area)]
        with transaction(pg_engine) as session:
            pg = [pg_ids.index(i) for i in subscribers_in_area(session, area)]
        assert lite == pg
        assert lite == [sqlite_ids.index(i) for i in _expected(sqlite_ids, subscribers, area)]
    sqlite_engine.dispose()
