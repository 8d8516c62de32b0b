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


def test_retry_backs_off_and_gives_up_when_validity_ends(engine):
    # Issue 13: a retry no longer gives up after MAX_ATTEMPTS (8 attempts in ~4 min lost
    # recipients) but when the message's validity ends; it is then ``expired``.
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
        assert s.get(Delivery, claimed[0].id).state == "queued"  # still valid: retried
        s.execute(sa.text("UPDATE campaign SET expires_at = :t"),
                  {"t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)})
        s.execute(sa.update(table(Delivery)).where(table(Delivery).c.id == claimed[0].id)
                  .values(state="in_flight"))
    queue.record_outcomes(engine, "sms", [SendOutcome(claimed[0].id, "retry", error="busy")],
                          {claimed[0].id: queue.MAX_ATTEMPTS + 1})
    with transaction(engine) as s:
        row = s.get(Delivery, claimed[0].id)
        assert row.state == "expired" and row.error.startswith("abandoned after 9 attempts")


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


# ----------------------------------------------------------------------------- issue 7.13


def _stored_status(engine, campaign_id: str) -> str:
    from tocsin.campaigns.models import Campaign

    with transaction(engine) as s:
        return s.scalar(sa.select(Campaign.status).where(Campaign.id == campaign_id))


def _email_only_subscribers(engine) -> None:
    assert import_subscribers(engine, (
        b"subscriber_id,language,mobile,email,lat,lon\n"
        b"E1,nl,,e1@example.org,50.7480,4.3000\n"
        b"E2,fr,,e2@example.org,50.7500,4.3050\n")).errors == []


def _email_campaign(engine) -> str:
    _email_only_subscribers(engine)
    return launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": "Alarm", "fr": "Alerte"},
        channels=["email"]))


def test_the_last_outcome_finishes_the_campaign_without_a_report_read(any_engine):
    """Issue 7.13: the worker's writes finish a campaign, not the first read of its report."""
    from tocsin.channels.base import ReceiptEvent, SendOutcome

    engine = any_engine
    mail = _email_campaign(engine)
    claimed = queue.claim(engine, "w", "email", "simulation", 10, 30)
    queue.record_outcomes(engine, "email", [SendOutcome(claimed[0].id, "sent")])
    assert _stored_status(engine, mail) == "sending"  # one e-mail still in flight
    queue.record_outcomes(engine, "email", [SendOutcome(claimed[1].id, "failed",
                                                        error="550 no such user")])
    assert _stored_status(engine, mail) == "finished"  # e-mail ends at sent (SPEC F26)

    sms = _campaign(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 10, 30, sms)
    queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "sent", message_ids=[f"m{c.id}"])
                                          for c in claimed])
    assert _stored_status(engine, sms) == "sending"  # waiting for the receipts
    queue.store_receipts(engine, [ReceiptEvent("sms", f"m{c.id}", "DELIVRD")
                                  for c in claimed[:-1]])
    queue.apply_receipts(engine)
    assert _stored_status(engine, sms) == "sending"
    queue.store_receipts(engine, [ReceiptEvent("sms", f"m{claimed[-1].id}", "UNDELIV")])
    queue.apply_receipts(engine)
    assert _stored_status(engine, sms) == "finished"


def test_sms_without_receipts_finish_when_the_grace_period_ends(engine):
    from tocsin.channels.base import SendOutcome

    cid = _campaign(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 10, 30, cid)
    queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "sent", message_ids=[f"m{c.id}"])
                                          for c in claimed])
    now = dt.datetime.now(dt.UTC)
    assert queue.finish_campaigns(engine, now=now) == []
    assert queue.finish_campaigns(engine, now=now + dt.timedelta(
        seconds=queue.RECEIPT_GRACE_SECONDS - 5)) == []
    assert _stored_status(engine, cid) == "sending"
    later = now + dt.timedelta(seconds=queue.RECEIPT_GRACE_SECONDS + 1)
    assert queue.finish_campaigns(engine, now=later) == [cid]
    assert _stored_status(engine, cid) == "finished"
    # what is still queued is never finished, however old
    other = launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": "Alarm"}, channels=["sms"]))
    assert queue.finish_campaigns(engine, now=later + dt.timedelta(days=1)) == []
    assert _stored_status(engine, other) == "sending"


def test_reading_reports_and_lists_never_writes(any_engine):
    """campaign_report and list_campaigns issue no INSERT/UPDATE/DELETE, even for a
    campaign whose deliveries are all final but whose status says sending."""
    from tocsin.campaigns.models import Campaign
    from tocsin.campaigns.services import list_campaigns

    engine = any_engine
    cid = _campaign(engine)
    with transaction(engine) as s:  # every delivery final, as a crashed worker leaves it
        s.execute(sa.update(table(Delivery)).values(state="delivered"))
    writes: list[str] = []

    def spy(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        report = campaign_report(engine, cid)
        rows = list_campaigns(engine, "23003", "simulation")
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)
    assert writes == []
    assert report["status"] == "sending" == rows[0]["status"]  # what is stored, unchanged
    with transaction(engine) as s:
        assert s.get(Campaign, cid).status == "sending"


# ----------------------------------------------------------------------------- issue 7.14


class _CountingSender:
    """A provider that counts the sessions opened and accepts every message."""

    def __init__(self, channel: str) -> None:
        self.channel, self.name, self.starts, self.connected = channel, "counting", 0, False

    async def start(self) -> None:
        self.starts += 1
        self.connected = True

    async def send(self, messages):  # noqa: ANN001, ANN201
        from tocsin.channels.base import SendOutcome

        return [SendOutcome(m.delivery_id, "sent") for m in messages]

    async def close(self) -> None:
        self.connected = False


async def test_a_channel_with_nothing_to_send_opens_no_provider_session(engine):
    """Issue 7.14: e-mail only reaches E1/E2 (no mobile): no SMPP bind for the SMS."""
    from tocsin.campaigns.services import estimate_campaign

    req = CampaignRequest(authority_id="23003", municipality_nis="23003",
                          texts={"nl": "Alarm", "fr": "Alerte"}, channels=["sms", "email"])
    await asyncio.to_thread(_email_only_subscribers, engine)
    cid = await asyncio.to_thread(launch_campaign, engine, req)
    senders = {"sms": _CountingSender("sms"), "email": _CountingSender("email")}
    unfinished = await send_campaign(
        engine, cid, {("sms", "simulation"): lambda rb: senders["sms"],
                      ("email", "simulation"): lambda rb: senders["email"]},
        receipt_timeout=1, send_timeout=5)
    assert unfinished == []
    assert senders["sms"].starts == 0
    assert senders["email"].starts == 1
    assert _stored_status(engine, cid) == "finished"
    # and the estimate said so before the launch
    est = await asyncio.to_thread(estimate_campaign, engine, req)
    nobody = [w for w in est["warnings"] if w["code"] == "no_recipients"]
    assert [(w["channel"], w["field"]) for w in nobody] == [("sms", "channels.sms")]
    assert "No subscriber will receive an SMS" in nobody[0]["message"]


async def test_a_campaign_that_reaches_nobody_opens_no_smpp_bind(engine):
    cid = await asyncio.to_thread(launch_campaign, engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": "Alarm"},
        channels=["sms"]))
    assert await asyncio.to_thread(_stored_status, engine, cid) == "finished"
    smsc = SmscSimulator(receipt_delay=0.01)
    await smsc.start()
    starts: list[int] = []

    class CountingSmpp(SmppSender):
        async def start(self) -> None:
            starts.append(1)
            await super().start()

    try:
        account = SmppAccount(host="127.0.0.1", port=smsc.port, system_id="tocsin")
        assert await send_campaign(
            engine, cid, {("sms", "simulation"): lambda rb: CountingSmpp([account], rb.add)},
            receipt_timeout=1, send_timeout=2) == []
        assert smsc.bound_sessions == 0
    finally:
        await smsc.stop()
    assert starts == []


def test_final_time_is_never_before_the_sent_time(any_engine):
    """Fresh-user trial: report.csv said "Final at" earlier than "Sent at". An SMPP
    receipt's done date has minute precision (YYMMDDhhmm) and the SMSC's clock: a
    delivery is final at that time, but never before it was sent."""
    import sqlalchemy as sa

    from tocsin.channels.base import ReceiptEvent, SendOutcome
    from tocsin.core.db import read_transaction
    from tocsin.dispatch.models import Delivery

    engine = any_engine
    sms = _campaign(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 10, 30, sms)
    queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "sent", message_ids=[f"m{c.id}"])
                                          for c in claimed])
    minute = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # the done date
    queue.store_receipts(engine, [ReceiptEvent("sms", f"m{c.id}", stat, done_at=minute)
                                  for c, stat in zip(claimed, ["DELIVRD", "UNDELIV"] * 50,
                                                     strict=False)])
    queue.apply_receipts(engine)
    with read_transaction(engine) as s:
        rows = s.execute(sa.select(Delivery.sent_at, Delivery.final_at).where(
            Delivery.campaign_id == sms)).all()
    assert rows and all(final is not None and final >= sent for sent, final in rows)
