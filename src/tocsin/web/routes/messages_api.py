"""JSON API of the composer's message tools: SMS preview, voice estimate and audio, language check.

Used live by the composer while the operator types (SPEC F13, F14, F22, F25).
Every endpoint needs a logged-in operator session and the ``X-CSRF-Token``
header, like the rest of ``/api``; nothing is written. Errors are
``{"error": {"field", "reason"}}`` with 422 (bad input, e.g. a text over
10,000 characters), 401 (not logged in), 403 (CSRF, another authority), 404
(unknown authority). Without espeak-ng on the server the audio preview answers
200 ``{"available": false, "message": "…"}`` (JSON instead of audio): a missing
optional engine is a fact to show, not a server error; the composer hides its
Listen buttons then. A failing engine answers 503.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from tocsin.authorities.services import sms_max_segments
from tocsin.core.i18n import N_
from tocsin.messages import language as lang_tools
from tocsin.messages import sms, voice
from tocsin.web import i18n
from tocsin.web.deps import (
    Operator,
    current_operator,
    engine_of,
    language_of,
    require_api_csrf,
    settings_of,
    translate,
)
from tocsin.web.routes.api import ApiError

router = APIRouter(prefix="/api/messages", tags=["messages"])

#: Longest text accepted by the SMS preview and the language check, characters.
MAX_TEXT_CHARS = 10_000

Lang = Literal["fr", "nl", "de", "en"]

NO_TTS = N_("No text-to-speech engine on this server: the audio preview is not available. "
            "The duration estimate still holds.")

# Login first, then CSRF: a logged-out caller gets 401 (log in), not 403 (reload).
_GUARDS = [Depends(current_operator), Depends(require_api_csrf)]


class SmsPreviewIn(BaseModel):
    """An SMS text to preview, for the operator's authority or one it may act for."""

    text: str = Field(max_length=MAX_TEXT_CHARS, description="the SMS text (may be empty)")
    authority_id: str | None = Field(
        None, max_length=8, description="authority whose segment cap applies; default: own"
    )


class SmsPreviewOut(BaseModel):
    """Encoding, length, segments and cost of one SMS (3GPP TS 23.038 / 23.040, F14, F29)."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int = Field(description="septets (GSM-7) or UTF-16 code units (UCS-2)")
    segments: int
    part_units: list[int] = Field(description="units in each segment, in order")
    cost_eur: float = Field(description="EUR per recipient, segments x tariff, 3 decimals")
    non_gsm_chars: list[str] = Field(description="characters forcing UCS-2, first seen first")
    max_segments: int = Field(description="the authority's cap (else the deployment's)")
    over_max: bool = Field(description="segments > max_segments: the launch would be refused")
    gsm7_rewrite: str | None = Field(
        description="the text with typographic characters replaced so it is GSM-7; "
        "null when that does not make it GSM-7"
    )
    rewrite_segments: int | None = Field(description="segments of gsm7_rewrite, or null")
    accent_rewrite: str | None = Field(
        default=None,
        description="gsm7_rewrite plus accented letters GSM-7 lacks folded (ê→e, ç→c), "
        "offered only when that alone makes the text GSM-7; check the spelling")
    accent_rewrite_segments: int | None = Field(default=None,
                                                description="segments of accent_rewrite")
    accent_changes: list[dict[str, str]] = Field(
        default_factory=list, description='words accent_rewrite changes: [{"from", "to"}]')


class VoiceIn(BaseModel):
    """A voice script in one language."""

    script: str = Field(max_length=voice.MAX_SCRIPT_CHARS, description="text read by TTS")
    language: Lang


class VoiceEstimateOut(BaseModel):
    """Spoken duration and cost of one answered call (F22, F29)."""

    words: int
    seconds: int = Field(description="estimated spoken duration, seconds (rounded up)")
    billed_minutes: int = Field(description="started minutes of one answered call")
    cost_eur: float = Field(description="EUR per answered call, 3 decimals")


class LanguageCheckIn(BaseModel):
    """The texts of a message by language."""

    texts: dict[Lang, str] = Field(description="language -> text")

    @field_validator("texts")
    @classmethod
    def _text_lengths(cls, texts: dict[str, str]) -> dict[str, str]:
        for code, text in texts.items():
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(
                    f"texts.{code}: {len(text)} characters, at most {MAX_TEXT_CHARS:,} allowed"
                )
        return texts


class LanguageWarningOut(BaseModel):
    """A text that reads as another language than the one it is filed under."""

    language: str = Field(description="the language the text is filed under")
    detected: str = Field(description="the language it reads as")
    field: str = Field(description="the composer field, e.g. text.nl")
    code: str = Field("wrong_language", description="stable code of the warning")
    message: str = Field(description="the warning in the request's language "
                         "(the user's setting, ?lang= or Accept-Language)")


class LanguageCheckOut(BaseModel):
    """Wrong-language warnings (empty when every text reads as its language)."""

    warnings: list[LanguageWarningOut]


def _max_segments(request: Request, op: Operator, authority_id: str | None) -> int:
    settings = settings_of(request)
    wanted = authority_id or op.authority_id
    if wanted != op.authority_id and op.role != "federal_operator":
        raise ApiError(403, "authority_id", "you may only preview for your own authority",
                       translate(request, "you may only preview for your own authority"))
    try:
        cap = sms_max_segments(engine_of(request), wanted)
    except LookupError:
        raise ApiError(404, "authority_id", f"unknown authority {wanted!r}",
                       translate(request, "unknown authority %(authority)s",
                                 authority=repr(wanted))) from None
    # Empty (or out of the 1..255 a concatenated SMS allows): the deployment's default.
    return int(cap) if cap and 1 <= cap <= sms.MAX_PARTS else settings.sms_max_segments


@router.post(
    "/sms-preview",
    response_model=SmsPreviewOut,
    dependencies=_GUARDS,
)
def sms_preview(
    body: SmsPreviewIn, request: Request, op: Operator = Depends(current_operator)
) -> dict[str, Any]:
    """Live SMS preview: encoding, segments, cost, the authority's cap and a GSM-7 fix (F14)."""
    max_segments = _max_segments(request, op, body.authority_id)
    price = Decimal(settings_of(request).sms_segment_price_eur)
    try:
        return sms.composer_preview(body.text, max_segments=max_segments, price_per_segment=price)
    except ValueError as exc:  # a lone surrogate: never typed, the trace of a broken client
        raise ApiError(422, "text", str(exc).removeprefix("text: ")) from None


@router.post(
    "/voice-estimate",
    response_model=VoiceEstimateOut,
    dependencies=_GUARDS,
)
def voice_estimate(
    body: VoiceIn, request: Request, op: Operator = Depends(current_operator)
) -> dict[str, Any]:
    """Spoken duration, billed minutes and cost per answered call of a voice script (F22, F29)."""
    price = settings_of(request).voice_minute_price_eur
    return voice.estimate_voice(body.script, body.language, price).as_dict()


@router.post(
    "/voice-preview",
    response_class=Response,
    dependencies=_GUARDS,
    responses={
        200: {"content": {
            "audio/wav": {},
            "application/json": {"example": {"available": False, "message": NO_TTS}}},
            "description": "the script spoken, WAV; or JSON saying no engine is installed"},
        503: {
            "description": "the text-to-speech engine failed",
            "content": {"application/json": {
                "example": {"error": "text-to-speech failed: …"}}},
        },
    },
)
async def voice_preview(
    body: VoiceIn, request: Request, op: Operator = Depends(current_operator)
) -> Response:
    """The voice script spoken by the server's espeak-ng, as ``audio/wav`` (at most 2,000 chars).

    The rate is the one :func:`tocsin.messages.voice.estimate_voice` assumes,
    so what the operator hears lasts what the estimate says.
    """
    if len(body.script) > voice.MAX_PREVIEW_CHARS:
        template = N_("%(length)s characters; the audio preview takes at most %(limit)s")
        params = {"length": f"{len(body.script):,}", "limit": f"{voice.MAX_PREVIEW_CHARS:,}"}
        raise ApiError(422, "script", template % params,
                       translate(request, template, **params))
    if not body.script.strip():
        raise ApiError(422, "script", "empty", translate(request, "must not be empty"))
    try:
        audio = await run_in_threadpool(voice.render_voice_preview, body.script, body.language)
    except voice.VoiceEngineUnavailable:
        return JSONResponse({"available": False, "message": translate(request, NO_TTS)})
    except voice.VoiceEngineError as exc:
        return JSONResponse({"error": f"text-to-speech failed: {exc}",
                             "message": translate(request, "The text-to-speech engine failed: "
                                                  "%(detail)s", detail=str(exc))},
                            status_code=503)
    return Response(
        audio,
        media_type="audio/wav",
        headers={"Content-Disposition": 'inline; filename="voice-preview.wav"'},
    )


@router.post(
    "/language-check",
    response_model=LanguageCheckOut,
    dependencies=_GUARDS,
)
async def language_check(
    body: LanguageCheckIn, request: Request, op: Operator = Depends(current_operator)
) -> dict[str, Any]:
    """Warnings for texts that read as another language than their field (F13); each
    ``message`` in the request's language, ``code`` stable."""
    texts: dict[str, str] = {str(code): text for code, text in body.texts.items()}
    warnings = await run_in_threadpool(lang_tools.language_warnings, texts)
    language = language_of(request)
    return {"warnings": [i18n.warning_text(w, language) for w in warnings]}
