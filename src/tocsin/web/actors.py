"""The policy's view of the logged-in operator (``authorities.policy.Actor``)."""

from __future__ import annotations

from fastapi import Request

from tocsin.authorities.access import actor_for
from tocsin.authorities.policy import Actor
from tocsin.web.deps import Operator, engine_of


def acting(request: Request, op: Operator) -> Actor:
    """Who acts in this request: the operator's user, with their authority's facts and
    whether this session passed the second factor (TOTP)."""
    return actor_for(engine_of(request), op.username,
                     second_factor=bool(getattr(op, "second_factor", False)))
