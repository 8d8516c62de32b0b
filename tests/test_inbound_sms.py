"""Inbound SMS (issue 10 point 8): a deliver_sm that is not a receipt is a handset's
message, over a real SMPP session with the SMSC simulator; stored and read as an answer."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.smpp import InboundSms, Receipt, SmppAccount, SmppClient, SmsPart


def _account(port: int) -> SmppAccount:
    return SmppAccount(host="127.0.0.1", port=port, system_id="tocsin", password="secret")


async def _eventually(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_mobile_originated_sms_reaches_on_inbound_and_receipts_still_work() -> None:
    inbound: list[InboundSms] = []
    receipts: list[Receipt] = []

    async def store(message: InboundSms) -> None:
        await asyncio.sleep(0)
        inbound.append(message)

    async with SmscSimulator(receipt_delay=0.01) as smsc:
        async with SmppClient(_account(smsc.port), on_receipt=receipts.append,
                              on_inbound=store) as client:
            await client.submit("Tocsin", "+32470000001", [SmsPart(0, 0, b"Who can come?")])
            smsc.send_mo("+32470000001", "8811", "A1")
            smsc.send_mo("+32470000002", "8811", "Jä, ich komme ✓")   # UCS-2
            await _eventually(lambda: len(inbound) == 2 and len(receipts) == 1)
            await _eventually(lambda: smsc.mo_acknowledged == 2)
    assert inbound[0] == InboundSms("+32470000001", "8811", "A1")
    assert inbound[1].text == "Jä, ich komme ✓"
    assert smsc.receipts_acknowledged == 1          # receipts are told apart from MOs


async def test_failing_inbound_handler_asks_for_redelivery_and_none_drops() -> None:
    def broken(message: InboundSms) -> None:
        raise RuntimeError("database down")

    async with SmscSimulator() as smsc:
        async with SmppClient(_account(smsc.port), on_inbound=broken):
            smsc.send_mo("+32470000001", "8811", "1")
            await asyncio.sleep(0.1)
        assert smsc.mo_acknowledged == 0            # ESME_RX_T_APPN, not ESME_ROK
        async with SmppClient(_account(smsc.port)):
            smsc.send_mo("+32470000001", "8811", "1")
            await _eventually(lambda: smsc.mo_acknowledged == 1)   # no handler: acked


def test_answer_over_the_real_smpp_session_is_stored(engine: Engine) -> None:
    from test_group_answers import _launch
    from tocsin.campaigns import answer_service as svc
    from tocsin.campaigns.answer_models import CampaignAnswer, InboundMessage
    from tocsin.channels.sms import SmppSender
    from tocsin.core.db import read_transaction
    from tocsin.dispatch.worker import inbound_sink

    cid = _launch(engine, svc.AnswerSetup(["Ja", "Nee"]))

    async def run() -> None:
        async with SmscSimulator() as smsc:
            async def receipts(_event: object) -> None:
                return None

            sender = SmppSender([_account(smsc.port)], receipts, "simulator",
                                inbound=inbound_sink(engine, "smpp"))
            await sender.start()
            try:
                smsc.send_mo("+32470000003", "8811", " a 2 ")
                smsc.send_mo("+32470000004", "8811", "peut-être")
                await _eventually(lambda: smsc.mo_acknowledged == 2)
            finally:
                await sender.close()

    asyncio.run(run())
    with read_transaction(engine) as s:
        answers = s.execute(sa.select(CampaignAnswer.respondent, CampaignAnswer.option,
                                      CampaignAnswer.channel)).all()
        stored = s.execute(sa.select(InboundMessage.sender, InboundMessage.via,
                                     InboundMessage.reason)
                           .order_by(InboundMessage.id)).all()
    assert answers == [("+32470000003", 2, "sms")]
    # Two binds, two threads: the order they are stored in is not fixed.
    assert sorted(stored, key=str) == [("+32470000003", "smpp", None),
                                       ("+32470000004", "smpp", "unrecognised")]
    assert svc.board(engine, cid, None)["options"][1]["count"] == 1


def test_stop_and_start_by_sms_switch_information_messages_only(engine: Engine) -> None:
    """F9: "STOP" (or ARRET, STOPP) from a registered mobile ends general-interest
    information to that number and "START" brings it back; alerts are not affected, the
    keyword is never read as an answer, and each switch is audited without the number."""
    from tocsin.authorities.models import AuditEntry
    from tocsin.campaigns.answer_service import record_inbound
    from tocsin.core.db import transaction, utcnow
    from tocsin.subscribers.models import ContactPoint, Subscriber
    from tocsin.subscribers.optout import sms_keyword

    assert [sms_keyword(t) for t in ("stop", " Stop ", "ARRÊT", "arret", "Stopp", "START",
                                     "starten", "stop please", "1", "")] == [
        "stop", "stop", "stop", "stop", "stop", "start", "start", None, None, None]
    with transaction(engine) as s:
        sub = Subscriber(external_id="stop-1", language="fr")
        s.add(sub)
        s.flush()
        s.add(ContactPoint(subscriber_id=sub.id, kind="mobile", value="+32470111222",
                           verified_at=utcnow(), info_opt_in=True))

    def opted_in() -> bool:
        with transaction(engine) as s:
            return bool(s.scalar(sa.select(ContactPoint.info_opt_in)
                                 .where(ContactPoint.value == "+32470111222")))

    result = record_inbound(engine, "32470111222", "Stop", via="smpp")
    assert result.reason == "opt_out" and result.option is None and not opted_in()
    result = record_inbound(engine, "+32470111222", "START", via="webhook")
    assert result.reason == "opt_in" and opted_in()
    with transaction(engine) as s:
        rows = list(s.scalars(sa.select(AuditEntry).where(
            AuditEntry.action.in_(("contact_point.info_opt_out",
                                   "contact_point.info_opt_in")))))
    assert [r.action for r in rows] == ["contact_point.info_opt_out",
                                        "contact_point.info_opt_in"]
    assert all("+32470111222" not in str(r.detail) for r in rows)


LONG_FR = ("Oui, je peux venir, mais seulement à partir de 18 h : je suis au travail à "
           "Halle jusque-là. J'apporte la camionnette et deux pelles ; appelez-moi si le "
           "plan change. Merci à toute l'équipe !")
LONG_DE = "Ja, ich komme ✓ " * 6   # UCS-2: 96 characters, two parts


async def test_concatenated_replies_are_handed_over_once_and_whole() -> None:
    """A reply longer than one SMS arrives in parts (UDH or SAR TLVs, in any order, on
    any bind): the handler sees one message with the whole text (3GPP TS 23.040
    §9.2.3.24.1, SMPP 3.4 §5.3.2.22-24)."""
    inbound: list[InboundSms] = []
    async with SmscSimulator() as smsc:
        async with SmppClient(_account(smsc.port), on_inbound=inbound.append):
            smsc.send_mo("+32470000001", "8811", LONG_FR)                  # UDH, in order
            smsc.send_mo("+32470000002", "8811", LONG_FR, concat="sar", reverse=True)
            smsc.send_mo("+32470000003", "8811", LONG_DE, reverse=True)    # UCS-2
            await _eventually(lambda: len(inbound) == 3)
            await _eventually(lambda: smsc.mo_acknowledged == smsc.mo_sent)
    assert smsc.mo_sent == 2 + 2 + 2
    assert sorted((m.source, m.text, m.complete) for m in inbound) == [
        ("+32470000001", LONG_FR, True), ("+32470000002", LONG_FR, True),
        ("+32470000003", LONG_DE, True)]


async def test_a_reply_missing_a_part_is_handed_over_after_the_wait() -> None:
    inbound: list[InboundSms] = []
    async with SmscSimulator() as smsc:
        client = SmppClient(_account(smsc.port), on_inbound=inbound.append)
        client.mo_parts_wait = 0.3
        async with client:
            smsc.send_mo("+32470000001", "8811", LONG_FR, drop=(1,))
            await asyncio.sleep(0.1)
            assert inbound == []                          # waiting for part 1
            await _eventually(lambda: len(inbound) == 1)
    assert not inbound[0].complete
    assert inbound[0].text and LONG_FR.endswith(inbound[0].text)


async def test_a_failing_handler_gets_the_whole_reply_again() -> None:
    """The part that completes a message is acknowledged only once the whole message
    was handled: after ESME_RX_T_APPN the SMSC redelivers it, and it completes again."""
    seen: list[str] = []
    calls = 0

    def flaky(message: InboundSms) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database down")
        seen.append(message.text)

    async with SmscSimulator() as smsc:
        async with SmppClient(_account(smsc.port), on_inbound=flaky) as client:
            smsc.send_mo("+32470000001", "8811", LONG_FR, reference=7)
            await _eventually(lambda: calls == 1)
            assert smsc.mo_acknowledged == 1              # the first part only
            assert client.mo_parts.parts                 # kept for the redelivery
            smsc.send_mo("+32470000001", "8811", LONG_FR, drop=(1,), reference=7)  # retried
            await _eventually(lambda: seen == [LONG_FR])
            assert not client.mo_parts.parts
