"""Governance use cases: agreements, training records, cooperations, partnerships and
the two-person rule (SPEC F1–F5).

Every function takes the :class:`~tocsin.authorities.policy.Actor` who acts, asks
the policy through ``authorities.access`` and writes its change and the audit
entry in one transaction. Bad input raises ``GovernanceError(field, reason)``;
a refusal raises ``access.Denied`` (audited).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import (
    audited_denials,
    authority_facts,
    partners_in_force,
    require,
)
from tocsin.authorities.models import (
    Authority,
    Cooperation,
    CooperationMember,
    Partnership,
    TrainingRecord,
    User,
)
from tocsin.authorities.policy import AGREEMENTS, MUNICIPALITY, Action, Actor, Target
from tocsin.authorities.services import record_audit
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_

#: Two territories closer than this (WGS84 degrees, about 50–70 m in Belgium) touch:
#: the reference boundaries are simplified, so shared borders are not exact.
NEIGHBOUR_TOLERANCE_DEG = 0.0007
#: The longest an ad-hoc partnership may run before it is proposed again.
MAX_PARTNERSHIP = dt.timedelta(days=366)
TRAINING_TOPICS = ("lbsms",)
NAME_MAX = 200
REASON_MAX = 500


class GovernanceError(InputError):
    """Bad input: ``field`` names what is wrong, ``reason`` says why."""


@dataclass(frozen=True)
class PartnershipInfo:
    """A partnership as pages and the CLI show it; ``state`` is ``proposed``,
    ``accepted``, ``ended`` or ``expired``."""

    id: int
    proposer_id: str
    proposer_name: str
    partner_id: str
    partner_name: str
    reason: str
    ends_at: dt.datetime
    state: str
    proposed_by: str
    accepted_by: str | None


def _authority(s: Session, authority_id: str, field: str = "authority") -> Authority:
    authority = s.get(Authority, authority_id)
    if authority is None:
        raise GovernanceError(field, N_("no authority %(id)s"), code="unknown_authority",
                              id=repr(authority_id))
    return authority


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _name(authority: Authority) -> str:
    """The authority's name in its own first language (Halle, not Hal)."""
    return authority.name(authority.language_list[0])


def territories_touch(a: Authority, b: Authority) -> bool:
    """Whether the territories of ``a`` and ``b`` share a border (within
    ``NEIGHBOUR_TOLERANCE_DEG``)."""
    from tocsin.geo.areas import territory_of

    return bool(shapely.dwithin(territory_of(a), territory_of(b), NEIGHBOUR_TOLERANCE_DEG))


def set_agreement(engine: Engine, actor: Actor, authority_id: str, agreement_type: int,
                  source: str | None = None) -> None:
    """Give ``authority_id`` agreement ``agreement_type`` (0 none, 1 population and
    groups, 2 groups only; F2). Federal operator only."""
    if agreement_type not in AGREEMENTS:
        raise GovernanceError("agreement_type", N_("%(value)s is not one of 0, 1, 2"),
                              code="agreement_unknown", value=repr(agreement_type))
    with audited_denials(engine, source), transaction(engine) as s:
        require(actor, Action.AUTHORITIES_MANAGE, target_id=authority_id)
        authority = _authority(s, authority_id)
        before = authority.agreement_type
        authority.agreement_type = agreement_type
        record_audit(s, actor.username, "authority.agreement", target=authority_id,
                     source=source, detail={"from": before, "to": agreement_type})


def set_two_person_rule(engine: Engine, actor: Actor, authority_id: str, required: bool,
                        source: str | None = None) -> None:
    """Require (or not) a second user's approval of the authority's live alerts."""
    with audited_denials(engine, source), transaction(engine) as s:
        authority = _authority(s, authority_id)
        require(actor, Action.SETTINGS_MANAGE, Target(authority=authority_facts(authority)),
                target_id=authority_id)
        authority.two_person_rule = required
        record_audit(s, actor.username, "authority.two_person_rule", target=authority_id,
                     source=source, detail={"required": required})


def record_training(engine: Engine, actor: Actor, username: str, trained_on: dt.date,
                    trainer: str, topic: str = "lbsms", source: str | None = None) -> int:
    """Record that ``username`` was trained on ``topic`` (F5) by ``trainer`` on
    ``trained_on``; returns the record id. Federal operator only."""
    if topic not in TRAINING_TOPICS:
        raise GovernanceError("topic", N_("%(value)s is not one of %(choices)s"),
                              code="topic_unknown", value=repr(topic),
                              choices=", ".join(TRAINING_TOPICS))
    trainer = trainer.strip()
    if not trainer:
        raise GovernanceError("trainer", N_("name the trainer"), code="trainer_missing")
    if len(trainer) > NAME_MAX:
        raise GovernanceError("trainer", N_("at most %(max)s characters"), code="too_long",
                              max=NAME_MAX)
    if trained_on > utcnow().date():
        raise GovernanceError("trained_on", N_("a training cannot be recorded before it happens"),
                              code="training_in_future")
    with audited_denials(engine, source), transaction(engine) as s:
        require(actor, Action.AUTHORITIES_MANAGE, target_id=username)
        user = s.scalar(sa.select(User).where(User.username == username))
        if user is None:
            raise GovernanceError("username", N_("no user %(name)s"), code="unknown_user",
                                  name=repr(username))
        record = TrainingRecord(user_id=user.id, topic=topic, trained_on=trained_on,
                                trainer=trainer, recorded_by=actor.username)
        s.add(record)
        s.flush()
        record_audit(s, actor.username, "training.record", target=username, source=source,
                     detail={"topic": topic, "trained_on": trained_on.isoformat()})
        return record.id


def create_cooperation(engine: Engine, actor: Actor, name: str, member_ids: list[str],
                       source: str | None = None) -> int:
    """A structural cooperation of at least two municipalities, each in no other
    cooperation (F4); returns its id. Federal operator only."""
    name = name.strip()
    if not name:
        raise GovernanceError("name", N_("name the cooperation"), code="cooperation_name_missing")
    if len(name) > NAME_MAX:
        raise GovernanceError("name", N_("at most %(max)s characters"), code="too_long",
                              max=NAME_MAX)
    members = list(dict.fromkeys(member_ids))
    if len(members) < 2:
        raise GovernanceError("members", N_("a cooperation has at least two municipalities"),
                              code="cooperation_too_small")
    with audited_denials(engine, source), transaction(engine) as s:
        require(actor, Action.AUTHORITIES_MANAGE, target_id=name)
        for aid in members:
            if _authority(s, aid, "members").kind != MUNICIPALITY:
                raise GovernanceError("members", N_("%(id)s is not a municipality"),
                                      code="not_municipality", id=aid)
            if s.get(CooperationMember, aid) is not None:
                raise GovernanceError("members", N_("%(id)s is already in a cooperation"),
                                      code="already_cooperating", id=aid)
        if s.scalar(sa.select(Cooperation.id).where(Cooperation.name == name)):
            raise GovernanceError("name", N_("a cooperation named %(name)s exists"),
                                  code="cooperation_exists", name=repr(name))
        coop = Cooperation(name=name, created_by=actor.username)
        s.add(coop)
        s.flush()
        s.add_all(CooperationMember(authority_id=aid, cooperation_id=coop.id) for aid in members)
        record_audit(s, actor.username, "cooperation.create", target=str(coop.id),
                     source=source, detail={"members": members})
        return coop.id


def propose_partnership(engine: Engine, actor: Actor, partner_id: str, ends_at: dt.datetime,
                        reason: str = "", source: str | None = None) -> int:
    """The actor's municipality proposes an ad-hoc partnership to the neighbouring
    municipality ``partner_id`` until ``ends_at`` (aware); returns its id (F3).

    Raises GovernanceError for a non-neighbour, a non-municipality, an end in the
    past or more than ``MAX_PARTNERSHIP`` ahead, or a partnership already in force.
    """
    now = utcnow()
    if ends_at.tzinfo is None:
        raise GovernanceError("ends_at", N_("give a time zone"), code="time_zone_missing")
    if ends_at <= now:
        raise GovernanceError("ends_at", N_("the end date is in the past"), code="ends_in_past")
    if ends_at - now > MAX_PARTNERSHIP:
        raise GovernanceError("ends_at", N_("at most %(days)s days ahead"), code="ends_too_late",
                              days=MAX_PARTNERSHIP.days)
    reason = reason.strip()
    if len(reason) > REASON_MAX:
        raise GovernanceError("reason", N_("at most %(max)s characters"), code="too_long",
                              max=REASON_MAX)
    with audited_denials(engine, source), transaction(engine) as s:
        own = _authority(s, actor.authority.id)
        require(actor, Action.PARTNERSHIP_MANAGE, Target(authority=authority_facts(own)),
                target_id=partner_id)
        partner = _authority(s, partner_id, "partner")
        if partner.kind != MUNICIPALITY:
            raise GovernanceError("partner", N_("%(id)s is not a municipality"),
                                  code="not_municipality", id=_name(partner))
        if partner.id == own.id:
            raise GovernanceError("partner", N_("a municipality cannot partner with itself"),
                                  code="partner_self")
        if not territories_touch(own, partner):
            raise GovernanceError("partner", N_("%(partner)s does not border %(own)s: "
                                                 "partnerships join neighbours only"),
                                  code="not_neighbours", partner=_name(partner), own=_name(own))
        if partner.id in partners_in_force(s, own.id, now):
            raise GovernanceError("partner", N_("a partnership with it is already in force"),
                                  code="partnership_in_force")
        p = Partnership(proposer_id=own.id, partner_id=partner.id, reason=reason,
                        ends_at=ends_at, proposed_by=actor.username)
        s.add(p)
        s.flush()
        record_audit(s, actor.username, "partnership.propose", target=str(p.id), source=source,
                     detail={"partner_id": partner.id, "ends_at": ends_at.isoformat()})
        return p.id


def _partnership(s: Session, actor: Actor, partnership_id: int) -> Partnership:
    """The partnership, if the actor's authority is one of its two sides (else not found)."""
    p = s.get(Partnership, partnership_id)
    if p is None or (actor.role != "federal_operator"
                     and actor.authority.id not in (p.proposer_id, p.partner_id)):
        raise GovernanceError("partnership", N_("no partnership %(id)s"),
                              code="unknown_partnership", id=partnership_id)
    return p


def accept_partnership(engine: Engine, actor: Actor, partnership_id: int,
                       source: str | None = None) -> None:
    """The partner municipality's admin accepts a proposed partnership (F3)."""
    with audited_denials(engine, source), transaction(engine) as s:
        p = _partnership(s, actor, partnership_id)
        partner = _authority(s, p.partner_id)
        if actor.authority.id == p.proposer_id:
            raise GovernanceError("partnership", N_("the partner, %(partner)s, must accept it: its "
                                                     "admin accepts, not the proposer"),
                                  code="proposer_accepts", partner=_name(partner))
        require(actor, Action.PARTNERSHIP_MANAGE, Target(authority=authority_facts(partner)),
                target_id=str(partnership_id))
        if p.accepted_at is not None:
            raise GovernanceError("partnership", N_("already accepted"), code="already_accepted")
        if p.ended_at is not None or _aware(p.ends_at) <= utcnow():
            raise GovernanceError("partnership", N_("it has ended; propose a new one"),
                                  code="partnership_ended")
        p.accepted_by, p.accepted_at = actor.username, utcnow()
        record_audit(s, actor.username, "partnership.accept", target=str(p.id), source=source)


def end_partnership(engine: Engine, actor: Actor, partnership_id: int,
                    source: str | None = None) -> None:
    """Either side ends the partnership now (or withdraws a proposal)."""
    with audited_denials(engine, source), transaction(engine) as s:
        p = _partnership(s, actor, partnership_id)
        own = _authority(s, actor.authority.id)
        require(actor, Action.PARTNERSHIP_MANAGE, Target(authority=authority_facts(own)),
                target_id=str(partnership_id))
        if p.ended_at is not None:
            raise GovernanceError("partnership", N_("already ended"), code="already_ended")
        p.ended_by, p.ended_at = actor.username, utcnow()
        record_audit(s, actor.username, "partnership.end", target=str(p.id), source=source)


def list_partnerships(engine: Engine, actor: Actor) -> list[PartnershipInfo]:
    """The partnerships of the actor's authority (all of them for the federal
    operator), newest first."""
    now = utcnow()
    with read_transaction(engine) as s:
        q = sa.select(Partnership).order_by(Partnership.id.desc())
        if actor.role != "federal_operator":
            q = q.where(sa.or_(Partnership.proposer_id == actor.authority.id,
                               Partnership.partner_id == actor.authority.id))
        out = []
        for p in s.scalars(q):
            a, b = s.get(Authority, p.proposer_id), s.get(Authority, p.partner_id)
            assert a is not None and b is not None  # foreign keys
            state = ("ended" if p.ended_at else "expired" if _aware(p.ends_at) <= now
                     else "accepted" if p.accepted_at else "proposed")
            out.append(PartnershipInfo(p.id, a.id, a.name(a.language_list[0]), b.id,
                                       b.name(b.language_list[0]), p.reason,
                                       _aware(p.ends_at), state, p.proposed_by, p.accepted_by))
        return out


@dataclass(frozen=True)
class AuthorityRow:
    """One authority on the federal operator's page."""

    id: str
    kind: str
    name: str
    parent_id: str | None
    agreement_type: int
    two_person_rule: bool
    cooperation: str | None


@dataclass(frozen=True)
class TrainingInfo:
    """A recorded training."""

    id: int
    username: str
    authority_id: str
    topic: str
    trained_on: dt.date
    trainer: str
    recorded_by: str


@dataclass(frozen=True)
class CooperationInfo:
    """A structural cooperation and its members (id, name)."""

    id: int
    name: str
    members: list[tuple[str, str]]


@dataclass(frozen=True)
class GovernanceOverview:
    """What the governance page shows an actor: their authority's settings, its
    partnerships and neighbours, and for the federal operator every authority,
    training record and cooperation."""

    authority: AuthorityRow
    partnerships: list[PartnershipInfo]
    neighbours: list[tuple[str, str]]
    authorities: list[AuthorityRow]
    training: list[TrainingInfo]
    cooperations: list[CooperationInfo]


def _row(a: Authority, coops: dict[str, str]) -> AuthorityRow:
    return AuthorityRow(a.id, a.kind, a.name(a.language_list[0]), a.parent_id, a.agreement_type,
                        bool(a.two_person_rule), coops.get(a.id))


def _cooperation_names(s: Session) -> dict[str, str]:
    rows = s.execute(sa.select(CooperationMember.authority_id, Cooperation.name).join(
        Cooperation, Cooperation.id == CooperationMember.cooperation_id)).all()
    return {aid: name for aid, name in rows}


def neighbours(s: Session, authority: Authority) -> list[tuple[str, str]]:
    """The municipalities bordering ``authority`` (a municipality), as (id, name),
    sorted by name; empty for provinces and the federal authority."""
    from tocsin.geo.areas import territory_of

    if authority.kind != MUNICIPALITY:
        return []
    t = NEIGHBOUR_TOLERANCE_DEG
    near = s.scalars(sa.select(Authority).where(
        Authority.kind == MUNICIPALITY, Authority.id != authority.id,
        Authority.min_lon <= authority.max_lon + t, Authority.max_lon >= authority.min_lon - t,
        Authority.min_lat <= authority.max_lat + t, Authority.max_lat >= authority.min_lat - t))
    own = territory_of(authority)
    language = authority.language_list[0]
    found = [(m.id, m.name(language)) for m in near if shapely.dwithin(own, territory_of(m), t)]
    return sorted(found, key=lambda x: x[1])


def governance_overview(engine: Engine, actor: Actor) -> GovernanceOverview:
    """Everything the governance page shows ``actor`` (see :class:`GovernanceOverview`)."""
    federal = actor.role == "federal_operator"
    with read_transaction(engine) as s:
        coops = _cooperation_names(s)
        own = _authority(s, actor.authority.id)
        rows: list[AuthorityRow] = []
        training: list[TrainingInfo] = []
        cooperations: list[CooperationInfo] = []
        if federal:
            rows = [_row(a, coops) for a in s.scalars(sa.select(Authority).order_by(
                sa.case({"federal": 0, "province": 1}, value=Authority.kind, else_=2),
                Authority.id))]
            for r, u in s.execute(sa.select(TrainingRecord, User).join(
                    User, User.id == TrainingRecord.user_id).where(
                    TrainingRecord.revoked_at.is_(None)).order_by(TrainingRecord.id.desc())):
                training.append(TrainingInfo(r.id, u.username, u.authority_id, r.topic,
                                             r.trained_on, r.trainer, r.recorded_by))
            names = {a.id: a.name for a in rows}
            for c in s.scalars(sa.select(Cooperation).order_by(Cooperation.name)):
                ids = s.scalars(sa.select(CooperationMember.authority_id).where(
                    CooperationMember.cooperation_id == c.id).order_by(
                    CooperationMember.authority_id)).all()
                cooperations.append(CooperationInfo(c.id, c.name,
                                                    [(i, names.get(i, i)) for i in ids]))
        near = neighbours(s, own)
        own_row = _row(own, coops)
    return GovernanceOverview(own_row, list_partnerships(engine, actor), near, rows, training,
                              cooperations)


@dataclass(frozen=True)
class ActingFor:
    """The federal operator on duty acting for ``authority_id`` (``name``), at the
    request recorded in ``request`` (``{"requested_by", "channel", "note",
    "requested_at"}``): carried by the session, recorded on every campaign."""

    authority_id: str
    name: str
    request: dict[str, str]


ON_BEHALF_CHANNELS = ("phone", "e-mail", "radio", "in person", "other")


def start_acting_for(engine: Engine, actor: Actor, authority_id: str, requested_by: str,
                     channel: str = "phone", note: str = "",
                     source: str | None = None) -> ActingFor:
    """Check that ``actor`` may prepare campaigns for ``authority_id`` on its request
    (``policy``: CAMPAIGN_PREPARE; the federal operator for any authority) and record
    who asked. Raises ``GovernanceError`` naming the field, ``Denied`` (audited).
    Audited as ``authority.acting_for``."""
    requested_by = " ".join(requested_by.split())
    if not requested_by:
        raise GovernanceError("requested_by", N_("record who asked (name and function)"),
                              code="requester_missing")
    if len(requested_by) > NAME_MAX:
        raise GovernanceError("requested_by", N_("at most %(max)s characters"), code="too_long",
                              max=NAME_MAX)
    if channel not in ON_BEHALF_CHANNELS:
        raise GovernanceError("channel", N_("one of %(choices)s"), code="channel_unknown",
                              choices=", ".join(ON_BEHALF_CHANNELS))
    note = note.strip()
    if len(note) > REASON_MAX:
        raise GovernanceError("note", N_("at most %(max)s characters"), code="too_long",
                              max=REASON_MAX)
    with audited_denials(engine, source), transaction(engine) as s:
        authority = _authority(s, authority_id.strip())
        if authority.id == actor.authority.id:
            raise GovernanceError("authority", N_("this is your own authority"),
                                  code="own_authority")
        require(actor, Action.CAMPAIGN_PREPARE, Target(authority=authority_facts(authority)),
                authority.id)
        request = {"requested_by": requested_by, "channel": channel,
                   "requested_at": utcnow().isoformat(timespec="seconds")}
        if note:
            request["note"] = note
        record_audit(s, actor.username, "authority.acting_for", target=authority.id,
                     source=source, on_behalf_of=authority.id, detail={"channel": channel})
        return ActingFor(authority.id, authority.name(authority.language_list[0]), request)
