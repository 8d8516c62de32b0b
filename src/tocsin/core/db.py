"""Database engine, sessions and column types shared by every area.

SQLite (WAL, busy timeout) is the embedded default; PostgreSQL 15+ with
PostGIS in production. Datetimes are timezone-aware UTC on both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tocsin.core.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "tocsin_read_only"


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A DateTime that only accepts aware datetimes and always returns UTC.

    SQLite stores no offset, so values are normalised to UTC on the way in and
    tagged UTC on the way out; PostgreSQL uses ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Tocsin stores aware UTC datetimes only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every Tocsin table."""

    metadata = sa.MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def iso_utc(value: dt.datetime | None, timespec: str = "milliseconds") -> str | None:
    """ISO 8601 in UTC with a ``Z`` suffix (``2026-12-01T07:00:00.000Z``); ``None`` stays
    ``None``. A naive datetime is taken as UTC (SQLite returns them so)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def table(model: type[Base]) -> sa.Table:
    """The Core ``Table`` of a mapped class, typed as such (for bulk statements)."""
    return cast(sa.Table, model.__table__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # isolation_level=None hands transaction control to us, so BEGIN IMMEDIATE
    # can be issued by the queue; see the "begin" listener below.
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``, with SQLite set up for concurrent processes.

    SQLite: WAL journal, 30 s busy timeout, foreign keys on, and every
    transaction opened with ``BEGIN IMMEDIATE`` so that two processes claiming
    deliveries serialise on the write lock instead of failing on upgrade
    (``read_transaction`` begins deferred instead).
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, pool_pre_ping=True
        )
        event.listen(engine, "connect", _sqlite_pragmas)

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: sa.Connection) -> None:
            # Readers (read_transaction) begin deferred: in WAL mode they then read a
            # snapshot without waiting for the write lock that dispatch holds.
            read_only = conn.get_execution_options().get(READ_ONLY_OPTION)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the settings' database)."""
    return make_engine(url or get_settings().resolved_database_url())


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    """A sessionmaker bound to ``engine`` (default: the settings' engine)."""
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextlib.contextmanager
def transaction(engine: Engine | None = None) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on any error."""
    with session_factory(engine)() as session, session.begin():
        yield session


@contextlib.contextmanager
def read_transaction(engine: Engine | None = None) -> Iterator[Session]:
    """A session in one read-only snapshot, for hot read paths (feeds, reports).

    On SQLite it begins deferred, so it never queues behind the writers of the
    delivery queue (WAL readers see the last committed state); on PostgreSQL it
    is an ordinary transaction. Writing in it is a programming error: on SQLite
    the write may fail with ``database is locked`` under load.
    """
    bind = (engine or get_engine()).execution_options(**{READ_ONLY_OPTION: True})
    with Session(bind=bind, expire_on_commit=False) as session, session.begin():
        yield session


def database_problem(engine: Engine) -> str | None:
    """None when the database answers ``SELECT 1``; else the driver error's class name
    (``OperationalError``…), for readiness probes."""
    try:
        with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return type(exc).__name__
    return None


def is_postgres(engine: Engine) -> bool:
    """True when ``engine`` talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"
