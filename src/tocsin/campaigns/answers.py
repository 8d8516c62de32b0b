"""Answers to group messages: option lists and the reading of a reply (issue 10 point 8).
Pure: no I/O.

A group message may carry 2 to :data:`MAX_OPTIONS` answer options ("Yes", "No",
"In 30 min"). A reply by SMS is a digit (the option's number, 1-based) or a keyword
in French, Dutch, German or English, read tolerantly: case, accents, spaces and
punctuation do not matter ("a 1", "A1", "A-1", " oui ", "JA", "1" are alike). When
several answerable messages are open for one number, each carries a letter ("A",
"B"…) and the reply starts with it ("B2", "b oui"); with only one open, the letter may
be left out. A reply that cannot be read gives no option and a reason (one of
:data:`REASONS`), so that it is stored and shown, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

MIN_OPTIONS, MAX_OPTIONS = 2, 9
#: The longest option label (characters): it is written into every SMS.
MAX_LABEL = 40
#: Letters given to answerable messages open at once for one recipient.
LETTERS = "ABCDEFGHJKLMPQRSTUVWXZ"

#: Words that mean "yes" / "no" in FR, NL, DE, EN (folded: lower case, no accents).
YES_WORDS = frozenset({"yes", "y", "yep", "ok", "oui", "o", "ja", "j", "jawohl", "si",
                       "d accord", "daccord", "akkoord", "einverstanden"})
NO_WORDS = frozenset({"no", "n", "nope", "non", "nee", "neen", "nein", "niet"})

#: Why a reply gave no option.
REASONS = ("empty", "no_open_call", "unknown_letter", "letter_needed", "out_of_range",
           "unrecognised")


@dataclass(frozen=True)
class OpenCall:
    """An answerable message open for the sender: its ``letter`` and option labels."""

    letter: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Reading:
    """What a reply says: ``letter`` of the call it answers (``None`` when unknown),
    ``option`` 1-based (``None`` when unreadable, then ``reason`` says why)."""

    letter: str | None
    option: int | None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.option is not None


def fold(text: str) -> str:
    """``text`` in lower case without accents, punctuation as spaces, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", plain).split())


def check_options(options: Sequence[str]) -> list[str]:
    """The option labels stripped, checked: 2..9 of them, each 1..40 characters, no two
    alike once folded. Raises InputError (field ``answers``)."""
    out = [" ".join(o.split()) for o in options if o and o.strip()]
    if not MIN_OPTIONS <= len(out) <= MAX_OPTIONS:
        raise InputError("answers", N_("give between %(min)d and %(max)d answer options"),
                         code="answers_count", min=MIN_OPTIONS, max=MAX_OPTIONS)
    seen: set[str] = set()
    for label in out:
        if len(label) > MAX_LABEL:
            raise InputError("answers", N_("an answer option has at most %(max)d characters"),
                             code="answers_long", max=MAX_LABEL)
        key = fold(label)
        if not key or key in seen:
            raise InputError("answers", N_("two answer options read alike: %(label)s"),
                             code="answers_alike", label=label)
        seen.add(key)
    return out


def _meaning(label: str) -> str | None:
    key = fold(label)
    if key in YES_WORDS:
        return "yes"
    if key in NO_WORDS:
        return "no"
    return None


def option_for_word(word: str, options: Sequence[str]) -> int | None:
    """The 1-based option a folded ``word`` names: its digit, its label, or a yes/no
    word of any of the four languages when an option means yes or no; else ``None``."""
    if word.isdigit():
        n = int(word)
        return n if 1 <= n <= len(options) else None
    for i, label in enumerate(options, 1):
        if fold(label) == word:
            return i
    wanted = "yes" if word in YES_WORDS else "no" if word in NO_WORDS else None
    if wanted:
        for i, label in enumerate(options, 1):
            if _meaning(label) == wanted:
                return i
    return None


def read_reply(text: str, calls: Sequence[OpenCall]) -> Reading:
    """Read an SMS reply against the calls open for its sender (oldest first).

    Returns a :class:`Reading`; never raises. A letter prefix is recognised only when
    it is one letter followed by a digit ("B2") or by a space ("b oui"), so that "ja"
    or "no" are never taken for a letter.
    """
    words = fold(text)
    if not words:
        return Reading(None, None, "empty")
    if not calls:
        return Reading(None, None, "no_open_call")
    letter: str | None = None
    rest = words
    m = re.fullmatch(r"([a-z])\s?(\d)", words) or re.fullmatch(r"([a-z]) (.+)", words)
    if m and (m.group(1).upper() in {c.letter for c in calls} or m.group(2).isdigit()):
        letter, rest = m.group(1).upper(), m.group(2)
    if letter is not None:
        chosen = [c for c in calls if c.letter == letter]
        if not chosen:
            if len(calls) == 1:
                # "a 1" to the only open call lettered B: the letter is a slip, not a choice.
                chosen = list(calls)
            else:
                return Reading(letter, None, "unknown_letter")
    elif len(calls) == 1:
        chosen = list(calls)
    else:
        # Several open: only a label unique to one call can say which.
        hits = [(c, option_for_word(rest, c.options)) for c in calls]
        hits = [(c, o) for c, o in hits if o is not None]
        if len(hits) == 1 and not rest.isdigit():
            return Reading(hits[0][0].letter, hits[0][1])
        return Reading(None, None, "letter_needed")
    call = chosen[0]
    option = option_for_word(rest, call.options)
    if option is None:
        reason = "out_of_range" if rest.isdigit() else "unrecognised"
        return Reading(call.letter, None, reason)
    return Reading(call.letter, option)


def next_letter(taken: Sequence[str]) -> str:
    """The first letter of :data:`LETTERS` not in ``taken`` (cycling when all are)."""
    for letter in LETTERS:
        if letter not in taken:
            return letter
    return LETTERS[len(taken) % len(LETTERS)]


#: "Reply" in the SMS instructions, per language.
REPLY_WORD = {"fr": "Répondez", "nl": "Antwoord", "de": "Antworten Sie", "en": "Reply"}


def instructions(letter: str, options: Sequence[str], lang: str = "en") -> str:
    """The line added to an answerable SMS: "Reply A1 = Yes, A2 = No" in ``lang``
    (fr, nl, de, en; others get English). The letter is always shown: it costs one
    character and lets the reply name its call when several are open."""
    word = REPLY_WORD.get(lang, REPLY_WORD["en"])
    return word + " " + ", ".join(f"{letter}{i} = {label}" for i, label in enumerate(options, 1))


def is_possible_scanner(delivered_seconds_before: float | None) -> bool:
    """An e-mail answer within 10 s of delivery: likely a mail scanner pressing buttons."""
    return delivered_seconds_before is not None and delivered_seconds_before < 10.0
