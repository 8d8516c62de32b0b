"""SMPP 3.4 client (ESME) over asyncio: bind, submit_sm with a send window, delivery receipts.

One ``SmppClient`` holds ``binds`` TCP connections to one SMSC account, each bound as a
transceiver (SMPP 3.4 §4.1.5), so submit_sm and the deliver_sm receipts share connections.
Requests are pipelined: each bind allows up to ``window`` submit_sm awaiting their
submit_sm_resp, and a rate limiter keeps the whole client under ``tps`` submit_sm per second
(the throughput an operator grants an account).

The client does not encode text: the caller hands over parts already encoded and segmented
(data_coding, esm_class, short_message), see ``SmsPart``.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from tocsin.channels.smpp_pdu import (
    BIND_TRANSCEIVER,
    DELIVER_SM,
    ENQUIRE_LINK,
    ESM_CLASS_DELIVERY_RECEIPT,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    ESME_RX_T_APPN,
    GENERIC_NACK,
    INTERFACE_VERSION_34,
    MESSAGE_STATES,
    RESPONSE_BIT,
    STATUS_RETRY,
    STATUS_THROTTLE,
    SUBMIT_SM,
    TLV_MESSAGE_STATE,
    TLV_RECEIPTED_MESSAGE_ID,
    UNBIND,
    Pdu,
    PduError,
    classify_status,
    encode_pdu,
    read_pdu,
    status_name,
    tlv_text,
)

logger = logging.getLogger(__name__)

DEFAULT_PORT = 2775  # IANA-registered SMPP port
RETRYABLE_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})

# TON / NPI values, SMPP 3.4 §5.2.5 and §5.2.6.
TON_UNKNOWN = 0
TON_INTERNATIONAL = 1
TON_NETWORK_SPECIFIC = 3
TON_ALPHANUMERIC = 5
NPI_UNKNOWN = 0
NPI_E164 = 1


# --------------------------------------------------------------------------- errors


class SmppError(Exception):
    """Any failure talking to an SMSC. ``retryable`` says whether sending again may work."""

    retryable: bool = False


class SmppConnectionError(SmppError):
    """The TCP connection could not be opened, or was lost while a request was outstanding.

    ``maybe_sent``: the request was on the wire when the connection was lost, so the
    SMSC may have accepted it (its submit_sm_resp never came)."""

    retryable = True

    def __init__(self, message: str, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


class SmppTimeoutError(SmppError):
    """The SMSC did not answer a request within the response timeout (it may have taken it)."""

    retryable = True
    maybe_sent = True


class SmppBindError(SmppError):
    """The SMSC refused the bind (SMPP 3.4 §4.1); ``command_status`` says why."""

    def __init__(self, command_status: int, system_id: str, address: str) -> None:
        super().__init__(
            f"SMSC {address} refused bind_transceiver for system_id {system_id!r}:"
            f" {status_name(command_status)} (0x{command_status:08X})"
        )
        self.command_status = command_status


class SmppSubmitError(SmppError):
    """The SMSC answered submit_sm with a non-zero command_status (SMPP 3.4 §5.1.3).

    Classified by ``smpp_pdu.classify_status``: ``throttle`` (ESME_RTHROTTLED 0x58,
    ESME_RMSGQFUL 0x14: send slower), ``retryable`` (those and every transient error,
    e.g. ESME_RSYSERR 0x08: the same message may be submitted again later), else final.
    """

    def __init__(self, command_status: int) -> None:
        super().__init__(
            f"submit_sm refused: {status_name(command_status)} (0x{command_status:08X})"
        )
        self.command_status = command_status
        self.classification = classify_status(command_status)
        self.throttle = self.classification == STATUS_THROTTLE
        self.retryable = self.classification in (STATUS_RETRY, STATUS_THROTTLE)


# --------------------------------------------------------------------------- account


#: What a plain ``TOCSIN_SMPP_URL`` gets (issue 13, decision 0014): 2 binds × a window of
#: 100 and 1,000 submit_sm/s, twice the reference floor of 500 SMS/s; lower them in the
#: URL when the SMSC's contract allows less.
URL_DEFAULTS = {"binds": 2, "window": 100, "tps": 1000}
_QUERY_INTS = {"binds": 1, "window": 1, "tps": 1, "source_ton": 0, "source_npi": 0}
_QUERY_FLOATS = {"timeout", "enquire_link", "validity", "reconnect_max"}
#: Options with a fixed set of values (decision 0025): value as written -> value kept.
_QUERY_CHOICES: dict[str, dict[str, object]] = {
    "concat": {"udh": "udh", "sar": "sar", "payload": "payload"},
    "udh_ref": {"8": 8, "16": 16},
    "gsm_coding": {"0": 0, "1": 1, "3": 3},
    # SMPP 3.4 §5.2.19: data_coding 0 is sent one septet per octet; packed septets are
    # not offered (few SMSCs take them over SMPP), so only the default is accepted.
    "gsm_packing": {"unpacked": "unpacked"},
}


@dataclass(frozen=True, slots=True)
class SmppAccount:
    """Credentials and limits of one SMSC account.

    ``window``: most submit_sm awaiting a response per bind; ``tps``: most submit_sm per
    second for the whole client; ``timeout``: seconds to wait for any response;
    ``enquire_link``: seconds between keepalives (SMPP 3.4 §4.11). ``source_ton`` /
    ``source_npi`` force the source address type instead of deriving it from its form.
    ``validity``: seconds a message stays valid at the SMSC (submit_sm validity_period,
    SMPP 3.4 §5.2.16; a message's own ``valid_until`` shortens it), so a stale alert is
    not delivered hours later. ``reconnect_max``: the longest wait between two attempts
    to reconnect a lost bind, seconds. ``concat``: how a long text is cut (decision
    0025): ``udh`` (Tocsin writes the 3GPP TS 23.040 header), ``sar`` (SMPP 3.4 SAR
    TLVs, the SMSC writes it) or ``payload`` (one submit_sm with message_payload, the
    SMSC cuts it); ``udh_ref``: 8- or 16-bit concatenation reference; ``gsm_coding``:
    data_coding of a GSM-7 text, 0 (SMSC default alphabet), 1 (IA5 when ASCII) or 3
    (Latin-1 when it fits), see ``tocsin.messages.sms.encode_message``.
    """

    host: str
    system_id: str
    password: str = field(default="", repr=False)
    port: int = DEFAULT_PORT
    system_type: str = ""
    binds: int = 1
    window: int = 10
    tps: int = 100
    source_ton: int | None = None
    source_npi: int | None = None
    timeout: float = 10.0
    enquire_link: float = 30.0
    validity: float = 3600.0
    reconnect_max: float = 2.0
    concat: str = "udh"
    udh_ref: int = 8
    gsm_coding: int = 0
    gsm_packing: str = "unpacked"

    def __post_init__(self) -> None:
        # C-Octet string limits of bind_transceiver, SMPP 3.4 §4.1.5.
        if not self.system_id or len(self.system_id) > 15:
            raise ValueError(f"SMPP system_id {self.system_id!r} must be 1 to 15 characters")
        if len(self.password) > 8:
            raise ValueError("SMPP password must be at most 8 characters (SMPP 3.4 §4.1.5)")
        if len(self.system_type) > 12:
            raise ValueError(f"SMPP system_type {self.system_type!r} exceeds 12 characters")
        if not self.host:
            raise ValueError("SMPP host is missing")
        if not 0 < self.port < 65536:
            raise ValueError(f"SMPP port {self.port} is not a TCP port")
        for name in ("binds", "window", "tps"):
            if getattr(self, name) < 1:
                raise ValueError(f"SMPP {name} must be at least 1, got {getattr(self, name)}")
        for name in ("source_ton", "source_npi"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 255:
                raise ValueError(f"SMPP {name} must be an octet, got {value}")
        if self.timeout <= 0 or self.enquire_link <= 0:
            raise ValueError("SMPP timeout and enquire_link must be positive seconds")
        if not 60 <= self.validity <= 7 * 86400:
            raise ValueError(f"SMPP validity must be 60 s to 7 days, got {self.validity:g}")
        if self.reconnect_max <= 0:
            raise ValueError("SMPP reconnect_max must be positive seconds")
        for name, choices in _QUERY_CHOICES.items():
            if getattr(self, name) not in choices.values():
                raise ValueError(f"SMPP {name}={getattr(self, name)!r} is not one of"
                                 f" {', '.join(choices)}")

    @property
    def address(self) -> str:
        """``host:port`` of the SMSC."""
        return f"{self.host}:{self.port}"

    @property
    def key(self) -> str:
        """``system_id@host:port``: the account its message ids belong to."""
        return f"{self.system_id}@{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str) -> SmppAccount:
        """Parse ``smpp://system_id:password@host:port?binds=2&window=50&tps=500``.

        Query keys: binds, window, tps, system_type, source_ton, source_npi, timeout,
        enquire_link, validity, reconnect_max (seconds); concat (udh, sar, payload),
        udh_ref (8, 16), gsm_coding (0, 1, 3), gsm_packing (unpacked). binds, window
        and tps default to ``URL_DEFAULTS`` (2, 100, 1,000/s: the reference floor of
        500 SMS/s with room). The port defaults to 2775; user and password are
        percent-decoded. Raises ``ValueError`` naming the part of the URL that is wrong
        (for a choice: the parameter and its allowed values).
        """
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as error:
            raise ValueError(f"SMPP URL {_redact(url)!r}: bad port or host ({error})") from None
        if parts.scheme != "smpp":
            raise ValueError(
                f"SMPP URL {_redact(url)!r}: scheme must be 'smpp', got {parts.scheme!r}"
            )
        if not parts.hostname:
            raise ValueError(f"SMPP URL {_redact(url)!r}: host is missing")
        if not parts.username:
            raise ValueError(f"SMPP URL {_redact(url)!r}: system_id (user part) is missing")
        options: dict[str, object] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _QUERY_INTS:
                try:
                    options[key] = int(value)
                except ValueError:
                    raise ValueError(
                        f"SMPP URL {_redact(url)!r}: {key}={value!r} is not an integer"
                    ) from None
            elif key in _QUERY_FLOATS:
                try:
                    options[key] = float(value)
                except ValueError:
                    raise ValueError(
                        f"SMPP URL {_redact(url)!r}: {key}={value!r} is not a number of seconds"
                    ) from None
            elif key == "system_type":
                options[key] = value
            elif key in _QUERY_CHOICES:
                choices = _QUERY_CHOICES[key]
                if value not in choices:
                    hint = (" (packed septets are not supported: most SMSCs want them"
                            " unpacked, SMPP 3.4 §5.2.19)" if key == "gsm_packing" else "")
                    raise ValueError(
                        f"SMPP URL {_redact(url)!r}: {key}={value!r} is not one of"
                        f" {', '.join(choices)}{hint}"
                    )
                options[key] = choices[value]
            else:
                raise ValueError(f"SMPP URL {_redact(url)!r}: unknown parameter {key!r}")
        for name, default in URL_DEFAULTS.items():
            options.setdefault(name, default)
        try:
            return cls(
                host=parts.hostname,
                port=port or DEFAULT_PORT,
                system_id=unquote(parts.username),
                password=unquote(parts.password or ""),
                **options,  # type: ignore[arg-type]
            )
        except ValueError as error:
            raise ValueError(f"SMPP URL {_redact(url)!r}: {error}") from None


def _redact(url: str) -> str:
    """The URL with its password replaced, for error messages and logs."""
    # The password runs to the last '@' before the host, with or without a scheme.
    return re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?[^:/@?#]*:)[^/?#]*@", r"\1***@", url)


def parse_smpp_urls(value: str) -> list[SmppAccount]:
    """Parse a space-separated list of SMPP URLs (see ``SmppAccount.from_url``).

    Raises ``ValueError`` naming the first wrong URL; an empty string gives an empty list.
    """
    return [SmppAccount.from_url(url) for url in value.split()]


# --------------------------------------------------------------------------- parts & receipts


class SmsPartLike(Protocol):
    """What ``SmppClient.submit`` needs of one encoded segment."""

    @property
    def data_coding(self) -> int: ...

    @property
    def esm_class(self) -> int: ...

    @property
    def short_message(self) -> bytes: ...


class SmsPart(NamedTuple):
    """One encoded SMS segment, ready for submit_sm (SMPP 3.4 §4.4.1).

    ``data_coding``: SMPP 3.4 §5.2.19 (0 GSM 7-bit default alphabet, unpacked, one septet
    per octet; 8 UCS-2); ``esm_class``: 0x40 when ``short_message`` starts with a user data
    header (3GPP TS 23.040 §9.2.3.24); ``short_message``: at most 254 octets; ``tlvs``:
    optional parameters (tag, value octets), e.g. the SAR TLVs or message_payload.
    """

    data_coding: int
    esm_class: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Receipt:
    """A delivery receipt (deliver_sm with esm_class bit 0x04, SMPP 3.4 §5.2.12).

    ``message_id`` is the id the SMSC gave in submit_sm_resp; ``stat`` one of DELIVRD,
    EXPIRED, UNDELIV, REJECTD, DELETED, UNKNOWN, ACCEPTD, ENROUTE (Appendix B); ``err`` the
    network error code as text; ``done_at`` the UTC time of the final state, if given;
    ``destination`` the handset number the message went to (deliver_sm source_addr).
    """

    message_id: str
    stat: str
    err: str = ""
    done_at: datetime | None = None
    destination: str = ""
    text: str = ""
    #: True when the id came from the receipted_message_id TLV (exactly as submitted),
    #: False when read from the receipt text (which some SMSCs write in decimal).
    id_from_tlv: bool = False

    @property
    def delivered(self) -> bool:
        """True when the handset got the message."""
        return self.stat == "DELIVRD"

    @property
    def final(self) -> bool:
        """True for states that will not change any more (all but ENROUTE and ACCEPTD)."""
        return self.stat not in ("ENROUTE", "ACCEPTD")

    @classmethod
    def from_deliver_sm(cls, pdu: Pdu) -> Receipt:
        """Build a receipt from a deliver_sm PDU.

        Reads the Appendix B text ``id:… sub:… dlvrd:… submit date:YYMMDDhhmm done
        date:YYMMDDhhmm stat:… err:… text:…``; the TLVs receipted_message_id (0x001E) and
        message_state (0x0427), when present, take precedence (SMPP 3.4 §5.3.2.12, §5.3.2.35).
        Raises ``ValueError`` when no message id can be found.
        """
        text = bytes(pdu.params.get("short_message", b"")).decode("latin-1")
        fields = parse_receipt_text(text)
        message_id = fields.get("id", "")
        stat = fields.get("stat", "").upper()
        from_tlv = False
        if TLV_RECEIPTED_MESSAGE_ID in pdu.tlvs:
            tlv_id = tlv_text(pdu.tlvs[TLV_RECEIPTED_MESSAGE_ID])
            message_id, from_tlv = (tlv_id, True) if tlv_id else (message_id, False)
        state = pdu.tlvs.get(TLV_MESSAGE_STATE)
        if state:
            stat = MESSAGE_STATES.get(state[0], stat or "UNKNOWN")
        if not message_id:
            raise ValueError(f"delivery receipt without a message id: {text!r}")
        return cls(
            message_id=message_id,
            stat=stat or "UNKNOWN",
            err=fields.get("err", ""),
            done_at=_receipt_time(fields.get("done date", "")),
            destination=_format_address(
                pdu.params.get("source_addr", ""), pdu.params.get("source_addr_ton", 0)
            ),
            text=fields.get("text", ""),
            id_from_tlv=from_tlv,
        )


_RECEIPT_KEY = re.compile(r"(?<!\w)(id|sub|dlvrd|submit date|done date|stat|err|text):", re.I)


def parse_receipt_text(text: str) -> dict[str, str]:
    """Split a delivery receipt text (SMPP 3.4 Appendix B) into its fields.

    Keys are lower-case (``id``, ``sub``, ``dlvrd``, ``submit date``, ``done date``,
    ``stat``, ``err``, ``text``); ``text`` runs to the end since it may hold anything.
    Unknown content is ignored; missing fields are absent.
    """
    fields: dict[str, str] = {}
    matches = list(_RECEIPT_KEY.finditer(text))
    for index, match in enumerate(matches):
        key = match.group(1).lower()
        if key == "text":
            fields[key] = text[match.end() :]
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        fields.setdefault(key, text[match.end() : end].strip())
    return fields


def _receipt_time(value: str) -> datetime | None:
    """YYMMDDhhmm or YYMMDDhhmmss of Appendix B, taken as UTC; None if absent or malformed."""
    digits = value.strip()
    if not digits.isdigit() or len(digits) not in (10, 12):
        return None
    try:
        return datetime.strptime(
            digits, "%y%m%d%H%M%S" if len(digits) == 12 else "%y%m%d%H%M"
        ).replace(tzinfo=UTC)
    except ValueError:
        return None


def _format_address(address: str, ton: int) -> str:
    """Address as text, E.164 with '+' when its TON is international."""
    if ton == TON_INTERNATIONAL and address.isdigit():
        return "+" + address
    return address


def source_address(
    source: str, ton: int | None = None, npi: int | None = None
) -> tuple[int, int, str]:
    """(TON, NPI, address) for a submit_sm source, SMPP 3.4 §5.2.5-§5.2.6.

    Alphanumeric sender (at most 11 characters, 3GPP TS 23.040 §9.1.2.5) -> 5/0; short code
    of at most 6 digits -> network specific 3/0; longer numbers, with or without '+' ->
    international 1/1. ``ton``/``npi`` override the derived values. Raises ``ValueError``.
    """
    value = source.strip()
    digits = value[1:] if value.startswith("+") else value
    if not value:
        raise ValueError("source address is empty")
    if digits.isdigit() and digits.isascii():
        if len(digits) > 15:
            raise ValueError(f"source number {source!r} exceeds 15 digits (ITU-T E.164)")
        if len(digits) <= 6 and not value.startswith("+"):
            derived = (TON_NETWORK_SPECIFIC, NPI_UNKNOWN, digits)
        else:
            derived = (TON_INTERNATIONAL, NPI_E164, digits)
    else:
        if len(value) > 11:
            raise ValueError(
                f"alphanumeric source {source!r} exceeds 11 characters (3GPP TS 23.040)"
            )
        derived = (TON_ALPHANUMERIC, NPI_UNKNOWN, value)
    return (
        derived[0] if ton is None else ton,
        derived[1] if npi is None else npi,
        derived[2],
    )


def destination_address(destination: str) -> tuple[int, int, str]:
    """(TON, NPI, digits) for an E.164 destination ``+<1-15 digits>``: always 1/1.

    Raises ``ValueError`` for anything else (national formats are resolved before here).
    """
    value = destination.strip()
    digits = value[1:]
    if (
        not value.startswith("+")
        or not digits.isdigit()
        or not digits.isascii()
        or not 1 <= len(digits) <= 15
    ):
        raise ValueError(f"destination {destination!r} is not an E.164 number like +32470123456")
    return TON_INTERNATIONAL, NPI_E164, digits


def validity_period(seconds: float, valid_until: datetime | None = None,
                    now: datetime | None = None) -> str:
    """SMPP 3.4 §7.1.1 absolute time ``YYMMDDhhmmss000+`` (UTC) ``seconds`` from now,
    or ``valid_until`` if sooner (never before one minute from now)."""
    from datetime import timedelta

    now = now or datetime.now(UTC)
    end = now + timedelta(seconds=seconds)
    if valid_until is not None:
        end = min(end, max(valid_until.astimezone(UTC), now + timedelta(minutes=1)))
    return end.astimezone(UTC).strftime("%y%m%d%H%M%S") + "000+"


# --------------------------------------------------------------------------- rate limiter


class _RateLimiter:
    """Generic cell rate algorithm (ITU-T I.371): ``rate`` per second, bursts of ``burst``.

    Each caller reserves its slot before sleeping, so waiters are served in order without a
    lock and the long-run rate never exceeds ``rate``.
    """

    __slots__ = ("_interval", "_tolerance", "_tat", "_rate", "_max_rate", "_burst")

    def __init__(self, rate: float, burst: int) -> None:
        self._max_rate = self._rate = float(rate)
        self._burst = burst
        self._interval = 1.0 / rate
        self._tolerance = self._interval * (burst - 1)
        self._tat = 0.0

    @property
    def rate(self) -> float:
        """The rate allowed now, per second."""
        return self._rate

    def _set(self, rate: float) -> None:
        self._rate = rate
        self._interval = 1.0 / rate
        self._tolerance = self._interval * (max(1, int(rate // 20)) - 1)

    def slow_down(self, pause: float = 0.0) -> None:
        """The provider throttled: halve the rate, optionally pause.

        Never below an eighth of the configured rate (and 1/s): slots are reserved
        ahead at the current rate, so a rate driven to 1/s by a burst of throttles
        would hold every waiting submit_sm back for minutes after the SMSC recovers.
        """
        self._set(max(1.0, self._max_rate / 8, self._rate / 2))
        if pause > 0:
            self._tat = max(self._tat, asyncio.get_running_loop().time() + pause)

    def speed_up(self) -> None:
        """An accepted submission: give back 1% of the configured rate (additive increase)."""
        if self._rate < self._max_rate:
            self._set(min(self._max_rate, self._rate + max(1.0, self._max_rate / 100)))

    async def acquire(self) -> None:
        now = asyncio.get_running_loop().time()
        tat = self._tat if self._tat > now else now
        self._tat = tat + self._interval
        wait = tat - self._tolerance - now
        if wait > 0:
            await asyncio.sleep(wait)


# --------------------------------------------------------------------------- connection


ReceiptHandler = Callable[[Receipt], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A mobile-originated SMS (deliver_sm without the receipt bit in esm_class, SMPP 3.4
    §4.6.1): ``source`` the handset (E.164 with '+' when the TON is international),
    ``destination`` Tocsin's number it was sent to, ``text`` decoded (GSM-7, IA5,
    Latin-1 or UCS-2). A concatenated message (UDH or SAR TLVs) is handed over once,
    whole; ``complete`` is False when some parts never came within
    :data:`MO_PARTS_WAIT_S` (the text is then the parts that did, in order)."""

    source: str
    destination: str
    text: str
    complete: bool = True

    @classmethod
    def from_deliver_sm(cls, pdu: Pdu) -> InboundSms:
        """Read one deliver_sm (one part of a concatenated message reads as its own
        text); raises ``ValueError`` for an undecodable payload."""
        return _read_inbound(pdu)[0]


def _read_inbound(pdu: Pdu) -> tuple[InboundSms, tuple[str, int, int, int] | None]:
    """The deliver_sm's message and its place in a concatenated one (``decode_sm``)."""
    from tocsin.messages.sms import decode_sm

    text, concat = decode_sm(int(pdu.params.get("data_coding", 0)),
                             int(pdu.params.get("esm_class", 0)),
                             bytes(pdu.params.get("short_message", b"")), pdu.tlvs)
    message = InboundSms(
        source=_format_address(pdu.params.get("source_addr", ""),
                               pdu.params.get("source_addr_ton", 0)),
        destination=str(pdu.params.get("destination_addr", "")),
        text=text)
    return message, concat


#: Seconds a concatenated mobile-originated message waits for its missing parts before
#: it is handed over as it is (``InboundSms.complete`` False).
MO_PARTS_WAIT_S = 60.0

_PartsKey = tuple[str, str, str, int, int]


class _MoParts:
    """Parts of concatenated mobile-originated messages, shared by every bind of a
    client (parts may arrive on different connections, in any order). Keyed by source,
    destination, marking (UDH or SAR), reference and total (3GPP TS 23.040
    §9.2.3.24.1)."""

    def __init__(self) -> None:
        self.parts: dict[_PartsKey, dict[int, str]] = {}

    def add(self, key: _PartsKey, sequence: int, text: str) -> str | None:
        """Keep one part; the whole text once every part 1..total is there."""
        parts = self.parts.setdefault(key, {})
        parts[sequence] = text
        total = key[4]
        if all(n in parts for n in range(1, total + 1)):
            return "".join(parts[n] for n in range(1, total + 1))
        return None

    def joined(self, key: _PartsKey) -> str | None:
        parts = self.parts.get(key)
        return None if parts is None else "".join(parts[n] for n in sorted(parts))


InboundHandler = Callable[[InboundSms], Awaitable[None] | None]


class _Bind:
    """One TCP connection bound as transceiver, with its window and outstanding requests."""

    def __init__(self, client: SmppClient, index: int) -> None:
        self.client = client
        self.index = index
        self.window = asyncio.Semaphore(client.account.window)
        self.ready = asyncio.Event()
        self.pending: dict[int, asyncio.Future[Pdu]] = {}
        #: PDUs written in this turn of the event loop, sent in one write by ``_flush``.
        self._outbox: list[bytes] = []
        self.writer: asyncio.StreamWriter | None = None
        self._sequence = itertools.count(1)
        self._reader_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound_once = False

    # -- lifecycle

    async def connect(self) -> None:
        """Open the connection and bind; raises ``SmppConnectionError`` / ``SmppBindError``."""
        account = self.client.account
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(account.host, account.port),
                self.client.connect_timeout,
            )
        except (OSError, TimeoutError) as error:
            raise SmppConnectionError(
                f"cannot connect to SMSC {account.address}: {error or 'timed out'}"
            ) from error
        self.writer = writer
        self._reader_task = asyncio.create_task(self._read_loop(reader, writer))
        bind = Pdu(
            BIND_TRANSCEIVER,
            params={
                "system_id": account.system_id,
                "password": account.password,
                "system_type": account.system_type,
                "interface_version": INTERFACE_VERSION_34,
            },
        )
        try:
            response = await self.request(bind)
        except SmppError:
            self._abort()
            raise
        if response.command_status != ESME_ROK or response.command_id == GENERIC_NACK:
            self._abort()
            raise SmppBindError(
                response.command_status or ESME_RSYSERR, account.system_id, account.address
            )
        self._bound_once = True
        self.ready.set()
        self._keepalive_task = asyncio.create_task(self._keepalive())
        logger.info(
            "SMPP bind %d to %s as %s established",
            self.index,
            account.address,
            account.system_id,
        )

    async def close(self) -> None:
        """Unbind (SMPP 3.4 §4.2) after outstanding requests finish, then close."""
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self.ready.is_set() and self.writer is not None:
            deadline = asyncio.get_running_loop().time() + self.client.response_timeout
            while self.pending and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
            try:
                await self.request(Pdu(UNBIND))
            except SmppError:
                pass  # the SMSC may drop the line instead of answering; we close anyway
        self.ready.clear()
        for task in (self._keepalive_task, self._reader_task):
            if task is not None:
                task.cancel()
        self._abort()
        self._fail_pending("client closed")

    def _abort(self) -> None:
        self._flush()  # what this turn wrote (an unbind_resp) goes out before the close
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()

    def _connection_lost(self, reason: str) -> None:
        """Fail outstanding requests (retryable) and start reconnecting if we were bound."""
        was_bound = self.ready.is_set()
        self.ready.clear()
        self._abort()
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        self._fail_pending(reason)
        if was_bound and not self.client.closing:
            logger.warning(
                "SMPP bind %d to %s lost: %s", self.index, self.client.account.address, reason
            )
            self._reconnect_task = asyncio.create_task(self._reconnect())

    def _fail_pending(self, reason: str) -> None:
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    SmppConnectionError(
                        f"connection to SMSC {self.client.account.address} lost: {reason}",
                        maybe_sent=True,
                    )
                )

    async def _reconnect(self) -> None:
        # Capped at ``reconnect_max`` (a few seconds): an alert waits for nothing else
        # once the SMSC is back (issue 13: a 30 s cap delayed the first SMS by 27 s).
        delay = min(self.client.reconnect_delay, self.client.account.reconnect_max)
        while not self.client.closing:
            await asyncio.sleep(delay)
            try:
                await self.connect()
                return
            except SmppError as error:
                logger.warning("SMPP bind %d reconnect failed: %s", self.index, error)
                delay = min(delay * 2, self.client.account.reconnect_max)

    # -- requests

    async def request(self, pdu: Pdu, timeout: float | None = None) -> Pdu:
        """Send a request and wait for its response; raises ``SmppError`` subclasses."""
        writer = self.writer
        if writer is None:
            raise SmppConnectionError(f"not connected to SMSC {self.client.account.address}")
        sequence = next(self._sequence)
        if sequence > 0x7FFFFFFF:  # SMPP 3.4 §5.1.4: 0x00000001 to 0x7FFFFFFF
            self._sequence = itertools.count(2)
            sequence = 1
        pdu.sequence_number = sequence
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Pdu] = loop.create_future()
        self.pending[sequence] = future
        timer = loop.call_later(
            timeout or self.client.response_timeout, self._expire, sequence, pdu.name
        )
        try:
            self._write(encode_pdu(pdu))
            return await future
        finally:
            timer.cancel()
            self.pending.pop(sequence, None)

    def _expire(self, sequence: int, name: str) -> None:
        future = self.pending.pop(sequence, None)
        if future is not None and not future.done():
            future.set_exception(
                SmppTimeoutError(
                    f"SMSC {self.client.account.address} did not answer {name}"
                    f" within {self.client.response_timeout:g} s"
                )
            )

    def send(self, pdu: Pdu) -> None:
        """Write a response PDU if still connected."""
        if self.writer is not None:
            self._write(encode_pdu(pdu))

    def _write(self, data: bytes) -> None:
        """Queue ``data`` for the socket. The PDUs written in one turn of the event loop
        (a window of submit_sm, the deliver_sm_resp of a burst of receipts) leave in one
        write at the end of the turn: one system call instead of one per PDU (issue 13).
        Order is kept; nothing waits longer than the current turn."""
        self._outbox.append(data)
        if len(self._outbox) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        out, self._outbox = self._outbox, []
        if out and self.writer is not None:
            self.writer.write(out[0] if len(out) == 1 else b"".join(out))

    # -- incoming

    async def _read_loop(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reason = "closed by SMSC"
        try:
            while True:
                try:
                    pdu = await read_pdu(reader)
                except PduError as error:
                    if error.framing_lost:
                        reason = str(error)
                        break
                    if error.command_id & RESPONSE_BIT:
                        # A garbled response still settles its request, as a failure.
                        future = self.pending.pop(error.sequence_number, None)
                        if future is not None and not future.done():
                            future.set_exception(SmppError(f"unreadable response: {error}"))
                    else:
                        self.send(Pdu(GENERIC_NACK, error.sequence_number, error.command_status))
                    continue
                if pdu.command_id & RESPONSE_BIT:
                    future = self.pending.pop(pdu.sequence_number, None)
                    if future is not None and not future.done():
                        future.set_result(pdu)
                elif pdu.command_id == DELIVER_SM:
                    self._on_deliver_sm(pdu)
                elif pdu.command_id == ENQUIRE_LINK:
                    self.send(pdu.response())
                elif pdu.command_id == UNBIND:
                    self.send(pdu.response())
                    reason = "SMSC unbound"
                    break
                else:
                    self.send(Pdu(GENERIC_NACK, pdu.sequence_number, 0x03))  # ESME_RINVCMDID
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            reason = f"closed by SMSC ({type(error).__name__})"
        except asyncio.CancelledError:
            return
        if self.writer is writer:
            self._connection_lost(reason)
        elif self.writer is None:
            self._fail_pending(reason)

    def _on_inbound(self, pdu: Pdu) -> None:
        """A mobile-originated message: handed to ``on_inbound`` and acknowledged once
        it returned (awaited), ESME_RX_T_APPN when it raised (the SMSC tries again).
        A part of a concatenated message is acknowledged and kept until the others
        come; the part that completes it is acknowledged only once the whole message
        was handled (when that fails, the SMSC redelivers that part and the message
        completes again)."""
        handler = self.client.on_inbound
        if handler is None:
            # Nobody takes answers: acknowledge so the SMSC does not redeliver for ever.
            self.send(pdu.response())
            return
        try:
            message, concat = _read_inbound(pdu)
        except (ValueError, TypeError) as error:
            logger.warning("unreadable inbound SMS ignored: %s", error)
            self.send(pdu.response())
            return
        key: _PartsKey | None = None
        if concat is not None and concat[2] > 1:
            how, reference, total, sequence = concat
            key = (message.source, message.destination, how, reference, total)
            whole = self.client.mo_parts.add(key, sequence, message.text)
            if whole is None:
                self.send(pdu.response())
                self.client.wait_for_parts(key, message)
                return
            message = InboundSms(message.source, message.destination, whole)
        try:
            result = handler(message)
        except Exception:
            logger.exception("inbound SMS handler failed")
            self.send(pdu.response(ESME_RX_T_APPN))
            return
        if inspect.isawaitable(result):
            task = asyncio.create_task(self._finish_inbound(pdu, result, key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            if key is not None:
                self.client.mo_parts.parts.pop(key, None)
            self.send(pdu.response())

    async def _finish_inbound(self, pdu: Pdu, result: Awaitable[None],
                              key: _PartsKey | None = None) -> None:
        try:
            await result
        except Exception:
            logger.exception("inbound SMS handler failed")
            self.send(pdu.response(ESME_RX_T_APPN))
        else:
            if key is not None:
                self.client.mo_parts.parts.pop(key, None)
            self.send(pdu.response())

    def _on_deliver_sm(self, pdu: Pdu) -> None:
        handler = self.client.on_receipt
        if not pdu.params.get("esm_class", 0) & ESM_CLASS_DELIVERY_RECEIPT:
            self._on_inbound(pdu)
            return
        if handler is None:
            self.send(pdu.response())
            return
        try:
            receipt = Receipt.from_deliver_sm(pdu)
        except ValueError as error:
            logger.warning("unreadable delivery receipt ignored: %s", error)
            self.send(pdu.response())
            return
        try:
            result = handler(receipt)
        except Exception:
            logger.exception("delivery receipt handler failed for %s", receipt.message_id)
            # ESME_RX_T_APPN asks the SMSC to deliver the receipt again later (§5.1.3).
            self.send(pdu.response(ESME_RX_T_APPN))
            return
        if inspect.isawaitable(result):
            task = asyncio.create_task(self._finish_receipt(pdu, receipt, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.send(pdu.response())

    async def _finish_receipt(self, pdu: Pdu, receipt: Receipt, result: Awaitable[None]) -> None:
        # Acknowledge only once the handler has stored the receipt, so a crash before that
        # leaves the SMSC to redeliver it.
        try:
            await result
        except Exception:
            logger.exception("delivery receipt handler failed for %s", receipt.message_id)
            self.send(pdu.response(ESME_RX_T_APPN))
        else:
            self.send(pdu.response())

    async def _keepalive(self) -> None:
        interval = self.client.enquire_link_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.request(Pdu(ENQUIRE_LINK))
            except SmppError as error:
                if self.ready.is_set():
                    self._connection_lost(f"enquire_link failed: {error}")
                return


# --------------------------------------------------------------------------- client


class SmppClient:
    """ESME for one SMSC account: ``binds`` transceiver connections with a send window.

    ``on_receipt`` is called (and awaited, if it returns an awaitable) for every delivery
    receipt; the deliver_sm is acknowledged afterwards, with ESME_RX_T_APPN if it raised so
    that the SMSC delivers it again (SMPP 3.4 §4.6.2). ``on_inbound`` is called the same
    way for every other deliver_sm (a mobile-originated SMS, ``InboundSms``: answers to
    group messages); without it they are acknowledged and dropped. Lost connections are
    re-established in the background with exponential back-off (``reconnect_delay``
    seconds doubling up to the account's ``reconnect_max``); requests outstanding on them
    fail with a retryable ``SmppConnectionError``.
    """

    def __init__(
        self,
        account: SmppAccount,
        on_receipt: ReceiptHandler | None = None,
        *,
        on_inbound: InboundHandler | None = None,
        response_timeout: float | None = None,
        enquire_link_interval: float | None = None,
        reconnect_delay: float = 1.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.account = account
        self.on_receipt = on_receipt
        self.on_inbound = on_inbound
        self.response_timeout = response_timeout or account.timeout
        self.enquire_link_interval = enquire_link_interval or account.enquire_link
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self.closing = False
        # Bursts of 50 ms worth of traffic absorb scheduling jitter without exceeding tps
        # over any second.
        self._limiter = _RateLimiter(account.tps, max(1, account.tps // 20))
        self._binds: list[_Bind] = []
        self._next = 0
        self.mo_parts = _MoParts()
        self.mo_parts_wait = MO_PARTS_WAIT_S
        self._mo_timers: dict[_PartsKey, asyncio.TimerHandle] = {}
        self._mo_tasks: set[asyncio.Task[None]] = set()

    def wait_for_parts(self, key: _PartsKey, first: InboundSms) -> None:
        """Give the parts of ``key`` :attr:`mo_parts_wait` seconds from the first one;
        then hand over what came (``complete`` False)."""
        if key in self._mo_timers:
            return
        loop = asyncio.get_running_loop()
        self._mo_timers[key] = loop.call_later(self.mo_parts_wait, self._parts_overdue,
                                               key, first)

    def _parts_overdue(self, key: _PartsKey, first: InboundSms) -> None:
        self._mo_timers.pop(key, None)
        text = self.mo_parts.joined(key)
        self.mo_parts.parts.pop(key, None)
        if text is None or self.on_inbound is None:
            return  # completed and handled in the meantime
        logger.warning("concatenated inbound SMS from %s: parts missing after %.0f s; "
                       "handed over as received", first.source, self.mo_parts_wait)
        message = InboundSms(first.source, first.destination, text, complete=False)

        async def hand_over() -> None:
            try:
                result = self.on_inbound(message) if self.on_inbound else None
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("inbound SMS handler failed (incomplete message dropped)")

        task = asyncio.ensure_future(hand_over())
        self._mo_tasks.add(task)
        task.add_done_callback(self._mo_tasks.discard)

    @property
    def bound(self) -> int:
        """Number of connections currently bound."""
        return sum(1 for bind in self._binds if bind.ready.is_set())

    async def start(self) -> None:
        """Open and bind all connections (SMPP 3.4 §4.1.5 bind_transceiver).

        Raises ``SmppConnectionError`` when the SMSC cannot be reached and ``SmppBindError``
        when it refuses the credentials; no connection is left open then.
        """
        self.closing = False
        self._binds = [_Bind(self, index) for index in range(self.account.binds)]
        try:
            await asyncio.gather(*(bind.connect() for bind in self._binds))
        except BaseException:
            self.closing = True
            await asyncio.gather(*(bind.close() for bind in self._binds), return_exceptions=True)
            self._binds = []
            raise

    async def close(self) -> None:
        """Unbind every connection gracefully and stop reconnecting."""
        self.closing = True
        for timer in self._mo_timers.values():
            timer.cancel()
        self._mo_timers.clear()
        await asyncio.gather(*(bind.close() for bind in self._binds), return_exceptions=True)
        self._binds = []

    async def __aenter__(self) -> SmppClient:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def wait_bound(self, timeout: float | None = None) -> None:
        """Wait until at least one connection is bound; raises ``SmppConnectionError``."""
        await self._pick(timeout)

    async def _pick(self, timeout: float | None = None) -> _Bind:
        binds = self._binds
        count = len(binds)
        for offset in range(count):
            bind = binds[(self._next + offset) % count]
            if bind.ready.is_set():
                self._next = (self._next + offset + 1) % count
                return bind
        if self.closing or not binds:
            raise SmppConnectionError("SMPP client is not started")
        waiters = [asyncio.create_task(bind.ready.wait()) for bind in binds]
        try:
            await asyncio.wait(
                waiters,
                timeout=self.response_timeout if timeout is None else timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        for bind in binds:
            if bind.ready.is_set():
                return bind
        raise SmppConnectionError(f"no bound connection to SMSC {self.account.address}")

    async def submit(
        self,
        source: str,
        destination: str,
        parts: Sequence[SmsPartLike] | Sequence[tuple[int, int, bytes]],
        registered_delivery: bool = True,
        valid_until: datetime | None = None,
    ) -> list[str]:
        """Submit one message as submit_sm PDUs, one per part (SMPP 3.4 §4.4.1).

        ``source``: alphanumeric sender, short code or number (see ``source_address``);
        ``destination``: E.164 ``+32470123456``; ``parts``: encoded segments in order, all
        sent over the same bind. Returns the SMSC message_id of each part, in order.
        Raises ``ValueError`` for bad addresses, ``SmppSubmitError`` when the SMSC refuses a
        part, ``SmppConnectionError`` / ``SmppTimeoutError`` (retryable) when the connection
        fails. If one part fails, others may already have been accepted. The
        validity_period is the sooner of ``valid_until`` and the account's ``validity``
        from now, as an absolute UTC time (``validity_period``).
        """
        if not parts:
            raise ValueError("parts is empty: nothing to submit")
        src_ton, src_npi, src = source_address(
            source, self.account.source_ton, self.account.source_npi
        )
        dst_ton, dst_npi, dst = destination_address(destination)
        common = {
            "service_type": "",
            "source_addr_ton": src_ton,
            "source_addr_npi": src_npi,
            "source_addr": src,
            "dest_addr_ton": dst_ton,
            "dest_addr_npi": dst_npi,
            "destination_addr": dst,
            # SMPP 3.4 §5.2.17: 1 = receipt on final outcome, success or failure.
            "registered_delivery": 1 if registered_delivery else 0,
            "validity_period": validity_period(self.account.validity, valid_until),
        }
        bind = await self._pick()
        if len(parts) == 1:
            return [await self._submit_part(bind, common, parts[0])]
        results = await asyncio.gather(
            *(self._submit_part(bind, common, part) for part in parts), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    async def _submit_part(
        self, bind: _Bind, common: dict[str, object], part: SmsPartLike | tuple[int, int, bytes]
    ) -> str:
        tlvs: tuple[tuple[int, bytes], ...] = ()
        if isinstance(part, SmsPart) or not isinstance(part, tuple):
            data_coding, esm_class, short_message = (
                part.data_coding,
                part.esm_class,
                part.short_message,
            )
            tlvs = getattr(part, "tlvs", ())
        else:
            data_coding, esm_class, short_message = part
        params = dict(common)
        params["esm_class"] = esm_class
        params["data_coding"] = data_coding
        params["short_message"] = short_message
        pdu = Pdu(SUBMIT_SM, params=params, tlvs=dict(tlvs))
        async with bind.window:
            await self._limiter.acquire()
            try:
                response = await bind.request(pdu)
            except PduError as error:
                raise ValueError(str(error)) from None
        if response.command_status != ESME_ROK or response.command_id == GENERIC_NACK:
            raise SmppSubmitError(response.command_status or ESME_RSYSERR)
        self._limiter.speed_up()
        return str(response.params.get("message_id", ""))

    def slow_down(self, pause: float = 0.0) -> None:
        """The SMSC throttled (ESME_RTHROTTLED / ESME_RMSGQFUL): halve the submit rate
        for a while (it recovers by 1% of ``tps`` per accepted submit_sm), pausing
        ``pause`` seconds first."""
        self._limiter.slow_down(pause)
