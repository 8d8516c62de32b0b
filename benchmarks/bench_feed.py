"""Requests per second of the public CAP feed and alert documents, in one web process.

After an alert, display panels, alert maps and citizens poll the feed
(SPEC F24, F36). Caches in front of Tocsin absorb most of it
(``Cache-Control: public, max-age=10``); this measures what one process serves
itself: 2,000 published alerts (50 active, the rest expired), the first feed
page, a conditional request (``If-None-Match`` → 304) and one alert document,
through the whole ASGI stack (FastAPI TestClient, no network). The anchor, 200
requests/s per process, is Tocsin's own target (SPEC gives none): ten web
processes then serve 2,000 uncached requests/s.

usage: python benchmarks/bench_feed.py [SECONDS_PER_CASE]
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tocsin.campaigns.models import Campaign
from tocsin.campaigns.services import CampaignRequest, launch_campaign
from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.core.settings import get_settings
from tocsin.geo.reference import load_authorities
from tocsin.web.app import create_app

ANCHOR = 200.0
ALERTS, ACTIVE = 2000, 50


def _populate(engine: sa.Engine) -> str:
    template_id = launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", channels=["cap"], kind="alert",
        environment="live", texts={"nl": "Bench: blijf binnen, sluit ramen en deuren.",
                                   "fr": "Bench : restez à l'intérieur."}))
    now = dt.datetime.now(dt.UTC)
    with transaction(engine) as s:
        original = s.get(Campaign, template_id)
        assert original is not None
        columns = {c.key: getattr(original, c.key) for c in sa.inspect(Campaign).columns}
        for i in range(ALERTS - 1):
            cid = uuid.uuid4().hex
            launched = now - dt.timedelta(hours=i)
            s.add(Campaign(**{**columns, "id": cid, "cap_identifier": f"BE-BENCH-{cid}",
                              "launched_at": launched, "created_at": launched,
                              "expires_at": (launched + dt.timedelta(hours=ACTIVE))}))
    return str(original.cap_identifier)


def _rate(client: TestClient, url: str, seconds: float, headers: dict[str, str] | None = None,
          expect: int = 200) -> float:
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        r = client.get(url, headers=headers or {})
        assert r.status_code == expect, (url, r.status_code)
        n += 1
    return n / (time.perf_counter() - started)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TOCSIN_VAR_DIR"] = tmp
        get_settings.cache_clear()
        engine = make_engine(os.environ.get("TOCSIN_BENCH_DATABASE_URL")
                             or f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        with transaction(engine) as s:
            load_authorities(s)
        identifier = _populate(engine)
        cases = {}
        for cache in (0.0, 1.0):
            settings = get_settings().model_copy(update={"feed_cache_seconds": cache})
            label = "built each time" if cache == 0 else f"{cache:g} s micro-cache"
            with TestClient(create_app(engine, start_worker=False, settings=settings)) as client:
                etag = client.get("/cap/feed.atom").headers["etag"]
                cases[f"feed page 1, {label}"] = _rate(client, "/cap/feed.atom", seconds)
                cases[f"feed 304, {label}"] = _rate(client, "/cap/feed.atom", seconds,
                                                    {"If-None-Match": etag}, 304)
                if cache == 0:
                    cases["alert document"] = _rate(client, f"/cap/{identifier}.xml", seconds)
        engine.dispose()
    print(f"{engine.dialect.name}, {ALERTS:,} alerts ({ACTIVE} active), {seconds:.0f} s per case")
    for name, rate in cases.items():
        print(f"  {name:35s} {rate:8,.0f} requests/s  ratio to {ANCHOR:.0f}/s: {rate / ANCHOR:.2f}")


if __name__ == "__main__":
    main()
