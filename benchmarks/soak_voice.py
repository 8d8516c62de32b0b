"""Voice soak: several worker processes start calls against the voice gateway simulator.

Everything real: one database (SQLite WAL in a temporary folder, or a throwaway
PostgreSQL database beside TOCSIN_TEST_DATABASE_URL with ``--postgres``), WORKERS
separate ``Worker`` processes sharing it, each taking call start permits from the
``voice_route`` row (``dispatch.calls.take_start_permit``), the simulator as a real
HTTP server (Calls API, TwiML fetched over HTTP, signed callbacks) and Tocsin's
callback listener applying the callbacks. More calls are queued than the run can
start, so calls remain until the end.

Checked, from the times at which the simulator received the call starts:
* never more than PER_MINUTE starts in any sliding 60 s (and the same at the times
  Tocsin gave the start permits, ``most_permits_in_60s``: a difference between the
  two is the time requests took to reach the provider, beyond the 0.5 s margin);
* on average at least 99 % of PER_MINUTE starts per minute (the window is held
  60 s + ``voice_rate_margin_seconds``, so 600 per 60.5 s = 595/min at most);
* never more simultaneous calls than TRUNK.

usage: python benchmarks/soak_voice.py [--seconds 300] [--per-minute 600] [--trunk 200]
           [--workers 3] [--time-scale 0.2] [--postgres]
(``make soak`` runs the full form: 3 workers, 5 minutes, 600/min; the test suite runs
a short form scaled down to 120/min over 75 s: tests/test_voice_soak.py.)
Prints one JSON line; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import sqlalchemy as sa

from tocsin.core.db import make_engine, table, transaction
from tocsin.core.migrate import upgrade

PER_CALL_SECONDS = 40  # simulated: ring, the message twice, the prompt


def _environment(args: argparse.Namespace) -> dict[str, str]:
    return {**os.environ, "TOCSIN_VOICE_CALLS_PER_MINUTE": str(args.per_minute),
            "TOCSIN_VOICE_TRUNK": str(args.trunk), "TOCSIN_VOICE_RETRIES": "0",
            "TOCSIN_VOICE_SIMULATOR_TIME_SCALE": str(args.time_scale),
            "TOCSIN_VOICE_BATCH_SIZE": "20"}


@contextlib.contextmanager
def _database(postgres: bool) -> Iterator[str]:
    if not postgres:
        folder = tempfile.mkdtemp(prefix="tocsin-soak-")
        yield f"sqlite:///{folder}/soak.db"
        return
    from sqlalchemy.engine import make_url

    base = os.environ["TOCSIN_TEST_DATABASE_URL"]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"tocsin_soak_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
        engine = make_engine(url)
        with engine.begin() as c:
            c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        engine.dispose()
        yield url
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _prepare(url: str, calls: int) -> str:
    """Schema, one authority, one sending voice campaign and ``calls`` queued deliveries."""
    from tocsin.authorities.models import Authority
    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import utcnow
    from tocsin.dispatch.models import Delivery

    engine = make_engine(url)
    upgrade(engine)
    cid = uuid.uuid4().hex
    now = utcnow()
    with transaction(engine) as s:
        s.add(Authority(id="23003", kind="municipality", name_fr="Beersel", name_nl="Beersel",
                        languages="nl", agreement_type=1, territory="{}", min_lon=0, min_lat=0,
                        max_lon=1, max_lat=1))
        s.flush()
        s.add(Campaign(id=cid, authority_id="23003", kind="test", environment="simulation",
                       status="sending", priority=3, channels="voice",
                       texts={"nl": "Dit is een test van het alarmsysteem. Er is geen gevaar."},
                       content={}, area="{}", area_name="Beersel", cap_params={},
                       cap_identifier=f"BE-SOAK-{cid[:8]}", sms_source="1789",
                       mail_from="a@b.c", voice_caller="+3278151789", created_by="soak",
                       created_at=now, launched_at=now, fanout_done_at=now))
        s.flush()
        rows = [{"campaign_id": cid, "channel": "voice", "address": f"+322{2000000 + i}",
                 "language": "nl", "state": "queued", "priority": 3,
                 "environment": "simulation", "attempts": 0, "segments": 0,
                 "cost_eur": Decimal(0)} for i in range(calls)]
        for start in range(0, len(rows), 10_000):
            s.execute(sa.insert(table(Delivery)), rows[start:start + 10_000])
    engine.dispose()
    return cid


def _worker(url: str, gateway: str, listener: str) -> None:
    """One worker process: voice only, towards the simulator given by URL."""
    from tocsin.channels.voice import VoiceAccount, VoiceSender
    from tocsin.core.settings import get_settings
    from tocsin.dispatch.calls import DbCallPermits
    from tocsin.dispatch.worker import Worker

    settings = get_settings()
    engine = make_engine(url)
    account = VoiceAccount(gateway, "ACsimulator0000000000000000000000",
                           "simulator-auth-token", listener,
                           ring_timeout=settings.voice_ring_timeout,
                           machine_detection=settings.voice_machine_detection)

    async def main() -> None:
        worker = Worker(engine, {("voice", "simulation"): lambda rb: VoiceSender(
            account, DbCallPermits(rb.engine, "simulation", settings), "simulator")},
            settings=settings)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, worker.stop)
        await worker.run()

    asyncio.run(main())


async def _soak(args: argparse.Namespace, url: str) -> dict[str, object]:
    from tocsin.channels.simulators.voice_gateway import VoiceGatewaySimulator
    from tocsin.core.settings import Settings
    from tocsin.dispatch.voice_models import VoiceCall
    from tocsin.dispatch.voice_wiring import CallbackListener

    calls = int(args.per_minute * args.seconds / 60 * 1.3) + 20
    await asyncio.to_thread(_prepare, url, calls)
    settings = Settings(database_url=url, voice_simulator_time_scale=args.time_scale)
    engine = make_engine(url)
    listener = CallbackListener(engine, settings, "simulator-auth-token")
    await listener.start()
    # Every call is answered (no retries to muddy the rate); 40 simulated seconds each.
    gateway = VoiceGatewaySimulator(time_scale=args.time_scale, seed=12,
                                    shares={"answered": 1.0})
    await gateway.start()
    env = _environment(args)
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", url, gateway.base_url,
                                 listener.base_url], env=env) for _ in range(args.workers)]
    started = time.monotonic()
    try:
        # The run lasts ``seconds`` from the first call start (worker processes take a
        # while to import and connect on a busy machine).
        while not gateway.starts and time.monotonic() - started < 180:
            await asyncio.sleep(0.2)
        first = gateway.starts[0] if gateway.starts else started
        while time.monotonic() - first < args.seconds:
            await asyncio.sleep(1.0)
            if any(w.poll() is not None for w in workers):
                raise SystemExit("a worker process ended early")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
        await gateway.stop()
        await listener.stop()
        with engine.connect() as conn:
            permits = sorted(t.timestamp() for t in conn.scalars(
                sa.select(VoiceCall.started_at)))
        engine.dispose()
    starts = sorted(gateway.starts)
    # The same count at permit time (Tocsin's clock), to tell Tocsin's limit from the
    # time requests take to reach the provider on a busy machine.
    most_permits, lo = 0, 0
    for hi, t in enumerate(permits):
        while t - permits[lo] >= 60.0:
            lo += 1
        most_permits = max(most_permits, hi - lo + 1)
    span = (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    per_minute_avg = (len(starts) - 1) / span * 60 if span else 0.0
    most = gateway.most_starts_in(60.0)
    gaps = sorted(b - a for a, b in zip(starts, starts[1:], strict=False))
    result = {
        "database": url.split(":", 1)[0], "workers": args.workers,
        "seconds": args.seconds, "per_minute": args.per_minute, "trunk": args.trunk,
        "queued_calls": calls, "starts": len(starts),
        "most_starts_in_60s": most, "most_permits_in_60s": most_permits,
        "average_per_minute": round(per_minute_avg, 1),
        "max_simultaneous": gateway.max_active,
        "calls_remaining": calls - len(starts),
        "gap_s": {"median": round(gaps[len(gaps) // 2], 3) if gaps else None,
                  "p99": round(gaps[int(len(gaps) * 0.99)], 3) if gaps else None,
                  "max": round(gaps[-1], 3) if gaps else None},
        "first_start_after_s": round(starts[0] - started, 1) if starts else None,
    }
    checks = {
        "window": most <= args.per_minute,
        "window_at_permit": most_permits <= args.per_minute,
        "average": per_minute_avg >= 0.99 * args.per_minute,
        "trunk": gateway.max_active <= args.trunk,
        "calls_remained": calls > len(starts),
    }
    result["checks"] = checks
    result["ok"] = all(checks.values())
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--per-minute", type=int, default=600)
    parser.add_argument("--trunk", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=0.2,
                        help="real seconds per simulated second of a call")
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway database beside TOCSIN_TEST_DATABASE_URL")
    args = parser.parse_args()
    os.environ.update(_environment(args))
    with _database(args.postgres) as url:
        result = asyncio.run(_soak(args, url))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
