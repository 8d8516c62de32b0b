"""Voice soak: several worker processes start calls against the voice gateway simulator.

Everything real: one database (SQLite WAL in a temporary folder, or a throwaway
PostgreSQL database beside TOCSIN_TEST_DATABASE_URL with ``--postgres``), WORKERS
separate ``Worker`` processes sharing it, each taking call start permits from the
``voice_route`` row (``dispatch.calls.take_start_permit``), the simulator as a real
HTTP server (Calls API, TwiML fetched over HTTP, signed callbacks) in this process,
and Tocsin's callback listener applying the callbacks in a process of its own (as
the web server would). The calls are queued once every worker is up; more are queued
than the run can start, so calls remain until the end.

Checked, from the times at which the simulator received the call starts:
* never more than PER_MINUTE starts in any sliding 60 s (and the same over the times
  Tocsin recorded, ``most_recorded_in_60s``: when each start was known received);
* on average at least 99 % of PER_MINUTE starts per minute (each slot of the minute is
  reused one round trip + ``voice_rate_margin_seconds`` after 60 s);
* never more simultaneous calls than TRUNK.

``--prefill``: the window starts full, as after a minute at the full rate: PER_MINUTE
earlier starts recorded evenly over the last 60 s (counted at the provider at those
times), so that a short run checks the window from its first second.

usage: python benchmarks/soak_voice.py [--seconds 300] [--per-minute 600] [--trunk 200]
           [--workers 3] [--time-scale 0.2] [--prefill] [--postgres]
(``make soak`` runs the full form: 3 workers, 5 minutes, 600/min; the test suite runs
a short form, prefilled, 120/min over 35 s: tests/test_voice_soak.py.)
Prints one JSON line; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

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


def _prepare(url: str) -> str:
    """Schema, one authority and one sending voice campaign (no deliveries yet)."""
    from tocsin.authorities.models import Authority
    from tocsin.campaigns.models import Campaign
    from tocsin.core.db import utcnow

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
    engine.dispose()
    return cid


def _queue(url: str, cid: str, calls: int, prefill: int) -> list[float]:
    """Queue ``calls`` voice deliveries; with ``prefill``, first record that many earlier
    calls (delivered, ended), started evenly over the last 60 s. Returns their start
    times (UTC epoch seconds)."""
    from tocsin.core.db import utcnow
    from tocsin.dispatch.models import Delivery
    from tocsin.dispatch.voice_models import VoiceCall

    engine = make_engine(url)
    d = table(Delivery)
    with transaction(engine) as s:
        now = utcnow()
        times = [now - dt.timedelta(seconds=60 - (i + 0.5) * 60 / prefill)
                 for i in range(prefill)]
        if prefill:
            s.execute(sa.insert(d), [
                {"campaign_id": cid, "channel": "voice", "address": f"+323{2000000 + i}",
                 "language": "nl", "state": "delivered", "priority": 3,
                 "environment": "simulation", "attempts": 1, "segments": 1,
                 "cost_eur": Decimal(0), "final_at": now} for i in range(prefill)])
            ids = list(s.scalars(sa.select(d.c.id).where(d.c.campaign_id == cid)
                                 .order_by(d.c.id)))
            s.execute(sa.insert(table(VoiceCall)), [
                {"delivery_id": ids[i], "campaign_id": cid, "route": "simulation",
                 "attempt": 1, "status": "completed", "started_at": t, "ended_at": now,
                 "duration_s": 30, "digits": "", "acknowledged": False}
                for i, t in enumerate(times)])
        rows = [{"campaign_id": cid, "channel": "voice", "address": f"+322{2000000 + i}",
                 "language": "nl", "state": "queued", "priority": 3,
                 "environment": "simulation", "attempts": 0, "segments": 0,
                 "cost_eur": Decimal(0)} for i in range(calls)]
        for start in range(0, len(rows), 10_000):
            s.execute(sa.insert(d), rows[start:start + 10_000])
    engine.dispose()
    return [t.timestamp() for t in times]


def _worker(url: str, gateway: str, listener: str, ready: str) -> None:
    """One worker process: voice only, towards the simulator given by URL. Touches
    ``ready``/<pid>.ready once up; writes its permit measures to <pid>.json at the end."""
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
    permits = DbCallPermits(engine, "simulation", settings)

    async def main() -> None:
        worker = Worker(engine, {("voice", "simulation"): lambda rb: VoiceSender(
            account, permits, "simulator")}, settings=settings)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, worker.stop)
        Path(ready, f"{os.getpid()}.ready").touch()
        await worker.run()

    asyncio.run(main())
    Path(ready, f"{os.getpid()}.json").write_text(json.dumps(
        {"permits": permits.given, "waited_s": round(permits.waited_s, 1),
         "permit_db_s": round(permits.db_s, 1)}))


def _listener(url: str, port: str, ready: str) -> None:
    """Tocsin's callback listener in a process of its own, on ``port``."""
    from tocsin.core.settings import get_settings
    from tocsin.dispatch.voice_wiring import CallbackListener

    engine = make_engine(url)

    async def main() -> None:
        listener = CallbackListener(engine, get_settings(), "simulator-auth-token",
                                    port=int(port))
        await listener.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        Path(ready, "listener.ready").touch()
        await stop.wait()
        await listener.stop()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _quantiles(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    if not values:
        return {"median": None, "p99": None, "max": None}
    return {"median": round(values[len(values) // 2], 3),
            "p99": round(values[int(len(values) * 0.99)], 3), "max": round(values[-1], 3)}


async def _soak(args: argparse.Namespace, url: str) -> dict[str, object]:
    from tocsin.channels.simulators.voice_gateway import VoiceGatewaySimulator
    from tocsin.dispatch.call_rules import most_in_window
    from tocsin.dispatch.voice_models import VoiceCall

    calls = int(args.per_minute * args.seconds / 60 * 1.3) + 20
    cid = await asyncio.to_thread(_prepare, url)
    ready = tempfile.mkdtemp(prefix="tocsin-soak-ready-")
    env = _environment(args)
    port = _free_port()
    listener = subprocess.Popen([sys.executable, __file__, "--listener", url, str(port), ready],
                                env=env)
    # Every call is answered (no retries to muddy the rate); about 40 simulated s each.
    gateway = VoiceGatewaySimulator(time_scale=args.time_scale, seed=12,
                                    shares={"answered": 1.0})
    await gateway.start()
    workers = [subprocess.Popen([sys.executable, __file__, "--worker", url, gateway.base_url,
                                 f"http://127.0.0.1:{port}", ready], env=env)
               for _ in range(args.workers)]
    procs = [listener, *workers]
    began = time.monotonic()
    prefill: list[float] = []
    try:
        while len(list(Path(ready).glob("*.ready"))) < len(procs):
            if any(p.poll() is not None for p in procs) or time.monotonic() - began > 180:
                raise SystemExit("a worker or the listener did not start")
            await asyncio.sleep(0.1)
        up_s = time.monotonic() - began
        prefill = await asyncio.to_thread(_queue, url, cid, calls,
                                          args.per_minute if args.prefill else 0)
        queued = time.monotonic()
        # The run lasts ``seconds`` from the first call start.
        while not gateway.starts and time.monotonic() - queued < 60:
            await asyncio.sleep(0.05)
        first = gateway.starts[0] if gateway.starts else queued
        while time.monotonic() - first < args.seconds:
            await asyncio.sleep(0.5)
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a worker or the listener process ended early")
    finally:
        for p in workers:
            p.send_signal(signal.SIGTERM)
        for p in workers:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        listener.send_signal(signal.SIGTERM)
        try:
            listener.wait(timeout=10)
        except subprocess.TimeoutExpired:
            listener.kill()
        await gateway.stop()
        wall = time.time() - time.monotonic()  # monotonic -> UTC epoch seconds
        engine = make_engine(url)
        with engine.connect() as conn:
            recorded = {str(r[0]): r[1].timestamp() for r in conn.execute(
                sa.select(VoiceCall.provider_call_sid, VoiceCall.started_at)
                .where(VoiceCall.provider_call_sid.is_not(None)))}
        engine.dispose()
    starts = sorted(gateway.starts)
    received = {sid: c.started + wall for sid, c in gateway.calls.items()}
    # How long after the provider received a start Tocsin knew it (its answer arrived):
    # one such round trip (+ the margin) is what each slot of the minute costs.
    settle = [recorded[sid] - t for sid, t in received.items() if sid in recorded]
    span = (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
    per_minute_avg = (len(starts) - 1) / span * 60 if span else 0.0
    most = most_in_window(prefill + [t + wall for t in starts])
    most_recorded = most_in_window(prefill + list(recorded.values()))
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    stats = [json.loads(f.read_text()) for f in Path(ready).glob("*.json")]
    result = {
        "database": url.split(":", 1)[0], "workers": args.workers,
        "seconds": args.seconds, "per_minute": args.per_minute, "trunk": args.trunk,
        "time_scale": args.time_scale, "prefill": len(prefill),
        "queued_calls": calls, "starts": len(starts),
        "most_starts_in_60s": most, "most_recorded_in_60s": most_recorded,
        "average_per_minute": round(per_minute_avg, 1),
        "max_simultaneous": gateway.max_active,
        "calls_remaining": calls - len(starts),
        "gap_s": _quantiles(gaps),
        # Time with no start at all for over a second (a stalled process or database):
        # pacing catches up at most 1 s of it, the rest is lost to the average.
        "stalled_s": round(sum(g for g in gaps if g > 1.0), 1),
        "known_received_after_s": _quantiles(settle),
        "workers_up_after_s": round(up_s, 1),
        "first_start_after_queued_s": round(first - queued, 2) if starts else None,
        "permits": {"given": sum(x["permits"] for x in stats),
                    "waited_s": round(sum(x["waited_s"] for x in stats), 1),
                    "db_s": round(sum(x["permit_db_s"] for x in stats), 1)},
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = {
        "window": most <= args.per_minute,
        "window_recorded": most_recorded <= args.per_minute,
        "average": per_minute_avg >= 0.99 * args.per_minute,
        "trunk": gateway.max_active <= args.trunk,
        "calls_remained": calls > len(starts),
    }
    result["checks"] = checks
    result["ok"] = all(checks.values())
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(*sys.argv[2:6])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--listener":
        _listener(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--per-minute", type=int, default=600)
    parser.add_argument("--trunk", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=0.2,
                        help="real seconds per simulated second of a call")
    parser.add_argument("--prefill", action="store_true",
                        help="start with the window full (a short run checks it at once)")
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
