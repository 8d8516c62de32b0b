"""The mobile operators' signed callbacks of location-based SMS (SPEC F18; issue 11):
``POST /hooks/lbsms/{operator}``, signed like Tocsin's webhooks (``X-Tocsin-Timestamp``,
``X-Tocsin-Signature``), applied once each and in ``seq`` order by
``campaigns.location.apply_callback``. Live operators reach it at
``TOCSIN_LBSMS_CALLBACK_URL`` (or the public URL) with ``TOCSIN_LBSMS_CALLBACK_SECRET``;
a worker's simulators post to its own loopback listener (:func:`callback_app`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tocsin.campaigns.location import UnknownBroadcast, apply_callback
from tocsin.channels.lbsms import verify_callback
from tocsin.web.deps import engine_of, settings_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

router = APIRouter()


def _secret(request: Request) -> str:
    own = getattr(request.app.state, "lbsms_callback_secret", None)
    return str(own) if own else settings_of(request).lbsms_callback_secret


@router.post("/hooks/lbsms/{operator}", include_in_schema=False)
async def lbsms_callback(operator: str, request: Request) -> Any:
    """One operator callback: 401 without a valid signature, 400 for a malformed body,
    404 for a broadcast Tocsin did not send; 200 ``{"applied", "duplicate", "state"}``
    otherwise (a duplicate is acknowledged, so that the operator stops retrying)."""
    body = await request.body()
    secret = _secret(request)
    if not secret or not verify_callback(secret, dict(request.headers), body):
        return JSONResponse({"error": "bad signature"}, status_code=401)
    try:
        event = json.loads(body)
        if not isinstance(event, dict):
            raise ValueError("not a JSON object")
        result = await run_in_threadpool(apply_callback, engine_of(request), operator, event)
    except UnknownBroadcast as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return {"applied": result.applied, "duplicate": result.duplicate, "state": result.state}


def callback_app(engine: Engine, secret: str) -> FastAPI:
    """An app with only this route, for a worker's own loopback listener (simulation)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.engine = engine
    app.state.lbsms_callback_secret = secret
    app.include_router(router)
    return app
