"""Public CAP 1.2 feeds and alerts, and the integrators' CAP gateway (SPEC F24, F36).

Live alerts: ``/cap/feed.atom`` (national), ``/cap/authorities/{id}/feed.atom``
and each message at its stable URL ``/cap/{identifier}.xml``. Simulation
alerts only under ``/simulation/cap/…``: a simulated alert never appears in the
public feeds that display panels and alert maps read. Feeds list the active
alerts, 50 per page (``?page=N``, RFC 5005 links); ``?all=1`` lists every
published message (the archive). Integrators read ``/gateway/feed.atom`` and
``/gateway/{identifier}.xml`` with their key.

Every answer carries a strong ``ETag`` and a short shared ``Cache-Control``;
``If-None-Match`` gets ``304 Not Modified``, so panels polling after an alert
cost a hash, and caches in front of Tocsin absorb the spike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from tocsin.cap.feed import ATOM_MEDIA_TYPE, CAP_MEDIA_TYPE
from tocsin.cap.gateway import GatewayKey, authenticate, gateway_cap_xml, gateway_feed
from tocsin.cap.services import FeedScope, cap_feed, get_cap_xml
from tocsin.web.deps import public_url_of

router = APIRouter(tags=["cap"])
Endpoint = Callable[..., Response]

CAP_TYPE = CAP_MEDIA_TYPE
ATOM_TYPE = ATOM_MEDIA_TYPE
# Panels poll the feed; a short shared cache absorbs the spike that follows an alert (F36).
FEED_CACHE = "public, max-age=10"
# A published CAP message never changes (an update is a new message at a new URL).
ALERT_CACHE = "public, max-age=86400, immutable"
GATEWAY_FEED_CACHE = "private, max-age=10"
GATEWAY_ALERT_CACHE = "private, max-age=86400, immutable"

PAGE = Query(1, ge=1, le=100_000, description="Page number, 1 = newest (RFC 5005)")
ALL = Query(False, alias="all", description="1 = every published message, expired included")


def get_and_head(path: str, **kwargs: Any) -> Callable[[Endpoint], Endpoint]:
    """Route GET and HEAD (RFC 9110 §9.3.2) to one endpoint; only GET in the OpenAPI schema.

    One route with both methods would give two OpenAPI operations the same id.
    """
    def register(endpoint: Endpoint) -> Endpoint:
        router.add_api_route(path, endpoint, methods=["GET"], **kwargs)
        router.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **kwargs)
        return endpoint
    return register


def etag_of(body: bytes) -> str:
    """A strong entity tag: the first 128 bits of the body's SHA-256, quoted (RFC 9110 §8.8.3)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _not_modified(if_none_match: str | None, etag: str) -> bool:
    # RFC 9110 §13.1.2: a list of tags or "*", compared weakly.
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _respond(request: Request, body: bytes, media_type: str, cache: str) -> Response:
    etag = etag_of(body)
    headers = {"ETag": etag, "Cache-Control": cache}
    if _not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _alert(request: Request, identifier: str, environment: str) -> Response:
    try:
        xml = get_cap_xml(request.app.state.engine, identifier, environment, public_only=True)
    except LookupError:
        raise HTTPException(404, f"no {environment} CAP alert {identifier!r}") from None
    return _respond(request, xml, CAP_TYPE, ALERT_CACHE)


def _feed(request: Request, environment: str, page: int, archive: bool,
          authority_id: str | None = None) -> Response:
    try:
        feed = cap_feed(request.app.state.engine, environment, request.app.state.settings,
                        page=page, public_url=public_url_of(request),
                        scope=FeedScope(environment=environment, authority_id=authority_id,
                                        archive=archive))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    return _respond(request, feed.body, ATOM_TYPE, FEED_CACHE)


@get_and_head("/cap/feed.atom",
              summary="Atom feed of live CAP alerts")
def live_feed(request: Request, page: int = PAGE, archive: bool = ALL) -> Response:
    return _feed(request, "live", page, archive)


@get_and_head("/cap/authorities/{authority_id}/feed.atom",
              summary="Atom feed of one authority's live CAP alerts")
def live_authority_feed(request: Request, authority_id: str, page: int = PAGE,
                        archive: bool = ALL) -> Response:
    return _feed(request, "live", page, archive, authority_id)


@get_and_head("/cap/{identifier}.xml",
              summary="One live CAP 1.2 alert")
def live_alert(request: Request, identifier: str) -> Response:
    return _alert(request, identifier, "live")


@get_and_head("/simulation/cap/feed.atom",
              summary="Atom feed of simulation CAP alerts")
def simulation_feed(request: Request, page: int = PAGE, archive: bool = ALL) -> Response:
    return _feed(request, "simulation", page, archive)


@get_and_head("/simulation/cap/authorities/{authority_id}/feed.atom",
              summary="Atom feed of one authority's simulation CAP alerts")
def simulation_authority_feed(request: Request, authority_id: str, page: int = PAGE,
                              archive: bool = ALL) -> Response:
    return _feed(request, "simulation", page, archive, authority_id)


@get_and_head("/simulation/cap/{identifier}.xml",
              summary="One simulation CAP 1.2 alert")
def simulation_alert(request: Request, identifier: str) -> Response:
    return _alert(request, identifier, "simulation")


# ----------------------------------------------------------------------------- gateway


def _gateway_key(request: Request) -> GatewayKey | None:
    """The integrator's key from ``Authorization: Bearer`` or ``X-Api-Key``, if valid."""
    token = request.headers.get("x-api-key")
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        token = value.strip()
    return authenticate(request.app.state.engine, token) if token else None


def _unauthorized() -> Response:
    # Answered here, not raised: the HTML error page handler would drop WWW-Authenticate.
    return JSONResponse(
        {"error": {"field": "authorization",
                   "reason": "a valid, unrevoked CAP gateway key is required "
                             "(Authorization: Bearer <key> or X-Api-Key)"}},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="tocsin-cap-gateway"',
                 "Cache-Control": "no-store"})


@get_and_head("/gateway/feed.atom",
              summary="CAP gateway: Atom feed of live alerts in the key's area")
def gateway_feed_route(request: Request, page: int = PAGE, archive: bool = ALL) -> Response:
    key = _gateway_key(request)
    if key is None:
        return _unauthorized()
    try:
        feed = gateway_feed(request.app.state.engine, key, page=page, archive=archive,
                            settings=request.app.state.settings,
                            public_url=public_url_of(request))
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    response = _respond(request, feed.body, ATOM_TYPE, GATEWAY_FEED_CACHE)
    response.headers["Vary"] = "Authorization, X-Api-Key"
    return response


@get_and_head("/gateway/{identifier}.xml",
              summary="CAP gateway: one live CAP 1.2 alert in the key's area")
def gateway_alert_route(request: Request, identifier: str) -> Response:
    key = _gateway_key(request)
    if key is None:
        return _unauthorized()
    try:
        xml = gateway_cap_xml(request.app.state.engine, key, identifier)
    except LookupError:
        raise HTTPException(404, f"no CAP alert {identifier!r} for this key") from None
    response = _respond(request, xml, CAP_TYPE, GATEWAY_ALERT_CACHE)
    response.headers["Vary"] = "Authorization, X-Api-Key"
    return response
