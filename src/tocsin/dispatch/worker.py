"""The dispatch worker: claims deliveries, sends them through channel senders, records outcomes.

One worker runs one loop per (channel, environment) it can serve, so an
unreachable SMSC never holds back the e-mail of the same alert. Simulation
deliveries go only to the built-in simulators, by construction: the senders of
the ``simulation`` environment are built from the simulators and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from tocsin.campaigns import rules
from tocsin.channels.base import ChannelSender, OutgoingMessage, ReceiptEvent, SendOutcome
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch import queue

log = logging.getLogger(__name__)

SenderFactory = Callable[["ReceiptBuffer"], ChannelSender]

#: How often a channel without a provider session looks for work to open one.
IDLE_CHECK_SECONDS = 0.25
#: Longest wait of an idle send loop between two claims: a launched alert's first batch
#: is picked up within this (issue 13: launch to first submit_sm <= 1 s at p95). A claim
#: that finds nothing is one index probe per queued campaign.
IDLE_CLAIM_MAX_SECONDS = 0.1
#: How often the periodic loop looks for campaigns to finish (``queue.finish_campaigns``).
FINISH_CHECK_SECONDS = 2.0
#: Longest wait between two attempts to open a provider session: an alert must go
#: out within seconds of the provider coming back (issue 13).
RECONNECT_MAX_SECONDS = 2.0
#: Longest wait between two attempts to write outcomes while the database is away.
RECORD_RETRY_MAX_SECONDS = 5.0
#: On stop, how long outcomes not yet written are still tried before giving up.
DRAIN_SECONDS = 15.0
#: How often a worker looks for due scheduled campaigns and abandoned fan-outs.
FANOUT_CHECK_SECONDS = 0.5
#: Delay before a worker's first retention run and yearly reminders (then every
#: ``settings.privacy_check_seconds``): a worker restarted often still runs them.
PRIVACY_FIRST_SECONDS = 60.0


def worker_name() -> str:
    """A name unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


class ReceiptBuffer:
    """Collects receipts and stores them in batches; ``add`` returns once stored.

    The SMPP client acknowledges a deliver_sm only after ``add`` returns, so a
    receipt the SMSC considers delivered to us is in the database.
    """

    def __init__(self, engine: Engine, interval: float = 0.1) -> None:
        self.engine = engine
        self.interval = interval
        self._pending: list[tuple[ReceiptEvent, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()

    async def add(self, receipt: ReceiptEvent) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((receipt, fut))
        self._wake.set()
        await fut

    async def run(self, stop: asyncio.Event) -> None:
        while not (stop.is_set() and not self._pending):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.5)
            self._wake.clear()
            await asyncio.sleep(self.interval)
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await asyncio.to_thread(queue.store_receipts, self.engine, [r for r, _ in batch])
            except Exception as exc:  # noqa: BLE001 - the SMSC will redeliver unacked receipts
                log.exception("storing %d receipts failed", len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)


@dataclass(frozen=True)
class EmailContent:
    """One language's e-mail: ``subject``, plain ``text`` and optional ``html`` alternative."""

    subject: str
    text: str
    html: str = ""


@dataclass
class CampaignContent:
    """What a worker needs of a campaign to render its messages (cached per campaign).

    ``texts``: language -> base text, in the campaign's order (the first is the
    fallback for a delivery in a language without text); ``sms``: language -> SMS
    text; ``voice``: language -> voice script, ``voice_caller`` the calls' caller
    number; ``email``: language -> ``EmailContent``; ``email_mode``: ``batch`` or
    ``per_recipient`` (``campaigns.rules.email_mode``); ``sms_source`` and
    ``mail_from``: the sender identity fixed at launch (SPEC F20).
    """

    texts: dict[str, str]
    sms_source: str
    mail_from: str
    sms: dict[str, str] = field(default_factory=dict)
    email: dict[str, EmailContent] = field(default_factory=dict)
    email_mode: str = "batch"
    #: When the campaign's messages stop being worth delivering (CAP ``expires``).
    valid_until: datetime | None = None
    voice: dict[str, str] = field(default_factory=dict)
    voice_caller: str = ""
    #: The answer options of a group message that collects answers (issue 10), else [].
    answer_options: list[str] = field(default_factory=list)


@dataclass
class ChannelStatus:
    """Live state of one (channel, environment) loop, for progress displays."""

    connected: bool = False
    error: str = ""
    sent: int = 0
    since: float = field(default_factory=time.monotonic)


class Worker:
    """Sends queued deliveries. ``senders`` maps (channel, environment) to a sender factory.

    ``campaign_id`` restricts the worker to one campaign (the CLI's own run);
    ``None`` serves every campaign (``tocsin worker``, the demo server). Each of the
    ``loops_per_channel`` send loops claims ``settings.batch_size`` deliveries, then
    sends and records them ``settings.commit_batch`` at a time, so a SIGKILL leaves at
    most ``loops_per_channel × commit_batch`` SMS accepted or on the wire without a
    recorded outcome: within binds × window + one commit batch whenever binds × window
    ≥ (loops_per_channel − 1) × commit_batch (true of the URL defaults, 2 × 100 ≥ 100).
    """

    def __init__(
        self, engine: Engine, senders: dict[tuple[str, str], SenderFactory], *,
        campaign_id: str | None = None, settings: Settings | None = None,
        loops_per_channel: int = 2, name: str | None = None,
        reminder_sender: Any = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self.factories = senders
        self.campaign_id = campaign_id
        self.loops_per_channel = loops_per_channel
        #: Outcomes written per transaction (``settings.commit_batch``).
        self.commit_batch = self.settings.commit_batch
        self.name = name or worker_name()
        self.status: dict[tuple[str, str], ChannelStatus] = {k: ChannelStatus() for k in senders}
        self.stop_event = asyncio.Event()
        self._content: dict[str, CampaignContent] = {}
        self._unsubscribe_secret = ""
        self.receipts = ReceiptBuffer(engine)
        #: Deliveries this worker has in hand: claimed and not yet recorded (being sent,
        #: or their outcome waits for the database). Only their leases are renewed.
        self.held: set[int] = set()
        #: Outcomes that could not be written before the worker stopped (their rows
        #: are left in flight for the lease to expire, never released as unsent).
        self.unwritten: set[int] = set()
        self._stopped_at: float | None = None
        #: Sends the yearly reminder e-mails (``ChannelCodeSender``); None: not sent here.
        self.reminder_sender = reminder_sender

    async def run(self) -> None:
        """Run until ``stop()``; then release what is still held and close senders."""
        senders = {key: factory(self.receipts) for key, factory in self.factories.items()}
        tasks = [asyncio.create_task(self.receipts.run(self.stop_event), name="receipts"),
                 asyncio.create_task(self._housekeeping(), name="housekeeping")]
        if self.campaign_id is None:
            tasks.append(asyncio.create_task(self._fan_out_loop(), name="fan-out"))
            tasks.append(asyncio.create_task(self._privacy_loop(), name="privacy"))
        for key, sender in senders.items():
            tasks.append(asyncio.create_task(self._connect_loop(key, sender)))
            for _ in range(self.loops_per_channel):
                tasks.append(asyncio.create_task(self._send_loop(key, sender)))
            if key[0] == "voice":  # hang-ups on cancel, calls the provider lost
                from tocsin.dispatch.calls import route_of, voice_upkeep

                tasks.append(asyncio.create_task(voice_upkeep(
                    sender, self.engine, self.settings, route_of(key[1]),  # type: ignore[arg-type]
                    self.stop_event)))
        try:
            await self.stop_event.wait()
        finally:
            self.stop_event.set()
            self._stopped_at = time.monotonic()
            for sender in senders.values():
                with contextlib.suppress(Exception):
                    await sender.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(queue.release, self.engine, self.name, None,
                                        self.unwritten)

    def stop(self) -> None:
        self.stop_event.set()

    async def _connect_loop(self, key: tuple[str, str], sender: ChannelSender) -> None:
        """Keep ``sender`` connected while there is work for it.

        A provider session (SMPP bind, SMTP connection) is opened only once a
        delivery of this channel and environment (and of ``campaign_id``, if set)
        is queued: a campaign with nothing to send by SMS opens no bind.
        """
        status, delay = self.status[key], 0.5
        while not self.stop_event.is_set():
            if not getattr(sender, "connected", status.connected):
                status.connected = False
                try:
                    wanted = await asyncio.to_thread(queue.has_queued, self.engine, *key,
                                                     self.campaign_id)
                except Exception:  # noqa: BLE001 - a database hiccup: look again later
                    log.exception("checking the queue of %s/%s failed", *key)
                    wanted = False
                if not wanted:
                    await self._sleep(IDLE_CHECK_SECONDS)
                    continue
                try:
                    await sender.start()
                    status.connected, status.error, delay = True, "", 0.5
                    log.info("%s/%s connected via %s", *key, sender.name)
                except Exception as exc:  # noqa: BLE001 - an outage is retried, never fatal
                    status.connected, status.error = False, str(exc)
                    log.warning("%s/%s: %s (retrying in %.1f s)", *key, exc, delay)
                    await self._sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                    continue
            status.connected = True
            await self._sleep(1.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)

    async def _send_loop(self, key: tuple[str, str], sender: ChannelSender) -> None:
        channel, environment = key
        status = self.status[key]
        idle = 0.05
        while not self.stop_event.is_set():
            if not status.connected:
                await self._sleep(0.2)
                continue
            try:
                batch = await asyncio.to_thread(
                    queue.claim, self.engine, self.name, channel, environment,
                    self.settings.voice_batch_size if channel == "voice"
                    else self.settings.batch_size, self.settings.lease_seconds,
                    self.campaign_id,
                )
            except Exception:  # noqa: BLE001 - a database hiccup must not kill the loop
                log.exception("claim failed")
                await self._sleep(1.0)
                continue
            if not batch:
                await self._sleep(idle)
                idle = min(idle * 2, IDLE_CLAIM_MAX_SECONDS)
                continue
            idle = 0.05
            self.held.update(c.id for c in batch)
            # Sent and recorded one commit batch at a time: what a SIGKILL can leave
            # accepted but unrecorded (sent again by the next worker) is at most one
            # commit batch per send loop, the messages on the wire included (issue 13).
            step = self.commit_batch if channel in ("sms", "email") else len(batch)
            for start in range(0, len(batch), step):
                chunk = batch[start:start + step]
                try:
                    messages = [await self._message(c) for c in chunk]
                    outcomes = await sender.send(messages)
                except Exception as exc:  # noqa: BLE001 - the chunk is retried, the loop goes on
                    log.exception("%s/%s: sending a batch of %d failed", channel, environment,
                                  len(chunk))
                    outcomes = [SendOutcome(c.id, "retry", error=str(exc)[:500]) for c in chunk]
                status.sent += sum(1 for o in outcomes if o.result == "sent")
                await self._record(channel, outcomes, {c.id: c.attempts for c in chunk})

    async def _record(self, channel: str, outcomes: list[SendOutcome],
                      attempts: dict[int, int]) -> None:
        """Write outcomes, retrying until the database takes them.

        Losing this write would re-send messages the provider accepted, so it is
        never given up while the worker runs: the send loop waits here (claiming
        nothing more, which bounds what is held in memory to one batch per loop),
        the heartbeat keeps these rows' leases while it can. After ``stop()`` it is
        tried for ``DRAIN_SECONDS`` more; what is still unwritten is left in flight
        (``unwritten``), never released to the queue as unsent.
        """
        ids = {o.delivery_id for o in outcomes}
        delay = 0.1
        while True:
            try:
                if channel == "voice":  # an accepted call waits for its status callbacks
                    from tocsin.dispatch.calls import record_call_outcomes

                    await asyncio.to_thread(record_call_outcomes, self.engine, self.name,
                                            outcomes, attempts)
                else:
                    await asyncio.to_thread(queue.record_outcomes, self.engine, channel,
                                            outcomes, attempts)
                self.held.difference_update(ids)
                return
            except Exception:  # noqa: BLE001 - the database is away: keep them, retry
                log.exception("recording %d outcomes failed; keeping them, retrying in %.1f s",
                              len(outcomes), delay)
            if (self._stopped_at is not None
                    and time.monotonic() - self._stopped_at > DRAIN_SECONDS):
                log.error("worker stopping: %d outcomes could not be written; their rows "
                          "stay in flight until their lease expires", len(outcomes))
                self.unwritten.update(ids)
                self.held.difference_update(ids)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_MAX_SECONDS)

    async def _message(self, c: queue.ClaimedDelivery) -> OutgoingMessage:
        """The message of one claimed delivery, in its language (else the first text's).

        Information e-mails (``email_mode`` per_recipient) get the recipient's signed
        one-click unsubscribe link (``subscribers.optout``, RFC 8058).
        """
        content = self._content.get(c.campaign_id)
        if content is None:
            content = await asyncio.to_thread(load_content, self.engine, c.campaign_id)
            self._content[c.campaign_id] = content
        lang = c.language if c.language in content.texts else next(iter(content.texts))
        if c.channel == "sms":
            return OutgoingMessage(c.id, c.campaign_id, c.address, c.language,
                                   content.sms.get(lang) or content.texts[lang],
                                   source=content.sms_source,
                                   valid_until=content.valid_until)
        if c.channel == "email":
            mail = content.email[lang]
            unsubscribe = ""
            if content.email_mode == "per_recipient":
                from tocsin.subscribers.optout import unsubscribe_secret, unsubscribe_url

                if not self._unsubscribe_secret:
                    self._unsubscribe_secret = await asyncio.to_thread(
                        unsubscribe_secret, self.settings)
                unsubscribe = unsubscribe_url(self.settings.public_url(),
                                              self._unsubscribe_secret, c.address, lang)
            text = mail.text
            if content.answer_options:
                from tocsin.campaigns.answer_service import email_footer
                from tocsin.subscribers.optout import unsubscribe_secret

                if not self._unsubscribe_secret:
                    self._unsubscribe_secret = await asyncio.to_thread(
                        unsubscribe_secret, self.settings)
                text += email_footer(self.settings.public_url(), self._unsubscribe_secret,
                                     c.campaign_id, c.address, lang, content.answer_options)
            return OutgoingMessage(c.id, c.campaign_id, c.address, c.language, text,
                                   subject=mail.subject, source=content.mail_from,
                                   html=mail.html, unsubscribe_url=unsubscribe)
        if c.channel == "voice":
            return OutgoingMessage(c.id, c.campaign_id, c.address, lang,
                                   content.voice.get(lang) or content.texts[lang],
                                   source=content.voice_caller or self.settings.voice_caller)
        return OutgoingMessage(c.id, c.campaign_id, c.address, c.language, content.texts[lang])

    async def _housekeeping(self) -> None:
        last_sweep = last_finish = 0.0
        while not self.stop_event.is_set():
            try:
                # First, so that after a database outage this worker's rows (whose
                # outcomes wait to be written) are renewed before any sweep sees them.
                await asyncio.to_thread(queue.renew_leases, self.engine, self.name,
                                        self.settings.lease_seconds, set(self.held))
                await asyncio.to_thread(queue.apply_receipts, self.engine)
                if time.monotonic() - last_finish > FINISH_CHECK_SECONDS:
                    # Campaigns whose SMS receipts are given up (the grace period ended).
                    await asyncio.to_thread(queue.finish_campaigns, self.engine,
                                            self.campaign_id)
                    # Rows a retry or an expired lease put back after a stop (issue 13).
                    from tocsin.campaigns.control import stop_leftovers

                    await asyncio.to_thread(stop_leftovers, self.engine)
                    # Quota calls: ask, escalate, time out, thank (issue 10).
                    from tocsin.campaigns import answer_service

                    await asyncio.to_thread(answer_service.run_quotas, self.engine)
                    await asyncio.to_thread(answer_service.close_calls, self.engine)
                    last_finish = time.monotonic()
                if time.monotonic() - last_sweep > self.settings.lease_seconds / 3:
                    await asyncio.to_thread(queue.sweep_expired_leases, self.engine)
                    last_sweep = time.monotonic()
            except Exception:  # noqa: BLE001 - retried on the next tick
                log.exception("housekeeping failed")
            await self._sleep(0.3)

    async def _fan_out_loop(self) -> None:
        """Fan-outs, apart from housekeeping so that a long one never holds up leases:
        scheduled campaigns that are due (F19; a claim makes it safe with several
        workers) and fan-outs whose process died (``fanout.resume_pending``)."""
        from tocsin.dispatch import fanout
        from tocsin.dispatch.scheduler import run_due

        while not self.stop_event.is_set():
            try:
                await asyncio.to_thread(run_due, self.engine, self.settings)
                await asyncio.to_thread(fanout.resume_pending, self.engine, self.name,
                                        self.settings)
            except Exception:  # noqa: BLE001 - retried on the next tick
                log.exception("fan-out failed")
            await self._sleep(FANOUT_CHECK_SECONDS)


    async def _privacy_loop(self) -> None:
        """Retention (``dispatch.retention``) and the yearly reminders
        (``subscribers.reminders``), every ``settings.privacy_check_seconds``; both are
        safe with several workers (leases, claims)."""
        from tocsin.dispatch.retention import run_retention
        from tocsin.subscribers.reminders import portal_address, send_reminders

        await self._sleep(min(PRIVACY_FIRST_SECONDS, self.settings.privacy_check_seconds))
        while not self.stop_event.is_set():
            try:
                await asyncio.to_thread(run_retention, self.engine, self.settings,
                                        owner=self.name, actor="worker", audit_empty=False)
                if self.reminder_sender is not None:
                    await asyncio.to_thread(
                        send_reminders, self.engine, self.reminder_sender,
                        portal=portal_address(self.settings.public_url()),
                        limit=self.settings.reminder_max_per_run, actor="worker")
            except Exception:  # noqa: BLE001 - retried on the next tick
                log.exception("retention / reminders failed")
            await self._sleep(self.settings.privacy_check_seconds)


def campaign_content(kind: str, texts: dict[str, str], content: dict[str, dict[str, str]],
                     area_name: str, sms_source: str, mail_from: str,
                     action: str = "alert", voice_caller: str = "") -> CampaignContent:
    """Render a campaign's per-language, per-channel content (SPEC F13).

    ``content[lang]`` fields ``sms``, ``email_subject``, ``email_text``,
    ``email_html`` (``messages.content.CONTENT_FIELDS``, filled at launch) are used
    when present; each missing or empty field falls back to the base text
    ``texts[lang]`` (SMS, e-mail body) or the kind's subject
    (``rules.email_subject(kind, area_name, lang, action)``), so campaigns written
    before per-channel content (``content == {}``) send as they always did. An
    e-mail has an HTML alternative only when ``email_html`` is given.
    """
    sms: dict[str, str] = {}
    voice: dict[str, str] = {}
    email: dict[str, EmailContent] = {}
    for lang, base in texts.items():
        fields = content.get(lang) or {}
        sms[lang] = fields.get("sms") or base
        voice[lang] = fields.get("voice") or base
        email[lang] = EmailContent(
            subject=fields.get("email_subject") or rules.email_subject(kind, area_name, lang,
                                                                       action),
            text=fields.get("email_text") or base,
            html=fields.get("email_html") or "",
        )
    return CampaignContent(dict(texts), sms_source, mail_from, sms=sms, email=email,
                           email_mode=rules.email_mode(kind), voice=voice,
                           voice_caller=voice_caller)


def load_content(engine: Engine, campaign_id: str) -> CampaignContent:
    """The rendered content and sender identity of a campaign (``campaign_content``).

    Raises ``LookupError`` when the campaign does not exist.
    """
    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import transaction

    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            raise LookupError(f"campaign {campaign_id} not found")
        # CAP 1.2 §3.2.1: an all-clear is an Update with responseType AllClear.
        action = ("all_clear" if c.response_type == "AllClear"
                  else {"Update": "update", "Cancel": "cancel"}.get(c.msg_type, "alert"))
        content = campaign_content(c.kind, dict(c.texts), dict(c.content or {}),
                                   c.area_name, c.sms_source, c.mail_from, action,
                                   c.voice_caller or "")
        content.valid_until = c.expires_at
        from tocsin.campaigns.answer_models import AnswerCall

        call = s.get(AnswerCall, campaign_id)
        content.answer_options = list(call.options) if call is not None else []
        return content


# ----------------------------------------------------------------------------- wiring


@dataclass
class Simulators:
    """The built-in providers of the simulation environment: an SMSC and an SMTP server,
    and (given a database) a voice gateway with Tocsin's callback listener for it."""

    smsc_host: str
    smsc_port: int
    smtp_host: str
    smtp_port: int
    smsc: object = None
    smtp: object = None
    voice: object = None
    voice_listener: object = None
    location: object = None  # dispatch.location_wiring.LocationSimulators


async def start_simulators(receipt_delay: float = 0.2, engine: Engine | None = None,
                           settings: Settings | None = None) -> Simulators:
    """Start an SMSC simulator (SMPP) and an SMTP sink on free loopback ports; with
    ``engine``, also the voice gateway simulator (``channels.simulators.voice_gateway``)
    and the loopback listener its TwiML requests and callbacks come back to, and the
    location-based simulators (an LB-SMS operator per synthetic operator, a CBC) with
    the listener of their callbacks (``dispatch.location_wiring``)."""
    from tocsin.channels.simulators.smsc import SmscSimulator
    from tocsin.channels.simulators.smtp_sink import SmtpSink

    smsc = SmscSimulator(host="127.0.0.1", port=0, receipt_delay=receipt_delay)
    await smsc.start()
    smtp = SmtpSink(keep=False)
    await asyncio.to_thread(smtp.start)
    sims = Simulators("127.0.0.1", smsc.port, "127.0.0.1", smtp.port, smsc, smtp)
    if engine is not None:
        from tocsin.dispatch.voice_wiring import start_voice_simulator

        await start_voice_simulator(sims, engine, settings or get_settings())
        from tocsin.dispatch.location_wiring import start_location_simulators

        await start_location_simulators(sims, engine, settings or get_settings())
    return sims


async def stop_simulators(sims: Simulators) -> None:
    with contextlib.suppress(Exception):
        await sims.smsc.stop()  # type: ignore[attr-defined]
    with contextlib.suppress(Exception):
        await asyncio.to_thread(sims.smtp.stop)  # type: ignore[attr-defined]
    if sims.location is not None:
        with contextlib.suppress(Exception):
            await sims.location.stop()  # type: ignore[attr-defined]
    for voice_part in (sims.voice, sims.voice_listener):
        if voice_part is not None:
            with contextlib.suppress(Exception):
                await voice_part.stop()  # type: ignore[attr-defined]


def inbound_sink(engine: Engine, via: str) -> Callable[[Any], Awaitable[None]]:
    """The handler of mobile-originated SMS (``channels.smpp.InboundSms``): stored and
    read as an answer (``campaigns.answer_service.record_inbound``) before the SMSC gets
    its deliver_sm_resp."""
    async def on_inbound(message: Any) -> None:
        from tocsin.campaigns.answer_service import record_inbound

        await asyncio.to_thread(record_inbound, engine, message.source, message.text,
                                via=via, recipient=message.destination or None)
    return on_inbound


def sender_factories(settings: Settings, sims: Simulators | None) -> dict[tuple[str, str],
                                                                          SenderFactory]:
    """Sender factories for the simulation environment (simulators) and live (settings)."""
    from tocsin.channels.email import DkimSigner, SmtpAccount, SmtpSender
    from tocsin.channels.smpp import SmppAccount, parse_smpp_urls
    from tocsin.channels.sms import SmppSender

    factories: dict[tuple[str, str], SenderFactory] = {}
    dkim = DkimSigner.from_settings(settings)  # ValueError naming a bad DKIM setting
    if sims is not None:
        sim_smpp = SmppAccount(host=sims.smsc_host, port=sims.smsc_port, system_id="tocsin",
                               binds=2, window=100, tps=100_000)
        factories[("sms", "simulation")] = lambda rb: SmppSender(
            [sim_smpp], rb.add, "simulator", inbound=inbound_sink(rb.engine, "smpp"))
        sim_smtp = SmtpAccount(sims.smtp_host, sims.smtp_port, connections=4)
        factories[("email", "simulation")] = lambda rb: SmtpSender(sim_smtp, "simulator", dkim)
    if settings.smpp_url.strip():
        accounts = parse_smpp_urls(settings.smpp_url)
        from tocsin.dispatch.ratelimit import share_limits

        # Each account's tps holds across every worker (a bucket in the database).
        factories[("sms", "live")] = lambda rb: share_limits(
            rb.engine, SmppSender(accounts, rb.add, "smpp",
                                  inbound=inbound_sink(rb.engine, "smpp")))
    if settings.smtp_url.strip():
        account = SmtpAccount.from_url(settings.smtp_url)
        factories[("email", "live")] = lambda rb: SmtpSender(account, "smtp", dkim)
    from tocsin.dispatch.voice_wiring import voice_sender_factories

    factories.update(voice_sender_factories(settings, sims))
    from tocsin.dispatch.location_wiring import location_sender_factories

    factories.update(location_sender_factories(settings, sims))
    factories[("webhook", "live")] = lambda rb: _webhook_sender(rb, settings)
    return factories


def _webhook_sender(receipts: ReceiptBuffer, settings: Settings) -> ChannelSender:
    # CAP gateway pushes (F24): live only, simulation campaigns push to nobody.
    from tocsin.cap.gateway import GatewayWebhookTargets
    from tocsin.channels.webhook import WebhookSender

    return WebhookSender(GatewayWebhookTargets(receipts.engine),
                         allow_insecure=settings.webhook_allow_insecure)


class BackgroundWorker:
    """A worker with its own simulators on its own event loop in a daemon thread.

    Used by the web server (``make demo``) so that campaigns launched in the
    browser are sent by the same process; ``tocsin worker`` runs the same
    ``Worker`` in the foreground.
    """

    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings or get_settings()
        self.loop = asyncio.new_event_loop()
        self.worker: Worker | None = None
        self.sims: Simulators | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="tocsin-worker", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.sims = await start_simulators(engine=self.engine, settings=self.settings)
        self.worker = Worker(self.engine, sender_factories(self.settings, self.sims),
                             settings=self.settings)
        self._ready.set()
        try:
            await self.worker.run()
        finally:
            await stop_simulators(self.sims)

    def start(self) -> BackgroundWorker:
        self.thread.start()
        self._ready.wait(timeout=30)
        return self

    def stop(self) -> None:
        if self.worker is not None:
            self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(timeout=15)


def start_background_worker(engine: Engine, settings: Settings | None = None) -> BackgroundWorker:
    """Start a ``BackgroundWorker`` (simulators included); call ``.stop()`` to end it."""
    return BackgroundWorker(engine, settings).start()
