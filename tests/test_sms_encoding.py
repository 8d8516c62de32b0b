"""SMS encoding and segmentation: 3GPP TS 23.038 / 23.040, SMPP 3.4 payloads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.messages.sms import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_REWRITES,
    SmsAnalysis,
    analyse,
    composer_preview,
    decode_short_message,
    encode_parts,
    gsm7_fold_accents,
    gsm7_rewrite,
    preview,
)

# Reference vectors (provenance: tests/fixtures/PROVENANCE.md).
VECTORS_PATH = (
    Path(__file__).resolve().parent / "fixtures" / "sms" / "segment-vectors.json"
)
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]

GSM_CHARS = "".join(GSM7_BASIC) + "".join(GSM7_EXTENSION)
NON_GSM_CHARS = "êçâîôûëïœÁÚíóΩ∞\u00a0’«»–…😜😀🇮🇹🌈\u200d\u0301中文Ж"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_reference_vectors(vector: dict) -> None:
    result = analyse(vector["text"])
    assert result.encoding == vector["encoding"]
    assert result.segments == vector["segments"]
    assert result.part_units == vector["part_units"]
    assert result.units == sum(vector["part_units"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["description"] for v in VECTORS])
def test_reference_vectors_encode_same_boundaries(vector: dict) -> None:
    parts = encode_parts(vector["text"], reference=42)
    assert len(parts) == vector["segments"]
    texts = []
    for seq, part in enumerate(parts, start=1):
        text, concat = decode_short_message(
            part.data_coding, part.short_message, bool(part.esm_class & 0x40)
        )
        if len(parts) > 1:
            assert concat == (42, len(parts), seq)
        texts.append(text)
    assert "".join(texts) == vector["text"]
    for text, units in zip(texts, vector["part_units"], strict=True):
        assert _units(text, vector["encoding"]) == units


def test_tables_are_3gpp_ts_23_038() -> None:
    assert len(GSM7_BASIC) == 127  # 128 codes minus the escape 0x1B
    assert len(set(GSM7_BASIC.values())) == 127
    assert GSM7_BASIC["@"] == 0x00 and GSM7_BASIC["$"] == 0x02 and GSM7_BASIC["¤"] == 0x24
    assert GSM7_BASIC["Ç"] == 0x09 and GSM7_BASIC["à"] == 0x7F and GSM7_BASIC["§"] == 0x5F
    assert GSM7_EXTENSION == {
        "\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F,
        "[": 0x3C, "~": 0x3D, "]": 0x3E, "|": 0x40, "€": 0x65,
    }  # fmt: skip
    assert not set(GSM7_BASIC) & set(GSM7_EXTENSION)


def test_gsm7_single_part_payload() -> None:
    (part,) = encode_parts("@A€", reference=0)
    assert part.data_coding == 0x00
    assert part.esm_class == 0x00
    assert part.short_message == bytes([0x00, 0x41, 0x1B, 0x65])


def test_ucs2_single_part_payload() -> None:
    (part,) = encode_parts("ê😜", reference=0)
    assert part.data_coding == 0x08
    assert part.esm_class == 0x00
    assert part.short_message == "ê😜".encode("utf-16-be")


def test_multi_part_udh() -> None:
    parts = encode_parts("x" * 161, reference=200)
    assert [p.esm_class for p in parts] == [0x40, 0x40]
    assert parts[0].short_message[:6] == bytes([0x05, 0x00, 0x03, 200, 2, 1])
    assert parts[1].short_message[:6] == bytes([0x05, 0x00, 0x03, 200, 2, 2])
    assert len(parts[0].short_message) == 6 + 153
    ucs = encode_parts("ê" * 71, reference=7)
    assert len(ucs[0].short_message) == 6 + 67 * 2 == 140


def test_escape_pair_never_split() -> None:
    # 152 plain septets then "€": the pair would straddle 153, so it moves.
    text = "a" * 152 + "€" + "a" * 10
    assert analyse(text).part_units == [152, 12]
    parts = encode_parts(text, reference=1)
    assert parts[0].short_message[-1] != 0x1B
    assert parts[1].short_message[6:8] == b"\x1b\x65"


def test_surrogate_pair_never_split() -> None:
    result = analyse("a" * 66 + "😜" + "b" * 5)
    assert result.part_units == [66, 7]


def test_non_gsm_chars_in_order_of_first_appearance() -> None:
    result = analyse("Zoë, ça va? ë 😜")
    assert result.encoding == "UCS-2"
    assert result.non_gsm_chars == ["ë", "ç", "😜"]
    assert analyse("Hello [world] €5").non_gsm_chars == []


def test_cost_and_preview() -> None:
    result = analyse("ê" * 71)
    assert result.cost_eur() == Decimal("0.110")
    assert result.cost_eur(Decimal("0.1")) == Decimal("0.2")
    assert result.cost_eur("0.055") == Decimal("0.110")
    assert preview("x" * 307) == {
        "encoding": "GSM-7",
        "units": 307,
        "segments": 3,
        "part_units": [153, 153, 1],
        "cost_eur": 0.165,
        "non_gsm_chars": [],
    }
    shown = preview("Zoë", price_per_segment=Decimal("0.0555"))
    assert shown["cost_eur"] == 0.056  # half-up to 3 decimals
    assert shown["non_gsm_chars"] == ["ë"]
    json.dumps(shown)  # the CLI prints it as JSON


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", ValueError, "text: empty"),
        (None, TypeError, "text: expected str"),
        ("a\ud800b", ValueError, "text: lone surrogate U+D800 at index 1"),
    ],
)
def test_bad_text(text: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message.replace("+", r"\+")):
        analyse(text)  # type: ignore[arg-type]
    with pytest.raises(error, match=message.replace("+", r"\+")):
        encode_parts(text, reference=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("price", [Decimal("-0.01"), "abc", Decimal("NaN"), float("inf")])
def test_bad_price(price: object) -> None:
    with pytest.raises(ValueError, match="price_per_segment"):
        analyse("hi").cost_eur(price)  # type: ignore[arg-type]


def test_bad_reference_and_too_many_parts() -> None:
    with pytest.raises(ValueError, match="reference: must be 0..255"):
        encode_parts("hi", reference=256)
    with pytest.raises(TypeError, match="reference: expected int"):
        encode_parts("hi", reference="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="text: 256 segments exceed the 255-part limit"):
        encode_parts("x" * (153 * 256), reference=1)


def test_decode_errors() -> None:
    with pytest.raises(ValueError, match="lone escape"):
        decode_short_message(0x00, b"a\x1b", udhi=False)
    with pytest.raises(ValueError, match="not a GSM-7 septet"):
        decode_short_message(0x00, b"\x80", udhi=False)
    with pytest.raises(ValueError, match="UDH length 5 exceeds"):
        decode_short_message(0x00, b"\x05\x00\x03", udhi=True)
    with pytest.raises(ValueError, match="invalid UTF-16-BE"):
        decode_short_message(0x08, "😜".encode("utf-16-be")[:2], udhi=False)
    with pytest.raises(ValueError, match="data_coding: unsupported value 0x04"):
        decode_short_message(0x04, b"ab", udhi=False)


def test_decode_16_bit_reference_and_unknown_ie() -> None:
    # IE 0x0A (text formatting, ignored) then IE 0x08 (16-bit reference).
    udh = bytes([0x0B, 0x0A, 0x03, 0, 0, 0, 0x08, 0x04, 0x12, 0x34, 3, 2])
    text, concat = decode_short_message(0x00, udh + b"Hi", udhi=True)
    assert (text, concat) == ("Hi", (0x1234, 3, 2))


def test_gsm7_rewrite_french_alert() -> None:
    text = "Restez à l’intérieur, fermez portes et fenêtres « immédiatement »"
    rewritten = gsm7_rewrite(text)
    # The spaces French typography puts inside guillemets go with them.
    assert rewritten == 'Restez à l\'intérieur, fermez portes et fenêtres "immédiatement"'
    # ê is a letter and stays (meaning first); only it keeps the text in UCS-2.
    assert analyse(rewritten).non_gsm_chars == ["ê"]
    assert gsm7_rewrite("Let op – blijf binnen… “Sluit ramen”") == (
        'Let op - blijf binnen... "Sluit ramen"'
    )
    assert analyse(gsm7_rewrite("Evacuatie\u00a0: 10\u202f000 mensen — ’s nachts")).encoding == (
        "GSM-7"
    )


def test_fold_accents_is_a_separate_checked_choice() -> None:
    text = "Fermez les fenêtres « maintenant » : ça brûle près de l’usine à Forêt. Cœur évacué."
    folded, changes = gsm7_fold_accents(text)
    assert folded == ('Fermez les fenetres "maintenant" : ca brule près de l\'usine à Foret. '
                      "Coeur évacué.")
    assert analyse(folded).encoding == "GSM-7"
    # GSM-7 letters (è, à, é) stay; every changed word is listed once, in order.
    assert changes == [{"from": "fenêtres", "to": "fenetres"}, {"from": "ça", "to": "ca"},
                       {"from": "brûle", "to": "brule"}, {"from": "Forêt", "to": "Foret"},
                       {"from": "Cœur", "to": "Coeur"}]
    # Letters with no GSM-7 base (Greek, Cyrillic, CJK) and emoji are left as they are.
    assert gsm7_fold_accents("Ж 中 😀")[0] == "Ж 中 😀"


def test_composer_offers_accent_folding_only_when_the_plain_rewrite_is_not_enough() -> None:
    plain = composer_preview("Restez à l’intérieur « immédiatement »", max_segments=6)
    assert plain["gsm7_rewrite"] is not None and plain["accent_rewrite"] is None
    accented = composer_preview("Fermez portes et fenêtres, restez à l’intérieur.",
                                max_segments=6)
    assert accented["gsm7_rewrite"] is None
    assert accented["accent_rewrite"] == "Fermez portes et fenetres, restez à l'intérieur."
    assert accented["accent_rewrite_segments"] == 1
    assert accented["accent_changes"] == [{"from": "fenêtres", "to": "fenetres"}]
    emoji = composer_preview("Restez chez vous 😀", max_segments=6)
    assert emoji["accent_rewrite"] is None and emoji["accent_changes"] == []


def test_gsm7_rewrite_targets_are_gsm7_and_letters_untouched() -> None:
    for source, target in GSM7_REWRITES.items():
        assert source not in GSM7_BASIC and source not in GSM7_EXTENSION
        assert analyse(target or "x").encoding == "GSM-7"
    assert gsm7_rewrite("sûr côte geëvacueerd ç") == "sûr côte geëvacueerd ç"


alert_text = st.text(
    alphabet=st.sampled_from(GSM_CHARS)
    | st.sampled_from(NON_GSM_CHARS)
    | st.characters(codec="utf-8"),
    min_size=1,
    max_size=700,
)
gsm_text = st.text(alphabet=st.sampled_from(GSM_CHARS), min_size=1, max_size=700)
extension_heavy = st.text(alphabet=st.sampled_from("€[]{}^~\\|\fa"), min_size=1, max_size=500)


def _units(text: str, encoding: str) -> int:
    """Units of a part counted in the whole message's encoding (independent counter)."""
    if encoding == "GSM-7":
        return sum(2 if char in GSM7_EXTENSION else 1 for char in text)
    return len(text.encode("utf-16-be")) // 2


def _check_round_trip(text: str, reference: int) -> None:
    result = analyse(text)
    parts = encode_parts(text, reference)
    assert len(parts) == result.segments
    single, multi = (160, 153) if result.encoding == "GSM-7" else (70, 67)
    assert all(units <= (single if result.segments == 1 else multi) for units in result.part_units)
    assert sum(result.part_units) == result.units
    decoded = []
    for seq, part in enumerate(parts, start=1):
        assert part.data_coding == (0x00 if result.encoding == "GSM-7" else 0x08)
        udhi = bool(part.esm_class & 0x40)
        assert udhi == (result.segments > 1)
        # Strict decoding fails on a split escape pair or surrogate pair.
        chunk, concat = decode_short_message(part.data_coding, part.short_message, udhi)
        assert concat == ((reference, len(parts), seq) if udhi else None)
        assert _units(chunk, result.encoding) == result.part_units[seq - 1]
        decoded.append(chunk)
    assert "".join(decoded) == text


@settings(max_examples=300, deadline=None)
@given(alert_text, st.integers(0, 255))
def test_round_trip_any_text(text: str, reference: int) -> None:
    _check_round_trip(text, reference)


@settings(max_examples=200, deadline=None)
@given(gsm_text, st.integers(0, 255))
def test_round_trip_gsm_text(text: str, reference: int) -> None:
    assert analyse(text).encoding == "GSM-7"
    _check_round_trip(text, reference)


@settings(max_examples=200, deadline=None)
@given(extension_heavy, st.integers(0, 255))
def test_round_trip_extension_table(text: str, reference: int) -> None:
    _check_round_trip(text, reference)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("a😜🇮🇹ê"), min_size=1, max_size=300))
def test_round_trip_surrogate_heavy(text: str) -> None:
    _check_round_trip(text, 9)


def test_analysis_is_frozen() -> None:
    result = analyse("hi")
    assert isinstance(result, SmsAnalysis)
    with pytest.raises(AttributeError):
        result.segments = 2  # type: ignore[misc]
