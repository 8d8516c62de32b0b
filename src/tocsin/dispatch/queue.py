"""The deliveries table as a queue: claim with leases, record outcomes, apply receipts.

All functions here are synchronous database work; the async worker runs them in
a thread so that database I/O never blocks the event loop that talks SMPP/SMTP.

Claiming is one ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`` statement:
on PostgreSQL the subquery takes ``FOR UPDATE SKIP LOCKED`` so concurrent workers
skip each other's rows; on SQLite the statement runs under ``BEGIN IMMEDIATE``
(see ``core.db``) so claims serialise on the write lock. Either way a row is
handed to one worker at a time while its lease is alive.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.channels.base import ReceiptEvent, SendOutcome
from tocsin.channels.email import Dsn
from tocsin.core.db import is_postgres, table, transaction, utcnow
from tocsin.dispatch.models import (
    DELIVERED,
    EXPIRED,
    FAILED,
    IN_FLIGHT,
    QUEUED,
    SENT,
    Delivery,
    DeliveryReceipt,
    SmsMessage,
)

log = logging.getLogger(__name__)

#: SMS and e-mail retry transient failures until the message's validity ends
#: (``validity_ends``, issue 13); other channels (CAP gateway webhooks, voice: a
#: busy line) give up after ``MAX_ATTEMPTS`` attempts too.
RETRY_UNTIL_VALIDITY = frozenset({"sms", "email"})
MAX_ATTEMPTS = 8
#: Validity of a message whose campaign has no ``expires_at``: hours after launch.
DEFAULT_VALIDITY_HOURS = 24.0
#: A throttled message (the provider asked to slow down) is offered again after this.
THROTTLE_RETRY_SECONDS = 0.5
#: A receipt may be stored (its clock) before the submission it answers was recorded
#: (another worker's clock, or the submit_sm_resp written later): tolerance, seconds.
RECEIPT_CLOCK_SKEW_SECONDS = 300.0
#: Seconds after a campaign's last SMS submit during which it still waits for
#: delivery receipts (SMPP 3.4 §4.6.1 deliver_sm): its SMS that are ``sent`` may
#: still become ``delivered`` or ``failed``. Then the campaign is finished anyway
#: (those stay ``sent``; a receipt that comes later is still applied).
RECEIPT_GRACE_SECONDS = 60.0
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0

# SMPP 3.4 Appendix B final message states -> SPEC F26 delivery states.
RECEIPT_STATES = {
    "DELIVRD": DELIVERED, "EXPIRED": EXPIRED, "UNDELIV": FAILED, "REJECTD": FAILED,
    "DELETED": FAILED, "UNKNOWN": FAILED,
}


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery row handed to one worker until ``lease_until``."""

    id: int
    campaign_id: str
    channel: str
    address: str
    language: str
    attempts: int


def _state_in(*states: str) -> sa.ColumnElement[bool]:
    # ``IN`` renders an expanding parameter, which executemany() cannot take.
    d = table(Delivery)
    return sa.or_(*(d.c.state == st for st in states))


#: Campaign statuses whose queued deliveries wait (``campaigns.control``): never claimed.
HELD_STATUSES = ("paused", "stopped", "cancelled")
#: The campaigns that have queued deliveries: a skip scan of ``ix_delivery_queued_campaign``
#: (one index probe per campaign, however many rows are queued).
#: SQLite is told which index (else it walks ``ix_delivery_campaign_state`` through every
#: sent row of the first campaign looking for a queued one).
_QUEUED_CAMPAIGNS_SQL = (
    "WITH RECURSIVE q(cid) AS ("
    " SELECT (SELECT campaign_id FROM delivery{hint} WHERE state = 'queued'"
    " ORDER BY campaign_id LIMIT 1)"
    " UNION ALL"
    " SELECT (SELECT campaign_id FROM delivery{hint}"
    " WHERE state = 'queued' AND campaign_id > q.cid ORDER BY campaign_id LIMIT 1)"
    " FROM q WHERE q.cid IS NOT NULL)"
    " SELECT cid FROM q WHERE cid IS NOT NULL")
_QUEUED_CAMPAIGNS = {
    "postgresql": sa.text(_QUEUED_CAMPAIGNS_SQL.format(hint="")),
    "sqlite": sa.text(_QUEUED_CAMPAIGNS_SQL.format(
        hint=" INDEXED BY ix_delivery_queued_campaign")),
}

#: Per process: the campaign each (channel, environment) claim served last, so that
#: campaigns of equal priority take turns (round-robin, decision 0014).
_LAST_SERVED: dict[tuple[str, str], str] = {}


def _serving_order(rows: Sequence[tuple[str, int]], last: str | None) -> list[str]:
    """Campaign ids in claim order: priority first (alert 0 … test 3), then, within a
    priority, round-robin starting after ``last`` (the campaign served last)."""
    ordered = sorted(rows, key=lambda r: (r[1], r[0]))
    out: list[str] = []
    for prio in sorted({p for _, p in ordered}):
        group = [cid for cid, p in ordered if p == prio]
        if last in group:
            i = group.index(last) + 1
            group = group[i:] + group[:i]
        out += group
    return out


def claim(
    engine: Engine, worker: str, channel: str, environment: str, limit: int,
    lease_seconds: float, campaign_id: str | None = None,
) -> list[ClaimedDelivery]:
    """Move up to ``limit`` queued deliveries to ``in_flight`` under a lease for ``worker``.

    Campaigns paused, stopped or cancelled (``HELD_STATUSES``) are not served.
    Priority first (alert > warning > information > test/exercise,
    ``rules.PRIORITY``); campaigns of equal priority take turns, one batch each
    (round-robin), so a national test never starves a local one launched after
    it. Within a campaign, oldest first. Each campaign's rows are claimed with an
    index seek on ``ix_delivery_queued_campaign`` (campaign, channel, id of queued
    rows): the cost does not grow with the queue. A batch not filled by the
    campaign whose turn it is is topped up from the next ones. Returns the
    claimed rows, by id.
    """
    from tocsin.campaigns.models import Campaign

    now = utcnow()
    d = table(Delivery)
    postgres = is_postgres(engine)
    out: list[ClaimedDelivery] = []
    with transaction(engine) as s:
        if campaign_id is not None:
            ids = [campaign_id]
        else:
            ids = list(s.scalars(_QUEUED_CAMPAIGNS["postgresql" if postgres else "sqlite"]))
        q = sa.select(Campaign.id, Campaign.priority).where(
            Campaign.id.in_(ids), Campaign.environment == environment,
            Campaign.status.not_in(HELD_STATUSES))
        key = (channel, environment)
        for cid in _serving_order([(r[0], r[1]) for r in s.execute(q)], _LAST_SERVED.get(key)):
            pick = (
                sa.select(d.c.id)
                .where(d.c.campaign_id == cid, d.c.channel == channel, d.c.state == QUEUED,
                       sa.or_(d.c.not_before.is_(None), d.c.not_before <= now))
                .order_by(d.c.id)
                .limit(limit - len(out))
            )
            if postgres:
                pick = pick.with_for_update(skip_locked=True)
            rows = s.execute(
                sa.update(d)
                .where(d.c.id.in_(pick.scalar_subquery()))
                .values(state=IN_FLIGHT, worker=worker, attempts=d.c.attempts + 1,
                        lease_until=now + dt.timedelta(seconds=lease_seconds))
                .returning(d.c.id, d.c.campaign_id, d.c.channel, d.c.address, d.c.language,
                           d.c.attempts)
            ).all()
            if rows and not out:
                _LAST_SERVED[key] = cid
            out += (ClaimedDelivery(*r) for r in rows)
            if len(out) >= limit:
                break
    return sorted(out, key=lambda c: c.id)


def has_queued(engine: Engine, channel: str, environment: str,
               campaign_id: str | None = None) -> bool:
    """Whether any delivery of ``channel`` in ``environment`` (of ``campaign_id`` when
    given) is queued: a worker opens a provider session (an SMPP bind, an SMTP
    connection) only when there is something to send through it."""
    d = table(Delivery)
    q = sa.select(d.c.id).where(d.c.state == QUEUED, d.c.channel == channel,
                                d.c.environment == environment)
    if campaign_id is not None:
        q = q.where(d.c.campaign_id == campaign_id)
    with transaction(engine) as s:
        return s.scalar(q.limit(1)) is not None


def retry_delay(attempts: int) -> float:
    """Seconds before retry number ``attempts`` (exponential back-off, capped at 5 min)."""
    return float(min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)))


def _in_ids(column: sa.ColumnElement[int], ids: Sequence[int],
            postgres: bool) -> list[sa.ColumnElement[bool]]:
    """``column IN ids`` in as few clauses as possible (run one statement per clause).

    PostgreSQL: one clause, ``column = ANY(<one array parameter>)``: the statement
    text stays the same whatever the number of ids, so neither SQLAlchemy nor psycopg
    builds and parses a statement of thousands of parameters each time (issue 13:
    that was most of the time of applying 10,000 receipts). SQLite: chunks of 1,000
    parameters (its limit is 32,766)."""
    ids = list(ids)
    if not ids:
        return []
    if postgres:
        from sqlalchemy.dialects.postgresql import ARRAY

        return [column == sa.any_(sa.literal(ids, type_=ARRAY(sa.BigInteger)))]
    return [column.in_(ids[start:start + 1000]) for start in range(0, len(ids), 1000)]


def _lock_in_id_order(session: Session, ids: Iterable[int]) -> None:
    """PostgreSQL: lock the delivery rows ``ids`` in ascending id order, first thing.

    Every writer of several delivery rows (recording outcomes, applying
    receipts) takes its row locks in the same order, so two of them can wait
    for each other but never deadlock; the heartbeat and the sweeper skip
    locked rows instead of waiting. SQLite needs none of it: ``BEGIN
    IMMEDIATE`` lets one writer in at a time.
    """
    if not is_postgres(session.get_bind()):  # type: ignore[arg-type]
        return
    d = table(Delivery)
    for clause in _in_ids(d.c.id, sorted(set(ids)), True):
        session.execute(sa.select(d.c.id).where(clause).order_by(d.c.id).with_for_update())


def message_id_key(message_id: str) -> str:
    """The form a provider message id is matched on: lower case, no leading zeros.

    ``"0001A2"`` and ``"1a2"`` give ``"1a2"``; so a receipt naming the id in another
    case or padding still finds its submission."""
    return message_id.strip().lower().lstrip("0") or "0"


def receipt_id_keys(message_id: str) -> tuple[str, str | None]:
    """(``message_id_key``, the id read as decimal and written in hexadecimal or None).

    Some SMSCs answer submit_sm with a hexadecimal id and write it in decimal in the
    receipt text (issue 13); the receipted_message_id TLV, preferred when present,
    carries it as submitted."""
    value = message_id.strip()
    alt = format(int(value), "x") if value.isdigit() and len(value) < 40 else None
    return message_id_key(value), (alt if alt != message_id_key(value) else None)


def validity_ends(session: Session, campaign_ids: Iterable[str]) -> dict[str, dt.datetime]:
    """campaign id -> when its messages stop being worth sending (UTC).

    The campaign's ``expires_at`` (CAP ``expires``), else ``DEFAULT_VALIDITY_HOURS``
    after launch (or after now, for a campaign not launched)."""
    from tocsin.campaigns.models import Campaign

    now = utcnow()
    out: dict[str, dt.datetime] = {}
    ids = sorted(set(campaign_ids))
    for cid, expires, launched in session.execute(
            sa.select(Campaign.id, Campaign.expires_at, Campaign.launched_at)
            .where(Campaign.id.in_(ids))).all():
        end = expires or ((launched or now) + dt.timedelta(hours=DEFAULT_VALIDITY_HOURS))
        out[cid] = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
    return out


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _next_try(now: dt.datetime, o: SendOutcome, attempts: dict[int, int],
              end: dt.datetime | None) -> dt.datetime:
    """When a retried delivery may be claimed again: back-off, never past its validity."""
    wait = (THROTTLE_RETRY_SECONDS if o.throttled
            else retry_delay(attempts.get(o.delivery_id, 1)))
    at = now + dt.timedelta(seconds=wait)
    return min(at, end) if end is not None else at


def record_outcomes(
    engine: Engine, channel: str, outcomes: Sequence[SendOutcome],
    attempts: dict[int, int] | None = None, account: str = "",
) -> None:
    """Write what providers answered: ``sent`` (with message ids), ``failed``, ``retry``.

    An SMS ``sent`` with ``outcome.segments`` (its account cut it into another number
    of segments than the plan counted, decision 0025) gets those segments and its cost
    scaled to them (the plan's price per segment).

    ``sent`` counts a submission (``submissions``) and keeps the SMS parts' message
    ids under the provider account (``outcome.account``, else ``account``): ids
    repeat across SMSC restarts and accounts, so nothing here is unique on the id.
    A ``retry`` goes back to ``queued`` with back-off until the message's validity
    ends (``validity_ends``; channels outside ``RETRY_UNTIL_VALIDITY`` are
    ``failed`` after ``MAX_ATTEMPTS`` too); then it is ``expired`` with the error ``abandoned
    after N attempts, validity ended: <last error>``. A throttled retry does not
    count as an attempt; an unconfirmed one (connection lost with the message on
    the wire) counts in ``unconfirmed``. Rows already final are left alone.

    Should the batch violate a constraint, each outcome is written on its own,
    its SMS part ids dropped only where they alone fail: an outcome is never lost
    because of its ids. Raises the database's errors otherwise (the worker keeps
    the outcomes and retries, see ``worker.Worker._record``).
    """
    if not outcomes:
        return
    try:
        _record_outcomes(engine, channel, outcomes, attempts or {}, account, parts=True)
    except sa.exc.IntegrityError:
        log.exception("recording %d outcomes: constraint violated; writing one by one",
                      len(outcomes))
        for o in outcomes:
            try:
                _record_outcomes(engine, channel, [o], attempts or {}, account, parts=True)
            except sa.exc.IntegrityError:
                log.exception("outcome of delivery %d written without its message ids",
                              o.delivery_id)
                _record_outcomes(engine, channel, [o], attempts or {}, account, parts=False)


def _record_outcomes(engine: Engine, channel: str, outcomes: Sequence[SendOutcome],
                     attempts: dict[int, int], account: str, *, parts: bool) -> None:
    now = utcnow()
    d = table(Delivery)
    sent = [o for o in outcomes if o.result == "sent"]
    postgres = is_postgres(engine)
    with transaction(engine) as s:
        _lock_in_id_order(s, (o.delivery_id for o in outcomes))
        if sent and postgres:  # one set-based statement, not one per row (issue 13)
            s.execute(sa.text(
                "UPDATE delivery SET state = :sent, sent_at = :now, lease_until = NULL, "
                "submissions = delivery.submissions + 1, provider_message_id = v.mid, "
                "error = NULL FROM unnest(CAST(:ids AS bigint[]), CAST(:mids AS varchar[])) "
                "AS v(id, mid) WHERE delivery.id = v.id AND delivery.state IN (:in_flight, "
                ":queued)"),
                {"sent": SENT, "now": now, "in_flight": IN_FLIGHT, "queued": QUEUED,
                 "ids": [o.delivery_id for o in sent],
                 "mids": [o.message_ids[0][:200] if o.message_ids else None for o in sent]})
        elif sent:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"),
                                   _state_in(IN_FLIGHT, QUEUED))
                .values(state=SENT, sent_at=now, lease_until=None,
                        submissions=d.c.submissions + 1,
                        provider_message_id=sa.bindparam("mid"), error=None),
                [{"did": o.delivery_id, "mid": o.message_ids[0] if o.message_ids else None}
                 for o in sent],
                execution_options={"synchronize_session": False},
            )
        resized = [o for o in sent if o.segments > 0]
        if resized:
            # The account cut the text otherwise than the plan counted (a 16-bit
            # concatenation reference, decision 0025): segments and cost as sent.
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"),
                                   d.c.segments != sa.bindparam("seg"))
                .values(cost_eur=sa.case(
                    (d.c.segments > 0, d.c.cost_eur * sa.bindparam("seg") / d.c.segments),
                    else_=d.c.cost_eur), segments=sa.bindparam("seg")),
                [{"did": o.delivery_id, "seg": o.segments} for o in resized],
                execution_options={"synchronize_session": False},
            )
        if sent:
            rows = [{"account": o.account or account, "id_key": message_id_key(m),
                     "message_id": m[:100], "delivery_id": o.delivery_id, "submitted_at": now}
                    for o in sent if channel == "sms" for m in o.message_ids]
            if rows and parts:
                s.execute(sa.insert(table(SmsMessage)), rows)
        capped = channel not in RETRY_UNTIL_VALIDITY
        failed = [o for o in outcomes if o.result == "failed" or (
            capped and o.result == "retry" and attempts.get(o.delivery_id, 0) >= MAX_ATTEMPTS)]
        failed_ids = {o.delivery_id for o in failed}
        retry = [o for o in outcomes if o.result == "retry" and o.delivery_id not in failed_ids]
        ends = validity_ends(s, _campaigns_of(s, [o.delivery_id for o in retry])) if retry \
            else {}
        campaign_of: dict[int, str] = {
            did: cid for did, cid in s.execute(sa.select(d.c.id, d.c.campaign_id).where(
                d.c.id.in_([o.delivery_id for o in retry]))).all()} if retry else {}
        end_of = {o.delivery_id: ends.get(campaign_of.get(o.delivery_id, "")) for o in retry}
        abandoned = [o for o in retry
                     if (end := end_of[o.delivery_id]) is not None and end <= now]
        if failed:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"),
                                   _state_in(IN_FLIGHT, QUEUED))
                .values(state=FAILED, final_at=now, lease_until=None, error=sa.bindparam("err")),
                [{"did": o.delivery_id, "err": o.error[:500] or "failed"} for o in failed],
                execution_options={"synchronize_session": False},
            )
        if abandoned:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"),
                                   _state_in(IN_FLIGHT, QUEUED))
                .values(state=EXPIRED, final_at=now, lease_until=None,
                        unconfirmed=d.c.unconfirmed + sa.bindparam("unc"),
                        error=sa.bindparam("err")),
                [{"did": o.delivery_id, "unc": int(o.unconfirmed),
                  "err": (f"abandoned after {_attempts(attempts.get(o.delivery_id, 1))}, "
                          f"validity ended: {o.error or 'no answer'}")[:500]}
                 for o in abandoned],
                execution_options={"synchronize_session": False},
            )
        bounced = {o.delivery_id: o.error for o in outcomes
                   if o.result == "failed" and o.hard_bounce}
        if bounced:
            addresses = s.execute(sa.select(d.c.id, d.c.address)
                                  .where(d.c.id.in_(sorted(bounced)))).all()
            mark_contact_points_invalid(
                s, channel, {a: bounced[i] or "hard bounce" for i, a in addresses}, now)
        gone = {o.delivery_id for o in abandoned}
        retry = [o for o in retry if o.delivery_id not in gone]
        if retry:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"), d.c.state == IN_FLIGHT)
                .values(state=QUEUED, lease_until=None, worker=None, error=sa.bindparam("err"),
                        attempts=d.c.attempts - sa.bindparam("thr"),
                        unconfirmed=d.c.unconfirmed + sa.bindparam("unc"),
                        not_before=sa.bindparam("nb")),
                [{"did": o.delivery_id, "err": o.error[:500], "thr": int(o.throttled),
                  "unc": int(o.unconfirmed),
                  "nb": _next_try(now, o, attempts, end_of[o.delivery_id])}
                 for o in retry],
                execution_options={"synchronize_session": False},
            )
        # The campaign of a delivery that just became final may be done. An SMS just
        # sent waits for its receipt (``apply_receipts``, ``finish_campaigns``).
        final = [o.delivery_id for o in failed] + [o.delivery_id for o in abandoned] + [
            o.delivery_id for o in sent if channel not in AWAITING_CHANNELS]
        if final:
            finish_done(s, _campaigns_of(s, final), now)


def store_receipts(engine: Engine, receipts: Iterable[ReceiptEvent]) -> int:
    """Append receipts as received; they are matched to deliveries by ``apply_receipts``."""
    rows = []
    for r in receipts:
        key, alt = receipt_id_keys(r.message_id)
        if r.extra.get("id_source") == "tlv":
            alt = None  # receipted_message_id carries the id exactly as submitted
        rows.append({"channel": r.channel, "message_id": r.message_id[:100],
                     "account": r.account or None, "id_key": key[:100], "alt_key": alt,
                     "stat": r.stat, "err": r.err, "done_at": r.done_at,
                     "received_at": utcnow()})
    if rows:
        with transaction(engine) as s:
            s.execute(sa.insert(table(DeliveryReceipt)), rows)
    return len(rows)


def _matches(session: Session, limit: int) -> dict[int, tuple[int, int]]:
    """Pending receipts that name a recorded submission: receipt id -> (part id, delivery id).

    Matched on the provider account (when the receipt names one) and the id key (or
    its decimal reading), to the latest submission recorded before the receipt came
    (``RECEIPT_CLOCK_SKEW_SECONDS`` of tolerance): after an SMSC restart repeats an id,
    a new receipt finds the new submission, never the old one."""
    r, m = table(DeliveryReceipt), table(SmsMessage)
    skew = dt.timedelta(seconds=RECEIPT_CLOCK_SKEW_SECONDS)
    best: dict[int, tuple[int, int]] = {}
    # The id as received first; its decimal reading only for receipts it did not match
    # (an SMSC with hexadecimal ids also gives ids of digits only: "123" must find the
    # submission "123", never "7b", when both exist).
    for key_col in (r.c.id_key, r.c.alt_key):
        exact = dict(best)
        rows = session.execute(
            sa.select(r.c.id, r.c.received_at, m.c.id, m.c.delivery_id, m.c.submitted_at)
            .join(m, sa.and_(m.c.id_key == key_col,
                             sa.or_(r.c.account.is_(None), m.c.account == r.c.account)))
            .where(r.c.applied_at.is_(None), r.c.channel == "sms")
            .order_by(r.c.id).limit(limit)
        ).all()
        for rid, received, mid, did, submitted in rows:
            if key_col is r.c.alt_key and rid in exact:
                continue
            if submitted is not None and received is not None and submitted > received + skew:
                continue
            if rid not in best or best[rid][0] < mid:
                best[rid] = (mid, did)
    return best


def _not_before_sent(d: sa.Table, at: Any) -> Any:
    """``at`` (a receipt's done date), or the delivery's ``sent_at`` when that is later:
    an SMPP done date has minute precision (YYMMDDhhmm, Appendix B) and the SMSC's
    clock, and a delivery is never final before it was sent (the report's "Final at"
    follows its "Sent at")."""
    return sa.case((sa.and_(d.c.sent_at.is_not(None), d.c.sent_at > at), d.c.sent_at),
                   else_=at)


def apply_receipts(engine: Engine, limit: int = 10_000) -> int:
    """Apply stored SMS receipts to their deliveries; returns how many were applied.

    A receipt whose message id is not known yet (its submit_sm_resp is not recorded,
    or it came in on another bind or worker) stays pending and is tried again next
    time. A message of several parts is ``delivered`` when every part is; any part
    failed or expired decides for the whole message (SMPP 3.4 Appendix B states, one
    receipt per submitted part).
    """
    r, m, d = table(DeliveryReceipt), table(SmsMessage), table(Delivery)
    now = utcnow()
    postgres = is_postgres(engine)
    with transaction(engine) as s:
        matched = _matches(s, limit)
        if not matched:
            return 0
        receipt_ids = sorted(matched)
        receipts = {row.id: row for clause in _in_ids(r.c.id, receipt_ids, postgres)
                    for row in s.execute(sa.select(r.c.id, r.c.stat, r.c.done_at)
                                         .where(clause)).all()}
        delivery_ids = sorted({did for _, did in matched.values()})
        _lock_in_id_order(s, delivery_ids)
        if postgres:  # one set-based statement instead of one per part (issue 13)
            s.execute(sa.text(
                "UPDATE sms_message SET stat = v.st FROM unnest(CAST(:ids AS bigint[]), "
                "CAST(:sts AS varchar[])) AS v(id, st) WHERE sms_message.id = v.id"),
                {"ids": [matched[rid][0] for rid in receipt_ids],
                 "sts": [receipts[rid].stat[:16] for rid in receipt_ids]})
        else:
            s.execute(sa.update(m).where(m.c.id == sa.bindparam("pid")).values(
                stat=sa.bindparam("st")),
                [{"pid": matched[rid][0], "st": receipts[rid].stat[:16]} for rid in receipt_ids],
                execution_options={"synchronize_session": False})
        bad: dict[int, tuple[str, dt.datetime | None, str]] = {}
        last_done: dict[int, dt.datetime | None] = {}
        for rid in receipt_ids:
            row, did = receipts[rid], matched[rid][1]
            state = RECEIPT_STATES.get(row.stat)
            if state in (FAILED, EXPIRED):
                bad[did] = (state, row.done_at, row.stat)
            last_done[did] = row.done_at
        # Parts of each touched delivery, and how many of them were delivered.
        delivered_parts: dict[int, int] = {}
        part_counts: dict[int, int] = {}
        for clause in _in_ids(m.c.delivery_id, delivery_ids, postgres):
            for did, stat, n in s.execute(
                    sa.select(m.c.delivery_id, m.c.stat, sa.func.count())
                    .where(clause).group_by(m.c.delivery_id, m.c.stat)):
                part_counts[did] = part_counts.get(did, 0) + n
                if stat == "DELIVRD":
                    delivered_parts[did] = delivered_parts.get(did, 0) + n
        done = [i for i in delivery_ids if i not in bad
                and delivered_parts.get(i, 0) >= part_counts.get(i, 1)]
        if done and postgres:
            s.execute(sa.text(
                "UPDATE delivery SET state = :delivered, "
                "final_at = GREATEST(v.at, delivery.sent_at) FROM "
                "unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[])) AS v(id, at) "
                "WHERE delivery.id = v.id AND delivery.state IN (:sent, :in_flight)"),
                {"delivered": DELIVERED, "sent": SENT, "in_flight": IN_FLIGHT, "ids": done,
                 "ats": [last_done.get(i) or now for i in done]})
        elif done:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"), _state_in(SENT, IN_FLIGHT))
                .values(state=DELIVERED, final_at=_not_before_sent(d, sa.bindparam("at"))),
                [{"did": i, "at": last_done.get(i) or now} for i in done],
                execution_options={"synchronize_session": False},
            )
        if bad:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"),
                                   _state_in(SENT, IN_FLIGHT, DELIVERED))
                .values(state=sa.bindparam("st"),
                        final_at=_not_before_sent(d, sa.bindparam("at")),
                        error=sa.bindparam("err")),
                [{"did": i, "st": st, "at": at or now, "err": f"receipt stat:{stat}"}
                 for i, (st, at, stat) in bad.items()],
                execution_options={"synchronize_session": False},
            )
        for clause in _in_ids(r.c.id, receipt_ids, postgres):
            s.execute(sa.update(r).where(clause).values(applied_at=now))
        finish_done(s, _campaigns_of(s, delivery_ids), now)
    return len(receipt_ids)


# ----------------------------------------------------------------------------- campaign end


#: Channels whose ``sent`` is not final: SMS wait for their receipt, a location-based
#: SMS broadcast for its operator's final callback (``campaigns.location``).
AWAITING_CHANNELS = ("sms", "lbsms")
#: How long a campaign waits for an LB-SMS operator's final callback after sending
#: (its broadcast runs until its not-after time, 60 min by default): then it finishes.
LOCATION_GRACE_SECONDS = 3600.0


def _campaigns_of(session: Session, delivery_ids: Sequence[int]) -> list[str]:
    """The campaigns of these deliveries, each once."""
    d = table(Delivery)
    ids = sorted(set(delivery_ids))
    found: set[str] = set()
    for clause in _in_ids(d.c.id, ids, is_postgres(session.get_bind())):  # type: ignore[arg-type]
        found.update(session.scalars(sa.select(d.c.campaign_id).distinct().where(clause)))
    return sorted(found)


def _has_open(session: Session, campaign_id: str, channels: Sequence[str]) -> bool:
    """Whether the campaign still has deliveries queued or in flight.

    Written as equality seeks on ``ix_delivery_campaign_state`` (campaign, channel,
    state), so it costs the same for ten deliveries as for a million."""
    d = table(Delivery)
    return any(session.scalar(
        sa.select(d.c.id).where(d.c.campaign_id == campaign_id, d.c.channel == ch,
                                d.c.state == st).limit(1)) is not None
        for ch in channels for st in (QUEUED, IN_FLIGHT))


def _channels(session: Session, campaign_id: str) -> list[str]:
    from tocsin.campaigns.models import Campaign

    listed = session.scalar(sa.select(Campaign.channels).where(Campaign.id == campaign_id))
    # CAP gateway pushes are deliveries too (channel ``webhook``), whatever the channels.
    return [*(c for c in (listed or "").split(",") if c and c != "cap"), "webhook"]


def _mark_finished(session: Session, campaign_id: str, now: dt.datetime) -> bool:
    from tocsin.campaigns.models import Campaign

    result = session.execute(
        sa.update(Campaign).where(Campaign.id == campaign_id, Campaign.status == "sending",
                                  Campaign.fanout_done_at.is_not(None))
        .values(status="finished", finished_at=now)
        .execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0))


def finish_done(session: Session, campaign_ids: Sequence[str],
                now: dt.datetime | None = None) -> list[str]:
    """Finish each ``sending`` campaign of ``campaign_ids`` whose deliveries are all final.

    Final: nothing queued or in flight, and no SMS still ``sent`` (waiting for its
    receipt). Called by the writer of an outcome or a receipt, in its transaction,
    so a campaign is ``finished`` as soon as its last delivery is (SPEC F26);
    campaigns whose SMS wait for receipts are closed by ``finish_campaigns`` when
    the grace period ends. Returns the ids finished.
    """
    now = now or utcnow()
    d = table(Delivery)
    done: list[str] = []
    for campaign_id in campaign_ids:
        if _has_open(session, campaign_id, _channels(session, campaign_id)):
            continue
        awaiting = session.scalar(sa.select(d.c.id).where(
            d.c.campaign_id == campaign_id, d.c.channel.in_(AWAITING_CHANNELS),
            d.c.state == SENT).limit(1))
        if awaiting is None and _mark_finished(session, campaign_id, now):
            done.append(campaign_id)
    return done


def finish_campaigns(engine: Engine, campaign_id: str | None = None,
                     now: dt.datetime | None = None,
                     receipt_grace: float = RECEIPT_GRACE_SECONDS) -> list[str]:
    """Finish every ``sending`` campaign (or only ``campaign_id``) that is done.

    Done: its fan-out is written, nothing is queued or in flight, and its SMS are
    either all final or were last submitted more than ``receipt_grace`` seconds
    before ``now`` (its LB-SMS broadcasts: :data:`LOCATION_GRACE_SECONDS`, or none when
    ``receipt_grace`` is 0) (their receipts are given up for the campaign's status; they
    stay ``sent`` and a late receipt is still applied). The worker's periodic
    loop calls it; recording outcomes and receipts finishes campaigns at once
    (``finish_done``). Returns the ids finished.
    """
    from tocsin.campaigns.models import Campaign

    now = now or utcnow()
    d = table(Delivery)
    cutoff = now - dt.timedelta(seconds=receipt_grace)
    finished: list[str] = []
    with transaction(engine) as s:
        q = sa.select(Campaign.id).where(Campaign.status == "sending",
                                         Campaign.fanout_done_at.is_not(None))
        if campaign_id is not None:
            q = q.where(Campaign.id == campaign_id)
        for cid in s.scalars(q.order_by(Campaign.id).limit(1000)).all():
            if _has_open(s, cid, _channels(s, cid)):
                continue
            # An LB-SMS broadcast runs for minutes at the operator: its final callback is
            # awaited longer than a receipt (unless the caller waits no more: grace 0).
            waiting = False
            for channels, limit in ((("sms",), cutoff), (("lbsms",), now - dt.timedelta(
                    seconds=max(receipt_grace, LOCATION_GRACE_SECONDS) if receipt_grace
                    else 0))):
                last_submit = s.scalar(sa.select(sa.func.max(d.c.sent_at)).where(
                    d.c.campaign_id == cid, d.c.channel.in_(channels), d.c.state == SENT))
                if last_submit is not None:
                    if last_submit.tzinfo is None:
                        last_submit = last_submit.replace(tzinfo=dt.UTC)
                    waiting = waiting or last_submit > limit
            if waiting:
                continue
            if _mark_finished(s, cid, now):
                finished.append(cid)
                # The receipt deadline passed: what is still ``sent`` is final as sent
                # (a receipt that comes later is still applied).
                s.execute(sa.update(d).where(d.c.campaign_id == cid, d.c.state == SENT,
                                             d.c.final_at.is_(None))
                          .values(final_at=now))
    return finished


def renew_leases(engine: Engine, worker: str, lease_seconds: float,
                 ids: Iterable[int] | None = None) -> int:
    """Heartbeat: extend the lease of the rows ``worker`` holds in flight.

    ``ids``: only these (the rows the worker still has in hand: being sent, or whose
    outcome waits to be written); a row whose outcome the worker no longer holds is
    never renewed, so its lease expires and it is taken over. ``None``: all of them.
    """
    d = table(Delivery)
    # Rows locked right now are being recorded (they leave in_flight): skip, don't wait.
    held = (sa.select(d.c.id).where(d.c.worker == worker, d.c.state == IN_FLIGHT)
            .with_for_update(skip_locked=True))
    until = utcnow() + dt.timedelta(seconds=lease_seconds)
    if ids is None:
        with transaction(engine) as s:
            result = s.execute(sa.update(d).where(d.c.id.in_(held)).values(lease_until=until))
        return int(getattr(result, "rowcount", 0) or 0)
    wanted = sorted(set(ids))
    renewed = 0
    with transaction(engine) as s:
        for start in range(0, len(wanted), 1000):
            chunk = held.where(d.c.id.in_(wanted[start:start + 1000]))
            result = s.execute(sa.update(d).where(d.c.id.in_(chunk)).values(lease_until=until))
            renewed += int(getattr(result, "rowcount", 0) or 0)
    return renewed


def sweep_expired_leases(engine: Engine) -> int:
    """Re-queue in-flight rows whose lease expired (their worker died or hangs)."""
    d = table(Delivery)
    # A locked row is being recorded by its (live) worker right now: leave it to it.
    expired = (sa.select(d.c.id).where(d.c.state == IN_FLIGHT, d.c.lease_until < utcnow())
               .with_for_update(skip_locked=True))
    with transaction(engine) as s:
        result = s.execute(
            sa.update(d).where(d.c.id.in_(expired), d.c.state == IN_FLIGHT)
            # Its worker may have submitted it before dying: a possible duplicate.
            .values(state=QUEUED, worker=None, lease_until=None,
                    unconfirmed=d.c.unconfirmed + 1)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def release(engine: Engine, worker: str, channel: str | None = None,
            keep: Iterable[int] = ()) -> int:
    """Give back to the queue every row ``worker`` holds in flight (graceful stop).

    ``keep``: rows left in flight (their outcome could not be written: the provider
    may have accepted them; their lease expires and the next worker decides)."""
    d = table(Delivery)
    stmt = sa.update(d).where(d.c.worker == worker, d.c.state == IN_FLIGHT)
    kept = sorted(set(keep))
    if kept:
        stmt = stmt.where(d.c.id.not_in(kept))
    if channel:
        stmt = stmt.where(d.c.channel == channel)
    with transaction(engine) as s:
        result = s.execute(stmt.values(state=QUEUED, worker=None, lease_until=None))
    return int(getattr(result, "rowcount", 0) or 0)


# SPEC channel -> ContactPoint.kind
_CONTACT_KIND = {"email": "email", "sms": "mobile"}


def mark_contact_points_invalid(session: Session, channel: str, reasons: dict[str, str],
                                at: dt.datetime | None = None) -> list[int]:
    """Mark every contact point with one of these addresses invalid (a hard bounce, F8).

    ``reasons``: address -> why (``"SMTP 550: 5.1.1 mailbox unavailable"``), kept in
    ``invalid_reason`` (300 characters). Contact points already invalid keep their
    first reason. Fan-out skips invalid contact points from then on. One audit row
    per address names the contact points by id (never the address: the audit log
    is append-only and must not keep personal data past a GDPR deletion, F9).
    Returns the ids marked.
    """
    from tocsin.authorities.services import record_audit
    from tocsin.subscribers.models import ContactPoint

    kind = _CONTACT_KIND.get(channel)
    if kind is None or not reasons:
        return []
    cp = table(ContactPoint)
    at = at or utcnow()
    marked: list[int] = []
    for address, reason in reasons.items():
        ids = list(session.scalars(
            sa.select(cp.c.id).where(cp.c.kind == kind, cp.c.value == address,
                                     cp.c.invalid_at.is_(None)).order_by(cp.c.id)))
        if not ids:
            continue
        session.execute(sa.update(cp).where(cp.c.id.in_(ids))
                        .values(invalid_at=at, invalid_reason=reason[:300]))
        record_audit(session, "system", "contact_point.invalid",
                     detail={"contact_points": ids, "channel": channel, "reason": reason[:300]})
        marked += ids
    return marked


def apply_dsn(engine: Engine, dsn: Dsn) -> list[int]:
    """Apply an asynchronous bounce (a DSN, RFC 3464) to the deliveries it names.

    The bounced message is found by its ``Message-ID`` (Tocsin's names the
    campaign, see ``channels.email``), each recipient by its ``Final-Recipient``
    among that campaign's e-mail deliveries sent with that Message-ID. A
    permanent failure (``Action: failed``, status 5.x.x) moves a ``sent`` (or
    ``delivered``) delivery to ``failed`` with the reason ``bounce <status>:
    <diagnostic>``; an address-class status (RFC 3463 5.1.x, 5.2.1) also marks
    its contact points invalid. ``delayed`` and ``delivered`` reports change
    nothing; neither does a DSN for a message Tocsin did not send. Returns the
    ids of the deliveries failed.
    """
    from tocsin.channels.email import campaign_of_message_id, is_address_failure

    campaign_id = campaign_of_message_id(f"<{dsn.message_id}>") if dsn.message_id else None
    failures = [r for r in dsn.recipients if r.permanent_failure]
    if campaign_id is None or not failures:
        return []
    d = table(Delivery)
    now = utcnow()
    failed: list[int] = []
    with transaction(engine) as s:
        sent_with_id = sa.select(d.c.id, d.c.address).where(
            d.c.campaign_id == campaign_id, d.c.channel == "email",
            d.c.provider_message_id == dsn.message_id)
        for r in failures:
            address = _normalised_email(r.address)
            row = s.execute(sent_with_id.where(d.c.address == address)).first()
            if row is None:  # the reporting MTA may have changed the address's case
                row = next((x for x in s.execute(sent_with_id).all()
                            if x.address.lower() == address.lower()), None)
            if row is None:
                continue
            reason = f"bounce {r.status}: {r.diagnostic}" if r.diagnostic else f"bounce {r.status}"
            result = s.execute(
                sa.update(d).where(d.c.id == row.id, _state_in(SENT, DELIVERED))
                .values(state=FAILED, final_at=now, error=reason[:500]))
            if getattr(result, "rowcount", 0):
                failed.append(row.id)
            if is_address_failure(r.status):
                mark_contact_points_invalid(s, "email", {row.address: reason}, now)
    return failed


def _normalised_email(address: str) -> str:
    """The address as stored at registration (``subscribers.rules.normalise_email``)."""
    from tocsin.subscribers.rules import normalise_email

    address = address.strip().strip("<>")
    try:
        return normalise_email(address)
    except ValueError:
        return address
