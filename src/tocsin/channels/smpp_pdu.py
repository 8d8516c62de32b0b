"""SMPP 3.4 protocol data units: encoding and decoding.

A PDU on the wire is a 16-octet header (command_length, command_id, command_status,
sequence_number; four big-endian unsigned 32-bit integers, SMPP 3.4 §3.2) followed by the
mandatory parameters of its command (§4) and optional TLV parameters (§3.3, §5.3).

Only the operations an ESME and a test SMSC need are modelled: the binds, unbind,
enquire_link, submit_sm, deliver_sm, generic_nack and their responses. Any other command is
decoded with an empty body so that the receiver can answer generic_nack (§4.3).

Strings in mandatory parameters are C-Octet strings (§3.1): ASCII terminated by a NUL. They
are handled as latin-1 here so that no byte sequence can make decoding fail.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from typing import Any

# Command ids, SMPP 3.4 §5.1.2.1.
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_RECEIVER_RESP = 0x80000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSMITTER_RESP = 0x80000002
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015

RESPONSE_BIT = 0x80000000

COMMAND_NAMES: dict[int, str] = {
    GENERIC_NACK: "generic_nack",
    BIND_RECEIVER: "bind_receiver",
    BIND_RECEIVER_RESP: "bind_receiver_resp",
    BIND_TRANSMITTER: "bind_transmitter",
    BIND_TRANSMITTER_RESP: "bind_transmitter_resp",
    SUBMIT_SM: "submit_sm",
    SUBMIT_SM_RESP: "submit_sm_resp",
    DELIVER_SM: "deliver_sm",
    DELIVER_SM_RESP: "deliver_sm_resp",
    UNBIND: "unbind",
    UNBIND_RESP: "unbind_resp",
    BIND_TRANSCEIVER: "bind_transceiver",
    BIND_TRANSCEIVER_RESP: "bind_transceiver_resp",
    ENQUIRE_LINK: "enquire_link",
    ENQUIRE_LINK_RESP: "enquire_link_resp",
}

# command_status values, SMPP 3.4 §5.1.3.
ESME_ROK = 0x00
ESME_RINVMSGLEN = 0x01
ESME_RINVCMDLEN = 0x02
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RALYBND = 0x05
ESME_RSYSERR = 0x08
ESME_RINVSRCADR = 0x0A
ESME_RINVDSTADR = 0x0B
ESME_RBINDFAIL = 0x0D
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
ESME_RUNKNOWNERR = 0xFF

STATUS_NAMES: dict[int, str] = {
    ESME_ROK: "ESME_ROK",
    ESME_RINVMSGLEN: "ESME_RINVMSGLEN",
    ESME_RINVCMDLEN: "ESME_RINVCMDLEN",
    ESME_RINVCMDID: "ESME_RINVCMDID",
    ESME_RINVBNDSTS: "ESME_RINVBNDSTS",
    ESME_RALYBND: "ESME_RALYBND",
    ESME_RSYSERR: "ESME_RSYSERR",
    ESME_RINVSRCADR: "ESME_RINVSRCADR",
    ESME_RINVDSTADR: "ESME_RINVDSTADR",
    ESME_RBINDFAIL: "ESME_RBINDFAIL",
    ESME_RINVPASWD: "ESME_RINVPASWD",
    ESME_RINVSYSID: "ESME_RINVSYSID",
    ESME_RMSGQFUL: "ESME_RMSGQFUL",
    ESME_RTHROTTLED: "ESME_RTHROTTLED",
    ESME_RX_T_APPN: "ESME_RX_T_APPN",
    0x45: "ESME_RSUBMITFAIL",
    0x65: "ESME_RX_P_APPN",
    0x66: "ESME_RX_R_APPN",
    0xFE: "ESME_RDELIVERYFAILURE",
    0x62: "ESME_RINVEXPIRY",
    ESME_RUNKNOWNERR: "ESME_RUNKNOWNERR",
}

# Optional parameter tags, SMPP 3.4 §5.3.2.
TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_SC_INTERFACE_VERSION = 0x0210
TLV_MESSAGE_PAYLOAD = 0x0424
TLV_MESSAGE_STATE = 0x0427

# esm_class bits, SMPP 3.4 §5.2.12.
ESM_CLASS_DELIVERY_RECEIPT = 0x04
ESM_CLASS_UDHI = 0x40

# message_state values, SMPP 3.4 §5.2.28, with the receipt "stat" words of Appendix B.
MESSAGE_STATES: dict[int, str] = {
    1: "ENROUTE",
    2: "DELIVRD",
    3: "EXPIRED",
    4: "DELETED",
    5: "UNDELIV",
    6: "ACCEPTD",
    7: "UNKNOWN",
    8: "REJECTD",
}
MESSAGE_STATE_BY_STAT: dict[str, int] = {stat: state for state, stat in MESSAGE_STATES.items()}

INTERFACE_VERSION_34 = 0x34
HEADER = struct.Struct(">IIII")
# A PDU larger than this is not something an SMSC or ESME sends in SMPP 3.4 (short_message
# is at most 254 octets, message_payload at most 64 KiB); refusing it bounds memory use.
MAX_PDU_LENGTH = 70_000
MAX_SHORT_MESSAGE = 254  # octets, SMPP 3.4 §5.2.22

_CSTR = 0  # C-Octet string; the limit includes the terminating NUL
_U8 = 1  # 1-octet unsigned integer
_SM = 2  # sm_length + short_message

_BIND_BODY: tuple[tuple[str, int, int], ...] = (
    ("system_id", _CSTR, 16),
    ("password", _CSTR, 9),
    ("system_type", _CSTR, 13),
    ("interface_version", _U8, 0),
    ("addr_ton", _U8, 0),
    ("addr_npi", _U8, 0),
    ("address_range", _CSTR, 41),
)
# submit_sm (§4.4.1) and deliver_sm (§4.6.1) share one layout.
_SM_BODY: tuple[tuple[str, int, int], ...] = (
    ("service_type", _CSTR, 6),
    ("source_addr_ton", _U8, 0),
    ("source_addr_npi", _U8, 0),
    ("source_addr", _CSTR, 21),
    ("dest_addr_ton", _U8, 0),
    ("dest_addr_npi", _U8, 0),
    ("destination_addr", _CSTR, 21),
    ("esm_class", _U8, 0),
    ("protocol_id", _U8, 0),
    ("priority_flag", _U8, 0),
    ("schedule_delivery_time", _CSTR, 17),
    ("validity_period", _CSTR, 17),
    ("registered_delivery", _U8, 0),
    ("replace_if_present_flag", _U8, 0),
    ("data_coding", _U8, 0),
    ("sm_default_msg_id", _U8, 0),
    ("short_message", _SM, MAX_SHORT_MESSAGE + 1),
)
_BIND_RESP_BODY = (("system_id", _CSTR, 16),)
_MESSAGE_ID_BODY = (("message_id", _CSTR, 65),)

BODIES: dict[int, tuple[tuple[str, int, int], ...]] = {
    BIND_RECEIVER: _BIND_BODY,
    BIND_TRANSMITTER: _BIND_BODY,
    BIND_TRANSCEIVER: _BIND_BODY,
    BIND_RECEIVER_RESP: _BIND_RESP_BODY,
    BIND_TRANSMITTER_RESP: _BIND_RESP_BODY,
    BIND_TRANSCEIVER_RESP: _BIND_RESP_BODY,
    SUBMIT_SM: _SM_BODY,
    DELIVER_SM: _SM_BODY,
    SUBMIT_SM_RESP: _MESSAGE_ID_BODY,
    DELIVER_SM_RESP: _MESSAGE_ID_BODY,
}


class PduError(ValueError):
    """A PDU that cannot be encoded or decoded.

    ``command_status`` is the SMPP 3.4 §5.1.3 error to answer the peer with (in a
    generic_nack or the command's response, carrying ``sequence_number``). ``framing_lost``
    is true when the header itself was bad, so the connection cannot be read further.
    """

    def __init__(
        self,
        message: str,
        command_status: int = ESME_RSYSERR,
        *,
        framing_lost: bool = False,
    ) -> None:
        super().__init__(message)
        self.command_status = command_status
        self.framing_lost = framing_lost
        self.command_id = 0
        self.sequence_number = 0


#: How a submit_sm command_status is handled (SMPP 3.4 §5.1.3, issue 13).
STATUS_FINAL, STATUS_RETRY, STATUS_THROTTLE = "final", "retry", "throttle"

#: Refusals that name a fault of the message itself: submitting it again cannot work.
FINAL_STATUSES = frozenset({
    0x01,  # ESME_RINVMSGLEN message length invalid
    0x02,  # ESME_RINVCMDLEN command length invalid
    0x03,  # ESME_RINVCMDID invalid command id
    0x06,  # ESME_RINVPRTFLG invalid priority flag
    0x07,  # ESME_RINVREGDLVFLG invalid registered delivery flag
    0x0A,  # ESME_RINVSRCADR invalid source address
    0x0B,  # ESME_RINVDSTADR invalid destination address
    0x0C,  # ESME_RINVMSGID message id invalid
    0x13,  # ESME_RINVREPFLAG invalid replace_if_present flag
    0x33,  # ESME_RINVNUMDESTS invalid number of destinations
    0x34,  # ESME_RINVDLNAME invalid distribution list name
    0x40,  # ESME_RINVDESTFLAG invalid destination flag
    0x42,  # ESME_RINVSUBREP invalid submit with replace
    0x43,  # ESME_RINVESMCLASS invalid esm_class
    0x48,  # ESME_RINVSRCTON invalid source TON
    0x49,  # ESME_RINVSRCNPI invalid source NPI
    0x50,  # ESME_RINVDSTTON invalid destination TON
    0x51,  # ESME_RINVDSTNPI invalid destination NPI
    0x53,  # ESME_RINVSYSTYP invalid system_type
    0x61,  # ESME_RINVSCHED invalid scheduled delivery time
    0x62,  # ESME_RINVEXPIRY invalid validity period
    0x63,  # ESME_RINVDFTMSGID predefined message not found
    0xC0,  # ESME_RINVOPTPARSTREAM error in the optional part of the PDU
    0xC1,  # ESME_ROPTPARNOTALLWD optional parameter not allowed
    0xC2,  # ESME_RINVPARLEN invalid parameter length
    0xC4,  # ESME_RINVOPTPARAMVAL invalid optional parameter value
})
#: The SMSC asks the ESME to slow down: ESME_RMSGQFUL (0x14), ESME_RTHROTTLED (0x58).
THROTTLE_STATUSES = frozenset({0x14, 0x58})


def classify_status(command_status: int) -> str:
    """``STATUS_FINAL``, ``STATUS_THROTTLE`` or ``STATUS_RETRY`` for a submit_sm_resp status.

    Final: the message itself is wrong (``FINAL_STATUSES``: bad addresses, lengths,
    parameters, SMPP 3.4 §5.1.3). Throttle: queue full or throttled (0x14, 0x58): send
    slower, not fail. ESME_RX_P_APPN (0x65, permanent application error) is final too.
    Everything else — ESME_RSYSERR (0x08), ESME_RSUBMITFAIL (0x45), ESME_RX_T_APPN
    (0x64), ESME_RUNKNOWNERR (0xFF), bind-state errors, reserved and vendor-specific
    codes (0x400-0x4FF) — is transient: retried until the message's validity ends,
    and reported with its status if it never succeeds.
    """
    if command_status in THROTTLE_STATUSES:
        return STATUS_THROTTLE
    if command_status in FINAL_STATUSES or command_status == 0x65:
        return STATUS_FINAL
    return STATUS_RETRY


def status_name(command_status: int) -> str:
    """Name of an SMPP 3.4 §5.1.3 command_status, e.g. ``0x58`` -> ``"ESME_RTHROTTLED"``."""
    return STATUS_NAMES.get(command_status, f"0x{command_status:08X}")


@dataclass(slots=True)
class Pdu:
    """One SMPP PDU.

    ``params`` maps the mandatory parameter names of SMPP 3.4 §4 to values: ``str`` for
    C-Octet strings, ``int`` for integers, ``bytes`` for ``short_message`` (``sm_length`` is
    derived). Missing parameters encode as empty string / 0. ``tlvs`` maps an optional
    parameter tag (§5.3.2) to its raw value octets.
    """

    command_id: int
    sequence_number: int = 0
    command_status: int = ESME_ROK
    params: dict[str, Any] = field(default_factory=dict)
    tlvs: dict[int, bytes] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Command name as written in SMPP 3.4, e.g. ``"submit_sm"``."""
        return COMMAND_NAMES.get(self.command_id, f"0x{self.command_id:08X}")

    @property
    def is_response(self) -> bool:
        """True for responses and generic_nack (the response bit of §5.1.2.1 is set)."""
        return bool(self.command_id & RESPONSE_BIT)

    def response(self, command_status: int = ESME_ROK, **params: Any) -> Pdu:
        """The response PDU for this request, carrying the same sequence_number (§3.2).

        A command without a response of its own (unknown command ids) is answered with
        generic_nack. Raises ``ValueError`` when called on a response.
        """
        if self.is_response:
            raise ValueError(f"{self.name} is a response and has no response")
        command_id = self.command_id | RESPONSE_BIT
        if command_id not in COMMAND_NAMES:
            command_id = GENERIC_NACK
        return Pdu(command_id, self.sequence_number, command_status, params)


def tlv_cstring(value: str) -> bytes:
    """Value octets of a C-Octet string TLV such as receipted_message_id (§5.3.2.12)."""
    return value.encode("latin-1") + b"\0"


def tlv_u8(value: int) -> bytes:
    """Value octets of a 1-octet integer TLV such as message_state (§5.3.2.35)."""
    return bytes((value,))


def tlv_text(value: bytes) -> str:
    """Text of a C-Octet string TLV value, tolerating a missing NUL."""
    return value.split(b"\0", 1)[0].decode("latin-1")


def encode_pdu(pdu: Pdu) -> bytes:
    """Encode ``pdu`` into its wire form (header, mandatory parameters, TLVs).

    Responses with a non-zero command_status are sent without a body, as SMPP 3.4 §4.1.2
    and §4.4.2 allow. Raises ``PduError`` naming the parameter that is too long or out of
    range.
    """
    parts: list[bytes] = []
    body = BODIES.get(pdu.command_id)
    if body is not None and not (pdu.is_response and pdu.command_status != ESME_ROK):
        params = pdu.params
        for name, kind, limit in body:
            value = params.get(name)
            if kind == _CSTR:
                raw = b"" if value is None else str(value).encode("latin-1")
                if len(raw) >= limit:
                    raise PduError(
                        f"{pdu.name}.{name} is {len(raw)} octets, at most {limit - 1} allowed",
                        ESME_RINVMSGLEN,
                    )
                parts.append(raw + b"\0")
            elif kind == _U8:
                number = 0 if value is None else int(value)
                if not 0 <= number <= 0xFF:
                    raise PduError(f"{pdu.name}.{name}={number} is not an octet")
                parts.append(bytes((number,)))
            else:
                raw = b"" if value is None else bytes(value)
                if len(raw) >= limit:
                    raise PduError(
                        f"{pdu.name}.{name} is {len(raw)} octets, at most {limit - 1} allowed"
                        " (use the message_payload TLV for longer data)",
                        ESME_RINVMSGLEN,
                    )
                parts.append(bytes((len(raw),)))
                parts.append(raw)
    for tag, value in pdu.tlvs.items():
        parts.append(struct.pack(">HH", tag, len(value)))
        parts.append(value)
    payload = b"".join(parts)
    return (
        HEADER.pack(
            HEADER.size + len(payload), pdu.command_id, pdu.command_status, pdu.sequence_number
        )
        + payload
    )


def decode_header(header: bytes) -> tuple[int, int, int, int]:
    """Decode a 16-octet header to (command_length, command_id, command_status, sequence).

    Raises ``PduError`` (ESME_RINVCMDLEN) for a length below 16 or above ``MAX_PDU_LENGTH``.
    """
    length, command_id, status, sequence = HEADER.unpack(header)
    if length < HEADER.size or length > MAX_PDU_LENGTH:
        raise PduError(f"command_length {length} out of range", ESME_RINVCMDLEN, framing_lost=True)
    return length, command_id, status, sequence


def decode_body(command_id: int, command_status: int, sequence_number: int, body: bytes) -> Pdu:
    """Decode the body that follows a header into a ``Pdu``.

    A response may stop early (an error response has no body, some SMSCs omit the NUL of
    the last string): missing parameters then take their empty values. A request whose
    mandatory parameters are cut short raises ``PduError`` (ESME_RINVMSGLEN); so do TLVs
    that run past the end of the PDU.
    """
    pdu = Pdu(command_id, sequence_number, command_status)
    layout = BODIES.get(command_id)
    pos = 0
    end = len(body)
    if layout is not None:
        lenient = bool(command_id & RESPONSE_BIT)
        params = pdu.params
        for name, kind, limit in layout:
            if pos >= end:
                if not lenient:
                    raise PduError(f"{pdu.name} ends before {name}", ESME_RINVMSGLEN)
                params[name] = "" if kind == _CSTR else (b"" if kind == _SM else 0)
                continue
            if kind == _CSTR:
                nul = body.find(b"\0", pos, pos + limit)
                if nul < 0:
                    if not lenient:
                        raise PduError(
                            f"{pdu.name}.{name} is not a NUL-terminated string of at most"
                            f" {limit} octets",
                            ESME_RINVMSGLEN,
                        )
                    nul = min(end, pos + limit)
                    params[name] = body[pos:nul].decode("latin-1")
                    pos = nul
                else:
                    params[name] = body[pos:nul].decode("latin-1")
                    pos = nul + 1
            elif kind == _U8:
                params[name] = body[pos]
                pos += 1
            else:
                length = body[pos]
                pos += 1
                if pos + length > end:
                    raise PduError(f"{pdu.name}.short_message runs past the PDU", ESME_RINVMSGLEN)
                params[name] = body[pos : pos + length]
                pos += length
    else:
        # Commands we do not model keep no body; the caller answers generic_nack.
        pos = end
    while pos < end:
        if pos + 4 > end:
            raise PduError(f"{pdu.name} has a truncated TLV header", ESME_RINVMSGLEN)
        tag, length = struct.unpack_from(">HH", body, pos)
        pos += 4
        if pos + length > end:
            raise PduError(f"{pdu.name} TLV 0x{tag:04X} runs past the PDU", ESME_RINVMSGLEN)
        pdu.tlvs[tag] = body[pos : pos + length]
        pos += length
    return pdu


def decode_pdu(data: bytes) -> Pdu:
    """Decode one complete PDU (header included). Raises ``PduError`` if malformed."""
    if len(data) < HEADER.size:
        raise PduError(f"PDU of {len(data)} octets is shorter than its header", ESME_RINVCMDLEN)
    length, command_id, status, sequence = decode_header(data[: HEADER.size])
    if length != len(data):
        raise PduError(
            f"command_length {length} does not match the {len(data)} octets received",
            ESME_RINVCMDLEN,
        )
    return decode_body(command_id, status, sequence, data[HEADER.size :])


async def read_pdu(reader: asyncio.StreamReader) -> Pdu:
    """Read and decode the next PDU from ``reader``.

    Raises ``asyncio.IncompleteReadError`` when the peer closes the connection and
    ``PduError`` for a malformed PDU: with ``framing_lost`` when the header was bad (the
    connection must be dropped), otherwise with the command_id and sequence_number to
    answer (the stream stays aligned on the next PDU).
    """
    header = await reader.readexactly(HEADER.size)
    length, command_id, status, sequence = decode_header(header)
    body = await reader.readexactly(length - HEADER.size) if length > HEADER.size else b""
    try:
        return decode_body(command_id, status, sequence, body)
    except PduError as error:
        error.command_id = command_id
        error.sequence_number = sequence
        raise
