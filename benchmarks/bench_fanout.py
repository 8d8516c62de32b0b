"""Fan-out of a national alert (SMS + e-mail) over N demo subscribers: time and peak RSS.

Each size runs in two fresh processes: ``prepare`` writes the reference authorities
and N demo subscribers (``subscribers.demo``, each with a mobile number and an
e-mail address) into a new database; ``fanout`` launches a national alert of the
federal authority over Belgium's bounding box and reports how long its fan-out
took (from the accepted campaign to every delivery queued), when the first batch
was committed (the first SMS could leave then), the whole launch (checks, area
names and language warnings included) and the process's peak RSS
(``ru_maxrss``), so memory is that of the launch alone.

usage: python benchmarks/bench_fanout.py [--plans] [N ...]   (default 20000 100000)
       --plans: on PostgreSQL, fan out each prepared size three times: the sorted
       spatial query, the id-range walk (the default for a national area), sorted again
       TOCSIN_BENCH_DATABASE_URL=postgresql+psycopg://…/postgres python …  (PostgreSQL:
       a database per size is created next to the one named, and dropped after)

Run the 1,000,000 size by hand, once (it takes minutes to prepare): not in CI.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid

BELGIUM = {"type": "Polygon", "coordinates": [[[2.5, 49.45], [6.45, 49.45], [6.45, 51.55],
                                               [2.5, 51.55], [2.5, 49.45]]]}


def _prepare(url: str, n: int) -> None:
    from tocsin.core.db import make_engine, transaction
    from tocsin.core.migrate import upgrade
    from tocsin.geo.reference import load_authorities
    from tocsin.subscribers.demo import generate_demo_population

    engine = make_engine(url)
    upgrade(engine)
    with transaction(engine) as s:
        load_authorities(s)
    generate_demo_population(engine, n)
    engine.dispose()


def _fanout(url: str) -> dict[str, float]:
    from tocsin.campaigns.services import CampaignRequest, launch
    from tocsin.core.db import make_engine
    from tocsin.dispatch import fanout

    if os.environ.get("BENCH_FANOUT_PLAN") == "sorted":
        fanout.RANGE_WALK_KM2 = float("inf")
    engine = make_engine(url)
    first: list[float] = []
    real = fanout._insert_batch

    def timed(s, plan, ids):  # type: ignore[no-untyped-def]
        counts = real(s, plan, ids)
        if not first:
            first.append(time.perf_counter())
        return counts

    fanout._insert_batch = timed  # type: ignore[assignment]
    spans: list[float] = []
    real_run = fanout.run

    def timed_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        spans.append(start)
        out = real_run(*args, **kwargs)
        spans.append(time.perf_counter())
        return out

    fanout.run = timed_run  # type: ignore[assignment]
    t0 = time.perf_counter()
    result = launch(engine, CampaignRequest(
        authority_id="BE", area_geojson=json.dumps(BELGIUM), kind="alert",
        texts={"fr": "Bench : restez à l'intérieur.", "nl": "Bench: blijf binnen.",
               "de": "Bench: bleiben Sie drinnen."}, channels=["sms", "email"]))
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    # ``seconds``: from the accepted campaign to every delivery queued (the fan-out);
    # ``launch_s``: the whole launch (checks, area names, language warnings included).
    return {"deliveries": result.recipients, "seconds": spans[1] - spans[0],
            "launch_s": elapsed, "first_batch_s": (first[0] - spans[0]) if first else 0.0,
            "peak_rss_mib": rss}


def _pg_database(base: str, name: str, create: bool) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if create:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        else:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    if create:
        db = sa.create_engine(base.rsplit("/", 1)[0] + f"/{name}", isolation_level="AUTOCOMMIT")
        with db.connect() as c:
            c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
        db.dispose()
    return base.rsplit("/", 1)[0] + f"/{name}"


def _child(mode: str, url: str, n: int, plan: str = "") -> dict[str, float]:
    env = dict(os.environ, BENCH_FANOUT_PLAN=plan)
    out = subprocess.run([sys.executable, __file__, f"--{mode}", url, str(n)],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1]) if mode == "fanout" else {}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] in ("--prepare", "--fanout"):
        mode, url, n = sys.argv[1][2:], sys.argv[2], int(sys.argv[3])
        if mode == "prepare":
            _prepare(url, n)
        else:
            print(json.dumps(_fanout(url)))
        return
    plans = "--plans" in sys.argv
    sizes = [int(a) for a in sys.argv[1:] if a != "--plans"] or [20_000, 100_000]
    base = os.environ.get("TOCSIN_BENCH_DATABASE_URL", "")
    label = "postgresql" if base else "sqlite"
    from tocsin.dispatch.fanout import BATCH_SUBSCRIBERS

    print(f"database: {label}; national alert, SMS + e-mail; batches of "
          f"{BATCH_SUBSCRIBERS:,} subscribers")
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            name = f"tocsin_fanout_{uuid.uuid4().hex[:8]}"
            url = _pg_database(base, name, True) if base else f"sqlite:///{tmp}/fanout.db"
            try:
                t0 = time.perf_counter()
                _child("prepare", url, n)
                prepared = time.perf_counter() - t0
                r = _child("fanout", url, n)
                if plans and base:
                    for plan in ("sorted", "", "sorted"):
                        p = _child("fanout", url, n, plan)
                        print(f"{n:>9,} subscribers, {plan or 'range walk':>10}: first batch "
                              f"after {p['first_batch_s']:.2f} s, all queued in "
                              f"{p['seconds']:.1f} s", flush=True)
            finally:
                if base:
                    _pg_database(base, name, False)
        rows.append((n, r))
        print(f"{n:>9,} subscribers: {r['deliveries']:>9,.0f} deliveries queued in "
              f"{r['seconds']:6.1f} s ({r['deliveries'] / max(r['seconds'], 1e-9):8,.0f}/s), "
              f"first batch committed after {r['first_batch_s']:.2f} s, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB (whole launch {r['launch_s']:.1f} s; "
              f"prepared in {prepared:.0f} s)",
              flush=True)
    if len(rows) > 1:
        (n0, a), (n1, b) = rows[0], rows[-1]
        print(f"growth {n0:,} -> {n1:,} ({n1 / n0:.0f}x): time x{b['seconds'] / a['seconds']:.1f}, "
              f"peak RSS x{b['peak_rss_mib'] / a['peak_rss_mib']:.2f}")


if __name__ == "__main__":
    main()
