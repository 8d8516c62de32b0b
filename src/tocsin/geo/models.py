"""Imported cell models (SPEC F17, F18): an operator's real cells replace its synthetic ones."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow


class CellImport(Base):
    """One import of an operator's cells (``tocsin cells import``). The latest import
    of an ``operator`` (``op1``… as in ``cellmodel.SYNTHETIC_OPERATORS``) is the one used;
    ``source`` is what the operator sent (file name), ``cells`` the number of rows."""

    __tablename__ = "cell_import"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    operator: Mapped[str] = mapped_column(sa.String(16), index=True)
    source: Mapped[str] = mapped_column(sa.String(300))
    cells: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    imported_by: Mapped[str] = mapped_column(sa.String(120))
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Cell(Base):
    """One imported cell: site position (WGS84 degrees), ``azimuth`` and ``beamwidth``
    (degrees), ``range_m`` (metres), ``tech`` (2G…5G)."""

    __tablename__ = "cell"
    __table_args__ = (sa.UniqueConstraint("import_id", "cell_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(sa.ForeignKey("cell_import.id"), index=True)
    cell_id: Mapped[str] = mapped_column(sa.String(64))
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    azimuth: Mapped[float] = mapped_column(sa.Float)
    beamwidth: Mapped[float] = mapped_column(sa.Float)
    range_m: Mapped[float] = mapped_column(sa.Float)
    tech: Mapped[str] = mapped_column(sa.String(4))
