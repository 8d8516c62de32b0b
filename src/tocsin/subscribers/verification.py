"""One-time codes and citizen sessions of the public portal (issue 10 points 2, 3; F8, F36).

A citizen types an e-mail address or a phone number; :func:`request_code` checks the
form's challenge, asks the cost guard (:mod:`tocsin.subscribers.pumping`, counted here
in one locked transaction so that every web process shares the counts), stores a
6-digit code as a keyed hash (HMAC-SHA-256, never in clear) valid 10 minutes, and sends
it through a :class:`CodeSender` (``dispatch.transactional``: the same SMPP and SMTP
adapters as campaigns). The answer is the same whether the contact is already
registered or not (no enumeration): both get a code.

A landline cannot read an SMS: its code is said in a voice call (the sender's ``call``:
the Twilio-compatible voice channel), and so is a mobile's when the citizen asks "call
me instead" (:func:`request_call`). The call's TwiML is fetched later by the provider
(``dispatch.code_calls``), so the code must be found again then, while only its hash is
stored: a voice code is therefore not drawn at random but derived, HMAC-SHA-256 under the
deployment secret of the session and the code's row id (:func:`voice_code`), and
:func:`spoken_code` derives it again while the code is valid. Whoever has the secret and
the table could already find any code from its 6-digit hash; nobody else can.

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
from decimal import Decimal
from typing import Any, Protocol

import phonenumbers
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
    voice_code_weight,
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

    @classmethod
    def for_prices(cls, voice_minute_price_eur: str, sms_segment_price_eur: str
                   ) -> PortalConfig:
        """The defaults, a code call weighing its cost in the daily budget (F29 prices as
        the settings give them, EUR strings)."""
        weight = voice_code_weight(Decimal(voice_minute_price_eur),
                                   Decimal(sms_segment_price_eur))
        return cls(limits=Limits(voice_weight=weight))


class CodeSender(Protocol):
    """Sends one transactional message: ``channel`` ``sms`` or ``email``; returns True
    when the provider accepted it. ``call`` places a code call to ``address`` (E.164)
    whose TwiML the provider fetches for ``code_id`` in ``language``; True when the
    provider accepted the call."""

    def send(self, channel: str, address: str, text: str, subject: str,
             language: str) -> bool: ...

    def call(self, address: str, code_id: int, language: str) -> bool: ...


@dataclass(frozen=True)
class CitizenView:
    """A citizen session as the pages see it."""

    token_hash: str
    subscriber_id: int | None
    pending_kind: str | None
    pending_value: str | None
    verified: bool
    email_verified: bool
    #: the channel of the session's last code (``sms``, ``email``, ``voice``), "" if none
    code_channel: str = ""
    #: the last code took too many wrong tries: nothing more can be typed, ask a new one
    code_locked: bool = False


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


def voice_code(secret: str, session_hash: str, code_id: int) -> str:
    """The 6 digits of the voice code in row ``code_id`` of session ``session_hash``: the
    first 8 bytes of HMAC-SHA-256 under the deployment secret, modulo 10**6 (bias below
    10**-13), leading zeros kept. See the module docstring for why it is derived."""
    digest = hmac.new(secret.encode(), f"voicecode|{session_hash}|{code_id}".encode(),
                      hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10 ** CODE_DIGITS:0{CODE_DIGITS}d}"


def code_hash(secret: str, session_hash: str, code: str) -> str:
    """The stored form of ``code``: keyed by the secret and bound to its session."""
    return keyed_hash(secret, "code|" + session_hash, code)


def code_matches(stored: str, secret: str, session_hash: str, submitted: str) -> bool:
    """True when ``submitted`` is the code whose hash is ``stored`` (constant time)."""
    return hmac.compare_digest(stored.encode(), code_hash(secret, session_hash,
                                                          submitted).encode())


def masked(kind: str, value: str) -> str:
    """``alice@example.org`` -> ``a…@example.org``; ``+32470123456`` -> ``+32 … 56``; a
    landline as its owner writes it, only the area code and the last 2 digits shown:
    ``+3225551245`` -> ``02 xxx xx 45``."""
    if kind == "email":
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}…@{domain}"
    if kind == "landline":
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            groups = phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.NATIONAL).split(" ")
            if len(groups) >= 3:
                middle = ["x" * sum(ch.isdigit() for ch in g) for g in groups[1:]]
                last = groups[-1]
                middle[-1] = "x" * (sum(ch.isdigit() for ch in last) - 2) + last[-2:]
                return " ".join([groups[0], *middle])
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
                    now: dt.datetime | None = None,
                    config: PortalConfig = PortalConfig()) -> CitizenView | None:
    """The citizen session of cookie ``token``, or None (none, unknown or expired);
    ``config.max_tries`` decides whether its last code is locked."""
    with read_transaction(engine) as s:
        row = _session(s, token, now or utcnow())
        if row is None:
            return None
        last = s.execute(sa.select(PortalCode.channel, PortalCode.tries).where(
            PortalCode.session_hash == row.token_hash).order_by(PortalCode.id.desc())
            .limit(1)).first()
        return CitizenView(row.token_hash, row.subscriber_id, row.pending_kind,
                           row.pending_value, row.verified_at is not None,
                           _email_verified(s, row), last.channel if last else "",
                           last is not None and last.tries >= config.max_tries)


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
           now: dt.datetime, voice_weight: int = 1) -> Counts:
    """The cost guard's counts for one request, read inside the locked transaction (one
    query: conditional sums over the codes sent since the start of the day or the last
    hour, whichever is earlier). ``global_day`` counts a voice code ``voice_weight``."""
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
        sa.func.coalesce(sa.func.sum(sa.case(
            (sa.and_(at >= day, PortalSend.channel == "voice"), voice_weight),
            (at >= day, 1), else_=0)), 0),
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
    """Send a one-time code to ``contact`` (e-mail, mobile number: SMS; landline: a voice
    call) for session ``token`` (None: a new session is made). See the module docstring.

    Raises InputError naming ``challenge`` (bad, old or unsolved challenge), ``contact``
    (bad contact; cost guard refusal, code ``rate_<rule>``; not sent). A refused request
    is recorded too (it counts for nothing but the log).
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
    channel = {"email": "email", "landline": "voice"}.get(kind, "sms")
    return _issue(engine, sender, secret, token, nonce, kind, value, country, channel, ip,
                  language, config, link_base, now)


def request_call(engine: Engine, sender: CodeSender, secret: str, token: str | None,
                 ip: str, language: str, challenge: str, solution: str,
                 config: PortalConfig = PortalConfig(),
                 now: dt.datetime | None = None) -> CodeRequest:
    """"Call me instead": a new code, said in a voice call, for the phone number that
    session ``token`` is verifying (the code sent by SMS before no longer works). The
    cost guard counts it as one more code to the number (so the number's back-off
    applies: 1 minute after the SMS) and at its cost in the daily budget.

    Raises InputError naming ``challenge`` (as :func:`request_code`), ``code`` when the
    session verifies no phone number (code ``code_none``), ``contact`` (cost guard
    refusal, not sent).
    """
    now = now or utcnow()
    nonce = challenges.check(secret, challenge, solution, now, difficulty=config.difficulty,
                             no_js_delay=config.no_js_delay_s)
    with read_transaction(engine) as s:
        row = _session(s, token, now)
        pending = (row.pending_kind, row.pending_value) if row is not None else (None, None)
        email_verified = row is not None and _email_verified(s, row)
    if pending[0] not in ("mobile", "landline") or not pending[1] or (
            row is not None and row.verified_at is not None):
        raise InputError("code", N_("ask for a code first"), code="code_none")
    kind, value, country = parse_contact(pending[1], email_verified)
    return _issue(engine, sender, secret, token, nonce, kind, value, country, "voice", ip,
                  language, config, "", now)


def _issue(engine: Engine, sender: CodeSender, secret: str, token: str | None, nonce: str,
           kind: str, value: str, country: str, channel: str, ip: str, language: str,
           config: PortalConfig, link_base: str, now: dt.datetime) -> CodeRequest:
    """Ask the cost guard, store the code, send it (``channel`` sms, email or voice)."""
    number_hash = keyed_hash(secret, "contact", value)
    ip_hash = keyed_hash(secret, "ip", ip)
    prefix = number_prefix(value) if channel != "email" else ""
    weight = config.limits.voice_weight if channel == "voice" else 1
    code, code_id = new_code(), 0
    with transaction(engine) as s:
        _lock(s)
        if s.scalar(sa.select(PortalSend.id).where(PortalSend.nonce == nonce)) is not None:
            raise InputError("challenge", N_("this form was already sent; reload the page"),
                             code="challenge_used")
        decision = decide(counts(s, number_hash, ip_hash, prefix, country, now,
                                 config.limits.voice_weight), now, country, config.limits,
                          weight)
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
            code_row = PortalCode(session_hash=row.token_hash, address_hash=number_hash,
                                  channel=channel, code_hash="", created_at=now, tries=0,
                                  expires_at=now + dt.timedelta(seconds=config.code_ttl_s))
            s.add(code_row)
            s.flush()
            code_id = int(code_row.id)
            if channel == "voice":  # said later, when the provider fetches the TwiML
                code = voice_code(secret, row.token_hash, code_id)
            code_row.code_hash = code_hash(secret, row.token_hash, code)
    if not decision.allowed:
        log.warning("cost guard refused a code (%s)", decision.rule)
        raise _refusal(decision)
    assert token is not None
    if channel == "voice":
        sent = sender.call(value, code_id, language)
    else:
        link = ""
        if channel == "email" and link_base:
            link = f"{link_base.rstrip('/')}/register/code/{code}?lang={language}"
        text, subject = code_message(language, code, link)
        sent = sender.send(channel, value, text, subject, language)
    if not sent:
        raise InputError("contact", N_("the code could not be sent; try again in a few "
                                       "minutes"), code="not_sent")
    return CodeRequest(token=token, channel=channel, masked=masked(kind, value), kind=kind)


def spoken_code(engine: Engine, secret: str, code_id: int, config: PortalConfig = PortalConfig(),
                now: dt.datetime | None = None) -> str | None:
    """The code a voice call for ``code_id`` says, or None when there is none to say: no
    such row, not a voice code, already used, replaced, locked or expired."""
    now = now or utcnow()
    with read_transaction(engine) as s:
        row = s.get(PortalCode, code_id)
        if (row is None or row.channel != "voice" or row.used_at is not None
                or row.tries >= config.max_tries or row.expires_at <= now):
            return None
        return voice_code(secret, row.session_hash, code_id)


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
