"""The registration form's challenge (issue 10 point 3, F36): a small proof of work.

The form carries a signed, timestamped ``challenge`` (``v1.<unix time>.<nonce>.<mac>``,
HMAC-SHA-256 under the deployment secret). A tiny script (``static/portal.js``) finds a
``solution`` — a decimal counter such that SHA-256(``challenge:solution``) starts with
``difficulty`` zero bits (hashcash; about 2**difficulty hashes, a fraction of a second
on a phone, but a real cost for a script asking for thousands of codes). Without
JavaScript the form still works: a challenge at least ``no_js_delay`` seconds old is
accepted without a solution — the delay is the cost (a person takes longer than that to
type a number). Each challenge is used once (its nonce is recorded with the request by
``subscribers.verification``). Pure functions: no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

DIFFICULTY = 14
NO_JS_DELAY_S = 8
MAX_AGE_S = 30 * 60


def _mac(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), f"challenge|{body}".encode(), hashlib.sha256).hexdigest()[:32]


def issue(secret: str, now: dt.datetime) -> str:
    """A new challenge issued at ``now`` (aware UTC)."""
    body = f"v1.{int(now.timestamp())}.{secrets.token_hex(8)}"
    return f"{body}.{_mac(secret, body)}"


def leading_zero_bits(digest: bytes) -> int:
    """The number of leading zero bits of ``digest``."""
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solves(challenge: str, solution: str, difficulty: int = DIFFICULTY) -> bool:
    """True when SHA-256(``challenge:solution``) has ``difficulty`` leading zero bits."""
    if not solution.isdigit() or len(solution) > 12:
        return False
    digest = hashlib.sha256(f"{challenge}:{solution}".encode()).digest()
    return leading_zero_bits(digest) >= difficulty


def solve(challenge: str, difficulty: int = DIFFICULTY) -> str:
    """The first solution of ``challenge`` (what the script computes; used by tests)."""
    counter = 0
    while not solves(challenge, str(counter), difficulty):
        counter += 1
    return str(counter)


def check(secret: str, challenge: str, solution: str, now: dt.datetime, *,
          difficulty: int = DIFFICULTY, no_js_delay: int = NO_JS_DELAY_S,
          max_age: int = MAX_AGE_S) -> str:
    """The challenge's nonce when it is genuine, fresh, and solved or old enough.

    Raises InputError(``challenge``) when it is missing, forged or too old (reload the
    page), or neither solved nor ``no_js_delay`` seconds old (code ``challenge_wait``,
    param ``seconds``: wait that long and send again).
    """
    parts = challenge.split(".") if isinstance(challenge, str) and len(challenge) < 200 else []
    if len(parts) != 4 or parts[0] != "v1" or not parts[1].isdigit():
        raise InputError("challenge", N_("the form is incomplete; reload the page and send "
                                         "it again"), code="challenge_missing")
    body = ".".join(parts[:3])
    if not hmac.compare_digest(_mac(secret, body), parts[3]):
        raise InputError("challenge", N_("the form is incomplete; reload the page and send "
                                         "it again"), code="challenge_missing")
    age = now.timestamp() - int(parts[1])
    if age > max_age or age < -60:
        raise InputError("challenge", N_("the form has expired; reload the page and send it "
                                         "again"), code="challenge_expired")
    if not solves(challenge, solution or "", difficulty) and age < no_js_delay:
        raise InputError("challenge", N_("please wait %(seconds)s seconds, then send the form "
                                         "again"), code="challenge_wait",
                         seconds=int(no_js_delay - age + 0.999))
    return parts[2]
