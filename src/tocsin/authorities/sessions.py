"""Web sessions and login: server-side sessions, login rate limiting, the TOTP step.

Sessions live in ``web_session`` (OWASP Session Management Cheat Sheet): the
cookie carries only a random id (256 bits), the table only its SHA-256, so a
copy of the database opens no session. A session ends at logout, at a password
change, at an admin's revoke (``revoked_at``), after ``idle_timeout_s`` without
a request, or at ``expires_at``. Each login, and each passed second factor,
issues a new id (no session fixation).

Login attempts are counted in ``login_attempt``, so every web process sees the
same counts. The policy slows down rather than locks (NIST SP 800-63B §5.2.2),
so that nobody can lock an operator out during an emergency:

- per account: after ``ACCOUNT_FREE_FAILURES`` failures since its last success,
  each attempt waits 2^(n-4) seconds after the previous failure, at most
  ``ACCOUNT_MAX_DELAY_S``. An address from which the account logged in
  successfully in the last ``KNOWN_CLIENT_DAYS`` days is not slowed down by
  failures of others (it still has its own per-address cap);
- per client address: at most ``CLIENT_MAX_FAILURES`` failures in
  ``WINDOW_S``; then it waits until the oldest leaves the window.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities import totp
from tocsin.authorities.models import Authority, LoginAttempt, User, WebSession
from tocsin.authorities.policy import LIVE_SENDER_ROLES
from tocsin.authorities.services import authenticate, record_audit
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

ENVIRONMENTS = ("simulation", "live")
ACCOUNT_FREE_FAILURES = 4
ACCOUNT_MAX_DELAY_S = 30
CLIENT_MAX_FAILURES = 30
WINDOW_S = 15 * 60
KNOWN_CLIENT_DAYS = 30
#: ``last_seen_at`` is written at most this often (seconds), not on every request.
TOUCH_EVERY_S = 60


def new_token() -> str:
    """A new random session or invitation id (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex of ``token``: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    """A live web session and its user, detached from the database.

    ``pending``: ``None`` when fully logged in, ``"totp"`` or ``"enrol"`` while
    the second factor is awaited. ``totp_enrolled``: the user has TOTP.
    """

    id: int
    user_id: int
    username: str
    display_name: str
    authority_id: str
    authority_name: str
    role: str
    environment: str
    pending: str | None
    second_factor: bool
    totp_enrolled: bool
    csrf_secret: str
    totp_enrol_secret: str | None
    language: str | None = None  # the user's interface language setting (None: not set)


@dataclass(frozen=True)
class LoginResult:
    """What a login attempt gave.

    ``outcome``: ``"ok"`` (``token`` is the new session id; ``pending`` says
    whether a TOTP code or an enrolment comes next), ``"failed"`` (wrong
    credentials, or a disabled account) or ``"throttled"`` (``wait_s`` seconds
    before the next attempt is heard).
    """

    outcome: str
    token: str = ""
    pending: str | None = None
    wait_s: int = 0


class SecondFactorError(ValueError):
    """A TOTP step that failed: ``field`` is ``"code"``; ``wait_s`` > 0 when throttled."""

    def __init__(self, reason: str, wait_s: int = 0) -> None:
        super().__init__(f"code: {reason}")
        self.field = "code"
        self.reason = reason
        self.wait_s = wait_s


# ----------------------------------------------------------------------------- throttling


def _norm(username: str) -> str:
    return username.strip().casefold()[:120] or "?"


def login_wait(session: Session, username: str, client: str,
               now: dt.datetime | None = None) -> int:
    """Seconds before an attempt for ``username`` from ``client`` is heard (0 = now).

    See the module docstring for the policy. Reads only.
    """
    now = now or utcnow()
    name, client = _norm(username), client[:64]
    since = now - dt.timedelta(seconds=WINDOW_S)
    wait = 0.0
    client_failures = list(session.scalars(
        sa.select(LoginAttempt.at).where(LoginAttempt.client == client,
                                         LoginAttempt.success.is_(False),
                                         LoginAttempt.at > since)
        .order_by(LoginAttempt.at).limit(CLIENT_MAX_FAILURES)))
    if len(client_failures) >= CLIENT_MAX_FAILURES:
        wait = (client_failures[0] + dt.timedelta(seconds=WINDOW_S) - now).total_seconds()
    known = session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt).where(
        LoginAttempt.username == name, LoginAttempt.client == client,
        LoginAttempt.success.is_(True),
        LoginAttempt.at > now - dt.timedelta(days=KNOWN_CLIENT_DAYS)))
    if not known:
        last_ok = session.scalar(sa.select(sa.func.max(LoginAttempt.at)).where(
            LoginAttempt.username == name, LoginAttempt.success.is_(True)))
        start = max(since, last_ok) if last_ok else since
        failures = session.scalar(sa.select(sa.func.count()).select_from(LoginAttempt).where(
            LoginAttempt.username == name, LoginAttempt.success.is_(False),
            LoginAttempt.at > start)) or 0
        if failures >= ACCOUNT_FREE_FAILURES:
            last = session.scalar(sa.select(sa.func.max(LoginAttempt.at)).where(
                LoginAttempt.username == name, LoginAttempt.success.is_(False)))
            delay = min(2 ** (failures - ACCOUNT_FREE_FAILURES), ACCOUNT_MAX_DELAY_S)
            if last is not None:
                wait = max(wait, (last + dt.timedelta(seconds=delay) - now).total_seconds())
    return max(0, int(-(-wait // 1)))  # whole seconds, rounded up


def record_login_attempt(session: Session, username: str, client: str, success: bool,
                         now: dt.datetime | None = None) -> None:
    """Count one attempt (and forget attempts older than ``KNOWN_CLIENT_DAYS``)."""
    now = now or utcnow()
    session.execute(sa.delete(LoginAttempt).where(
        LoginAttempt.at < now - dt.timedelta(days=KNOWN_CLIENT_DAYS)))
    session.add(LoginAttempt(at=now, username=_norm(username), client=client[:64],
                             success=success))


# ----------------------------------------------------------------------------- sessions


def start_session(session: Session, user: User, environment: str, pending: str | None,
                  second_factor: bool, idle_timeout_s: int, lifetime_s: int,
                  now: dt.datetime) -> str:
    """Add a new session of ``user`` (inside the caller's transaction); returns its id."""
    token = new_token()
    session.add(WebSession(
        token_hash=token_hash(token), user_id=user.id, environment=environment,
        created_at=now, last_seen_at=now, expires_at=now + dt.timedelta(seconds=lifetime_s),
        idle_timeout_s=idle_timeout_s, pending=pending, second_factor=second_factor,
        csrf_secret=secrets.token_urlsafe(32)))
    return token


def log_in(engine: Engine, username: str, password: str, environment: str, client: str,
           idle_timeout_s: int = 3600, lifetime_s: int = 12 * 3600) -> LoginResult:
    """Check the password (rate-limited) and open a new session in ``environment``.

    A user with TOTP gets a session pending ``"totp"``; a sender role choosing
    ``live`` without TOTP gets one pending ``"enrol"``; others are logged in at
    once (``second_factor`` False). ``client``: the client address. Raises
    ValueError (field ``environment``) for an unknown environment. Audited:
    ``login`` / ``login_failed`` (by :func:`authenticate`), ``login_throttled``.
    """
    if environment not in ENVIRONMENTS:
        raise InputError("environment", N_("choose simulation or live"),
                         code="environment_unknown")
    with read_transaction(engine) as s:
        wait = login_wait(s, username, client)
    if wait:
        with transaction(engine) as s:
            record_audit(s, username.strip()[:120] or "?", "login_throttled", source=client,
                         detail={"wait_s": wait})
        return LoginResult("throttled", wait_s=wait)
    info = authenticate(engine, username, password, source=client)
    with transaction(engine) as s:
        user = s.get(User, info.id) if info is not None else None
        record_login_attempt(s, username, client, success=user is not None)
        if user is None:
            return LoginResult("failed")
        now = utcnow()
        if user.totp_secret:
            pending: str | None = "totp"
        elif environment == "live" and user.role in LIVE_SENDER_ROLES:
            pending = "enrol"
        else:
            pending = None
        token = start_session(s, user, environment, pending, False, idle_timeout_s, lifetime_s, now)
        return LoginResult("ok", token=token, pending=pending)


def _load(session: Session, token: str, now: dt.datetime) -> WebSession | None:
    if not token or len(token) > 200:
        return None
    row = session.scalar(sa.select(WebSession).where(WebSession.token_hash == token_hash(token)))
    if row is None or row.revoked_at is not None or now >= row.expires_at:
        return None
    if now - row.last_seen_at > dt.timedelta(seconds=row.idle_timeout_s):
        return None
    return row


def _info(session: Session, row: WebSession) -> SessionInfo | None:
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    authority = session.get(Authority, user.authority_id)
    assert authority is not None  # foreign key
    langs = authority.language_list
    return SessionInfo(
        id=row.id, user_id=user.id, username=user.username, display_name=user.display_name,
        authority_id=user.authority_id, authority_name=authority.name(langs[0] if langs else "fr"),
        role=user.role, environment=row.environment, pending=row.pending,
        second_factor=row.second_factor, totp_enrolled=bool(user.totp_secret),
        csrf_secret=row.csrf_secret, totp_enrol_secret=row.totp_enrol_secret,
        language=user.language)


def resolve_session(engine: Engine, token: str,
                    now: dt.datetime | None = None) -> SessionInfo | None:
    """The session whose id is ``token``, or None (unknown, revoked, idle, expired,
    or its user disabled). Records the request time at most every minute."""
    now = now or utcnow()
    with read_transaction(engine) as s:
        row = _load(s, token, now)
        if row is None:
            return None
        info = _info(s, row)
        stale = now - row.last_seen_at > dt.timedelta(seconds=TOUCH_EVERY_S)
    if info is not None and stale:
        with transaction(engine) as s:
            s.execute(sa.update(WebSession).where(WebSession.id == info.id)
                      .values(last_seen_at=now))
    return info


def end_session(engine: Engine, token: str, source: str | None = None) -> None:
    """Log out: the session ``token`` no longer opens anything (audited ``logout``)."""
    now = utcnow()
    with transaction(engine) as s:
        row = _load(s, token, now)
        if row is None:
            return
        row.revoked_at = now
        user = s.get(User, row.user_id)
        record_audit(s, user.username if user else "?", "logout", source=source)


def revoke_sessions(session: Session, user_id: int, now: dt.datetime | None = None,
                    keep: int | None = None) -> int:
    """End every open session of ``user_id`` (except session ``keep``); the count ended."""
    now = now or utcnow()
    query = sa.update(WebSession).where(WebSession.user_id == user_id,
                                        WebSession.revoked_at.is_(None))
    if keep is not None:
        query = query.where(WebSession.id != keep)
    result = session.execute(query.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)


def _reissue(row: WebSession) -> str:
    token = new_token()
    row.token_hash = token_hash(token)
    row.pending = None
    row.second_factor = True
    row.totp_enrol_secret = None
    return token


def verify_second_factor(engine: Engine, token: str, code: str, client: str) -> str:
    """Check the TOTP ``code`` of a session pending ``"totp"``; returns its new id.

    Wrong codes count as failed logins of the account (same throttle). A code
    is never accepted twice (RFC 6238 §5.2). Raises LookupError when the session
    is gone, :class:`SecondFactorError` for a wrong, replayed or throttled code.
    """
    now = utcnow()
    with read_transaction(engine) as s:
        row = _load(s, token, now)
        if row is None or row.pending != "totp":
            raise LookupError("session: log in again")
        user = s.get(User, row.user_id)
        assert user is not None
        wait = login_wait(s, user.username, client, now)
    if wait:
        raise SecondFactorError(f"too many wrong codes; try again in {wait} s", wait_s=wait)
    with transaction(engine) as s:
        row = _load(s, token, now)
        if row is None or row.pending != "totp":
            raise LookupError("session: log in again")
        user = s.get(User, row.user_id, with_for_update=True)
        assert user is not None and user.totp_secret
        step = totp.accepted_step(user.totp_secret, code, user.totp_last_step, now.timestamp())
        record_login_attempt(s, user.username, client, success=step is not None, now=now)
        if step is not None:
            user.totp_last_step = step
            record_audit(s, user.username, "login.totp", source=client)
            return _reissue(row)
        record_audit(s, user.username, "login_failed", source=client, detail={"step": "totp"})
    raise SecondFactorError("wrong or already used code; type the current code "
                            "from your authenticator app")


def enrolment(engine: Engine, token: str) -> tuple[str, str]:
    """The TOTP secret to enrol for session ``token`` and its ``otpauth://`` URI.

    The same secret is shown until confirmed. Works for a session pending
    ``"enrol"`` and for a logged-in session. Raises LookupError when the
    session is gone, ValueError (field ``totp``) when the user already has TOTP
    (an admin resets it first).
    """
    now = utcnow()
    with transaction(engine) as s:
        row = _load(s, token, now)
        if row is None or row.pending == "totp":
            raise LookupError("session: log in again")
        user = s.get(User, row.user_id)
        assert user is not None
        if user.totp_secret:
            raise InputError("totp", N_("already set up; ask an admin to reset it to set it up "
                                        "again"), code="totp_already_set_up")
        if not row.totp_enrol_secret:
            row.totp_enrol_secret = totp.new_secret()
        return row.totp_enrol_secret, totp.provisioning_uri(row.totp_enrol_secret, user.username)


def confirm_enrolment(engine: Engine, token: str, code: str, client: str) -> str:
    """Keep the enrolment secret once ``code`` proves the app has it; returns the new id.

    The session then counts as having passed the second factor (it just did).
    Raises LookupError (no session, or no enrolment started) or
    :class:`SecondFactorError`. Audited ``user.totp_enrol``.
    """
    now = utcnow()
    with transaction(engine) as s:
        row = _load(s, token, now)
        if row is None or row.pending == "totp" or not row.totp_enrol_secret:
            raise LookupError("session: log in again")
        user = s.get(User, row.user_id, with_for_update=True)
        assert user is not None
        if user.totp_secret:
            raise LookupError("session: TOTP is already set up")
        step = totp.accepted_step(row.totp_enrol_secret, code, None, now.timestamp())
        if step is not None:
            user.totp_secret = row.totp_enrol_secret
            user.totp_last_step = step
            record_audit(s, user.username, "user.totp_enrol", target=user.username, source=client)
            return _reissue(row)
    raise SecondFactorError("wrong code; check the phone's clock and type the current code")
