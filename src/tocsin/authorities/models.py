"""Tables of authorities (with territory), users and the append-only audit log (F1, F2, F5, F6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow


class Authority(Base):
    """A public authority: ``BE`` (federal), a province or a municipality (NIS code).

    ``territory`` is a GeoJSON (Multi)Polygon in WGS84 lon/lat, already repaired
    (valid). ``languages`` is the official language order, e.g. ``"fr,nl"``.
    ``language_fallback`` is the order in which missing translations fall back
    (e.g. ``"fr,nl,de,en"``; empty = ``languages`` then the others, SPEC F13).
    ``sms_max_segments`` caps an SMS (empty = the deployment's default, F14).
    """

    __tablename__ = "authority"

    id: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # federal | province | municipality
    name_fr: Mapped[str] = mapped_column(sa.String(200))
    name_nl: Mapped[str] = mapped_column(sa.String(200))
    name_de: Mapped[str | None] = mapped_column(sa.String(200))
    parent_id: Mapped[str | None] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    languages: Mapped[str] = mapped_column(sa.String(32))
    language_fallback: Mapped[str | None] = mapped_column(sa.String(32))
    sms_max_segments: Mapped[int | None] = mapped_column(sa.SmallInteger)
    agreement_type: Mapped[int] = mapped_column(sa.SmallInteger, default=1)
    # Two-person rule: live alerts wait for a second user's approval (off by default,
    # so that a lone operator at night is never blocked; simulation never waits).
    two_person_rule: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                                  server_default=sa.false())
    population: Mapped[int | None] = mapped_column(sa.Integer)
    territory: Mapped[str] = mapped_column(sa.Text)  # GeoJSON geometry, WGS84
    min_lon: Mapped[float] = mapped_column(sa.Float)
    min_lat: Mapped[float] = mapped_column(sa.Float)
    max_lon: Mapped[float] = mapped_column(sa.Float)
    max_lat: Mapped[float] = mapped_column(sa.Float)

    @property
    def language_list(self) -> list[str]:
        return [x for x in self.languages.split(",") if x]

    def name(self, language: str = "fr") -> str:
        """The authority's name in ``language`` (falls back to French, then Dutch)."""
        names = {"nl": self.name_nl, "de": self.name_de}
        return names.get(language) or self.name_fr or self.name_nl


class User(Base):
    """A platform user of one authority. Roles: federal_operator, admin, operator, viewer."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(120), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    authority_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    role: Mapped[str] = mapped_column(sa.String(32), default="operator")
    lbsms_trained: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    # RFC 6238 shared secret (base32) once enrolment is confirmed; NULL = no TOTP yet.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    # The last accepted TOTP time step (Unix time // 30): a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The interface language the user chose (fr, nl, de, en); NULL = from the browser.
    language: Mapped[str | None] = mapped_column(sa.String(8))


class WebSession(Base):
    """A server-side web session: the cookie carries only a random id, stored here hashed.

    ``token_hash``: SHA-256 hex of the id. A session ends when ``revoked_at`` is
    set (logout, password change, an admin's revoke), after ``idle_timeout_s``
    seconds without a request, or at ``expires_at`` (absolute lifetime).
    ``pending``: ``None`` once fully logged in; ``"totp"`` (the password was
    right, the TOTP code is awaited) or ``"enrol"`` (a live login of a sender
    role that must enrol TOTP first). ``second_factor``: TOTP was passed.
    ``csrf_secret``: the synchroniser token of the session's forms and API calls.
    ``totp_enrol_secret``: the secret shown on the enrolment page, until confirmed.
    """

    __tablename__ = "web_session"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("app_user.id"), index=True)
    environment: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    idle_timeout_s: Mapped[int] = mapped_column(sa.Integer)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pending: Mapped[str | None] = mapped_column(sa.String(16))
    second_factor: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    csrf_secret: Mapped[str] = mapped_column(sa.String(64))
    totp_enrol_secret: Mapped[str | None] = mapped_column(sa.String(64))


class LoginAttempt(Base):
    """One login attempt (password or TOTP step), counted across every web process.

    ``username`` as typed (lower-cased, at most 120 characters), ``client``: the
    client address (after trusted proxies). Rows older than the look-back are
    deleted as new ones arrive.
    """

    __tablename__ = "login_attempt"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(sa.String(120), index=True)
    client: Mapped[str] = mapped_column(sa.String(64), index=True)
    success: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class UserInvitation(Base):
    """A single-use invitation link (F1 users): only the SHA-256 hex of its token is kept.

    The invitee sets a username and a password; ``used_at`` marks it spent.
    """

    __tablename__ = "user_invitation"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    role: Mapped[str] = mapped_column(sa.String(32))
    authority_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    invited_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))


class AuditEntry(Base):
    """One row of the append-only, hash-chained audit log (F6).

    Who (``actor_id``, a pseudonymous id such as ``user:42``, ``key:7``, ``cli``),
    what (``action``, ``target``, ``detail``), when (``at``, UTC), on behalf of
    which authority (``on_behalf_of``) and from where (``source``: ``cli``,
    ``scheduler`` or ``addr:<keyed hash>`` of an IP address). Personal data
    (user names, addresses) is kept in ``audit_personal``, outside the hash.

    ``seq`` numbers the chain from 1 without gaps; ``hash`` is the SHA-256 of
    the canonical serialisation of this row with ``prev_hash`` (the previous
    entry's hash, or 64 zeros for the first); see ``authorities.audit`` and
    docs/decisions/0009. Rows from before the chain (migration 0005) have
    ``seq``/``hash`` NULL and carry ``actor``/``source`` as they were written.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(120))  # = actor_id in chained rows
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(200))
    source: Mapped[str | None] = mapped_column(sa.String(200))  # "cli", "addr:<hmac>", ...
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    actor_id: Mapped[str | None] = mapped_column(sa.String(120), index=True)
    on_behalf_of: Mapped[str | None] = mapped_column(sa.String(8))  # authority id
    seq: Mapped[int | None] = mapped_column(sa.BigInteger, unique=True, index=True)
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    hash: Mapped[str | None] = mapped_column(sa.String(64))


class AuditPersonal(Base):
    """Personal data of one audit entry, outside the hash chain (GDPR, F6).

    ``actor_name`` is the user name (or the name typed at a failed login),
    ``address`` the client IP address, ``data`` any other personal detail
    (e.g. ``{"username": …}`` of a user created). ``at`` copies the entry's
    time so that retention (``purge_personal``) needs no join. Deleting a row
    here never breaks the chain.
    """

    __tablename__ = "audit_personal"

    entry_id: Mapped[int] = mapped_column(sa.BigInteger, sa.ForeignKey("audit_log.id"),
                                          primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor_name: Mapped[str | None] = mapped_column(sa.String(200))
    address: Mapped[str | None] = mapped_column(sa.String(200))
    data: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class Partnership(Base):
    """An ad-hoc partnership of two neighbouring municipalities (F3).

    Proposed by ``proposer_id``'s admin, accepted by ``partner_id``'s; while it is
    accepted, not revoked and before ``ends_at``, either may target into the
    other's territory.
    """

    __tablename__ = "partnership"

    id: Mapped[int] = mapped_column(primary_key=True)
    proposer_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    partner_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    reason: Mapped[str] = mapped_column(sa.String(500), default="")
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    proposed_by: Mapped[str] = mapped_column(sa.String(120))
    proposed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_by: Mapped[str | None] = mapped_column(sa.String(120))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(sa.String(120))
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Cooperation(Base):
    """A structural cooperation of municipalities, each with its own agreement (F4)."""

    __tablename__ = "cooperation"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CooperationMember(Base):
    """One member authority of a cooperation (an authority is in at most one)."""

    __tablename__ = "cooperation_member"

    authority_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), primary_key=True)
    cooperation_id: Mapped[int] = mapped_column(sa.ForeignKey("cooperation.id"), index=True)


class TrainingRecord(Base):
    """A training the federal operator recorded for a user (F5: ``lbsms`` =
    location-based SMS)."""

    __tablename__ = "training_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("app_user.id"), index=True)
    topic: Mapped[str] = mapped_column(sa.String(32))
    trained_on: Mapped[dt.date] = mapped_column(sa.Date)
    trainer: Mapped[str] = mapped_column(sa.String(200))
    recorded_by: Mapped[str] = mapped_column(sa.String(120))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
