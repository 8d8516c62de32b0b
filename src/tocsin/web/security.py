"""Web security primitives: cookie signing key, CSRF tokens, login rate limit.

CSRF protection uses a per-session synchroniser token (OWASP CSRF Prevention
Cheat Sheet): every POST form carries ``csrf_token``, every JSON call the
``X-CSRF-Token`` header, both compared in constant time with the token kept in
the signed session cookie.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from pathlib import Path

from starlette.requests import Request

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
    """The session's CSRF token, created on first use."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return str(token)


def csrf_valid(request: Request, submitted: str | None) -> bool:
    """True when ``submitted`` equals the session's CSRF token (constant-time)."""
    expected = request.session.get(CSRF_SESSION_KEY)
    if not expected or not submitted:
        return False
    return hmac.compare_digest(str(expected), submitted)


class LoginRateLimiter:
    """At most ``max_failures`` failed logins per (username, IP) in ``window_s`` seconds.

    In-process memory: each web process counts on its own, which bounds a
    password-guessing attacker to ``max_failures`` x processes per window.
    """

    def __init__(self, max_failures: int = 10, window_s: float = 15 * 60) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def blocked(self, username: str, ip: str) -> bool:
        """True when this username+IP has used up its failures in the window."""
        key = (username.strip().lower(), ip)
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.max_failures

    def record_failure(self, username: str, ip: str) -> None:
        """Count one failed login for this username+IP."""
        key = (username.strip().lower(), ip)
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def reset(self, username: str, ip: str) -> None:
        """Forget the failures of this username+IP (after a successful login)."""
        with self._lock:
            self._failures.pop((username.strip().lower(), ip), None)
