"""Voice calls in the delivery queue: start permits, outcomes, provider callbacks (SPEC F22).

A voice delivery lives as every delivery does (``queued`` → ``in_flight`` → final),
with one difference: a call the provider accepted stays ``in_flight`` (ringing, in
progress) without a lease and without a worker until its final status callback
arrives, so that a worker that dies while calls ring loses nothing (the callbacks
go to the web server, or to the simulation's callback listener) and no sweeper
starts the call again. Then:

* ``completed`` → ``delivered`` (answered by a person, or ``voicemail`` when the
  provider's answering-machine detection says ``machine_…``), billed per started
  minute of ``CallDuration`` (SPEC F29);
* ``busy``, ``no-answer``, ``failed`` → ``queued`` again ``voice_retry_seconds``
  later while attempts remain (``1 + voice_retries``), else ``failed`` with that
  reason; ``canceled`` → ``failed`` (canceled), never retried; nor is any call of
  a campaign that is no longer ``sending``.

Rates (``take_start_permit``): at most ``voice_calls_per_minute`` starts received by
the provider in any sliding 60 s and at most ``voice_trunk`` calls not yet ended, per
route (provider account), decided by ``call_rules.decide_start`` under a lock on the
route's ``voice_route`` row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite ``BEGIN
IMMEDIATE``), so it holds across every worker sharing the database. A start counts
in the window from its permit (``voice_call.started_at``, status ``starting``) until
it is known to have reached the provider; then ``started_at`` is moved to that
instant (the provider's answer, or a callback about the call, arrived) and it counts
60 s + ``voice_rate_margin_seconds`` more (``call_rules`` proves why that holds the
provider's count whatever the request latency).

Synchronous database work; async callers run it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tocsin.channels.base import OutgoingMessage, SendOutcome
from tocsin.channels.voice import (
    FINAL_CALL_STATUSES,
    KEY_CONFIRM,
    KEY_REPEAT,
    call_twiml,
    call_urls,
    hangup_twiml,
    say_twiml,
    signature_valid,
    thanks_twiml,
)
from tocsin.core.db import is_postgres, read_transaction, table, transaction, utcnow
from tocsin.core.settings import Settings
from tocsin.dispatch.call_rules import MAX_WAIT_S, WINDOW_SECONDS, CallStart, decide_start
from tocsin.dispatch.models import DELIVERED, FAILED, IN_FLIGHT, QUEUED, Delivery
from tocsin.dispatch.voice_models import VoiceCall, VoiceCallEvent, VoiceRoute

if TYPE_CHECKING:
    from tocsin.channels.voice import VoiceSender

log = logging.getLogger(__name__)

#: Delivery ``error`` / report outcome of each failed final call status.
FAILED_REASONS = ("busy", "no-answer", "failed", "canceled")
RETRIED = frozenset({"busy", "no-answer", "failed"})
#: ``voice_call.status`` of a permit whose call was never placed (the provider refused the
#: request or did not answer, or the permit expired): not an attempt at the number.
NOT_STARTED = "not-started"


def route_of(environment: str) -> str:
    """The route (provider account) of an environment: ``live`` or ``simulation``."""
    return environment


# ----------------------------------------------------------------------------- permits


@dataclass(frozen=True)
class Permit:
    """``call_id`` when a call may start now, else ``None`` and ``wait_s`` (seconds)."""

    call_id: int | None
    wait_s: float = 0.0
    at: dt.datetime | None = None


def _lock_route(s: Session, route: str) -> VoiceRoute:
    if is_postgres(s.get_bind()):  # type: ignore[arg-type]
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        locked = sa.select(VoiceRoute).where(VoiceRoute.name == route).with_for_update()
        row = s.scalars(locked).one_or_none()
        if row is None:  # the route's first call: create its row once
            s.execute(pg_insert(table(VoiceRoute)).values(name=route)
                      .on_conflict_do_nothing(index_elements=["name"]))
            row = s.scalars(locked).one()
        return row
    # SQLite: the transaction began IMMEDIATE, so it already holds the write lock.
    row_or_none = s.get(VoiceRoute, route)
    if row_or_none is None:
        row_or_none = VoiceRoute(name=route)
        s.add(row_or_none)
        s.flush()
    return row_or_none


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _epoch(value: dt.datetime) -> float:
    return (_aware(value) or value).timestamp()


def _at(epoch_s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC)


def take_start_permit(engine: Engine, route: str, delivery_id: int, campaign_id: str, *,
                      per_minute: int, trunk: int, margin_s: float = 0.1,
                      stale_after_s: float = 900.0,
                      now: dt.datetime | None = None) -> Permit:
    """One more call on ``route`` if the rates allow it now, else how long to wait.

    Decided by ``call_rules.decide_start`` from the route's starts that may still
    count (settled ones started in the last ``60 + margin_s`` seconds, unsettled
    ones, status ``starting``, permitted in the last ``stale_after_s + 60 +
    margin_s``), its calls not yet ended (against ``trunk``; those started in the
    last ``stale_after_s`` seconds) and its last pacing slot. When allowed, writes
    the ``voice_call`` row (status ``starting``, ``started_at`` = now, ``attempt`` =
    earlier calls of the delivery + 1) and returns its id.
    """
    c = table(VoiceCall)
    # The delivery is this worker's (claimed): its earlier calls are counted before the
    # lock, which is held for as few statements as can be (every worker queues on it).
    with read_transaction(engine) as s:
        attempt = (s.scalar(sa.select(sa.func.count()).where(
            c.c.delivery_id == delivery_id, c.c.status != NOT_STARTED)) or 0) + 1
    with transaction(engine) as s:
        lock = _lock_route(s, route)
        now = now or utcnow()
        since = now - dt.timedelta(seconds=WINDOW_SECONDS + margin_s)
        unsettled_since = since - dt.timedelta(seconds=stale_after_s)
        active_q = sa.select(sa.func.count()).where(
            c.c.route == route, c.c.ended_at.is_(None),
            c.c.started_at > now - dt.timedelta(seconds=stale_after_s)).scalar_subquery()
        rows = s.execute(sa.select(c.c.started_at, c.c.status, active_q).where(
            c.c.route == route, c.c.started_at > unsettled_since,
            sa.or_(c.c.started_at > since, c.c.status == "starting"))).all()
        starts = [CallStart(_epoch(r[0]), r[1] != "starting") for r in rows]
        # (No start in the window: calls may still be talking; counted on their own.)
        active = int(rows[0][2]) if rows else int(s.scalar(sa.select(active_q)) or 0)
        last = _aware(lock.last_start_at)
        decision = decide_start(now.timestamp(), starts, per_minute=per_minute,
                                active=active, trunk=trunk,
                                last_slot=last.timestamp() if last else None,
                                margin_s=margin_s, hold_s=stale_after_s)
        if not decision.allowed or decision.slot is None:
            return Permit(None, max(0.001, decision.wait_s))
        call_id = s.execute(sa.insert(c).values(
            delivery_id=delivery_id, campaign_id=campaign_id, route=route, attempt=attempt,
            status="starting", started_at=now, duration_s=0, digits="", acknowledged=False,
        ).returning(c.c.id)).scalar_one()
        lock.last_start_at = _at(decision.slot)
        return Permit(int(call_id), 0.0, now)


def seconds_to_next_slot(engine: Engine, route: str, per_minute: int) -> float:
    """Seconds until the route's next pacing slot (0 when due), read without the write
    lock: waiting workers look here and take the lock only when a slot may be free."""
    with read_transaction(engine) as s:
        last = _aware(s.scalar(sa.select(VoiceRoute.last_start_at)
                               .where(VoiceRoute.name == route)))
    if last is None:
        return 0.0
    due = last + dt.timedelta(seconds=WINDOW_SECONDS / per_minute)
    return max(0.0, (due - utcnow()).total_seconds())


def _settle(s: Session, call: VoiceCall, now: dt.datetime) -> None:
    """A request from the provider about ``call`` arrived at ``now``: it had received the
    start by then (see ``call_rules``)."""
    if call.status == "starting":
        call.started_at = now


def call_started(engine: Engine, call_id: int, sid: str, at: float | None = None) -> None:
    """The provider accepted ``call_id`` as ``sid``; its answer arrived at ``at`` (UTC
    epoch seconds; default now), which settles the start (a callback may have come
    first and settled it already)."""
    c = table(VoiceCall)
    settled = _at(at) if at is not None else utcnow()
    with transaction(engine) as s:
        s.execute(sa.update(c).where(c.c.id == call_id, c.c.provider_call_sid.is_(None))
                  .values(provider_call_sid=sid))
        s.execute(sa.update(c).where(c.c.id == call_id, c.c.status == "starting")
                  .values(status="queued", started_at=settled))


def call_not_started(engine: Engine, call_id: int, error: str,
                     counted_from: float | None = None) -> None:
    """The provider refused ``call_id``, did not answer, or the request never left: the
    call is over. It still counts in the window, from ``counted_from`` (UTC epoch
    seconds, ``call_rules.settle_time``; default now): the provider may have seen it."""
    c = table(VoiceCall)
    settled = _at(counted_from) if counted_from is not None else utcnow()
    with transaction(engine) as s:
        s.execute(sa.update(c).where(c.c.id == call_id, c.c.status == "starting")
                  .values(started_at=settled))
        s.execute(sa.update(c).where(c.c.id == call_id, c.c.ended_at.is_(None))
                  .values(status=NOT_STARTED, ended_at=utcnow(), error=error[:300]))


class DbCallPermits:
    """``channels.voice.CallPermits`` held in the database for one route. One coroutine
    of a worker process asks for a permit at a time (the others of the process queue
    behind it), and it sleeps exactly until the next start may be due: the next pacing
    slot, or the instant enough starts leave the window."""

    def __init__(self, engine: Engine, route: str, settings: Settings) -> None:
        self.engine = engine
        self.route = route
        self.settings = settings
        self._lock = asyncio.Lock()
        #: Measures: permits given, seconds from asking to getting them (summed over the
        #: asking coroutines), and seconds spent in the database doing so.
        self.given = 0
        self.waited_s = 0.0
        self.db_s = 0.0

    async def acquire(self, message: OutgoingMessage,
                      cancelled: Callable[[], bool] = lambda: False) -> int | None:
        st = self.settings
        began = time.monotonic()
        async with self._lock:
            while not cancelled():
                try:
                    t0 = time.monotonic()
                    wait = await asyncio.to_thread(seconds_to_next_slot, self.engine,
                                                   self.route, st.voice_calls_per_minute)
                    self.db_s += time.monotonic() - t0
                    if wait > 0:
                        await asyncio.sleep(min(wait, MAX_WAIT_S))
                        continue
                    t0 = time.monotonic()
                    permit = await asyncio.to_thread(
                        take_start_permit, self.engine, self.route, message.delivery_id,
                        message.campaign_id, per_minute=st.voice_calls_per_minute,
                        trunk=st.voice_trunk, margin_s=st.voice_rate_margin_seconds,
                        stale_after_s=st.voice_call_max_seconds)
                    self.db_s += time.monotonic() - t0
                except Exception:  # noqa: BLE001 - a database hiccup: ask again
                    log.exception("taking a call start permit failed")
                    permit = Permit(None, 1.0)
                if permit.call_id is not None:
                    self.waited_s += time.monotonic() - began
                    self.given += 1
                    return permit.call_id
                await asyncio.sleep(min(permit.wait_s, 1.0))
        return None

    async def started(self, call_id: int, sid: str, at: float | None = None) -> None:
        await asyncio.to_thread(call_started, self.engine, call_id, sid, at)

    async def not_started(self, call_id: int, error: str,
                          counted_from: float | None = None) -> None:
        await asyncio.to_thread(call_not_started, self.engine, call_id, error, counted_from)


# ----------------------------------------------------------------------------- outcomes


def record_call_outcomes(engine: Engine, worker: str, outcomes: Sequence[SendOutcome],
                         attempts: dict[int, int] | None = None) -> None:
    """Write what the provider answered to call starts.

    ``sent`` (the call is accepted): the delivery stays ``in_flight`` but leaves the
    worker (no lease, no worker; ``provider_message_id`` the call SID), waiting for
    its status callbacks. A callback that came first already moved it on: it is left
    alone. ``failed`` and ``retry`` are recorded as for every channel
    (``queue.record_outcomes``).
    """
    from tocsin.dispatch import queue

    d = table(Delivery)
    now = utcnow()
    sent = [o for o in outcomes if o.result == "sent"]
    if sent:
        with transaction(engine) as s:
            s.execute(
                sa.update(d).where(d.c.id == sa.bindparam("did"), d.c.state == IN_FLIGHT,
                                   d.c.worker == worker)
                .values(lease_until=None, worker=None, provider_message_id=sa.bindparam("mid"),
                        sent_at=sa.func.coalesce(d.c.sent_at, now), error=None),
                [{"did": o.delivery_id, "mid": o.message_ids[0] if o.message_ids else None}
                 for o in sent],
                execution_options={"synchronize_session": False},
            )
    rest = [o for o in outcomes if o.result != "sent"]
    if rest:
        queue.record_outcomes(engine, "voice", rest, attempts)


# ----------------------------------------------------------------------------- callbacks


@dataclass(frozen=True)
class ProviderReply:
    """What to answer the provider: HTTP ``status``, ``body`` and its ``media_type``."""

    status: int
    body: str = ""
    media_type: str = "application/xml"


def _reject(engine: Engine, call_id: int, kind: str, reason: str, source: str | None) -> None:
    from tocsin.authorities.services import record_audit

    log.warning("voice %s request for call %s rejected: %s", kind, call_id, reason)
    with transaction(engine) as s:
        record_audit(s, "system", "voice.callback_rejected", target=str(call_id),
                     source=source, detail={"kind": kind, "reason": reason})


def _remember(engine: Engine, call_id: int, kind: str, status: str | None,
              signature: str) -> bool:
    """Keep the request's signature; False when it was seen before (a replay)."""
    try:
        with transaction(engine) as s:
            s.execute(sa.insert(table(VoiceCallEvent)).values(
                call_id=call_id, kind=kind, status=status, signature=signature[:100],
                received_at=utcnow()))
    except IntegrityError:
        return False
    return True


def provider_request(engine: Engine, settings: Settings, kind: str, call_id: int, url: str,
                     params: Mapping[str, str], signature: str, auth_token: str, *,
                     source: str | None = None) -> ProviderReply:
    """Handle one request of the voice provider about call ``call_id``.

    ``kind``: ``twiml`` (the call was answered: what to say), ``gather`` (a key was
    pressed; ``Digits``) or ``status`` (a status callback: ``CallStatus``,
    ``CallDuration``, ``AnsweredBy``, ``CallSid``). ``url``: the full URL the
    provider requested, as it signed it; ``signature``: its ``X-Twilio-Signature``,
    checked with ``auth_token``. A wrong signature (403) or a request already seen
    (a replay, 409) is refused and audited (``voice.callback_rejected``); a request
    for an unknown call is ignored with a log line (200, empty TwiML).
    """
    if not signature_valid(auth_token, url, params, signature):
        _reject(engine, call_id, kind, "bad signature", source)
        return ProviderReply(403, "bad signature", "text/plain")
    status = params.get("CallStatus") or (f"digits:{params.get('Digits', '')}"
                                          if kind == "gather" else None)
    with read_transaction(engine) as s:  # no write lock: the provider's requests are many
        known = s.get(VoiceCall, call_id) is not None
    if not known:
        log.warning("voice %s request for unknown call %s ignored (CallSid %s)", kind,
                    call_id, params.get("CallSid", "?"))
        return ProviderReply(200, hangup_twiml())
    if not _remember(engine, call_id, kind, status, signature):
        _reject(engine, call_id, kind, "replayed request", source)
        return ProviderReply(409, "replayed request", "text/plain")
    if kind == "status":
        apply_call_status(engine, settings, call_id, params)
        return ProviderReply(204, "", "text/plain")
    if kind == "twiml":
        return ProviderReply(200, _twiml(engine, call_id, params, url))
    if kind == "gather":
        return ProviderReply(200, _gather(engine, call_id, params, url))
    return ProviderReply(404, "unknown request", "text/plain")


def _script(s: Session, call: VoiceCall) -> tuple[str, str, str]:
    """(language, script, audio URL) of a call: the delivery's language if the campaign
    has a text in it, else its first text's; the content's ``voice`` field, else the
    base text."""
    from tocsin.campaigns.models import Campaign

    delivery = s.get(Delivery, call.delivery_id)
    campaign = s.get(Campaign, call.campaign_id)
    if delivery is None or campaign is None:
        return "en", "", ""
    texts = dict(campaign.texts or {})
    lang = delivery.language if delivery.language in texts else next(iter(texts), "en")
    fields = (campaign.content or {}).get(lang) or {}
    return lang, fields.get("voice") or texts.get(lang, ""), fields.get("voice_audio_url", "")


def _callback_base(url: str, call_id: int) -> str:
    """The base of Tocsin's voice URLs, from the URL the provider requested."""
    return url.split(f"/voice/calls/{call_id}/", 1)[0]


def _twiml(engine: Engine, call_id: int, params: Mapping[str, str], url: str,
           round_: int = 1) -> str:
    with transaction(engine) as s:
        call = s.get(VoiceCall, call_id)
        assert call is not None
        if call.ended_at is not None:
            return hangup_twiml()
        answered_by = params.get("AnsweredBy") or call.answered_by
        machine = bool(answered_by and answered_by.startswith("machine"))
        _settle(s, call, utcnow())
        call.status = "in-progress"
        call.answered_by = answered_by
        call.answered_at = call.answered_at or utcnow()
        if params.get("CallSid") and not call.provider_call_sid:
            call.provider_call_sid = params["CallSid"]
        lang, script, audio = _script(s, call)
    gather = call_urls(_callback_base(url, call_id), call_id)["gather"]
    return call_twiml(script, lang, f"{gather}?round={round_}", audio_url=audio,
                      machine=machine)


def _gather(engine: Engine, call_id: int, params: Mapping[str, str], url: str) -> str:
    digits = (params.get("Digits") or "")[:8]
    with transaction(engine) as s:
        call = s.get(VoiceCall, call_id)
        assert call is not None
        call.digits = (call.digits + digits)[-32:]
        if KEY_CONFIRM in digits:
            call.acknowledged = True
        lang, _, _ = _script(s, call)
        round_ = call.digits.count(KEY_REPEAT) + 1
        from tocsin.campaigns.answer_service import voice_answer

        # A group message that collects answers: the key is the answer (issue 10).
        answered = voice_answer(s, call.campaign_id, call.delivery_id, digits)
    if answered is not None:
        return say_twiml(answered[1], answered[0])
    if digits == KEY_CONFIRM:
        return thanks_twiml(lang)
    if digits == KEY_REPEAT and round_ <= 5:
        return _twiml(engine, call_id, params, url, round_)
    return hangup_twiml()


def _retry_seconds(settings: Settings, environment: str) -> float:
    scale = settings.voice_simulator_time_scale if environment == "simulation" else 1.0
    return settings.voice_retry_seconds * scale


def apply_call_status(engine: Engine, settings: Settings, call_id: int,
                      params: Mapping[str, str]) -> str | None:
    """Apply one status callback; returns the delivery state it set, or None.

    Non-final statuses (``initiated``, ``ringing``, ``in-progress``) only update the
    call; a final one after the call already ended (a duplicate, or out of order) is
    ignored. See the module docstring for what a final status does to the delivery.
    """
    from tocsin.campaigns.models import Campaign
    from tocsin.dispatch.queue import finish_done

    status = (params.get("CallStatus") or "").strip()
    now = utcnow()
    d = table(Delivery)
    with transaction(engine) as s:
        # Locked: two final statuses of one call (a callback and the stale-call sweep)
        # must not both apply.
        call = s.scalars(sa.select(VoiceCall).where(VoiceCall.id == call_id)
                         .with_for_update()).one_or_none()
        if call is None:
            return None
        _settle(s, call, now)
        if params.get("CallSid") and not call.provider_call_sid:
            call.provider_call_sid = params["CallSid"]
        if params.get("AnsweredBy"):
            call.answered_by = params["AnsweredBy"][:32]
        if call.ended_at is not None:
            return None
        if status not in FINAL_CALL_STATUSES:
            if status in ("queued", "initiated", "ringing", "in-progress", "answered"):
                call.status = "in-progress" if status == "answered" else status
                if status in ("in-progress", "answered"):
                    call.answered_at = call.answered_at or now
            return None
        call.status = status
        call.ended_at = now
        with contextlib.suppress(ValueError):
            call.duration_s = max(0, int(params.get("CallDuration") or 0))
        if params.get("ErrorCode"):
            call.error = f"provider error {params['ErrorCode']}"[:300]
        delivery = s.get(Delivery, call.delivery_id)
        campaign = s.get(Campaign, call.campaign_id)
        latest = s.scalar(sa.select(sa.func.max(VoiceCall.id))
                          .where(VoiceCall.delivery_id == call.delivery_id,
                                 VoiceCall.status != NOT_STARTED))
        # Only the delivery's latest attempt decides it. ``queued``: the lease expired
        # after the provider took the call (its worker died); the outcome still counts,
        # so the number is not called twice.
        if delivery is None or latest != call.id or delivery.state not in (IN_FLIGHT,
                                                                           QUEUED):
            return None
        if status == "completed":
            price = Decimal(settings.voice_minute_price_eur)
            minutes = math.ceil(call.duration_s / 60) if call.duration_s > 0 else 0
            s.execute(sa.update(d).where(d.c.id == delivery.id).values(
                state=DELIVERED, final_at=now, lease_until=None, worker=None, error=None,
                cost_eur=price * minutes, segments=min(minutes, 32_000),
                sent_at=sa.func.coalesce(d.c.sent_at, call.started_at)))
            new_state = DELIVERED
        else:
            attempts_left = call.attempt < 1 + settings.voice_retries
            sending = campaign is not None and campaign.status == "sending"
            if status in RETRIED and attempts_left and sending:
                s.execute(sa.update(d).where(d.c.id == delivery.id).values(
                    state=QUEUED, lease_until=None, worker=None, error=status,
                    not_before=now + dt.timedelta(
                        seconds=_retry_seconds(settings, delivery.environment))))
                new_state = QUEUED
            else:
                s.execute(sa.update(d).where(d.c.id == delivery.id).values(
                    state=FAILED, final_at=now, lease_until=None, worker=None, error=status,
                    sent_at=sa.func.coalesce(d.c.sent_at, call.started_at)))
                new_state = FAILED
        if new_state != QUEUED:
            finish_done(s, [call.campaign_id], now)
        return new_state


# ----------------------------------------------------------------------------- upkeep


def calls_to_hang_up(engine: Engine, route: str) -> list[tuple[int, str]]:
    """Calls of ``route`` still ringing or in progress whose campaign is no longer
    sending (cancelled, stopped): ``[(call_id, sid)]``, each returned once (marked
    ``hangup_requested_at``)."""
    from tocsin.campaigns.models import Campaign

    c = table(VoiceCall)
    query = (sa.select(c.c.id, c.c.provider_call_sid)
             .join(Campaign, Campaign.id == c.c.campaign_id)
             .where(c.c.route == route, c.c.ended_at.is_(None),
                    c.c.provider_call_sid.is_not(None), c.c.hangup_requested_at.is_(None),
                    Campaign.status.in_(("cancelled", "stopped")))
             .limit(500))
    # Looked at without the write lock first (every worker asks every second).
    with read_transaction(engine) as s:
        if not s.execute(query).first():
            return []
    with transaction(engine) as s:
        rows = s.execute(query).all()
        if rows:
            s.execute(sa.update(c).where(c.c.id.in_([r[0] for r in rows]))
                      .values(hangup_requested_at=utcnow()))
    return [(int(r[0]), str(r[1])) for r in rows]


def expire_stale_calls(engine: Engine, settings: Settings, route: str) -> int:
    """End calls with no final status ``voice_call_max_seconds`` after they started (the
    provider lost them, or their callbacks cannot reach Tocsin): each counts as
    ``failed`` (retried like one). Returns how many."""
    c = table(VoiceCall)
    cutoff = utcnow() - dt.timedelta(seconds=settings.voice_call_max_seconds)
    with read_transaction(engine) as s:  # without the write lock: usually none
        ids = list(s.scalars(sa.select(c.c.id).where(
            c.c.route == route, c.c.ended_at.is_(None), c.c.started_at < cutoff).limit(500)))
    for call_id in ids:
        with transaction(engine) as s:
            s.execute(sa.update(c).where(c.c.id == call_id)
                      .values(error="no final status from the provider"))
        apply_call_status(engine, settings, call_id, {"CallStatus": "failed"})
    return len(ids)


async def voice_upkeep(sender: VoiceSender, engine: Engine, settings: Settings, route: str,
                       stop: asyncio.Event, interval: float = 1.0) -> None:
    """Until ``stop``: hang up calls of campaigns no longer sending, give up stale calls."""
    while not stop.is_set():
        try:
            for call_id, sid in await asyncio.to_thread(calls_to_hang_up, engine, route):
                ok = await sender.hangup(sid)
                log.info("hang-up of call %s (%s): %s", call_id, sid, "sent" if ok else "failed")
            await asyncio.to_thread(expire_stale_calls, engine, settings, route)
        except Exception:  # noqa: BLE001 - retried on the next tick
            log.exception("voice upkeep failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


# ----------------------------------------------------------------------------- report


def voice_report(session: Session, campaign_id: str) -> dict[str, Any]:
    """Voice facts of one campaign for its report: ``{"outcomes": {answered, voicemail,
    busy, no-answer, failed, canceled: n} (each delivery's last call), "calls" (every
    call placed), "attempts_by_delivery": {attempts: deliveries}, "acknowledged"
    (deliveries whose recipient pressed 1), "answered_seconds", "billed_minutes"}``."""
    c = table(VoiceCall)
    rows = session.execute(
        sa.select(c.c.delivery_id, c.c.attempt, c.c.status, c.c.answered_by, c.c.duration_s,
                  c.c.acknowledged)
        .where(c.c.campaign_id == campaign_id, c.c.status != NOT_STARTED)
        .order_by(c.c.delivery_id, c.c.attempt)).all()
    last: dict[int, Any] = {}
    attempts: dict[int, int] = {}
    acknowledged: set[int] = set()
    seconds = minutes = 0
    for r in rows:
        last[r.delivery_id] = r
        attempts[r.delivery_id] = max(attempts.get(r.delivery_id, 0), r.attempt)
        if r.acknowledged:
            acknowledged.add(r.delivery_id)
        if r.status == "completed" and r.duration_s > 0:
            seconds += r.duration_s
            minutes += math.ceil(r.duration_s / 60)
    outcomes = dict.fromkeys(("answered", "voicemail", *FAILED_REASONS), 0)
    for r in last.values():
        if r.status == "completed":
            machine = bool(r.answered_by and r.answered_by.startswith("machine"))
            outcomes["voicemail" if machine else "answered"] += 1
        elif r.status in outcomes:
            outcomes[r.status] += 1
    by_attempts: dict[str, int] = {}
    for n in attempts.values():
        by_attempts[str(n)] = by_attempts.get(str(n), 0) + 1
    return {"outcomes": outcomes, "calls": len(rows), "attempts_by_delivery": by_attempts,
            "acknowledged": len(acknowledged), "answered_seconds": seconds,
            "billed_minutes": minutes}
