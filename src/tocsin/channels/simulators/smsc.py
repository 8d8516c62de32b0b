"""SMSC simulator: a real SMPP 3.4 server for development, demos and tests.

It accepts binds (transmitter, receiver, transceiver; SMPP 3.4 §4.1), answers submit_sm with
a fresh message_id (§4.4), records every message, and sends a delivery receipt as deliver_sm
(§4.6, Appendix B) to a receiver or transceiver bind of the same system_id when the
submit_sm asked for one (registered_delivery, §5.2.17).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tocsin.channels.smpp_pdu import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    DELIVER_SM_RESP,
    ENQUIRE_LINK,
    ESM_CLASS_DELIVERY_RECEIPT,
    ESM_CLASS_UDHI,
    ESME_RALYBND,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    GENERIC_NACK,
    MESSAGE_STATE_BY_STAT,
    RESPONSE_BIT,
    SUBMIT_SM,
    TLV_MESSAGE_PAYLOAD,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    TLV_SC_INTERFACE_VERSION,
    UNBIND,
    Pdu,
    PduError,
    encode_pdu,
    read_pdu,
    tlv_cstring,
    tlv_u8,
)

logger = logging.getLogger(__name__)

_BINDS = (BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER)

# 3GPP TS 23.038 §6.2.1: GSM 7-bit default alphabet and its extension table (after 0x1B).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
assert len(GSM7_BASIC) == 128


def decode_gsm7_unpacked(data: bytes) -> str:
    """Decode GSM 7-bit default alphabet text sent unpacked, one septet per octet.

    3GPP TS 23.038 §6.2.1 (escape 0x1B selects the extension table, §6.2.1.1); an unknown
    extension character decodes as a space, as the standard recommends.
    """
    out: list[str] = []
    escape = False
    for octet in data:
        septet = octet & 0x7F
        if escape:
            out.append(GSM7_EXTENSION.get(septet, " "))
            escape = False
        elif septet == 0x1B:
            escape = True
        else:
            out.append(GSM7_BASIC[septet])
    return "".join(out)


def decode_payload(data_coding: int, payload: bytes) -> str:
    """Text of a short_message without its UDH, by SMPP 3.4 §5.2.19 data_coding.

    0 GSM 7-bit unpacked, 1 IA5/ASCII, 3 Latin-1, 8 UCS-2 (decoded as UTF-16-BE so that
    surrogate pairs survive); binary codings come back as hexadecimal.
    """
    coding = data_coding & 0x0F if data_coding & 0xF0 == 0xF0 else data_coding
    if data_coding & 0xF0 == 0xF0:
        # 3GPP TS 23.038 §4 message class coding group: bit 2 selects 8-bit data.
        return payload.hex() if coding & 0x04 else decode_gsm7_unpacked(payload)
    if coding == 0:
        return decode_gsm7_unpacked(payload)
    if coding == 1:
        return payload.decode("ascii", "replace")
    if coding == 3:
        return payload.decode("latin-1")
    if coding == 8:
        return payload.decode("utf-16-be", "replace")
    return payload.hex()


def split_udh(esm_class: int, short_message: bytes) -> tuple[tuple[int, int, int] | None, bytes]:
    """Split a short_message into its concatenation info and payload.

    Returns ((reference, total, sequence) or None, payload). Reads the 8-bit (IEI 0x00) and
    16-bit (IEI 0x08) concatenation elements of 3GPP TS 23.040 §9.2.3.24.1 / .8.
    """
    if not esm_class & ESM_CLASS_UDHI or not short_message:
        return None, short_message
    length = short_message[0]
    header = short_message[1 : 1 + length]
    payload = short_message[1 + length :]
    pos = 0
    concat = None
    while pos + 2 <= len(header):
        iei, iel = header[pos], header[pos + 1]
        value = header[pos + 2 : pos + 2 + iel]
        if iei == 0x00 and iel == 3:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08 and iel == 4:
            concat = ((value[0] << 8) | value[1], value[2], value[3])
        pos += 2 + iel
    return concat, payload


def decode_message(
    data_coding: int, esm_class: int, short_message: bytes
) -> tuple[str, tuple[int, int, int] | None]:
    """(text, (reference, total, sequence) or None) of one short_message.

    Uses the project's decoder (``tocsin.messages.sms.decode_short_message``) when it is
    installed and accepts the octets, else the lenient local decoder of this module, so
    that the simulator records whatever an ESME sends.
    """
    try:
        from tocsin.messages.sms import decode_short_message
    except ImportError:
        pass
    else:
        try:
            return decode_short_message(
                data_coding, short_message, bool(esm_class & ESM_CLASS_UDHI)
            )
        except (ValueError, TypeError):
            pass  # e.g. a coding it does not support: fall back to the lenient decoder
    concat, payload = split_udh(esm_class, short_message)
    return decode_payload(data_coding, payload), concat


def decode_submission(
    data_coding: int, esm_class: int, short_message: bytes, tlvs: dict[int, bytes]
) -> tuple[str, tuple[str, int, int, int] | None]:
    """(text, (how, reference, total, sequence) or None) of one submit_sm: Tocsin's
    ``decode_sm`` with this module's lenient decoder, so whatever an ESME sends is
    recorded."""
    from tocsin.messages.sms import decode_sm

    return decode_sm(data_coding, esm_class, short_message, tlvs, decode=decode_message)


@dataclass(frozen=True, slots=True)
class Reassembled:
    """One message as the handset would show it, rebuilt from the submit_sm received.

    ``parts``: the sequence numbers received (duplicates once); ``total``: the count the
    parts announce (1 for a single submit_sm); ``complete``: every part 1..total came;
    ``missing``: the sequence numbers that did not; ``text``: the parts present joined
    in sequence order, whatever order they arrived in; ``how``: ``"single"``,
    ``"udh"``, ``"sar"`` or ``"payload"``.
    """

    destination: str
    text: str
    how: str
    total: int
    parts: tuple[int, ...]
    message_ids: tuple[str, ...]

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(n for n in range(1, self.total + 1) if n not in self.parts)

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass(slots=True)
class SmscMessage:
    """One submit_sm the simulator accepted.

    ``source``/``destination`` carry a '+' when their TON is international (1).
    ``received_at`` is UTC. ``validity_period``: as submitted (SMPP 3.4 §7.1.1 time
    format, empty = the SMSC default).
    """

    source: str
    destination: str
    data_coding: int
    esm_class: int
    short_message: bytes
    message_id: str
    system_id: str
    received_at: datetime
    registered_delivery: int = 0
    source_ton: int = 0
    dest_ton: int = 0
    validity_period: str = ""
    #: Optional parameters as received (tag -> value octets): SAR, message_payload.
    tlvs: dict[int, bytes] = field(default_factory=dict)


@dataclass(eq=False)
class _Session:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    system_id: str = ""
    bind: int = 0  # bind command id, 0 while unbound
    sequence: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def can_receive(self) -> bool:
        return self.bind in (BIND_RECEIVER, BIND_TRANSCEIVER)

    @property
    def can_transmit(self) -> bool:
        return self.bind in (BIND_TRANSMITTER, BIND_TRANSCEIVER)

    def send(self, pdu: Pdu) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_pdu(pdu))


class SmscSimulator:
    """A local SMSC speaking SMPP 3.4 over TCP.

    ``system_id``/``password``: credentials to check at bind (None accepts any; a wrong
    password gives ESME_RINVPASWD 0x0E). ``receipt_delay``: seconds before the receipt.
    ``receipt_stat``: Appendix B stat of receipts; destinations (E.164 with '+') in
    ``fail_destinations`` get UNDELIV instead. ``throttle_every``: when N > 0 every Nth
    submit_sm is refused with ESME_RTHROTTLED (0x58) and not recorded. ``error_every``:
    when N > 0 every Nth submit_sm is refused with ``error_status`` (default ESME_RSYSERR
    0x08, a transient system error) and not recorded. ``id_prefix``: the message ids'
    fixed prefix (default random per instance); two simulators with the same prefix
    hand out the same ids, as an SMSC does after a restart. ``hex_ids``: ids in
    hexadecimal in submit_sm_resp (default); the receipt text always carries them as
    given unless ``decimal_receipt_ids``, which writes the decimal value there (some
    SMSCs do) and leaves out the receipted_message_id TLV.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        system_id: str | None = None,
        password: str | None = None,
        receipt_delay: float = 0.0,
        receipt_stat: str = "DELIVRD",
        fail_destinations: set[str] | frozenset[str] = frozenset(),
        throttle_every: int = 0,
        error_every: int = 0,
        error_status: int = ESME_RSYSERR,
        id_prefix: str | None = None,
        decimal_receipt_ids: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.system_id = system_id
        self.password = password
        self.receipt_delay = receipt_delay
        self.receipt_stat = receipt_stat
        self.fail_destinations = set(fail_destinations)
        self.throttle_every = throttle_every
        self.error_every = error_every
        self.error_status = error_status
        self.errors = 0
        self.decimal_receipt_ids = decimal_receipt_ids
        self.messages: list[SmscMessage] = []
        self.receipts_sent = 0
        self.receipts_acknowledged = 0
        #: Mobile-originated messages sent (``send_mo``) and acknowledged by the client.
        self.mo_sent = 0
        self.mo_acknowledged = 0
        self._mo_pending: set[tuple[int, int]] = set()
        self.throttled = 0
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[_Session] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._waiting_receipts: dict[str, list[Pdu]] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._submits = 0
        self._ids = itertools.count(1)
        self._id_prefix = secrets.token_hex(2).upper() if id_prefix is None else id_prefix

    async def start(self) -> None:
        """Listen on ``host:port``; ``port`` holds the real port afterwards (0 picks one)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        logger.info("SMSC simulator listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener and every connection; pending receipts are dropped."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._server is not None:
            self._server.close()
        await self.drop_connections()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmscSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def drop_connections(self) -> None:
        """Cut every client connection without unbind, as a failing SMSC would."""
        for session in list(self._sessions):
            transport = session.writer.transport
            transport.abort()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    @property
    def bound_sessions(self) -> int:
        """Number of connections currently bound."""
        return sum(1 for session in self._sessions if session.bind)

    def reassembled(self) -> list[Reassembled]:
        """Every message received, concatenated parts put back together (any order).

        Messages come in the order their first part arrived. Parts are matched by
        system_id, source, destination, the way they are marked (UDH or SAR TLVs), the
        reference number and the total (3GPP TS 23.040 §9.2.3.24.1, SMPP 3.4
        §5.3.2.22); a message with parts missing is kept, ``complete`` False. A
        submit_sm with message_payload is one whole message.
        """
        order: list[tuple[object, ...]] = []
        groups: dict[tuple[object, ...], tuple[str, str, int, dict[int, tuple[str, str]]]] = {}
        for index, message in enumerate(self.messages):
            text, concat = decode_submission(
                message.data_coding, message.esm_class, message.short_message, message.tlvs
            )
            if concat is None:
                how = "payload" if TLV_MESSAGE_PAYLOAD in message.tlvs else "single"
                key: tuple[object, ...] = ("single", index)
                total, sequence = 1, 1
            else:
                how, reference, total, sequence = concat
                key = (message.system_id, message.source, message.destination, how,
                       reference, total)
            if key not in groups:
                groups[key] = (message.destination, how, total, {})
                order.append(key)
            groups[key][3][sequence] = (text, message.message_id)
        result = []
        for key in order:
            destination, how, total, parts = groups[key]
            ordered = sorted(parts.items())
            result.append(Reassembled(
                destination, "".join(text for _, (text, _) in ordered), how, total,
                tuple(n for n, _ in ordered), tuple(mid for _, (_, mid) in ordered)))
        return result

    def texts(self) -> list[tuple[str, str]]:
        """(destination, full text) per message, concatenated parts joined in order.

        As ``reassembled``: a message with parts missing is joined from the parts
        present (``incomplete`` lists those).
        """
        return [(m.destination, m.text) for m in self.reassembled()]

    def incomplete(self) -> list[Reassembled]:
        """Concatenated messages some of whose parts never came."""
        return [m for m in self.reassembled() if not m.complete]

    # ------------------------------------------------------------------ connection handling

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = _Session(reader, writer)
        self._sessions.add(session)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)  # type: ignore[arg-type]
        try:
            while True:
                try:
                    pdu = await read_pdu(reader)
                except PduError as error:
                    if error.framing_lost:
                        break
                    session.send(Pdu(GENERIC_NACK, error.sequence_number, error.command_status))
                    continue
                if not self._handle(session, pdu):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._sessions.discard(session)
            self._handlers.discard(task)  # type: ignore[arg-type]
            with contextlib.suppress(Exception):
                writer.close()

    def _handle(self, session: _Session, pdu: Pdu) -> bool:
        """Answer one PDU; False ends the connection."""
        command = pdu.command_id
        if command == SUBMIT_SM:
            self._on_submit(session, pdu)
        elif command & RESPONSE_BIT:
            if command == DELIVER_SM_RESP and pdu.command_status == ESME_ROK:
                key = (id(session), pdu.sequence_number)
                if key in self._mo_pending:
                    self._mo_pending.discard(key)
                    self.mo_acknowledged += 1
                else:
                    self.receipts_acknowledged += 1
        elif command == ENQUIRE_LINK:
            session.send(pdu.response())
        elif command in _BINDS:
            self._on_bind(session, pdu)
        elif command == UNBIND:
            session.send(pdu.response())
            return False
        elif command == DELIVER_SM:
            session.send(pdu.response(ESME_RINVCMDID))  # an SMSC does not take deliver_sm
        else:
            session.send(Pdu(GENERIC_NACK, pdu.sequence_number, ESME_RINVCMDID))
        return True

    def _on_bind(self, session: _Session, pdu: Pdu) -> None:
        system_id = pdu.params.get("system_id", "")
        if session.bind:
            session.send(pdu.response(ESME_RALYBND))
            return
        if self.system_id is not None and system_id != self.system_id:
            session.send(pdu.response(ESME_RINVSYSID))
            return
        if self.password is not None and pdu.params.get("password", "") != self.password:
            session.send(pdu.response(ESME_RINVPASWD))
            return
        session.system_id = system_id
        session.bind = pdu.command_id
        response = pdu.response(system_id="TOCSINSIM")
        response.tlvs[TLV_SC_INTERFACE_VERSION] = tlv_u8(0x34)
        session.send(response)
        if session.can_receive:
            for receipt in self._waiting_receipts.pop(system_id, []):
                self._deliver(session, receipt)

    def _on_submit(self, session: _Session, pdu: Pdu) -> None:
        if not session.can_transmit:
            session.send(pdu.response(ESME_RINVBNDSTS))
            return
        self._submits += 1
        if self.throttle_every and self._submits % self.throttle_every == 0:
            self.throttled += 1
            session.send(pdu.response(ESME_RTHROTTLED))
            return
        if self.error_every and self._submits % self.error_every == 0:
            self.errors += 1
            session.send(pdu.response(self.error_status))
            return
        params = pdu.params
        message_id = f"{self._id_prefix}{next(self._ids):08X}"
        source_ton = params["source_addr_ton"]
        dest_ton = params["dest_addr_ton"]
        message = SmscMessage(
            source=_format(params["source_addr"], source_ton),
            destination=_format(params["destination_addr"], dest_ton),
            data_coding=params["data_coding"],
            esm_class=params["esm_class"],
            short_message=bytes(params["short_message"]),
            message_id=message_id,
            system_id=session.system_id,
            received_at=datetime.now(UTC),
            registered_delivery=params["registered_delivery"],
            source_ton=source_ton,
            dest_ton=dest_ton,
            validity_period=str(params.get("validity_period", "")),
            tlvs=dict(pdu.tlvs),
        )
        self.messages.append(message)
        session.send(pdu.response(message_id=message_id))
        self._schedule_receipt(message, params)

    # ------------------------------------------------------------------ receipts

    def _schedule_receipt(self, message: SmscMessage, params: dict[str, object]) -> None:
        failed = message.destination in self.fail_destinations
        stat = "UNDELIV" if failed else self.receipt_stat
        # SMPP 3.4 §5.2.17 bits 1-0: 1 = receipt on success or failure, 2 = on failure only.
        wanted = message.registered_delivery & 0x03
        if wanted == 0 or wanted == 3 or (wanted == 2 and stat == "DELIVRD"):
            return
        now = datetime.now(UTC).strftime("%y%m%d%H%M")
        delivered = "001" if stat == "DELIVRD" else "000"
        decoded, _ = decode_submission(message.data_coding, message.esm_class,
                                       message.short_message, message.tlvs)
        preview = decoded[:20]
        preview = preview.encode("ascii", "replace").decode("ascii")
        receipt_id = (str(int(message.message_id, 16)) if self.decimal_receipt_ids
                      else message.message_id)
        text = (
            f"id:{receipt_id} sub:001 dlvrd:{delivered} submit date:{now}"
            f" done date:{now} stat:{stat} err:{'000' if stat == 'DELIVRD' else '001'}"
            f" text:{preview}"
        )
        receipt = Pdu(
            DELIVER_SM,
            params={
                "source_addr_ton": params["dest_addr_ton"],
                "source_addr_npi": params["dest_addr_npi"],
                "source_addr": params["destination_addr"],
                "dest_addr_ton": params["source_addr_ton"],
                "dest_addr_npi": params["source_addr_npi"],
                "destination_addr": params["source_addr"],
                "esm_class": ESM_CLASS_DELIVERY_RECEIPT,
                "data_coding": 0,
                "short_message": text.encode("ascii")[:254],
            },
            tlvs={
                TLV_RECEIPTED_MESSAGE_ID: tlv_cstring(message.message_id),
                TLV_MESSAGE_STATE: tlv_u8(MESSAGE_STATE_BY_STAT.get(stat, 7)),
            },
        )
        if self.decimal_receipt_ids:
            del receipt.tlvs[TLV_RECEIPTED_MESSAGE_ID]
        loop = asyncio.get_running_loop()
        if self.receipt_delay <= 0:
            loop.call_soon(self._route_receipt, message.system_id, receipt, None)
        else:
            holder: list[asyncio.TimerHandle] = []
            holder.append(
                loop.call_later(
                    self.receipt_delay,
                    lambda: self._route_receipt(message.system_id, receipt, holder[0]),
                )
            )
            self._timers.add(holder[0])

    def _route_receipt(
        self, system_id: str, receipt: Pdu, timer: asyncio.TimerHandle | None
    ) -> None:
        if timer is not None:
            self._timers.discard(timer)
        receivers = [s for s in self._sessions if s.system_id == system_id and s.can_receive]
        if not receivers:
            # Held until a receiver of that account binds, like a store-and-forward SMSC.
            self._waiting_receipts.setdefault(system_id, []).append(receipt)
            return
        self._deliver(receivers[self.receipts_sent % len(receivers)], receipt)

    def _deliver(self, session: _Session, receipt: Pdu) -> None:
        receipt.sequence_number = next(session.sequence)
        session.send(receipt)
        if receipt.params.get("esm_class", 0) & ESM_CLASS_DELIVERY_RECEIPT:
            self.receipts_sent += 1
        else:
            self._mo_pending.add((id(session), receipt.sequence_number))

    # ------------------------------------------------------------- mobile originated

    def send_mo(self, source: str, destination: str, text: str,
                system_id: str = "tocsin", concat: str = "udh",
                reverse: bool = False, drop: tuple[int, ...] = (),
                reference: int | None = None) -> None:
        """A handset ``source`` (E.164) texts ``text`` to ``destination`` (the short code
        or long number of the account ``system_id``): deliver_sm with esm_class 0
        (SMPP 3.4 §5.2.12: not a receipt) to a receiver bound for that account, held
        until one binds. GSM-7 (unpacked, data_coding 0) when every character is in the
        basic table, else UCS-2 (data_coding 8). A text longer than one SMS arrives as
        a concatenated message, its parts marked by a UDH (``concat="udh"``) or the SAR
        TLVs (``"sar"``), with ``reference`` (default: a new one), in order or
        ``reverse``d; ``drop`` names parts (1-based) that never arrive."""
        from tocsin.messages.sms import encode_message

        parts: list[tuple[int, bytes, dict[int, bytes]]] | None
        if not all(ch in GSM7_BASIC for ch in text):
            coding, payload = 8, text.encode("utf-16-be")
            parts = [(0, payload, {})] if len(payload) <= 140 else None
        else:
            coding, payload = 0, bytes(GSM7_BASIC.index(ch) for ch in text)
            parts = [(0, payload, {})] if len(payload) <= 160 else None
        if parts is None:
            ref = next(self._ids) % 256 if reference is None else reference
            encoded = encode_message(text, ref, concat=concat)
            coding = encoded[0].data_coding
            parts = [(p.esm_class, p.short_message, dict(p.tlvs)) for p in encoded]
        numbered = list(enumerate(parts, 1))
        for number, (esm_class, short_message, tlvs) in reversed(numbered) if reverse \
                else numbered:
            if number in drop:
                continue
            international = source.startswith("+")
            pdu = Pdu(DELIVER_SM, params={
                "source_addr_ton": 1 if international else 0, "source_addr_npi": 1,
                "source_addr": source.lstrip("+"),
                "dest_addr_ton": 0, "dest_addr_npi": 1, "destination_addr": destination,
                "esm_class": esm_class, "data_coding": coding,
                "short_message": short_message[:254],
            }, tlvs=tlvs)
            self.mo_sent += 1
            self._route_receipt(system_id, pdu, None)


def _format(address: str, ton: int) -> str:
    return "+" + address if ton == 1 and address.isdigit() else address


async def serve_forever(host: str = "127.0.0.1", port: int = 2775, **options: object) -> None:
    """Run an ``SmscSimulator`` on ``host:port`` until cancelled (used by ``make demo``).

    ``options`` are passed to ``SmscSimulator`` (system_id, password, receipt_delay, ...).
    """
    simulator = SmscSimulator(host, port, **options)  # type: ignore[arg-type]
    await simulator.start()
    print(f"SMSC simulator listening on {host}:{simulator.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await simulator.stop()


if __name__ == "__main__":  # pragma: no cover - manual use: python -m ...smsc [port]
    import sys

    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(port=int(sys.argv[1]) if len(sys.argv) > 1 else 2775))
