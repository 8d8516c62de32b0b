"""SMPP 3.4 PDUs, the ESME client and the SMSC simulator, talking over loopback TCP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import pytest

from tocsin.channels.simulators.smsc import SmscSimulator, decode_gsm7_unpacked
from tocsin.channels.smpp import (
    Receipt,
    SmppAccount,
    SmppBindError,
    SmppClient,
    SmppConnectionError,
    SmppSubmitError,
    SmppTimeoutError,
    SmsPart,
    destination_address,
    parse_receipt_text,
    parse_smpp_urls,
    source_address,
)
from tocsin.channels.smpp_pdu import (
    BIND_TRANSCEIVER,
    BIND_TRANSCEIVER_RESP,
    DELIVER_SM,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESM_CLASS_DELIVERY_RECEIPT,
    ESME_RINVPASWD,
    ESME_RTHROTTLED,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    UNBIND,
    UNBIND_RESP,
    Pdu,
    PduError,
    decode_pdu,
    encode_pdu,
    read_pdu,
    tlv_cstring,
    tlv_u8,
)

DEST = "+32470123456"


def gsm_part(text: str) -> SmsPart:
    """ASCII letters, digits and spaces are the same septets in GSM 7-bit (TS 23.038)."""
    return SmsPart(0, 0, text.encode("ascii"))


def ucs2_parts(text: str, reference: int) -> list[SmsPart]:
    """UCS-2 segments of 67 characters behind a 6-octet concatenation UDH (TS 23.040)."""
    chunks = [text[i : i + 67] for i in range(0, len(text), 67)]
    return [
        SmsPart(
            8, 0x40, bytes((5, 0, 3, reference, len(chunks), n)) + chunk.encode("utf-16-be")
        )
        for n, chunk in enumerate(chunks, 1)
    ]


def account(port: int, **options: object) -> SmppAccount:
    return SmppAccount(host="127.0.0.1", port=port, system_id="tocsin", password="secret",
                       **options)  # type: ignore[arg-type]


async def eventually(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------- PDUs


def test_bind_round_trip() -> None:
    pdu = Pdu(BIND_TRANSCEIVER, 7, params={
        "system_id": "tocsin", "password": "secret", "system_type": "WARN",
        "interface_version": 0x34, "addr_ton": 0, "addr_npi": 0, "address_range": "",
    })
    wire = encode_pdu(pdu)
    assert wire[:16] == bytes.fromhex("00000027" "00000009" "00000000" "00000007")
    assert decode_pdu(wire) == pdu


def test_submit_sm_round_trip_with_tlvs() -> None:
    params = {
        "service_type": "", "source_addr_ton": 5, "source_addr_npi": 0, "source_addr": "Tocsin",
        "dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "32470123456",
        "esm_class": 0x40, "protocol_id": 0, "priority_flag": 1,
        "schedule_delivery_time": "", "validity_period": "000001000000R",
        "registered_delivery": 1, "replace_if_present_flag": 0, "data_coding": 8,
        "sm_default_msg_id": 0, "short_message": bytes.fromhex("050003010201") + "Ж".encode(
            "utf-16-be"),
    }
    pdu = Pdu(SUBMIT_SM, 42, params=params, tlvs={0x020C: b"\x00\x01", 0x0427: b"\x02"})
    decoded = decode_pdu(encode_pdu(pdu))
    assert decoded == pdu
    assert decoded.name == "submit_sm"
    response = decoded.response(message_id="ABC123")
    assert response.command_id == SUBMIT_SM_RESP and response.sequence_number == 42
    assert decode_pdu(encode_pdu(response)).params == {"message_id": "ABC123"}


def test_deliver_sm_receipt_round_trip() -> None:
    text = (b"id:0123456789 sub:001 dlvrd:001 submit date:2403011200 done date:2403011201"
            b" stat:DELIVRD err:000 text:Flood warning")
    pdu = Pdu(DELIVER_SM, 3, params={
        "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "32470123456",
        "destination_addr": "Tocsin", "esm_class": ESM_CLASS_DELIVERY_RECEIPT,
        "short_message": text,
    }, tlvs={TLV_RECEIPTED_MESSAGE_ID: tlv_cstring("0123456789"), TLV_MESSAGE_STATE: tlv_u8(2)})
    decoded = decode_pdu(encode_pdu(pdu))
    assert decoded.params["short_message"] == text
    receipt = Receipt.from_deliver_sm(decoded)
    assert receipt == Receipt(
        "0123456789", "DELIVRD", "000", datetime(2024, 3, 1, 12, 1, tzinfo=UTC), DEST,
        "Flood warning", id_from_tlv=True,  # receipted_message_id: never read as decimal
    )


def test_receipt_tlvs_take_precedence_over_text() -> None:
    pdu = Pdu(DELIVER_SM, params={
        "esm_class": 4, "short_message": b"id:1 sub:001 dlvrd:000 stat:DELIVRD err:000"},
        tlvs={TLV_RECEIPTED_MESSAGE_ID: b"1F\0", TLV_MESSAGE_STATE: b"\x05"})
    receipt = Receipt.from_deliver_sm(pdu)
    assert (receipt.message_id, receipt.stat, receipt.done_at) == ("1F", "UNDELIV", None)
    assert receipt.id_from_tlv
    text_only = Receipt.from_deliver_sm(Pdu(DELIVER_SM, params={
        "esm_class": 4, "short_message": b"id:123 sub:001 dlvrd:001 stat:DELIVRD err:000"}))
    assert (text_only.message_id, text_only.id_from_tlv) == ("123", False)


def test_parse_receipt_text_keeps_free_text_last() -> None:
    fields = parse_receipt_text(
        "id:77 sub:001 dlvrd:000 submit date:2401010000 done date:240101000012 stat:EXPIRED"
        " err:012 text:stat:fake id:9"
    )
    assert fields["id"] == "77" and fields["stat"] == "EXPIRED" and fields["err"] == "012"
    assert fields["done date"] == "240101000012"
    assert fields["text"] == "stat:fake id:9"


def test_error_response_has_no_body_and_decodes_leniently() -> None:
    wire = encode_pdu(Pdu(SUBMIT_SM_RESP, 9, ESME_RTHROTTLED, {"message_id": "x"}))
    assert len(wire) == 16
    assert decode_pdu(wire).params == {"message_id": ""}


def test_pdu_errors_name_the_field() -> None:
    with pytest.raises(PduError, match="bind_transceiver.system_id"):
        encode_pdu(Pdu(BIND_TRANSCEIVER, params={"system_id": "x" * 16}))
    with pytest.raises(PduError, match="short_message"):
        encode_pdu(Pdu(SUBMIT_SM, params={"short_message": b"x" * 255}))
    truncated = encode_pdu(Pdu(SUBMIT_SM, params={"source_addr": "1"}))[:20]
    truncated = (20).to_bytes(4, "big") + truncated[4:]
    with pytest.raises(PduError, match="submit_sm"):
        decode_pdu(truncated)
    with pytest.raises(PduError, match="command_length"):
        decode_pdu(b"\x00\x00\x00\x08" + b"\x00" * 12)


def test_gsm7_decoder() -> None:
    assert decode_gsm7_unpacked(b"Hello \x00 \x1b\x65 \x1b\x3c") == "Hello @ € ["


# ---------------------------------------------------------------- accounts and addresses


def test_account_from_url_defaults_and_options() -> None:
    plain = SmppAccount.from_url("smpp://tocsin:s%40cret@smsc.example:2776")
    assert (plain.host, plain.port, plain.system_id, plain.password) == (
        "smsc.example", 2776, "tocsin", "s@cret")
    # A plain URL meets the reference floor of 500 SMS/s (issue 13).
    assert (plain.binds, plain.window, plain.tps) == (2, 100, 1000)
    assert "s@cret" not in repr(plain)
    tuned = SmppAccount.from_url(
        "smpp://a:b@10.0.0.1?binds=2&window=50&tps=500&system_type=WARN&source_ton=5"
        "&source_npi=0&timeout=2.5"
    )
    assert (tuned.port, tuned.binds, tuned.window, tuned.tps) == (2775, 2, 50, 500)
    assert (tuned.system_type, tuned.source_ton, tuned.source_npi, tuned.timeout) == (
        "WARN", 5, 0, 2.5)


@pytest.mark.parametrize(("url", "message"), [
    ("http://a:b@host", "scheme"),
    ("smpp://host:2775", "system_id"),
    ("smpp://a:b@host?window=many", "window='many'"),
    ("smpp://a:b@host?speed=3", "unknown parameter 'speed'"),
    ("smpp://a:b@host?binds=0", "binds must be at least 1"),
    ("smpp://a:longpassword@host", "password"),
    ("smpp://a:b@host:99999", "port"),
])
def test_account_from_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        SmppAccount.from_url(url)
    assert "longpassword" not in str(caught.value)


def test_parse_smpp_urls() -> None:
    accounts = parse_smpp_urls(" smpp://a:b@one:1  smpp://c:d@two:2?binds=3 ")
    assert [(a.host, a.binds) for a in accounts] == [("one", 2), ("two", 3)]
    assert parse_smpp_urls("") == []


def test_addresses() -> None:
    assert source_address("Tocsin") == (5, 0, "Tocsin")
    assert source_address("1722") == (3, 0, "1722")
    assert source_address("+3225551234") == (1, 1, "3225551234")
    assert source_address("3225551234") == (1, 1, "3225551234")
    assert source_address("Tocsin", ton=0, npi=1) == (0, 1, "Tocsin")
    assert destination_address("+32470123456") == (1, 1, "32470123456")
    with pytest.raises(ValueError, match="alphanumeric"):
        source_address("A very long sender")
    with pytest.raises(ValueError, match="E.164"):
        destination_address("0470123456")


# ---------------------------------------------------------------- client <-> simulator


@pytest.fixture
async def smsc():  # type: ignore[no-untyped-def]
    simulator = SmscSimulator(system_id="tocsin", password="secret")
    await simulator.start()
    yield simulator
    await simulator.stop()


async def test_bind_and_graceful_close(smsc: SmscSimulator) -> None:
    client = SmppClient(account(smsc.port, binds=3))
    await client.start()
    assert client.bound == 3
    await eventually(lambda: smsc.bound_sessions == 3)
    await client.close()
    await eventually(lambda: smsc.bound_sessions == 0)


async def test_bad_password_is_a_clear_bind_error(smsc: SmscSimulator) -> None:
    client = SmppClient(SmppAccount("127.0.0.1", "tocsin", "wrong", port=smsc.port, binds=2))
    with pytest.raises(SmppBindError, match="ESME_RINVPASWD") as caught:
        await client.start()
    assert caught.value.command_status == ESME_RINVPASWD
    await eventually(lambda: smsc.bound_sessions == 0)


async def test_connection_refused_is_a_clear_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(SmppConnectionError, match=f"cannot connect to SMSC 127.0.0.1:{port}"):
        await SmppClient(account(port)).start()


async def test_submit_1000_messages_through_a_window(smsc: SmscSimulator) -> None:
    async with SmppClient(account(smsc.port, binds=2, window=50, tps=100_000)) as client:
        started = time.perf_counter()
        ids = await asyncio.gather(*(
            client.submit("Tocsin", f"+3247000{n:04d}", [gsm_part(f"Test alert {n}")],
                          registered_delivery=False)
            for n in range(1000)
        ))
        elapsed = time.perf_counter() - started
    assert len({i[0] for i in ids}) == 1000
    assert len(smsc.messages) == 1000
    first = next(m for m in smsc.messages if m.destination == "+32470000007")
    assert (first.source, first.short_message, first.system_id) == (
        "Tocsin", b"Test alert 7", "tocsin")
    assert smsc.receipts_sent == 0
    assert elapsed < 5, f"1000 submit_sm took {elapsed:.2f} s"


async def test_window_limits_outstanding_requests() -> None:
    """A server that holds back submit_sm_resp sees exactly `window` requests, then no more."""
    received: list[Pdu] = []
    release = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                pdu = await read_pdu(reader)
            except asyncio.IncompleteReadError:
                writer.close()
                return
            if pdu.command_id == BIND_TRANSCEIVER:
                writer.write(encode_pdu(pdu.response(system_id="hold")))
            elif pdu.command_id == SUBMIT_SM:
                received.append(pdu)
                if len(received) == 7:
                    await release.wait()
                    for held in received:
                        writer.write(encode_pdu(held.response(message_id=str(held.sequence_number))))
            else:
                writer.write(encode_pdu(pdu.response()))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with SmppClient(account(port, window=7, tps=100_000)) as client:
        sends = asyncio.gather(*(client.submit("1722", DEST, [gsm_part("x")]) for _ in range(7)))
        extra = asyncio.ensure_future(client.submit("1722", DEST, [gsm_part("y")]))
        await asyncio.sleep(0.3)
        assert len(received) == 7 and not extra.done()
        release.set()
        assert len(await sends) == 7
        await asyncio.sleep(0.05)
        assert len(received) == 8  # the eighth left once the window opened
        extra.cancel()
    server.close()
    await server.wait_closed()


async def test_response_timeout() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                pdu = await read_pdu(reader)
            except asyncio.IncompleteReadError:
                writer.close()
                return
            if pdu.command_id == BIND_TRANSCEIVER:
                writer.write(encode_pdu(pdu.response(system_id="mute")))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SmppClient(account(port), response_timeout=0.2)
    await client.start()
    with pytest.raises(SmppTimeoutError, match="submit_sm") as caught:
        await client.submit("Tocsin", DEST, [gsm_part("x")])
    assert caught.value.retryable
    await client.close()
    server.close()
    await server.wait_closed()


async def test_receipts_come_back_matched_by_message_id() -> None:
    receipts: list[Receipt] = []

    async def store(receipt: Receipt) -> None:
        await asyncio.sleep(0)
        receipts.append(receipt)

    failing = "+32470999999"
    async with SmscSimulator(receipt_delay=0.05, fail_destinations={failing}) as smsc:
        async with SmppClient(account(smsc.port, binds=2), on_receipt=store) as client:
            ids = {}
            for n in range(20):
                dest = failing if n == 5 else f"+3247100{n:04d}"
                ids[dest] = (await client.submit("Tocsin", dest, [gsm_part("hi")]))[0]
            await eventually(lambda: len(receipts) == 20)
            await eventually(lambda: smsc.receipts_acknowledged == 20)
    by_id = {r.message_id: r for r in receipts}
    assert set(by_id) == set(ids.values())
    assert by_id[ids[failing]].stat == "UNDELIV"
    assert by_id[ids[failing]].destination == failing
    assert all(r.stat == "DELIVRD" for d, r in ((d, by_id[i]) for d, i in ids.items())
               if d != failing)
    assert all(r.done_at is not None and r.done_at.tzinfo is UTC for r in receipts)


async def test_failing_receipt_handler_asks_for_redelivery(smsc: SmscSimulator) -> None:
    def broken(receipt: Receipt) -> None:
        raise RuntimeError("database down")

    async with SmppClient(account(smsc.port), on_receipt=broken) as client:
        await client.submit("Tocsin", DEST, [gsm_part("x")])
        await eventually(lambda: smsc.receipts_sent == 1)
        await asyncio.sleep(0.05)
    assert smsc.receipts_acknowledged == 0  # answered ESME_RX_T_APPN, not ESME_ROK


async def test_concatenated_ucs2_message_is_reassembled(smsc: SmscSimulator) -> None:
    text = "Внимание! Наводнение в районе реки. Покиньте подвалы и поднимитесь выше. " * 2
    parts = ucs2_parts(text, reference=0x2A)
    assert len(parts) == 3
    async with SmppClient(account(smsc.port, window=2)) as client:
        await client.submit("Tocsin", DEST, [gsm_part("Short one")])
        ids = await client.submit("Tocsin", DEST, parts)
    assert len(set(ids)) == 3
    assert smsc.texts() == [(DEST, "Short one"), (DEST, text)]
    assert [m.esm_class for m in smsc.messages[1:]] == [0x40] * 3


async def test_throttling_is_a_retryable_submit_error() -> None:
    async with SmscSimulator(throttle_every=2) as smsc:
        async with SmppClient(account(smsc.port)) as client:
            await client.submit("Tocsin", DEST, [gsm_part("one")])
            with pytest.raises(SmppSubmitError, match="ESME_RTHROTTLED") as caught:
                await client.submit("Tocsin", DEST, [gsm_part("two")])
    assert caught.value.retryable and caught.value.command_status == ESME_RTHROTTLED
    assert len(smsc.messages) == 1


async def test_tps_limits_the_rate(smsc: SmscSimulator) -> None:
    async with SmppClient(account(smsc.port, window=50, tps=200)) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client.submit("Tocsin", DEST, [gsm_part("x")]) for _ in range(100)))
        elapsed = time.perf_counter() - started
    # 100 submits at 200/s, with a 10-message burst allowance: at least 0.45 s.
    assert elapsed >= 0.44


async def test_server_disconnect_then_client_reconnects(smsc: SmscSimulator) -> None:
    client = SmppClient(account(smsc.port, binds=2), reconnect_delay=0.05)
    await client.start()
    await client.submit("Tocsin", DEST, [gsm_part("before")])
    await smsc.drop_connections()
    await eventually(lambda: client.bound == 0 or smsc.bound_sessions == 2)
    await eventually(lambda: client.bound == 2 and smsc.bound_sessions == 2)
    await client.submit("Tocsin", DEST, [gsm_part("after")])
    await client.close()
    assert [m.short_message for m in smsc.messages] == [b"before", b"after"]


async def test_lost_connection_fails_outstanding_requests_retryably() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pdu = await read_pdu(reader)
        writer.write(encode_pdu(pdu.response(system_id="drop")))
        await read_pdu(reader)  # the submit_sm: hang up instead of answering
        writer.transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SmppClient(account(port), reconnect_delay=10)
    await client.start()
    with pytest.raises(SmppConnectionError) as caught:
        await client.submit("Tocsin", DEST, [gsm_part("x")])
    assert caught.value.retryable
    await client.close()
    server.close()
    await server.wait_closed()


async def test_keepalive_and_smsc_enquire_link(smsc: SmscSimulator) -> None:
    async with SmppClient(account(smsc.port), enquire_link_interval=0.05) as client:
        await asyncio.sleep(0.3)
        assert client.bound == 1
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        writer.write(encode_pdu(Pdu(BIND_TRANSCEIVER, 1, params={
            "system_id": "tocsin", "password": "secret"})))
        response = await read_pdu(reader)
        assert (response.command_id, response.command_status) == (BIND_TRANSCEIVER_RESP, 0)
        writer.close()


async def test_parts_from_the_sms_encoder_round_trip(smsc: SmscSimulator) -> None:
    sms = pytest.importorskip("tocsin.messages.sms")
    gsm = "Storm warning: stay indoors, cost of damage ~ 5€ per [m2]? No: {tbd}. " * 3
    ucs2 = "Ostrzeżenie: burza z gradem nad Łodzią, schowaj się w budynku. " * 3
    async with SmppClient(account(smsc.port)) as client:
        for reference, text in enumerate((gsm, ucs2)):
            parts = sms.encode_parts(text, reference)
            assert len(parts) > 1
            await client.submit("Tocsin", DEST, parts)
    assert smsc.texts() == [(DEST, gsm), (DEST, ucs2)]


async def test_client_answers_smsc_enquire_link_and_unbind_then_rebinds() -> None:
    answers: list[Pdu] = []
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        bind = await read_pdu(reader)
        writer.write(encode_pdu(bind.response(system_id="ops")))
        if connections == 1:
            writer.write(encode_pdu(Pdu(ENQUIRE_LINK, 100)))
            answers.append(await read_pdu(reader))
            writer.write(encode_pdu(Pdu(UNBIND, 101)))
            answers.append(await read_pdu(reader))
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while (pdu := await read_pdu(reader)).command_id != UNBIND:
                pass
            writer.write(encode_pdu(pdu.response()))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = SmppClient(account(port), reconnect_delay=0.05)
    await client.start()
    await eventually(lambda: connections == 2 and client.bound == 1)
    assert [(a.command_id, a.sequence_number, a.command_status) for a in answers] == [
        (ENQUIRE_LINK_RESP, 100, 0), (UNBIND_RESP, 101, 0)]
    await client.close()
    server.close()
    await server.wait_closed()
