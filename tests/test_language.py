"""Wrong-language warnings (F13): real alert sentences, mislabelled texts, short texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tocsin.messages.errors import MessageInputError
from tocsin.messages.language import (
    LANGUAGES,
    detect_language,
    language_confidences,
    language_warnings,
)

SENTENCES: dict[str, list[str]] = json.loads(
    (Path(__file__).parent / "fixtures" / "alert_sentences.json").read_text("utf-8")
)["sentences"]
# Words to glue two sentences of the same alert into one text of a composer field.
PAIRS = {lang: [" ".join(s[i:i + 2]) for i in range(0, len(s) - 1, 2)]
         for lang, s in SENTENCES.items()}


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Fermez portes et fenêtres.", "fr"),
        ("Sluit ramen en deuren.", "nl"),
        ("Schließen Sie Fenster und Türen.", "de"),
        ("Restez à l'intérieur et écoutez la radio.", "fr"),
        ("Blijf binnen en luister naar de radio.", "nl"),
        ("Bleiben Sie drinnen und hören Sie Radio.", "de"),
        ("Leave the station district immediately.", "en"),
    ],
)
def test_detects_alert_sentences(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_never_names_a_wrong_language_for_real_alerts() -> None:
    """On 60 real sentences: right or None ("uncertain"), never another language."""
    right = 0
    for language, sentences in SENTENCES.items():
        for text in sentences:
            found = detect_language(text)
            assert found in (language, None), (text, found)
            right += found == language
    assert right >= 50  # the few None are short sentences, mostly English


def test_no_warning_for_correct_texts() -> None:
    for i in range(len(PAIRS["fr"])):
        texts = {lang: PAIRS[lang][i] for lang in LANGUAGES}
        assert language_warnings(texts) == [], texts
    for i in range(len(SENTENCES["fr"])):
        texts = {lang: SENTENCES[lang][i] for lang in LANGUAGES}
        assert language_warnings(texts) == [], texts


@pytest.mark.parametrize(
    ("filed", "actual"),
    [("nl", "fr"), ("fr", "nl"), ("de", "nl"), ("nl", "de"), ("en", "fr"), ("fr", "en"),
     ("de", "en"), ("en", "de")],
)
def test_warns_on_mislabelled_texts(filed: str, actual: str) -> None:
    flagged = 0
    for text in PAIRS[actual]:
        warnings = language_warnings({filed: text})
        if warnings:
            flagged += 1
            (w,) = warnings
            assert (w["language"], w["detected"], w["field"]) == (filed, actual, f"text.{filed}")
    assert flagged >= len(PAIRS[actual]) - 1  # at most one pair too uncertain to call


def test_warning_message_names_field_and_language() -> None:
    (w,) = language_warnings({
        "fr": "Fermez portes et fenêtres. Restez à l'intérieur.",
        "nl": "Fermez portes et fenêtres. Restez à l'intérieur.",
    })
    assert w["field"] == "text.nl" and w["detected"] == "fr"
    assert w["message"].startswith("text.nl reads as French, not Dutch")


@pytest.mark.parametrize(
    "text",
    ["OK", "Test", "Alerte", "BE-Alert", "Test BE-Alert", "Wavre 12:00", "Radio", "Danger",
     "Gevaar", "Info: 0800 12 345", "{area_name} {time}", "https://www.be-alert.be",
     "N4 12:30 112", "", "   "],
)
def test_short_texts_are_not_judged(text: str) -> None:
    assert detect_language(text) is None
    assert language_confidences(text) == {}
    for language in LANGUAGES:
        assert language_warnings({language: text}) == []


def test_placeholders_and_numbers_do_not_count() -> None:
    # Only three real words once {area_name}, the time and the phone number are removed.
    assert detect_language("{area_name}: 12:30, 0800 12 345 Sluit ramen") is None
    assert detect_language("{area_name}: sluit ramen en deuren om {time}") == "nl"


def test_bilingual_text_is_not_flagged() -> None:
    bilingual = "Fermez portes et fenêtres. Sluit ramen en deuren."
    assert language_warnings({"fr": bilingual, "nl": bilingual}) == []
    assert language_warnings({"nl": "Fermez les fenêtres / Sluit de ramen en deuren"}) == []


def test_deterministic() -> None:
    text = "Water niet drinkbaar in Leuven, kook het eerst."
    first = language_confidences(text)
    assert all(language_confidences(text) == first for _ in range(20))
    assert all(detect_language(text) == "nl" for _ in range(20))


def test_bad_input_names_the_field() -> None:
    with pytest.raises(MessageInputError) as info:
        language_warnings({"es": "Cierren puertas y ventanas."})
    assert info.value.field == "text.es"
    with pytest.raises(TypeError, match="text.fr"):
        language_warnings({"fr": 3})  # type: ignore[dict-item]
