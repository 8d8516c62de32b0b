"""One CSV cell that no spreadsheet runs as a formula (OWASP "CSV injection"), for every
CSV Tocsin writes: the campaign report, the answers export, the contact import's error
report."""

from __future__ import annotations

import re
from typing import Any

#: Where a spreadsheet starts a formula: ``= + - @``, tab and carriage return.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: A bare international number: a spreadsheet reads it as a number, computes nothing.
_PHONE_NUMBER = re.compile(r"\+\d{4,15}")


def csv_cell(value: Any) -> Any:
    """``value`` safe as a CSV cell: text starting with ``= + - @``, tab or CR gets a
    leading ``'`` (shown as text, never evaluated), except a bare international number
    (``+`` and 4 to 15 digits, E.164), which stays as dialled. ``None`` is ``""``;
    other non-text values (counts) are returned as they are."""
    if value is None:
        return ""
    if (isinstance(value, str) and value.startswith(FORMULA_START)
            and not _PHONE_NUMBER.fullmatch(value)):
        return "'" + value
    return value
