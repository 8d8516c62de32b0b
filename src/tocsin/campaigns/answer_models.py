"""Tables of group messages that collect answers (issue 10 point 8, decision 0020).

``answer_call`` is the answerable side of a campaign (its options, letter, quota);
``inbound_message`` every SMS that came in (over SMPP or the provider's webhook), with
what it was read as; ``campaign_answer`` one answer per person and campaign;
``quota_person`` the ordered list of a quota call and where each person stands.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow
from tocsin.dispatch.models import BigId


class AnswerCall(Base):
    """The answer options of ``campaign_id`` (2–9 labels, ``options``), its ``letter``
    (the reply prefix when several calls are open for one number), and, for a quota,
    ``quota`` people wanted, ``timeout_s`` to answer, ``escalate_s`` between channel
    steps, ``accept_option`` (1-based). ``status``: open | filled | exhausted | closed
    (answers are taken while open; a quota call closes when filled or exhausted).
    ``thanks``: language -> the "filled, thank you" text."""

    __tablename__ = "answer_call"

    campaign_id: Mapped[str] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    authority_id: Mapped[str] = mapped_column(sa.String(8), index=True)
    options: Mapped[list[str]] = mapped_column(sa.JSON)
    letter: Mapped[str] = mapped_column(sa.String(1))
    quota: Mapped[int | None] = mapped_column(sa.Integer)
    timeout_s: Mapped[int] = mapped_column(sa.Integer, default=900)
    escalate_s: Mapped[int] = mapped_column(sa.Integer, default=300)
    accept_option: Mapped[int] = mapped_column(sa.SmallInteger, default=1)
    status: Mapped[str] = mapped_column(sa.String(16), default="open", index=True)
    thanks: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    #: The follow-up campaign sent to those who had not answered, if any.
    follow_up_id: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class InboundMessage(Base):
    """An SMS received (``channel`` sms; ``via`` smpp | webhook): ``sender`` E.164 as
    given, ``text`` decoded; ``campaign_id``/``option`` what it was read as, else
    ``reason`` (``campaigns.answers.REASONS``)."""

    __tablename__ = "inbound_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    via: Mapped[str] = mapped_column(sa.String(16))
    sender: Mapped[str] = mapped_column(sa.String(32), index=True)
    recipient: Mapped[str | None] = mapped_column(sa.String(32))
    text: Mapped[str] = mapped_column(sa.Text)
    provider_id: Mapped[str | None] = mapped_column(sa.String(100))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    campaign_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    option: Mapped[int | None] = mapped_column(sa.SmallInteger)
    reason: Mapped[str | None] = mapped_column(sa.String(32))


class CampaignAnswer(Base):
    """The answer of one person (``respondent``: the contact's key, else the address) to
    ``campaign_id``: ``option`` 1-based, by ``channel`` from ``address``. The first
    answer of a quota call stands; otherwise a later answer replaces it.
    ``possible_scanner``: an e-mail button pressed within 10 s of delivery."""

    __tablename__ = "campaign_answer"
    __table_args__ = (sa.UniqueConstraint("campaign_id", "respondent"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    respondent: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(320))
    option: Mapped[int] = mapped_column(sa.SmallInteger)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    possible_scanner: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                                   server_default=sa.false())


class QuotaPerson(Base):
    """One person of a quota call's ordered list (``campaigns.quota.Person``):
    ``position`` in the list, ``key`` (mobile, else e-mail), ``channels`` (comma
    separated, escalation order), ``state``, ``sent`` (channels used)."""

    __tablename__ = "quota_person"

    campaign_id: Mapped[str] = mapped_column(
        sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(320), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    mobile: Mapped[str | None] = mapped_column(sa.String(20))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    language: Mapped[str] = mapped_column(sa.String(2))
    channels: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(16), default="waiting")
    sent: Mapped[str] = mapped_column(sa.String(64), default="")
    option: Mapped[int | None] = mapped_column(sa.SmallInteger)
    asked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    thanked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
