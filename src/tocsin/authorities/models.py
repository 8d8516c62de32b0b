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
    """One row of the append-only audit log (F6): who did what, when, from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.String(120))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.String(200))
    source: Mapped[str | None] = mapped_column(sa.String(200))  # IP address, "cli", ...
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
