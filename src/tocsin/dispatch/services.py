"""Dispatch use cases: send one campaign to the end (the CLI's run, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from tocsin.campaigns.services import CampaignRequest, pending_counts
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch import queue
from tocsin.dispatch.models import IN_FLIGHT, QUEUED, SENT
from tocsin.dispatch.worker import SenderFactory, Worker

Progress = Callable[[dict[str, dict[str, int]]], None]


async def send_campaign(
    engine: Engine, campaign_id: str, senders: dict[tuple[str, str], SenderFactory], *,
    receipt_timeout: float = 30.0, send_timeout: float = 120.0,
    on_progress: Progress | None = None, settings: Settings | None = None,
    poll_interval: float = 0.2,
) -> list[str]:
    """Run a worker restricted to ``campaign_id`` until every delivery is settled.

    A channel is settled when none of its deliveries is queued or in flight and,
    for SMS, every receipt has arrived or ``receipt_timeout`` seconds passed since
    sending ended (those stay ``sent``). A channel that makes no progress for
    ``send_timeout`` seconds (e.g. an unreachable SMSC) is given up: its
    deliveries stay queued for any running worker. Then the campaign is
    ``finished`` when nothing of it is queued or in flight (SMS without a receipt
    stay ``sent``). Returns the given-up channels.
    """
    worker = Worker(engine, senders, campaign_id=campaign_id,
                    settings=settings or get_settings())
    task = asyncio.create_task(worker.run())
    given_up: list[str] = []
    progress_at: dict[str, tuple[int, float]] = {}
    sent_done_at: dict[str, float] = {}
    try:
        while not task.done():
            counts = await asyncio.to_thread(pending_counts, engine, campaign_id)
            if on_progress:
                on_progress(counts)
            now = time.monotonic()
            open_channels = []
            for ch, states in counts.items():
                if ch in given_up:
                    continue
                total = sum(states.values())
                done_sending = total - states.get(QUEUED, 0) - states.get(IN_FLIGHT, 0)
                last = progress_at.get(ch)
                if last is None or last[0] != done_sending:
                    progress_at[ch] = (done_sending, now)
                if done_sending < total:
                    if now - progress_at[ch][1] > send_timeout:
                        given_up.append(ch)
                    else:
                        open_channels.append(ch)
                elif states.get(SENT, 0) and ch in queue.AWAITING_CHANNELS:
                    # SMS wait for receipts; an LB-SMS broadcast for its operator's final
                    # callback, as long as it makes progress (``send_timeout``).
                    sent_done_at.setdefault(ch, now)
                    wait = receipt_timeout if ch == "sms" else max(receipt_timeout,
                                                                   send_timeout)
                    if now - sent_done_at[ch] < wait:
                        open_channels.append(ch)
            if not open_channels:
                break
            await asyncio.sleep(poll_interval)
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await task
    # This run stopped waiting for receipts: the campaign ends here unless a channel was
    # given up (its deliveries are still queued; a running worker finishes it later).
    await asyncio.to_thread(queue.finish_campaigns, engine, campaign_id, None, 0.0)
    return given_up


#: Progress of a campaign run: channel -> (deliveries handed to the provider, total).
RunProgress = Callable[[dict[str, tuple[int, int]]], None]


@dataclass
class CampaignRun:
    """What :func:`run_campaign` did: the campaign written, whether it was only
    scheduled (nothing sent yet; ``report`` None), its report once sending ended
    (``campaign_report`` shape plus ``"unfinished_channels"``) and the channels that
    could not finish (their deliveries stay queued for a running worker)."""

    campaign_id: str
    scheduled: bool
    report: dict[str, Any] | None = None
    unfinished: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


def run_campaign(engine: Engine, action: str, req: CampaignRequest, *,
                 campaign_id: str | None = None, settings: Settings | None = None,
                 receipt_timeout: float = 30.0, send_timeout: float = 120.0,
                 on_accepted: Callable[[str, list[dict[str, str]]], None] | None = None,
                 on_progress: RunProgress | None = None) -> CampaignRun:
    """One command's whole use case: write the campaign, then send it here until done.

    ``action``: ``"launch"`` (``launch_campaign(req)``), ``"update"``
    (``update_campaign(campaign_id, req)``) or ``"all_clear"`` (``all_clear``). A
    launch with ``req.scheduled_for`` is only scheduled (a running worker sends it).
    Otherwise the simulators start, the configured providers are used for live
    campaigns, and sending goes on until every delivery is settled (see
    :func:`send_campaign`; ``receipt_timeout`` / ``send_timeout`` in seconds).
    ``on_accepted(campaign_id, warnings)`` is called once the campaign is written
    (``warnings``: the estimate's for a launch, the area cut for an update; empty for
    an all-clear),
    ``on_progress`` with each channel's (handed to the provider, total).

    Raises ``CampaignInputError`` (nothing written) and ``ValueError`` for an unknown
    ``action``.
    """
    from tocsin.campaigns import services as campaigns

    settings = settings or get_settings()
    warnings: list[dict[str, str]] = []
    if action == "launch":
        launched = campaigns.launch(engine, req, settings)
        new_id, warnings = launched.campaign_id, launched.warnings
    elif action == "update" and campaign_id is not None:
        updated = campaigns.update_with_warnings(engine, campaign_id, req, settings)
        new_id, warnings = updated.campaign_id, updated.warnings
    elif action == "all_clear" and campaign_id is not None:
        new_id = campaigns.all_clear(engine, campaign_id, req, settings)
    else:
        raise ValueError(f"action: {action!r} is not launch, update or all_clear "
                         f"(the last two need campaign_id)")
    if action == "launch" and req.scheduled_for is not None:
        if on_accepted is not None:
            on_accepted(new_id, warnings)
        return CampaignRun(new_id, scheduled=True, warnings=warnings)
    if on_accepted is not None:
        on_accepted(new_id, warnings)

    def progress(counts: dict[str, dict[str, int]]) -> None:
        if on_progress is not None:
            on_progress({ch: (sum(states.values()) - states.get(QUEUED, 0)
                              - states.get(IN_FLIGHT, 0), sum(states.values()))
                         for ch, states in counts.items()})

    async def send() -> list[str]:
        from tocsin.dispatch.worker import sender_factories, start_simulators, stop_simulators

        sims = await start_simulators(engine=engine, settings=settings)
        try:
            return await send_campaign(engine, new_id, sender_factories(settings, sims),
                                       receipt_timeout=receipt_timeout,
                                       send_timeout=send_timeout, on_progress=progress,
                                       settings=settings)
        finally:
            await stop_simulators(sims)

    unfinished = asyncio.run(send())
    report = campaigns.campaign_report(engine, new_id, settings)
    report["unfinished_channels"] = unfinished
    return CampaignRun(new_id, scheduled=False, report=report, unfinished=unfinished,
                       warnings=warnings)
