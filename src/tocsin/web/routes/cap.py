"""Public CAP 1.2 feeds and alerts (SPEC F24).

Live alerts: ``/cap/feed.atom`` and ``/cap/{identifier}.xml``. Simulation alerts
only under ``/simulation/cap/…``: a simulated alert never appears in the public
feed that display panels and alert maps read.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from tocsin.cap.services import cap_feed, get_cap_xml

router = APIRouter(tags=["cap"])

CAP_TYPE = "application/cap+xml"
ATOM_TYPE = "application/atom+xml"
# Panels poll the feed; a short shared cache absorbs the spike that follows an alert (F36).
FEED_CACHE = "public, max-age=10"
ALERT_CACHE = "public, max-age=60"


def _respond(request: Request, body: bytes, media_type: str, cache: str) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache})
    return Response(body, media_type=media_type, headers={"ETag": etag, "Cache-Control": cache})


def _alert(request: Request, identifier: str, environment: str) -> Response:
    try:
        xml = get_cap_xml(request.app.state.engine, identifier, environment)
    except LookupError:
        raise HTTPException(404, f"no {environment} CAP alert {identifier!r}") from None
    return _respond(request, xml, CAP_TYPE, ALERT_CACHE)


@router.get("/cap/feed.atom", summary="Atom feed of live CAP alerts")
def live_feed(request: Request) -> Response:
    return _respond(request, cap_feed(request.app.state.engine, "live").body, ATOM_TYPE,
                    FEED_CACHE)


@router.get("/cap/{identifier}.xml", summary="One live CAP 1.2 alert")
def live_alert(request: Request, identifier: str) -> Response:
    return _alert(request, identifier, "live")


@router.get("/simulation/cap/feed.atom", summary="Atom feed of simulation CAP alerts")
def simulation_feed(request: Request) -> Response:
    return _respond(request, cap_feed(request.app.state.engine, "simulation").body, ATOM_TYPE,
                    FEED_CACHE)


@router.get("/simulation/cap/{identifier}.xml", summary="One simulation CAP 1.2 alert")
def simulation_alert(request: Request, identifier: str) -> Response:
    return _alert(request, identifier, "simulation")
