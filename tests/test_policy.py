"""The permission rules alone (authorities/policy.py): pure, in milliseconds."""

from __future__ import annotations

import pytest

from tocsin.authorities.policy import (
    ROLES,
    Action,
    Actor,
    AuthorityFacts,
    Target,
    decide,
    targetable,
)

BE = AuthorityFacts("BE", "federal", None)
BRABANT = AuthorityFacts("20001", "province", "BE")
LIEGE = AuthorityFacts("60000", "province", "BE")
HALLE = AuthorityFacts("23027", "municipality", "20001")
BEERSEL = AuthorityFacts("23003", "municipality", "20001")
MALMEDY = AuthorityFacts("63049", "municipality", "60000")
GROUPS_ONLY = AuthorityFacts("23088", "municipality", "20001", agreement_type=2)
NO_AGREEMENT = AuthorityFacts("23062", "municipality", "20001", agreement_type=0)


def actor(role: str, authority: AuthorityFacts, **kw) -> Actor:
    return Actor(username=f"{role}@{authority.id}", role=role, authority=authority, **kw)


def test_federal_campaigns_target_all_of_belgium() -> None:
    assert targetable(BE) is None


def test_province_targets_its_territory_and_has_no_partnerships() -> None:
    assert targetable(BRABANT, partners={"60000"}) == {"20001"}


def test_municipality_targets_itself_and_partners_in_force() -> None:
    assert targetable(HALLE) == {"23027"}
    assert targetable(HALLE, partners={"23003"}) == {"23027", "23003"}


def test_cooperation_members_act_as_one() -> None:
    coop = actor("operator", HALLE, cooperation=frozenset({"23003"}))
    assert targetable(HALLE, cooperation=coop.cooperation) == {"23027", "23003"}
    assert decide(coop, Action.CAMPAIGN_CANCEL, Target(authority=BEERSEL))


@pytest.mark.parametrize("action", [Action.CAMPAIGN_PREPARE, Action.CAMPAIGN_LAUNCH,
                                    Action.CAMPAIGN_UPDATE, Action.CAMPAIGN_CANCEL,
                                    Action.CAMPAIGN_APPROVE])
def test_viewer_never_prepares_or_launches(action: Action) -> None:
    d = decide(actor("viewer", HALLE), action, Target(authority=HALLE))
    assert not d and d.rule == "role_read_only"


def test_type_2_sends_only_to_groups() -> None:
    op = actor("operator", GROUPS_ONLY)
    assert decide(op, Action.CAMPAIGN_LAUNCH, Target(authority=GROUPS_ONLY)).rule == \
        "agreement_groups_only"
    assert decide(op, Action.CAMPAIGN_LAUNCH, Target(authority=GROUPS_ONLY, group_only=True))


def test_no_agreement_reads_but_never_sends() -> None:
    op = actor("admin", NO_AGREEMENT)
    assert decide(op, Action.CAMPAIGN_READ, Target(authority=NO_AGREEMENT))
    assert decide(op, Action.CAMPAIGN_LAUNCH, Target(authority=NO_AGREEMENT, group_only=True)
                  ).rule == "no_agreement"


def test_nobody_approves_their_own_campaign() -> None:
    op = actor("operator", HALLE, second_factor=True)
    own = Target(authority=HALLE, environment="live", prepared_by=op.username)
    assert decide(op, Action.CAMPAIGN_APPROVE, own).rule == "own_campaign"
    other = Target(authority=HALLE, environment="live", prepared_by="someone")
    assert decide(op, Action.CAMPAIGN_APPROVE, other)


def test_live_needs_a_second_factor_simulation_does_not() -> None:
    op = actor("operator", HALLE)
    assert decide(op, Action.CAMPAIGN_LAUNCH, Target(authority=HALLE, environment="live")
                  ).rule == "second_factor_required"
    assert decide(op, Action.CAMPAIGN_LAUNCH, Target(authority=HALLE))
    # Stopping a live alert never waits for a second factor.
    assert decide(op, Action.CAMPAIGN_CANCEL, Target(authority=HALLE, environment="live"))


def test_lbsms_only_for_trained_users_of_type_1() -> None:
    assert decide(actor("operator", HALLE, lbsms_trained=True), Action.LBSMS_USE)
    assert decide(actor("operator", HALLE), Action.LBSMS_USE).rule == "lbsms_training"
    assert decide(actor("operator", GROUPS_ONLY, lbsms_trained=True), Action.LBSMS_USE
                  ).rule == "lbsms_agreement"
    assert decide(actor("viewer", HALLE, lbsms_trained=True), Action.LBSMS_USE
                  ).rule == "role_read_only"


def test_admin_manages_only_its_own_users() -> None:
    admin = actor("admin", HALLE)
    assert decide(admin, Action.USERS_MANAGE, Target(authority=HALLE, target_role="operator"))
    assert decide(admin, Action.USERS_MANAGE, Target(authority=BEERSEL)).rule == \
        "other_authority"
    assert decide(admin, Action.USERS_MANAGE,
                  Target(authority=HALLE, target_role="federal_operator")).rule == "federal_only"
    assert decide(actor("operator", HALLE), Action.USERS_MANAGE,
                  Target(authority=HALLE)).rule == "admin_only"


def test_province_reads_its_municipalities_but_does_not_act_for_them() -> None:
    prov = actor("operator", BRABANT)
    assert decide(prov, Action.REPORT_READ, Target(authority=HALLE))
    assert not decide(prov, Action.CAMPAIGN_CANCEL, Target(authority=HALLE))
    assert not decide(prov, Action.REPORT_READ, Target(authority=MALMEDY))


def test_only_municipalities_form_partnerships() -> None:
    assert decide(actor("admin", HALLE), Action.PARTNERSHIP_MANAGE, Target(authority=HALLE))
    assert decide(actor("admin", BRABANT), Action.PARTNERSHIP_MANAGE,
                  Target(authority=BRABANT)).rule == "partnership_municipalities"


def test_unknown_role_is_denied_everything() -> None:
    for action in Action:
        assert not decide(actor("mayor", HALLE), action, Target(authority=HALLE))


@pytest.mark.parametrize("role", ROLES)
def test_every_action_has_a_rule(role: str) -> None:
    for action in Action:
        assert decide(actor(role, HALLE), action, Target(authority=HALLE)).rule != \
            "unknown_action"
