"""Pure rules of the address register (no I/O): search keys and the check of a BeST row.

The row format is the BeST-Address CSV as converted by the federal tools (BOSA,
"BeST address" open data; one row per address): ``best_id, status, nis,
municipality_nl/fr/de, postcode, street_nl/fr/de, housenumber, boxnumber, x_lambert72,
y_lambert72, lon_wgs84, lat_wgs84``. The municipality and postal-name files are
``id;code;name_nl;name_fr;name_de`` without a header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tocsin.geo.areas import BELGIUM_BBOX

#: Columns a BeST address file must have (any order; others are ignored).
REQUIRED_COLUMNS = ("best_id", "status", "nis", "postcode", "municipality_nl",
                    "municipality_fr", "municipality_de", "street_nl", "street_fr",
                    "street_de", "housenumber", "boxnumber", "lon_wgs84", "lat_wgs84")
#: BeST address statuses (BeST-Address data model v2); only ``current`` is offered.
STATUSES = ("current", "retired", "proposed", "reserved")
LANGS = ("nl", "fr", "de")
#: Word for "box" in an address label, per language of the street name.
BOX_WORD = {"fr": "bte", "nl": "bus", "de": "Bfk.", "en": "box"}
_BOX_PREFIX = re.compile(r"^(?:bte|boite|bus|box|bfk|bk|b)\s*(?=\d)")


def fold(text: str) -> str:
    """Search key: lower case, no accents, punctuation as single spaces
    ("Chaussée de Haecht" → "chaussee de haecht", "Sint-Jans" → "sint jans")."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.lower()).split())


def number_key(number: str) -> str:
    """House-number key: folded, without spaces ("12 A" → "12a", "29B" → "29b")."""
    return fold(number).replace(" ", "")


def box_key(box: str) -> str:
    """Box key: folded, without spaces, the word "box" and leading zeros dropped
    ("bte 7", "b007", "Bus 0007" → "7"; "A2.2" → "a22")."""
    key = _BOX_PREFIX.sub("", fold(box)).replace(" ", "")
    return key.lstrip("0") or ("0" if key else "")


def number_order(number: str) -> tuple[int, str]:
    """Natural order of house numbers: by the leading integer, then the rest
    ("2" < "10" < "10a"); a number without digits sorts last."""
    m = re.match(r"\d+", number.strip())
    return (int(m.group()) if m else 10**9, number_key(number))


def nearest_numbers(typed: str, numbers: list[str], n: int = 4) -> list[str]:
    """The ``n`` numbers of ``numbers`` nearest to ``typed`` by their leading integer,
    in natural order (the suggestions when a house number is not in the register)."""
    want = number_order(typed)[0]
    if want >= 10**9:
        return sorted(numbers, key=number_order)[:n]
    close = sorted(numbers, key=lambda x: (abs(number_order(x)[0] - want), number_order(x)))
    return sorted(close[:n], key=number_order)


def street_key(nl: str, fr: str, de: str) -> str:
    """The key of a street: its first name among nl, fr, de, folded (150 characters)."""
    return fold(nl or fr or de)[:150]


def prefix_range(key: str) -> tuple[str, str]:
    """``(lo, hi)`` so that ``lo <= k < hi`` holds for the keys ``k`` starting with
    ``key`` (keys are ``[a-z0-9 ]``, all below "~" in byte order)."""
    return key, key + "~"


def in_belgium(lat: float, lon: float) -> bool:
    """WGS84 degrees inside Belgium's bounding box (``geo.areas.BELGIUM_BBOX``)."""
    x0, y0, x1, y1 = BELGIUM_BBOX
    return x0 <= lon <= x1 and y0 <= lat <= y1


class RowRefused(ValueError):
    """A BeST row that is not imported: ``field`` (a column) and English ``reason``."""

    def __init__(self, field: str, reason: str, value: str = "") -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason, self.value = field, reason, value


def _float(row: Mapping[str, str], column: str) -> float:
    text = (row.get(column) or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise RowRefused(column, "is not a number", text) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise RowRefused(column, "is not a number", text)
    return value


def check_row(row: Mapping[str, str | None]) -> dict[str, Any]:
    """The columns of ``address_point`` from one BeST row (a ``csv.DictReader`` row).

    Raises :class:`RowRefused` for: no ``best_id``; an unknown ``status``; a ``nis``
    that is not 5 digits; a ``postcode`` that is not 4 digits; no street name in any
    language; no house number; coordinates that are not numbers; Lambert 72
    coordinates (0, 0) (no position: the register's WGS84 is then Lambert's origin
    converted, in France); WGS84 (0, 0); a position outside Belgium.
    """
    r = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
    best_id = r.get("best_id", "")
    if not best_id or len(best_id) > 200:
        raise RowRefused("best_id", "missing" if not best_id else "longer than 200 characters",
                         best_id[:60])
    status = r.get("status", "").lower()
    if status not in STATUSES:
        raise RowRefused("status", "unknown status (current, retired, proposed, reserved)",
                         status[:40])
    nis = r.get("nis", "")
    if not (len(nis) == 5 and nis.isdigit()):
        raise RowRefused("nis", "is not a 5-digit NIS code", nis[:40])
    postcode = r.get("postcode", "")
    if not (len(postcode) == 4 and postcode.isdigit()):
        raise RowRefused("postcode", "is not a 4-digit postcode", postcode[:40])
    streets = {lang: r.get(f"street_{lang}", "")[:150] for lang in LANGS}
    if not any(streets.values()):
        raise RowRefused("street", "no street name (nl, fr or de)")
    number = r.get("housenumber", "")
    if not number_key(number) or len(number) > 20:
        raise RowRefused("housenumber", "missing" if not number else "longer than 20 characters",
                         number[:40])
    x, y = r.get("x_lambert72", ""), r.get("y_lambert72", "")
    if x and y and _float(r, "x_lambert72") == 0 and _float(r, "y_lambert72") == 0:
        raise RowRefused("x_lambert72", "coordinates (0, 0): the register has no position "
                         "for this address", "0, 0")
    lat, lon = _float(r, "lat_wgs84"), _float(r, "lon_wgs84")
    if lat == 0 and lon == 0:
        raise RowRefused("lat_wgs84", "coordinates (0, 0): the register has no position "
                         "for this address", "0, 0")
    if not in_belgium(lat, lon):
        raise RowRefused("lat_wgs84", "position outside Belgium", f"{lat:g}, {lon:g}")
    box = r.get("boxnumber", "")[:40]
    return {
        "best_id": best_id, "status": status, "nis": nis, "postcode": postcode,
        **{f"municipality_{lang}": r.get(f"municipality_{lang}", "")[:100] for lang in LANGS},
        **{f"street_{lang}": streets[lang] for lang in LANGS},
        "street_key": street_key(streets["nl"], streets["fr"], streets["de"]),
        "number": number, "number_key": number_key(number)[:20],
        "box": box, "box_key": box_key(box)[:40], "lat": lat, "lon": lon,
    }


@dataclass(frozen=True)
class NamedCode:
    """A line of the municipality or postal-name file: ``code`` (NIS or postcode) and
    its names by language (empty names left out)."""

    code: str
    names: dict[str, str]


def parse_named_code(line: str, digits: int) -> NamedCode | None:
    """``id;code;name_nl;name_fr;name_de`` → :class:`NamedCode`; None for a blank line.
    Raises :class:`RowRefused` when ``code`` is not ``digits`` digits."""
    if not line.strip():
        return None
    parts = [p.strip() for p in line.rstrip("\r\n").split(";")]
    parts += [""] * (5 - len(parts))
    code = parts[1]
    if not (len(code) == digits and code.isdigit()):
        raise RowRefused("code", f"is not a {digits}-digit code", code[:40])
    names = {lang: name[:100] for lang, name in zip(LANGS, parts[2:5], strict=True) if name}
    return NamedCode(code, names)
