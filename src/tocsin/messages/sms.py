"""SMS text encoding, segmentation and SMPP short_message payloads.

Pure functions, no I/O. The rules come from:

- 3GPP TS 23.038 §6.2.1 (GSM 7-bit default alphabet) and §6.2.1.1 (its
  extension table, reached with the escape septet 0x1B);
- 3GPP TS 23.040 §9.2.3.24.1 (concatenated short messages, 8-bit reference)
  and §9.2.3.24 (user data header layout);
- SMPP 3.4 §5.2.12 (esm_class, UDHI bit 0x40) and §5.2.19 (data_coding).

A text is sent in GSM-7 when every character is in the default alphabet or
its extension table, otherwise in UCS-2. One segment carries 160 septets or
70 UTF-16 code units; a concatenated message carries 153 septets or 67 code
units per part, because the 6-octet concatenation header takes the rest of
the 140 octets. UCS-2 is counted in UTF-16 code units (characters outside the
Basic Multilingual Plane, such as most emoji, take two) because that is what
handsets and SMSCs actually transmit for data_coding 0x08.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

__all__ = [
    "DEFAULT_SEGMENT_PRICE_EUR",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "GSM7_REWRITES",
    "SmsAnalysis",
    "SmsPart",
    "analyse",
    "composer_preview",
    "decode_short_message",
    "encode_message",
    "encode_parts",
    "gsm7_rewrite",
    "gsm7_fold_accents",
    "is_gsm7",
    "preview",
    "segment_count",
]

Encoding = Literal["GSM-7", "UCS-2"]

#: Tariff per SMS segment (SPEC F29), whatever the encoding.
DEFAULT_SEGMENT_PRICE_EUR = Decimal("0.055")

#: SMPP 3.4 data_coding values used here (SMPP 3.4 §5.2.19).
DATA_CODING_SMSC_DEFAULT = 0x00
DATA_CODING_IA5 = 0x01
DATA_CODING_LATIN1 = 0x03
DATA_CODING_UCS2 = 0x08

#: SMPP 3.4 §5.2.12: esm_class bit 6 = UDH indicator.
ESM_CLASS_DEFAULT = 0x00
ESM_CLASS_UDHI = 0x40

ESCAPE = 0x1B

#: Single-segment and per-part capacities in units (septets / UTF-16 code units).
GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67

#: 8-bit reference number allows at most 255 parts (3GPP TS 23.040 §9.2.3.24.1).
MAX_PARTS = 255

#: 8-bit data (data_coding 3, Latin-1): octets per single segment / per part with the
#: 6-octet concatenation UDH (140 - 6); 3GPP TS 23.040 §9.2.3.24.
OCTETS_SINGLE = 140
OCTETS_MULTI = 134

#: Concatenation modes per provider account (decision 0025): a UDH written by Tocsin
#: (3GPP TS 23.040 §9.2.3.24.1 / .8), the SAR TLVs from which the SMSC builds the UDH
#: (SMPP 3.4 §5.3.2.22-24), or the whole text in message_payload (§5.3.2.32) for the
#: SMSC to segment.
CONCAT_MODES = ("udh", "sar", "payload")
#: SMPP 3.4 §5.2.19 codings a provider may want for a GSM-7 text (gsm_coding=).
GSM_CODINGS = (DATA_CODING_SMSC_DEFAULT, DATA_CODING_IA5, DATA_CODING_LATIN1)
#: message_payload is a 2-octet length TLV (SMPP 3.4 §5.3.2.32).
MAX_PAYLOAD = 65_535

# SMPP 3.4 §5.3.2 optional parameter tags used for concatenation.
TLV_SAR_MSG_REF_NUM = 0x020C
TLV_SAR_TOTAL_SEGMENTS = 0x020E
TLV_SAR_SEGMENT_SEQNUM = 0x020F
TLV_MESSAGE_PAYLOAD = 0x0424

# 3GPP TS 23.038 §6.2.1: the 128 septets of the default alphabet, in order.
# 0x1B is the escape to the extension table and has no character of its own
# (written here as a placeholder that is removed below).
_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(_BASIC_TABLE) == 128  # guards the table literal against a typo

#: Character -> septet value, default alphabet (3GPP TS 23.038 §6.2.1).
GSM7_BASIC: Mapping[str, int] = {
    char: code for code, char in enumerate(_BASIC_TABLE) if code != ESCAPE
}

#: Character -> septet value sent after ESC 0x1B (3GPP TS 23.038 §6.2.1.1).
#: Each costs two septets. 0x0A is a page break (form feed).
GSM7_EXTENSION: Mapping[str, int] = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

_BASIC_DECODE: dict[int, str] = {code: char for char, code in GSM7_BASIC.items()}
_EXTENSION_DECODE: dict[int, str] = {code: char for char, code in GSM7_EXTENSION.items()}

#: Typographic characters rewritten by :func:`gsm7_rewrite` to GSM-7 equivalents
#: that keep the meaning. An empty replacement deletes an invisible character.
GSM7_REWRITES: Mapping[str, str] = {
    # Apostrophes and single quotes.
    "\u2018": "'",  # ‘ left single quotation mark
    "\u2019": "'",  # ’ right single quotation mark (French/Dutch apostrophe)
    "\u201a": "'",  # ‚ single low-9 quotation mark
    "\u201b": "'",  # ‛ single high-reversed-9 quotation mark
    "\u2032": "'",  # ′ prime
    "\u00b4": "'",  # ´ acute accent used as an apostrophe
    "\u02bc": "'",  # ʼ modifier letter apostrophe (typed as an apostrophe by some keyboards)
    "`": "'",  # grave accent used as an apostrophe (0x60 in GSM-7 is ¿)
    "\u2039": "'",  # ‹ single left-pointing angle quotation mark
    "\u203a": "'",  # › single right-pointing angle quotation mark
    # Double quotes.
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „ (Dutch/German opening quote)
    "\u201f": '"',  # ‟
    "\u2033": '"',  # ″ double prime
    "\u00ab": '"',  # « (French guillemets)
    "\u00bb": '"',  # »
    # Dashes and minus signs.
    "\u2010": "-",  # ‐ hyphen
    "\u2011": "-",  # ‑ non-breaking hyphen
    "\u2012": "-",  # ‒ figure dash
    "\u2013": "-",  # – en dash
    "\u2014": "-",  # — em dash
    "\u2015": "-",  # ― horizontal bar
    "\u2212": "-",  # − minus sign
    # Ellipsis and list bullets.
    "\u2026": "...",  # …
    "\u2022": "-",  # • bullet (list item marker)
    "\u2043": "-",  # ⁃ hyphen bullet
    "\u2024": ".",  # ․ one dot leader (looks like a full stop)
    "\u2044": "/",  # ⁄ fraction slash ("1⁄2" reads "1/2")
    # Spaces: all of these render as an ordinary space.
    "\u00a0": " ",  # no-break space (French typography before : ; ! ? »)
    "\u202f": " ",  # narrow no-break space
    "\u2007": " ",  # figure space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2000": " ",  # en quad
    "\u2001": " ",  # em quad
    "\u2004": " ",  # three-per-em space
    "\u2005": " ",  # four-per-em space
    "\u2006": " ",  # six-per-em space
    "\u2008": " ",  # punctuation space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    "\t": " ",  # tab is not in GSM-7
    # Line breaks.
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    # Invisible characters that word processors paste in.
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark / zero width no-break space
}


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    if not text:
        raise ValueError("text: empty")
    for index, char in enumerate(text):
        if "\ud800" <= char <= "\udfff":
            # A lone surrogate cannot be encoded in UTF-16 and is never typed by
            # a person: it is the trace of a broken decoder upstream.
            raise ValueError(f"text: lone surrogate U+{ord(char):04X} at index {index}")
    return text


def _check_price(price_per_segment: object) -> Decimal:
    if isinstance(price_per_segment, bool) or not isinstance(
        price_per_segment, Decimal | int | float | str
    ):
        raise TypeError(
            "price_per_segment: expected Decimal, int, float or str, "
            f"got {type(price_per_segment).__name__}"
        )
    try:
        # str() first so a float such as 0.055 becomes exactly 0.055, not its binary value.
        price = Decimal(str(price_per_segment))
    except InvalidOperation:
        raise ValueError(f"price_per_segment: not a number: {price_per_segment!r}") from None
    if not price.is_finite():
        raise ValueError(f"price_per_segment: not finite: {price_per_segment!r}")
    if price < 0:
        raise ValueError(f"price_per_segment: negative: {price_per_segment!r}")
    return price


def is_gsm7(char: str) -> bool:
    """Whether one character can be sent in GSM-7 (default alphabet or extension table).

    Source: 3GPP TS 23.038 §6.2.1 and §6.2.1.1. ``char`` is one code point.
    """
    return char in GSM7_BASIC or char in GSM7_EXTENSION


def _char_units(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def _non_gsm_chars(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for char in text:
        if not is_gsm7(char):
            seen.setdefault(char, None)
    return list(seen)


def _split(text: str, encoding: Encoding) -> list[tuple[str, int]]:
    """Cut ``text`` into (part text, units) with whole characters in each part."""
    total = sum(_char_units(char, encoding) for char in text)
    single, multi = (GSM7_SINGLE, GSM7_MULTI) if encoding == "GSM-7" else (UCS2_SINGLE, UCS2_MULTI)
    if total <= single:
        return [(text, total)]
    parts: list[tuple[str, int]] = []
    start = 0
    units = 0
    for index, char in enumerate(text):
        width = _char_units(char, encoding)
        # An escape pair or a surrogate pair moves whole to the next part: the
        # handset decodes each part on its own, so half a pair would show garbage.
        if units + width > multi:
            parts.append((text[start:index], units))
            start = index
            units = 0
        units += width
    parts.append((text[start:], units))
    return parts


@dataclass(frozen=True)
class SmsAnalysis:
    """What an SMS text costs on the air (SPEC F14).

    Attributes:
        encoding: ``"GSM-7"`` or ``"UCS-2"``.
        units: total length, in septets for GSM-7 (an extension-table character
            counts 2) or UTF-16 code units for UCS-2 (a character outside the
            BMP, e.g. an emoji, counts 2).
        segments: number of SMS parts: 1 up to 160 septets / 70 code units,
            otherwise parts of at most 153 / 67 (3GPP TS 23.040 §9.2.3.24.1).
        part_units: units in each part, same order as sent; ``sum == units``.
        non_gsm_chars: distinct characters that force UCS-2, in order of first
            appearance in the text (so the editor can point at the first one);
            empty for GSM-7.
    """

    encoding: Encoding
    units: int
    segments: int
    part_units: list[int]
    non_gsm_chars: list[str]

    def cost_eur(
        self, price_per_segment: Decimal | int | float | str = DEFAULT_SEGMENT_PRICE_EUR
    ) -> Decimal:
        """Cost in EUR of one send to one number: ``segments * price_per_segment``.

        Every segment costs the same whatever its encoding (SPEC F29).

        Raises:
            TypeError: ``price_per_segment`` is not a number.
            ValueError: ``price_per_segment`` is negative, NaN or infinite.
        """
        return self.segments * _check_price(price_per_segment)


def analyse(text: str) -> SmsAnalysis:
    """Encoding, length and segments of an SMS text (SPEC F14).

    Args:
        text: the message, any Unicode string (a Python ``str`` of code points).

    Returns:
        An :class:`SmsAnalysis`; part boundaries are exactly those used by
        :func:`encode_parts`.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` is empty or holds a lone surrogate.
    """
    text = _check_text(text)
    non_gsm = _non_gsm_chars(text)
    encoding: Encoding = "UCS-2" if non_gsm else "GSM-7"
    parts = _split(text, encoding)
    part_units = [units for _, units in parts]
    return SmsAnalysis(
        encoding=encoding,
        units=sum(part_units),
        segments=len(parts),
        part_units=part_units,
        non_gsm_chars=non_gsm,
    )


def preview(
    text: str, price_per_segment: Decimal | int | float | str = DEFAULT_SEGMENT_PRICE_EUR
) -> dict[str, Any]:
    """JSON-ready summary printed by ``tocsin message preview --json``.

    Returns:
        ``{"encoding": str, "units": int, "segments": int, "part_units": [int],
        "cost_eur": float (EUR, rounded half-up to 3 decimals),
        "non_gsm_chars": [str]}``.

    Raises:
        TypeError, ValueError: as :func:`analyse` and :meth:`SmsAnalysis.cost_eur`.
    """
    analysis = analyse(text)
    cost = analysis.cost_eur(price_per_segment).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return {
        "encoding": analysis.encoding,
        "units": analysis.units,
        "segments": analysis.segments,
        "part_units": list(analysis.part_units),
        "cost_eur": float(cost),
        "non_gsm_chars": list(analysis.non_gsm_chars),
    }


def gsm7_rewrite(text: str) -> str:
    """Replace typographic characters by GSM-7 ones that mean the same (one-click fix).

    Only punctuation, quotes, dashes, spaces and invisible characters are
    touched (the table is :data:`GSM7_REWRITES`): curly quotes and guillemets
    become ``'`` / ``"``, dashes ``-``, ``…`` ``...``, no-break and thin spaces
    a space, soft hyphens and zero-width characters disappear.

    Letters are never changed, even when that leaves the text in UCS-2.
    Stripping accents can change the meaning of an alert (French "sûr" =
    safe vs "sur" = on; "côte" = coast vs "cote" = level; Dutch "geëvacueerd"
    reads wrongly as "geevacueerd"), and which spelling is acceptable is the
    author's call. Accented letters already in GSM-7 (3GPP TS 23.038 §6.2.1)
    are: à é è ù ì ò ä ö ü ñ å æ ø ß and capitals É Ä Ö Ü Ñ Å Æ Ø Ç. Not in
    GSM-7, so left as they are: â ê î ô û ë ï ÿ ç œ á í ó ú and their capitals
    (except Ç) and others.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    # French guillemets carry (no-break) spaces inside: « Évacuez » -> "Évacuez".
    text = _GUILLEMET_SPACING.sub('"', text)
    return "".join(GSM7_REWRITES.get(char, char) for char in text)


_GUILLEMET_SPACING = re.compile("\u00ab[ \u00a0\u202f\u2009]*|[ \u00a0\u202f\u2009]*\u00bb")
_LIGATURES: Mapping[str, str] = {"œ": "oe", "Œ": "OE", "ĳ": "ij", "Ĳ": "IJ"}
_WORD = re.compile(r"\w+")


def _fold_char(char: str) -> str:
    if is_gsm7(char):
        return char
    if char in _LIGATURES:
        return _LIGATURES[char]
    base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
    return base if base and all(is_gsm7(c) for c in base) else char


def gsm7_fold_accents(text: str) -> tuple[str, list[dict[str, str]]]:
    """:func:`gsm7_rewrite`, then accented letters GSM-7 lacks folded to their base letter.

    ê → e, ç → c, â → a, ë → e, œ → oe …; letters GSM-7 has (é è à ù ä ö ü ñ,
    3GPP TS 23.038 §6.2.1) are kept. This can change a word ("sûr" → "sur"),
    so it is offered only as an explicit second choice, with the words it
    changes for the operator to check.

    Returns ``(text, changes)`` where ``changes`` is ``[{"from": word, "to":
    word}, …]`` in order of first appearance, each word once.
    Raises ``TypeError`` when ``text`` is not a ``str``.
    """
    rewritten = gsm7_rewrite(text)
    folded = "".join(_fold_char(c) for c in rewritten)
    changes: list[dict[str, str]] = []
    seen: set[str] = set()
    for match in _WORD.finditer(rewritten):
        word = match.group()
        new = "".join(_fold_char(c) for c in word)
        if new != word and word not in seen:
            seen.add(word)
            changes.append({"from": word, "to": new})
    return folded, changes


def composer_preview(
    text: str,
    *,
    max_segments: int,
    price_per_segment: Decimal | int | float | str = DEFAULT_SEGMENT_PRICE_EUR,
) -> dict[str, Any]:
    """What the composer shows under an SMS text while it is typed (SPEC F14).

    The :func:`preview` keys, plus the authority's segment cap and the
    one-click GSM-7 fix:

    - ``max_segments``: the cap in force (``authority.sms_max_segments``, else
      ``settings.sms_max_segments``); ``over_max``: ``segments > max_segments``
      (the launch is refused, the text must be shortened).
    - ``gsm7_rewrite``: the text after :func:`gsm7_rewrite`, offered only when
      the original is UCS-2 and the rewrite makes it GSM-7 (so it fits 160/153
      septets per segment instead of 70/67); ``None`` when the text is already
      GSM-7 or still needs UCS-2 after the rewrite (e.g. it holds ``ê``, ``ç``
      or an emoji: letters are never changed, see :func:`gsm7_rewrite`).
      ``rewrite_segments``: segments of the rewritten text, or ``None``.

    An empty text previews as ``GSM-7``, 0 units, 0 segments, cost 0 (the
    editor calls this on every keystroke, including the first).

    Returns:
        ``{"encoding", "units", "segments", "part_units", "cost_eur",
        "non_gsm_chars", "max_segments": int, "over_max": bool,
        "gsm7_rewrite": str | None, "rewrite_segments": int | None,
        "accent_rewrite": str | None, "accent_rewrite_segments": int | None,
        "accent_changes": [{"from", "to"}]}``. ``accent_rewrite`` is
        :func:`gsm7_fold_accents`, offered only when the plain rewrite does not
        make the text GSM-7 and the folded one does.

    Raises:
        TypeError: ``text`` is not a ``str``; ``max_segments`` not an ``int``.
        ValueError: lone surrogate in ``text``; ``max_segments`` outside
            1..255; bad ``price_per_segment`` (as :meth:`SmsAnalysis.cost_eur`).
    """
    if isinstance(max_segments, bool) or not isinstance(max_segments, int):
        raise TypeError(f"max_segments: expected int, got {type(max_segments).__name__}")
    if not 1 <= max_segments <= MAX_PARTS:
        raise ValueError(f"max_segments: must be 1..{MAX_PARTS}, got {max_segments}")
    if isinstance(text, str) and text == "":
        _check_price(price_per_segment)
        summary: dict[str, Any] = {
            "encoding": "GSM-7", "units": 0, "segments": 0, "part_units": [],
            "cost_eur": 0.0, "non_gsm_chars": [],
        }
    else:
        summary = preview(text, price_per_segment)
    rewrite: str | None = None
    rewrite_segments: int | None = None
    accent_rewrite: str | None = None
    accent_segments: int | None = None
    accent_changes: list[dict[str, str]] = []
    if summary["encoding"] == "UCS-2":
        candidate = gsm7_rewrite(text)
        if candidate and candidate != text:
            after = analyse(candidate)
            if after.encoding == "GSM-7":
                rewrite, rewrite_segments = candidate, after.segments
        if rewrite is None:
            folded, changes = gsm7_fold_accents(text)
            folded_analysis = analyse(folded) if folded else None
            if folded_analysis is not None and folded_analysis.encoding == "GSM-7":
                accent_rewrite, accent_changes = folded, changes
                accent_segments = folded_analysis.segments
    return {
        **summary,
        "max_segments": max_segments,
        "over_max": summary["segments"] > max_segments,
        "gsm7_rewrite": rewrite,
        "rewrite_segments": rewrite_segments,
        "accent_rewrite": accent_rewrite,
        "accent_rewrite_segments": accent_segments,
        "accent_changes": accent_changes,
    }


@dataclass(frozen=True)
class SmsPart:
    """One SMPP 3.4 submit_sm payload.

    Attributes:
        data_coding: 0x00 (SMSC default alphabet, GSM-7 septets one per octet,
            unpacked) or 0x08 (UCS-2, UTF-16-BE) (SMPP 3.4 §5.2.19).
        esm_class: 0x40 when ``short_message`` starts with a user data header
            (UDHI, SMPP 3.4 §5.2.12), else 0x00.
        short_message: the octets, UDH included (at most 159 octets for GSM-7,
            140 for UCS-2); empty when the text travels in message_payload.
        tlvs: optional parameters as (tag, value octets): the SAR TLVs
            (SMPP 3.4 §5.3.2.22-24) or message_payload (§5.3.2.32); empty for UDH.
    """

    data_coding: int
    esm_class: int
    short_message: bytes
    tlvs: tuple[tuple[int, bytes], ...] = ()


def _encode_gsm7(text: str) -> bytes:
    out = bytearray()
    for char in text:
        code = GSM7_BASIC.get(char)
        if code is None:
            out.append(ESCAPE)
            out.append(GSM7_EXTENSION[char])
        else:
            out.append(code)
    return bytes(out)


def encode_parts(text: str, reference: int) -> list[SmsPart]:
    """Encode a text as the submit_sm payloads of one (possibly concatenated) SMS.

    Args:
        text: the message (see :func:`analyse`).
        reference: concatenation reference number, 0..255, the same for every
            part of this message and different from other recent messages to
            the same number (3GPP TS 23.040 §9.2.3.24.1). Ignored for one part.

    Returns:
        One :class:`SmsPart` per segment, in order; boundaries are those of
        :func:`analyse`. With several parts each ``short_message`` starts with
        the 6-octet UDH ``05 00 03 <reference> <total> <seq>`` (seq from 1).

    Raises:
        TypeError: ``text`` is not a ``str`` or ``reference`` not an ``int``.
        ValueError: empty text, lone surrogate, ``reference`` outside 0..255,
            or more than 255 parts.
    """
    text = _check_text(text)
    if isinstance(reference, bool) or not isinstance(reference, int):
        raise TypeError(f"reference: expected int, got {type(reference).__name__}")
    if not 0 <= reference <= 0xFF:
        raise ValueError(f"reference: must be 0..255 (8-bit reference), got {reference}")
    encoding: Encoding = "UCS-2" if _non_gsm_chars(text) else "GSM-7"
    parts = _split(text, encoding)
    total = len(parts)
    if total > MAX_PARTS:
        raise ValueError(
            f"text: {total} segments exceed the {MAX_PARTS}-part limit of a concatenated SMS "
            "(3GPP TS 23.040 §9.2.3.24.1)"
        )
    if encoding == "GSM-7":
        data_coding = DATA_CODING_SMSC_DEFAULT
        payloads = [_encode_gsm7(part) for part, _ in parts]
    else:
        data_coding = DATA_CODING_UCS2
        payloads = [part.encode("utf-16-be") for part, _ in parts]
    if total == 1:
        return [SmsPart(data_coding, ESM_CLASS_DEFAULT, payloads[0])]
    return [
        SmsPart(
            data_coding,
            ESM_CLASS_UDHI,
            bytes((0x05, 0x00, 0x03, reference, total, seq)) + payload,
        )
        for seq, payload in enumerate(payloads, start=1)
    ]


def _split_octets(text: str, single: int, multi: int) -> list[tuple[str, int]]:
    """Cut a one-octet-per-character text (Latin-1) into parts of ``multi`` octets."""
    if len(text) <= single:
        return [(text, len(text))]
    return [(text[i : i + multi], len(text[i : i + multi])) for i in range(0, len(text), multi)]


def _coding_of(text: str, gsm_coding: int) -> tuple[int, str]:
    """(data_coding, codec) for ``text``: UCS-2 when it is not GSM-7, otherwise the
    account's ``gsm_coding`` when the text allows it (1: every character ASCII; 3: every
    character Latin-1), else 0 (the SMSC default alphabet)."""
    if _non_gsm_chars(text):
        return DATA_CODING_UCS2, "utf-16-be"
    if gsm_coding == DATA_CODING_IA5 and text.isascii():
        return DATA_CODING_IA5, "ascii"
    if gsm_coding == DATA_CODING_LATIN1 and _fits_latin1(text):
        return DATA_CODING_LATIN1, "latin-1"
    return DATA_CODING_SMSC_DEFAULT, "gsm7"


def _fits_latin1(text: str) -> bool:
    """Every character is Latin-1 and, one octet per character (140 in one segment, 134
    per part), the text takes no more segments than as GSM-7: so the preview and the
    bill, counted in GSM-7 (:func:`analyse`), stay true (decision 0025)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    gsm7_parts = len(_split(text, "GSM-7"))
    return len(_split_octets(text, OCTETS_SINGLE, OCTETS_MULTI)) <= gsm7_parts


def _segments_of(text: str, data_coding: int, udh_ref: int) -> list[tuple[str, int]]:
    """Part boundaries as the network sees them (3GPP TS 23.040 §9.2.3.24): GSM-7
    septets (IA5 is sent as GSM-7 on the air, so it is cut the same way), UTF-16 code
    units or Latin-1 octets; a 16-bit reference takes one more UDH octet per part."""
    if data_coding == DATA_CODING_LATIN1:
        return _split_octets(text, OCTETS_SINGLE, OCTETS_MULTI - (udh_ref == 16))
    encoding: Encoding = "UCS-2" if data_coding == DATA_CODING_UCS2 else "GSM-7"
    parts = _split(text, encoding)
    if udh_ref == 16 and len(parts) > 1:
        # The 7-octet UDH leaves 152 septets (133 octets, 8 septets with fill bits)
        # or 66 UTF-16 code units (133 octets, rounded down to whole code units).
        parts = _split_multi(text, encoding, GSM7_MULTI - 1 if encoding == "GSM-7"
                             else UCS2_MULTI - 1)
    return parts


def _split_multi(text: str, encoding: Encoding, multi: int) -> list[tuple[str, int]]:
    parts: list[tuple[str, int]] = []
    start = units = 0
    for index, char in enumerate(text):
        width = _char_units(char, encoding)
        if units + width > multi:
            parts.append((text[start:index], units))
            start, units = index, 0
        units += width
    parts.append((text[start:], units))
    return parts


def segment_count(text: str, *, gsm_coding: int = DATA_CODING_SMSC_DEFAULT,
                  udh_ref: int = 8) -> int:
    """SMS segments ``text`` takes on the network with an account's options (billing).

    Whatever the concatenation mode (UDH, SAR or message_payload: the SMSC then cuts
    the text by the same 3GPP TS 23.040 rule), this is the number of parts
    :func:`encode_message` would write with a UDH. Raises as :func:`encode_message`.
    """
    text = _check_text(text)
    data_coding, _ = _coding_of(text, gsm_coding)
    return len(_segments_of(text, data_coding, udh_ref))


def _encode_as(text: str, codec: str) -> bytes:
    return _encode_gsm7(text) if codec == "gsm7" else text.encode(codec)


def encode_message(text: str, reference: int, *, concat: str = "udh", udh_ref: int = 8,
                   gsm_coding: int = DATA_CODING_SMSC_DEFAULT) -> list[SmsPart]:
    """Encode a text as the submit_sm payloads of one SMS, per the account's options.

    Args:
        text: the message (see :func:`analyse`).
        reference: concatenation reference, the same for every part of this message,
            0..255 (``udh_ref`` 8) or 0..65535 (``udh_ref`` 16); also the SAR
            sar_msg_ref_num. Ignored for one part and for ``payload``.
        concat: ``"udh"`` (each short_message starts with the UDH, esm_class 0x40),
            ``"sar"`` (no UDH; TLVs sar_msg_ref_num 0x020C (2 octets),
            sar_total_segments 0x020E and sar_segment_seqnum 0x020F (1 octet each),
            SMPP 3.4 §5.3.2.22-24: the SMSC builds the UDH, so parts are cut to the
            same sizes as with one) or ``"payload"`` (one submit_sm, short_message
            empty, the text in message_payload 0x0424, SMPP 3.4 §5.3.2.32; the SMSC
            segments it). A text of one segment is sent in short_message alone, in
            every mode.
        udh_ref: 8 (information element 0x00, 3GPP TS 23.040 §9.2.3.24.1) or 16
            (0x08, §9.2.3.24.8: one octet more per part, so 152 septets / 66 code
            units / 133 octets).
        gsm_coding: data_coding for a GSM-7 text (SMPP 3.4 §5.2.19): 0 the SMSC
            default alphabet (GSM-7, one septet per octet, unpacked); 1 IA5/ASCII
            when every character is ASCII (cut as GSM-7: the SMSC converts); 3
            Latin-1 when every character is Latin-1 and the text takes no more
            segments that way (8-bit: 140 octets, 134 per part) than in GSM-7.
            Otherwise 0. A text that is not GSM-7 is always UCS-2 (8).

    Returns:
        One :class:`SmsPart` per submit_sm, in order.

    Raises:
        TypeError: ``text`` not a ``str``, ``reference`` not an ``int``.
        ValueError: empty text, lone surrogate, an option outside its values,
            ``reference`` out of range, more than 255 parts, or a message_payload
            over 65,535 octets.
    """
    text = _check_text(text)
    if isinstance(reference, bool) or not isinstance(reference, int):
        raise TypeError(f"reference: expected int, got {type(reference).__name__}")
    if concat not in CONCAT_MODES:
        raise ValueError(f"concat: must be one of {', '.join(CONCAT_MODES)}, got {concat!r}")
    if udh_ref not in (8, 16):
        raise ValueError(f"udh_ref: must be 8 or 16, got {udh_ref!r}")
    if gsm_coding not in GSM_CODINGS:
        raise ValueError(f"gsm_coding: must be 0, 1 or 3, got {gsm_coding!r}")
    limit = 0xFF if udh_ref == 8 else 0xFFFF
    if not 0 <= reference <= limit:
        raise ValueError(f"reference: must be 0..{limit} ({udh_ref}-bit reference), "
                         f"got {reference}")
    data_coding, codec = _coding_of(text, gsm_coding)
    parts = _segments_of(text, data_coding, udh_ref)
    total = len(parts)
    if total == 1:
        return [SmsPart(data_coding, ESM_CLASS_DEFAULT, _encode_as(text, codec))]
    if concat == "payload":
        payload = _encode_as(text, codec)
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"text: {len(payload):,} octets exceed the {MAX_PAYLOAD:,} of "
                             "message_payload (SMPP 3.4 §5.3.2.32)")
        return [SmsPart(data_coding, ESM_CLASS_DEFAULT, b"",
                        ((TLV_MESSAGE_PAYLOAD, payload),))]
    if total > MAX_PARTS:
        raise ValueError(
            f"text: {total} segments exceed the {MAX_PARTS}-part limit of a concatenated SMS "
            "(3GPP TS 23.040 §9.2.3.24.1)"
        )
    payloads = [_encode_as(part, codec) for part, _ in parts]
    if concat == "sar":
        return [
            SmsPart(data_coding, ESM_CLASS_DEFAULT, payload, (
                (TLV_SAR_MSG_REF_NUM, reference.to_bytes(2, "big")),
                (TLV_SAR_TOTAL_SEGMENTS, bytes((total,))),
                (TLV_SAR_SEGMENT_SEQNUM, bytes((seq,)))))
            for seq, payload in enumerate(payloads, start=1)
        ]
    if udh_ref == 16:
        return [
            SmsPart(data_coding, ESM_CLASS_UDHI,
                    bytes((0x06, 0x08, 0x04, reference >> 8, reference & 0xFF, total, seq))
                    + payload)
            for seq, payload in enumerate(payloads, start=1)
        ]
    return [
        SmsPart(data_coding, ESM_CLASS_UDHI,
                bytes((0x05, 0x00, 0x03, reference, total, seq)) + payload)
        for seq, payload in enumerate(payloads, start=1)
    ]


def _parse_udh(short_message: bytes) -> tuple[int, tuple[int, int, int] | None]:
    """Return (octets taken by the UDH, concatenation info) (3GPP TS 23.040 §9.2.3.24)."""
    if not short_message:
        raise ValueError("short_message: empty, but udhi is set")
    udhl = short_message[0]
    end = 1 + udhl
    if end > len(short_message):
        raise ValueError(
            f"short_message: UDH length {udhl} exceeds message length {len(short_message)}"
        )
    concat: tuple[int, int, int] | None = None
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise ValueError(f"short_message: truncated information element at octet {pos}")
        iei, length = short_message[pos], short_message[pos + 1]
        data = short_message[pos + 2 : pos + 2 + length]
        if pos + 2 + length > end:
            raise ValueError(f"short_message: information element 0x{iei:02X} overruns the UDH")
        if iei == 0x00 and length == 3:
            concat = (data[0], data[1], data[2])
        elif iei == 0x08 and length == 4:  # 16-bit reference variant, §9.2.3.24.8
            concat = ((data[0] << 8) | data[1], data[2], data[3])
        pos += 2 + length
    if concat is not None and not 1 <= concat[2] <= concat[1]:
        raise ValueError(
            f"short_message: concatenation sequence {concat[2]} outside 1..{concat[1]}"
        )
    return end, concat


def _decode_gsm7(payload: bytes) -> str:
    out: list[str] = []
    escaped = False
    for index, octet in enumerate(payload):
        if octet > 0x7F:
            raise ValueError(f"short_message: octet 0x{octet:02X} at {index} is not a GSM-7 septet")
        if escaped:
            # 3GPP TS 23.038 §6.2.1.1: an unknown extension code shows the
            # default-alphabet character of the same value.
            out.append(_EXTENSION_DECODE.get(octet) or _BASIC_DECODE.get(octet, " "))
            escaped = False
        elif octet == ESCAPE:
            escaped = True
        else:
            out.append(_BASIC_DECODE[octet])
    if escaped:
        raise ValueError("short_message: ends with a lone escape septet 0x1B")
    return "".join(out)


def decode_short_message(
    data_coding: int, short_message: bytes, udhi: bool
) -> tuple[str, tuple[int, int, int] | None]:
    """Decode a submit_sm / deliver_sm payload back to text (SMSC simulator, tests).

    Args:
        data_coding: SMPP 3.4 §5.2.19 value: 0x00 (GSM-7 unpacked, as
            :func:`encode_parts` sends), 0x01 (IA5/ASCII), 0x03 (Latin-1) or
            0x08 (UCS-2, read as UTF-16-BE).
        short_message: the octets, UDH included when ``udhi``.
        udhi: esm_class has the UDHI bit 0x40 set.

    Returns:
        ``(text, (reference, total, seq))``, or ``(text, None)`` when there is
        no concatenation information element.

    Raises:
        ValueError: unsupported ``data_coding``, malformed UDH, octets that are
            not valid for the coding (including a split escape or surrogate pair).
    """
    if not isinstance(short_message, bytes | bytearray):
        raise TypeError(f"short_message: expected bytes, got {type(short_message).__name__}")
    payload = bytes(short_message)
    concat: tuple[int, int, int] | None = None
    if udhi:
        start, concat = _parse_udh(payload)
        payload = payload[start:]
    if data_coding == DATA_CODING_SMSC_DEFAULT:
        return _decode_gsm7(payload), concat
    if data_coding == DATA_CODING_UCS2:
        if len(payload) % 2:
            raise ValueError(f"short_message: odd length {len(payload)} for UCS-2")
        try:
            return payload.decode("utf-16-be"), concat
        except UnicodeDecodeError as exc:
            raise ValueError(f"short_message: invalid UTF-16-BE: {exc.reason}") from None
    if data_coding in (DATA_CODING_IA5, DATA_CODING_LATIN1):
        codec = "ascii" if data_coding == DATA_CODING_IA5 else "latin-1"
        try:
            return payload.decode(codec), concat
        except UnicodeDecodeError as exc:
            raise ValueError(f"short_message: invalid {codec}: {exc.reason}") from None
    raise ValueError(f"data_coding: unsupported value 0x{data_coding:02X}")


Decoder = Callable[[int, int, bytes], tuple[str, tuple[int, int, int] | None]]


def _strict_decoder(data_coding: int, esm_class: int, octets: bytes
                    ) -> tuple[str, tuple[int, int, int] | None]:
    return decode_short_message(data_coding, octets, bool(esm_class & 0x40))


def decode_sm(data_coding: int, esm_class: int, short_message: bytes,
              tlvs: dict[int, bytes], decode: Decoder = _strict_decoder
              ) -> tuple[str, tuple[str, int, int, int] | None]:
    """The text of one submit_sm or deliver_sm and its place in a concatenated message.

    The text is in the ``message_payload`` TLV (SMPP 3.4 §5.3.2.32) when present and
    ``short_message`` is empty, else in ``short_message``. The place comes from the SAR
    TLVs (SMPP 3.4 §5.3.2.22-24: ``sar_msg_ref_num``, ``sar_total_segments``,
    ``sar_segment_seqnum``) or from a UDH (3GPP TS 23.040 §9.2.3.24.1 / .8, 8- or
    16-bit reference).

    Returns:
        ``(text, (how, reference, total, sequence))`` with ``how`` ``"sar"`` or
        ``"udh"``, or ``(text, None)`` for a whole message.

    Raises:
        ValueError: what ``decode`` raises (by default :func:`decode_short_message`:
            an unsupported data_coding, a malformed UDH, octets invalid for the coding).
    """
    payload = tlvs.get(TLV_MESSAGE_PAYLOAD)
    octets = payload if payload is not None and not short_message else short_message
    text, concat = decode(data_coding, esm_class, octets)
    ref, total, seq = (tlvs.get(TLV_SAR_MSG_REF_NUM), tlvs.get(TLV_SAR_TOTAL_SEGMENTS),
                       tlvs.get(TLV_SAR_SEGMENT_SEQNUM))
    if ref and total and seq:
        return text, ("sar", int.from_bytes(ref, "big"), total[0], seq[0])
    if concat is not None:
        return text, ("udh", *concat)
    return text, None
