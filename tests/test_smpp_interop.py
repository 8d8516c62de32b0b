"""SMPP interoperability with implementations Tocsin did not write, over loopback TCP.

1. Tocsin's SmppClient against an SMSC built on the npm package ``smpp`` (tests/interop/).
2. The PyPI client ``smpplib`` against Tocsin's SmscSimulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tocsin.channels.base import OutgoingMessage, ReceiptEvent
from tocsin.channels.simulators.smsc import SmscSimulator
from tocsin.channels.smpp import Receipt, SmppAccount, SmppClient, SmsPart
from tocsin.channels.sms import SmppSender
from tocsin.messages.sms import analyse

INTEROP = Path(__file__).parent / "interop"
NODE = shutil.which("node")
NPM = shutil.which("npm")

needs_node = pytest.mark.skipif(
    NODE is None or NPM is None,
    reason="node and npm are not installed: the npm `smpp` interop SMSC cannot run",
)


def _install_node_modules() -> None:
    """Install tests/interop's npm dependencies once, from the lock file when present."""
    if (INTEROP / "node_modules" / "smpp").is_dir():
        return
    assert NPM is not None
    command = [NPM, "ci" if (INTEROP / "package-lock.json").exists() else "install",
               "--no-audit", "--no-fund"]
    result = subprocess.run(command, cwd=INTEROP, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed in {INTEROP}:\n{result.stderr[-2000:]}")


class NodeSmsc:
    """The node SMSC process and the JSON events it prints."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind]

    async def wait_for(self, kind: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.of(kind)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {kind} events, got {self.events}")
            await asyncio.sleep(0.02)
        return self.of(kind)


@pytest.fixture
async def node_smsc() -> AsyncIterator[NodeSmsc]:
    await asyncio.to_thread(_install_node_modules)
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE, str(INTEROP / "smsc_server.js"), "0", cwd=INTEROP,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        first = await asyncio.wait_for(process.stdout.readline(), 20)
    except TimeoutError:
        process.kill()
        raise
    if not first.startswith(b"READY "):
        process.kill()
        stderr = await process.stderr.read() if process.stderr else b""
        pytest.fail(f"node SMSC did not start: {first!r} {stderr[-2000:]!r}")
    smsc = NodeSmsc(process, int(first.split()[1]))
    yield smsc
    process.terminate()
    with contextlib.suppress(ProcessLookupError):
        await asyncio.wait_for(process.wait(), 5)
    smsc._reader.cancel()


@needs_node
async def test_tocsin_client_against_npm_smpp_server(node_smsc: NodeSmsc) -> None:
    receipts: list[Receipt] = []
    account = SmppAccount("127.0.0.1", "tocsin", "secret", port=node_smsc.port, window=5)
    text = "Hochwasserwarnung für Köln — bitte höher gelegene Orte aufsuchen. " * 2
    chunks = [text[i : i + 67] for i in range(0, len(text), 67)]
    parts = [
        SmsPart(8, 0x40, bytes((5, 0, 3, 7, len(chunks), n)) + c.encode("utf-16-be"))
        for n, c in enumerate(chunks, 1)
    ]
    async with SmppClient(account, on_receipt=receipts.append) as client:
        single = await client.submit("Tocsin", "+32470123456", [SmsPart(0, 0, b"Flood alert")])
        multi = await client.submit("1722", "+4915112345678", parts)
        await node_smsc.wait_for("deliver_sm_resp", 1 + len(parts))
        deadline = time.monotonic() + 5
        while len(receipts) < 1 + len(parts) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    await node_smsc.wait_for("unbind", 1)

    binds = node_smsc.of("bind_transceiver")
    assert binds == [{"event": "bind_transceiver", "system_id": "tocsin", "password": "secret",
                      "interface_version": 0x34}]
    submits = node_smsc.of("submit_sm")
    assert [s["message_id"] for s in submits] == single + multi
    first = submits[0]
    assert (first["source_addr"], first["source_addr_ton"], first["source_addr_npi"]) == (
        "Tocsin", 5, 0)
    assert (first["destination_addr"], first["dest_addr_ton"], first["dest_addr_npi"]) == (
        "32470123456", 1, 1)
    assert (first["data_coding"], first["registered_delivery"], first["text"]) == (
        0, 1, "Flood alert")
    rest = sorted(submits[1:], key=lambda s: s["udh"])
    assert all(s["data_coding"] == 8 and s["esm_class"] & 0x40 for s in rest)
    assert (rest[0]["source_addr"], rest[0]["source_addr_ton"]) == ("1722", 3)
    assert "".join(s["text"] for s in rest) == text
    assert all(e["command_status"] == 0 for e in node_smsc.of("deliver_sm_resp"))
    assert sorted(r.message_id for r in receipts) == sorted(single + multi)
    assert {r.stat for r in receipts} == {"DELIVRD"}


CONCAT_TEXTS = [
    "Hochwasser: Pegel steigt. Keller räumen, höher gelegene Orte aufsuchen. " * 4,
    ("Тревога: покиньте зону затопления, идите на север. Évacuez! 😜 " * 2)[:100],
]


@needs_node
@pytest.mark.parametrize("mode", ["udh", "sar", "payload"])
async def test_each_concatenation_mode_against_npm_smpp_server(
        node_smsc: NodeSmsc, mode: str) -> None:
    """The independent peer receives each mode's PDUs with the right TLVs (decision 0025)."""
    receipts: list[ReceiptEvent] = []

    async def sink(event: ReceiptEvent) -> None:
        receipts.append(event)

    account = SmppAccount.from_url(
        f"smpp://tocsin:secret@127.0.0.1:{node_smsc.port}?binds=1&concat={mode}")
    sender = SmppSender([account], sink)
    await sender.start()
    try:
        outcomes = await sender.send([
            OutgoingMessage(n, "c1", f"+3247012345{n}", "de", text, source="Tocsin")
            for n, text in enumerate(CONCAT_TEXTS)])
        sent = sum(len(o.message_ids) for o in outcomes)
        await node_smsc.wait_for("deliver_sm_resp", sent)
        deadline = time.monotonic() + 5
        while len(receipts) < sent and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await sender.close()
    assert [o.result for o in outcomes] == ["sent", "sent"]
    submits = node_smsc.of("submit_sm")
    for n, text in enumerate(CONCAT_TEXTS):
        mine = [s for s in submits if s["destination_addr"] == f"3247012345{n}"]
        coding = 0 if n == 0 else 8
        assert {s["data_coding"] for s in mine} == {coding}
        if mode == "payload":
            (only,) = mine
            assert (only["payload"], only["text"], only["esm_class"]) == (text, "", 0)
            assert "sar_msg_ref_num" not in only and only["udh"] == []
        elif mode == "sar":
            mine.sort(key=lambda s: s["sar_segment_seqnum"])
            assert len(mine) == analyse(text).segments >= 2
            assert [s["sar_segment_seqnum"] for s in mine] == list(range(1, len(mine) + 1))
            assert {s["sar_total_segments"] for s in mine} == {len(mine)}
            assert len({s["sar_msg_ref_num"] for s in mine}) == 1
            assert all(s["esm_class"] & 0x40 == 0 and s["udh"] == [] for s in mine)
            assert "".join(s["text"] for s in mine) == text
        else:
            mine.sort(key=lambda s: s["udh"])
            assert len(mine) == analyse(text).segments >= 2
            assert all(s["esm_class"] & 0x40 and "sar_msg_ref_num" not in s for s in mine)
            assert [s["udh"][0][-4:] for s in mine] == [
                f"{len(mine):02x}{k:02x}" for k in range(1, len(mine) + 1)]
            assert "".join(s["text"] for s in mine) == text
    assert sorted(r.message_id for r in receipts) == sorted(
        m for o in outcomes for m in o.message_ids)


def _smpplib_session(port: int, text: str) -> tuple[list[str], list[Any]]:
    """Run smpplib (blocking sockets) against the simulator: bind, send, await receipts."""
    import smpplib.client
    import smpplib.consts
    import smpplib.gsm

    sent: list[str] = []
    received: list[Any] = []
    client = smpplib.client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: sent.append(pdu.message_id.decode()))
    client.set_message_received_handler(lambda pdu: received.append(pdu))
    client.connect()
    try:
        client.bind_transceiver(system_id="legacy", password="pw")
        parts, encoding, esm_class = smpplib.gsm.make_parts(text)
        for part in parts:
            client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
                source_addr="Tocsin",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
                destination_addr="32470123456",
                short_message=part,
                data_coding=encoding,
                esm_class=esm_class,
                registered_delivery=True,
            )
        deadline = time.monotonic() + 10
        while (len(sent) < len(parts) or len(received) < len(parts)) and (
            time.monotonic() < deadline
        ):
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return sent, received


async def test_smpplib_client_against_tocsin_simulator() -> None:
    pytest.importorskip("smpplib", reason="smpplib (dev extra) is not installed")
    text = "Сирена: учебная тревога в 12:00. Это учения, действий не требуется. " * 2
    async with SmscSimulator(system_id="legacy", password="pw") as smsc:
        sent, receipts = await asyncio.to_thread(_smpplib_session, smsc.port, text)
        for _ in range(100):
            if smsc.receipts_acknowledged == len(sent):
                break
            await asyncio.sleep(0.02)
    assert len(sent) == 3 and len(set(sent)) == 3
    assert [m.message_id for m in smsc.messages] == sent
    assert smsc.texts() == [("+32470123456", text)]
    assert all(m.system_id == "legacy" and m.source == "Tocsin" for m in smsc.messages)
    receipted = sorted(pdu.receipted_message_id.decode().rstrip("\0") for pdu in receipts)
    assert receipted == sorted(sent)
    assert all(b"stat:DELIVRD" in pdu.short_message for pdu in receipts)
    assert smsc.receipts_acknowledged == 3
