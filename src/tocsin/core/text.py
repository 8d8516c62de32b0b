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

from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

#: Characters that break a line (Unicode line boundaries, UAX #14 mandatory breaks).
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
#: A value this long is refused before any normalisation work (hostile input).
_HOPELESS = 100_000


class TextInputError(InputError):
    """A typed value refused: ``field`` names it (``name``, ``display_name``…), ``reason``
    says why in plain words (``"3,000 characters; at most 200"``); an
    :class:`~tocsin.core.errors.InputError`, so ``template``, ``params`` and ``code``
    (``text_type``, ``text_too_long``, ``text_line_break``, ``text_control``,
    ``text_empty``) let the web layer show it in the reader's language."""


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


def _too_long(field: str, length: int, limit: int) -> TextInputError:
    return TextInputError(field, N_("%(length)s characters; at most %(limit)s"),
                          code="text_too_long", length=f"{length:,}", limit=f"{limit:,}")


def check_name(value: object, field: str, *, limit: int, empty: str = N_("required"),
               required: bool = True) -> str:
    """The one-line name ``value`` normalised (:func:`normalise_name`), or a refusal.

    ``limit`` is the most characters kept (counted after normalisation);
    ``empty`` is the reason given when nothing is left (``"the name is empty:
    give the template a name"``; a msgid, marked with ``N_`` by the caller). With
    ``required=False`` an empty value returns ``""``.

    Raises :class:`TextInputError` (``field``, reason) when ``value`` is not
    text, empty (and required: ``empty``), longer than
    ``limit`` ("3,000 characters; at most 200"), holds a line break ("must be
    one line") or a control character ("contains the control character U+0007").
    """
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise TextInputError(field, N_("must be text"), code="text_type")
    if len(value) > _HOPELESS:
        raise _too_long(field, len(value), limit)
    stripped = value.strip()
    if any(ch in LINE_BREAKS for ch in stripped):
        raise TextInputError(field, N_("must be one line: it contains a line break"),
                             code="text_line_break")
    bad = next((ch for ch in stripped if forbidden_char(ch) and ch != "\t"), None)
    if bad is not None:
        raise TextInputError(field, N_("contains the control character %(char)s"),
                             code="text_control", char=f"U+{ord(bad):04X}")
    name = normalise_name(stripped)
    if not name:
        if required:
            raise TextInputError(field, empty, code="text_empty")
        return ""
    if len(name) > limit:
        raise _too_long(field, len(name), limit)
    return name
