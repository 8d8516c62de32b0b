"""Database sessions: readers on SQLite do not wait for the dispatch writers."""

from __future__ import annotations

import time

import sqlalchemy as sa

from tocsin.authorities.models import Authority
from tocsin.core.db import read_transaction, transaction


def test_sqlite_reader_does_not_wait_for_the_write_lock(engine):
    with transaction(engine) as writer:
        # BEGIN IMMEDIATE: this transaction holds the write lock until it ends.
        writer.execute(sa.update(Authority).where(Authority.id == "BE")
                       .values(population=1))
        started = time.perf_counter()
        with read_transaction(engine) as reader:
            count = reader.scalar(sa.select(sa.func.count()).select_from(Authority))
            population = reader.scalar(sa.select(Authority.population)
                                       .where(Authority.id == "BE"))
        waited = time.perf_counter() - started
    assert count == 593
    assert population != 1  # a snapshot of the last committed state
    assert waited < 1.0  # a writer-style BEGIN IMMEDIATE would wait the 30 s busy timeout


def test_writers_still_serialise(engine):
    with transaction(engine) as s:
        s.execute(sa.update(Authority).where(Authority.id == "BE").values(population=2))
    with read_transaction(engine) as s:
        assert s.scalar(sa.select(Authority.population).where(Authority.id == "BE")) == 2
