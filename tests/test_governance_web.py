"""The governance page: partnerships proposed and accepted by two admins, the
federal operator's agreements, a viewer refused by the policy (403 naming the rule)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.authorities.access import partners_in_force
from tocsin.authorities.models import Authority
from tocsin.authorities.services import create_user
from tocsin.core.db import read_transaction
from tocsin.web.app import create_app
from weblogin import csrf_of, session_csrf

PASSWORD = "correct horse battery staple"


@pytest.fixture
def users(engine: Engine) -> Engine:
    create_user(engine, "admin.halle", PASSWORD, "23027", role="admin")
    create_user(engine, "admin.beersel", PASSWORD, "23003", role="admin")
    create_user(engine, "viewer.halle", PASSWORD, "23027", role="viewer")
    create_user(engine, "federal", PASSWORD, "BE", role="federal_operator")
    return engine


def _client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine, start_worker=False)) as c:
        yield c


@pytest.fixture
def client(users: Engine) -> Iterator[TestClient]:
    yield from _client(users)


@pytest.fixture
def client2(users: Engine) -> Iterator[TestClient]:
    yield from _client(users)


def test_two_admins_set_up_a_partnership(users: Engine, client: TestClient,
                                         client2: TestClient) -> None:
    token = session_csrf(client, "admin.halle", PASSWORD, page="/admin/governance")
    page = client.get("/admin/governance").text
    assert "Beersel" in page and "Malmedy" not in page  # only neighbours are offered
    r = client.post("/admin/governance/partnerships", data={
        "partner": "23003", "ends_on": "2099-01-01", "reason": "x", "csrf_token": token},
        follow_redirects=False)
    assert r.status_code == 422 and "days ahead" in r.text  # at most a year
    r = client.post("/admin/governance/partnerships", data={
        "partner": "23003", "ends_on": _in_days(7), "reason": "Zenne flood",
        "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    token2 = session_csrf(client2, "admin.beersel", PASSWORD, page="/admin/governance")
    page = client2.get("/admin/governance").text
    assert "Zenne flood" in page and "Accept" in page
    pid = page.split("/admin/governance/partnerships/")[1].split("/")[0]
    r = client2.post(f"/admin/governance/partnerships/{pid}/accept",
                     data={"csrf_token": token2}, follow_redirects=False)
    assert r.status_code == 303
    with read_transaction(users) as s:
        assert partners_in_force(s, "23027") == {"23003"}


def test_viewer_is_refused_with_the_rule(client: TestClient) -> None:
    token = session_csrf(client, "viewer.halle", PASSWORD, page="/admin/governance")
    r = client.post("/admin/governance/two-person", data={"required": "on", "csrf_token": token})
    assert r.status_code == 403 and "admin_only" in r.text


def test_federal_operator_changes_an_agreement(users: Engine, client: TestClient) -> None:
    token = session_csrf(client, "federal", PASSWORD, page="/admin/governance")
    page = client.get("/admin/governance").text
    assert "Authorities and agreements" in page and csrf_of(page) == token
    r = client.post("/admin/governance/agreements", data={
        "authority_id": "23027", "agreement_type": "2", "csrf_token": token},
        follow_redirects=False)
    assert r.status_code == 303
    with read_transaction(users) as s:
        assert s.get(Authority, "23027").agreement_type == 2


def test_a_municipality_admin_cannot_change_agreements(client: TestClient) -> None:
    token = session_csrf(client, "admin.halle", PASSWORD, page="/admin/governance")
    r = client.post("/admin/governance/agreements", data={
        "authority_id": "23027", "agreement_type": "1", "csrf_token": token})
    assert r.status_code == 403 and "federal_only" in r.text


def _in_days(days: int) -> str:
    import datetime as dt

    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


def test_federal_operator_acts_for_an_authority_that_asked(users: Engine,
                                                            client: TestClient) -> None:
    """Issue 8.6 on the web: the federal operator acts for Halle on its request; the
    campaign is Halle's, its page and the audit log show both; stopping ends it."""
    import sqlalchemy as sa

    from tocsin.authorities.models import AuditEntry

    token = session_csrf(client, "federal", PASSWORD, page="/admin/governance")
    r = client.post("/admin/acting", data={"authority_id": "23027", "requested_by": "",
                                           "channel": "phone", "csrf_token": token})
    assert r.status_code == 422 and "Requested by" in r.text
    r = client.post("/admin/acting", data={
        "authority_id": "23027", "requested_by": "Burgemeester van Halle",
        "channel": "phone", "csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get("/campaigns/new").text
    assert "Acting for Halle" in page and "Burgemeester van Halle" in page
    h = {"X-CSRF-Token": token}
    body = {"texts": {"nl": "Oefening: blijf binnen."}, "channels": ["cap"],
            "municipality_nis": "23027", "kind": "exercise"}
    r = client.post("/api/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    report = client.get(f"/api/campaigns/{cid}/report").json()
    assert report["authority_id"] == "23027" and report["acting_authority_id"] == "BE"
    assert report["on_behalf_request"]["requested_by"] == "Burgemeester van Halle"
    assert "at the request of" in client.get(f"/campaigns/{cid}").text
    with read_transaction(users) as s:
        launched = s.scalars(sa.select(AuditEntry).where(
            AuditEntry.action == "campaign.launch")).one()
        assert launched.on_behalf_of == "23027"
    r = client.post("/admin/acting/stop", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    assert "Acting for" not in client.get("/campaigns/new").text


def test_only_the_federal_operator_acts_for_others(client: TestClient) -> None:
    token = session_csrf(client, "admin.halle", PASSWORD, page="/admin/governance")
    r = client.post("/admin/acting", data={"authority_id": "23003", "requested_by": "X",
                                           "channel": "phone", "csrf_token": token})
    assert r.status_code == 403 and "other_authority" in r.text


def test_viewer_gets_no_composer(client: TestClient) -> None:
    """Trial defect: a viewer was offered the whole composer, every estimate refused."""
    session_csrf(client, "viewer.halle", PASSWORD, page="/")
    assert 'href="/campaigns/new"' not in client.get("/").text
    r = client.get("/campaigns/new")
    assert r.status_code == 403 and "cannot prepare" in r.text


def test_estimate_says_a_live_alert_will_wait_for_approval(users: Engine) -> None:
    """Trial defect: with the two-person rule on, the launch dialog said "Sent now"."""
    from tocsin.authorities.access import cli_actor
    from tocsin.authorities.governance import set_two_person_rule
    from tocsin.campaigns.services import CampaignRequest, estimate_campaign

    with read_transaction(users) as s:
        halle = cli_actor(s, "23027")
    req = CampaignRequest(authority_id="23027", texts={"nl": "Oefening."}, channels=["cap"],
                          municipality_nis="23027", kind="exercise", environment="live")
    assert estimate_campaign(users, req)["approval_required"] is False
    set_two_person_rule(users, halle, "23027", True)
    est = estimate_campaign(users, req)
    assert est["approval_required"] is True
    assert "approval_required" in [w["code"] for w in est["warnings"]]


def test_a_refusal_reads_in_the_operators_language(client: TestClient) -> None:
    """docs/decisions/0018: the service's error (code, template, params) is translated by
    the page; the English reason stays for the CLI and the API."""
    token = session_csrf(client, "admin.halle", PASSWORD, page="/admin/governance?lang=de")
    r = client.post("/admin/governance/partnerships", data={
        "partner": "23003", "ends_on": "2099-01-01", "reason": "x", "csrf_token": token},
        follow_redirects=False)
    assert r.status_code == 422
    assert "Nicht gespeichert — Enddatum: höchstens" in r.text and "Tage im Voraus" in r.text
    assert "days ahead" not in r.text
