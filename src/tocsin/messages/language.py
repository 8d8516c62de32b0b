"""Wrong-language warnings for message texts (SPEC F13).

An alert in four languages is often composed by pasting: the French text
lands in the Dutch field, or a translation is forgotten and the field keeps
the original. :func:`language_warnings` flags a text that clearly reads as
another of Tocsin's languages than the one it is filed under.

Detection uses Lingua (``lingua-language-detector``, Apache-2.0; n-gram
models of 1 to 5 characters, shipped in the wheel, no network), restricted to
French, Dutch, German and English, in its high-accuracy mode: the
low-accuracy mode read "Stay indoors and listen to the radio." as Dutch with
0.97 confidence. The choice and its measurements are in
``docs/decisions/0005-language-detection.md``.

A warning must not cry wolf on a short text ("OK", "Test BE-Alert",
"Wavre 12:00"): a text is judged only with at least :data:`MIN_WORDS` words
and :data:`MIN_LETTERS` letters once placeholders, addresses and numbers are
removed, and only when the detector is confident (:data:`MIN_CONFIDENCE`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from tocsin.core.errors import warning
from tocsin.core.i18n import N_
from tocsin.messages.errors import MessageInputError

__all__ = [
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "MAX_LABEL_CONFIDENCE",
    "MIN_CONFIDENCE",
    "MIN_LETTERS",
    "MIN_WORDS",
    "detect_language",
    "language_confidences",
    "language_warnings",
]

#: Languages a message can be written in (SPEC F13).
LANGUAGES = ("fr", "nl", "de", "en")

#: English names used in warnings.
LANGUAGE_NAMES: Mapping[str, str] = {
    "fr": "French", "nl": "Dutch", "de": "German", "en": "English",
}

#: A text with fewer words of letters (2+ letters each) is not judged.
MIN_WORDS = 3
#: A text with fewer letters in those words is not judged.
MIN_LETTERS = 15
#: Lingua's relative confidence (0..1, the four languages sum to 1) needed to name a language.
MIN_CONFIDENCE = 0.7
#: A warning also needs the filed language to score at most this over the
#: whole text, and no passage of :data:`MIN_WORDS`+ words in the filed language
#: (a bilingual text, "Fermez les fenêtres / Sluit de ramen en deuren", is not flagged).
MAX_LABEL_CONFIDENCE = 0.15

# Removed before detection: placeholders ({area_name}), web and e-mail
# addresses, and any token holding a digit (times, road numbers, phone numbers).
_NOISE = re.compile(r"\{[^{}]*\}|https?://\S+|www\.\S+|\S+@\S+|\S*\d\S*")
_LETTER_WORD = re.compile(r"[^\W\d_]{2,}")

_lock = threading.Lock()
_detector: Any = None


def _get_detector() -> Any:
    """The Lingua detector for fr/nl/de/en, built once (models load on first use, ~1 s)."""
    global _detector
    with _lock:
        if _detector is None:
            from lingua import Language, LanguageDetectorBuilder

            _detector = LanguageDetectorBuilder.from_languages(
                Language.FRENCH, Language.DUTCH, Language.GERMAN, Language.ENGLISH
            ).build()
        return _detector


def _iso(language: Any) -> str:
    return str(language.iso_code_639_1.name).lower()


def _judgeable(text: str) -> str | None:
    cleaned = _NOISE.sub(" ", text)
    words = _LETTER_WORD.findall(cleaned)
    if len(words) < MIN_WORDS or sum(len(w) for w in words) < MIN_LETTERS:
        return None
    return cleaned


def language_confidences(text: str) -> dict[str, float]:
    """Lingua's relative confidence per language, ``{"fr": 0.94, "nl": 0.03, ...}``.

    Empty when the text is too short to judge (see :data:`MIN_WORDS`,
    :data:`MIN_LETTERS`). Values are 0..1 rounded to 4 decimals, summing to about 1.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    cleaned = _judgeable(text)
    if cleaned is None:
        return {}
    values = _get_detector().compute_language_confidence_values(cleaned)
    # Rounded: Lingua's sums differ in the last bits from one call to the next.
    return {_iso(v.language): round(float(v.value), 4) for v in values}


def detect_language(text: str) -> str | None:
    """The language ``text`` is written in: ``"fr"``, ``"nl"``, ``"de"``, ``"en"``, or None.

    None when the text is too short to judge or no language reaches
    :data:`MIN_CONFIDENCE`. Deterministic: the same text always gives the
    same answer.

    Raises:
        TypeError: ``text`` is not a ``str``.
    """
    confidences = language_confidences(text)
    if not confidences:
        return None
    best = max(confidences, key=lambda lang: confidences[lang])
    return best if confidences[best] >= MIN_CONFIDENCE else None


def _has_passage_in(text: str, language: str) -> bool:
    """Whether a bilingual text holds a passage of :data:`MIN_WORDS`+ words in ``language``.

    A location-based SMS or a Brussels text may carry two languages in one
    ("Fermez les fenêtres / Sluit de ramen en deuren"); the filed language
    being one of them is not a mistake.
    """
    cleaned = _judgeable(text) or text
    for passage in _get_detector().detect_multiple_languages_of(cleaned):
        if _iso(passage.language) == language and passage.word_count >= MIN_WORDS:
            return True
    return False


def language_warnings(texts: Mapping[str, str]) -> list[dict[str, Any]]:
    """Warnings for texts that read as another language than the one they are filed under.

    Args:
        texts: language code -> text, e.g. ``{"fr": "...", "nl": "..."}``
            (``campaign.texts``); blank texts are skipped.

    Returns:
        One dict per suspicious text, in the order of ``texts``:
        ``{"code": "wrong_language", "field": "text.nl", "language": "nl", "detected":
        "fr", "message": "text.nl reads as French, not Dutch: ..."}`` (a
        ``core.errors.warning``: ``message`` in English, translated where shown). Empty when
        every text reads as its language or is too short to judge.

    Raises:
        MessageInputError: a key is not one of :data:`LANGUAGES` (``field`` is
            ``text.<key>``).
        TypeError: a value is not a ``str``.
    """
    warnings: list[dict[str, Any]] = []
    for language, text in texts.items():
        if language not in LANGUAGES:
            raise MessageInputError(
                f"text.{language}", f"unknown language, use one of {', '.join(LANGUAGES)}"
            )
        if not isinstance(text, str):
            raise TypeError(f"text.{language}: expected str, got {type(text).__name__}")
        confidences = language_confidences(text)
        if not confidences:
            continue
        best = max(confidences, key=lambda lang: confidences[lang])
        if (
            best == language
            or confidences[best] < MIN_CONFIDENCE
            or confidences.get(language, 0.0) > MAX_LABEL_CONFIDENCE
            or _has_passage_in(text, language)
        ):
            continue
        field = f"text.{language}"
        warnings.append(warning(
            "wrong_language", field, N_(
                "%(where)s reads as %(detected_name)s, not %(lang_name)s: check that the "
                "%(lang_name)s text is in this field"),
            extra={"language": language, "detected": best},
            where=field, detected_name=LANGUAGE_NAMES[best], lang_name=LANGUAGE_NAMES[language]))
    return warnings
