"""Access functions: fetch what a use case acts on, with the permission check built in.

Services never call :func:`policy.decide` on facts they assembled by hand; they
call these (Zulip's ``access_…`` habit), so that a service cannot forget the
check and every service asks with the same facts:

- :func:`load_actor` / :func:`cli_actor`: who acts, with their authority's
  agreement, cooperation and training facts;
- :func:`require`: raise :class:`Denied` unless the policy allows;
- :func:`targetable_territory`: the union of the territories the actor may
  target now (own, cooperation members, partners in force; ``None`` = Belgium);
- :func:`audited_denials`: record every denial in the audit log, in its own
  transaction, after the refused one rolled back.

Objects of an authority the actor may not even read are reported as not found
(HTTP 404), never as forbidden, so that guessing ids confirms nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.models import (
    Authority,
    CooperationMember,
    Partnership,
    TrainingRecord,
    User,
)
from tocsin.authorities.policy import (
    FEDERAL,
    Action,
    Actor,
    AuthorityFacts,
    Decision,
    Target,
    decide,
    targetable,
)
from tocsin.core.db import utcnow


class Denied(Exception):
    """The policy refused: ``rule`` is the stable code, ``reason`` the words an
    operator reads (HTTP 403; the CLI exits 1 with the same words).

    ``hidden``: the actor may not even see the object, so it is answered as not
    found (HTTP 404) and guessing ids confirms nothing; ``field`` names the input
    the refusal is about (``area`` for a territory refusal), when there is one.
    """

    def __init__(self, actor: Actor, action: Action, decision: Decision,
                 target_id: str | None = None, *, hidden: bool = False,
                 field: str | None = None) -> None:
        super().__init__(f"not allowed: {decision.reason}")
        self.actor = actor
        self.action = action
        self.rule = decision.rule
        self.reason = decision.reason
        # for the web layer's translation (docs/decisions/0018)
        self.code = decision.rule
        self.template = decision.template or decision.reason
        self.params = dict(decision.params)
        self.target_id = target_id
        self.hidden = hidden
        self.field = field


def authority_facts(authority: Authority) -> AuthorityFacts:
    """The policy's view of an authority row."""
    return AuthorityFacts(id=authority.id, kind=authority.kind, parent_id=authority.parent_id,
                          agreement_type=authority.agreement_type)


def facts_of(session: Session, authority_id: str) -> AuthorityFacts:
    """The policy's view of authority ``authority_id``; raises LookupError."""
    authority = session.get(Authority, authority_id)
    if authority is None:
        raise LookupError(f"authority_id: no authority {authority_id!r}")
    return authority_facts(authority)


def cooperation_of(session: Session, authority_id: str) -> frozenset[str]:
    """Ids of the other members of ``authority_id``'s structural cooperation (F4)."""
    coop = sa.select(CooperationMember.cooperation_id).where(
        CooperationMember.authority_id == authority_id).scalar_subquery()
    rows = session.scalars(sa.select(CooperationMember.authority_id).where(
        CooperationMember.cooperation_id == coop,
        CooperationMember.authority_id != authority_id))
    return frozenset(rows)


def partners_in_force(session: Session, authority_id: str,
                      now: dt.datetime | None = None) -> frozenset[str]:
    """Ids of the municipalities in an accepted, unended partnership with
    ``authority_id`` whose end date is after ``now`` (F3)."""
    now = now or utcnow()
    p = Partnership
    rows = session.execute(sa.select(p.proposer_id, p.partner_id).where(
        sa.or_(p.proposer_id == authority_id, p.partner_id == authority_id),
        p.accepted_at.is_not(None), p.ended_at.is_(None), p.ends_at > now)).all()
    return frozenset(b if a == authority_id else a for a, b in rows)


def _trained(session: Session, user_id: int, topic: str) -> bool:
    return session.scalar(sa.select(sa.func.count()).select_from(TrainingRecord).where(
        TrainingRecord.user_id == user_id, TrainingRecord.topic == topic,
        TrainingRecord.revoked_at.is_(None))) != 0


def actor_of_user(session: Session, user: User, *, second_factor: bool = False) -> Actor:
    """The :class:`Actor` for ``user`` (``second_factor``: the session passed TOTP)."""
    authority = session.get(Authority, user.authority_id)
    assert authority is not None  # foreign key
    return Actor(username=user.username, role=user.role, authority=authority_facts(authority),
                 cooperation=cooperation_of(session, authority.id),
                 lbsms_trained=_trained(session, user.id, "lbsms"),
                 second_factor=second_factor, user_id=user.id)


def load_actor(session: Session, username: str, *, second_factor: bool = False) -> Actor:
    """The :class:`Actor` of user ``username``; raises LookupError naming ``username``."""
    user = session.scalar(sa.select(User).where(User.username == username))
    if user is None:
        raise LookupError(f"username: no user {username!r}")
    return actor_of_user(session, user, second_factor=second_factor)


def cli_actor(session: Session, authority_id: str) -> Actor:
    """Who acts from the command line for ``authority_id``.

    Shell access to the server is the platform operator's: the command acts with
    the rights of that authority's admin (the federal operator for ``BE``), so the
    territory and agreement rules hold exactly as on the web, and the shell
    counts as the second factor. Raises LookupError naming ``authority``.
    """
    authority = session.get(Authority, authority_id)
    if authority is None:
        raise LookupError(f"authority: no authority {authority_id!r}")
    role = "federal_operator" if authority.kind == FEDERAL else "admin"
    return Actor(username="cli", role=role, authority=authority_facts(authority),
                 cooperation=cooperation_of(session, authority.id),
                 lbsms_trained=True, second_factor=True)


def require(actor: Actor, action: Action, target: Target | None = None,
            target_id: str | None = None) -> None:
    """Raise :class:`Denied` unless the policy allows ``actor`` to do ``action``."""
    decision = decide(actor, action, target)
    if not decision:
        raise Denied(actor, action, decision, target_id)


def readable_authority_ids(session: Session, actor: Actor) -> frozenset[str] | None:
    """Ids of the authorities whose campaigns ``actor`` may read; ``None`` = all (the
    federal operator). Own, cooperation members and, for a province, its
    municipalities (``policy``: CAMPAIGN_READ)."""
    if actor.role == "federal_operator" and actor.authority.kind == FEDERAL:
        return None
    ids = {actor.authority.id, *actor.cooperation}
    if actor.authority.kind == "province":
        ids.update(session.scalars(sa.select(Authority.id).where(
            Authority.parent_id == actor.authority.id)))
    return frozenset(ids)


def may(actor: Actor, action: Action, target: Target | None = None) -> bool:
    """Whether the policy allows it (to show or hide a button; never to skip a check)."""
    return decide(actor, action, target).allowed


def targetable_territory(session: Session, authority_id: str) -> BaseGeometry | None:
    """The union of the territories a campaign of ``authority_id`` may target now
    (its own, its cooperation's members, its partners in force), WGS84; ``None``
    means all of Belgium (the federal authority, which still never targets
    outside it). Raises LookupError."""
    from tocsin.geo.areas import territory_of

    facts = facts_of(session, authority_id)
    ids = targetable(facts, partners_in_force(session, authority_id),
                     cooperation_of(session, authority_id))
    if ids is None:
        return None
    rows = session.scalars(sa.select(Authority).where(Authority.id.in_(sorted(ids)))).all()
    shapes = [territory_of(a) for a in rows]
    return shapes[0] if len(shapes) == 1 else shapely.union_all(shapes)


@contextmanager
def audited_denials(engine: Engine, source: str | None = None) -> Iterator[None]:
    """Write an ``access.denied`` audit entry for a :class:`Denied` raised inside,
    in its own transaction (the refused one has rolled back), then re-raise."""
    try:
        yield
    except Denied as exc:
        from tocsin.authorities.services import log_action

        log_action(engine, exc.actor.username, "access.denied", target=exc.target_id,
                   source=source, detail={"action": str(exc.action), "rule": exc.rule,
                                          "authority_id": exc.actor.authority.id})
        raise


def command_line_actor(engine: Engine, authority_id: str) -> Actor:
    """:func:`cli_actor` in its own read transaction (for CLI commands)."""
    from tocsin.core.db import read_transaction

    with read_transaction(engine) as s:
        return cli_actor(s, authority_id)


def actor_for(engine: Engine, username: str, *, second_factor: bool = False) -> Actor:
    """:func:`load_actor` in its own read transaction (for web requests)."""
    from tocsin.core.db import read_transaction

    with read_transaction(engine) as s:
        return load_actor(s, username, second_factor=second_factor)
