"""Who may do what, where: the one place where Tocsin decides (SPEC F1–F5, F34).

Pure rules: no I/O, no database, no framework. Services gather the facts
(``Actor``, ``AuthorityFacts``, the partnerships and cooperations in force) and
ask :func:`decide`; the access functions in ``authorities.access`` fetch what a
use case acts on with the decision built in, so that a service cannot forget it.
Web routes and the CLI never decide: they render the ``Denied`` a service raises
(HTTP 403 naming the rule; the CLI exits 1 with the same words).

The rules, from the Belgian national alerting service's agreements (see
``docs/permissions.md`` for the full matrix):

- Hierarchy (F1): federal > province > municipality.
- Agreements (F2): type 1 = population and group alerting (authorities legally
  bound to warn); type 2 = group alerting only (never an area); none (0) = may
  log in and read, never prepare or send.
- Territory (F3): the federal authority targets anywhere in Belgium; a province
  anywhere in its municipalities; a municipality in its own territory and, during
  an accepted partnership with a neighbouring municipality, in its partner's.
  Provinces have no partnerships. Nothing is targeted outside Belgium.
- Cooperation (F4): the members of a structural cooperation act as one: a user
  of any member reads and sends for every member.
- Roles: ``federal_operator`` (any authority, on its behalf), ``admin`` (an
  operator who also manages the authority's users and settings), ``operator``
  (prepares, launches, follows up), ``viewer`` (reads only).
- Location-based SMS (F5): trained users (training recorded by the federal
  operator) of type-1 authorities only.
- Two-person rule: nobody approves their own campaign.
- Live alerts need a second factor (TOTP) on the session that launches them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from tocsin.core.i18n import N_

FEDERAL = "federal"
PROVINCE = "province"
MUNICIPALITY = "municipality"

ROLES = ("federal_operator", "admin", "operator", "viewer")
#: Roles that prepare, launch and follow up campaigns.
SENDER_ROLES = frozenset({"federal_operator", "admin", "operator"})
#: Roles that may launch live alerts: their sessions need a second factor.
LIVE_SENDER_ROLES = SENDER_ROLES

AGREEMENT_NONE, AGREEMENT_POPULATION, AGREEMENT_GROUPS = 0, 1, 2
AGREEMENTS = {AGREEMENT_NONE: "none", AGREEMENT_POPULATION: "type 1 (population and groups)",
              AGREEMENT_GROUPS: "type 2 (groups only)"}


class Action(StrEnum):
    """Every use case that asks "who may?". A new service use case adds a member here
    and its rows in the authorization matrix (tests/test_permissions_matrix.py)."""

    CAMPAIGN_READ = "campaign.read"
    CAMPAIGN_PREPARE = "campaign.prepare"
    CAMPAIGN_LAUNCH = "campaign.launch"
    CAMPAIGN_APPROVE = "campaign.approve"
    CAMPAIGN_UPDATE = "campaign.update"
    CAMPAIGN_CANCEL = "campaign.cancel"
    REPORT_READ = "report.read"
    USERS_MANAGE = "users.manage"
    SUBSCRIBERS_MANAGE = "subscribers.manage"
    TEMPLATES_MANAGE = "templates.manage"
    PARTNERSHIP_MANAGE = "partnerships.manage"
    GATEWAY_KEYS_MANAGE = "gateway_keys.manage"
    LBSMS_USE = "lbsms.use"
    AUTHORITIES_MANAGE = "authorities.manage"
    SETTINGS_MANAGE = "settings.manage"
    AUDIT_READ = "audit.read"
    CONTACTS_MANAGE = "contacts.manage"
    CONTACTS_READ = "contacts.read"


@dataclass(frozen=True)
class AuthorityFacts:
    """What the rules need to know of an authority.

    ``kind``: ``federal`` | ``province`` | ``municipality``; ``parent_id``: the
    province of a municipality (``None`` for the federal authority; Brussels
    municipalities have the Brussels-Capital Region ``04000`` as parent, which the
    rules treat as a province); ``agreement_type``: 0, 1 or 2.
    """

    id: str
    kind: str
    parent_id: str | None
    agreement_type: int = AGREEMENT_POPULATION


@dataclass(frozen=True)
class Actor:
    """Who acts: a user (``role`` one of ``ROLES``) of ``authority``.

    ``cooperation``: ids of every authority in a structural cooperation with the
    actor's own (empty when none). ``lbsms_trained``: the federal operator
    recorded the user's location-based SMS training. ``second_factor``: the
    session that acts passed TOTP.
    """

    username: str
    role: str
    authority: AuthorityFacts
    cooperation: frozenset[str] = frozenset()
    lbsms_trained: bool = False
    second_factor: bool = False
    user_id: int | None = None


@dataclass(frozen=True)
class Decision:
    """The answer: ``allowed``; when denied, ``rule`` is a stable code (for
    translations and the audit log) and ``reason`` the operator-readable words."""

    allowed: bool
    rule: str = ""
    reason: str = ""
    #: ``reason``'s English template (a msgid) and its parameters, for the web layer to
    #: translate (docs/decisions/0018); ``reason`` is the template filled in.
    template: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return self.allowed


ALLOW = Decision(True)


def _deny(rule: str, template: str, **params: str) -> Decision:
    return Decision(False, rule, template % params if params else template, template,
                    tuple(sorted(params.items())))


@dataclass(frozen=True)
class Target:
    """What an action is about.

    ``authority``: the authority that owns the object (a campaign's, a user's,
    a template's); ``None`` for platform-wide objects (gateway keys,
    authorities, agreements). ``partners``: ids of authorities in an accepted,
    unexpired partnership with the actor's authority. ``environment``: of the
    campaign (``live`` | ``simulation``). ``prepared_by``: the user who prepared
    the campaign (two-person rule). ``group_only``: the campaign targets groups
    and contact lists, not an area. ``target_role``: for user management, the
    role given or held.
    """

    authority: AuthorityFacts | None = None
    partners: frozenset[str] = field(default_factory=frozenset)
    environment: str = "simulation"
    prepared_by: str | None = None
    group_only: bool = False
    target_role: str | None = None


# ----------------------------------------------------------------------------- relations


def _is_federal(actor: Actor) -> bool:
    return actor.role == "federal_operator" and actor.authority.kind == FEDERAL


def _own(actor: Actor, authority: AuthorityFacts) -> bool:
    """The actor's own authority, or a member of the actor's structural cooperation."""
    return authority.id == actor.authority.id or authority.id in actor.cooperation


def _oversees(actor: Actor, authority: AuthorityFacts) -> bool:
    """The actor's authority is the province (or region) over ``authority``."""
    return actor.authority.kind == PROVINCE and authority.parent_id == actor.authority.id


def targetable(authority: AuthorityFacts, partners: Collection[str] = (),
               cooperation: Collection[str] = ()) -> frozenset[str] | None:
    """Ids of the authorities whose territories a campaign of ``authority`` may
    target (F3); ``None`` means all of Belgium (the federal authority).

    Territory follows the campaign's authority, not the user: the federal operator
    acting on behalf of a municipality targets that municipality's territory. A
    province's own territory covers its municipalities. A municipality adds its
    structural cooperation's members (``cooperation``) and, during an accepted
    partnership, its partners in force (``partners``). Provinces have no
    partnerships.
    """
    if authority.kind == FEDERAL:
        return None
    ids = {authority.id, *cooperation}
    if authority.kind == MUNICIPALITY:
        ids.update(partners)
    return frozenset(ids)


def _may_send(actor: Actor, authority: AuthorityFacts, group_only: bool) -> Decision:
    """Agreement rules (F2) for preparing or launching a campaign of ``authority``."""
    if actor.role not in SENDER_ROLES:
        return _deny("role_read_only", N_("the %(role)s role cannot prepare or send campaigns"),
                     role=actor.role)
    if authority.agreement_type == AGREEMENT_NONE:
        return _deny("no_agreement", N_("this authority has no agreement: it cannot send"))
    if authority.agreement_type == AGREEMENT_GROUPS and not group_only:
        return _deny("agreement_groups_only", N_("a type-2 agreement sends only to groups and "
                     "contact lists, never to an area"))
    return ALLOW


def _campaign_scope(actor: Actor, target: Target, *, read: bool) -> Decision:
    authority = target.authority
    if authority is None:
        return _deny("no_authority", N_("the campaign has no authority"))
    if _is_federal(actor) or _own(actor, authority):
        return ALLOW
    if read and _oversees(actor, authority):
        return ALLOW
    return _deny("other_authority", N_("this belongs to another authority"))


def decide(actor: Actor, action: Action, target: Target | None = None) -> Decision:
    """May ``actor`` do ``action`` on ``target``?

    Territory (where an area may reach) is decided by :func:`targetable` and the
    geometry, not here: ``CAMPAIGN_PREPARE``/``LAUNCH`` here decide on the
    authority the campaign is for. Never raises; unknown roles are denied.
    """
    target = target or Target()
    if actor.role not in ROLES:
        return _deny("unknown_role", N_("unknown role %(role)s"), role=repr(actor.role))
    federal = _is_federal(actor)
    authority = target.authority

    if action in (Action.CAMPAIGN_READ, Action.REPORT_READ):
        return _campaign_scope(actor, target, read=True)

    if action in (Action.CAMPAIGN_PREPARE, Action.CAMPAIGN_LAUNCH, Action.CAMPAIGN_UPDATE,
                  Action.CAMPAIGN_CANCEL, Action.CAMPAIGN_APPROVE):
        scope = _campaign_scope(actor, target, read=False)
        if not scope:
            return scope
        assert authority is not None
        if action is Action.CAMPAIGN_CANCEL:
            # Stopping an alert is never blocked by the agreement: only by the role.
            if actor.role not in SENDER_ROLES:
                return _deny("role_read_only", N_("the %(role)s role cannot cancel campaigns"),
                             role=actor.role)
        else:
            send = _may_send(actor, authority, target.group_only)
            if not send:
                return send
        if action is Action.CAMPAIGN_APPROVE and target.prepared_by == actor.username:
            return _deny("own_campaign", N_("nobody approves their own campaign"))
        if (action in (Action.CAMPAIGN_LAUNCH, Action.CAMPAIGN_APPROVE, Action.CAMPAIGN_UPDATE)
                and target.environment == "live" and not actor.second_factor):
            return _deny("second_factor_required",
                         N_("live alerts need a login with a second factor (TOTP)"))
        return ALLOW

    if action is Action.LBSMS_USE:
        if actor.role not in SENDER_ROLES:
            return _deny("role_read_only", N_("the %(role)s role cannot send"), role=actor.role)
        if actor.authority.agreement_type != AGREEMENT_POPULATION and not federal:
            return _deny("lbsms_agreement", N_("location-based SMS needs a type-1 agreement"))
        if not actor.lbsms_trained:
            return _deny("lbsms_training", N_("location-based SMS needs a training recorded "
                         "by the federal operator"))
        return ALLOW

    if action is Action.USERS_MANAGE:
        if federal:
            return ALLOW
        if actor.role != "admin":
            return _deny("admin_only", N_("only an authority admin manages users"))
        if authority is None or authority.id != actor.authority.id:
            return _deny("other_authority", N_("an admin manages only the users of its authority"))
        if target.target_role == "federal_operator":
            return _deny("federal_only", N_("only the federal operator gives the federal role"))
        return ALLOW

    if action is Action.PARTNERSHIP_MANAGE:
        # Partnerships bind two municipalities: their admins propose, accept and end them;
        # the federal operator sees them (list) but is not a party.
        if actor.authority.kind != MUNICIPALITY:
            return _deny("partnership_municipalities", N_("only municipalities form partnerships"))
        if actor.role != "admin":
            return _deny("admin_only", N_("only an authority admin manages partnerships"))
        if authority is None or authority.id != actor.authority.id:
            return _deny("other_authority", N_("an admin acts only for its own municipality"))
        return ALLOW

    if action is Action.SETTINGS_MANAGE:
        if federal:
            return ALLOW
        if actor.role != "admin":
            return _deny("admin_only", N_("only an authority admin changes this"))
        if authority is None or authority.id != actor.authority.id:
            return _deny("other_authority", N_("an admin changes only its own authority"))
        return ALLOW

    if action in (Action.SUBSCRIBERS_MANAGE, Action.TEMPLATES_MANAGE):
        scope = _campaign_scope(actor, target, read=False)
        if not scope:
            return scope
        if actor.role not in SENDER_ROLES:
            return _deny("role_read_only", N_("the %(role)s role cannot change this"),
                         role=actor.role)
        return ALLOW

    if action in (Action.CONTACTS_MANAGE, Action.CONTACTS_READ):
        # Contact lists and groups (F10, F11): the authority's, shared within its
        # cooperation; an admin manages them (SPEC roles), senders read and use them.
        scope = _campaign_scope(actor, target, read=False)
        if not scope:
            return scope
        if action is Action.CONTACTS_MANAGE and actor.role not in ("admin",
                                                                   "federal_operator"):
            return _deny("admin_only", "only an authority admin manages contact lists "
                         "and groups")
        if actor.role not in SENDER_ROLES:
            return _deny("role_read_only", f"the {actor.role} role cannot see contacts")
        return ALLOW

    if action in (Action.GATEWAY_KEYS_MANAGE, Action.AUTHORITIES_MANAGE):
        return ALLOW if federal else _deny("federal_only",
                                           N_("only the federal operator does this"))

    if action is Action.AUDIT_READ:
        if federal:
            return ALLOW
        if actor.role == "admin" and authority is not None and authority.id == actor.authority.id:
            return ALLOW
        return _deny("admin_only", N_("only an admin reads its authority's audit log"))

    return _deny("unknown_action", N_("no rule for %(action)s"), action=str(action))
