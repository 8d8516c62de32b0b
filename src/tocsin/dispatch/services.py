"""Dispatch use cases: send one campaign to the end (the CLI's run, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from tocsin.campaigns.services import pending_counts
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
                elif states.get(SENT, 0) and ch == "sms":
                    sent_done_at.setdefault(ch, now)
                    if now - sent_done_at[ch] < receipt_timeout:
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
