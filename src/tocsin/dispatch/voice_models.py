"""Voice calls (SPEC F22, F26, F29): one row per call attempt, the provider's callbacks,
and the route rows that hold the call-start rate and the trunk size across workers.

A voice ``delivery`` (channel ``voice``) is one number to call in one campaign; each
attempt at it (the first call and every retry after busy / no answer / failed) is
one ``voice_call``. See ``dispatch.calls`` and docs/decisions/0012-voice-calls.md.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow
from tocsin.dispatch.models import BigId


class VoiceRoute(Base):
    """One voice provider account (``live``, ``simulation``): the row every worker locks
    (PostgreSQL ``SELECT … FOR UPDATE``; SQLite ``BEGIN IMMEDIATE``) before it starts a
    call, so that the starts per sliding minute and the simultaneous calls hold
    across all workers. ``last_start_at``: the start slot last given (pacing)."""

    __tablename__ = "voice_route"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    last_start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class VoiceCall(Base):
    """One call attempt to one voice delivery.

    ``status``: the provider's call status (Twilio ``CallStatus``: ``initiated``,
    ``queued``, ``ringing``, ``in-progress``, ``completed``, ``busy``, ``no-answer``,
    ``failed``, ``canceled``), ``starting`` before the provider answered the request,
    ``not-started`` when it refused it or the start permit expired (not an attempt).
    ``answered_by``: ``human``, ``machine_start``, ``machine_end_beep``… (answering
    machine detection). ``duration_s``: the provider's ``CallDuration`` (seconds, 0
    unless answered). ``digits``: keys pressed, in order (``1`` = heard, ``9`` =
    repeat). ``ended_at`` is set by the final status; until then the call counts
    against the trunk.
    """

    __tablename__ = "voice_call"
    __table_args__ = (
        sa.Index("ix_voice_call_route_started", "route", "started_at"),
        sa.Index("ix_voice_call_active", "route",
                 postgresql_where=sa.text("ended_at IS NULL"),
                 sqlite_where=sa.text("ended_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("delivery.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[str] = mapped_column(sa.String(32), index=True)
    route: Mapped[str] = mapped_column(sa.String(40))
    attempt: Mapped[int] = mapped_column(sa.SmallInteger, default=1)
    provider_call_sid: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="starting")
    answered_by: Mapped[str | None] = mapped_column(sa.String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[int] = mapped_column(sa.Integer, default=0)
    digits: Mapped[str] = mapped_column(sa.String(32), default="")
    acknowledged: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                               server_default=sa.false())
    hangup_requested_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.String(300))


class VoiceCallEvent(Base):
    """A signed request from the provider about a call (status callback, key press, TwiML
    fetch), kept once: ``signature`` (its ``X-Twilio-Signature``) is unique, so the same
    request sent again (a replay) is refused."""

    __tablename__ = "voice_call_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str | None] = mapped_column(sa.String(32))
    signature: Mapped[str] = mapped_column(sa.String(100), unique=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
