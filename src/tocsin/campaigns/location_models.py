"""One row per location-based send of a campaign: an LB-SMS broadcast at one mobile
operator, or the cell-broadcast messages at one CBC (SPEC F18, F31; issue 11).

The campaign's ``delivery`` row of channel ``lbsms``/``cb`` (address = the operator key)
carries the queue state (claimed, sent, final) like any delivery; this row carries what
the operator reports: phones targeted, per-cell counts, the callbacks applied.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class LocationSend(Base):
    """An operator's side of one location-based channel of one campaign.

    ``state``: ``queued`` (not yet sent), then for LB-SMS the operator's last event
    (``accepted``, ``resolved``, ``sending``, ``completed``, ``stopped``, ``failed``), for
    cell broadcast ``broadcasting``, ``replaced`` (by an update's messages), ``stopped``,
    ``failed``. ``reference``: Tocsin's
    reference sent to the operator (``tocsin:<campaign>:<channel>:<operator>``), by which
    callbacks are found. ``endpoint``: the base URL it was sent to (stop and cancel go
    there). ``last_seq``/``pending``: the callbacks applied in order and those waiting for
    an earlier ``seq``; ``duplicates``: callbacks received again. ``detail``: cell
    broadcast's planned ECBE messages (``{"messages": [...], "msg_code"}``).
    """

    __tablename__ = "location_send"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "channel", "operator"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"),
                                             index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    operator: Mapped[str] = mapped_column(sa.String(16))
    reference: Mapped[str] = mapped_column(sa.String(120), unique=True)
    endpoint: Mapped[str | None] = mapped_column(sa.String(300))
    operator_ref: Mapped[str | None] = mapped_column(sa.String(120), index=True)
    state: Mapped[str] = mapped_column(sa.String(16), default="queued")
    phones_targeted: Mapped[int] = mapped_column(sa.Integer, default=0)
    cells_resolved: Mapped[int] = mapped_column(sa.Integer, default=0)
    submitted: Mapped[int] = mapped_column(sa.Integer, default=0)
    delivered: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    expired: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_seq: Mapped[int] = mapped_column(sa.Integer, default=0)
    duplicates: Mapped[int] = mapped_column(sa.Integer, default=0)
    pending: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    per_cell: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    stop_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
