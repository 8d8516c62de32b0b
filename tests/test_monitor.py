"""The live monitor (issue 9, point 3; SPEC F26): the maths in milliseconds, the service's
figures, the server-sent events and who may read them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from test_web import PASSWORD, seed
from tocsin.campaigns import progress
from weblogin import csrf_of, log_in

NOW = dt.datetime(2026, 12, 3, 10, 0, 0, tzinfo=dt.UTC)


# --- the maths (campaigns.progress) -------------------------------------------------

def test_throughput_is_deliveries_per_second_over_the_window() -> None:
    assert progress.throughput(100, window_s=20) == 5.0
    assert progress.throughput(0, window_s=20) == 0.0


def test_throughput_of_a_young_campaign_uses_its_age() -> None:
    # Launched 4 s ago: 40 handled is 10 per second, not 2.
    assert progress.throughput(40, window_s=20, running_s=4) == 10.0
    # Older than the window: the window counts.
    assert progress.throughput(40, window_s=20, running_s=600) == 2.0
    # A burst within the first instant is not an infinite rate.
    assert progress.throughput(7, window_s=20, running_s=0.01) == 7.0


def test_throughput_refuses_nonsense_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="handled_in_window"):
        progress.throughput(-1)
    with pytest.raises(ValueError, match="window_s"):
        progress.throughput(1, window_s=0)


def test_time_left_at_the_current_rate() -> None:
    assert progress.seconds_left(100, 4.0) == 25.0
    assert progress.seconds_left(10, 3.0) == 4.0  # rounded up
    assert progress.seconds_left(0, 0.0) == 0.0
    assert progress.seconds_left(5, 0.0) is None  # nothing moves: unknown, not infinite


def test_durations_read_at_a_distance() -> None:
    assert progress.format_duration(None) == "unknown"
    assert progress.format_duration(45) == "45 s"
    assert progress.format_duration(185) == "3 min 05 s"
    assert progress.format_duration(3720) == "1 h 02 min"


def test_recent_campaigns_are_sending_or_ended_within_the_hour() -> None:
    assert progress.is_recent("sending", None, NOW)
    assert progress.is_recent("finished", NOW - dt.timedelta(minutes=59), NOW)
    assert progress.is_recent("cancelled", NOW - dt.timedelta(minutes=10), NOW)
    assert not progress.is_recent("finished", NOW - dt.timedelta(minutes=61), NOW)
    assert not progress.is_recent("scheduled", None, NOW)
    assert not progress.is_recent("finished", None, NOW)


def test_summary_counts_per_channel_and_state() -> None:
    s = progress.summary({"sms": {"queued": 60, "in_flight": 10, "sent": 20, "failed": 5,
                                  "expired": 5},
                          "email": {"sent": 30}}, handled_in_window=40, running_s=100,
                         status="sending")
    assert s["channels"]["sms"]["states"]["delivered"] == 0  # every state has a counter
    assert s["channels"]["sms"] | {"states": None} == {
        "states": None, "total": 100, "done": 30, "failed": 10, "remaining": 70}
    assert (s["total"], s["done"], s["failed"], s["remaining"]) == (130, 60, 10, 70)
    assert s["percent"] == 46.2
    assert s["throughput_per_s"] == 2.0
    assert s["seconds_left"] == 35.0 and s["time_left"] == "35 s"
    assert s["final"] is False


def test_summary_of_a_final_campaign_has_no_time_left() -> None:
    s = progress.summary({"sms": {"delivered": 3, "stopped": 2}}, 0, 10_000, "cancelled")
    assert s["final"] and s["seconds_left"] == 0.0 and s["percent"] == 100.0
    empty = progress.summary({}, 0, None, "sending")
    assert empty["total"] == 0 and empty["percent"] == 100.0 and empty["seconds_left"] == 0.0


# --- the service and the web --------------------------------------------------------

def _subscribers(engine: Engine) -> None:
    from tocsin.subscribers.importer import import_subscribers

    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    for i in range(12):
        lines.append(f"S{i:03d},fr,+324701234{i:02d},person{i}@example.org,"
                     f"{50.66 + (i // 4) * 0.01},{4.52 + (i % 4) * 0.01}")
    assert import_subscribers(engine, ("\n".join(lines) + "\n").encode()).ok


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    from tocsin.core.db import make_engine
    from tocsin.core.migrate import upgrade

    eng = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(eng)
    seed(eng)
    _subscribers(eng)
    return eng


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    with TestClient(create_app(engine, start_worker=False, settings=settings)) as c:
        yield c


def _launch(client: TestClient) -> str:
    log_in(client, "op", PASSWORD, "simulation")
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"texts": {"fr": "Exercice: restez chez vous."}, "channels": ["sms", "email", "cap"],
            "municipality_nis": "25112", "kind": "exercise"}
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    return str(r.json()["campaign_id"])


def _events(client: TestClient, url: str) -> list[tuple[str, dict]]:
    """The server-sent events of ``url`` until the server ends the stream."""
    out: list[tuple[str, dict]] = []
    with client.stream("GET", url, timeout=10) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[len("data: "):])))
    return out


def test_service_counts_and_measures_the_throughput(client: TestClient, engine: Engine) -> None:
    from tocsin.campaigns.monitor import campaign_monitor
    from tocsin.core.db import transaction

    cid = _launch(client)
    with transaction(engine) as s:
        ids = [i for (i,) in s.execute(sa.text(
            "SELECT id FROM delivery WHERE campaign_id = :c AND channel = 'sms' ORDER BY id"),
            {"c": cid})]
        assert len(ids) == 12
        # 6 sent in the last 20 s, 2 sent long ago, 1 failed just now, the rest queued.
        s.execute(sa.text("UPDATE campaign SET launched_at = :t WHERE id = :c"),
                  {"t": NOW - dt.timedelta(minutes=5), "c": cid})
    from tocsin.core.db import table
    from tocsin.dispatch.models import Delivery

    d = table(Delivery)
    with transaction(engine) as s:
        s.execute(d.update().where(d.c.id.in_(ids[:6])).values(
            state="sent", sent_at=NOW - dt.timedelta(seconds=5)))
        s.execute(d.update().where(d.c.id.in_(ids[6:8])).values(
            state="delivered", sent_at=NOW - dt.timedelta(minutes=3)))
        s.execute(d.update().where(d.c.id == ids[8]).values(
            state="failed", final_at=NOW - dt.timedelta(seconds=1), error="invalid number"))
    m = campaign_monitor(engine, cid, None, now=NOW, with_area=True)
    assert m["channels"]["sms"]["states"] == {
        "queued": 3, "in_flight": 0, "sent": 6, "delivered": 2, "failed": 1, "expired": 0,
        "stopped": 0}
    assert m["channels"]["email"]["remaining"] == 12
    assert m["throughput_per_s"] == round(7 / progress.THROUGHPUT_WINDOW_S, 1)
    assert m["seconds_left"] == progress.seconds_left(15, 7 / progress.THROUGHPUT_WINDOW_S)
    assert m["failures"] == [{"channel": "sms", "reason": "invalid number", "count": 1}]
    assert m["area"]["type"] in ("Polygon", "MultiPolygon")
    assert "cap" not in m["channels"]


def test_events_carry_the_counters(client: TestClient) -> None:
    cid = _launch(client)
    events = _events(client, f"/monitor/{cid}/events?max_events=2")
    assert [name for name, _ in events] == ["progress", "progress"]
    data = events[0][1]
    assert data["campaign_id"] == cid and data["status"] == "sending"
    assert data["channels"]["sms"]["states"]["queued"] == 12
    assert data["total"] == 24 and data["final"] is False
    assert "time_left" in data and "throughput_per_s" in data


def test_events_stop_after_the_final_state(client: TestClient, engine: Engine) -> None:
    from tocsin.campaigns.followups import cancel_campaign

    cid = _launch(client)
    cancel_campaign(engine, cid, "op")
    events = _events(client, f"/monitor/{cid}/events")  # no limit: ends because final
    assert len(events) == 1
    assert events[0][1]["final"] is True and events[0][1]["status"] == "cancelled"
    assert events[0][1]["channels"]["sms"]["states"]["stopped"] == 12


def test_pages_show_the_running_campaign(client: TestClient) -> None:
    cid = _launch(client)
    page = client.get("/monitor")
    assert page.status_code == 200 and f'href="/monitor/{cid}"' in page.text
    assert 'http-equiv="refresh"' in page.text  # the no-JavaScript fallback
    one = client.get(f"/monitor/{cid}")
    assert one.status_code == 200
    assert 'aria-live="polite"' in one.text and one.text.count("aria-live") == 1
    assert '<th scope="col" class="num">SMS</th>' in one.text
    assert '<th scope="row">Queued</th>' in one.text
    assert 'data-cell="sms.queued">12<' in one.text
    assert "/static/vendor/leaflet/leaflet.js" in one.text and "unpkg" not in one.text
    assert 'href="/monitor"' in client.get("/").text  # main navigation
    assert f'href="/monitor/{cid}"' in client.get(f"/campaigns/{cid}").text
    large = client.get(f"/monitor/{cid}?large=1")
    assert "/static/monitor-large.css" in large.text
    listed = client.get("/monitor/events?max_events=1")
    assert listed.status_code == 200
    body = listed.text.split("data: ", 1)[1]
    assert [c["campaign_id"] for c in json.loads(body)["campaigns"]] == [cid]


def test_another_authoritys_campaign_is_not_found(client: TestClient) -> None:
    cid = _launch(client)
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
    log_in(client, "wavre", PASSWORD, "simulation")
    assert client.get(f"/monitor/{cid}").status_code == 404
    assert client.get(f"/monitor/{cid}/events?max_events=1").status_code == 404
    assert client.get("/monitor/nope").status_code == 404
    assert cid not in client.get("/monitor").text


def test_list_heading_and_summary_match_an_ended_campaign(client: TestClient,
                                                          engine: Engine) -> None:
    """Fresh-user trial: "Aucune campagne n'est en cours d'envoi." then a cancelled
    campaign listed under "Campagnes en cours"."""
    from tocsin.campaigns.followups import cancel_campaign

    cid = _launch(client)
    cancel_campaign(engine, cid, "op")
    page = client.get("/monitor?lang=fr").text
    assert f'href="/monitor/{cid}"' in page and "Campagnes en cours" not in page
    summary = page[page.index('id="monitor-summary"'):]
    summary = summary[:summary.index("</p>")]
    assert "Aucune campagne n’est en cours d’envoi" in summary or (
        "Aucune campagne n'est en cours d'envoi" in summary)
    listed = page.count("<tr data-campaign=")                      # the cancellation too
    assert listed >= 1 and (f"{listed} campagne s’est terminée" in summary
                            or f"{listed} campagnes se sont terminées" in summary)
