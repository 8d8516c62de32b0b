"""Password policy (pure rules): length, not the username, not a common password.

Follows NIST SP 800-63B §5.1.1.2: a minimum length (12 characters here), no
composition rules, and a check against a list of commonly used or breached
passwords, shipped offline in ``data/common-passwords.txt`` (its source and
licence are in ``data/README.md``).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

MIN_LENGTH = 12
#: Longer inputs are refused before hashing: Argon2 of megabytes is a denial of service.
MAX_LENGTH = 1024


class PasswordPolicyError(InputError):
    """A password the policy refuses: an :class:`~tocsin.core.errors.InputError` of field
    ``password`` whose ``code`` says which rule (``password_short``, ``password_long``,
    ``password_username``, ``password_common``)."""

    def __init__(self, reason: str, *, code: str, **params: Any) -> None:
        super().__init__("password", reason, code=code, **params)


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
        raise PasswordPolicyError(N_("at least %(minimum)s characters, got %(length)s"),
                                  code="password_short", minimum=MIN_LENGTH,
                                  length=len(password))
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(N_("at most %(maximum)s characters"), code="password_long",
                                  maximum=MAX_LENGTH)
    folded = password.casefold()
    name = username.strip().casefold()
    if name and (name in folded or folded in name):
        raise PasswordPolicyError(N_("must not be or contain the username"),
                                  code="password_username")
    common = common_passwords()
    stem = folded.rstrip("0123456789!?.@#$%&*-_ ")
    if folded in common or stem in common or len(set(folded)) <= 2:
        raise PasswordPolicyError(N_("too common: it is on the list of passwords attackers "
                                     "try first; choose a few unrelated words"),
                                  code="password_common")
