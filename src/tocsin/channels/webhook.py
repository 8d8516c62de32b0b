"""Push published CAP alerts to integrators' webhooks (SPEC F24), without SSRF (F36).

A push is an HTTPS ``POST`` of the CAP 1.2 document exactly as published
(``Content-Type: application/cap+xml``) with these headers:

- ``X-Tocsin-Timestamp``: Unix time of sending, in whole seconds;
- ``X-Tocsin-Signature``: ``sha256=`` + lowercase hex of
  ``HMAC-SHA256(key=webhook_secret (UTF-8), message=timestamp + "." + body)``
  (RFC 2104). The timestamp is inside the MAC, so a captured push cannot be
  replayed later with a fresh timestamp: receivers recompute the MAC, compare
  it in constant time and refuse a timestamp more than 5 minutes from their
  clock (:func:`verify_signature` does exactly that);
- ``X-Tocsin-Delivery``: the delivery id, the same on every retry of one push
  (delivery is at-least-once: receivers de-duplicate on it or on the CAP
  identifier).

Outcomes: a 2xx answer is ``sent``; a timeout, a connection failure, 408, 425,
429 or 5xx is ``retry`` (the queue backs off exponentially); any other answer,
redirects included (never followed), is ``failed``.

Server-side request forgery: a webhook URL must be ``https://`` with a host
name or a public IP address; every address the host resolves to must be a
public unicast address (no private, loopback, link-local, multicast, reserved,
shared (CGNAT), unspecified, IPv4-mapped or 6to4-wrapped non-public address).
The connection then goes to the address that was checked, with the original
host name in ``Host`` and in TLS SNI/certificate verification, so a DNS answer
that changes between the check and the connection (DNS rebinding) cannot
redirect the push. The setting ``webhook_allow_insecure`` (tests, local
simulators) additionally allows ``http://`` and loopback addresses, nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from tocsin.channels.base import OutgoingMessage, SendOutcome

CAP_MEDIA_TYPE = "application/cap+xml"
SIGNATURE_HEADER = "X-Tocsin-Signature"
TIMESTAMP_HEADER = "X-Tocsin-Timestamp"
DELIVERY_HEADER = "X-Tocsin-Delivery"
USER_AGENT = "Tocsin-CAP-Gateway/1"
SIGNATURE_TOLERANCE_S = 300
CONNECT_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 15.0
MAX_RESPONSE_BYTES = 16 * 1024
MAX_URL_LENGTH = 2000
CONCURRENCY = 16
RETRY_STATUSES = frozenset({408, 425, 429})

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# RFC 6598 shared address space is not private in Python's table but never public.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class WebhookUrlError(ValueError):
    """A webhook URL Tocsin refuses to call; ``field`` is ``webhook_url``, ``reason`` why."""

    def __init__(self, reason: str, field: str = "webhook_url") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class WebhookUrl:
    """A syntactically acceptable webhook URL, split for a connection to a checked address.

    ``host``: the host name (IDNA ASCII, lowercase) or IP literal without
    brackets; ``port``: TCP port; ``target``: path and query (``/`` at least);
    ``host_header``: the ``Host`` header value.
    """

    url: str
    scheme: str
    host: str
    port: int
    target: str
    host_header: str

    def url_for(self, address: str) -> str:
        """The URL with its host replaced by ``address`` (the checked IP)."""
        literal = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{literal}:{self.port}{self.target}"


def forbidden_reason(address: str | IPAddress, allow_loopback: bool = False) -> str | None:
    """Why ``address`` may not receive a webhook, or None when it is public unicast.

    Refuses private (RFC 1918, RFC 4193), loopback (unless ``allow_loopback``),
    link-local (incl. the 169.254.169.254 cloud metadata address), multicast,
    reserved, unspecified, shared (RFC 6598) and other non-global addresses
    (Python's IANA special-purpose registry tables), and IPv6 addresses that
    wrap an IPv4 one (IPv4-mapped ``::ffff:0:0/96``, 6to4, Teredo).
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"{ip} is an IPv4-mapped IPv6 address"
        if ip.sixtofour is not None or ip.teredo is not None:
            return f"{ip} wraps an IPv4 address (6to4/Teredo)"
        if ip.scope_id:
            return f"{ip} has a zone index"
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    for test, what in ((ip.is_unspecified, "unspecified"), (ip.is_link_local, "link-local"),
                       (ip.is_multicast, "multicast"), (ip.is_private, "private"),
                       (ip.is_reserved, "reserved"), (ip in _SHARED, "shared (RFC 6598)")):
        if test:
            return f"{ip} is a {what} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def parse_webhook_url(url: str, allow_insecure: bool = False) -> WebhookUrl:
    """Check the syntax of a webhook URL and split it.

    ``https://host[:port]/path?query`` (RFC 3986); ``http://`` only with
    ``allow_insecure``. No user name or password, no whitespace or control
    characters, at most 2,000 characters; a fragment is dropped. An IP-literal
    host is checked with :func:`forbidden_reason` here; a host name is checked
    when it is resolved (:func:`resolve_checked`).

    Raises:
        WebhookUrlError: naming ``webhook_url`` and the reason.
    """
    if not isinstance(url, str) or not url.strip():
        raise WebhookUrlError("required")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlError(f"longer than {MAX_URL_LENGTH} characters")
    if _CONTROL.search(url):
        raise WebhookUrlError("contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_insecure else ("https",)
    if scheme not in allowed:
        raise WebhookUrlError(f"scheme {scheme or '(none)'!r} refused: use https://")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise WebhookUrlError("must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise WebhookUrlError("has no host")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is None:
        if "%" in host or "[" in parts.netloc:
            raise WebhookUrlError(f"host {host!r} is not a valid host name")
        try:
            host = host.rstrip(".").encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise WebhookUrlError(f"host {host!r} is not a valid host name") from None
        if not host or not re.fullmatch(r"[a-z0-9.-]+", host):
            raise WebhookUrlError(f"host {host!r} is not a valid host name")
    else:
        reason = forbidden_reason(ip, allow_loopback=allow_insecure)
        if reason:
            raise WebhookUrlError(f"refused: {reason}")
        host = str(ip)
    default_port = 443 if scheme == "https" else 80
    port = port or default_port
    if not 0 < port < 65536:
        raise WebhookUrlError(f"port {port} out of range")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    literal = f"[{host}]" if ":" in host else host
    host_header = literal if port == default_port else f"{literal}:{port}"
    return WebhookUrl(url, scheme, host, port, target, host_header)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from the system resolver (``getaddrinfo``), TCP only."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _first_allowed(host: str, addresses: Sequence[str], allow_insecure: bool) -> str:
    if not addresses:
        raise OSError(f"{host} has no address")
    for address in addresses:
        reason = forbidden_reason(address.split("%", 1)[0], allow_loopback=allow_insecure)
        if reason:
            raise WebhookUrlError(f"refused: {host} resolves to {reason}")
    return addresses[0]


async def resolve_checked(target: WebhookUrl, allow_insecure: bool = False,
                          resolver: Resolver = system_resolver) -> str:
    """The address to connect to for ``target``: every resolved address must be allowed.

    Returns the first address (an IP string). Raises ``WebhookUrlError`` when
    any address is forbidden (one bad answer taints the name) and ``OSError``
    when the name does not resolve (a transient failure for the sender).
    """
    try:
        ipaddress.ip_address(target.host)
        return target.host  # an IP literal, checked by parse_webhook_url
    except ValueError:
        pass
    return _first_allowed(target.host, await resolver(target.host, target.port),
                          allow_insecure)


def check_webhook_url(url: str, allow_insecure: bool = False) -> str:
    """Check ``url`` now, resolving its host (key creation): returns the normalised URL.

    Raises ``WebhookUrlError`` (field ``webhook_url``) for a refused URL or a
    host that does not resolve.
    """
    target = parse_webhook_url(url, allow_insecure)
    try:
        ipaddress.ip_address(target.host)
        return target.url
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookUrlError(f"host {target.host!r} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    try:
        _first_allowed(target.host, addresses, allow_insecure)
    except OSError as exc:
        raise WebhookUrlError(f"host {target.host!r} does not resolve ({exc})") from None
    return target.url


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``X-Tocsin-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body,
                   hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, signature: str, body: bytes,
                     now: float | None = None, tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """What a receiver does: True when ``signature`` is valid for ``timestamp`` and ``body``
    and ``timestamp`` (Unix seconds) is within ``tolerance_s`` of ``now``."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")


@dataclass(frozen=True)
class WebhookTarget:
    """Where and what to push for one delivery.

    ``url``/``secret``: the key's webhook URL and HMAC secret (None when it has
    none); ``revoked``: the key was revoked since the push was queued;
    ``body``: the published CAP document (None when the campaign has none).
    """

    key_id: str
    url: str | None
    secret: str | None
    revoked: bool
    body: bytes | None


class WebhookTargets(Protocol):
    """Looks up a delivery's target (implemented over the database by ``cap.gateway``)."""

    def load(self, key_id: str, campaign_id: str) -> WebhookTarget:
        """The target; raises ``LookupError`` when the key or the campaign is gone."""
        ...


class WebhookSender:
    """``ChannelSender`` for channel ``webhook``: one signed HTTPS POST per delivery.

    ``targets`` resolves a delivery's key id (its ``address``) and campaign to
    the URL, secret and CAP body; ``resolver`` maps a host name to addresses
    (default: the system resolver). Sends up to 16 pushes concurrently, each
    bounded by a 5 s connect and 15 s total timeout; reads at most 16 KiB of
    the answer; keeps no connection alive between pushes (a connection is
    never reused for another host name behind the same address).
    """

    channel = "webhook"

    def __init__(self, targets: WebhookTargets, *, allow_insecure: bool = False,
                 name: str = "webhook", resolver: Resolver = system_resolver,
                 total_timeout_s: float = TOTAL_TIMEOUT_S) -> None:
        self.targets = targets
        self.allow_insecure = allow_insecure
        self.name = name
        self.resolver = resolver
        self.total_timeout_s = total_timeout_s
        self.connected = False
        self._client: httpx.AsyncClient | None = None
        self._limit = asyncio.Semaphore(CONCURRENCY)

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False, trust_env=False,
                timeout=httpx.Timeout(self.total_timeout_s, connect=CONNECT_TIMEOUT_S),
                limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0),
            )
        self.connected = True

    async def close(self) -> None:
        self.connected = False
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        if self._client is None:
            await self.start()
        return list(await asyncio.gather(*(self._send_one(m) for m in messages)))

    async def _send_one(self, message: OutgoingMessage) -> SendOutcome:
        did = message.delivery_id
        try:
            target = await asyncio.to_thread(self.targets.load, message.address,
                                             message.campaign_id)
        except LookupError as exc:
            return SendOutcome(did, "failed", error=str(exc))
        if target.revoked:
            return SendOutcome(did, "failed", error=f"gateway key {target.key_id} was revoked")
        if not target.url or not target.secret:
            return SendOutcome(did, "failed", error=f"gateway key {target.key_id} has no webhook")
        if target.body is None:
            return SendOutcome(did, "failed", error="the campaign has no published CAP alert")
        async with self._limit:
            try:
                return await asyncio.wait_for(self._post(did, target), self.total_timeout_s)
            except WebhookUrlError as exc:
                return SendOutcome(did, "failed", error=exc.reason)
            except (TimeoutError, httpx.TimeoutException):
                return SendOutcome(did, "retry", error="timed out")
            except (OSError, httpx.TransportError) as exc:
                return SendOutcome(did, "retry", error=f"connection failed: {exc}"[:500])

    async def _post(self, delivery_id: int, target: WebhookTarget) -> SendOutcome:
        assert self._client is not None and target.url and target.secret and target.body
        url = parse_webhook_url(target.url, self.allow_insecure)
        address = await resolve_checked(url, self.allow_insecure, self.resolver)
        timestamp = int(time.time())
        headers = {
            "Host": url.host_header,
            "Content-Type": CAP_MEDIA_TYPE,
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(target.secret, timestamp, target.body),
            DELIVERY_HEADER: str(delivery_id),
        }
        extensions = {}
        if url.scheme == "https" and address != url.host:
            extensions["sni_hostname"] = url.host  # verify the certificate of the name
        request = self._client.build_request("POST", url.url_for(address), content=target.body,
                                             headers=headers, extensions=extensions)
        response = await self._client.send(request, stream=True)
        try:
            answer = b""
            async for chunk in response.aiter_raw():
                answer += chunk
                if len(answer) >= MAX_RESPONSE_BYTES:
                    break
        finally:
            await response.aclose()
        status = response.status_code
        if 200 <= status < 300:
            return SendOutcome(delivery_id, "sent", message_ids=(f"http-{status}",))
        detail = f"HTTP {status} from {url.host}"
        if 300 <= status < 400:
            return SendOutcome(delivery_id, "failed",
                               error=f"{detail}: redirects are not followed")
        if status in RETRY_STATUSES or status >= 500:
            return SendOutcome(delivery_id, "retry", error=detail)
        return SendOutcome(delivery_id, "failed", error=detail)
