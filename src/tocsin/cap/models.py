"""CAP gateway access keys of integrators (SPEC F24, F36)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow


class CapGatewayKey(Base):
    """An integrator's (display-panel or alert-map vendor's) key to the CAP gateway.

    Only a hash of the key is stored (``key_hash``); ``key_prefix`` (the first
    characters, shown in lists) finds it. ``area`` (GeoJSON, WGS84) limits the
    alerts the key sees to those intersecting it; empty = the whole country.
    New alerts are pushed to ``webhook_url`` (HTTPS) signed with HMAC-SHA256
    under ``webhook_secret``; pushes are ``delivery`` rows of channel
    ``webhook`` whose address is this key's id. A revoked key (``revoked_at``)
    reads nothing and receives nothing.
    """

    __tablename__ = "cap_gateway_key"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    key_prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(128))
    area: Mapped[str | None] = mapped_column(sa.Text)
    webhook_url: Mapped[str | None] = mapped_column(sa.String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(sa.String(200))
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
