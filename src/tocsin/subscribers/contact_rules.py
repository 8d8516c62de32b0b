"""Contact-list rules: column names, phone repair, row checks (SPEC F10). Pure: no I/O.

A contact list is a table (``subscribers.spreadsheets.Table``) whose columns are
recognised by name in French, Dutch, German or English ("GSM", "téléphone
portable", "telefoon", "Handy", "taal", "e-mail", "naam"…, see
:data:`HEADER_ALIASES`); a header that is not recognised must be mapped once
(to a field or to ``ignore``), and the mapping is remembered per authority.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TypedDict

import phonenumbers

from tocsin.core.text import TextInputError, check_name
from tocsin.subscribers.rules import InvalidValue, normalise_email, refused_line_type

#: The fields of a contact; ``ignore`` drops a column on purpose.
FIELDS = ("name", "first_name", "last_name", "mobile", "email", "language")
IGNORE = "ignore"

#: Header spellings per field, folded by :func:`header_key` (FR, NL, DE, EN).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "full name", "nom", "nom complet", "naam", "volledige naam",
             "contact", "contactpersoon", "personne", "person", "vollstandiger name"),
    "first_name": ("first name", "firstname", "given name", "prenom", "voornaam",
                   "vorname"),
    "last_name": ("last name", "lastname", "surname", "family name", "nom de famille",
                  "achternaam", "familienaam", "nachname", "familienname"),
    "mobile": ("mobile", "mobile phone", "mobile number", "cell", "cellphone", "cell phone",
               "phone", "phone number", "telephone", "tel", "gsm", "gsm nummer", "gsmnummer",
               "numero gsm", "n gsm", "portable", "telephone portable", "tel portable",
               "numero de telephone", "numero de portable", "mobiel", "mobiele telefoon",
               "mobiel nummer", "telefoon", "telefoonnummer", "telefoon nummer", "tel nr",
               "handy", "handynummer", "mobiltelefon", "mobilnummer", "telefon",
               "telefonnummer", "msisdn", "sms"),
    "email": ("email", "e mail", "mail", "email address", "e mail address", "courriel",
              "adresse e mail", "adresse email", "adresse mail", "e mailadres", "emailadres",
              "mailadres", "e mail adresse", "emailadresse"),
    "language": ("language", "lang", "langue", "langue preferee", "taal", "voorkeurtaal",
                 "sprache", "bevorzugte sprache", "lng"),
}
_FIELD_OF = {alias: f for f, aliases in HEADER_ALIASES.items() for alias in aliases}

#: Language cell values, folded by :func:`header_key`.
_LANGUAGE_VALUES = {
    "fr": ("fr", "f", "fra", "fre", "francais", "frans", "franzosisch", "french"),
    "nl": ("nl", "n", "nld", "dut", "vl", "neerlandais", "nederlands", "vlaams",
           "niederlandisch", "dutch", "flemish"),
    "de": ("de", "d", "deu", "ger", "allemand", "duits", "deutsch", "german"),
    "en": ("en", "e", "eng", "anglais", "engels", "englisch", "english"),
}
_LANGUAGE_OF = {v: code for code, values in _LANGUAGE_VALUES.items() for v in values}

#: Emergency and police numbers never go into a contact list (a typing slip would
#: send alerts to them): 112 (EU), 100 (BE ambulance, fire), 101 (BE police).
EMERGENCY_NUMBERS = frozenset({"112", "100", "101", "110", "911", "999"})
_PAID_TYPES = {phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
               phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number"}
_SMS_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE,
                        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})

NAME_MAX = 200


class ContactError(TypedDict):
    """One refused value: ``row`` the spreadsheet row (header = 1), ``field`` the
    contact field or ``header``/``file``, ``column`` the header of the bad cell, ``value``
    the cell as read, ``reason`` in English, ``code`` a stable code for translations."""

    row: int
    field: str
    column: str
    value: str
    reason: str
    code: str


@dataclass
class ContactRecord:
    """A checked row: ``key`` (the mobile number, else the e-mail address) identifies
    the contact within its list; ``repaired`` names the fields changed on the way
    (a lost leading 0, ``32470123456.0``)."""

    row: int
    key: str
    name: str | None = None
    mobile: str | None = None
    email: str | None = None
    language: str | None = None
    repaired: list[str] = field(default_factory=list)


@dataclass
class ContactPlan:
    """A checked table: ``columns`` maps column index -> field, ``records`` the good
    rows, ``errors`` every bad one, ``new_mappings`` headers mapped by this import."""

    columns: dict[int, str] = field(default_factory=dict)
    records: list[ContactRecord] = field(default_factory=list)
    errors: list[ContactError] = field(default_factory=list)
    rows: int = 0


def header_key(header: str) -> str:
    """A header folded for matching: accents and case dropped, punctuation as spaces
    ("Téléphone  portable" -> "telephone portable", "E-Mail" -> "e mail")."""
    text = unicodedata.normalize("NFKD", header)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())[:200]


def known_field(header: str) -> str | None:
    """The field a header names in FR/NL/DE/EN, or ``None`` when it is not recognised."""
    return _FIELD_OF.get(header_key(header))


def error(row: int, field_name: str, column: str, value: str, reason: str,
          code: str) -> ContactError:
    """A :class:`ContactError`, the value cut to 100 characters."""
    shown = value if len(value) <= 100 else value[:99] + "…"
    return {"row": row, "field": field_name, "column": column, "value": shown,
            "reason": reason, "code": code}


def map_columns(header: list[str], mapping: dict[str, str], header_row: int = 1
                ) -> tuple[dict[int, str], list[ContactError]]:
    """Column index -> field for ``header``, and the errors of the header row.

    ``mapping``: folded header (:func:`header_key`) -> field or ``ignore``, the
    remembered and the given mappings (given ones win); otherwise the FR/NL/DE/EN
    names apply. Errors: an unrecognised header (code ``unknown_column``: map it),
    two columns for one field (``duplicate_column``), no mobile and no e-mail column
    (``no_contact_column``).
    """
    columns: dict[int, str] = {}
    errors: list[ContactError] = []
    seen: dict[str, str] = {}
    for index, title in enumerate(header):
        key = header_key(title)
        if not key:
            continue
        target = mapping.get(key) or _FIELD_OF.get(key)
        if target is None:
            errors.append(error(header_row, "header", title, title,
                                f"unknown column {title!r}: map it to one of "
                                f"{', '.join(FIELDS)} or {IGNORE} (--map '{title}=FIELD')",
                                "unknown_column"))
            continue
        if target == IGNORE:
            continue
        if target in seen:
            errors.append(error(header_row, "header", title, title,
                                f"two columns for {target}: {seen[target]!r} and {title!r}; "
                                f"map one of them to {IGNORE}", "duplicate_column"))
            continue
        seen[target] = title
        columns[index] = target
    if not errors and not {"mobile", "email"} & set(columns.values()):
        errors.append(error(header_row, "header", "", ", ".join(header)[:100],
                            "no column of mobile numbers or e-mail addresses (e.g. GSM, "
                            "mobile, telefoon, Handy, e-mail)", "no_contact_column"))
    return columns, errors


_SEPARATORS = re.compile(r"[\s./\-()\u00a0\u202f]")
_FLOAT_TEXT = re.compile(r"^\+?\d+[.,]0+$")
_SCIENTIFIC = re.compile(r"^\d(?:[.,]\d+)?[eE]\+?\d+$")


def repair_phone(raw: str, was_number: bool = False) -> tuple[str, bool]:
    """``raw`` as an E.164 number that can receive SMS, and whether it was repaired.

    Repairs only what a spreadsheet does to a phone number typed as a number, when
    the result is a valid number: ``32470123456.0`` / ``32470123456,0`` (a float
    export), ``3.2470123456E+10`` (scientific notation), ``470123456`` (the leading
    0 lost) and ``32470123456`` (the + lost). National numbers are Belgian
    (ITU-T E.164; libphonenumber metadata). ``was_number``: the cell was a number
    in the workbook (so a missing 0 is certainly lost, not mistyped).

    Raises InvalidValue: emergency numbers (112, 100, 101…), not a phone number,
    not a valid number, premium-rate or shared-cost numbers, numbers that cannot
    receive SMS (landlines).
    """
    text = raw.strip()
    repaired = was_number
    if _FLOAT_TEXT.match(text):
        text, repaired = re.split(r"[.,]", text)[0], True
    elif _SCIENTIFIC.match(text):
        try:
            value = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise InvalidValue("not a phone number") from None
        if value != value.to_integral_value():
            raise InvalidValue("not a phone number (a number with decimals)")
        text, repaired = str(int(value)), True
    digits = _SEPARATORS.sub("", text)
    if digits.lstrip("+") in EMERGENCY_NUMBERS:
        raise InvalidValue(f"{digits} is an emergency number: never in a contact list")
    if not re.fullmatch(r"\+?\d{3,17}", digits):
        raise InvalidValue("not a phone number (digits, spaces and a leading + only)")
    candidates = [digits]
    lost = not digits.startswith(("+", "0"))
    if digits.startswith("00"):
        candidates = ["+" + digits[2:]]
    elif lost:
        # A number typed into a numeric cell: its 0 (a Belgian number, tried first) or
        # its + (an international one) is gone.
        candidates = ["0" + digits, "+" + digits]
    number = None
    for candidate in candidates:
        try:
            parsed = phonenumbers.parse(candidate, "BE")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            number = parsed
            repaired = repaired or lost
            break
    if number is None:
        raise InvalidValue("not a valid phone number")
    kind = phonenumbers.number_type(number)
    if refused_line_type(number) == "shared-cost":
        raise InvalidValue("070 numbers are shared-cost numbers and cannot receive alerts")
    if kind in _PAID_TYPES:
        raise InvalidValue(f"{_PAID_TYPES[kind]}: refused")
    if kind not in _SMS_TYPES:
        raise InvalidValue("not a mobile number: a landline or other line cannot receive SMS")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), repaired


def parse_language(raw: str) -> str | None:
    """``fr``, ``nl``, ``de`` or ``en`` from a code or a language's name in FR/NL/DE/EN
    ("Nederlands", "F", "Deutsch"); ``None`` when empty. Raises InvalidValue."""
    key = header_key(raw)
    if not key:
        return None
    code = _LANGUAGE_OF.get(key)
    if code is None:
        raise InvalidValue("unknown language: use fr, nl, de or en")
    return code


def check_rows(rows: list[tuple[int, list[str]]], columns: dict[int, str],
               header: list[str], numeric: set[tuple[int, int]] | None = None) -> ContactPlan:
    """Check every row; returns the good records and every error (row, column, reason).

    A row needs a mobile number or an e-mail address. A cell that starts with ``=``
    is a formula exported as text (CSV): refused (code ``formula``). Two rows with
    the same contact (mobile, else e-mail) are an error on the second
    (``duplicate``).
    """
    plan = ContactPlan(columns=columns, rows=len(rows))
    numeric = numeric or set()
    first_row: dict[str, int] = {}
    for number, cells in rows:
        values: dict[str, str] = {}
        record = ContactRecord(row=number, key="")
        bad = False
        for index, target in columns.items():
            raw = cells[index] if index < len(cells) else ""
            values[target] = raw
            column = header[index]
            if raw.lstrip().startswith("="):
                plan.errors.append(error(number, target, column, raw, "a formula, not a "
                                         "value: export the values (or remove the '=')",
                                         "formula"))
                bad = True
                continue
            try:
                _apply(record, target, raw, (number, index) in numeric)
            except InvalidValue as exc:
                plan.errors.append(error(number, target, column, raw, exc.reason,
                                         _code(target, exc.reason)))
                bad = True
        if bad:
            continue
        parts = [values.get("first_name", "").strip(), values.get("last_name", "").strip()]
        if record.name is None and any(parts):
            try:
                record.name = check_name(" ".join(p for p in parts if p), "name",
                                         limit=NAME_MAX) or None
            except TextInputError as exc:
                plan.errors.append(error(number, "name", "", " ".join(parts), exc.reason,
                                         "name"))
                continue
        if record.mobile is None and record.email is None:
            plan.errors.append(error(number, "mobile", "", "", "no mobile number and no "
                                     "e-mail address: give at least one", "no_contact"))
            continue
        record.key = record.mobile or record.email or ""
        if record.key in first_row:
            plan.errors.append(error(number, "mobile" if record.mobile else "email", "",
                                     record.key, f"the same contact as row "
                                     f"{first_row[record.key]}", "duplicate"))
            continue
        first_row[record.key] = number
        plan.records.append(record)
    return plan


def _apply(record: ContactRecord, target: str, raw: str, was_number: bool) -> None:
    value = raw.strip()
    if target == "mobile":
        if value:
            record.mobile, repaired = repair_phone(value, was_number)
            if repaired:
                record.repaired.append("mobile")
    elif target == "email":
        if value:
            if len(value) > 320:
                raise InvalidValue("longer than 320 characters")
            record.email = normalise_email(value)
    elif target == "language":
        record.language = parse_language(value)
    elif target == "name":
        try:
            record.name = check_name(value, "name", limit=NAME_MAX, required=False) or None
        except TextInputError as exc:
            raise InvalidValue(exc.reason) from None
    elif target in ("first_name", "last_name"):
        if len(value) > NAME_MAX:
            raise InvalidValue(f"{len(value):,} characters; at most {NAME_MAX}")


def _code(target: str, reason: str) -> str:
    for word, code in (("emergency", "emergency_number"), ("premium", "premium_rate"),
                       ("shared-cost", "shared_cost"), ("landline", "not_mobile"),
                       ("language", "language")):
        if word in reason:
            return code
    return {"mobile": "phone", "email": "email"}.get(target, target)
