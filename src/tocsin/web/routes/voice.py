"""The voice provider's requests about calls (SPEC F22): TwiML, key presses, status callbacks.

``POST /voice/calls/{call_id}/twiml`` (the call was answered: what to say),
``POST /voice/calls/{call_id}/gather`` (a key was pressed) and ``POST
/voice/calls/{call_id}/status`` (a status callback), as a Twilio-compatible provider
sends them. No session and no CSRF token: each request carries its own proof,
``X-Twilio-Signature``, checked against the URL the provider was given (the
configured ``TOCSIN_VOICE_CALLBACK_URL`` or ``TOCSIN_PUBLIC_URL``, so that a reverse
proxy does not change what was signed) and the form fields. The same routes serve
the simulation's callback listener (``callback_app``), keyed with the simulator's
token.

``POST /voice/codes/{code_id}/twiml`` and ``…/gather`` serve the citizen portal's code
calls in the same way (``dispatch.code_calls``): the code is said from its row, never
read from the URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from tocsin.dispatch.calls import provider_request
from tocsin.web.deps import client_ip, engine_of, settings_of

if TYPE_CHECKING:  # type names only: web modules never use SQLAlchemy themselves
    from sqlalchemy.engine import Engine

    from tocsin.core.settings import Settings

router = APIRouter()

#: Path prefixes of these routes (exempt from the CSRF check: the signature is the proof).
PREFIX = "/voice/calls/"
CODE_PREFIX = "/voice/codes/"


def _signed_url(request: Request) -> str:
    """The URL as the provider signed it: the configured base + path (+ query)."""
    base = getattr(request.app.state, "voice_callback_base", "") or ""
    if not base:
        settings = settings_of(request)
        base = settings.voice_callback_url or settings.public_url()
    url = base.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


@router.post("/voice/calls/{call_id}/{kind}", include_in_schema=False)
async def provider_call_request(request: Request, call_id: int, kind: str) -> Response:
    """One request of the voice provider (``kind``: twiml, gather, status)."""
    if kind not in ("twiml", "gather", "status"):
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        form = await request.form()
    except ClientDisconnect:  # the provider gave up on this request
        return Response("", status_code=400, media_type="text/plain")
    params = {k: str(v) for k, v in form.items()}
    token = getattr(request.app.state, "voice_auth_token", None)
    settings = settings_of(request)
    reply = await run_in_threadpool(
        provider_request, engine_of(request), settings, kind, call_id, _signed_url(request),
        params, request.headers.get("X-Twilio-Signature", ""),
        settings.voice_auth_token if token is None else token, source=client_ip(request))
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)


@router.post("/voice/codes/{code_id}/{kind}", include_in_schema=False)
async def provider_code_request(request: Request, code_id: int, kind: str) -> Response:
    """One request of the voice provider about a portal code call (``kind``: twiml,
    gather; query ``lang``, ``round``)."""
    from tocsin.dispatch.code_calls import code_call_request
    from tocsin.web.security import resolve_secret_key

    if kind not in ("twiml", "gather"):
        return Response("not found", status_code=404, media_type="text/plain")
    try:
        form = await request.form()
    except ClientDisconnect:
        return Response("", status_code=400, media_type="text/plain")
    params = {k: str(v) for k, v in form.items()}
    token = getattr(request.app.state, "voice_auth_token", None)
    settings = settings_of(request)
    round_text = request.query_params.get("round", "1")
    reply = await run_in_threadpool(
        code_call_request, engine_of(request), resolve_secret_key(settings), kind, code_id,
        _signed_url(request), params, request.headers.get("X-Twilio-Signature", ""),
        settings.voice_auth_token if token is None else token,
        request.query_params.get("lang", "en"),
        int(round_text) if round_text.isdigit() and len(round_text) < 3 else 99,
        source=client_ip(request))
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type)


def callback_app(engine: Engine, settings: Settings, auth_token: str,
                 base_url: str) -> FastAPI:
    """A minimal app with only these routes, for a worker's own callback listener (the
    simulation's, on loopback): requests are checked with ``auth_token`` against URLs
    under ``base_url``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.settings = settings
    app.state.voice_auth_token = auth_token
    app.state.voice_callback_base = base_url
    app.include_router(router)
    return app
