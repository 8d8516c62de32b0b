"""Only live campaigns enter the public CAP feed; simulation ones stay under /simulation."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from lxml import etree

from tocsin.campaigns.services import CampaignRequest, launch_campaign
from tocsin.cap.xml import validate_xsd
from tocsin.web.app import create_app

ATOM = {"a": "http://www.w3.org/2005/Atom"}


def _launch(engine, environment: str) -> str:
    from tocsin.campaigns.services import campaign_report

    cid = launch_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004", texts={"fr": "Alerte", "nl": "Alarm"},
        channels=["cap"], environment=environment))
    return campaign_report(engine, cid)["cap_identifier"]


def test_simulation_alerts_never_reach_the_public_feed(engine, monkeypatch):
    monkeypatch.setenv("TOCSIN_SMPP_URL", "")
    sim = _launch(engine, "simulation")
    live = _launch(engine, "live")  # CAP only: needs no SMS/e-mail provider
    client = TestClient(create_app(engine, start_worker=False))

    public = client.get("/cap/feed.atom")
    assert public.status_code == 200
    assert public.headers["content-type"].startswith("application/atom+xml")
    assert "ETag" in public.headers and "Cache-Control" in public.headers
    links = etree.fromstring(public.content).xpath("//a:entry/a:link/@href", namespaces=ATOM)
    assert any(live in href for href in links)
    assert not any(sim in href for href in links)
    assert client.get(f"/cap/{sim}.xml").status_code == 404

    simfeed = client.get("/simulation/cap/feed.atom")
    links = etree.fromstring(simfeed.content).xpath("//a:entry/a:link/@href", namespaces=ATOM)
    assert any(sim in href for href in links) and not any(live in href for href in links)
    assert client.get(f"/simulation/cap/{live}.xml").status_code == 404

    for path in (f"/cap/{live}.xml", f"/simulation/cap/{sim}.xml"):
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"] == "application/cap+xml"
        assert validate_xsd(r.content) == []
    assert b"<status>Actual</status>" in client.get(f"/cap/{live}.xml").content
    assert b"<status>Exercise</status>" in client.get(f"/simulation/cap/{sim}.xml").content
    etag = client.get("/cap/feed.atom").headers["ETag"]
    assert client.get("/cap/feed.atom", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize("kind, environment, status", [
    ("alert", "live", "Actual"), ("warning", "live", "Actual"),
    ("information", "live", "Actual"), ("test", "live", "Test"),
    ("exercise", "live", "Exercise"), ("alert", "simulation", "Exercise"),
])
def test_cap_status(kind, environment, status):
    from tocsin.campaigns.rules import cap_status

    assert cap_status(kind, environment) == status
