"""The yearly "is this still correct?" e-mail to registered citizens (issue 10 point 5;
GDPR Art. 5(1)(d), accuracy; docs/decisions/0023-retention.md).

A citizen registered on the portal (a ``subscriber_profile``) with a verified, valid
e-mail address gets one e-mail a year (365 days) after registering, after their last
profile change or contact confirmation, or after the last such e-mail, whichever is
latest. It says only how many numbers and addresses are registered and on which
channels alerts come, in the citizen's language (fr, nl, de, en; the Babel catalogues);
it holds no link to the data and no login link (a link in an e-mail is what phishing
imitates): the citizen is told to type the portal's address themselves, and that
replying STOP to an alert SMS stops the SMS.

At most one per subscriber and calendar year: ``subscriber_reminder``'s primary key
(subscriber, year) is claimed in its own transaction before the e-mail leaves, so two
workers never both send it; a refused e-mail gives its claim back for the next run.
At most ``reminder_max_per_run`` e-mails per run. The sender is any object with the
code sender's ``send(channel, address, text, subject, language) -> bool``
(``dispatch.transactional.ChannelCodeSender``: the platform's SMTP adapter).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from tocsin.core.db import read_transaction, table, transaction, utcnow
from tocsin.core.i18n import LANGUAGES, N_, gettext
from tocsin.subscribers.models import Address, ContactPoint, Subscriber
from tocsin.subscribers.portal_models import SubscriberProfile, SubscriberReminder

#: Days between two reminders (a year).
PERIOD_DAYS = 365

SUBJECT = N_("Your Tocsin alert registration: is it still correct?")
GREETING = N_("Hello,")
INTRO = N_("You are registered with Tocsin, the public warning service, to receive "
           "alerts. Once a year we ask you to check that your registration is still "
           "correct. Registered today:")
MOBILES = N_("mobile numbers: %(count)s")
LANDLINES = N_("landline numbers: %(count)s")
EMAILS = N_("e-mail addresses: %(count)s")
ADDRESSES = N_("addresses: %(count)s")
CHANNELS = N_("alerts by: %(channels)s")
PORTAL = N_("To check or change it, type the portal's address in your browser yourself: "
            "%(portal)s. This e-mail holds no link on purpose: never trust a message "
            "that asks you to log in through a link.")
STOP = N_("To stop receiving alerts by SMS, reply STOP to an alert SMS.")
NOTHING = N_("If everything is still correct, there is nothing to do.")
CHANNEL_NAMES = {"sms": N_("SMS"), "email": N_("e-mail"), "voice": N_("voice call")}


class Sender(Protocol):
    def send(self, channel: str, address: str, text: str, subject: str,
             language: str) -> bool: ...


@dataclass
class ReminderReport:
    """One run: ``due`` subscribers found (at most the limit), ``sent``, ``failed``
    (refused by the provider; tried again next run), ``skipped`` (another worker claimed
    them first), ``subscriber_ids`` sent (or that would be, ``dry_run``)."""

    dry_run: bool
    due: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    subscriber_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def reminder_message(language: str, counts: dict[str, int], channels: list[str],
                     portal: str) -> tuple[str, str]:
    """``(text, subject)`` of the reminder in ``language``: ``counts`` of ``mobile``,
    ``landline``, ``email``, ``address``; ``channels`` the alert channels (sms, email,
    voice); ``portal`` the portal's address as plain text (no scheme, no token)."""
    lang = language if language in LANGUAGES else "en"
    names = ", ".join(gettext(lang, CHANNEL_NAMES[c]) for c in channels
                      if c in CHANNEL_NAMES)
    lines = [gettext(lang, GREETING), "", gettext(lang, INTRO),
             "- " + gettext(lang, MOBILES, count=counts.get("mobile", 0)),
             "- " + gettext(lang, LANDLINES, count=counts.get("landline", 0)),
             "- " + gettext(lang, EMAILS, count=counts.get("email", 0)),
             "- " + gettext(lang, ADDRESSES, count=counts.get("address", 0)),
             "- " + gettext(lang, CHANNELS, channels=names or "-"), "",
             gettext(lang, PORTAL, portal=portal), "", gettext(lang, STOP), "",
             gettext(lang, NOTHING), "", "Tocsin"]
    return "\n".join(lines), gettext(lang, SUBJECT)


def portal_address(public_url: str) -> str:
    """The portal's address as a citizen types it: the public URL without its scheme
    (``https://alert.example.be`` -> ``alert.example.be``)."""
    return public_url.split("://", 1)[-1].rstrip("/")


def _due(engine: Engine, now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """``[(subscriber id, language)]`` whose reminder is due, by id, at most ``limit``."""
    year_ago = now - dt.timedelta(days=PERIOD_DAYS)
    cp, rem = table(ContactPoint), table(SubscriberReminder)
    with read_transaction(engine) as s:
        return [(i, lang) for i, lang in s.execute(
            sa.select(Subscriber.id, Subscriber.language)
            .join(SubscriberProfile, SubscriberProfile.subscriber_id == Subscriber.id)
            .where(Subscriber.created_at <= year_ago,
                   SubscriberProfile.updated_at <= year_ago,
                   ~Subscriber.external_id.startswith("erased:"),
                   sa.exists().where(cp.c.subscriber_id == Subscriber.id,
                                     cp.c.kind == "email", cp.c.verified_at.is_not(None),
                                     cp.c.invalid_at.is_(None)),
                   ~sa.exists().where(cp.c.subscriber_id == Subscriber.id,
                                      cp.c.verified_at > year_ago),
                   ~sa.exists().where(rem.c.subscriber_id == Subscriber.id,
                                      sa.or_(rem.c.claimed_at > year_ago,
                                             rem.c.year == now.year)))
            .order_by(Subscriber.id).limit(limit))]


def _claim(engine: Engine, subscriber_id: int, now: dt.datetime) -> bool:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    with transaction(engine) as s:
        rem = table(SubscriberReminder)
        won = s.scalar(insert(rem)
                       .values(subscriber_id=subscriber_id, year=now.year, claimed_at=now)
                       .on_conflict_do_nothing().returning(rem.c.subscriber_id))
        return won is not None


def _content(engine: Engine, subscriber_id: int) -> tuple[str | None, dict[str, int], list[str]]:
    """The first verified valid e-mail address, counts per kind, chosen channels."""
    with read_transaction(engine) as s:
        points = s.execute(sa.select(ContactPoint.kind, ContactPoint.value,
                                     ContactPoint.verified_at, ContactPoint.invalid_at)
                           .where(ContactPoint.subscriber_id == subscriber_id)
                           .order_by(ContactPoint.id)).all()
        addresses = s.scalar(sa.select(sa.func.count()).select_from(Address)
                             .where(Address.subscriber_id == subscriber_id)) or 0
        channels = s.scalar(sa.select(SubscriberProfile.channels)
                            .where(SubscriberProfile.subscriber_id == subscriber_id)) or ""
    email = next((v for k, v, ver, inv in points
                  if k == "email" and ver is not None and inv is None), None)
    counts: dict[str, int] = {"address": int(addresses)}
    for kind, *_ in points:
        counts[kind] = counts.get(kind, 0) + 1
    return email, counts, [c for c in channels.split(",") if c]


def send_reminders(engine: Engine, sender: Sender, *, portal: str, limit: int,
                   now: dt.datetime | None = None, dry_run: bool = False,
                   actor: str = "system") -> ReminderReport:
    """Send the reminders that are due (see the module docstring), at most ``limit``;
    ``portal``: the portal's address as plain text (:func:`portal_address`). With
    ``dry_run`` nothing is claimed or sent. One audit entry ``citizen.reminders`` with
    the counts when any was sent."""
    from tocsin.authorities.audit import record_audit

    now = now or utcnow()
    report = ReminderReport(dry_run=dry_run)
    if limit <= 0:
        return report
    due = _due(engine, now, limit)
    report.due = len(due)
    for subscriber_id, language in due:
        if dry_run:
            report.subscriber_ids.append(subscriber_id)
            continue
        if not _claim(engine, subscriber_id, now):
            report.skipped += 1
            continue
        email, counts, channels = _content(engine, subscriber_id)
        sent = False
        if email is not None:
            text, subject = reminder_message(language, counts, channels, portal)
            sent = sender.send("email", email, text, subject, language)
        rem = table(SubscriberReminder)
        key = sa.and_(rem.c.subscriber_id == subscriber_id, rem.c.year == now.year)
        with transaction(engine) as s:
            if sent:
                s.execute(sa.update(rem).where(key).values(sent_at=utcnow()))
            else:  # refused: the claim goes back, the next run tries again
                s.execute(sa.delete(rem).where(key))
        if sent:
            report.sent += 1
            report.subscriber_ids.append(subscriber_id)
        else:
            report.failed += 1
    if report.sent:
        with transaction(engine) as s:
            record_audit(s, actor, "citizen.reminders",
                         detail={"sent": report.sent, "failed": report.failed})
    return report
