"""Shared fixtures: migrated databases with the Belgian reference authorities loaded.

``engine`` is SQLite, copied per test from a template migrated once per session.
``pg_engine`` is a throwaway PostgreSQL database per test when
``TOCSIN_TEST_DATABASE_URL`` is set (skipped otherwise, with the reason).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.core.settings import get_settings

PG_URL = os.environ.get("TOCSIN_TEST_DATABASE_URL", "")
PG_SKIP = "PostgreSQL tests need TOCSIN_TEST_DATABASE_URL (.ci/run sets it)"


def _load_reference(engine: Engine) -> None:
    from tocsin.geo.reference import load_authorities

    upgrade(engine)
    with transaction(engine) as s:
        load_authorities(s)


@pytest.fixture(scope="session")
def reference_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "reference.db"
    engine = make_engine(f"sqlite:///{path}")
    _load_reference(engine)
    engine.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture
def engine(reference_db: Path, tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database (WAL) with the schema and the 593 authorities."""
    path = tmp_path / "tocsin.db"
    shutil.copy(reference_db, path)
    eng = make_engine(f"sqlite:///{path}")
    yield eng
    eng.dispose()


@contextlib.contextmanager
def _throwaway_postgres(load_reference: bool) -> Iterator[Engine]:
    """A new, migrated database beside ``TOCSIN_TEST_DATABASE_URL``, dropped afterwards.

    A database rather than a schema: with ``search_path = schema, public``
    Alembic would see another run's ``public.alembic_version`` and skip the
    migration, writing the test rows into ``public``.
    """
    if not PG_URL:
        pytest.skip(PG_SKIP)
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"tocsin_t_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    url = make_url(PG_URL).set(database=name)
    eng = make_engine(url.render_as_string(hide_password=False))
    try:
        with eng.begin() as c:
            c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        if load_reference:
            _load_reference(eng)
        else:
            upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    """A throwaway PostgreSQL + PostGIS database with the schema and the authorities."""
    with _throwaway_postgres(load_reference=True) as eng:
        yield eng


@pytest.fixture
def pg_empty_engine() -> Iterator[Engine]:
    """A throwaway PostgreSQL + PostGIS database with the schema only (no authorities)."""
    with _throwaway_postgres(load_reference=False) as eng:
        yield eng


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest) -> Engine:
    """The same test on SQLite and (when configured) PostgreSQL."""
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Settings and engines are cached per process: start each test from the environment."""
    from tocsin.core.db import get_engine

    for key in list(os.environ):
        if key.startswith("TOCSIN_") and key != "TOCSIN_TEST_DATABASE_URL":
            monkeypatch.delenv(key)
    monkeypatch.setenv("TOCSIN_VAR_DIR", str(tmp_path / "var"))
    # Feeds are read right after each change in tests; the micro-cache has its own test.
    monkeypatch.setenv("TOCSIN_FEED_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield
    get_settings.cache_clear()
    get_engine.cache_clear()
