"""Pure rules of subscriber registration and contact-list import (SPEC F7, F10).

No I/O here: these functions take values and return values, so they are tested
in milliseconds and shared by the CSV import, the demo population and the
public registration page.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypedDict

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from tocsin.subscribers.models import MAX_ADDRESSES

LANGUAGES = ("fr", "nl", "de", "en")  # SPEC F7: FR/NL/DE/EN
DEFAULT_PHONE_REGION = "BE"
MAX_EXTERNAL_ID_LENGTH = 64  # Subscriber.external_id is String(64)

# Bounding box of Belgium in WGS84 degrees (Statbel municipality borders, rounded outwards).
BELGIUM_LAT = (49.49, 51.51)
BELGIUM_LON = (2.54, 6.41)

CSV_COLUMNS = ("subscriber_id", "language", "mobile", "email", "lat", "lon")
# general_interest: opt-in to information (SPEC F12), blank = no; landline: a fixed number
# reached by voice calls (F7, F22); voice: the mobile also takes voice calls, blank = no.
OPTIONAL_CSV_COLUMNS = ("general_interest", "landline", "voice")
_YES_NO = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}

_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)
#: Line types a voice alert can call: fixed lines (and numbers that may be either), VoIP.
#: Premium-rate, shared-cost, toll-free, pager and personal numbers are refused.
_VOICE_TYPES = frozenset({
    phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.VOIP,
})


#: Belgian national prefixes that are shared-cost services whatever libphonenumber's
#: metadata says (it files 070 under premium rate): the caller pays part of the call,
#: and no SMS or alert call can be delivered to them (BIPT numbering plan, 070).
_BE_SHARED_COST_PREFIXES = ("70",)


def refused_line_type(number: phonenumbers.PhoneNumber) -> str | None:
    """The special line type of ``number`` that never receives alerts or codes:
    ``"shared-cost"`` (Belgian 070, libphonenumber SHARED_COST), ``"premium-rate"``,
    ``"toll-free"``, ``"pager"``, ``"personal"``, ``"universal access"``, ``"voicemail"``;
    ``None`` for an ordinary fixed line, mobile or VoIP number (libphonenumber types,
    corrected by the BIPT plan for 070)."""
    national = str(number.national_number)
    if number.country_code == 32 and national.startswith(_BE_SHARED_COST_PREFIXES):
        return "shared-cost"
    return _REFUSED_LINE_TYPES.get(phonenumbers.number_type(number))


_REFUSED_LINE_TYPES = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost",
    phonenumbers.PhoneNumberType.TOLL_FREE: "toll-free",
    phonenumbers.PhoneNumberType.PAGER: "pager",
    phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    phonenumbers.PhoneNumberType.UAN: "universal access",
    phonenumbers.PhoneNumberType.VOICEMAIL: "voicemail",
}


class RowError(TypedDict):
    """One rejected value: ``line`` is the 1-based line of the file (header = 1)."""

    line: int
    field: str
    value: str
    reason: str


class InvalidValue(ValueError):
    """A value that breaks a registration rule; ``reason`` says which, in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class AddressRecord:
    """One geocoded address: WGS84 degrees, optional display label and NIS code."""

    lat: float
    lon: float
    label: str | None = None
    nis: str | None = None


@dataclass
class SubscriberRecord:
    """A subscriber ready to be written: ``addresses[0]`` is the primary residence.

    ``mobile`` is E.164 (``+32475123456``), ``email`` the normalised address;
    at least one of them is set. ``line`` is the file line where it first appears.
    ``info_opt_in``: the subscriber's contact points receive general-interest
    information (campaign kind ``information``, SPEC F12); alerts reach them anyway.
    ``landline``: an E.164 number called by voice alerts; ``voice``: the mobile also
    takes voice calls (SPEC F7, F22).
    """

    external_id: str
    language: str
    mobile: str | None
    email: str | None
    addresses: list[AddressRecord] = field(default_factory=list)
    line: int = 0
    info_opt_in: bool = False
    landline: str | None = None
    voice: bool = False


@dataclass
class ImportPlan:
    """The outcome of parsing a contact list: records in order of first appearance.

    ``rows`` counts the data rows read (blank lines excluded). When ``errors``
    is not empty the plan must not be written at all (SPEC F10).
    """

    rows: int = 0
    subscribers: list[SubscriberRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def addresses(self) -> int:
        """Number of addresses over all subscribers."""
        return sum(len(s.addresses) for s in self.subscribers)


@lru_cache(maxsize=65_536)
def normalise_mobile(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """``value`` as an E.164 mobile number, e.g. ``"0475 12 34 56"`` -> ``"+32475123456"``.

    National numbers are read in ``region`` (ISO 3166-1 alpha-2, default BE).
    Raises InvalidValue when the number cannot be parsed, is not valid, or is
    not a mobile number (libphonenumber type MOBILE or FIXED_LINE_OR_MOBILE):
    alerts by SMS need a mobile (SPEC F7).
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"not a phone number ({exc._msg})") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("not a valid phone number")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidValue("not a mobile number (landline or other line type)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65_536)
def normalise_landline(value: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """``value`` as an E.164 number that voice alerts can call, e.g. ``"02 555 12 34"`` ->
    ``"+3225551234"`` (SPEC F7, F22).

    Raises InvalidValue when the number cannot be parsed, is not valid (too short,
    unknown range) or is a line type that cannot take an alert call: premium-rate,
    shared-cost, toll-free, pager, personal or universal access numbers
    (libphonenumber types; allowed: FIXED_LINE, FIXED_LINE_OR_MOBILE, MOBILE, VOIP).
    """
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidValue(f"not a phone number ({exc._msg})") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("not a valid phone number (too short, too long or unknown range)")
    kind = phonenumbers.number_type(number)
    refused = refused_line_type(number)
    if refused == "shared-cost":
        raise InvalidValue("070 numbers are shared-cost numbers and cannot receive alerts")
    if refused is not None or kind not in _VOICE_TYPES:
        name = refused if refused in ("premium-rate", "toll-free") else "special"
        raise InvalidValue(f"a {name} number cannot take alert calls")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65_536)
def normalise_email(value: str) -> str:
    """``value`` checked for syntax (RFC 5322 / 6531, no DNS lookup) and normalised.

    Uses email_validator's normalised form (lower-case, IDNA-decoded domain).
    Raises InvalidValue with the library's explanation.
    """
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidValue(f"not a valid e-mail address: {exc}") from exc


def in_belgium(lat: float, lon: float) -> bool:
    """True when (lat, lon) in WGS84 degrees lies in Belgium's bounding box."""
    return BELGIUM_LAT[0] <= lat <= BELGIUM_LAT[1] and BELGIUM_LON[0] <= lon <= BELGIUM_LON[1]


def check_position(lat_text: str, lon_text: str) -> tuple[float, float]:
    """Parse and check a WGS84 position given as decimal-degree strings.

    Returns (lat, lon). Raises InvalidValue for a non-number, (0, 0) (a common
    geocoding failure marker), a position outside Belgium, or one that is in
    Belgium only once swapped ("looks like lon,lat swapped").
    """
    try:
        lat, lon = float(lat_text.replace(",", ".")), float(lon_text.replace(",", "."))
    except ValueError as exc:
        raise InvalidValue("not a number") from exc
    if lat != lat or lon != lon:  # NaN
        raise InvalidValue("not a number")
    if lat == 0 and lon == 0:
        raise InvalidValue("coordinates 0,0 (not geocoded)")
    if in_belgium(lat, lon):
        return lat, lon
    if in_belgium(lon, lat):
        raise InvalidValue("looks like lon,lat swapped")
    raise InvalidValue("outside Belgium")


def parse_yes_no(value: str) -> bool:
    """``yes`` / ``true`` / ``1`` -> True, ``no`` / ``false`` / ``0`` -> False (any case,
    surrounding blanks ignored). Raises InvalidValue for anything else, blank included."""
    try:
        return _YES_NO[value.strip().lower()]
    except KeyError:
        raise InvalidValue("not yes, no, true, false, 1 or 0") from None


def _is_number(text: str) -> bool:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return False
    return value == value  # NaN is not a position


def _decode(data: bytes) -> tuple[str | None, RowError | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.end].hex()
        return None, {"line": line, "field": "", "value": bad, "reason": "not UTF-8"}


def _delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


#: Characters of a bad value quoted in a row error.
MAX_QUOTED_VALUE = 60


def _csv_error(text: str, line: int, delimiter: str, header: list[str],
               exc: csv.Error) -> RowError:
    """The row error of a record the csv module refused (RFC 4180 structure), naming the
    line where the record starts and, for an over-long field, its column."""
    limit = csv.field_size_limit()
    reason = str(exc)
    field = ""
    if "field larger than field limit" in reason:
        column = _overlong_column(text, line, delimiter, limit)
        if column is not None:
            field = header[column] if column < len(header) else f"column {column + 1}"
        reason = f"a field longer than {limit:,} characters"
    else:
        reason = f"not valid CSV ({reason})"
    return {"line": line, "field": field, "value": "",
            "reason": f"{reason}; the lines after it were not checked"}


def _overlong_column(text: str, line: int, delimiter: str, limit: int) -> int | None:
    """The 0-based column of the first field over ``limit`` characters in the record that
    starts on physical ``line`` (quotes followed as the csv module does), or None."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    column, length, quoted = 0, 0, False
    for char in text[start:]:
        if char == '"':
            quoted = not quoted
            continue
        if not quoted and char == delimiter:
            column, length = column + 1, 0
            continue
        if not quoted and char in "\r\n":
            return None
        length += 1
        if length > limit:
            return column
    return None


def parse_subscriber_csv(data: bytes) -> ImportPlan:
    """Parse and validate a contact list in CSV (SPEC F10), without touching the database.

    Format: UTF-8 (a BOM is allowed), ``,`` or ``;`` separated (detected on the
    header), header on line 1 with the columns ``subscriber_id, language,
    mobile, email, lat, lon`` in any order, and optionally ``general_interest``:
    ``yes`` / ``no`` / ``true`` / ``false`` / ``1`` / ``0`` (blank = no), whether
    the subscriber's contact points get general-interest information (campaign
    kind ``information``, SPEC F12). Each row is one address
    (WGS84 decimal degrees); several rows with the same ``subscriber_id`` add
    addresses to that subscriber, at most 5 (SPEC F7), the first row being the
    primary residence. Later rows may repeat or leave blank ``language``,
    ``mobile``, ``email`` and ``general_interest`` but not contradict them; a
    later row may fill in a value left blank before. Each subscriber needs a
    language (fr, nl, de, en) and a mobile (E.164 after normalisation, region
    BE) or an e-mail.
    The same mobile or e-mail for several subscribers is allowed (a family phone).

    Never raises on bad input: every problem found is an entry of
    ``ImportPlan.errors`` ({"line", "field", "value", "reason"}), all rows are
    checked, and a plan with errors must not be written.
    """
    plan = ImportPlan()
    text, decode_error = _decode(data)
    if text is None:
        plan.errors.append(decode_error)  # type: ignore[arg-type]
        return plan
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        plan.errors.append({"line": 1, "field": "", "value": "", "reason": "no header line"})
        return plan
    delimiter = _delimiter(first_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [name.strip() for name in next(reader)]
    except csv.Error as exc:
        plan.errors.append(_csv_error(text, 1, delimiter, [], exc))
        return plan
    header_errors: list[RowError] = []
    for name in header:
        if name not in CSV_COLUMNS + OPTIONAL_CSV_COLUMNS:
            header_errors.append(
                {"line": 1, "field": name, "value": name, "reason": "unknown column"}
            )
        elif header.count(name) > 1:
            header_errors.append(
                {"line": 1, "field": name, "value": name, "reason": "duplicate column"}
            )
    for name in CSV_COLUMNS:
        if name not in header:
            header_errors.append(
                {"line": 1, "field": name, "value": "", "reason": "missing column"}
            )
    if header_errors:
        # Deduplicate "duplicate column" reported once per occurrence.
        seen: set[tuple[str, str]] = set()
        for err in header_errors:
            if (err["field"], err["reason"]) not in seen:
                seen.add((err["field"], err["reason"]))
                plan.errors.append(err)
        return plan
    index = {name: header.index(name) for name in CSV_COLUMNS + OPTIONAL_CSV_COLUMNS
             if name in header}

    by_id: dict[str, SubscriberRecord] = {}
    # Line where each subscriber's language/mobile/email was first given.
    set_on: dict[tuple[str, str], int] = {}
    invalid: set[tuple[str, str]] = set()  # (subscriber_id, field) with an error
    line_end = reader.line_num
    while True:
        line = line_end + 1  # first physical line of this record
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader cannot resume inside a broken record: report it and stop.
            plan.errors.append(_csv_error(text, line, delimiter, header, exc))
            break
        line_end = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        plan.rows += 1
        if len(row) != len(header):
            plan.errors.append({
                "line": line, "field": "", "value": "",
                "reason": f"{len(row)} fields, the header has {len(header)}",
            })
            continue
        values = dict.fromkeys(OPTIONAL_CSV_COLUMNS, "")
        values.update({name: row[i].strip() for name, i in index.items()})
        errors = _check_row(values, line, by_id, set_on, invalid, plan)
        plan.errors.extend(errors)

    for record in plan.subscribers:
        key = record.external_id
        if not record.language and (key, "language") not in invalid:
            plan.errors.append({
                "line": record.line, "field": "language", "value": "", "reason": "required",
            })
        no_contact = record.mobile is None and record.email is None and record.landline is None
        if no_contact and not {(key, "mobile"), (key, "email"), (key, "landline")} & invalid:
            plan.errors.append({
                "line": record.line, "field": "mobile", "value": "",
                "reason": "a mobile or an e-mail is required",
            })
        if record.voice and record.mobile is None and (key, "mobile") not in invalid:
            plan.errors.append({
                "line": record.line, "field": "voice", "value": "yes",
                "reason": "voice calls to the mobile need a mobile",
            })
    plan.errors.sort(key=lambda e: e["line"])
    for error in plan.errors:
        # An error line quotes the value, not a whole over-long cell.
        if len(error["value"]) > MAX_QUOTED_VALUE:
            error["value"] = (f"{error['value'][:MAX_QUOTED_VALUE]}… "
                              f"({len(error['value']):,} characters)")
    return plan


def _check_row(
    values: dict[str, str],
    line: int,
    by_id: dict[str, SubscriberRecord],
    set_on: dict[tuple[str, str], int],
    invalid: set[tuple[str, str]],
    plan: ImportPlan,
) -> list[RowError]:
    errors: list[RowError] = []

    def bad(name: str, value: str, reason: str) -> None:
        errors.append({"line": line, "field": name, "value": value, "reason": reason})

    external_id = values["subscriber_id"]
    if not external_id:
        bad("subscriber_id", "", "required")
        return errors
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        bad("subscriber_id", external_id, f"longer than {MAX_EXTERNAL_ID_LENGTH} characters")
        return errors

    normalised: dict[str, str | None] = {}
    language = values["language"].lower()
    if language and language not in LANGUAGES:
        bad("language", values["language"], f"unknown language (one of {', '.join(LANGUAGES)})")
        normalised["language"] = None
    else:
        normalised["language"] = language or None
    for name, check in (("mobile", normalise_mobile), ("email", normalise_email),
                        ("landline", normalise_landline)):
        if not values[name]:
            normalised[name] = None
            continue
        try:
            normalised[name] = check(values[name])
        except InvalidValue as exc:
            bad(name, values[name], exc.reason)
            normalised[name] = None

    opt_in: bool | None = None
    if values["general_interest"]:
        try:
            opt_in = parse_yes_no(values["general_interest"])
        except InvalidValue as exc:
            bad("general_interest", values["general_interest"], exc.reason)
    voice: bool | None = None
    if values["voice"]:
        try:
            voice = parse_yes_no(values["voice"])
        except InvalidValue as exc:
            bad("voice", values["voice"], exc.reason)

    position: tuple[float, float] | None = None
    parse_ok = True
    for name in ("lat", "lon"):
        if not values[name]:
            bad(name, "", "required")
            parse_ok = False
        elif not _is_number(values[name]):
            bad(name, values[name], "not a number")
            parse_ok = False
    if parse_ok:
        try:
            position = check_position(values["lat"], values["lon"])
        except InvalidValue as exc:
            bad("lat", f"{values['lat']},{values['lon']}", exc.reason)

    record = by_id.get(external_id)
    if record is None:
        record = SubscriberRecord(external_id, "", None, None, line=line)
        by_id[external_id] = record
        plan.subscribers.append(record)
    elif len(record.addresses) >= MAX_ADDRESSES:
        bad("subscriber_id", external_id, f"more than {MAX_ADDRESSES} addresses")
        position = None

    for name in ("language", "mobile", "email", "landline"):
        value = normalised[name]
        if value is None:
            continue
        current = getattr(record, name)
        if not current:
            setattr(record, name, value)
            set_on[(external_id, name)] = line
        elif current != value:
            bad(name, values[name], f"contradicts line {set_on[(external_id, name)]}")
    if opt_in is not None:
        first = set_on.get((external_id, "general_interest"))
        if first is None:
            record.info_opt_in = opt_in
            set_on[(external_id, "general_interest")] = line
        elif record.info_opt_in != opt_in:
            bad("general_interest", values["general_interest"], f"contradicts line {first}")
    if voice is not None:
        first = set_on.get((external_id, "voice"))
        if first is None:
            record.voice = voice
            set_on[(external_id, "voice")] = line
        elif record.voice != voice:
            bad("voice", values["voice"], f"contradicts line {first}")
    if position is not None:
        record.addresses.append(AddressRecord(*position))
    invalid.update((external_id, e["field"]) for e in errors)
    return errors
