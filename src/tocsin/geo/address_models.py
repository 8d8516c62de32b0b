"""The official address register (BeST-Address), imported with ``tocsin addresses import``
(issue 10 point 4; docs/decisions/0022-address-register.md).

- ``address_point``: one BeST address (its ``best_id``), with its names in nl/fr/de as the
  register gives them, the house number and box, and its position (WGS84 degrees).
  ``street_key`` is the street's search key (the first of its nl, fr, de names, folded:
  lower case, no accents, no punctuation); ``number_key``/``box_key`` likewise.
- ``address_street``: each street name of a municipality, one row per language, with its
  folded ``name_key`` for prefix lookups (the autocomplete).
- ``address_place``: municipality names (``kind`` ``municipality``) and postal names
  (``kind`` ``postal``: "Haren", "Laeken"…) in each language, for the municipality field.
- ``address_import``: one row per import run; ``address_stage``: the rows of a run being
  read, merged into ``address_point`` in one transaction at the end of the run.

The ``*_key`` columns compare byte by byte (collation "C" on PostgreSQL) so that a prefix
is a range ``key >= p AND key < p || '~'`` on the plain B-tree index of both databases.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def Key(length: int) -> sa.String:  # noqa: N802 - a column type, named like one
    """A folded search key column: byte order on PostgreSQL (collation "C")."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


class _AddressFields:
    """The columns a BeST row gives (``address_point`` and ``address_stage``)."""

    best_id: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16))
    nis: Mapped[str] = mapped_column(sa.String(5))
    postcode: Mapped[str] = mapped_column(sa.String(4))
    municipality_nl: Mapped[str] = mapped_column(sa.String(100), default="")
    municipality_fr: Mapped[str] = mapped_column(sa.String(100), default="")
    municipality_de: Mapped[str] = mapped_column(sa.String(100), default="")
    street_nl: Mapped[str] = mapped_column(sa.String(150), default="")
    street_fr: Mapped[str] = mapped_column(sa.String(150), default="")
    street_de: Mapped[str] = mapped_column(sa.String(150), default="")
    street_key: Mapped[str] = mapped_column(Key(150))
    number: Mapped[str] = mapped_column(sa.String(20))
    number_key: Mapped[str] = mapped_column(Key(20))
    box: Mapped[str] = mapped_column(sa.String(40), default="")
    box_key: Mapped[str] = mapped_column(Key(40), default="")
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)


class AddressPoint(_AddressFields, Base):
    """One official address: ``status`` ``current`` or ``retired`` (kept, never offered);
    ``run_id``: the import run that last wrote it."""

    __tablename__ = "address_point"
    __table_args__ = (
        sa.Index("ix_address_point_best_id", "best_id", unique=True),
        sa.Index("ix_address_point_street", "nis", "street_key", "number_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(sa.Integer)


class AddressStage(_AddressFields, Base):
    """A row of the import run ``run_id`` (``row``: its line in the file), before the merge."""

    __tablename__ = "address_stage"
    __table_args__ = (sa.Index("ix_address_stage_best_id", "run_id", "best_id"),)

    run_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    row: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)


class AddressStreet(Base):
    """A street name of municipality ``nis`` (postcode ``postcode``) in ``lang`` (nl, fr,
    de); ``street_key`` joins it to ``address_point``."""

    __tablename__ = "address_street"
    __table_args__ = (
        sa.UniqueConstraint("nis", "postcode", "street_key", "lang"),
        sa.Index("ix_address_street_name", "nis", "name_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    nis: Mapped[str] = mapped_column(sa.String(5))
    postcode: Mapped[str] = mapped_column(sa.String(4))
    street_key: Mapped[str] = mapped_column(Key(150))
    lang: Mapped[str] = mapped_column(sa.String(2))
    name: Mapped[str] = mapped_column(sa.String(150))
    name_key: Mapped[str] = mapped_column(Key(150))


class AddressPlace(Base):
    """A name for the municipality field: ``kind`` ``municipality`` (``postcode`` "") or
    ``postal`` (a postcode's name, e.g. "Haren" 1130 in Brussels), in ``lang``."""

    __tablename__ = "address_place"
    __table_args__ = (
        sa.UniqueConstraint("kind", "nis", "postcode", "lang"),
        sa.Index("ix_address_place_name", "name_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    nis: Mapped[str] = mapped_column(sa.String(5), index=True)
    postcode: Mapped[str] = mapped_column(sa.String(4))
    lang: Mapped[str] = mapped_column(sa.String(2))
    name: Mapped[str] = mapped_column(sa.String(100))
    name_key: Mapped[str] = mapped_column(Key(100))


class AddressImport(Base):
    """One run of ``tocsin addresses import``: ``status`` ``running``, ``done`` or
    ``failed``; the counts of the run (``rows`` read; ``imported`` new; ``updated``
    changed; ``unchanged``; ``retired`` rows whose status is retired; ``refused``)."""

    __tablename__ = "address_import"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(sa.String(300))
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(sa.Integer, default=0)
    imported: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated: Mapped[int] = mapped_column(sa.Integer, default=0)
    unchanged: Mapped[int] = mapped_column(sa.Integer, default=0)
    retired: Mapped[int] = mapped_column(sa.Integer, default=0)
    refused: Mapped[int] = mapped_column(sa.Integer, default=0)
