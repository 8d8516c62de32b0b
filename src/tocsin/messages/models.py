"""Message templates: ready-to-use scenarios per authority (SPEC F15)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow


class MessageTemplate(Base):
    """A prepared campaign of one authority, launched in at most three steps.

    ``texts`` and ``content`` have the campaign's shapes (language -> base text;
    language -> per-channel fields) and may hold placeholders such as
    ``{area_name}``, ``{time}`` or free fields named in ``fields`` (a list of
    names the operator fills at launch). ``area`` is a saved GeoJSON geometry
    (WGS84) or ``area_nis`` a municipality; both empty = chosen at launch.
    """

    __tablename__ = "message_template"
    __table_args__ = (sa.UniqueConstraint("authority_id", "name"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    authority_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(16))
    channels: Mapped[str] = mapped_column(sa.String(64))
    texts: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    content: Mapped[dict[str, dict[str, str]]] = mapped_column(sa.JSON, default=dict)
    fields: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    area: Mapped[str | None] = mapped_column(sa.Text)
    area_nis: Mapped[str | None] = mapped_column(sa.String(5))
    cap_params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
