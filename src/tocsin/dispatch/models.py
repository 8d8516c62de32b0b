"""The delivery queue and delivery receipts (F21, F23, F26, F30).

The ``delivery`` table is the queue: one row per (campaign, channel, contact
point), claimed by workers with leases (see ``dispatch.queue``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# SPEC F26 delivery states.
QUEUED, IN_FLIGHT, SENT, DELIVERED, FAILED, EXPIRED, STOPPED = (
    "queued", "in_flight", "sent", "delivered", "failed", "expired", "stopped",
)
STATES = (QUEUED, IN_FLIGHT, SENT, DELIVERED, FAILED, EXPIRED, STOPPED)
FINAL_STATES = frozenset({DELIVERED, FAILED, EXPIRED, STOPPED})


class Delivery(Base):
    """One message to one contact point (E.164 number or e-mail address) of one campaign."""

    __tablename__ = "delivery"
    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "channel", "address"),
        sa.Index(
            "ix_delivery_queued", "priority", "id",
            postgresql_where=sa.text("state = 'queued'"),
            sqlite_where=sa.text("state = 'queued'"),
        ),
        sa.Index("ix_delivery_campaign_state", "campaign_id", "channel", "state"),
        # The claim serves one campaign at a time (priority, then round-robin):
        # an index seek per campaign and channel, in id order (decision 0014).
        sa.Index(
            "ix_delivery_queued_campaign", "campaign_id", "channel", "id",
            postgresql_where=sa.text("state = 'queued'"),
            sqlite_where=sa.text("state = 'queued'"),
        ),
        sa.Index(
            "ix_delivery_lease", "lease_until",
            postgresql_where=sa.text("state = 'in_flight'"),
            sqlite_where=sa.text("state = 'in_flight'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(320))
    language: Mapped[str] = mapped_column(sa.String(2))
    state: Mapped[str] = mapped_column(sa.String(16), default=QUEUED)
    priority: Mapped[int] = mapped_column(sa.SmallInteger)
    environment: Mapped[str] = mapped_column(sa.String(16))
    segments: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    cost_eur: Mapped[Decimal] = mapped_column(sa.Numeric(10, 3), default=Decimal("0"))
    attempts: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    #: Submissions the provider accepted (a resend after a lost outcome counts again).
    submissions: Mapped[int] = mapped_column(sa.SmallInteger, default=0,
                                             server_default="0")
    #: Submissions whose fate is unknown: the worker holding the lease died, or the
    #: connection was lost with the message on the wire (each may have been accepted).
    unconfirmed: Mapped[int] = mapped_column(sa.SmallInteger, default=0, server_default="0")
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(sa.String(120))
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(200))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    final_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.String(500))


class SmsPartId(Base):
    """The SMSC message id of one submitted SMS part, so receipts find their delivery."""

    __tablename__ = "sms_part_id"

    message_id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("delivery.id", ondelete="CASCADE"), index=True
    )


class SmsMessage(Base):
    """The SMSC message id of one submitted SMS part, keyed by provider account.

    Ids are not unique: an SMSC restart or a second account hands out the same
    ids again, so a receipt is matched on (``account``, ``id_key``) to the latest
    submission (``queue.apply_receipts``). ``id_key``: the id in lower case
    without leading zeros (``queue.message_id_key``), so a hexadecimal id in
    submit_sm_resp also finds a receipt that writes it in decimal.
    ``submitted_at``: when the outcome was recorded (UTC).
    """

    __tablename__ = "sms_message"
    __table_args__ = (sa.Index("ix_sms_message_key", "id_key", "account"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(sa.String(200))
    id_key: Mapped[str] = mapped_column(sa.String(100))
    message_id: Mapped[str] = mapped_column(sa.String(100))
    delivery_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("delivery.id", ondelete="CASCADE"), index=True
    )
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: The SMPP 3.4 Appendix B stat of this part's receipt, once applied.
    stat: Mapped[str | None] = mapped_column(sa.String(16))


class DeliveryReceipt(Base):
    """A delivery receipt (SMPP deliver_sm, SMTP bounce) as received, applied in batches.

    A receipt may arrive before the ``submit_sm_resp`` that names its message id
    is recorded, so receipts are stored first and matched later.
    """

    __tablename__ = "delivery_receipt"
    __table_args__ = (
        sa.Index("ix_delivery_receipt_pending", "id",
                 postgresql_where=sa.text("applied_at IS NULL"),
                 sqlite_where=sa.text("applied_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    message_id: Mapped[str] = mapped_column(sa.String(100), index=True)
    #: The provider account whose bind received it (``SmppAccount.key``); None: any.
    account: Mapped[str | None] = mapped_column(sa.String(200))
    #: ``message_id`` normalised (``queue.message_id_key``), and read as a decimal
    #: number written in hexadecimal (some SMSCs write hex ids in decimal in receipts).
    id_key: Mapped[str | None] = mapped_column(sa.String(100))
    alt_key: Mapped[str | None] = mapped_column(sa.String(100))
    stat: Mapped[str] = mapped_column(sa.String(16))
    err: Mapped[str | None] = mapped_column(sa.String(16))
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ProviderRate(Base):
    """A token bucket of one provider account, shared by every worker (decision 0014).

    ``account``: the provider account's key (``smpp:host:port:system_id``); ``tokens``:
    messages that may still be submitted now (refilled at the account's rate, capped at
    one second's worth); ``updated_at``: when ``tokens`` was last computed. Workers take
    tokens in blocks (``dispatch.ratelimit``), one short row-locked update per block.
    """

    __tablename__ = "provider_rate"

    account: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(sa.Float)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CampaignRetention(Base):
    """Where the retention job stands with one finished campaign (``dispatch.retention``,
    docs/decisions/0023): ``owner``/``lease_until`` the worker pseudonymising it now (a
    lease, so that two workers never walk the same campaign at once; a dead worker's
    lease runs out and another continues), ``cursor`` the last delivery id done (keyset),
    ``deliveries`` the rows pseudonymised so far, ``done_at`` when every row was."""

    __tablename__ = "campaign_retention"

    campaign_id: Mapped[str] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    owner: Mapped[str | None] = mapped_column(sa.String(120))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cursor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    deliveries: Mapped[int] = mapped_column(sa.Integer, default=0)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
