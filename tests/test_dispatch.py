"""The delivery queue: exclusive claims, lease expiry, failed receipts reported with reasons."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import sqlalchemy as sa

from tocsin.campaigns.services import CampaignRequest, campaign_report, launch_campaign
from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.smpp import SmppAccount
from tocsin.channels.sms import SmppSender
from tocsin.core.db import table, transaction
from tocsin.dispatch import queue
from tocsin.dispatch.models import Delivery
from tocsin.dispatch.services import send_campaign
from tocsin.subscribers.importer import import_subscribers

CSV = ("subscriber_id,language,mobile,email,lat,lon\n"
       "S1,nl,+32470000001,,50.7480,4.3000\n"
       "S2,fr,+32470000002,,50.7500,4.3050\n"
       "S3,nl,+32470000003,,50.7510,4.3010\n")


def _campaign(engine) -> str:
    assert import_subscribers(engine, CSV.encode()).errors == []
    return launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": "Alarm", "fr": "Alerte"},
        channels=["sms"]))


def test_claims_never_overlap_and_expired_leases_return_to_the_queue(any_engine):
    engine = any_engine
    cid = _campaign(engine)
    first = queue.claim(engine, "w1", "sms", "simulation", 2, lease_seconds=0.2)
    second = queue.claim(engine, "w2", "sms", "simulation", 5, lease_seconds=30)
    assert len(first) == 2 and len(second) == 1
    assert not {c.id for c in first} & {c.id for c in second}
    assert queue.claim(engine, "w3", "sms", "simulation", 5, lease_seconds=30) == []
    time.sleep(0.3)
    assert queue.sweep_expired_leases(engine) == 2  # w1 "died"; w2's lease is alive
    again = queue.claim(engine, "w3", "sms", "simulation", 5, lease_seconds=30, campaign_id=cid)
    assert sorted(c.id for c in again) == sorted(c.id for c in first)
    assert all(c.attempts == 2 for c in again)


def test_retry_backs_off_and_gives_up_after_max_attempts(engine):
    from tocsin.channels.base import SendOutcome

    _campaign(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 1, lease_seconds=30)
    queue.record_outcomes(engine, "sms", [SendOutcome(claimed[0].id, "retry", error="busy")],
                          {claimed[0].id: 1})
    with transaction(engine) as s:
        row = s.get(Delivery, claimed[0].id)
        assert row.state == "queued" and row.not_before > dt.datetime.now(dt.UTC)
    with transaction(engine) as s:
        s.execute(sa.update(table(Delivery)).where(table(Delivery).c.id == claimed[0].id)
                  .values(state="in_flight"))
    queue.record_outcomes(engine, "sms", [SendOutcome(claimed[0].id, "retry", error="busy")],
                          {claimed[0].id: queue.MAX_ATTEMPTS})
    with transaction(engine) as s:
        assert s.get(Delivery, claimed[0].id).state == "failed"


async def test_undelivered_receipts_are_reported_with_their_reason(engine):
    cid = await asyncio.to_thread(_campaign, engine)
    smsc = SmscSimulator(fail_destinations={"+32470000002"}, receipt_delay=0.01)
    await smsc.start()
    try:
        account = SmppAccount(host="127.0.0.1", port=smsc.port, system_id="tocsin")
        unfinished = await send_campaign(
            engine, cid, {("sms", "simulation"): lambda rb: SmppSender([account], rb.add)},
            receipt_timeout=10, send_timeout=10)
    finally:
        await smsc.stop()
    assert unfinished == []
    report = await asyncio.to_thread(campaign_report, engine, cid)
    assert report["channels"]["sms"]["by_status"] == {"delivered": 2, "failed": 1}
    assert report["failed"] == 1
    assert report["channels"]["sms"]["failure_reasons"] == {"receipt stat:UNDELIV": 1}


@pytest.mark.postgres
def test_heartbeat_and_sweeper_skip_rows_being_recorded(pg_engine):
    # The PostgreSQL benchmark deadlocked when the heartbeat (all of a worker's rows)
    # and the recording of outcomes (some rows) locked rows in different orders.
    import threading

    engine = pg_engine
    _campaign(engine)
    claimed = queue.claim(engine, "w1", "sms", "simulation", 3, lease_seconds=30)
    busy, others = claimed[0].id, [c.id for c in claimed[1:]]
    d = table(Delivery)
    locked, release = threading.Event(), threading.Event()

    def recorder() -> None:  # holds a row lock, as record_outcomes does while writing
        with transaction(engine) as s:
            s.execute(sa.select(d.c.id).where(d.c.id == busy).with_for_update())
            locked.set()
            release.wait(10)

    with transaction(engine) as s:  # every lease has expired (the worker hangs)
        s.execute(sa.update(d).where(d.c.id.in_([busy, *others]))
                  .values(lease_until=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)))
    t = threading.Thread(target=recorder)
    t.start()
    try:
        assert locked.wait(5)
        started = time.perf_counter()
        assert queue.sweep_expired_leases(engine) == 2  # the locked row is left to its worker
        assert queue.renew_leases(engine, "w1", 30) == 0  # only the locked one is in flight
        assert time.perf_counter() - started < 2.0  # neither waited for the lock
    finally:
        release.set()
        t.join()
