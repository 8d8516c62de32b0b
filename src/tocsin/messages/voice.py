"""Voice-call scripts: spoken duration, billed minutes, cost, and an audio preview (F22, F25, F29).

Pure estimate, no I/O, except :func:`render_voice_preview` which runs a local
espeak-ng (https://github.com/espeak-ng/espeak-ng) as a subprocess.

Speaking rates. A text-to-speech announcement is spoken slower than
conversation so that it is understood on a poor line: espeak-ng's default is
175 words per minute (``espeak-ng --help``: "-s Speed in approximate words per
minute. The default is 175"); Tocsin slows it for clarity to the rates in
:data:`WORDS_PER_MINUTE` (words as :func:`spoken_words` counts them), lower
for German whose compounds make longer words and higher for English whose
words are shorter, plus :data:`SENTENCE_PAUSE_S` after each sentence.

espeak-ng's ``-s`` assumes its own average word length, so the same ``-s``
gives a different real pace per language (French comes out fastest). The
preview therefore uses the ``-s`` of :data:`ESPEAK_SPEED`, calibrated with
espeak-ng 1.51 on fifteen real alert sentences per language read as one
paragraph, so that what the operator hears lasts what the estimate says
(measured paragraph length vs estimate: fr 55.3 s / 56 s at -s 125,
nl 50.4 / 50 at -s 150, de 55.2 / 55 at -s 140, en 52.2 / 52 at -s 140).
``tests/test_voice.py`` re-measures it on every run where espeak-ng is installed.

Billing (SPEC F29): 0.055 EUR per *started* minute of an answered call, so a
script of 61 seconds costs two minutes.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from tocsin.messages.errors import MessageInputError

__all__ = [
    "DEFAULT_MINUTE_PRICE_EUR",
    "ESPEAK_SPEED",
    "ESPEAK_VOICES",
    "LANGUAGES",
    "MAX_PREVIEW_CHARS",
    "MAX_SCRIPT_CHARS",
    "SENTENCE_PAUSE_S",
    "WORDS_PER_MINUTE",
    "MessageInputError",
    "VoiceEngineError",
    "VoiceEngineUnavailable",
    "VoiceEstimate",
    "estimate_voice",
    "render_voice_preview",
    "spoken_words",
]

#: Languages a voice script can be written in (SPEC F13).
LANGUAGES = ("fr", "nl", "de", "en")

#: Tariff per started minute of an answered voice call (SPEC F29).
DEFAULT_MINUTE_PRICE_EUR = Decimal("0.055")

#: Speaking rate of announcements, words per minute, by language: espeak-ng's
#: default 175 wpm slowed for clarity (see the module docstring).
WORDS_PER_MINUTE: dict[str, int] = {"fr": 150, "nl": 150, "de": 140, "en": 160}

#: Silence after each sentence (full stop, ?, !, colon, semicolon or line break), seconds.
SENTENCE_PAUSE_S = 0.5

#: espeak-ng voice per language: Belgian French, Dutch, German, British English.
ESPEAK_VOICES: dict[str, str] = {"fr": "fr-be", "nl": "nl", "de": "de", "en": "en-gb"}

#: espeak-ng ``-s`` per language that speaks at :data:`WORDS_PER_MINUTE` with the
#: sentence pauses (calibration in the module docstring).
ESPEAK_SPEED: dict[str, int] = {"fr": 125, "nl": 150, "de": 140, "en": 140}

#: Longest script accepted by :func:`estimate_voice`, characters (about 25 minutes of speech).
MAX_SCRIPT_CHARS = 10_000

#: Longest script rendered by :func:`render_voice_preview`, characters (about 3 minutes):
#: a preview is for listening to the wording, and rendering must stay quick.
MAX_PREVIEW_CHARS = 2_000

#: Wall-clock limit for one espeak-ng run, seconds.
RENDER_TIMEOUT_S = 20.0

# A word: letters with inner apostrophes ("aujourd'hui", "l'intérieur" are said as one
# word; the parts of "Sint-Niklaas" as two), or a number with inner separators
# ("12:30", "1.395", "0475/12.34.56").
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+(?:[.,:/h]\d+)*")
_SENTENCE_END = re.compile(r"[.!?:;…]+(?=\s|$)|\n+")
_ABBREVIATION = re.compile(r"^[A-Z]{2,4}$")


class VoiceEngineUnavailable(RuntimeError):
    """No text-to-speech engine (espeak-ng) is installed: the audio preview cannot be made."""


class VoiceEngineError(RuntimeError):
    """espeak-ng is installed but failed or took longer than :data:`RENDER_TIMEOUT_S`."""


@dataclass(frozen=True)
class VoiceEstimate:
    """How long a voice script is spoken and what one answered call costs (F22, F29).

    Attributes:
        words: spoken words; a number counts one word per two digits (rounded
            up), an abbreviation of 2-4 capitals one word per letter (both are
            read out piece by piece).
        seconds: estimated spoken duration, whole seconds rounded up.
        billed_minutes: started minutes, ``ceil(seconds / 60)`` (0 for an empty script).
        cost_eur: ``billed_minutes * price_per_minute``, EUR, exact.
    """

    words: int
    seconds: int
    billed_minutes: int
    cost_eur: Decimal

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"words", "seconds", "billed_minutes", "cost_eur": float (3 places)}``."""
        return {
            "words": self.words,
            "seconds": self.seconds,
            "billed_minutes": self.billed_minutes,
            "cost_eur": float(self.cost_eur.quantize(Decimal("0.001"), ROUND_HALF_UP)),
        }


def _check_language(language: object) -> str:
    if not isinstance(language, str) or language not in LANGUAGES:
        raise MessageInputError("language", f"must be one of {', '.join(LANGUAGES)}")
    return language


def _check_script(script: object, limit: int) -> str:
    if not isinstance(script, str):
        raise MessageInputError("script", f"expected text, got {type(script).__name__}")
    if len(script) > limit:
        raise MessageInputError(
            "script", f"{len(script)} characters, at most {limit:,} are allowed"
        )
    return script


def _check_price(price: object) -> Decimal:
    if isinstance(price, bool) or not isinstance(price, Decimal | int | float | str):
        raise MessageInputError("price_per_minute", f"not a number: {price!r}")
    try:
        value = Decimal(str(price))
    except InvalidOperation:
        raise MessageInputError("price_per_minute", f"not a number: {price!r}") from None
    if not value.is_finite() or value < 0:
        raise MessageInputError("price_per_minute", f"must be a finite amount >= 0: {price!r}")
    return value


def spoken_words(script: str) -> int:
    """Words a text-to-speech engine speaks for ``script``.

    A word of letters counts 1, except an abbreviation of 2-4 capitals
    ("SMS", "NIS", "A12" is a letter and a number) that is spelled out: 1 per
    letter. A number counts 1 per two digits, rounded up ("112" = 2,
    "12:30" = 2, "2026" = 2): numbers are read as several words.
    """
    count = 0
    for match in _WORD.finditer(script):
        token = match.group()
        if token[0].isdigit():
            digits = sum(ch.isdigit() for ch in token)
            count += max(1, math.ceil(digits / 2))
        elif _ABBREVIATION.match(token):
            count += len(token)
        else:
            count += 1
    return count


def _sentences(script: str) -> int:
    stripped = script.strip()
    if not stripped:
        return 0
    ends = len(_SENTENCE_END.findall(stripped))
    # The last sentence may have no full stop; it still ends with a pause.
    if not _SENTENCE_END.search(stripped[-1]):
        ends += 1
    return ends


def estimate_voice(
    script: str,
    language: str,
    price_per_minute: Decimal | int | float | str = DEFAULT_MINUTE_PRICE_EUR,
) -> VoiceEstimate:
    """Spoken duration and per-call cost of a voice script (F22, F25, F29).

    ``seconds = words / WORDS_PER_MINUTE[language] * 60 + sentences * SENTENCE_PAUSE_S``,
    rounded up to a whole second; ``billed_minutes`` are the started minutes
    of one answered call and ``cost_eur`` their price. An empty (or blank)
    script is 0 everywhere.

    Args:
        script: the text read to the recipient, at most :data:`MAX_SCRIPT_CHARS` characters.
        language: ``fr``, ``nl``, ``de`` or ``en``.
        price_per_minute: EUR per started minute (``settings.voice_minute_price_eur``).

    Raises:
        MessageInputError: ``script`` not a string or too long, unknown
            ``language``, negative or non-numeric ``price_per_minute``
            (``field`` names which).
    """
    script = _check_script(script, MAX_SCRIPT_CHARS)
    language = _check_language(language)
    price = _check_price(price_per_minute)
    words = spoken_words(script)
    if words == 0:
        return VoiceEstimate(0, 0, 0, Decimal(0) * price)
    raw = words / WORDS_PER_MINUTE[language] * 60 + _sentences(script) * SENTENCE_PAUSE_S
    seconds = math.ceil(raw - 1e-9)  # 1e-9: float noise must not add a second
    minutes = math.ceil(seconds / 60)
    return VoiceEstimate(words, seconds, minutes, minutes * price)


def engine_available() -> bool:
    """True when espeak-ng, the engine of :func:`render_voice_preview`, is on the PATH."""
    return shutil.which("espeak-ng") is not None


def render_voice_preview(
    script: str,
    language: str,
    *,
    voice_rate: int | None = None,
    timeout_s: float = RENDER_TIMEOUT_S,
) -> bytes:
    """The script spoken by espeak-ng, as a WAV file (RIFF, 16-bit mono PCM, 22,050 Hz).

    Args:
        script: at most :data:`MAX_PREVIEW_CHARS` characters, not blank. It is
            passed on standard input, never as an argument, and read as plain
            text (no SSML).
        language: ``fr`` (Belgian French voice), ``nl``, ``de`` or ``en`` (British).
        voice_rate: espeak-ng ``-s``, approximate words per minute, 80..450
            (espeak-ng's range); default :data:`ESPEAK_SPEED` of the language,
            which lasts what :func:`estimate_voice` says.
        timeout_s: wall-clock limit for espeak-ng, seconds.

    Raises:
        MessageInputError: blank or too long ``script``, unknown ``language``,
            ``voice_rate`` out of range.
        VoiceEngineUnavailable: espeak-ng is not installed (callers skip the preview).
        VoiceEngineError: espeak-ng failed, timed out or produced no audio.
    """
    script = _check_script(script, MAX_PREVIEW_CHARS)
    if not script.strip():
        raise MessageInputError("script", "empty")
    language = _check_language(language)
    rate = ESPEAK_SPEED[language] if voice_rate is None else voice_rate
    if isinstance(rate, bool) or not isinstance(rate, int) or not 80 <= rate <= 450:
        raise MessageInputError("voice_rate", "must be a whole number of words per minute, 80..450")
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise VoiceEngineUnavailable(
            "no text-to-speech engine installed: install espeak-ng (Debian package espeak-ng)"
        )
    try:
        done = subprocess.run(
            [exe, "-v", ESPEAK_VOICES[language], "-s", str(rate), "--stdin", "--stdout"],
            input=script.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise VoiceEngineError(f"espeak-ng took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise VoiceEngineUnavailable(f"espeak-ng could not be started: {exc}") from None
    audio = done.stdout
    if done.returncode != 0 or not audio.startswith(b"RIFF") or len(audio) <= 44:
        detail = done.stderr.decode("utf-8", "replace").strip()[:200]
        raise VoiceEngineError(
            f"espeak-ng exited {done.returncode} without audio" + (f": {detail}" if detail else "")
        )
    return _fix_wav_sizes(audio)


def _fix_wav_sizes(audio: bytes) -> bytes:
    """Write the real RIFF and data chunk sizes into a WAV streamed to stdout.

    espeak-ng writing to a pipe cannot seek back, so it leaves placeholder
    sizes (0x7FFFFFFF-ish) in the header; players and ``wave`` want real ones.
    Only the canonical 44-byte header (``fmt `` then ``data``) is patched.
    """
    if audio[12:16] != b"fmt " or audio[36:40] != b"data":
        return audio
    fixed = bytearray(audio)
    fixed[4:8] = (len(audio) - 8).to_bytes(4, "little")
    fixed[40:44] = (len(audio) - 44).to_bytes(4, "little")
    return bytes(fixed)
