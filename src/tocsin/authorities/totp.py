"""TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps), pure functions.

A code is accepted for the current step and one step either side (clock skew,
RFC 6238 §5.2), and only for a step later than the last one accepted for that
user, so a code seen once (over a shoulder, in a proxy log) is never accepted
again (RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt").
"""

from __future__ import annotations

import hmac
import time

import pyotp
import segno

STEP_S = 30
ISSUER = "Tocsin"


def new_secret() -> str:
    """A new random shared secret, base32 (160 bits, RFC 4226 §4 R6)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://totp/…`` URI that authenticator apps read from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an inline ``<svg>`` element (no external resource)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2))


def code_at(secret: str, step: int) -> str:
    """The 6-digit code of time step ``step`` (Unix time // 30)."""
    return str(pyotp.TOTP(secret).at(step * STEP_S))


def accepted_step(secret: str, code: str, last_step: int | None,
                  now: float | None = None) -> int | None:
    """The time step that ``code`` matches, or ``None``.

    ``code``: what the user typed (spaces ignored); ``last_step``: the last step
    accepted for this user (``None``: none yet); ``now``: Unix time in seconds.
    A step at or before ``last_step`` is refused (replay).
    """
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isascii() or not digits.isdigit():
        return None
    current = int((time.time() if now is None else now) // STEP_S)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(code_at(secret, step).encode(), digits.encode()):
            return step
    return None
