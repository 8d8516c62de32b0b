"""Dispatch at scale (issue 13): streaming resumable fan-out, priority and round-robin
claims, campaign control, shared rate limits, send-time estimates."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tocsin.campaigns.services import CampaignRequest, launch_campaign
from tocsin.core.db import table, transaction, utcnow
from tocsin.dispatch import fanout, queue
from tocsin.dispatch.models import Delivery
from tocsin.subscribers.importer import import_subscribers


def _subscribers(engine, n: int, shared: bool = False) -> None:
    """``n`` subscribers in Beersel (NIS 23003), each with a mobile number and an
    e-mail address; with ``shared`` the last one shares the first one's number."""
    rows = ["subscriber_id,language,mobile,email,lat,lon"]
    for i in range(n):
        lang = ("nl", "fr", "de")[i % 3]
        mobile = f"+3247{i:07d}"
        if shared and i == n - 1:
            mobile = "+32470000000"
        rows.append(f"S{i},{lang},{mobile},p{i}@example.be,{50.748 + i * 1e-5:.6f},4.3000")
    report = import_subscribers(engine, ("\n".join(rows) + "\n").encode())
    assert report.errors == []


def _launch(engine, kind: str = "alert", channels=("sms",)) -> str:
    return launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", kind=kind,
        texts={"nl": "Alarm", "fr": "Alerte"}, channels=list(channels)))


def _deliveries(engine, cid: str) -> list[tuple[str, str, str]]:
    d = table(Delivery)
    with transaction(engine) as s:
        return [tuple(r) for r in s.execute(
            sa.select(d.c.channel, d.c.address, d.c.language)
            .where(d.c.campaign_id == cid).order_by(d.c.id))]


def _campaign(engine, cid: str):
    from tocsin.campaigns.models import Campaign

    with transaction(engine) as s:
        c = s.get(Campaign, cid)
        s.expunge(c)
        return c


def _only_campaign(engine) -> str:
    with transaction(engine) as s:
        return s.scalar(sa.text("SELECT id FROM campaign"))


# ----------------------------------------------------------------------------- fan-out


def test_fan_out_writes_one_delivery_per_contact_point_in_the_recipients_language(any_engine):
    engine = any_engine
    _subscribers(engine, 40, shared=True)
    cid = _launch(engine, channels=("sms", "email"))
    rows = _deliveries(engine, cid)
    sms = [r for r in rows if r[0] == "sms"]
    assert len(sms) == 39 and len({r[1] for r in sms}) == 39  # the shared number once
    assert len([r for r in rows if r[0] == "email"]) == 40
    # The shared number keeps the language of the subscriber imported first (nl);
    # German speakers get the authority's first fallback language with a text.
    assert ("sms", "+32470000000", "nl") in rows
    assert {r[2] for r in rows} == {"nl", "fr"}
    c = _campaign(engine, cid)
    assert c.fanout_done_at is not None and c.fanout_count == 79 and c.status == "sending"


def test_the_channels_a_citizen_chose_on_the_portal_are_the_only_ones_used(any_engine):
    """Issue 10 (F7): a citizen who chose e-mail only gets no SMS; one who chose SMS only
    gets no e-mail; subscribers without a portal profile (imported) get both. The
    estimate counts the same people as the fan-out writes."""
    from tocsin.campaigns.services import estimate_campaign
    from tocsin.subscribers.models import Subscriber
    from tocsin.subscribers.portal_models import SubscriberProfile

    engine = any_engine
    _subscribers(engine, 6)
    with transaction(engine) as s:
        ids = dict(s.execute(sa.select(Subscriber.external_id, Subscriber.id)).all())
        s.add(SubscriberProfile(subscriber_id=ids["S0"], channels="email",
                                accessibility="none", updated_at=utcnow()))
        s.add(SubscriberProfile(subscriber_id=ids["S1"], channels="sms,voice",
                                accessibility="none", updated_at=utcnow()))
    request = CampaignRequest(authority_id="23003", municipality_nis="23003", kind="alert",
                              texts={"nl": "Alarm", "fr": "Alerte"},
                              channels=["sms", "email"])
    estimate = estimate_campaign(engine, request)
    assert estimate["channels"]["sms"]["registered"] == 5
    assert estimate["channels"]["email"]["registered"] == 5
    rows = _deliveries(engine, _launch(engine, channels=("sms", "email")))
    addresses = {(r[0], r[1]) for r in rows}
    assert ("sms", "+32470000000") not in addresses and ("email", "p0@example.be") in addresses
    assert ("sms", "+32470000001") in addresses and ("email", "p1@example.be") not in addresses
    assert len(rows) == 10


def test_first_batches_are_claimable_while_the_fan_out_goes_on(any_engine, monkeypatch):
    """The first SMS can leave while later batches are still being resolved."""
    engine = any_engine
    _subscribers(engine, 30)
    monkeypatch.setattr(fanout, "BATCH_SUBSCRIBERS", 10)
    seen: list[int] = []
    real = fanout.subscriber_batches

    def claim_between_batches(*args, **kwargs):
        for i, ids in enumerate(real(*args, **kwargs)):
            if i == 1:  # the first batch is committed: a worker can claim it already
                c = _campaign(engine, ids and _only_campaign(engine))
                assert c.fanout_done_at is None
                seen.extend(x.id for x in queue.claim(engine, "w", "sms", "simulation", 100, 30))
            yield ids

    monkeypatch.setattr(fanout, "subscriber_batches", claim_between_batches)
    cid = _launch(engine)
    assert 0 < len(seen) < 30
    assert len(_deliveries(engine, cid)) == 30


def test_a_crashed_fan_out_is_continued_by_another_worker(any_engine, monkeypatch):
    """Accepted means sent: a fan-out whose process died is resumed from its cursor,
    no delivery written twice, none missing."""
    from tocsin.campaigns import launch as launch_module

    engine = any_engine
    _subscribers(engine, 25, shared=True)
    monkeypatch.setattr(fanout, "BATCH_SUBSCRIBERS", 10)
    real = fanout._insert_batch
    calls = {"n": 0}

    def crash_on_second_batch(s, plan, ids):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("process killed")
        return real(s, plan, ids)

    monkeypatch.setattr(fanout, "_insert_batch", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        _launch(engine, channels=("sms", "email"))
    [cid] = [c for c in fanout.pending(engine, now=utcnow() + dt.timedelta(minutes=1))]
    c = _campaign(engine, cid)
    assert c.status == "sending" and c.fanout_done_at is None and c.fanout_count == 20
    # The lease is alive: nobody else takes it yet.
    assert fanout.resume_pending(engine, "worker-2") == 0
    with transaction(engine) as s:
        s.execute(sa.text("UPDATE campaign SET fanout_lease_until = :t WHERE id = :c"),
                  {"t": utcnow() - dt.timedelta(seconds=1), "c": cid})
    monkeypatch.setattr(fanout, "_insert_batch", real)
    assert fanout.resume_pending(engine, "worker-2") == 1
    rows = _deliveries(engine, cid)
    assert len(rows) == 24 + 25 and len(set(rows)) == len(rows)
    c = _campaign(engine, cid)
    assert c.fanout_done_at is not None and c.fanout_count == 49
    assert launch_module is not None


def test_a_campaign_is_not_finished_before_its_fan_out_is(any_engine, monkeypatch):
    from tocsin.channels.base import SendOutcome

    engine = any_engine
    _subscribers(engine, 20)
    monkeypatch.setattr(fanout, "BATCH_SUBSCRIBERS", 10)
    real = fanout.subscriber_batches

    def send_all_between_batches(*args, **kwargs):
        for i, ids in enumerate(real(*args, **kwargs)):
            if i == 1:
                claimed = queue.claim(engine, "w", "email", "simulation", 100, 30)
                queue.record_outcomes(engine, "email",
                                      [SendOutcome(c.id, "sent") for c in claimed])
                assert _campaign(engine, _only_campaign(engine)).status == "sending"
            yield ids

    monkeypatch.setattr(fanout, "subscriber_batches", send_all_between_batches)
    cid = _launch(engine, channels=("email",))
    assert _campaign(engine, cid).status == "sending"
    claimed = queue.claim(engine, "w", "email", "simulation", 100, 30)
    assert len(claimed) == 10
    queue.record_outcomes(engine, "email", [SendOutcome(c.id, "sent") for c in claimed])
    assert _campaign(engine, cid).status == "finished"


# ----------------------------------------------------------------------------- claims


def test_priority_first_then_equal_priorities_take_turns(any_engine):
    """A national test launched first never starves an alert, nor a test launched
    after it: an alert goes first, then the two tests alternate batch by batch."""
    engine = any_engine
    _subscribers(engine, 12)
    national_test = _launch(engine, kind="test")
    local_test = _launch(engine, kind="test")
    alert = _launch(engine, kind="alert")
    order = []
    while batch := queue.claim(engine, "w", "sms", "simulation", 4, 30):
        assert len({c.campaign_id for c in batch}) == 1
        order.append(batch[0].campaign_id)
    assert order[:3] == [alert] * 3
    tests = order[3:]
    assert sorted(tests) == sorted([national_test] * 3 + [local_test] * 3)
    assert all(a != b for a, b in zip(tests, tests[1:], strict=False))


def test_paused_and_stopped_campaigns_are_not_claimed(any_engine):
    engine = any_engine
    _subscribers(engine, 3)
    cid = _launch(engine)
    with transaction(engine) as s:
        s.execute(sa.text("UPDATE campaign SET status = 'paused' WHERE id = :c"), {"c": cid})
    assert queue.claim(engine, "w", "sms", "simulation", 10, 30) == []


# ----------------------------------------------------------------------------- control


def test_pause_resume_and_stop_a_running_campaign(any_engine):
    from tocsin.campaigns.services import CampaignInputError, control_campaign

    engine = any_engine
    _subscribers(engine, 10)
    cid = _launch(engine)
    first = queue.claim(engine, "w", "sms", "simulation", 3, 30)
    assert len(first) == 3
    assert control_campaign(engine, cid, "pause")["status"] == "paused"
    assert queue.claim(engine, "w", "sms", "simulation", 10, 30) == []
    with pytest.raises(CampaignInputError) as exc:
        control_campaign(engine, cid, "pause")
    assert exc.value.field == "campaign_id" and "paused" in exc.value.reason
    assert control_campaign(engine, cid, "resume")["status"] == "sending"
    assert len(queue.claim(engine, "w", "sms", "simulation", 2, 30)) == 2
    result = control_campaign(engine, cid, "stop")
    assert result == {"campaign_id": cid, "status": "stopped", "status_was": "sending",
                      "stopped": 5}
    assert queue.claim(engine, "w", "sms", "simulation", 10, 30) == []
    d = table(Delivery)
    with transaction(engine) as s:
        states = dict(s.execute(sa.select(d.c.state, sa.func.count())
                                .where(d.c.campaign_id == cid).group_by(d.c.state)).all())
    assert states == {"in_flight": 5, "stopped": 5}
    with pytest.raises(CampaignInputError):
        control_campaign(engine, cid, "resume")
    with pytest.raises(CampaignInputError) as exc:
        control_campaign(engine, cid, "restart")
    assert exc.value.field == "action"


def test_a_retry_after_a_stop_is_stopped_too(engine):
    from tocsin.campaigns.control import stop_leftovers
    from tocsin.campaigns.services import control_campaign
    from tocsin.channels.base import SendOutcome

    _subscribers(engine, 2)
    cid = _launch(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 10, 30)
    control_campaign(engine, cid, "stop")
    queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "retry", error="busy")
                                          for c in claimed], {c.id: 1 for c in claimed})
    assert stop_leftovers(engine) == 2
    assert _campaign(engine, cid).status == "stopped"


def test_progress_counts_per_channel_and_state(any_engine):
    from tocsin.campaigns.services import campaign_progress

    engine = any_engine
    _subscribers(engine, 4)
    cid = _launch(engine, channels=("sms", "email"))
    queue.claim(engine, "w", "email", "simulation", 1, 30)
    p = campaign_progress(engine, cid)
    assert p["status"] == "sending" and p["fanout_done"] and p["fanned_out"] == 8
    assert p["channels"]["sms"]["queued"] == 4 and p["channels"]["sms"]["total"] == 4
    assert p["channels"]["email"]["in_flight"] == 1 and p["channels"]["email"]["queued"] == 3


# ----------------------------------------------------------------------------- rates


def test_a_shared_bucket_grants_no_more_than_the_rate_across_workers(any_engine):
    from tocsin.dispatch.ratelimit import take

    engine = any_engine
    t0 = utcnow()
    # Full at first use (burst = rate / 5 = 20), then nothing until it refills.
    assert take(engine, "smpp:a", 100, 15, now=t0) == 15
    assert take(engine, "smpp:a", 100, 15, now=t0) == 5
    assert take(engine, "smpp:a", 100, 15, now=t0) == 0
    # 0.1 s later: 10 more, whoever asks (another worker, same row).
    assert take(engine, "smpp:a", 100, 15, now=t0 + dt.timedelta(seconds=0.1)) == 10
    assert take(engine, "smpp:b", 100, 15, now=t0) == 15  # another account, its own bucket


async def test_workers_sharing_an_account_stay_under_its_rate(any_engine):
    import asyncio
    import time

    from tocsin.dispatch.ratelimit import SharedRateLimiter

    engine = any_engine
    limiters = [SharedRateLimiter(engine, "smpp:shared", 200, block=20) for _ in range(3)]
    sent = 0
    start = time.monotonic()

    async def spend(limiter):
        nonlocal sent
        while time.monotonic() - start < 1.0:
            await limiter.acquire()
            sent += 1

    await asyncio.gather(*(spend(x) for x in limiters))
    elapsed = time.monotonic() - start
    # At most the burst (40) plus one block per worker above rate × time.
    assert sent <= 200 * elapsed + 40 + 3 * 20


def test_default_smpp_account_meets_the_reference_floor():
    from tocsin.channels.smpp import parse_smpp_urls

    [account] = parse_smpp_urls("smpp://tocsin:secret@127.0.0.1:2775")
    assert account.tps >= 500 and account.binds * account.window >= 100


# ----------------------------------------------------------------------------- estimates


def test_send_time_is_said_per_channel_at_the_configured_rates(monkeypatch):
    from tocsin.campaigns.control import send_time, send_times
    from tocsin.core.settings import get_settings

    assert send_time(412_000, 5000)["text"] == "412,000 ≈ 1 min 23 s at 5,000/s"
    assert send_time(0, 5000)["seconds"] == 0
    monkeypatch.setenv("TOCSIN_WORKERS", "3")
    monkeypatch.setenv("TOCSIN_WORKER_SMS_PER_SECOND", "2000")
    monkeypatch.setenv("TOCSIN_SMPP_URL", "smpp://a:b@127.0.0.1:2775?tps=5000")
    get_settings.cache_clear()
    times = send_times({"sms": 412_000, "email": 10}, get_settings())
    assert times["sms"]["per_second"] == 5000  # the account's tps bounds 3 × 2,000
    assert times["email"]["per_second"] == 3 * get_settings().worker_email_per_second


def test_the_estimate_gives_each_channels_send_time(engine):
    from tocsin.campaigns.services import estimate_campaign

    _subscribers(engine, 5)
    est = estimate_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": "Alarm"},
        channels=["sms", "email"]))
    assert est["send_time"]["sms"]["count"] == 5
    assert est["send_time"]["sms"]["text"].startswith("5 ≈ 1 s at ")



# ----------------------------------------------------------------------------- web


def _web(engine, tmp_path):
    from fastapi.testclient import TestClient

    from tocsin.authorities import services as authorities
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    authorities.create_user(engine, "beersel", "correct horse battery staple", "23003")
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    return TestClient(create_app(engine, start_worker=False, settings=settings))


def test_the_campaign_page_pauses_resumes_and_stops_and_the_api_gives_progress(
        any_engine, tmp_path):
    from weblogin import csrf_of, log_in

    engine = any_engine
    _subscribers(engine, 6)
    cid = _launch(engine)
    with _web(engine, tmp_path) as client:
        assert log_in(client, "beersel", "correct horse battery staple").status_code == 303
        page = client.get(f"/campaigns/{cid}").text
        assert 'id="control-pause"' in page and 'id="control-resume"' not in page
        token = csrf_of(page)
        r = client.post(f"/campaigns/{cid}/control", data={"action": "pause",
                                                           "csrf_token": token},
                        follow_redirects=False)
        assert r.status_code == 303
        page = client.get(f"/campaigns/{cid}").text
        assert 'id="control-resume"' in page and 'id="control-pause"' not in page
        r = client.post(f"/api/campaigns/{cid}/pause", headers={"X-CSRF-Token": token})
        assert r.status_code == 422 and r.json()["error"]["field"] == "campaign_id"
        r = client.post(f"/api/campaigns/{cid}/resume", headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.json()["status"] == "sending"
        r = client.get(f"/api/v1/campaigns/{cid}/progress")
        assert r.status_code == 200
        assert r.json()["channels"]["sms"]["queued"] == 6
        r = client.post(f"/api/campaigns/{cid}/stop", headers={"X-CSRF-Token": token})
        assert r.json() == {"campaign_id": cid, "status": "stopped", "status_was": "sending",
                            "stopped": 6}
        assert client.get(f"/api/v1/campaigns/{cid}/progress").json()["channels"]["sms"][
            "stopped"] == 6
        assert client.get("/api/v1/campaigns/nope/progress").status_code == 404
        page = client.get(f"/campaigns/{cid}").text
        assert 'id="control-stop"' not in page


def test_metrics_give_deliveries_by_state_and_errors_by_code(any_engine, tmp_path):
    from tocsin.channels.base import SendOutcome

    engine = any_engine
    _subscribers(engine, 4)
    _launch(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 2, 30)
    queue.record_outcomes(engine, "sms", [
        SendOutcome(claimed[0].id, "sent", message_ids=["m1"]),
        SendOutcome(claimed[1].id, "failed", error="submit_sm: ESME_RINVDSTADR (0x0000000B)")])
    with _web(engine, tmp_path) as client:
        r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'tocsin_deliveries{channel="sms",state="queued"} 2.0' in text
    assert 'tocsin_deliveries{channel="sms",state="sent"} 1.0' in text
    assert 'tocsin_provider_errors{channel="sms",code="ESME_RINVDSTADR"} 1.0' in text
    assert 'tocsin_throughput_per_second{channel="sms"}' in text
    assert 'tocsin_campaigns{status="sending"} 1.0' in text


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request):
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


def test_range_walk_reads_the_same_subscribers_as_the_sorted_query(any_engine, monkeypatch):
    """A national area is read by subscriber id ranges (no sort of every match before
    the first batch): the same ids, ascending, each once, resumable from a cursor, as
    the sorted spatial query gives (GiST on PostgreSQL, R*Tree on SQLite); a small area
    keeps the sorted query."""
    from shapely.geometry import box

    from tocsin.subscribers.demo import generate_demo_population

    pg_engine = any_engine
    generate_demo_population(pg_engine, 1_500)
    monkeypatch.setattr(fanout, "RANGE_SPAN", 97)   # many ranges, some of them empty
    belgium = box(2.5, 49.45, 6.45, 51.55)
    brussels = box(4.24, 50.76, 4.48, 50.92)
    assert fanout.approx_km2(belgium) > fanout.RANGE_WALK_KM2 > fanout.approx_km2(brussels)
    with pg_engine.connect() as conn:
        for area in (belgium, brussels):
            for after in (0, 700):
                walked = [i for b in fanout.subscriber_batches(conn, area, after, size=40,
                                                               range_walk=True) for i in b]
                sorted_ = [i for b in fanout.subscriber_batches(conn, area, after, size=40,
                                                                range_walk=False) for i in b]
                assert walked == sorted_ and walked == sorted(set(walked))
                assert walked and walked[0] > after
        national = [i for b in fanout.subscriber_batches(conn, belgium) for i in b]
        everyone = conn.execute(sa.text("SELECT count(DISTINCT subscriber_id) FROM address")
                                ).scalar_one()
    assert len(national) == everyone
