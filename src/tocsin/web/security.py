"""Web security primitives: cookie signing key, CSRF tokens, client address, cookie flags.

CSRF protection uses a per-session synchroniser token (OWASP CSRF Prevention
Cheat Sheet): every POST form carries ``csrf_token``, every JSON call the
``X-CSRF-Token`` header, both compared in constant time with the server-side
session's secret (before login: a token in the signed cookie). The app checks
it for every unsafe request before any route runs (``web.app``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tocsin.core.settings import Settings

CSRF_SESSION_KEY = "csrf"
CSRF_HEADER = "X-CSRF-Token"


def resolve_secret_key(settings: Settings) -> str:
    """The cookie signing key: ``settings.secret_key``, else one kept in ``var_dir/secret_key``.

    The file is created on first use (48 random bytes, mode 0600) so that sessions
    survive restarts and are shared by every web process using the same var_dir.
    """
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.var_dir) / "secret_key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def csrf_token(request: Request) -> str:
    """The CSRF token of this request's forms.

    Logged in (or half-way, awaiting TOTP): the server-side session's secret.
    Anonymous (the login form, an invitation): a token kept in the signed cookie.
    """
    info = getattr(request.state, "web_session", None)
    if info is not None:
        return str(info.csrf_secret)
    token = request.session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return str(token)


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """True when ``submitted`` equals the request's CSRF token.

    Compared as UTF-8 bytes in constant time: ``hmac.compare_digest`` refuses
    non-ASCII text with a TypeError, which was an unauthenticated 500.
    """
    info = getattr(request.state, "web_session", None)
    expected = info.csrf_secret if info is not None else request.session.get(CSRF_SESSION_KEY)
    if not expected or not submitted or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(_bytes(str(expected)), _bytes(submitted))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # RFC 7239 §6: "[2001:db8::1]:4711"
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
             networks: Sequence[Network]) -> bool:
    return address is not None and any(address in n for n in networks)


def forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """Client addresses named by ``Forwarded`` (RFC 7239 ``for=``) or else
    ``X-Forwarded-For``, nearest proxy last."""
    forwarded = headers.get("forwarded")
    if forwarded:
        chain = []
        for element in forwarded.split(","):
            for pair in element.split(";"):
                key, _, value = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    chain.append(value)
        return chain
    return [p for p in headers.get("x-forwarded-for", "").split(",") if p.strip()]


def client_address(peer: str | None, headers: Mapping[str, str],
                   trusted: Sequence[Network]) -> str:
    """The client's address: the TCP peer, unless the peer is a trusted proxy.

    Behind trusted proxies, the forwarded chain is read from the right and the
    first address that is not itself a trusted proxy is the client (MDN
    "X-Forwarded-For: selecting an IP address"); a forged left part is never
    believed. Without ``trusted`` networks the headers are ignored entirely.
    """
    peer = peer or "unknown"
    if not trusted or not _trusted(_address(peer), trusted):
        return peer
    for hop in reversed(forwarded_chain(headers)):
        address = _address(hop)
        if address is None:
            return peer  # garbage in the chain: believe only the proxy we talk to
        if not _trusted(address, trusted):
            return str(address)
    return peer


def request_is_https(scope_scheme: str, peer: str | None, headers: Mapping[str, str],
                     trusted: Sequence[Network]) -> bool:
    """True when the browser talks HTTPS: directly, or to a trusted proxy that says so."""
    if scope_scheme == "https":
        return True
    if trusted and _trusted(_address(peer or ""), trusted):
        proto = headers.get("x-forwarded-proto", "")
        forwarded = headers.get("forwarded", "").lower()
        return proto.split(",")[0].strip().lower() == "https" or "proto=https" in forwarded
    return False


class SessionCookieMiddleware(SessionMiddleware):
    """Starlette's signed-cookie session, with the ``Secure`` flag whenever the
    request came over HTTPS (directly or through a trusted proxy). The cookie holds
    only the server-side session id (or, before login, the login form's CSRF token)."""

    def __init__(self, app: ASGIApp, secret_key: str, session_cookie: str = "session",
                 max_age: int | None = None, same_site: Literal["lax", "strict", "none"] = "lax",
                 https_only: bool = False, trusted: Sequence[Network] = ()) -> None:
        super().__init__(app, secret_key=secret_key, session_cookie=session_cookie,
                         max_age=max_age, same_site=same_site, https_only=https_only)
        self.trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        peer = conn.client.host if conn.client else None
        if not request_is_https(scope.get("scheme", "http"), peer, conn.headers, self.trusted):
            await super().__call__(scope, receive, send)
            return

        async def secure_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                if cookies:
                    del headers["set-cookie"]
                    for cookie in cookies:
                        if "; secure" not in cookie.lower():
                            cookie += "; secure"
                        headers.append("set-cookie", cookie)
            await send(message)

        await super().__call__(scope, receive, secure_send)
