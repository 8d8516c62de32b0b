"""Throughput of the dispatch path: 100,000 SMS and 100,000 e-mails through the simulators.

Everything real: the deliveries table as the queue (claims with leases on SQLite
WAL, or PostgreSQL when TOCSIN_BENCH_DATABASE_URL is set), the SMPP client
against the SMSC simulator over loopback (submit_sm, receipts), the SMTP client
against the aiosmtpd sink. Prints messages per second and the ratio to the
SPEC anchors (F21: 500 SMS/s, F23: 2,500 e-mails/s).

usage: python benchmarks/bench_dispatch.py [N]
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from decimal import Decimal

import sqlalchemy as sa

from tocsin.campaigns.services import CampaignRequest, launch_campaign, pending_counts
from tocsin.core.db import make_engine, table, transaction
from tocsin.core.migrate import upgrade
from tocsin.core.settings import get_settings
from tocsin.dispatch.models import Delivery
from tocsin.dispatch.services import send_campaign
from tocsin.dispatch.worker import sender_factories, start_simulators, stop_simulators
from tocsin.geo.reference import load_authorities

ANCHORS = {"sms": 500.0, "email": 2500.0}


def _prepare(engine: sa.Engine, channel: str, n: int) -> str:
    cid = launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", channels=["cap"],
        texts={"nl": "Bench: blijf binnen, sluit ramen en deuren.", "fr": "Bench: restez à "
               "l'intérieur."}))
    rows = [{"campaign_id": cid, "channel": channel,
             "address": f"+3247{i:07d}" if channel == "sms" else f"user{i}@example.org",
             "language": "nl" if i % 3 else "fr", "state": "queued", "priority": 0,
             "environment": "simulation", "attempts": 0, "segments": 1 if channel == "sms" else 0,
             "cost_eur": Decimal("0.055") if channel == "sms" else Decimal(0)} for i in range(n)]
    with transaction(engine) as s:
        for start in range(0, n, 10_000):
            s.execute(sa.insert(table(Delivery)), rows[start:start + 10_000])
    return cid


async def _run(engine: sa.Engine, cid: str) -> float:
    sims = await start_simulators(receipt_delay=0.0)
    try:
        t0 = time.perf_counter()
        unfinished = await send_campaign(engine, cid, sender_factories(get_settings(), sims),
                                         receipt_timeout=0, send_timeout=60)
        elapsed = time.perf_counter() - t0
    finally:
        await stop_simulators(sims)
    if unfinished:
        raise SystemExit(f"channels did not finish: {unfinished}")
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    url = os.environ.get("TOCSIN_BENCH_DATABASE_URL")
    tmp = tempfile.mkdtemp(prefix="tocsin-bench-")
    engine = make_engine(url or f"sqlite:///{tmp}/bench.db")
    upgrade(engine)
    with transaction(engine) as s:
        load_authorities(s)
    print(f"database: {engine.dialect.name}; {n:,} deliveries per channel; "
          f"batch {get_settings().batch_size}")
    for channel in ("sms", "email"):
        cid = _prepare(engine, channel, n)
        elapsed = asyncio.run(_run(engine, cid))
        states = pending_counts(engine, cid).get(channel, {})
        sent = n - states.get("queued", 0) - states.get("in_flight", 0)
        rate = sent / elapsed
        print(f"{channel:5}: {sent:,} in {elapsed:6.1f} s = {rate:8,.0f}/s  "
              f"(anchor {ANCHORS[channel]:,.0f}/s, ratio {rate / ANCHORS[channel]:.2f}) "
              f"states {states}")


if __name__ == "__main__":
    main()
