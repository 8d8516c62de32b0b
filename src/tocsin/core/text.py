"""Names and free text that people type: one check for every service (web and CLI alike).

A *name* (a template's, an integrator's, a user's display name) is one line,
shown in lists and headers: it is stored normalised (Unicode NFC, invisible
format characters such as U+200B removed, runs of spaces collapsed) and
refused when it is empty, longer than its limit, broken over several lines or
holding a control character. Each refusal is a :class:`TextInputError` naming
the field, which the calling service turns into its own error type.
"""

from __future__ import annotations

import unicodedata

#: Characters that break a line (Unicode line boundaries, UAX #14 mandatory breaks).
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
#: A value this long is refused before any normalisation work (hostile input).
_HOPELESS = 100_000


class TextInputError(ValueError):
    """A typed value refused: ``field`` names it (``name``, ``display_name``…), ``reason``
    says why in plain words (``"3,000 characters; at most 200"``)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def forbidden_char(ch: str) -> bool:
    """True for a character no text may hold: XML 1.0 (CAP) cannot carry C0 controls but
    tab, line feed and carriage return, nor U+FFFE/U+FFFF; C1 controls (U+0080–U+009F)
    are invisible, break e-mail headers (U+0085 is a line break) and no SMS can carry them.
    """
    o = ord(ch)
    return (o < 0x20 and ch not in "\t\n\r") or 0x7F <= o <= 0x9F or ch in "\ufffe\uffff"


def normalise_name(name: str) -> str:
    """``name`` as stored: NFC, invisible format characters (Unicode category Cf) removed,
    surrounding blanks stripped and inner runs of blanks collapsed to one space."""
    visible = "".join(c for c in unicodedata.normalize("NFC", name)
                      if unicodedata.category(c) != "Cf")
    return " ".join(visible.split())


def check_name(value: object, field: str, *, limit: int, empty: str = "required",
               required: bool = True) -> str:
    """The one-line name ``value`` normalised (:func:`normalise_name`), or a refusal.

    ``limit`` is the most characters kept (counted after normalisation);
    ``empty`` is the reason given when nothing is left (``"the name is empty:
    give the template a name"``). With ``required=False`` an empty value
    returns ``""``.

    Raises :class:`TextInputError` (``field``, reason) when ``value`` is not
    text, empty (and required: ``empty``), longer than
    ``limit`` ("3,000 characters; at most 200"), holds a line break ("must be
    one line") or a control character ("contains the control character U+0007").
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise TextInputError(field, "must be text")
    if len(value) > _HOPELESS:
        raise TextInputError(field, f"{len(value):,} characters; at most {limit:,}")
    stripped = value.strip()
    if any(ch in LINE_BREAKS for ch in stripped):
        raise TextInputError(field, "must be one line: it contains a line break")
    bad = next((ch for ch in stripped if forbidden_char(ch) and ch != "\t"), None)
    if bad is not None:
        raise TextInputError(field, f"contains the control character U+{ord(bad):04X}")
    name = normalise_name(stripped)
    if not name:
        if required:
            raise TextInputError(field, empty)
        return ""
    if len(name) > limit:
        raise TextInputError(field, f"{len(name):,} characters; at most {limit:,}")
    return name
