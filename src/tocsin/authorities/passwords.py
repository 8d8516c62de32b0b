"""Password policy (pure rules): length, not the username, not a common password.

Follows NIST SP 800-63B §5.1.1.2: a minimum length (12 characters here), no
composition rules, and a check against a list of commonly used or breached
passwords, shipped offline in ``data/common-passwords.txt`` (its source and
licence are in ``data/README.md``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

MIN_LENGTH = 12
#: Longer inputs are refused before hashing: Argon2 of megabytes is a denial of service.
MAX_LENGTH = 1024


class PasswordPolicyError(ValueError):
    """A password the policy refuses; ``field`` is ``"password"``, ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"password: {reason}")
        self.field = "password"
        self.reason = reason


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, case-folded (comment lines start with ``#``)."""
    text = resources.files("tocsin.authorities").joinpath(
        "data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines()
                     if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str = "") -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is acceptable for ``username``.

    Rules: at least 12 and at most 1,024 characters; neither the username nor
    a password containing it (case-insensitive); not in the common-password
    list, also after removing trailing digits and punctuation ("Password1234!").
    """
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"at least {MIN_LENGTH} characters, got {len(password)}")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"at most {MAX_LENGTH} characters")
    folded = password.casefold()
    name = username.strip().casefold()
    if name and (name in folded or folded in name):
        raise PasswordPolicyError("must not be or contain the username")
    common = common_passwords()
    stem = folded.rstrip("0123456789!?.@#$%&*-_ ")
    if folded in common or stem in common or len(set(folded)) <= 2:
        raise PasswordPolicyError("too common: it is on the list of passwords attackers "
                                  "try first; choose a few unrelated words")
