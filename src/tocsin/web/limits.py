"""Request body size limits, counted as the body arrives (ASGI middleware).

A ``Content-Length`` header can be absent (``Transfer-Encoding: chunked``) or lie, so
the limit is enforced on the bytes actually received: the request is answered
``413 Payload Too Large`` with ``{"error": {"field": "body", "reason": "…"}}`` as soon
as the declared length or the bytes read pass the limit, before a route (or the
multipart parser spooling to disk) sees more. Pages without login (the citizen
portal, answer links, unsubscribe links, provider callbacks) take small forms only;
the operators' uploads (contact lists up to 10 MiB, CAP files, templates) get the
larger default.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_LIMIT = 12 * 1024 * 1024
"""Bytes: the largest body of an operator's request (a 10 MiB contact list, with its
multipart envelope)."""

PUBLIC_LIMIT = 64 * 1024
"""Bytes: the largest body on a page or callback reachable without login."""

PUBLIC_PREFIXES = ("/register", "/me", "/answer/", "/inbound/", "/hooks/",
                   "/voice/calls/", "/unsubscribe/", "/login")
"""Path prefixes reachable without an operator session: :data:`PUBLIC_LIMIT` applies."""


class BodyTooLarge(Exception):
    """Raised inside the wrapped ``receive`` when the body passes its limit."""


def body_limit(path: str) -> int:
    """The body size limit in bytes for a request to ``path``."""
    return PUBLIC_LIMIT if path.startswith(PUBLIC_PREFIXES) else DEFAULT_LIMIT


class BodySizeLimit:
    """ASGI middleware refusing bodies over :func:`body_limit` with 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0
        over = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # A route that swallowed BodyTooLarge (a broad except) still answers 413.
            nonlocal answered
            if over:
                if not answered:
                    answered = True
                    await _refuse(send, limit)
                return
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if not answered:
                await _refuse(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"error": {"field": "body",
                                 "reason": f"larger than {limit:,} bytes"}}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
