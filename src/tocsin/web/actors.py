"""The policy's view of the logged-in operator (``authorities.policy.Actor``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from tocsin.authorities.access import actor_for
from tocsin.authorities.policy import Actor
from tocsin.web.deps import Operator, engine_of


def acting(request: Request, op: Operator) -> Actor:
    """Who acts in this request: the operator's user, with their authority's facts and
    whether this session passed the second factor (TOTP)."""
    return actor_for(engine_of(request), op.username,
                     second_factor=bool(getattr(op, "second_factor", False)))


ACTING_KEY = "acting_for"


def acting_for(request: Request, op: Operator) -> dict[str, Any] | None:
    """The federal operator's "acting for" of this session (``authority_id``, ``name``,
    ``request``), or None. Kept in the signed session cookie with the user it belongs
    to; ignored for anyone else, so a later login in the same browser never inherits it."""
    data = request.session.get(ACTING_KEY)
    if (not isinstance(data, dict) or data.get("user") != op.username
            or op.role != "federal_operator"):
        return None
    return data


def set_acting_for(request: Request, op: Operator, authority_id: str, name: str,
                   on_behalf_request: dict[str, str]) -> None:
    """Remember in the session that ``op`` acts for ``authority_id``."""
    request.session[ACTING_KEY] = {"user": op.username, "authority_id": authority_id,
                                   "name": name, "request": on_behalf_request}


def stop_acting_for(request: Request) -> None:
    """Back to the operator's own authority."""
    request.session.pop(ACTING_KEY, None)


def authority_of(request: Request, op: Operator) -> str:
    """The authority this request works for: the one acted for, else the operator's."""
    data = acting_for(request, op)
    return str(data["authority_id"]) if data else op.authority_id
