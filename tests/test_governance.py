"""Agreements, training, cooperations and partnerships with real Belgian territories
(issue 8): neighbours from the data, every change audited, refusals named."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.authorities.access import (
    Denied,
    cli_actor,
    load_actor,
    partners_in_force,
    targetable_territory,
)
from tocsin.authorities.governance import (
    GovernanceError,
    accept_partnership,
    create_cooperation,
    end_partnership,
    list_partnerships,
    propose_partnership,
    record_training,
    set_agreement,
    territories_touch,
)
from tocsin.authorities.models import AuditEntry, Authority
from tocsin.authorities.policy import Actor
from tocsin.authorities.services import create_user
from tocsin.core.db import read_transaction, transaction, utcnow

HALLE, BEERSEL, MALMEDY, IXELLES, BRUXELLES = "23027", "23003", "63049", "21009", "21004"
PASSWORD = "correct horse battery staple"


def _actor(engine: Engine, authority_id: str) -> Actor:
    with read_transaction(engine) as s:
        return cli_actor(s, authority_id)


def _soon(days: int = 7) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)


def _audit_actions(engine: Engine) -> list[str]:
    with read_transaction(engine) as s:
        return list(s.scalars(sa.select(AuditEntry.action).order_by(AuditEntry.id)))


def test_real_neighbours_from_the_data(engine: Engine) -> None:
    with read_transaction(engine) as s:
        a = {i: s.get(Authority, i) for i in (HALLE, BEERSEL, MALMEDY, IXELLES, BRUXELLES)}
        assert territories_touch(a[IXELLES], a[BRUXELLES])
        assert territories_touch(a[HALLE], a[BEERSEL])
        assert not territories_touch(a[HALLE], a[MALMEDY])


def test_partnership_lets_either_target_the_other_until_it_ends(any_engine: Engine) -> None:
    engine = any_engine
    halle, beersel = _actor(engine, HALLE), _actor(engine, BEERSEL)
    pid = propose_partnership(engine, halle, BEERSEL, _soon(), "flood on the Zenne")
    with read_transaction(engine) as s:
        assert partners_in_force(s, HALLE) == frozenset()  # proposed, not accepted
    with pytest.raises(GovernanceError, match="the partner, Beersel, must accept"):
        accept_partnership(engine, halle, pid)  # the proposer cannot accept for the partner
    with pytest.raises(GovernanceError, match="no partnership"):  # a third one sees nothing
        accept_partnership(engine, _actor(engine, "23077"), pid)
    accept_partnership(engine, beersel, pid)
    with read_transaction(engine) as s:
        assert partners_in_force(s, HALLE) == {BEERSEL}
        assert partners_in_force(s, BEERSEL) == {HALLE}
        territory = targetable_territory(s, HALLE)
        beersel_territory = targetable_territory(s, BEERSEL)
        assert territory is not None and beersel_territory is not None
        assert territory.equals(beersel_territory)
    assert [p.state for p in list_partnerships(engine, halle)] == ["accepted"]
    end_partnership(engine, beersel, pid)
    with read_transaction(engine) as s:
        assert partners_in_force(s, HALLE) == frozenset()
    actions = _audit_actions(engine)
    assert {"partnership.propose", "partnership.accept", "partnership.end"} <= set(actions)


def test_an_expired_partnership_is_not_in_force(engine: Engine) -> None:
    pid = propose_partnership(engine, _actor(engine, HALLE), BEERSEL, _soon(1))
    accept_partnership(engine, _actor(engine, BEERSEL), pid)
    with read_transaction(engine) as s:
        assert partners_in_force(s, HALLE, now=_soon(2)) == frozenset()


@pytest.mark.parametrize("partner, field, words", [
    (MALMEDY, "partner", "does not border"),
    ("20001", "partner", "not a municipality"),
    (HALLE, "partner", "itself"),
    ("99999", "partner", "no authority"),
])
def test_partnership_refusals_name_the_field(engine: Engine, partner: str, field: str,
                                             words: str) -> None:
    with pytest.raises(GovernanceError) as exc:
        propose_partnership(engine, _actor(engine, HALLE), partner, _soon())
    assert exc.value.field == field and words in exc.value.reason


def test_provinces_have_no_partnerships(engine: Engine) -> None:
    with pytest.raises(Denied) as exc:
        propose_partnership(engine, _actor(engine, "20001"), "10000", _soon())
    assert exc.value.rule == "partnership_municipalities"


def test_partnership_end_dates(engine: Engine) -> None:
    halle = _actor(engine, HALLE)
    with pytest.raises(GovernanceError, match="past"):
        propose_partnership(engine, halle, BEERSEL, utcnow() - dt.timedelta(minutes=1))
    with pytest.raises(GovernanceError, match="366 days"):
        propose_partnership(engine, halle, BEERSEL, _soon(400))


def test_federal_operator_sets_agreements_a_municipality_cannot(engine: Engine) -> None:
    set_agreement(engine, _actor(engine, "BE"), HALLE, 2)
    with read_transaction(engine) as s:
        assert s.get(Authority, HALLE).agreement_type == 2
    with pytest.raises(Denied) as exc:
        set_agreement(engine, _actor(engine, HALLE), HALLE, 1)
    assert exc.value.rule == "federal_only"
    with pytest.raises(GovernanceError):
        set_agreement(engine, _actor(engine, "BE"), HALLE, 7)


def test_training_record_makes_lbsms_allowed(engine: Engine) -> None:
    from tocsin.authorities.access import load_actor
    from tocsin.authorities.policy import Action, decide

    create_user(engine, "ops.halle", PASSWORD, HALLE, role="operator")
    with read_transaction(engine) as s:
        assert decide(load_actor(s, "ops.halle"), Action.LBSMS_USE).rule == "lbsms_training"
    record_training(engine, _actor(engine, "BE"), "ops.halle", dt.date(2026, 11, 20),
                    "Centre de crise national")
    with read_transaction(engine) as s:
        assert decide(load_actor(s, "ops.halle"), Action.LBSMS_USE)
    with pytest.raises(GovernanceError, match="before it happens"):
        record_training(engine, _actor(engine, "BE"), "ops.halle",
                        utcnow().date() + dt.timedelta(days=2), "X")


def test_cooperation_members_share_one_territory(engine: Engine) -> None:
    create_cooperation(engine, _actor(engine, "BE"), "Zennevallei", [HALLE, BEERSEL])
    with read_transaction(engine) as s:
        halle = cli_actor(s, HALLE)
        assert halle.cooperation == {BEERSEL}
    with pytest.raises(GovernanceError, match="already in a cooperation"):
        create_cooperation(engine, _actor(engine, "BE"), "Other", [HALLE, "23077"])
    with transaction(engine) as s:  # nothing half-written by the refused one
        assert s.scalar(sa.text("SELECT count(*) FROM cooperation")) == 1


def test_federal_operator_acts_on_behalf_with_the_request_recorded(engine: Engine,
                                                                    monkeypatch) -> None:
    """Issue 8.6: the federal operator on duty sends for an authority that asked; the
    campaign, its report and the audit log show both; without the request it refuses."""
    import json

    from typer.testing import CliRunner

    from tocsin.authorities.audit import verify_chain
    from tocsin.campaigns.services import campaign_report
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    runner = CliRunner()
    base = ["campaign", "send", "--authority", HALLE, "--municipality", HALLE, "--as", "BE",
            "--text", "nl=Oefening: blijf binnen.", "--channels", "cap", "--kind", "exercise",
            "--json"]
    refused = runner.invoke(app, base)
    assert refused.exit_code == 1
    assert "on_behalf_request.requested_by" in refused.output
    ok = runner.invoke(app, [*base, "--requested-by", "Burgemeester van Halle, telefoon 03:12"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout.strip().splitlines()[-1])
    full = campaign_report(engine, report["campaign_id"])
    assert full["authority_id"] == HALLE and full["acting_authority_id"] == "BE"
    assert full["on_behalf_request"]["requested_by"].startswith("Burgemeester van Halle")
    with read_transaction(engine) as s:
        entry = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "campaign.launch")
                          ).one()
        assert entry.on_behalf_of == HALLE
    assert verify_chain(engine).ok


def test_cooperation_campaign_records_each_members_reach(engine: Engine) -> None:
    """Issue 8.3 (F4): a campaign of a cooperation member over both members' territories
    records how many recipients each member reached, by primary residence."""
    from tocsin.campaigns.services import CampaignRequest, campaign_report, launch_campaign
    from tocsin.subscribers.importer import import_subscribers

    csv = ("subscriber_id,language,mobile,email,lat,lon\n"
           "H1,nl,+32470000001,,50.7350,4.2390\n"      # Halle
           "H2,nl,+32470000002,,50.7330,4.2350\n"      # Halle
           "B1,nl,+32470000003,,50.7650,4.3000\n"      # Beersel
           "B2,nl,+32470000004,,50.7680,4.3050\n"      # Beersel (primary residence)
           "B2,nl,+32470000004,,50.7350,4.2390\n")     # and a second address in Halle
    report = import_subscribers(engine, csv.encode())
    assert not report.errors, report.errors
    create_cooperation(engine, _actor(engine, "BE"), "Zennevallei", [HALLE, BEERSEL])
    with read_transaction(engine) as s:
        halle = json.loads(s.get(Authority, HALLE).territory)
        beersel = json.loads(s.get(Authority, BEERSEL).territory)
    import shapely
    from shapely.geometry import shape

    both = json.loads(shapely.to_geojson(shape(halle).union(shape(beersel))))
    cid = launch_campaign(engine, CampaignRequest(
        authority_id=HALLE, texts={"nl": "Oefening."}, channels=["sms"], area_geojson=both,
        kind="exercise"))
    assert campaign_report(engine, cid)["member_reach"] == {HALLE: 2, BEERSEL: 2}


def test_demo_seeds_both_agreement_types(tmp_path) -> None:
    """Issue 8.1: the demo has a type-2 authority, so a newcomer sees the difference."""
    from tocsin.authorities.setup import prepare_demo
    from tocsin.campaigns.services import CampaignRequest, launch_campaign
    from tocsin.cli.processes import DEMO_ACCOUNTS, DEMO_AGREEMENTS

    setup = prepare_demo(0, DEMO_ACCOUNTS, url=f"sqlite:///{tmp_path / 'demo.db'}",
                         agreements=DEMO_AGREEMENTS)
    with read_transaction(setup.engine) as s:
        kinds = {a: s.get(Authority, a).agreement_type for _, _, a, _ in DEMO_ACCOUNTS}
        lennik = load_actor(s, "lennik")
    assert set(kinds.values()) == {1, 2}
    with pytest.raises(Denied) as exc:
        launch_campaign(setup.engine, CampaignRequest(
            authority_id="23104", texts={"nl": "Oefening."}, channels=["sms"],
            municipality_nis="23104", kind="exercise", actor=lennik))
    assert exc.value.rule == "agreement_groups_only"
