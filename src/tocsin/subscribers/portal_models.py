"""Tables of the public citizen portal (issue 10 points 1, 2, 3, 5; SPEC F7–F9, F36).

New tables only (the subscriber, contact point and address tables stay as they are):

- ``citizen_session``: a citizen's login to ``/register`` and ``/me``, separate from the
  operators' ``web_session``. The cookie carries a random token; the table keeps its
  SHA-256 only. ``pending_kind``/``pending_value`` is the contact being verified (the only
  clear personal data here), erased when the profile is deleted or the session ends.
- ``portal_code``: one-time codes, stored as keyed hashes (HMAC-SHA-256), never in clear.
- ``portal_send``: one row per code that left (or was refused) for the cost guard (F36):
  numbers and IP addresses are kept as keyed hashes only, with the prefix and country.
- ``subscriber_profile``, ``subscriber_consent``, ``address_detail``: what the portal
  adds to a subscriber (channels, accessibility, consents with text version and time,
  address label and text).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class CitizenSession(Base):
    """A citizen's browser session: ``token_hash`` = SHA-256 (hex) of the cookie token.

    ``subscriber_id`` is set once logged in to an existing profile; before that the
    session holds the contact being registered (``pending_kind``: mobile, landline or
    email; ``pending_value``: E.164 number or normalised address) and ``verified_at``
    once its code was entered. ``expires_at``: UTC, absolute.
    """

    __tablename__ = "citizen_session"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    pending_kind: Mapped[str | None] = mapped_column(sa.String(16))
    pending_value: Mapped[str | None] = mapped_column(sa.String(320))
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class PortalCode(Base):
    """A one-time code: 6 digits, ``code_hash`` = HMAC-SHA-256 of (id-free) code and
    session; valid until ``expires_at``; ``tries`` wrong entries (at most 5);
    ``used_at`` once accepted (single use). ``address_hash``: keyed hash of the contact."""

    __tablename__ = "portal_code"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    address_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class PortalSend(Base):
    """One code request seen by the cost guard: ``sent`` (a message left) or refused
    (``refused`` names the rule). ``number_hash``/``ip_hash``: keyed hashes; ``prefix``:
    the number without its last 4 digits (``+32470123``); ``country``: ISO 3166 alpha-2
    ("" for e-mail). ``entered``: its code was entered (conversion, for the alarm)."""

    __tablename__ = "portal_send"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    channel: Mapped[str] = mapped_column(sa.String(8))
    number_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    ip_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    prefix: Mapped[str] = mapped_column(sa.String(16), index=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    sent: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    refused: Mapped[str | None] = mapped_column(sa.String(32))
    entered: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: the form challenge's nonce: each challenge is used once
    nonce: Mapped[str | None] = mapped_column(sa.String(32), unique=True)


class SubscriberProfile(Base):
    """A citizen's choices: ``channels`` comma-separated among sms, voice, email;
    ``accessibility``: ``none``, ``deaf`` (never called) or ``blind`` (voice preferred)."""

    __tablename__ = "subscriber_profile"

    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True)
    channels: Mapped[str] = mapped_column(sa.String(40))
    accessibility: Mapped[str] = mapped_column(sa.String(16), default="none")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubscriberConsent(Base):
    """One consent decision: ``kind`` ``alerts`` or ``info``, ``given`` yes/no, the
    ``text_version`` the citizen saw (e.g. ``alerts-v1``) in ``language``, and when."""

    __tablename__ = "subscriber_consent"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    given: Mapped[bool] = mapped_column(sa.Boolean)
    text_version: Mapped[str] = mapped_column(sa.String(40))
    language: Mapped[str] = mapped_column(sa.String(2))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AddressDetail(Base):
    """What the citizen typed for one address: ``kind`` (home, work, school, family,
    other), municipality, street, house number and box as text; ``geocoded``:
    ``municipality`` (the position is the municipality's representative point: the
    register has no data for it), ``register`` (the official address ``best_id`` of the
    address register, ``geo.address_models``) or ``pin`` (placed by the citizen on the
    map: the register has the municipality but not this address)."""

    __tablename__ = "address_detail"

    address_id: Mapped[int] = mapped_column(
        sa.ForeignKey("address.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    municipality: Mapped[str] = mapped_column(sa.String(100))
    street: Mapped[str] = mapped_column(sa.String(150))
    number: Mapped[str] = mapped_column(sa.String(20))
    geocoded: Mapped[str] = mapped_column(sa.String(16), default="municipality")
    box: Mapped[str] = mapped_column(sa.String(40), default="", server_default="")
    best_id: Mapped[str | None] = mapped_column(sa.String(200))


def takes_channel(subscriber_id: sa.ColumnElement[int], channel: str) -> sa.ColumnElement[bool]:
    """SQL condition: the subscriber ``subscriber_id`` takes ``channel`` (``sms``,
    ``email``, ``voice``): true unless the citizen's own portal profile leaves it out
    (SPEC F7). Subscribers without a profile (imported registers, the demo) take every
    channel their contact points allow; whether a contact point can take it at all
    (a landline no SMS, a mobile voice only when chosen) is the caller's rule."""
    return ~sa.exists().where(SubscriberProfile.subscriber_id == subscriber_id,
                              ~SubscriberProfile.channels.contains(channel))


def chosen_channels(profile_channels: str | None) -> frozenset[str] | None:
    """The channels of a profile's ``channels`` column (``None``: no profile, every
    channel), the Python side of :func:`takes_channel`."""
    if profile_channels is None:
        return None
    return frozenset(c for c in profile_channels.split(",") if c)



class SubscriberReminder(Base):
    """The yearly "is this still correct?" e-mail (issue 10 point 5) to one subscriber:
    at most one per ``year`` (the calendar year it fell due, UTC), the primary key being
    the claim two workers cannot both win. ``claimed_at`` when a worker took it,
    ``sent_at`` once the provider accepted it (None: being sent, or its worker died)."""

    __tablename__ = "subscriber_reminder"

    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True)
    year: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
