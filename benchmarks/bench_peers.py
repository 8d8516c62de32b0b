"""Dispatch against peers Tocsin did not write, with a raw client in the same run (issue 13).

- SMS end to end (deliveries written, submitted, every receipt stored and applied)
  against an SMSC built on the npm package ``smpp`` (tests/interop/bench_smsc.js: a
  submit_sm_resp and a delivery receipt per message), then a minimal raw windowed
  SMPP client (bind, submit_sm, read responses, acknowledge receipts) against the
  same SMSC with the same binds and window: the ratio is printed.
- E-mail recipients accepted by Postfix's ``smtp-sink`` (Debian package ``postfix``),
  then a raw pipelined SMTP client (RFC 2920) with the same sessions and
  recipients per transaction.
- Launch to first submit_sm (PostgreSQL only): a ``tocsin worker`` process serves
  the node SMSC; a prepared request (an SMS alert over a small area of the demo
  population) is launched ``--launches`` times; each launch is timed from the call
  to the SMSC's first submit_sm of that campaign (p50, p95).
- Workers (PostgreSQL only): N SMS queued at once while 1, then 2 ``tocsin worker``
  processes run against the node SMSC; throughput from the commit to the last
  delivery handed over; the ratio 2/1.

Peers: ``node`` + ``npm`` (the npm package is installed from tests/interop's lock file
on first use) and ``smtp-sink`` (``apt-get install postfix``). A missing peer is
reported with the command that installs it, and its benchmark is skipped.

usage: python benchmarks/bench_peers.py [--sms N] [--email N] [--launches N]
           [--workers-n N] [--binds B] [--window W] [--only sms,email,launch,workers]
       TOCSIN_BENCH_DATABASE_URL=postgresql+psycopg://…/db  (else SQLite in a temp dir;
       launch and workers need PostgreSQL: several processes share one database)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue as thread_queue
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
INTEROP = ROOT / "tests" / "interop"
SOURCE = "Tocsin"


def load() -> str:
    """``uptime``'s load averages (other processes share the machine's cores)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- peers


class NodeSmsc:
    """tests/interop/bench_smsc.js (npm ``smpp``) in a child process."""

    def __init__(self) -> None:
        node, npm = shutil.which("node"), shutil.which("npm")
        if node is None or npm is None:
            raise RuntimeError("node/npm missing: apt-get install nodejs npm")
        if not (INTEROP / "node_modules" / "smpp").is_dir():
            subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=INTEROP, check=True,
                           capture_output=True, timeout=300)
        self.proc = subprocess.Popen([node, str(INTEROP / "bench_smsc.js"), "0"], cwd=INTEROP,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("READY "):
            raise RuntimeError(f"node SMSC did not start: {first!r}")
        self.port = int(first.split()[1])
        self.lines: thread_queue.Queue[str] = thread_queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def _line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line

    def stats(self) -> dict[str, int]:
        self.command("stats")
        return json.loads(self._line("{", 10))  # type: ignore[no-any-return]

    def reset(self) -> None:
        self.command("reset")

    def mark(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()
        self.command("mark")

    def first(self, timeout: float) -> float:
        """Epoch seconds of the first submit_sm after ``mark``."""
        return float(self._line("FIRST ", timeout).split()[1]) / 1000

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """Postfix's ``smtp-sink`` on a free loopback port (accepts and discards mail)."""

    def __init__(self) -> None:
        sink = shutil.which("smtp-sink") or ("/usr/sbin/smtp-sink"
                                             if Path("/usr/sbin/smtp-sink").exists() else None)
        if sink is None:
            raise RuntimeError("smtp-sink missing: apt-get install postfix")
        self.port = free_port()
        command = [sink]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]
        self.proc = subprocess.Popen(command + [f"127.0.0.1:{self.port}", "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("smtp-sink did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


# --------------------------------------------------------------------------- raw clients


def _pdu(command_id: int, sequence: int, body: bytes, status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


def _submit_sm(sequence: int, destination: str, text: bytes) -> bytes:
    body = (b"\0" + bytes((5, 0)) + SOURCE.encode() + b"\0" + bytes((1, 1))
            + destination.encode() + b"\0" + bytes((0, 0, 0)) + b"\0\0"
            + bytes((1, 0, 0, 0, len(text))) + text)
    return _pdu(0x00000004, sequence, body)


async def _raw_bind(port: int, share: int, window: int, text: bytes, offset: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_pdu(0x00000009, 1, b"raw\0pw\0\0" + bytes((0x34, 0, 0)) + b"\0"))
    head = await reader.readexactly(16)
    await reader.readexactly(struct.unpack(">I", head[:4])[0] - 16)
    if struct.unpack(">I", head[8:12])[0] != 0:
        raise RuntimeError("raw bind refused")
    slots = asyncio.Semaphore(window)
    done = asyncio.Event()
    answered = 0

    async def read() -> None:
        nonlocal answered
        while answered < share:
            head = await reader.readexactly(16)
            length, command_id, _status, sequence = struct.unpack(">IIII", head)
            if length > 16:
                await reader.readexactly(length - 16)
            if command_id == 0x80000004:
                answered += 1
                slots.release()
            elif command_id == 0x00000005:  # a receipt: acknowledge it
                writer.write(_pdu(0x80000005, sequence, b"\0"))
            elif command_id == 0x00000015:
                writer.write(_pdu(0x80000015, sequence, b""))
        done.set()

    reading = asyncio.create_task(read())
    for i in range(share):
        await slots.acquire()
        writer.write(_submit_sm(i + 2, f"32470{offset + i:06d}", text))
    await done.wait()
    await reading
    writer.close()
    return answered


async def raw_smpp(port: int, n: int, binds: int, window: int) -> float:
    """Submit ``n`` submit_sm over ``binds`` binds of ``window``; seconds until every
    submit_sm_resp is read (receipts are acknowledged as they come)."""
    text = b"Bench: blijf binnen, sluit ramen en deuren."
    shares = [n // binds + (1 if i < n % binds else 0) for i in range(binds)]
    t0 = time.perf_counter()
    await asyncio.gather(*(_raw_bind(port, s, window, text, 1_000_000 * (i + 1))
                           for i, s in enumerate(shares)))
    return time.perf_counter() - t0


async def _raw_smtp_session(port: int, recipients: list[str], per_tx: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def replies(count: int) -> list[int]:
        codes = []
        while len(codes) < count:
            line = await reader.readline()
            if not line:
                raise RuntimeError("SMTP connection closed")
            if line[3:4] != b"-":
                codes.append(int(line[:3]))
        return codes

    await replies(1)
    writer.write(b"EHLO bench.example\r\n")
    await replies(1)
    body = (b"From: bench@example.org\r\nTo: undisclosed-recipients:;\r\n"
            b"Subject: Bench\r\n\r\nBlijf binnen, sluit ramen en deuren.\r\n.\r\n")
    accepted = 0
    for start in range(0, len(recipients), per_tx):
        chunk = recipients[start:start + per_tx]
        writer.write(b"MAIL FROM:<bench@example.org>\r\n"
                     + b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in chunk) + b"DATA\r\n")
        codes = await replies(len(chunk) + 2)
        accepted += sum(1 for c in codes[1:-1] if c == 250)
        writer.write(body)
        await replies(1)
    writer.write(b"QUIT\r\n")
    writer.close()
    return accepted


async def raw_smtp(port: int, n: int, sessions: int, per_tx: int) -> tuple[float, int]:
    """Pipelined SMTP (RFC 2920: MAIL, RCPTs and DATA in one write): seconds and
    recipients accepted."""
    addresses = [f"user{i}@example.org" for i in range(n)]
    t0 = time.perf_counter()
    counts = await asyncio.gather(*(_raw_smtp_session(port, addresses[i::sessions], per_tx)
                                    for i in range(sessions)))
    return time.perf_counter() - t0, sum(counts)


# --------------------------------------------------------------------------- Tocsin


def _engine(url: str | None) -> sa.Engine:
    from tocsin.core.db import make_engine, transaction
    from tocsin.core.migrate import upgrade
    from tocsin.geo.reference import load_authorities

    engine = make_engine(url or f"sqlite:///{tempfile.mkdtemp(prefix='tocsin-peers-')}/b.db")
    upgrade(engine)
    with transaction(engine) as s:
        if not s.execute(sa.text("SELECT 1 FROM authority LIMIT 1")).first():
            load_authorities(s)
    return engine


def queue_deliveries(engine: sa.Engine, channel: str, n: int, tag: str) -> str:
    """A campaign with ``n`` queued live deliveries of ``channel``; its id."""
    from tocsin.campaigns.services import CampaignRequest, launch_campaign
    from tocsin.core.db import table, transaction
    from tocsin.dispatch.models import Delivery

    cid = launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", channels=["cap"],
        texts={"nl": "Bench: blijf binnen, sluit ramen en deuren.",
               "fr": "Bench: restez à l'intérieur."}))
    with transaction(engine) as s:
        # Live: the deliveries go to the configured provider (the peer), not a simulator.
        s.execute(sa.text("UPDATE campaign SET environment = 'live' WHERE id = :c"), {"c": cid})
        for start in range(0, n, 10_000):
            s.execute(sa.insert(table(Delivery)), [
                {"campaign_id": cid, "channel": channel,
                 "address": f"+3247{tag}{i:07d}" if channel == "sms"
                 else f"user{tag}{i}@example.org",
                 "language": "nl" if i % 3 else "fr", "state": "queued", "priority": 0,
                 "environment": "live", "attempts": 0,
                 "segments": 1 if channel == "sms" else 0,
                 "cost_eur": Decimal("0.055") if channel == "sms" else Decimal(0)}
                for i in range(start, min(n, start + 10_000))])
    return cid


SPENT: dict[str, list[float]] = {}


def time_dispatch_steps() -> None:
    """Sum the wall time of the worker's database steps and of the senders' ``send``
    (printed per run: where a batch's time goes)."""
    import functools

    from tocsin.channels.email import SmtpSender
    from tocsin.channels.sms import SmppSender
    from tocsin.dispatch import queue

    def timed(owner: object, name: str, label: str, is_async: bool = False) -> None:
        real = getattr(owner, name)
        if is_async:
            @functools.wraps(real)
            async def wrapper_async(*a: object, **k: object) -> object:
                t0 = time.perf_counter()
                try:
                    return await real(*a, **k)
                finally:
                    SPENT.setdefault(label, []).append(time.perf_counter() - t0)
            setattr(owner, name, wrapper_async)
            return

        @functools.wraps(real)
        def wrapper(*a: object, **k: object) -> object:
            t0 = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                SPENT.setdefault(label, []).append(time.perf_counter() - t0)
        setattr(owner, name, wrapper)

    for name in ("claim", "record_outcomes", "store_receipts", "apply_receipts",
                 "renew_leases"):
        timed(queue, name, name)
    timed(SmppSender, "send", "sms send (batch)", is_async=True)
    timed(SmtpSender, "send", "email send (batch)", is_async=True)


def print_dispatch_steps() -> None:
    for label, values in sorted(SPENT.items(), key=lambda kv: -sum(kv[1])):
        print(f"    {label:20} {len(values):5} calls, {sum(values):6.2f} s in all, "
              f"{1000 * sum(values) / len(values):7.1f} ms each")
    SPENT.clear()


def tocsin_send(engine: sa.Engine, cid: str, channel: str, settings: object) -> float:
    """Seconds for Tocsin (one worker, in this process) to settle campaign ``cid``:
    SMS until every receipt is stored and applied, e-mail until every recipient is
    accepted."""
    from tocsin.campaigns.services import pending_counts
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.worker import sender_factories

    async def run() -> float:
        t0 = time.perf_counter()
        given_up = await send_campaign(engine, cid, sender_factories(settings, None),  # type: ignore[arg-type]
                                       receipt_timeout=120, send_timeout=60,
                                       settings=settings, poll_interval=0.2)  # type: ignore[arg-type]
        if given_up:
            raise SystemExit(f"{channel}: channels given up: {given_up}")
        return time.perf_counter() - t0

    elapsed = asyncio.run(run())
    states = pending_counts(engine, cid).get(channel, {})
    print(f"    states {states}")
    print_dispatch_steps()
    return elapsed


def bench_sms(url: str | None, n: int, binds: int, window: int) -> None:
    from tocsin.core.settings import Settings

    smsc = NodeSmsc()
    try:
        smpp_url = (f"smpp://tocsin:secret@127.0.0.1:{smsc.port}?binds={binds}"
                    f"&window={window}&tps=1000000")
        settings = Settings(smpp_url=smpp_url, database_url=url or "")
        engine = _engine(url)
        cid = queue_deliveries(engine, "sms", n, "1")
        seconds = tocsin_send(engine, cid, "sms", settings)
        seen = smsc.stats()
        tocsin_rate = n / seconds
        print(f"  tocsin sms end to end : {n:,} in {seconds:6.2f} s = {tocsin_rate:9,.0f}/s "
              f"(binds {binds}, window {window}; SMSC counted {seen['submits']:,} submit_sm, "
              f"{seen['duplicates']} duplicates, {seen['receipts_acked']:,} receipts acked)")
        smsc.reset()
        raw_seconds = asyncio.run(raw_smpp(smsc.port, n, binds, window))
        raw_rate = n / raw_seconds
        print(f"  raw windowed client   : {n:,} in {raw_seconds:6.2f} s = {raw_rate:9,.0f}/s")
        print(f"  ratio tocsin/raw      : {tocsin_rate / raw_rate:.2f}   "
              f"(target >= 5,000/s and >= 0.50)   load {load()}")
        engine.dispose()
    finally:
        smsc.stop()


def bench_email(url: str | None, n: int, sessions: int, per_tx: int) -> None:
    from tocsin.core.settings import Settings

    sink = SmtpSink()
    try:
        settings = Settings(smtp_url=f"smtp://127.0.0.1:{sink.port}?connections={sessions}"
                                     f"&recipients={per_tx}", database_url=url or "")
        engine = _engine(url)
        cid = queue_deliveries(engine, "email", n, "2")
        seconds = tocsin_send(engine, cid, "email", settings)
        rate = n / seconds
        print(f"  tocsin e-mail         : {n:,} recipients in {seconds:6.2f} s = {rate:9,.0f}/s "
              f"({sessions} sessions, {per_tx} recipients per transaction)")
        raw_seconds, accepted = asyncio.run(raw_smtp(sink.port, n, sessions, per_tx))
        raw_rate = accepted / raw_seconds
        print(f"  raw pipelined client  : {accepted:,} recipients in {raw_seconds:6.2f} s = "
              f"{raw_rate:9,.0f}/s")
        print(f"  ratio tocsin/raw      : {rate / raw_rate:.2f}   (target >= 25,000/s)   "
              f"load {load()}")
        engine.dispose()
    finally:
        sink.stop()


# --------------------------------------------------------------------------- processes


def _worker_env(url: str, smpp_url: str) -> dict[str, str]:
    env = dict(os.environ, TOCSIN_DATABASE_URL=url, TOCSIN_SMPP_URL=smpp_url,
               PYTHONPATH=str(ROOT / "src"))
    env.pop("TOCSIN_SMTP_URL", None)
    return env


def start_workers(count: int, url: str, smpp_url: str) -> list[subprocess.Popen[bytes]]:
    tocsin = Path(sys.executable).parent / "tocsin"
    command = [str(tocsin)] if tocsin.exists() else [sys.executable, "-m", "tocsin.cli"]
    return [subprocess.Popen(command + ["worker"], env=_worker_env(url, smpp_url),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(count)]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def _open(engine: sa.Engine, cid: str) -> int:
    with engine.connect() as c:
        return int(c.execute(sa.text(
            "SELECT count(*) FROM delivery WHERE campaign_id = :c "
            "AND state IN ('queued', 'in_flight')"), {"c": cid}).scalar_one())


def bench_workers(url: str, n: int, binds: int, window: int) -> None:
    smsc = NodeSmsc()
    engine = _engine(url)
    smpp_url = f"smpp://tocsin:secret@127.0.0.1:{smsc.port}?binds={binds}&window={window}" \
               f"&tps=1000000"
    rates = {}
    try:
        for count in (1, 2):
            # A first small campaign binds every worker before the measured one.
            procs = start_workers(count, url, smpp_url)
            try:
                warm = queue_deliveries(engine, "sms", 50 * count, f"w{count}")
                while _open(engine, warm):
                    time.sleep(0.1)
                t0 = time.perf_counter()
                cid = queue_deliveries(engine, "sms", n, f"{count}")
                t_commit = time.perf_counter()
                while _open(engine, cid):
                    time.sleep(0.05)
                seconds = time.perf_counter() - t_commit
            finally:
                stop_workers(procs)
            rates[count] = n / seconds
            print(f"  {count} worker(s): {n:,} SMS handed to the SMSC in {seconds:6.2f} s = "
                  f"{rates[count]:8,.0f}/s (queued in {t_commit - t0:.1f} s before)   "
                  f"load {load()}", flush=True)
        seen = smsc.stats()
        print(f"  ratio 2 workers / 1 worker: {rates[2] / rates[1]:.2f}   (SMSC: "
              f"{seen['submits']:,} submit_sm, {seen['duplicates']} duplicates, "
              f"{seen['binds']} binds)")
    finally:
        smsc.stop()
        engine.dispose()


SMALL_AREA = {"type": "Polygon", "coordinates": [[[4.30, 50.80], [4.42, 50.80], [4.42, 50.90],
                                                  [4.30, 50.90], [4.30, 50.80]]]}


def bench_launch(url: str, launches: int, population: int, binds: int, window: int) -> None:
    from tocsin.campaigns.services import CampaignRequest, launch
    from tocsin.core.db import transaction
    from tocsin.core.settings import Settings
    from tocsin.subscribers.demo import generate_demo_population

    engine = _engine(url)
    with transaction(engine) as s:
        have = s.execute(sa.text("SELECT count(*) FROM subscriber")).scalar_one()
    if not have:
        generate_demo_population(engine, population)
    smsc = NodeSmsc()
    smpp_url = f"smpp://tocsin:secret@127.0.0.1:{smsc.port}?binds={binds}&window={window}" \
               f"&tps=1000000"
    settings = Settings(smpp_url=smpp_url, database_url=url)
    request = CampaignRequest(authority_id="BE", area_geojson=json.dumps(SMALL_AREA),
                              kind="alert", environment="live", channels=["sms"],
                              texts={"fr": "Bench : restez à l'intérieur.",
                                     "nl": "Bench: blijf binnen.",
                                     "de": "Bench: bleiben Sie drinnen."})
    procs = start_workers(1, url, smpp_url)
    latencies: list[float] = []
    recipients = 0
    try:
        smsc.mark()
        warm = launch(engine, request, settings)  # binds the worker, loads what it loads
        smsc.first(60)
        while _open(engine, warm.campaign_id):
            time.sleep(0.05)
        for _ in range(launches):
            smsc.mark()
            t0 = time.time()
            launched = launch(engine, request, settings)
            first = smsc.first(60)
            latencies.append(first - t0)
            recipients = launched.recipients
            while _open(engine, launched.campaign_id):
                time.sleep(0.05)
    finally:
        stop_workers(procs)
        smsc.stop()
        engine.dispose()
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(f"  launch -> first submit_sm over {len(latencies)} launches of {recipients:,} "
          f"SMS each: p50 {statistics.median(latencies) * 1000:,.0f} ms, p95 "
          f"{p95 * 1000:,.0f} ms, max {latencies[-1] * 1000:,.0f} ms   (target p95 <= 1 s)   "
          f"load {load()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sms", type=int, default=50_000)
    parser.add_argument("--email", type=int, default=100_000)
    parser.add_argument("--launches", type=int, default=50)
    parser.add_argument("--population", type=int, default=20_000)
    parser.add_argument("--workers-n", type=int, default=30_000)
    parser.add_argument("--binds", type=int, default=2)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--recipients", type=int, default=100)
    parser.add_argument("--only", default="sms,email,launch,workers")
    parser.add_argument("--steps", action="store_true",
                        help="print the wall time of the in-process worker's steps")
    args = parser.parse_args()
    if args.steps:
        time_dispatch_steps()
    url = os.environ.get("TOCSIN_BENCH_DATABASE_URL") or None
    only = set(args.only.split(","))
    print(f"bench_peers: database {'postgresql' if url else 'sqlite'}; {os.cpu_count()} cores; "
          f"load at start {load()} (other processes share the machine)", flush=True)
    for name, run in (
        ("sms", lambda: bench_sms(url, args.sms, args.binds, args.window)),
        ("email", lambda: bench_email(url, args.email, args.sessions, args.recipients)),
        ("launch", lambda: bench_launch(url, args.launches, args.population, args.binds,
                                        args.window) if url else print(
            "  skipped: needs TOCSIN_BENCH_DATABASE_URL (PostgreSQL)")),
        ("workers", lambda: bench_workers(url, args.workers_n, args.binds, args.window)
         if url else print("  skipped: needs TOCSIN_BENCH_DATABASE_URL (PostgreSQL)")),
    ):
        if name not in only:
            continue
        print(f"{name}:", flush=True)
        try:
            run()
        except RuntimeError as exc:
            print(f"  skipped: {exc}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
