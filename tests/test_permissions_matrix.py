"""The authorization matrix, cell by cell, through the real services (issue 8).

Every use case of ``tests/permissions_matrix.py`` × every actor profile × every
relation runs the service a web route or CLI command would call, as a user of that
role, and the outcome (allowed, clipped, denied, hidden, invalid) must be the one in
the table. Runs on SQLite and, when configured, PostgreSQL. A use case the policy
knows (``policy.Action``) without rows here fails the suite, so later issues extend
the table as they add use cases.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.engine import Engine

from permissions_matrix import (
    AGREEMENT_CELLS,
    MATRIX,
    PROFILES,
    RELATION_ORDER,
    RELATIONS,
    kind_of,
    render,
)
from tocsin.authorities.access import Denied, cli_actor, load_actor
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor, decide
from tocsin.core.db import make_engine, read_transaction, utcnow

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery staple"
TEXTS = {"nl": "Oefening: blijf binnen.", "fr": "Exercice : restez à l'intérieur.",
         "de": "Übung: bleiben Sie drinnen."}


@dataclass
class World:
    engine: Engine

    def actor(self, profile: str, second_factor: bool = True) -> Actor:
        with read_transaction(self.engine) as s:
            return load_actor(s, profile, second_factor=second_factor)

    def system(self, authority_id: str) -> Actor:
        with read_transaction(self.engine) as s:
            return cli_actor(s, authority_id)

    def territory(self, authority_id: str) -> dict[str, Any]:
        with read_transaction(self.engine) as s:
            a = s.get(Authority, authority_id)
            assert a is not None
            return json.loads(a.territory)

    def campaign_of(self, authority_id: str, environment: str = "simulation",
                    channels: tuple[str, ...] = ("sms", "cap")) -> str:
        """A sent campaign of ``authority_id`` over its territory, launched by another
        user of it (the CLI acting for it)."""
        from tocsin.campaigns.services import CampaignRequest, launch_campaign

        req = CampaignRequest(authority_id=authority_id, texts=TEXTS, channels=list(channels),
                              area_geojson=self.territory(authority_id), kind="exercise",
                              environment=environment, actor=self.system(authority_id),
                              created_by="someone.else")
        return launch_campaign(self.engine, req)


def _setup(engine: Engine) -> World:
    from tocsin.authorities.governance import (
        accept_partnership,
        create_cooperation,
        propose_partnership,
    )
    from tocsin.authorities.services import create_user

    for profile, (role, authority_id, _) in PROFILES.items():
        create_user(engine, profile, PASSWORD, authority_id, role=role)
    world = World(engine)
    pid = propose_partnership(engine, world.system("23027"), "23003",
                              utcnow() + dt.timedelta(days=30))
    accept_partnership(engine, world.system("23003"), pid)
    create_cooperation(engine, world.system("BE"), "Pajottenland-Halle", ["23027", "23064"])
    return world


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, reference_db: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("matrix") / "tocsin.db"
        shutil.copy(reference_db, path)
        engine = make_engine(f"sqlite:///{path}")
        yield _setup(engine)
        engine.dispose()
        return
    from conftest import PG_SKIP, PG_URL, _throwaway_postgres

    if not PG_URL:
        pytest.skip(PG_SKIP)
    with _throwaway_postgres(load_reference=True) as engine:
        yield _setup(engine)


# ----------------------------------------------------------------------------- runners


def _clipped(world: World, campaign_id: str, requested: dict[str, Any]) -> bool:
    from tocsin.campaigns.models import Campaign
    from tocsin.geo.areas import area_km2

    with read_transaction(world.engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None
        used = area_km2(shape(json.loads(c.area)))
    return used < area_km2(shape(requested)) * 0.98


def _request(world: World, actor: Actor, target: str, **kw: Any):  # type: ignore[no-untyped-def]
    from tocsin.campaigns.services import CampaignRequest

    return CampaignRequest(authority_id=actor.authority.id, texts=TEXTS, channels=["sms", "cap"],
                           area_geojson=world.territory(target), kind="exercise", actor=actor,
                           created_by=actor.username, **kw)


def run_prepare(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import estimate_campaign
    from tocsin.geo.areas import area_km2

    requested = world.territory(target)
    result = estimate_campaign(world.engine, _request(world, actor, target))
    return "C" if result["area_km2"] < area_km2(shape(requested)) * 0.98 else "A"


def run_launch(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import launch_campaign

    requested = world.territory(target)
    cid = launch_campaign(world.engine, _request(world, actor, target))
    return "C" if _clipped(world, cid, requested) else "A"


def run_read(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import campaign_report

    campaign_report(world.engine, world.campaign_of(target), actor=actor)
    return "A"


def run_list(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import list_campaigns

    cid = world.campaign_of(target)
    rows = list_campaigns(world.engine, actor, "simulation")
    return "A" if any(r["campaign_id"] == cid for r in rows) else "H"


def run_update(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import CampaignRequest, update_campaign

    cid = world.campaign_of(target)
    update_campaign(world.engine, cid, CampaignRequest(
        authority_id="", texts=TEXTS, channels=[], kind="", environment="", actor=actor,
        created_by=actor.username))
    return "A"


def run_cancel(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import cancel_campaign

    cancel_campaign(world.engine, world.campaign_of(target), actor)
    return "A"


def run_approve(world: World, actor: Actor, target: str) -> str:
    from tocsin.authorities.governance import set_two_person_rule
    from tocsin.campaigns.services import approve_campaign

    set_two_person_rule(world.engine, world.system("BE"), target, True)
    try:
        cid = world.campaign_of(target, environment="live", channels=("cap",))
    finally:
        set_two_person_rule(world.engine, world.system("BE"), target, False)
    approve_campaign(world.engine, actor, cid)
    return "A"


def run_users(world: World, actor: Actor, target: str) -> str:
    from tocsin.authorities.services import create_user

    create_user(world.engine, f"new.{actor.username}.{target}", PASSWORD, target,
                role="operator", actor=actor)
    return "A"


def run_templates(world: World, actor: Actor, target: str) -> str:
    from tocsin.messages.templates import TemplateInput, create_template

    create_template(world.engine, target, TemplateInput(
        name=f"Drill {actor.username} {target}", kind="exercise", channels=["sms"],
        texts={"nl": "Oefening.", "fr": "Exercice.", "de": "Übung."}), actor=actor)
    return "A"


def run_partnership(world: World, actor: Actor, target: str) -> str:
    from tocsin.authorities.governance import propose_partnership

    propose_partnership(world.engine, actor, target, utcnow() + dt.timedelta(days=3))
    return "A"


def run_settings(world: World, actor: Actor, target: str) -> str:
    from tocsin.authorities.governance import set_two_person_rule

    set_two_person_rule(world.engine, actor, target, False)
    return "A"


def run_agreement(world: World, actor: Actor, target: str) -> str:
    from tocsin.authorities.governance import set_agreement

    with read_transaction(world.engine) as s:
        current = s.get(Authority, target).agreement_type  # type: ignore[union-attr]
    set_agreement(world.engine, actor, target, current)
    return "A"


def run_subscribers(world: World, actor: Actor, target: str) -> str:
    from tocsin.subscribers.importer import import_subscribers

    report = import_subscribers(world.engine, b"subscriber_id,language,mobile,email,lat,lon\n"
                                b"S1,nl,+32470000001,,50.73,4.24\n", dry_run=True, actor=actor)
    assert not report.errors
    return "A"


def run_contacts(world: World, actor: Actor, target: str) -> str:
    from tocsin.subscribers.contacts import import_contacts

    result = import_contacts(world.engine, b"name,mobile\nJan,0470 12 34 56\n", target,
                             "Volunteers", dry_run=True, actor=actor)
    assert not result.errors
    return "A"


def run_contacts_read(world: World, actor: Actor, target: str) -> str:
    from tocsin.subscribers.groups import list_groups

    list_groups(world.engine, target, actor)
    return "A"


def run_gateway_key(world: World, actor: Actor, target: str) -> str:
    from tocsin.cap.gateway import create_key

    create_key(world.engine, f"Panel {actor.username} {target}", actor)
    return "A"


def _policy_only(action: Action) -> Callable[[World, Actor, str], str]:
    def run(world: World, actor: Actor, target: str) -> str:
        from tocsin.authorities.access import facts_of, require
        from tocsin.authorities.policy import Target

        with read_transaction(world.engine) as s:
            require(actor, action, Target(authority=facts_of(s, target)))
        return "A"
    return run


RUNNERS: dict[str, Callable[[World, Actor, str], str]] = {
    "campaign.prepare": run_prepare,
    "campaign.launch": run_launch,
    "campaign.read": run_read,
    "campaign.update": run_update,
    "campaign.cancel": run_cancel,
    "campaign.approve": run_approve,
    "report.read": run_list,
    "users.manage": run_users,
    "templates.manage": run_templates,
    "partnerships.manage": run_partnership,
    "settings.manage": run_settings,
    "authorities.manage": run_agreement,
    "subscribers.manage": run_subscribers,
    "gateway_keys.manage": run_gateway_key,
    "lbsms.use": _policy_only(Action.LBSMS_USE),
    "audit.read": _policy_only(Action.AUDIT_READ),
    "contacts.manage": run_contacts,
    "contacts.read": run_contacts_read,
}


def outcome(run: Callable[[World, Actor, str], str], world: World, actor: Actor,
            target: str) -> str:
    """A, C, D, H or I (see permissions_matrix)."""
    from tocsin.campaigns.services import CampaignNotFound

    try:
        return run(world, actor, target)
    except Denied as exc:
        return "H" if exc.hidden else "D"
    except (CampaignNotFound, LookupError):
        return "H"
    except ValueError as exc:
        if getattr(exc, "field", None) is None:
            raise
        return "I"


CELLS = [(use_case, profile, relation)
         for use_case, (_, rows) in MATRIX.items()
         for profile, cells in rows.items()
         for relation, expected in zip(RELATION_ORDER, cells, strict=True) if expected != "-"]


@pytest.mark.parametrize("use_case, profile, relation", CELLS,
                         ids=[f"{u}|{p}|{r}" for u, p, r in CELLS])
def test_cell(world: World, use_case: str, profile: str, relation: str) -> None:
    _, rows = MATRIX[use_case]
    expected = rows[profile][RELATION_ORDER.index(relation)]
    target = RELATIONS[relation][kind_of(profile)]
    got = outcome(RUNNERS[use_case], world, world.actor(profile), target)
    assert got == expected, (f"{use_case} by {profile} on {relation} ({target}): "
                             f"expected {expected}, got {got}")


def test_every_use_case_has_rows_and_a_runner() -> None:
    actions = {a.value for a in Action}
    assert set(MATRIX) == actions, f"no matrix rows for {sorted(actions - set(MATRIX))}"
    assert set(RUNNERS) == actions
    for use_case, (_, rows) in MATRIX.items():
        assert set(rows) == set(PROFILES), use_case
        for profile, cells in rows.items():
            assert len(cells) == len(RELATION_ORDER), (use_case, profile)
            for relation, cell in zip(RELATION_ORDER, cells, strict=True):
                assert (cell == "-") == (kind_of(profile) not in RELATIONS[relation]), (
                    use_case, profile, relation)


def test_every_action_the_services_check_is_in_the_matrix() -> None:
    """Each ``Action.X`` named anywhere in src/ has its rows (no use case checked in the
    code but missing from the table)."""
    used: set[str] = set()
    for path in (ROOT / "src" / "tocsin").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "Action"):
                used.add(Action[node.attr].value)
    assert used <= set(MATRIX)


def test_docs_permissions_md_is_current() -> None:
    assert (ROOT / "docs" / "permissions.md").read_text() == render(), (
        "regenerate: .venv/bin/python tests/permissions_matrix.py > docs/permissions.md")


# ----------------------------------------------------------------------------- agreements


def test_agreement_training_and_second_factor_cells(world: World) -> None:
    """The rows under "Agreements, training, second factor, two-person rule"."""
    from tocsin.authorities.governance import record_training, set_agreement
    from tocsin.authorities.services import create_user
    from tocsin.campaigns.services import launch_campaign

    engine, be = world.engine, world.system("BE")
    results: list[str] = []
    create_user(engine, "ops.lennik", PASSWORD, "23104", role="operator")
    set_agreement(engine, be, "23104", 2)
    lennik = world.actor("ops.lennik")
    results.append(outcome(lambda w, a, t: run_launch(w, a, t), world, lennik, "23104"))
    set_agreement(engine, be, "23104", 0)
    results.append(outcome(lambda w, a, t: run_launch(w, a, t), world, lennik, "23104"))
    set_agreement(engine, be, "23104", 1)
    record_training(engine, be, "ops.lennik", dt.date(2026, 11, 2), "NCCN")
    lennik = world.actor("ops.lennik")
    results.append("A" if decide(lennik, Action.LBSMS_USE) else "D")
    set_agreement(engine, be, "23104", 2)
    results.append("A" if decide(world.actor("ops.lennik"), Action.LBSMS_USE) else "D")
    set_agreement(engine, be, "23104", 1)
    no_totp = world.actor("operator", second_factor=False)
    results.append(outcome(lambda w, a, t: _launch_live(w, a, t), world, no_totp, "23027"))
    results.append(outcome(lambda w, a, t: _approve_own(w, a, t), world,
                           world.actor("operator"), "23027"))
    france = {"type": "Polygon", "coordinates": [[[2.3, 48.8], [2.4, 48.8], [2.4, 48.9],
                                                  [2.3, 48.9], [2.3, 48.8]]]}
    results.append(outcome(lambda w, a, t: launch_campaign(w.engine, _request_area(
        w, a, france)) and "A", world, world.actor("operator"), "23027"))
    assert results == [o for _, o in AGREEMENT_CELLS]


def _request_area(world: World, actor: Actor, area: dict[str, Any]):  # type: ignore[no-untyped-def]
    from tocsin.campaigns.services import CampaignRequest

    return CampaignRequest(authority_id=actor.authority.id, texts=TEXTS, channels=["cap"],
                           area_geojson=area, kind="exercise", actor=actor,
                           created_by=actor.username)


def _launch_live(world: World, actor: Actor, target: str) -> str:
    from tocsin.campaigns.services import launch_campaign

    req = _request_area(world, actor, world.territory(target))
    req.environment = "live"
    launch_campaign(world.engine, req)
    return "A"


def _approve_own(world: World, actor: Actor, target: str) -> str:
    from tocsin.authorities.governance import set_two_person_rule
    from tocsin.campaigns.services import approve_campaign, launch_campaign

    set_two_person_rule(world.engine, world.system("BE"), target, True)
    try:
        req = _request_area(world, actor, world.territory(target))
        req.environment = "live"
        cid = launch_campaign(world.engine, req)
    finally:
        set_two_person_rule(world.engine, world.system("BE"), target, False)
    approve_campaign(world.engine, actor, cid)
    return "A"


def test_denials_are_audited(world: World) -> None:
    from tocsin.authorities.models import AuditEntry

    with read_transaction(world.engine) as s:
        before = s.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied"))
    assert outcome(run_cancel, world, world.actor("viewer"), "23027") == "D"
    with read_transaction(world.engine) as s:
        after = s.scalar(sa.select(sa.func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "access.denied"))
    assert after == before + 1

