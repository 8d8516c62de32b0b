"""Faults a probe found (issue 13): repeated SMSC ids, transient errors, lost receipts,
reconnects, validity, submissions counted. Real SMPP sessions against the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import sqlalchemy as sa

from tocsin.campaigns.services import CampaignRequest, campaign_report, launch_campaign
from tocsin.channels.base import SendOutcome
from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.smpp import SmppAccount, SmppClient
from tocsin.channels.sms import SmppSender
from tocsin.core.db import table, transaction
from tocsin.dispatch import queue
from tocsin.dispatch.models import Delivery
from tocsin.dispatch.services import send_campaign
from tocsin.subscribers.importer import import_subscribers

N = 30
CSV = "subscriber_id,language,mobile,email,lat,lon\n" + "".join(
    f"S{i},nl,+3247{i:07d},s{i}@example.org,50.7480,4.3000\n" for i in range(1, N + 1))


def _launch(engine, channels=("sms",), **extra) -> str:
    with transaction(engine) as s:
        seeded = s.scalar(sa.text("SELECT count(*) FROM subscriber"))
    if not seeded:
        assert import_subscribers(engine, CSV.encode()).errors == []
    return launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": "Alarm"},
        channels=list(channels), **extra))


def _states(engine, cid: str) -> dict[str, int]:
    d = table(Delivery)
    with transaction(engine) as s:
        return dict(s.execute(sa.select(d.c.state, sa.func.count())
                              .where(d.c.campaign_id == cid).group_by(d.c.state)).all())


async def _send(engine, cid, smsc: SmscSimulator, **account) -> list[str]:
    acc = SmppAccount(host="127.0.0.1", port=smsc.port, system_id="tocsin", **account)
    return await send_campaign(
        engine, cid, {("sms", "simulation"): lambda rb: SmppSender([acc], rb.add)},
        receipt_timeout=10, send_timeout=30)


async def test_message_ids_repeated_after_an_smsc_restart_lose_no_outcome(any_engine):
    # The SMSC restarts and hands out the same ids again: the second campaign's
    # outcomes must be written and its receipts applied to its own deliveries.
    engine = any_engine
    first = await asyncio.to_thread(_launch, engine)
    async with SmscSimulator(id_prefix="AB", receipt_delay=0.01) as smsc:
        assert await _send(engine, first, smsc) == []
    second = await asyncio.to_thread(_launch, engine)
    started = time.monotonic()
    async with SmscSimulator(id_prefix="AB", receipt_delay=0.01) as smsc:
        assert await _send(engine, second, smsc) == []
        assert len(smsc.messages) == N  # nothing sent twice
    assert time.monotonic() - started < 15
    assert _states(engine, first) == {"delivered": N}
    assert _states(engine, second) == {"delivered": N}


async def test_receipt_with_a_decimal_id_in_its_text_finds_its_delivery(engine):
    cid = await asyncio.to_thread(_launch, engine)
    async with SmscSimulator(receipt_delay=0.01, decimal_receipt_ids=True) as smsc:
        assert await _send(engine, cid, smsc) == []
    assert _states(engine, cid) == {"delivered": N}


def test_a_receipt_id_of_digits_prefers_its_own_submission_to_its_decimal_reading(engine):
    # An SMSC with hexadecimal ids (the npm `smpp` peer of `make bench`) hands out "123"
    # and, later, "7B" (= decimal 123). The receipt for "123" must settle the submission
    # "123", never "7B": found by bench_peers.py, where 223 of 5,000 SMS stayed `sent`.
    from tocsin.channels.base import ReceiptEvent

    _launch(engine)
    first, second, third = queue.claim(engine, "w", "sms", "simulation", 3, lease_seconds=30)
    acct = "tocsin@127.0.0.1:2775"
    for c, mid in ((first, "123"), (second, "7B")):
        queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "sent", (mid,), account=acct)])
    queue.store_receipts(engine, [ReceiptEvent("sms", "123", "DELIVRD", account=acct)])
    assert queue.apply_receipts(engine) == 1
    d = table(Delivery)
    with transaction(engine) as s:
        states = dict(s.execute(sa.select(d.c.id, d.c.state)
                                .where(d.c.id.in_([first.id, second.id]))).all())
    assert states == {first.id: "delivered", second.id: "sent"}
    # Named by the receipted_message_id TLV, "7B" is never read as decimal either.
    queue.record_outcomes(engine, "sms", [SendOutcome(third.id, "sent", ("291",),
                                                      account=acct)])
    queue.store_receipts(engine, [ReceiptEvent("sms", "291", "DELIVRD", account=acct,
                                               extra={"id_source": "tlv"})])
    assert queue.apply_receipts(engine) == 1
    with transaction(engine) as s:
        assert s.scalar(sa.select(d.c.state).where(d.c.id == third.id)) == "delivered"


async def test_transient_smsc_errors_are_retried_until_sent(engine, monkeypatch):
    # ESME_RSYSERR is a system error of the SMSC (SMPP 3.4 §5.1.3): not the message's
    # fault, so it is submitted again, not failed.
    monkeypatch.setattr(queue, "RETRY_BASE_SECONDS", 0.05)
    cid = await asyncio.to_thread(_launch, engine)
    async with SmscSimulator(receipt_delay=0.01, error_every=7) as smsc:
        assert await _send(engine, cid, smsc) == []
        assert smsc.errors >= 4
    assert _states(engine, cid) == {"delivered": N}


async def test_throttling_slows_down_without_failing(engine):
    cid = await asyncio.to_thread(_launch, engine)
    async with SmscSimulator(receipt_delay=0.01, throttle_every=3) as smsc:
        assert await _send(engine, cid, smsc) == []
        assert smsc.throttled >= 10
    assert _states(engine, cid) == {"delivered": N}
    d = table(Delivery)
    with transaction(engine) as s:  # throttled submits are not the message's attempts
        assert s.scalar(sa.select(sa.func.max(d.c.attempts)).where(d.c.campaign_id == cid)) == 1


def test_transient_failures_are_retried_until_validity_ends_then_reported(engine):
    cid = _launch(engine, channels=("email",))
    claimed = queue.claim(engine, "w", "email", "simulation", 2, lease_seconds=30)
    a, b = claimed[0].id, claimed[1].id
    far = {a: queue.MAX_ATTEMPTS + 5, b: queue.MAX_ATTEMPTS + 5}
    # Many attempts, but the message is still valid: queued again, not failed.
    queue.record_outcomes(engine, "email", [SendOutcome(a, "retry", error="SMTP 421: busy")],
                          far)
    d = table(Delivery)
    with transaction(engine) as s:
        assert s.scalar(sa.select(d.c.state).where(d.c.id == a)) == "queued"
        # The validity of b's campaign has ended.
        s.execute(sa.text("UPDATE campaign SET expires_at = :t WHERE id = :c"),
                  {"t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "c": cid})
    queue.record_outcomes(engine, "email", [SendOutcome(b, "retry", error="SMTP 421: busy")],
                          far)
    with transaction(engine) as s:
        state, error = s.execute(sa.select(d.c.state, d.c.error).where(d.c.id == b)).one()
    assert state == "expired"
    assert error.startswith("abandoned") and "SMTP 421: busy" in error
    report = campaign_report(engine, cid)
    assert any(r.startswith("abandoned") for r in report["channels"]["email"]["failure_reasons"])


async def test_reconnect_backoff_is_capped_so_sending_resumes_soon(engine):
    smsc = SmscSimulator()
    await smsc.start()
    port = smsc.port
    client = SmppClient(SmppAccount(host="127.0.0.1", port=port, system_id="t"))
    await client.start()
    await smsc.stop()
    await asyncio.sleep(9.0)  # the SMSC is down for 9 s
    smsc = SmscSimulator(port=port)
    await smsc.start()
    back = time.monotonic()
    try:
        await client.wait_bound(timeout=20)
        assert time.monotonic() - back < 3.0
    finally:
        await client.close()
        await smsc.stop()


async def test_submit_sm_carries_a_validity_period(engine):
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    cid = await asyncio.to_thread(_launch, engine, expires_at=expires)
    async with SmscSimulator(receipt_delay=0.01) as smsc:
        assert await _send(engine, cid, smsc, validity=3600) == []
        periods = {m.validity_period for m in smsc.messages}
    assert len(periods) == 1
    (period,) = periods
    # SMPP 3.4 §7.1.1 absolute time, UTC: YYMMDDhhmmsstnnp with p '+' and nn 00.
    assert len(period) == 16 and period.endswith("000+")
    at = dt.datetime.strptime(period[:12], "%y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    # The sooner of the campaign's expiry and the account's validity (1 h).
    assert abs((at - dt.datetime.now(dt.UTC)).total_seconds() - 3600) < 60


def test_lost_receipt_ends_as_sent_after_the_deadline(engine):
    cid = _launch(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", N, lease_seconds=30)
    queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "sent", (f"X{c.id}",))
                                          for c in claimed], account="a")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=queue.RECEIPT_GRACE_SECONDS + 5)
    assert queue.finish_campaigns(engine, now=later) == [cid]
    d = table(Delivery)
    with transaction(engine) as s:
        rows = s.execute(sa.select(d.c.state, d.c.final_at).where(d.c.campaign_id == cid)).all()
    assert {r.state for r in rows} == {"sent"}
    assert all(r.final_at is not None for r in rows)  # final as sent


def test_submissions_are_counted_and_billed(engine):
    cid = _launch(engine)
    claimed = queue.claim(engine, "w1", "sms", "simulation", N, lease_seconds=0.01)
    time.sleep(0.05)
    assert queue.sweep_expired_leases(engine) == N  # w1 died: it may have submitted all
    claimed = queue.claim(engine, "w2", "sms", "simulation", N, lease_seconds=30)
    queue.record_outcomes(engine, "sms", [SendOutcome(c.id, "sent", (f"Y{c.id}",))
                                          for c in claimed], account="a")
    sms = campaign_report(engine, cid)["channels"]["sms"]
    assert sms["submissions"] == N
    assert sms["unconfirmed_submissions"] == N
    assert sms["cost_max_eur"] == pytest.approx(2 * sms["cost_eur"])


def test_receipt_before_its_submission_is_recorded_is_applied_later(engine):
    # The receipt comes (on another bind or worker) before the submit_sm_resp is written;
    # a receipt of another account with the same id never touches this delivery.
    from tocsin.channels.base import ReceiptEvent

    cid = _launch(engine)
    claimed = queue.claim(engine, "w", "sms", "simulation", 2, lease_seconds=30)
    a, b = claimed[0].id, claimed[1].id
    queue.store_receipts(engine, [ReceiptEvent("sms", "00ABC", "DELIVRD", account="acc1"),
                                  ReceiptEvent("sms", "4711", "UNDELIV", account="acc2")])
    assert queue.apply_receipts(engine) == 0  # nothing known yet: kept
    queue.record_outcomes(engine, "sms", [SendOutcome(a, "sent", ("abc",), account="acc1"),
                                          SendOutcome(b, "sent", ("1267",), account="acc1")])
    assert queue.apply_receipts(engine) == 1
    d = table(Delivery)
    with transaction(engine) as s:
        states = {i: st for i, st in s.execute(
            sa.select(d.c.id, d.c.state).where(d.c.campaign_id == cid)).all()}
    assert states[a] == "delivered"  # hex id matched whatever its case and padding
    assert states[b] == "sent"  # 4711 = 0x1267, but acc2's receipt is not acc1's message


async def test_a_stale_alert_is_never_submitted(engine):
    cid = await asyncio.to_thread(_launch, engine)

    def expire() -> None:
        with transaction(engine) as s:
            s.execute(sa.text("UPDATE campaign SET expires_at = :t WHERE id = :c"),
                      {"t": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1), "c": cid})

    await asyncio.to_thread(expire)
    async with SmscSimulator() as smsc:
        assert await _send(engine, cid, smsc) == []
        assert smsc.messages == []
    assert _states(engine, cid) == {"expired": N}
    report = await asyncio.to_thread(campaign_report, engine, cid)
    (reason,) = report["channels"]["sms"]["failure_reasons"]
    assert reason.startswith("abandoned after 1 attempt, validity ended")


def test_heartbeat_renews_only_the_rows_a_worker_has_in_hand(any_engine):
    # A row whose outcome the worker no longer holds is never renewed: its lease
    # expires and another worker takes it over.
    engine = any_engine
    _launch(engine)
    claimed = queue.claim(engine, "w1", "sms", "simulation", 3, lease_seconds=0.2)
    in_hand = claimed[0].id
    assert queue.renew_leases(engine, "w1", 30, {in_hand}) == 1
    time.sleep(0.3)
    assert queue.sweep_expired_leases(engine) == 2
    d = table(Delivery)
    with transaction(engine) as s:
        assert s.scalar(sa.select(d.c.state).where(d.c.id == in_hand)) == "in_flight"


def test_submit_statuses_are_classified_per_smpp_34():
    from tocsin.channels.smpp_pdu import classify_status

    assert classify_status(0x08) == "retry"  # ESME_RSYSERR
    assert classify_status(0x45) == "retry"  # ESME_RSUBMITFAIL
    assert classify_status(0x64) == "retry"  # ESME_RX_T_APPN
    assert classify_status(0xFF) == "retry"  # ESME_RUNKNOWNERR
    assert classify_status(0x0400) == "retry"  # vendor-specific: bounded by validity
    assert classify_status(0x58) == "throttle"  # ESME_RTHROTTLED
    assert classify_status(0x14) == "throttle"  # ESME_RMSGQFUL
    assert classify_status(0x0B) == "final"  # ESME_RINVDSTADR
    assert classify_status(0x01) == "final"  # ESME_RINVMSGLEN
    assert classify_status(0x65) == "final"  # ESME_RX_P_APPN


def test_channels_other_than_sms_and_email_still_give_up_after_max_attempts(engine):
    # A CAP gateway webhook (or a busy voice line) is not retried for a whole day.
    _launch(engine)
    d = table(Delivery)
    claimed = queue.claim(engine, "w", "sms", "simulation", 1, lease_seconds=30)
    with transaction(engine) as s:
        s.execute(sa.update(d).where(d.c.id == claimed[0].id).values(channel="webhook"))
    queue.record_outcomes(engine, "webhook", [SendOutcome(claimed[0].id, "retry", error="503")],
                          {claimed[0].id: queue.MAX_ATTEMPTS})
    with transaction(engine) as s:
        assert s.scalar(sa.select(d.c.state).where(d.c.id == claimed[0].id)) == "failed"
