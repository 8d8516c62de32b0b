"""Cell broadcast (EU-Alert) rules: pages, message identifiers, serial numbers, and the
ECBE message body (SPEC F31; research note ``location-based-channels.md`` §1.2, §1.3,
§2.3).

Pure functions, no I/O. Standards: 3GPP TS 23.041 §9.4.1.2 (CBS message parameters:
Serial Number §9.4.1.2.1, Message Identifier §9.4.1.2.2, pages of 82 octets
§9.4.1.2.4), TS 23.038 §6.2.1 (GSM 7-bit alphabet), ETSI TS 102 900 (EU-Alert levels).
The body is the one osmo-cbc's ECBE REST interface takes (``cbc.schema.json``,
``smscb.schema.json``: ``POST /api/ecbe/v1/message``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from tocsin.cap.validate import CB_MAX_CHARS, CB_PAGE_CHARS, CB_PAGES
from tocsin.messages.sms import GSM7_EXTENSION, is_gsm7

__all__ = [
    "CB_MAX_CHARS", "CB_PAGES", "CB_PAGE_CHARS", "CbError", "CbPages", "GEO_SCOPES",
    "allocate_msg_code", "decode_serial_number", "ecbe_message", "message_id",
    "next_update", "pages", "serial_number",
]

#: Geographic scope of a serial number (TS 23.041 §9.4.1.2.1, 2 bits), ECBE names.
GEO_SCOPES = {"cell_wide_immediate": 0, "plmn_wide": 1, "lac_sac_tac_wide": 2, "cell_wide": 3}
MAX_MSG_CODE = 1023  # 10 bits
MAX_UPDATE_NR = 15  # 4 bits

#: EU-Alert message identifiers in the local language (TS 23.041 §9.4.1.2.2, CMAS range
#: shared by EU-Alert); the additional-language identifier of 4370..4382 is +13,
#: of 4396 and 4398 it is +1.
PRESIDENTIAL = 4370
_EXTREME_SEVERE = {
    ("Extreme", "Immediate", "Observed"): 4371, ("Extreme", "Immediate", "Likely"): 4372,
    ("Extreme", "Expected", "Observed"): 4373, ("Extreme", "Expected", "Likely"): 4374,
    ("Severe", "Immediate", "Observed"): 4375, ("Severe", "Immediate", "Likely"): 4376,
    ("Severe", "Expected", "Observed"): 4377, ("Severe", "Expected", "Likely"): 4378,
}
AMBER, TEST, EXERCISE, OPERATOR_DEFINED = 4379, 4380, 4381, 4382
PUBLIC_SAFETY, STATE_LOCAL_TEST = 4396, 4398
LANG_ROLES = ("local", "additional")


class CbError(ValueError):
    """A cell-broadcast value that cannot be sent: ``field`` and ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class CbPages:
    """A text cut into cell-broadcast pages.

    ``encoding``: ``GSM-7`` or ``UCS-2``; ``pages``: the text of each page, in order,
    whole characters only (an escape pair or a surrogate pair is never split, the
    handset decodes each page on its own); ``units``: septets (GSM-7, an extension
    character counts 2) or UTF-16 code units (UCS-2) per page, at most 93 / 41.
    """

    encoding: str
    pages: list[str]
    units: list[int]

    @property
    def count(self) -> int:
        return len(self.pages)


def _units(char: str, encoding: str) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def pages(text: str, max_pages: int = CB_PAGES) -> CbPages:
    """``text`` cut into cell-broadcast pages of 82 octets: 93 GSM-7 septets or 41 UCS-2
    code units each (TS 23.041 §9.4.1.2.4 with TS 23.038 §6.1.2.2), at most
    ``max_pages`` (15; 1,395 GSM-7 / 615 UCS-2 characters). GSM-7 when every
    character is in the default alphabet or its extension table, else UCS-2.

    Raises CbError("text", …) for an empty text, or one that needs more pages than
    ``max_pages`` (saying how many characters too many).
    """
    if not isinstance(text, str) or not text:
        raise CbError("text", "is empty")
    encoding = "GSM-7" if all(is_gsm7(c) for c in text) else "UCS-2"
    size = CB_PAGE_CHARS[encoding]
    out: list[str] = []
    units: list[int] = []
    start, used = 0, 0
    for i, char in enumerate(text):
        width = _units(char, encoding)
        if used + width > size:
            out.append(text[start:i])
            units.append(used)
            start, used = i, 0
        used += width
    out.append(text[start:])
    units.append(used)
    if len(out) > max_pages:
        total = sum(units)
        limit = max_pages * size
        raise CbError("text", f"needs {len(out)} cell-broadcast pages; at most {max_pages} "
                              f"pages of {size} {encoding} characters ({limit:,}) fit, the "
                              f"text has {total:,}: shorten it by {total - limit:,}")
    return CbPages(encoding, out, units)


def message_id(kind: str, severity: str = "Severe", urgency: str = "Immediate",
               certainty: str = "Likely", lang_role: str = "local", *,
               presidential: bool = False, eu_test: bool = False) -> int:
    """The EU-Alert Message Identifier (TS 23.041 §9.4.1.2.2; ETSI TS 102 900).

    ``kind``: the campaign kind (``alert``, ``warning``, ``information``, ``test``,
    ``exercise``); ``severity``/``urgency``/``certainty``: CAP 1.2 values;
    ``lang_role``: ``local`` (the base identifier) or ``additional`` (+13 for 4370..4382,
    +1 for 4396/4398), so that a handset shows the version in its language.

    - ``presidential``: EU-Alert level 1, 4370 (national authority only);
    - Extreme/Severe × Immediate/Expected × Observed/Likely: 4371..4378 (level 2/3);
    - any other alert or warning, and ``information``: public safety, 4396 (level 4);
    - ``test``: 4380 (required monthly test), or 4398 with ``eu_test`` (state/local
      test); ``exercise``: 4381.

    Raises CbError naming ``kind`` or ``lang_role`` when unknown.
    """
    if lang_role not in LANG_ROLES:
        raise CbError("lang_role", f"{lang_role!r} is not local or additional")
    if kind == "test":
        base = STATE_LOCAL_TEST if eu_test else TEST
    elif kind == "exercise":
        base = EXERCISE
    elif kind in ("alert", "warning", "information"):
        if presidential:
            base = PRESIDENTIAL
        elif kind == "information":
            base = PUBLIC_SAFETY
        else:
            base = _EXTREME_SEVERE.get((severity, urgency, certainty), PUBLIC_SAFETY)
    else:
        raise CbError("kind", f"{kind!r} has no cell-broadcast message identifier "
                              f"(alert, warning, information, test, exercise)")
    if lang_role == "local":
        return base
    return base + (1 if base in (PUBLIC_SAFETY, STATE_LOCAL_TEST) else 13)


def serial_number(geo_scope: str, msg_code: int, update_nr: int = 0) -> int:
    """The 16-bit Serial Number: geographic scope (2 bits) | message code (10) | update
    number (4), i.e. ``GS << 14 | code << 4 | update`` (TS 23.041 §9.4.1.2.1).

    Raises CbError naming ``geo_scope``, ``msg_code`` (0..1023) or ``update_nr`` (0..15).
    """
    if geo_scope not in GEO_SCOPES:
        raise CbError("geo_scope", f"{geo_scope!r} is not one of {', '.join(GEO_SCOPES)}")
    if not isinstance(msg_code, int) or not 0 <= msg_code <= MAX_MSG_CODE:
        raise CbError("msg_code", f"{msg_code!r} is not between 0 and {MAX_MSG_CODE}")
    if not isinstance(update_nr, int) or not 0 <= update_nr <= MAX_UPDATE_NR:
        raise CbError("update_nr", f"{update_nr!r} is not between 0 and {MAX_UPDATE_NR}")
    return GEO_SCOPES[geo_scope] << 14 | msg_code << 4 | update_nr


def decode_serial_number(serial: int) -> dict[str, Any]:
    """``{"geo_scope", "msg_code", "update_nr"}`` of a 16-bit serial number.
    Raises CbError("serial_nr", …) outside 0..65535."""
    if not isinstance(serial, int) or not 0 <= serial <= 0xFFFF:
        raise CbError("serial_nr", f"{serial!r} is not a 16-bit number")
    scope = {v: k for k, v in GEO_SCOPES.items()}[serial >> 14]
    return {"geo_scope": scope, "msg_code": (serial >> 4) & MAX_MSG_CODE,
            "update_nr": serial & MAX_UPDATE_NR}


def next_update(serial: int) -> int:
    """The serial number of the next update of the same message: update number + 1
    modulo 16, scope and code kept (TS 23.041 §9.4.1.2.1: a handset shows a message
    again only when its update number changed)."""
    d = decode_serial_number(serial)
    return serial_number(d["geo_scope"], d["msg_code"], (d["update_nr"] + 1) % 16)


def allocate_msg_code(active: Collection[int], after: int = -1) -> int:
    """A message code (0..1023) not in ``active`` (the codes of messages still being
    broadcast): the first free one after ``after``, wrapping round, so that codes are
    not reused sooner than needed. Raises CbError("msg_code", …) when all 1,024 are
    active."""
    used = set(active)
    for step in range(1, MAX_MSG_CODE + 2):
        code = (after + step) % (MAX_MSG_CODE + 1)
        if code not in used:
            return code
    raise CbError("msg_code", "all 1,024 message codes are in use by active messages")


_CATEGORIES = ("normal", "high_priority", "background")


def ecbe_message(*, cbe_name: str, message_id: int, serial: int, text: str, language: str,
                 repetition_period: int = 60, num_of_bcast: int = 0,
                 warning_period_sec: int | None = None,
                 category: str = "high_priority") -> dict[str, Any]:
    """The body of ``POST /api/ecbe/v1/message`` (osmo-cbc ``cbc.schema.json``).

    ``message_id`` 0..65535; ``serial`` the 16-bit serial number (sent decoded);
    ``text`` checked by :func:`pages` (its character set chosen from it: ``gsm`` or
    ``ucs2``); ``language`` ISO 639-1; ``repetition_period`` seconds 1..4095;
    ``num_of_bcast`` 0..65535 (0 = until stopped); ``warning_period_sec`` 0..3600 or
    ``None`` (infinite); ``category`` normal | high_priority | background. Scope is the
    whole PLMN (``scope_plmn``, the only scope osmo-cbc implements).

    Raises CbError naming the first bad field.
    """
    if not cbe_name.strip():
        raise CbError("cbe_name", "is empty")
    if category not in _CATEGORIES:
        raise CbError("category", f"{category!r} is not one of {', '.join(_CATEGORIES)}")
    if not isinstance(message_id, int) or not 0 <= message_id <= 0xFFFF:
        raise CbError("message_id", f"{message_id!r} is not between 0 and 65535")
    if not isinstance(repetition_period, int) or not 1 <= repetition_period <= 4095:
        raise CbError("repetition_period", f"{repetition_period!r} seconds is not between "
                                           f"1 and 4095")
    if not isinstance(num_of_bcast, int) or not 0 <= num_of_bcast <= 65535:
        raise CbError("num_of_bcast", f"{num_of_bcast!r} is not between 0 and 65535")
    if warning_period_sec is not None and not (
            isinstance(warning_period_sec, int) and 0 <= warning_period_sec <= 3600):
        raise CbError("warning_period_sec", f"{warning_period_sec!r} is not between 0 and "
                                            f"3600")
    if len(language) != 2 or not language.isalpha() or not language.islower():
        raise CbError("language", f"{language!r} is not an ISO 639-1 code (fr, nl, de, en)")
    cut = pages(text)
    body: dict[str, Any] = {
        "cbe_name": cbe_name, "category": category, "repetition_period": repetition_period,
        "num_of_bcast": num_of_bcast, "scope": {"scope_plmn": {}},
        "smscb_message": {
            "message_id": message_id,
            "serial_nr": {"serial_nr_decoded": decode_serial_number(serial)},
            "payload": {"payload_decoded": {
                "character_set": "gsm" if cut.encoding == "GSM-7" else "ucs2",
                "language": language, "data_utf8": text}},
        },
    }
    if warning_period_sec is not None:
        body["warning_period_sec"] = warning_period_sec
    return body
