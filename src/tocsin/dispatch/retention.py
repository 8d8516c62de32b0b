"""Retention of per-recipient data (issue 10 point 5; GDPR Art. 5(1)(c) and (e), data
minimisation and storage limitation; docs/decisions/0023-retention.md).

A finished campaign keeps, for billing and its report, one row per delivery with its
channel, state, segments, cost, attempts and times. Who it went to is needed only while
it is sent and its receipts come in: :data:`Settings.retention_days` (default 30) days
after the campaign finished, :func:`run_retention` replaces every number and e-mail
address tied to it by a keyed pseudonym (:func:`pseudonym`, HMAC-SHA-256 of the value
under a key derived from the deployment secret, RFC 2104), so that counts, states,
costs and reports keep working and the same person stays recognisable inside one
report, but nobody can tell who without the secret:

- ``delivery.address`` (sms, e-mail, voice; location-based and CAP rows name an
  operator, not a person) and the address inside ``delivery.error``;
- ``sms_message`` / ``sms_part_id`` rows (the SMSC's message ids of each part, only
  used to match receipts) are deleted;
- ``voice_call``: the provider's call id is cleared, the number removed from ``error``;
- ``campaign_answer`` (respondent, address; name cleared), ``quota_person`` (key;
  name, mobile and e-mail cleared), ``inbound_message`` of the campaign (sender; text
  cleared, what it was read as kept);

and, whatever the campaign, ``inbound_message`` rows read as no answer and
``delivery_receipt`` rows (deleted) older than the retention period.

Only campaigns that are ``finished``, ``cancelled`` or ``stopped`` since before the
cut-off are touched, and only their deliveries that left (final, or ``sent``: the
campaign's receipt deadline is long past); a row still queued or in flight waits.
The walk is keyset-batched (``retention_batch`` rows per transaction, bounded
memory) and held by a lease per campaign (``campaign_retention``, like the fan-out's,
decision 0014): several workers may run it at once, each campaign is walked by one of
them, and a dead worker's lease runs out for another to continue.
Running it again changes nothing (a pseudonym is never pseudonymised again).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.core.db import table, transaction, utcnow
from tocsin.core.settings import Settings
from tocsin.dispatch.models import (
    FINAL_STATES,
    SENT,
    CampaignRetention,
    Delivery,
    DeliveryReceipt,
    SmsMessage,
    SmsPartId,
)

#: Campaign statuses after which nothing more is sent.
ENDED = ("finished", "cancelled", "stopped")
#: Channels whose delivery address is a person's number or e-mail address.
PERSONAL_CHANNELS = ("sms", "email", "voice")
#: Prefixes of addresses that hold nothing personal any more.
PSEUDONYM_PREFIX = "pseudo:"
ERASED_PREFIX = "erased:"
#: How long one worker holds a campaign between two batches (seconds).
LEASE_SECONDS = 120.0


@dataclass
class RetentionReport:
    """What one run did: ``campaigns`` finished (every row pseudonymised),
    ``deliveries``/``answers``/``quota_people``/``inbound``/``voice_calls`` rows
    pseudonymised, ``sms_ids``/``receipts`` rows deleted, ``waiting`` campaigns left
    with deliveries not yet final, ``busy`` campaigns held by another worker;
    ``cutoff`` (ISO 8601 UTC) and ``days``."""

    days: int
    cutoff: str
    campaigns: int = 0
    deliveries: int = 0
    answers: int = 0
    quota_people: int = 0
    inbound: int = 0
    voice_calls: int = 0
    sms_ids: int = 0
    receipts: int = 0
    waiting: int = 0
    busy: int = 0
    campaign_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def changed(self) -> bool:
        return any((self.campaigns, self.deliveries, self.answers, self.quota_people,
                    self.inbound, self.voice_calls, self.sms_ids, self.receipts))


def retention_key(secret: str) -> bytes:
    """The pseudonym key: HMAC-SHA-256(``secret``, a label of its own), so that a
    pseudonym never equals any other keyed hash the platform makes."""
    return hmac.new(secret.encode("utf-8"), b"tocsin retention pseudonyms 1",
                    hashlib.sha256).digest()


def deployment_secret(settings: Settings) -> str:
    """The deployment secret (``TOCSIN_SECRET_KEY``, else the key file in ``var_dir``)."""
    from tocsin.web.security import resolve_secret_key  # the one place that keeps it

    return resolve_secret_key(settings)


def pseudonym(key: bytes, value: str) -> str:
    """``pseudo:<20 hex>`` for ``value`` (a number, an e-mail address, a respondent key):
    the same value always gives the same pseudonym under one key (80 bits: distinct
    values stay distinct, which the unique (campaign, channel, address) needs); a value
    that is already a pseudonym or erased is returned as it is."""
    if is_pseudonymous(value):
        return value
    mac = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{PSEUDONYM_PREFIX}{mac[:20]}"


def is_pseudonymous(value: str | None) -> bool:
    """True for ``None``/empty and for values :func:`pseudonym` or erasure wrote."""
    return not value or value.startswith((PSEUDONYM_PREFIX, ERASED_PREFIX))


def _rows(result: Any) -> int:
    """Rows an UPDATE / DELETE touched."""
    return int(getattr(result, "rowcount", 0) or 0)


def _scrub(text: str | None, value: str, replacement: str) -> str | None:
    return text.replace(value, replacement) if text and value and value in text else text


def _insert_ignore(engine: Engine, model: Any) -> Any:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    return insert(table(model))


def run_retention(engine: Engine, settings: Settings, *, secret: str | None = None,
                  days: int | None = None, owner: str = "retention",
                  now: dt.datetime | None = None, actor: str = "system",
                  audit_empty: bool = True) -> RetentionReport:
    """Pseudonymise what is older than ``days`` (default ``settings.retention_days``)
    days (see the module docstring); returns what was done. ``owner`` names this
    process in the leases (unique per worker). One audit entry ``retention.run`` by
    ``actor`` with the counts (no personal data), unless nothing changed and
    ``audit_empty`` is False. ValueError when ``days`` < 1."""
    from tocsin.authorities.audit import record_audit
    from tocsin.campaigns.models import Campaign

    days = settings.retention_days if days is None else days
    if days < 1:
        raise ValueError(f"days: must be at least 1, got {days}")
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=days)
    key = retention_key(secret if secret is not None else deployment_secret(settings))
    report = RetentionReport(days=days, cutoff=cutoff.isoformat())
    r = table(CampaignRetention)
    with transaction(engine) as s:
        due = list(s.scalars(
            sa.select(Campaign.id).where(
                Campaign.status.in_(ENDED), Campaign.finished_at.is_not(None),
                Campaign.finished_at < cutoff,
                ~sa.exists().where(r.c.campaign_id == Campaign.id, r.c.done_at.is_not(None)))
            .order_by(Campaign.finished_at, Campaign.id)))
    for cid in due:
        if not _claim(engine, cid, owner, now):
            report.busy += 1
            continue
        _walk(engine, cid, owner, key, settings.retention_batch, cutoff, report)
    _old_inbound(engine, key, cutoff, settings.retention_batch, report)
    _old_receipts(engine, cutoff, settings.retention_batch, report)
    if report.changed or audit_empty:
        with transaction(engine) as s:
            detail = {k: v for k, v in report.to_json().items() if k != "campaign_ids"}
            record_audit(s, actor, "retention.run", detail=detail)
    return report


def _claim(engine: Engine, cid: str, owner: str, now: dt.datetime) -> bool:
    """Take the lease of ``cid``'s retention walk; False when another worker holds it
    (or it is done)."""
    r = table(CampaignRetention)
    with transaction(engine) as s:
        s.execute(_insert_ignore(engine, CampaignRetention)
                  .values(campaign_id=cid, cursor=0, deliveries=0)
                  .on_conflict_do_nothing(index_elements=["campaign_id"]))
        taken = s.execute(
            sa.update(r).where(r.c.campaign_id == cid, r.c.done_at.is_(None),
                               sa.or_(r.c.owner.is_(None), r.c.owner == owner,
                                      r.c.lease_until < now))
            .values(owner=owner, lease_until=now + dt.timedelta(seconds=LEASE_SECONDS)))
        return bool(_rows(taken))


def _renew(s: Session, cid: str, owner: str) -> int | None:
    """Extend the lease inside the batch's transaction; the cursor, or None when the
    lease was lost (another worker took over)."""
    r = table(CampaignRetention)
    kept = s.execute(sa.update(r).where(r.c.campaign_id == cid, r.c.owner == owner,
                                        r.c.done_at.is_(None))
                     .values(lease_until=utcnow() + dt.timedelta(seconds=LEASE_SECONDS)))
    if not _rows(kept):
        return None
    return int(s.scalar(sa.select(r.c.cursor).where(r.c.campaign_id == cid)) or 0)


def _is_final(state: str) -> bool:
    # ``sent`` is final once the campaign ended: its receipt deadline passed long ago
    # (``queue.finish_campaigns``), and an e-mail accepted by the relay stays ``sent``.
    return state in FINAL_STATES or state == SENT


def _walk(engine: Engine, cid: str, owner: str, key: bytes, batch: int,
          cutoff: dt.datetime, report: RetentionReport) -> None:
    """Pseudonymise ``cid``'s deliveries ``batch`` rows per transaction, then its
    answers; marks it done unless a delivery is not final yet."""
    from tocsin.dispatch.voice_models import VoiceCall

    d, r, vc = table(Delivery), table(CampaignRetention), table(VoiceCall)
    first_waiting: int | None = None
    while True:
        with transaction(engine) as s:
            cursor = _renew(s, cid, owner)
            if cursor is None:
                report.busy += 1
                return
            rows = s.execute(
                sa.select(d.c.id, d.c.channel, d.c.address, d.c.state, d.c.error)
                .where(d.c.campaign_id == cid, d.c.id > cursor)
                .order_by(d.c.id).limit(batch)).all()
            if not rows:
                break
            changes: list[dict[str, Any]] = []
            done_ids: list[int] = []
            aliases: dict[int, tuple[str, str]] = {}
            for row in rows:
                if row.channel not in PERSONAL_CHANNELS:
                    continue
                if not _is_final(row.state):
                    first_waiting = row.id if first_waiting is None else first_waiting
                    continue
                done_ids.append(row.id)
                if is_pseudonymous(row.address):
                    continue
                alias = pseudonym(key, row.address)
                changes.append({"b_id": row.id, "b_address": alias,
                                "b_error": _scrub(row.error, row.address, alias)})
                aliases[row.id] = (row.address, alias)
            if changes:
                s.execute(sa.update(d).where(d.c.id == sa.bindparam("b_id"))
                          .values(address=sa.bindparam("b_address"),
                                  error=sa.bindparam("b_error")), changes)
                report.deliveries += len(changes)
            if done_ids:
                for model in (SmsMessage, SmsPartId):
                    t = table(model)
                    report.sms_ids += _rows(s.execute(
                        sa.delete(t).where(t.c.delivery_id.in_(done_ids))))
            if aliases:
                for call_id, delivery_id, error in s.execute(
                        sa.select(vc.c.id, vc.c.delivery_id, vc.c.error).where(
                            vc.c.delivery_id.in_(list(aliases))).order_by(vc.c.id)).all():
                    number, alias = aliases[delivery_id]
                    s.execute(sa.update(vc).where(vc.c.id == call_id).values(
                        provider_call_sid=None, error=_scrub(error, number, alias)))
                    report.voice_calls += 1
            s.execute(sa.update(r).where(r.c.campaign_id == cid).values(
                cursor=rows[-1].id, deliveries=r.c.deliveries + len(changes)))
    with transaction(engine) as s:
        if _renew(s, cid, owner) is None:
            report.busy += 1
            return
        _answers(s, cid, key, report)
        if first_waiting is not None:
            # Walk again from the first row that was not final, on a later run.
            s.execute(sa.update(r).where(r.c.campaign_id == cid).values(
                cursor=first_waiting - 1, owner=None, lease_until=None))
            report.waiting += 1
            return
        s.execute(sa.update(r).where(r.c.campaign_id == cid).values(
            done_at=utcnow(), owner=None, lease_until=None))
        report.campaigns += 1
        report.campaign_ids.append(cid)


def _answers(s: Session, cid: str, key: bytes, report: RetentionReport) -> None:
    """Pseudonymise ``cid``'s answers, quota list and inbound SMS (a group's answers: a
    few thousand rows at most, one transaction)."""
    from tocsin.campaigns.answer_models import CampaignAnswer, InboundMessage, QuotaPerson

    a, q, m = table(CampaignAnswer), table(QuotaPerson), table(InboundMessage)
    for row in s.execute(sa.select(a.c.id, a.c.respondent, a.c.address, a.c.name)
                         .where(a.c.campaign_id == cid).order_by(a.c.id)).all():
        if is_pseudonymous(row.respondent) and is_pseudonymous(row.address) and not row.name:
            continue
        s.execute(sa.update(a).where(a.c.id == row.id).values(
            respondent=pseudonym(key, row.respondent), address=pseudonym(key, row.address),
            name=None))
        report.answers += 1
    for row in s.execute(sa.select(q.c.key, q.c.name, q.c.mobile, q.c.email)
                         .where(q.c.campaign_id == cid).order_by(q.c.key)).all():
        if is_pseudonymous(row.key) and not (row.name or row.mobile or row.email):
            continue
        s.execute(sa.update(q).where(q.c.campaign_id == cid, q.c.key == row.key).values(
            key=pseudonym(key, row.key), name=None, mobile=None, email=None))
        report.quota_people += 1
    report.inbound += _pseudonymise_inbound(s, key, m.c.campaign_id == cid)


def _pseudonymise_inbound(s: Session, key: bytes, where: sa.ColumnElement[bool],
                          limit: int | None = None) -> int:
    from tocsin.campaigns.answer_models import InboundMessage

    m = table(InboundMessage)
    q = (sa.select(m.c.id, m.c.sender, m.c.text).where(where)
         .where(sa.or_(~m.c.sender.startswith(PSEUDONYM_PREFIX), m.c.text != ""))
         .order_by(m.c.id))
    done = 0
    for row in s.execute(q.limit(limit) if limit else q).all():
        # Guarded by the old sender: a second worker doing the same row changes nothing.
        s.execute(sa.update(m).where(m.c.id == row.id, m.c.sender == row.sender)
                  .values(sender=pseudonym(key, row.sender), text=""))
        done += 1
    return done


def _old_inbound(engine: Engine, key: bytes, cutoff: dt.datetime, batch: int,
                 report: RetentionReport) -> None:
    """Inbound SMS read as no answer to any campaign, older than the cut-off."""
    from tocsin.campaigns.answer_models import InboundMessage

    m = table(InboundMessage)
    while True:
        with transaction(engine) as s:
            n = _pseudonymise_inbound(s, key, sa.and_(m.c.campaign_id.is_(None),
                                                      m.c.received_at < cutoff), batch)
        report.inbound += n
        if n < batch:
            return


def _old_receipts(engine: Engine, cutoff: dt.datetime, batch: int,
                  report: RetentionReport) -> None:
    """Delete delivery receipts received before the cut-off (applied long ago, or never
    matched: either way of no more use), ``batch`` per transaction."""
    t = table(DeliveryReceipt)
    while True:
        with transaction(engine) as s:
            ids = list(s.scalars(sa.select(t.c.id).where(t.c.received_at < cutoff)
                                 .order_by(t.c.id).limit(batch)))
            if ids:
                report.receipts += _rows(s.execute(
                    sa.delete(t).where(t.c.id.in_(ids))))
        if len(ids) < batch:
            return
