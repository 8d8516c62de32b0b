"""One-time codes and citizen sessions of the public portal (issue 10 points 2, 3; F8, F36).

A citizen types an e-mail address or a mobile number; :func:`request_code` checks the
form's challenge, asks the cost guard (:mod:`tocsin.subscribers.pumping`, counted here
in one locked transaction so that every web process shares the counts), stores a
6-digit code as a keyed hash (HMAC-SHA-256, never in clear) valid 10 minutes, and sends
it through a :class:`CodeSender` (``dispatch.transactional``: the same SMPP and SMTP
adapters as campaigns). The answer is the same whether the contact is already
registered or not (no enumeration): both get a code.

:func:`confirm_code` compares in constant time (``hmac.compare_digest``), allows 5
wrong tries, and uses the code once. Then the session is logged in to the profile that
has this contact (``login``), adds the contact to the logged-in profile (``added``), or
holds a verified contact waiting for a new profile (``new``).

Sessions: the cookie holds a random token; the table keeps its SHA-256 only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.audit import record_audit
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.subscribers import challenge as challenges
from tocsin.subscribers.models import ContactPoint
from tocsin.subscribers.portal_models import CitizenSession, PortalCode, PortalSend
from tocsin.subscribers.pumping import (
    Counts,
    Decision,
    Limits,
    day_start,
    decide,
    number_prefix,
    phone_class,
)
from tocsin.subscribers.rules import InvalidValue, normalise_email

log = logging.getLogger(__name__)

CODE_DIGITS = 6
#: Longest contact typed (an e-mail address: RFC 5321 path limit is 256; 320 is the column).
MAX_CONTACT = 320
#: One code request in this many also purges what expired (sessions, codes, guard rows).
PURGE_ONE_IN = 50
#: PostgreSQL advisory lock serialising the cost guard's count-then-insert ("tocsinP1").
PG_LOCK_KEY = 0x746F6373696E5031


@dataclass(frozen=True)
class PortalConfig:
    """Settings of the portal: code lifetime and tries, session lifetime (s), the cost
    guard's limits and the challenge's difficulty / no-JavaScript delay."""

    code_ttl_s: int = 600
    max_tries: int = 5
    session_ttl_s: int = 3600
    limits: Limits = field(default_factory=Limits)
    difficulty: int = challenges.DIFFICULTY
    no_js_delay_s: int = challenges.NO_JS_DELAY_S
    #: alarm when fewer than this share of the last day's codes were entered (pumping)
    alarm_conversion: float = 0.2
    alarm_min_sent: int = 50


class CodeSender(Protocol):
    """Sends one transactional message: ``channel`` ``sms`` or ``email``; returns True
    when the provider accepted it."""

    def send(self, channel: str, address: str, text: str, subject: str,
             language: str) -> bool: ...


@dataclass(frozen=True)
class CitizenView:
    """A citizen session as the pages see it."""

    token_hash: str
    subscriber_id: int | None
    pending_kind: str | None
    pending_value: str | None
    verified: bool
    email_verified: bool


@dataclass(frozen=True)
class CodeRequest:
    """A code that left: the session ``token`` (set it as the cookie), the ``channel`` and
    the contact ``masked`` for display; ``link_token``: for the e-mail's link."""

    token: str
    channel: str
    masked: str
    kind: str


@dataclass(frozen=True)
class Confirmed:
    """``state``: ``login`` (an existing profile), ``new`` (a verified contact, no profile
    yet) or ``added`` (the contact was added to the logged-in profile). ``token``: the
    session's new token after a ``login`` or ``new`` (the id changes when the rights do,
    OWASP session fixation), else the same one: set it as the cookie."""

    state: str
    subscriber_id: int | None
    token: str = ""


# --- hashing ------------------------------------------------------------------------


def keyed_hash(secret: str, kind: str, value: str) -> str:
    """HMAC-SHA-256 (hex) of ``value`` under the deployment secret, for ``kind``."""
    return hmac.new(secret.encode(), f"{kind}|{value}".encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a session token: what the table keeps."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_code() -> str:
    """A uniformly random 6-digit code (``secrets``), leading zeros kept."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(secret: str, session_hash: str, code: str) -> str:
    """The stored form of ``code``: keyed by the secret and bound to its session."""
    return keyed_hash(secret, "code|" + session_hash, code)


def code_matches(stored: str, secret: str, session_hash: str, submitted: str) -> bool:
    """True when ``submitted`` is the code whose hash is ``stored`` (constant time)."""
    return hmac.compare_digest(stored.encode(), code_hash(secret, session_hash,
                                                          submitted).encode())


def masked(kind: str, value: str) -> str:
    """``alice@example.org`` -> ``a…@example.org``; ``+32470123456`` -> ``+32 … 56``."""
    if kind == "email":
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}…@{domain}"
    return f"{value[:3]} … {value[-2:]}"


def check_text(field_name: str, value: str, limit: int) -> str:
    """``value`` stripped; InputError(field_name) when longer than ``limit`` characters or
    holding control characters (CR, LF, NUL…)."""
    if not isinstance(value, str):
        raise InputError(field_name, N_("this field is missing"), code="missing")
    if len(value) > limit:
        raise InputError(field_name, N_("too long: at most %(limit)s characters"),
                         code="too_long", limit=limit)
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(field_name, N_("line breaks and control characters are not allowed"),
                         code="control_characters")
    return value.strip()


def parse_contact(value: str, email_verified: bool = False,
                  field_name: str = "contact") -> tuple[str, str, str]:
    """``(kind, normalised value, country)`` of what the citizen typed: an e-mail address
    (kind ``email``, country "") or a phone number (``mobile`` or ``landline``, E.164).

    Raises InputError(field_name) for empty, oversized, control characters, a bad e-mail,
    a bad, special or foreign number (:func:`pumping.phone_class`)."""
    text = check_text(field_name, value, MAX_CONTACT)
    if not text:
        raise InputError(field_name, N_("give an e-mail address or a mobile number"),
                         code="missing")
    if "@" in text:
        try:
            return "email", normalise_email(text), ""
        except InvalidValue:
            raise InputError(field_name, N_("this e-mail address is not valid"),
                             code="invalid_email") from None
    if sum(c.isdigit() for c in text) < 6 or any(c.isalpha() for c in text):
        raise InputError(field_name, N_("this is neither an e-mail address nor a phone number"),
                         code="not_contact")
    phone = phone_class(text, field_name, email_verified)
    return phone.kind, phone.e164, phone.country


# --- sessions -----------------------------------------------------------------------


def _session(s: Session, token: str | None, now: dt.datetime) -> CitizenSession | None:
    if not token or len(token) > 100:
        return None
    row = s.get(CitizenSession, token_hash(token))
    if row is None or row.expires_at <= now:
        return None
    return row


def _email_verified(s: Session, row: CitizenSession) -> bool:
    if row.pending_kind == "email" and row.verified_at is not None:
        return True
    if row.subscriber_id is None:
        return False
    return (s.scalar(sa.select(sa.func.count()).select_from(ContactPoint).where(
        ContactPoint.subscriber_id == row.subscriber_id, ContactPoint.kind == "email",
        ContactPoint.verified_at.is_not(None))) or 0) > 0


def citizen_session(engine: Engine, token: str | None,
                    now: dt.datetime | None = None) -> CitizenView | None:
    """The citizen session of cookie ``token``, or None (none, unknown or expired)."""
    with read_transaction(engine) as s:
        row = _session(s, token, now or utcnow())
        if row is None:
            return None
        return CitizenView(row.token_hash, row.subscriber_id, row.pending_kind,
                           row.pending_value, row.verified_at is not None,
                           _email_verified(s, row))


def end_session(engine: Engine, token: str | None) -> None:
    """Log out: the session's row is deleted (with its pending contact)."""
    if not token:
        return
    with transaction(engine) as s:
        s.execute(sa.delete(CitizenSession).where(CitizenSession.token_hash == token_hash(token)))


def purge_expired(engine: Engine, now: dt.datetime | None = None) -> int:
    """Delete expired sessions and codes, and cost-guard rows older than 2 days."""
    now = now or utcnow()
    with transaction(engine) as s:
        n = s.execute(sa.delete(CitizenSession).where(CitizenSession.expires_at <= now)).rowcount  # type: ignore[attr-defined]
        s.execute(sa.delete(PortalCode).where(PortalCode.expires_at <= now))
        s.execute(sa.delete(PortalSend).where(PortalSend.at < now - dt.timedelta(days=2)))
    return int(n or 0)


# --- the cost guard's counts ---------------------------------------------------------


def _lock(s: Session) -> None:
    """Serialise count-then-insert across processes: PostgreSQL advisory lock until the
    transaction ends; SQLite transactions begin IMMEDIATE (``core.db``): already alone."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
    else:  # take the write lock now (a no-op update), not at the first insert
        s.execute(sa.update(PortalSend).where(sa.false()).values(entered=False))


def _count(s: Session, *where: sa.ColumnElement[bool]) -> int:
    return int(s.scalar(sa.select(sa.func.count()).select_from(PortalSend)
                        .where(PortalSend.sent.is_(True), *where)) or 0)


def counts(s: Session, number_hash: str, ip_hash: str, prefix: str, country: str,
           now: dt.datetime) -> Counts:
    """The cost guard's counts for one request, read inside the locked transaction (one
    query: conditional sums over the codes sent since the start of the day or the last
    hour, whichever is earlier)."""
    day = day_start(now)
    hour = now - dt.timedelta(hours=1)
    ten = now - dt.timedelta(minutes=10)
    at, number = PortalSend.at, PortalSend.number_hash == number_hash

    def total(*cond: sa.ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((sa.and_(*cond), 1), else_=0)), 0)

    row = s.execute(sa.select(
        total(number, at > ten), total(number, at >= day),
        sa.func.max(sa.case((sa.and_(number, at >= day), at))),
        total(PortalSend.ip_hash == ip_hash, at > hour),
        total(PortalSend.ip_hash == ip_hash, at >= day),
        total(PortalSend.prefix == prefix, at > hour),
        total(PortalSend.prefix == prefix, at >= day),
        total(PortalSend.country == country, at >= day),
        total(at >= day),
    ).where(PortalSend.sent.is_(True), at >= min(day, hour))).one()
    last = row[2]
    if isinstance(last, str):  # SQLite returns MAX over a CASE as stored text
        last = dt.datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return Counts(
        number_10min=int(row[0]), number_day=int(row[1]), number_last_at=last,
        ip_hour=int(row[3]), ip_day=int(row[4]),
        prefix_hour=int(row[5]) if prefix else 0, prefix_day=int(row[6]) if prefix else 0,
        country_day=int(row[7]) if country else 0, global_day=int(row[8]))


def _refusal(decision: Decision) -> InputError:
    minutes = max(1, (decision.retry_after + 59) // 60)
    if decision.rule == "budget":
        return InputError("contact", N_("the service cannot send more codes today; try again "
                                        "tomorrow"), code="rate_budget")
    return InputError("contact", N_("too many codes were asked for this contact, number range "
                                    "or connection; try again in %(minutes)s minutes"),
                      code=f"rate_{decision.rule}", minutes=minutes)


def conversion(engine: Engine, now: dt.datetime | None = None) -> tuple[int, int]:
    """``(codes sent, codes entered)`` over the last 24 hours (the pumping alarm)."""
    since = (now or utcnow()) - dt.timedelta(days=1)
    with read_transaction(engine) as s:
        sent = _count(s, PortalSend.at > since)
        entered = _count(s, PortalSend.at > since, PortalSend.entered.is_(True))
    return sent, entered


def pumping_alarm(sent: int, entered: int, config: PortalConfig = PortalConfig()) -> bool:
    """True when enough codes left and too few were entered: a sign of SMS pumping."""
    return sent >= config.alarm_min_sent and entered < sent * config.alarm_conversion


# --- codes --------------------------------------------------------------------------


_MESSAGES = {
    "fr": ("Tocsin : votre code est {code}. Valable 10 minutes. Ne le communiquez à personne.",
           "Votre code Tocsin", "Ouvrir la page du code : {link}"),
    "nl": ("Tocsin: uw code is {code}. 10 minuten geldig. Deel hem met niemand.",
           "Uw Tocsin-code", "Open de pagina van de code: {link}"),
    "de": ("Tocsin: Ihr Code lautet {code}. 10 Minuten gültig. Geben Sie ihn niemandem weiter.",
           "Ihr Tocsin-Code", "Seite des Codes öffnen: {link}"),
    "en": ("Tocsin: your code is {code}. Valid for 10 minutes. Never share it.",
           "Your Tocsin code", "Open the code's page: {link}"),
}


def code_message(language: str, code: str, link: str = "") -> tuple[str, str]:
    """``(text, subject)`` of the code message in ``language`` (fr, nl, de, en)."""
    text, subject, link_line = _MESSAGES.get(language, _MESSAGES["en"])
    body = text.format(code=code)
    if link:
        body += "\n\n" + link_line.format(link=link)
    return body, subject


def request_code(engine: Engine, sender: CodeSender, secret: str, token: str | None,
                 contact: str, ip: str, language: str, challenge: str, solution: str,
                 config: PortalConfig = PortalConfig(), link_base: str = "",
                 now: dt.datetime | None = None) -> CodeRequest:
    """Send a one-time code to ``contact`` (e-mail or mobile number) for session ``token``
    (None: a new session is made). See the module docstring.

    Raises InputError naming ``challenge`` (bad, old or unsolved challenge), ``contact``
    (bad contact; cost guard refusal, code ``rate_<rule>``; ``landline``; not sent). A
    refused request is recorded too (it counts for nothing but the log).
    """
    now = now or utcnow()
    if secrets.randbelow(PURGE_ONE_IN) == 0:  # expired sessions, codes, old guard rows
        purge_expired(engine, now)
    nonce = challenges.check(secret, challenge, solution, now, difficulty=config.difficulty,
                             no_js_delay=config.no_js_delay_s)
    with read_transaction(engine) as s:
        row = _session(s, token, now)
        email_verified = row is not None and _email_verified(s, row)
    kind, value, country = parse_contact(contact, email_verified)
    if kind == "landline":
        raise InputError("contact", N_("codes cannot be sent to a landline; give a mobile "
                                       "number or an e-mail address"), code="landline")
    channel = "email" if kind == "email" else "sms"
    number_hash = keyed_hash(secret, "contact", value)
    ip_hash = keyed_hash(secret, "ip", ip)
    prefix = number_prefix(value) if channel == "sms" else ""
    code = new_code()
    with transaction(engine) as s:
        _lock(s)
        if s.scalar(sa.select(PortalSend.id).where(PortalSend.nonce == nonce)) is not None:
            raise InputError("challenge", N_("this form was already sent; reload the page"),
                             code="challenge_used")
        decision = decide(counts(s, number_hash, ip_hash, prefix, country, now), now,
                          country, config.limits)
        s.add(PortalSend(at=now, channel=channel, number_hash=number_hash, ip_hash=ip_hash,
                         prefix=prefix, country=country, sent=decision.allowed,
                         refused=decision.rule or None, entered=False, nonce=nonce))
        if decision.allowed:
            row = _session(s, token, now)
            if row is None:
                token = secrets.token_urlsafe(32)
                row = CitizenSession(token_hash=token_hash(token), created_at=now,
                                     expires_at=now + dt.timedelta(seconds=config.session_ttl_s))
                s.add(row)
            assert token is not None
            row.pending_kind, row.pending_value, row.verified_at = kind, value, None
            s.execute(sa.update(PortalCode).where(PortalCode.session_hash == row.token_hash,
                                                  PortalCode.used_at.is_(None))
                      .values(used_at=now))  # a new code replaces the previous one
            s.add(PortalCode(session_hash=row.token_hash, address_hash=number_hash,
                             channel=channel, code_hash=code_hash(secret, row.token_hash, code),
                             created_at=now, tries=0,
                             expires_at=now + dt.timedelta(seconds=config.code_ttl_s)))
    if not decision.allowed:
        log.warning("cost guard refused a code (%s)", decision.rule)
        raise _refusal(decision)
    assert token is not None
    link = ""
    if channel == "email" and link_base:
        link = f"{link_base.rstrip('/')}/register/code/{code}?lang={language}"
    text, subject = code_message(language, code, link)
    if not sender.send(channel, value, text, subject, language):
        raise InputError("contact", N_("the code could not be sent; try again in a few "
                                       "minutes"), code="not_sent")
    return CodeRequest(token=token, channel=channel, masked=masked(kind, value), kind=kind)


def confirm_code(engine: Engine, secret: str, token: str | None, submitted: str, ip: str,
                 config: PortalConfig = PortalConfig(),
                 now: dt.datetime | None = None) -> Confirmed:
    """Check the code typed for session ``token``; see the module docstring.

    Raises InputError(``code``): no code asked (``code_none``), not 6 digits
    (``code_format``), expired or used (``code_expired``), too many tries
    (``code_locked``), wrong (``code_wrong``, param ``left``).
    """
    now = now or utcnow()
    wrong: InputError | None = None
    text = check_text("code", submitted or "", 40).replace(" ", "")
    if not (len(text) == CODE_DIGITS and text.isascii() and text.isdigit()):
        raise InputError("code", N_("the code has 6 digits"), code="code_format")
    with transaction(engine) as s:
        row = _session(s, token, now)
        if row is None or row.pending_value is None:
            raise InputError("code", N_("ask for a code first"), code="code_none")
        code_row = s.scalars(sa.select(PortalCode).where(
            PortalCode.session_hash == row.token_hash).order_by(PortalCode.id.desc())
            .limit(1)).first()
        if code_row is not None and code_row.tries >= config.max_tries:
            # checked first: a locked code is also spent, and saying "expired or already
            # used" after five wrong tries would mislead
            raise InputError("code", N_("too many wrong codes; ask for a new one"),
                             code="code_locked")
        if code_row is None or code_row.used_at is not None or code_row.expires_at <= now:
            raise InputError("code", N_("this code has expired or was already used; ask for a "
                                        "new one"), code="code_expired")
        if not code_matches(code_row.code_hash, secret, row.token_hash, text):
            code_row.tries += 1
            left = config.max_tries - code_row.tries
            if left <= 0:
                code_row.used_at = now
                wrong = InputError("code", N_("too many wrong codes; ask for a new one"),
                                   code="code_locked")
            else:
                wrong = InputError("code", N_("wrong code; %(left)s tries left") if left > 1
                                   else N_("wrong code; one last try"),
                                   code="code_wrong", left=left)
    if wrong is not None:  # the try is counted (committed) before the error is raised
        raise wrong
    return _accept(engine, secret, token, ip, now)


def _accept(engine: Engine, secret: str, token: str | None, ip: str,
            now: dt.datetime) -> Confirmed:
    with transaction(engine) as s:
        row = _session(s, token, now)
        code_row = s.scalars(sa.select(PortalCode).where(
            PortalCode.session_hash == token_hash(token or "")).order_by(PortalCode.id.desc())
            .limit(1).with_for_update()).first()
        if row is None or row.pending_value is None or code_row is None \
                or code_row.used_at is not None:  # another request used it meanwhile
            raise InputError("code", N_("this code has expired or was already used; ask for "
                                        "a new one"), code="code_expired")
        code_row.used_at = now
        last = s.scalars(sa.select(PortalSend).where(
            PortalSend.number_hash == code_row.address_hash, PortalSend.sent.is_(True))
            .order_by(PortalSend.id.desc()).limit(1)).first()
        if last is not None:
            last.entered = True
        kind, value = row.pending_kind or "", row.pending_value
        if row.subscriber_id is not None:
            existing = s.scalars(sa.select(ContactPoint).where(
                ContactPoint.subscriber_id == row.subscriber_id, ContactPoint.kind == kind,
                ContactPoint.value == value)).first()
            if existing is None:
                s.add(ContactPoint(subscriber_id=row.subscriber_id, kind=kind, value=value,
                                   verified_at=now, info_opt_in=_info_opt_in(s, row)))
            else:
                existing.verified_at = existing.verified_at or now
            row.pending_kind = row.pending_value = None
            state, subscriber_id = "added", row.subscriber_id
        else:
            owner = s.scalar(sa.select(sa.func.min(ContactPoint.subscriber_id)).where(
                ContactPoint.kind == kind, ContactPoint.value == value,
                ContactPoint.verified_at.is_not(None)))
            if owner is not None:
                row.subscriber_id, row.pending_kind, row.pending_value = owner, None, None
                row.verified_at = now
                state, subscriber_id = "login", int(owner)
            else:
                row.verified_at = now
                state, subscriber_id = "new", None
        new_token = token or ""
        if state in ("login", "new"):  # a new session id once the contact is proven
            new_token = secrets.token_urlsafe(32)
            s.add(CitizenSession(token_hash=token_hash(new_token), subscriber_id=row.subscriber_id,
                                 pending_kind=row.pending_kind, pending_value=row.pending_value,
                                 verified_at=row.verified_at, created_at=now,
                                 expires_at=row.expires_at))
            s.delete(row)
        if subscriber_id is not None:
            record_audit(s, "citizen", f"citizen.{state}", target=f"subscriber:{subscriber_id}",
                         source=ip)
    return Confirmed(state, subscriber_id, new_token)


def _info_opt_in(s: Session, row: CitizenSession) -> bool:
    any_in: Any = s.scalar(sa.select(sa.func.max(sa.case((ContactPoint.info_opt_in, 1),
                                                        else_=0)))
                           .where(ContactPoint.subscriber_id == row.subscriber_id))
    return bool(any_in)


def send_log_size(engine: Engine) -> int:
    """Rows in the cost guard's log (tests, monitoring)."""
    with read_transaction(engine) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(PortalSend)) or 0)
