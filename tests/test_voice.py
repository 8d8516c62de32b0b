"""Voice scripts: spoken words, duration, started minutes, cost, espeak-ng preview (F22, F29)."""

from __future__ import annotations

import io
import json
import shutil
import wave
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tocsin.cli import app
from tocsin.messages.voice import (
    MAX_PREVIEW_CHARS,
    MAX_SCRIPT_CHARS,
    MessageInputError,
    VoiceEngineError,
    VoiceEngineUnavailable,
    estimate_voice,
    render_voice_preview,
    spoken_words,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (Debian package espeak-ng)")
SENTENCES: dict[str, list[str]] = json.loads(
    (Path(__file__).parent / "fixtures" / "alert_sentences.json").read_text("utf-8")
)["sentences"]
runner = CliRunner()


def _wav_seconds(audio: bytes) -> float:
    with wave.open(io.BytesIO(audio)) as w:
        return w.getnframes() / w.getframerate()


def test_spoken_words_counts_numbers_and_abbreviations() -> None:
    assert spoken_words("Fermez portes et fenêtres.") == 4
    assert spoken_words("Restez à l'intérieur") == 3  # l'intérieur is one word
    assert spoken_words("Sint-Pieters-Leeuw") == 3
    assert spoken_words("Appelez le 112") == 4  # 112: two words
    assert spoken_words("jusqu'à 18h30") == 3  # 18h30: 4 digits, two words
    assert spoken_words("Test BE-Alert par SMS") == 8  # BE spelled (2), SMS spelled (3)
    assert spoken_words("NATO") == 4  # 2-4 capitals are spelled out
    assert spoken_words("URGENT") == 1
    assert spoken_words("   ... !") == 0


def test_estimate_formula_and_billing_per_started_minute() -> None:
    # 150 words/min in French: 150 words + one sentence = 60.5 s -> 61 s -> 2 minutes.
    script = " ".join(["alerte"] * 150) + "."
    est = estimate_voice(script, "fr")
    assert (est.words, est.seconds, est.billed_minutes) == (150, 61, 2)
    assert est.cost_eur == Decimal("0.110")
    # 145 words + one pause = 58.5 s -> 59 s: one started minute.
    est = estimate_voice(" ".join(["alerte"] * 145), "fr")
    assert (est.seconds, est.billed_minutes, est.cost_eur) == (59, 1, Decimal("0.055"))
    # German is spoken slower: the same number of words takes longer.
    assert estimate_voice(script, "de").seconds > estimate_voice(script, "en").seconds


def test_estimate_as_dict_and_price() -> None:
    est = estimate_voice("Close doors and windows.", "en", "0.0555")
    assert est.as_dict() == {"words": 4, "seconds": 2, "billed_minutes": 1, "cost_eur": 0.056}
    assert est.cost_eur == Decimal("0.0555")
    assert estimate_voice("", "nl").as_dict() == {
        "words": 0, "seconds": 0, "billed_minutes": 0, "cost_eur": 0.0}


@pytest.mark.parametrize(
    ("script", "language", "price", "field"),
    [
        ("x", "es", "0.055", "language"),
        ("x", "FR", "0.055", "language"),
        ("x" * (MAX_SCRIPT_CHARS + 1), "fr", "0.055", "script"),
        (None, "fr", "0.055", "script"),
        ("x", "fr", "-1", "price_per_minute"),
        ("x", "fr", "abc", "price_per_minute"),
        ("x", "fr", "NaN", "price_per_minute"),
    ],
)
def test_estimate_errors_name_the_field(script: object, language: str, price: str,
                                        field: str) -> None:
    with pytest.raises(MessageInputError) as info:
        estimate_voice(script, language, price)  # type: ignore[arg-type]
    assert info.value.field == field


@needs_espeak
@pytest.mark.parametrize("language", ["fr", "nl", "de", "en"])
def test_estimate_matches_espeak_duration(language: str) -> None:
    """The estimate is the length of what espeak-ng plays (calibration of voice.ESPEAK_SPEED)."""
    paragraph = " ".join(SENTENCES[language])
    actual = _wav_seconds(render_voice_preview(paragraph, language))
    assert estimate_voice(paragraph, language).seconds == pytest.approx(actual, rel=0.08)
    for sentence in SENTENCES[language][:4]:
        actual = _wav_seconds(render_voice_preview(sentence, language))
        estimated = estimate_voice(sentence, language).seconds
        # Whole seconds rounded up: never much shorter, at most 2 s longer.
        assert actual - 0.5 <= estimated <= actual + 2, (sentence, actual, estimated)


@needs_espeak
def test_render_returns_a_valid_wav() -> None:
    audio = render_voice_preview("Schließen Sie Fenster und Türen.", "de")
    assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE"
    # The streamed header is patched with the real sizes.
    assert int.from_bytes(audio[4:8], "little") == len(audio) - 8
    with wave.open(io.BytesIO(audio)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
    assert 1.0 < _wav_seconds(audio) < 5.0
    # A faster rate is shorter.
    faster = render_voice_preview("Schließen Sie Fenster und Türen.", "de", voice_rate=300)
    assert _wav_seconds(faster) < _wav_seconds(audio)


@needs_espeak
def test_render_reads_plain_text_not_options_or_ssml() -> None:
    # Passed on stdin as plain text: an option-looking or tag-looking script is only spoken.
    audio = render_voice_preview("-w /tmp/pwned.wav <speak>Fermez</speak>", "fr")
    assert audio[:4] == b"RIFF" and not Path("/tmp/pwned.wav").exists()


@needs_espeak
def test_render_timeout_is_an_engine_error() -> None:
    with pytest.raises(VoiceEngineError, match="longer than"):
        render_voice_preview(" ".join(SENTENCES["fr"]), "fr", timeout_s=0.001)


def test_render_limits() -> None:
    with pytest.raises(MessageInputError) as info:
        render_voice_preview("x" * (MAX_PREVIEW_CHARS + 1), "fr")
    assert info.value.field == "script"
    with pytest.raises(MessageInputError) as info:
        render_voice_preview(" \n ", "fr")
    assert info.value.field == "script"
    with pytest.raises(MessageInputError) as info:
        render_voice_preview("Bonjour", "fr", voice_rate=10)
    assert info.value.field == "voice_rate"
    with pytest.raises(MessageInputError) as info:
        render_voice_preview("Bonjour", "it")
    assert info.value.field == "language"


def test_render_without_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # a server without espeak-ng
    with pytest.raises(VoiceEngineUnavailable, match="espeak-ng"):
        render_voice_preview("Close doors and windows.", "en")


def test_cli_message_voice_json() -> None:
    r = runner.invoke(app, ["message", "voice", "--script", "Sluit ramen en deuren.",
                            "--language", "nl", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"words": 4, "seconds": 3, "billed_minutes": 1,
                                    "cost_eur": 0.055}


def test_cli_message_voice_bad_language() -> None:
    r = runner.invoke(app, ["message", "voice", "--script", "Hola", "--language", "es"])
    assert r.exit_code == 1
    assert "language" in r.output and "Traceback" not in r.output


@needs_espeak
def test_cli_message_voice_wav(tmp_path: Path) -> None:
    out = tmp_path / "preview.wav"
    r = runner.invoke(app, ["message", "voice", "--script", "Close doors and windows.",
                            "--language", "en", "--wav", str(out)])
    assert r.exit_code == 0, r.output
    assert "1 started minute" in r.stdout
    assert _wav_seconds(out.read_bytes()) > 1.0
