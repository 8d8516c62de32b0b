"""Message content tools: ``tocsin message preview|voice``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tocsin.cli.common import fail, out
from tocsin.core.settings import get_settings

message_app = typer.Typer(no_args_is_help=True, help="Message content tools.")

@message_app.command("preview")
def message_preview(
    text: str = typer.Option(..., "--text", help="The SMS text."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """SMS encoding, length, segments and cost of a text (3GPP TS 23.038 / 23.040)."""
    from decimal import Decimal

    from tocsin.messages.sms import analyse, gsm7_rewrite, preview

    try:
        p = preview(text, Decimal(get_settings().sms_segment_price_eur))
    except (ValueError, TypeError) as exc:
        raise fail("text", str(exc).removeprefix("text: ")) from None
    if as_json:
        print(json.dumps(p, ensure_ascii=False))
        return
    out.print(f"{p['encoding']}: {p['units']} units, {p['segments']} segment(s) "
                    f"{p['part_units']}, {p['cost_eur']:.3f} EUR"
                    + (f"; forces UCS-2: {', '.join(map(_visible, p['non_gsm_chars']))}"
                       if p["non_gsm_chars"] else ""), highlight=False)
    rewrite = gsm7_rewrite(text)
    if p["encoding"] == "UCS-2" and analyse(rewrite).encoding == "GSM-7":
        out.print(f"GSM-7 rewrite ({analyse(rewrite).segments} segment(s)): {rewrite}",
                        highlight=False, markup=False)


def _visible(char: str) -> str:
    """A character as an operator can read it: invisible ones by name and code point."""
    import unicodedata

    if char.isprintable() and not char.isspace():
        return char
    return f"{unicodedata.name(char, 'unnamed').lower()} (U+{ord(char):04X})"


@message_app.command("voice")
def message_voice(
    script: str = typer.Option(..., "--script", help="The voice script read to the recipient."),
    language: str = typer.Option(..., "--language", help="fr, nl, de or en."),
    as_json: bool = typer.Option(False, "--json"),
    wav: Path | None = typer.Option(None, "--wav", help="Also write the espeak-ng audio here."),
) -> None:
    """Spoken duration, billed minutes and cost of a voice script; optional WAV preview (F22)."""
    from tocsin.messages import voice

    try:
        est = voice.estimate_voice(script, language, get_settings().voice_minute_price_eur)
        audio = voice.render_voice_preview(script, language) if wav is not None else None
    except voice.MessageInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except (voice.VoiceEngineUnavailable, voice.VoiceEngineError) as exc:
        raise fail("wav", str(exc)) from None
    if audio is not None and wav is not None:
        try:
            wav.write_bytes(audio)
        except OSError as exc:
            raise fail("wav", f"cannot write {wav}: {exc.strerror}") from None
    if as_json:
        print(json.dumps(est.as_dict()))
        return
    out.print(f"{est.words} words, about {est.seconds} s: {est.billed_minutes} started "
                    f"minute(s), {est.cost_eur:.3f} EUR per answered call"
                    + (f"; audio in {wav}" if wav is not None else ""),
                    highlight=False, soft_wrap=True)


