"""Concatenation mode and data_coding per SMSC account (issue 13 point 3, decision 0025).

``concat=udh|sar|payload``, ``udh_ref=8|16`` and ``gsm_coding=0|1|3`` in TOCSIN_SMPP_URL;
every text is sent over a real SMPP session to the SMSC simulator, which reassembles it.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from tocsin.campaigns.services import CampaignRequest, campaign_report, launch_campaign
from tocsin.channels.base import OutgoingMessage, ReceiptEvent
from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.smpp import SmppAccount, SmppClient, parse_smpp_urls
from tocsin.channels.smpp_pdu import (
    SUBMIT_SM,
    TLV_MESSAGE_PAYLOAD,
    TLV_SAR_MSG_REF_NUM,
    TLV_SAR_SEGMENT_SEQNUM,
    TLV_SAR_TOTAL_SEGMENTS,
    Pdu,
    decode_pdu,
    encode_pdu,
)
from tocsin.channels.sms import SmppSender
from tocsin.core.db import table, transaction
from tocsin.dispatch.models import Delivery, SmsMessage
from tocsin.dispatch.services import send_campaign
from tocsin.messages.sms import analyse, encode_message, segment_count
from tocsin.subscribers.importer import import_subscribers

VECTORS = json.loads(
    (Path(__file__).parent / "fixtures" / "sms" / "segment-vectors.json").read_text("utf-8")
)["vectors"]

GSM_300 = ("Hochwasser: Pegel steigt. Keller räumen, höher gelegene Orte aufsuchen. "
           "Évacuez la zone, à pied si possible. ") * 3 + "Ende der Meldung."
UCS2_100 = "Тревога 😜: покиньте зону затопления немедленно, идите на север. Ça monte vite!!"
UCS2_100 = (UCS2_100 * 2)[:100]
LATIN1 = ("Crue à Liège: évacuez les quais. Überschwemmung in Eupen, Straße gesperrt. "
          "Ñandu ¿¡ Ä Ö Å Æ Ø £ ¥ §. ") * 2
ACCENTED = {
    "fr": "Alerte crue: évacuez, allez à l'école. Il a été décidé. Ça déborde.",  # Ç: GSM-7
    "fr-cedilla": "Alerte: le niveau de la rivière monte, reçu ce matin, garçons à l'abri.",
    "nl": "Let op: hoogwater bij de sluis, één weg naar het zuiden, ga naar café.",
    "de": "Achtung: Straße überflutet, Fußgänger meiden die Brücke, Grüße aus Köln.",
}
MODES = ("udh", "sar", "payload")


def _url(port: int, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"binds": 1, "window": 20, **options}.items())
    return f"smpp://tocsin:pw@127.0.0.1:{port}?{query}"


async def _send(smsc: SmscSimulator, texts: list[str], **options: object
                ) -> tuple[list[tuple[str, ...]], list[ReceiptEvent]]:
    """Send each text to its own number through an SmppSender bound to ``smsc``."""
    receipts: list[ReceiptEvent] = []

    async def sink(event: ReceiptEvent) -> None:
        receipts.append(event)

    sender = SmppSender(parse_smpp_urls(_url(smsc.port, **options)), sink)
    await sender.start()
    try:
        outcomes = await sender.send([
            OutgoingMessage(n, "c1", f"+3247000{n:04d}", "fr", text, source="Tocsin")
            for n, text in enumerate(texts, start=1)])
        expected = sum(len(o.message_ids) for o in outcomes)
        for _ in range(500):
            if len(receipts) >= expected:
                break
            await asyncio.sleep(0.01)
    finally:
        await sender.close()
    assert [o.result for o in outcomes] == ["sent"] * len(texts), outcomes
    return [o.message_ids for o in outcomes], receipts


# ------------------------------------------------------------------ codec


def test_sar_and_message_payload_tlvs_round_trip() -> None:
    payload = ("Évacuez " * 200).encode("latin-1")  # 1,600 octets: over short_message
    for tlvs in ({TLV_SAR_MSG_REF_NUM: b"\x01\x2c", TLV_SAR_TOTAL_SEGMENTS: b"\x03",
                  TLV_SAR_SEGMENT_SEQNUM: b"\x02"},
                 {TLV_MESSAGE_PAYLOAD: payload}):
        pdu = Pdu(SUBMIT_SM, 7, params={"destination_addr": "32470123456", "data_coding": 3,
                                        "short_message": b"" if 0x0424 in tlvs else b"abc"},
                  tlvs=tlvs)
        back = decode_pdu(encode_pdu(pdu))
        assert back.tlvs == tlvs
        assert back.params["short_message"] == pdu.params["short_message"]
        assert back.params["data_coding"] == 3


# ------------------------------------------------------------------ encoding rules


def test_udh_8_and_16_bit_sar_and_payload_parts() -> None:
    assert analyse(GSM_300).encoding == "GSM-7" and analyse(GSM_300).units > 300
    udh = encode_message(GSM_300, 200)
    assert [p.short_message[:5] for p in udh] == [bytes((5, 0, 3, 200, len(udh)))] * len(udh)
    assert all(p.esm_class == 0x40 and p.data_coding == 0 and not p.tlvs for p in udh)
    assert max(len(p.short_message) - 6 for p in udh) == 153
    wide = encode_message(GSM_300, 0x1234, udh_ref=16)
    assert wide[0].short_message[:6] == bytes((6, 8, 4, 0x12, 0x34, len(wide)))
    assert max(len(p.short_message) - 7 for p in wide) == 152
    sar = encode_message(GSM_300, 300 % 256, concat="sar")
    assert len(sar) == len(udh)
    assert [p.short_message for p in sar] == [p.short_message[6:] for p in udh]
    assert all(p.esm_class == 0 for p in sar)
    assert [dict(p.tlvs) for p in sar] == [
        {0x020C: (300 % 256).to_bytes(2, "big"), 0x020E: bytes((len(sar),)),
         0x020F: bytes((n,))} for n in range(1, len(sar) + 1)]
    (whole,) = encode_message(GSM_300, 5, concat="payload")
    assert (whole.short_message, whole.esm_class, whole.data_coding) == (b"", 0, 0)
    assert dict(whole.tlvs)[0x0424] == b"".join(p.short_message for p in sar)
    # One segment: short_message alone whatever the mode.
    for mode in MODES:
        (single,) = encode_message("Alarm", 1, concat=mode)
        assert (single.esm_class, single.tlvs) == (0, ())


def test_gsm_coding_ia5_latin1_and_fallbacks() -> None:
    (ascii_part,) = encode_message("Flood {alert}", 1, gsm_coding=1)
    assert (ascii_part.data_coding, ascii_part.short_message) == (1, b"Flood {alert}")
    (accented,) = encode_message("Crue à Liège", 1, gsm_coding=1)
    assert accented.data_coding == 0  # not ASCII: the SMSC default alphabet
    (latin,) = encode_message("Crue à Liège", 1, gsm_coding=3)
    assert (latin.data_coding, latin.short_message) == (3, "Crue à Liège".encode("latin-1"))
    (euro,) = encode_message("Amende 50 €", 1, gsm_coding=3)
    assert euro.data_coding == 0  # € is GSM-7 (escape) but not Latin-1
    (ucs,) = encode_message("Il reçoit", 1, gsm_coding=3)
    assert ucs.data_coding == 8  # ç is not GSM-7: UCS-2 whatever gsm_coding says
    # Latin-1 is 8-bit: 140 octets in one segment, 134 per part with a UDH; it is used
    # only when that costs no more segments than GSM-7 (160 / 153), which the bill counts.
    (short,) = encode_message("é" * 140, 1, gsm_coding=3)
    assert (short.data_coding, len(short.short_message)) == (3, 140)
    (longer,) = encode_message("é" * 141, 1, gsm_coding=3)
    assert (longer.data_coding, len(longer.short_message)) == (0, 141)
    parts = encode_message("é" * 260, 9, gsm_coding=3)
    assert [(p.data_coding, len(p.short_message) - 6) for p in parts] == [(3, 134), (3, 126)]
    parts = encode_message("é" * 300, 9, gsm_coding=3)  # 3 parts of 134, 2 of 153
    assert [(p.data_coding, len(p.short_message) - 6) for p in parts] == [(0, 153), (0, 147)]
    for n in (1, 139, 140, 141, 160, 161, 268, 269, 306, 307, 402, 403, 459, 460):
        assert segment_count("é" * n, gsm_coding=3) == analyse("é" * n).segments


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_segment_counts_follow_the_vectors_in_every_mode(vector: dict) -> None:
    text = vector["text"]
    assert segment_count(text) == vector["segments"]
    assert len(encode_message(text, 1)) == vector["segments"]
    assert len(encode_message(text, 1, concat="sar")) == vector["segments"]
    assert len(encode_message(text, 1, concat="payload")) == 1


def test_accented_texts_gsm7_or_ucs2() -> None:
    assert analyse(ACCENTED["fr"]).encoding == "GSM-7"  # é è à Ç are in GSM 03.38
    assert analyse(ACCENTED["nl"]).encoding == "GSM-7"
    assert analyse(ACCENTED["de"]).encoding == "GSM-7"  # ü ß ö
    assert analyse(ACCENTED["fr-cedilla"]).encoding == "UCS-2"  # small ç is not


def test_bad_options_raise_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="concat"):
        encode_message("x", 1, concat="both")
    with pytest.raises(ValueError, match="reference"):
        encode_message("x" * 200, 256)
    assert len(encode_message("x" * 200, 65535, udh_ref=16)) == 2


@pytest.mark.parametrize(("query", "named"), [
    ("concat=udhi", "concat='udhi' is not one of udh, sar, payload"),
    ("udh_ref=32", "udh_ref='32' is not one of 8, 16"),
    ("gsm_coding=2", "gsm_coding='2' is not one of 0, 1, 3"),
    ("gsm_coding=", "gsm_coding='' is not one of 0, 1, 3"),
    ("gsm_packing=packed", "gsm_packing='packed' is not one of unpacked (packed septets"),
])
def test_bad_url_options_name_the_parameter_and_its_values(query: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        SmppAccount.from_url(f"smpp://tocsin:secret@smsc:2775?{query}")
    assert named in str(caught.value)
    assert "secret" not in str(caught.value)


def test_url_options_are_read() -> None:
    plain = SmppAccount.from_url("smpp://tocsin@smsc")
    assert (plain.concat, plain.udh_ref, plain.gsm_coding, plain.gsm_packing) == (
        "udh", 8, 0, "unpacked")
    tuned = SmppAccount.from_url(
        "smpp://tocsin@smsc?concat=sar&udh_ref=16&gsm_coding=3&gsm_packing=unpacked")
    assert (tuned.concat, tuned.udh_ref, tuned.gsm_coding) == ("sar", 16, 3)
    with pytest.raises(ValueError, match="concat"):
        SmppAccount("smsc", "tocsin", concat="none")


# ------------------------------------------------------------------ real SMPP sessions


@pytest.mark.parametrize("mode", MODES)
async def test_each_mode_arrives_whole_at_the_simulator(mode: str) -> None:
    texts = [GSM_300, UCS2_100, *ACCENTED.values(), *(v["text"] for v in VECTORS)]
    async with SmscSimulator(receipt_delay=0.0) as smsc:
        ids, receipts = await _send(smsc, texts, concat=mode)
    got = smsc.reassembled()
    assert sorted((m.destination, m.text) for m in got) == sorted(
        (f"+3247000{n:04d}", t) for n, t in enumerate(texts, start=1))
    assert all(m.complete for m in got)
    expected = [analyse(t).segments for t in texts]
    if mode == "payload":
        # One submit_sm per message: one message id, one receipt.
        assert [len(i) for i in ids] == [1] * len(texts)
        assert {m.how for m in got} == {"single", "payload"}
        assert [len(m.message_ids) for m in got] == [1] * len(texts)
    else:
        assert [len(i) for i in ids] == expected
        assert {m.how for m in got if m.total > 1} == {mode}
        assert sorted(m.total for m in got) == sorted(expected)
    assert len(smsc.messages) == sum(len(i) for i in ids)
    assert sorted(r.message_id for r in receipts) == sorted(m for i in ids for m in i)
    assert {r.stat for r in receipts} == {"DELIVRD"}


@pytest.mark.parametrize("options", [
    {"gsm_coding": 3}, {"gsm_coding": 3, "concat": "sar"},
    {"gsm_coding": 3, "concat": "payload"},
    {"gsm_coding": 1}, {"udh_ref": 16}, {"udh_ref": 16, "concat": "sar", "gsm_coding": 1},
])
async def test_codings_and_16_bit_references_reassemble(options: dict) -> None:
    ascii_text = "Flood warning {level 3}: leave the river banks now. " * 5
    texts = [LATIN1, ascii_text, GSM_300, UCS2_100, "Alarm"]
    async with SmscSimulator() as smsc:
        ids, receipts = await _send(smsc, texts, **options)
    assert sorted(smsc.texts()) == sorted(
        (f"+3247000{n:04d}", t) for n, t in enumerate(texts, start=1))
    codings = {m.destination: m.data_coding for m in smsc.messages}
    coding = options.get("gsm_coding", 0)
    assert codings["+32470000001"] == (3 if coding == 3 else 0)  # Latin-1 is not ASCII
    assert codings["+32470000002"] == coding  # ASCII fits IA5 and Latin-1
    assert codings["+32470000004"] == 8
    if options.get("concat", "udh") != "payload":
        assert [len(i) for i in ids] == [
            segment_count(t, gsm_coding=coding, udh_ref=int(options.get("udh_ref", 8)))
            for t in texts]
        if coding == 3:
            assert len(ids[0]) == 2  # 202 Latin-1 octets: 134 + 68, as GSM-7 153 + 49
    assert len(receipts) == sum(len(i) for i in ids)


async def test_out_of_order_and_missing_segments() -> None:
    udh = encode_message(GSM_300, 77)
    sar = encode_message(GSM_300, 78, concat="sar", udh_ref=16)
    async with SmscSimulator() as smsc:
        account = SmppAccount("127.0.0.1", "tocsin", port=smsc.port)
        async with SmppClient(account) as client:
            for part in reversed(udh):
                await client.submit("Tocsin", "+32470000001", [part])
            await client.submit("Tocsin", "+32470000002", [sar[2], sar[0]])
    first, second = smsc.reassembled()
    assert (first.destination, first.text, first.complete, first.how) == (
        "+32470000001", GSM_300, True, "udh")
    assert first.parts == (1, 2, 3)
    assert (second.destination, second.complete, second.missing, second.how) == (
        "+32470000002", False, (2,), "sar")
    assert smsc.incomplete() == [second]
    assert second.text == GSM_300[:152] + GSM_300[304:]  # 16-bit reference: 152 septets


# ------------------------------------------------------------------ campaign: receipts, bill

CSV = ("subscriber_id,language,mobile,email,lat,lon\n"
       "S1,nl,+32470000001,,50.7480,4.3000\n"
       "S2,fr,+32470000002,,50.7500,4.3050\n")


def _campaign(engine) -> str:
    assert import_subscribers(engine, CSV.encode()).errors == []
    return launch_campaign(engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": GSM_300, "fr": UCS2_100},
        channels=["sms"]))


@pytest.mark.parametrize("mode", MODES)
async def test_receipts_and_billing_per_mode(engine, mode: str) -> None:
    cid = await asyncio.to_thread(_campaign, engine)
    async with SmscSimulator(receipt_delay=0.01) as smsc:
        accounts = parse_smpp_urls(_url(smsc.port, concat=mode))
        unfinished = await send_campaign(
            engine, cid, {("sms", "simulation"): lambda rb: SmppSender(accounts, rb.add)},
            receipt_timeout=10, send_timeout=10)
    assert unfinished == []
    assert sorted(smsc.texts()) == [("+32470000001", GSM_300), ("+32470000002", UCS2_100)]
    report = await asyncio.to_thread(campaign_report, engine, cid)
    assert report["channels"]["sms"]["by_status"] == {"delivered": 2}
    billed = analyse(GSM_300).segments + analyse(UCS2_100).segments
    assert report["channels"]["sms"]["segments"] == billed  # as the network counts them
    d, m = table(Delivery), table(SmsMessage)
    with transaction(engine) as s:
        rows = s.execute(sa.select(d.c.address, d.c.segments, sa.func.count(m.c.id))
                         .join(m, m.c.delivery_id == d.c.id)
                         .where(d.c.campaign_id == cid).group_by(d.c.address, d.c.segments)
                         .order_by(d.c.address)).all()
    submits = [1, 1] if mode == "payload" else [analyse(GSM_300).segments,
                                                 analyse(UCS2_100).segments]
    assert [tuple(r) for r in rows] == [
        ("+32470000001", analyse(GSM_300).segments, submits[0]),
        ("+32470000002", analyse(UCS2_100).segments, submits[1])]
    assert len(smsc.messages) == sum(submits) == smsc.receipts_acknowledged


async def test_a_16_bit_reference_bills_the_segments_sent(any_engine) -> None:
    engine = any_engine
    # 306 septets: 2 parts of 153 with an 8-bit reference, 3 of at most 152 with 16 bits.
    text = ("Pegelstand kritisch, Deiche werden verstärkt. " * 7)[:306]
    assert analyse(text).segments == 2
    assert segment_count(text, udh_ref=16) == 3
    assert import_subscribers(engine, CSV.encode()).errors == []
    cid = await asyncio.to_thread(launch_campaign, engine, CampaignRequest(
        authority_id="23003", municipality_nis="23003", texts={"nl": text, "fr": text},
        channels=["sms"]))
    d = table(Delivery)
    with transaction(engine) as s:
        planned = s.execute(sa.select(d.c.segments, d.c.cost_eur)
                            .where(d.c.campaign_id == cid)).all()
    assert {r.segments for r in planned} == {2}
    async with SmscSimulator(receipt_delay=0.01) as smsc:
        accounts = parse_smpp_urls(_url(smsc.port, udh_ref=16))
        unfinished = await send_campaign(
            engine, cid, {("sms", "simulation"): lambda rb: SmppSender(accounts, rb.add)},
            receipt_timeout=10, send_timeout=10)
    assert unfinished == []
    assert sorted(smsc.texts()) == [("+32470000001", text), ("+32470000002", text)]
    assert len(smsc.messages) == 6
    with transaction(engine) as s:
        sent = s.execute(sa.select(d.c.segments, d.c.cost_eur, d.c.state)
                         .where(d.c.campaign_id == cid)).all()
    assert {(r.segments, r.state) for r in sent} == {(3, "delivered")}
    assert [float(r.cost_eur) for r in sent] == pytest.approx(
        [float(planned[0].cost_eur) * 3 / 2] * 2)
    report = await asyncio.to_thread(campaign_report, engine, cid)
    assert report["channels"]["sms"]["segments"] == 6
