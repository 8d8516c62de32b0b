"""Campaign lifecycle (SPEC F19, F33): schedule in Belgian time, the scheduler's claim with
several workers, update to the original recipients plus a new area, cancel, all-clear; CAP
Update/Cancel with ``references`` that validate against the OASIS XSD; kinds that reach only
the right contact points (F12)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections import Counter

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from lxml import etree
from shapely.geometry import box, mapping
from typer.testing import CliRunner

from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.services import (
    CampaignInputError,
    CampaignNotFound,
    CampaignRequest,
    all_clear,
    campaign_report,
    cancel_campaign,
    fan_out_scheduled,
    launch_campaign,
    update_campaign,
)
from tocsin.cap.build import brussels_time
from tocsin.cap.xml import validate_xsd
from tocsin.core.db import table, transaction, utcnow
from tocsin.dispatch import queue
from tocsin.dispatch.models import Delivery
from tocsin.dispatch.scheduler import run_due
from tocsin.subscribers.importer import import_subscribers
from tocsin.subscribers.models import ContactPoint
from weblogin import session_csrf

NS = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}

# Beersel (NIS 23003): A is the first alert's area, B a bigger one, C a corner outside A.
AREA_A = box(4.295, 50.7445, 4.311, 50.754)
AREA_B = box(4.27, 50.74, 4.32, 50.77)
AREA_C = box(4.275, 50.755, 4.285, 50.765)
CSV = """subscriber_id,language,mobile,email,lat,lon
S1,fr,+32470000001,s1@example.org,50.7480,4.3000
S2,nl,+32470000002,,50.7500,4.3050
S3,nl,+32470000003,s3@example.org,50.7600,4.2800
S4,fr,+32470000004,s4@example.org,50.7350,4.2300
"""
TEXTS = {"fr": "Alerte: restez à l'intérieur.", "nl": "Alarm: blijf binnen."}


def _area(geom) -> str:
    return json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(geom)})


def _req(geom=AREA_A, **kw) -> CampaignRequest:
    values = {"authority_id": "23003", "texts": TEXTS, "channels": ["sms", "email", "cap"],
              "area_geojson": _area(geom) if geom is not None else None}
    values.update(kw)
    return CampaignRequest(**values)


@pytest.fixture
def db(any_engine):
    report = import_subscribers(any_engine, CSV.encode())
    assert report.errors == []
    return any_engine


def _deliveries(engine, campaign_id: str) -> dict[tuple[str, str], str]:
    d = table(Delivery)
    with transaction(engine) as s:
        return {(r.channel, r.address): r.state for r in s.execute(
            sa.select(d.c.channel, d.c.address, d.c.state).where(d.c.campaign_id == campaign_id))}


def _campaign(engine, campaign_id: str) -> Campaign:
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None
        s.expunge(c)
        return c


def _cap(engine, campaign_id: str) -> etree._Element:
    xml = _campaign(engine, campaign_id).cap_xml
    assert xml is not None
    assert validate_xsd(xml.encode()) == []
    return etree.fromstring(xml.encode())


def _triple(doc: etree._Element) -> str:
    return ",".join(doc.findtext(f"cap:{t}", namespaces=NS) for t in ("sender", "identifier",
                                                                       "sent"))


# ----------------------------------------------------------------------------- schedule


def _next(month: int, day: int) -> dt.date:
    today = utcnow().date()
    candidate = dt.date(today.year, month, day)
    return candidate if candidate > today + dt.timedelta(days=1) else candidate.replace(
        year=today.year + 1)


@pytest.mark.parametrize("month, offset", [(1, 1), (7, 2)])  # CET +01:00, CEST +02:00
def test_schedule_in_brussels_time_is_stored_in_utc(db, month, offset):
    day = _next(month, 15)
    at = rules.parse_local_time(f"{day:%Y-%m-%d} 08:00")
    cid = launch_campaign(db, _req(scheduled_for=at))
    c = _campaign(db, cid)
    assert c.status == "scheduled"
    assert c.scheduled_for == dt.datetime(day.year, day.month, day.day, 8 - offset, tzinfo=dt.UTC)
    assert c.cap_xml is None and c.launched_at is None
    assert _deliveries(db, cid) == {}
    assert campaign_report(db, cid)["status"] == "scheduled"
    assert _campaign(db, cid).status == "scheduled"  # the report did not mark it finished
    # {time} is the scheduled time in Belgium, not the time of scheduling.
    cid2 = launch_campaign(db, _req(texts={"fr": "Alerte à {time}", "nl": "Alarm om {time}"},
                                    scheduled_for=at))
    assert _campaign(db, cid2).content["nl"]["sms"] == "Alarm om 08:00"


def test_scheduler_sends_when_due_and_only_once(db):
    now = utcnow()
    cid = launch_campaign(db, _req(scheduled_for=now + dt.timedelta(hours=1)))
    assert run_due(db, now=now) == []
    assert _deliveries(db, cid) == {}
    later = now + dt.timedelta(hours=1, seconds=1)
    assert run_due(db, now=later) == [cid]
    assert run_due(db, now=later) == []
    assert fan_out_scheduled(db, cid, now=later) is None
    assert Counter(ch for ch, _ in _deliveries(db, cid)) == {"sms": 2, "email": 1}
    doc = _cap(db, cid)
    assert doc.findtext("cap:sent", namespaces=NS) == brussels_time(later)
    assert _campaign(db, cid).status == "sending"


def test_several_workers_claim_a_due_campaign_once(db):
    now = utcnow()
    cid = launch_campaign(db, _req(scheduled_for=now + dt.timedelta(minutes=5)))
    due = now + dt.timedelta(minutes=6)
    barrier = threading.Barrier(4)
    results: list[object] = []

    def worker() -> None:
        barrier.wait()
        try:
            results.append(fan_out_scheduled(db, cid, now=due))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(map(repr, results)) == sorted(["3", "None", "None", "None"]), results
    assert len(_deliveries(db, cid)) == 3


@pytest.mark.parametrize("kw, field", [
    ({"scheduled_for": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "scheduled_for"),
    ({"scheduled_for": dt.datetime(2099, 1, 1)}, "scheduled_for"),
    ({"expires_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, "expires_at"),
])
def test_bad_times_are_input_errors(db, kw, field):
    with pytest.raises(CampaignInputError) as exc:
        launch_campaign(db, _req(**kw))
    assert exc.value.field == field
    with transaction(db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


def test_cancel_a_scheduled_campaign_before_it_goes(db):
    now = utcnow()
    cid = launch_campaign(db, _req(scheduled_for=now + dt.timedelta(hours=1)))
    result = cancel_campaign(db, cid, "op", authority_id="23003")
    assert result == {"campaign_id": cid, "stopped": 0, "cancel_campaign_id": None,
                      "cap_identifier": None, "status_was": "scheduled",
                      "summary": "The scheduled message will not be sent; nothing had "
                                 "been sent."}
    assert run_due(db, now=now + dt.timedelta(hours=2)) == []
    assert _deliveries(db, cid) == {}
    c = _campaign(db, cid)
    assert c.status == "cancelled" and c.cap_xml is None
    assert campaign_report(db, cid)["status"] == "cancelled"


# ----------------------------------------------------------------------------- update


def test_update_reaches_original_recipients_and_the_new_area(db):
    original = launch_campaign(db, _req(expires_at=utcnow() + dt.timedelta(hours=3)))
    assert set(_deliveries(db, original)) == {("sms", "+32470000001"), ("sms", "+32470000002"),
                                             ("email", "s1@example.org")}
    # C holds only S3: the update goes to S1, S2 (original) and S3 (new area), not S4.
    new = update_campaign(db, original, _req(
        AREA_C, texts={"fr": "Mise à jour: la zone s'étend.", "nl": "Update: de zone groeit."},
        kind=""))
    assert set(_deliveries(db, new)) == {
        ("sms", "+32470000001"), ("sms", "+32470000002"), ("sms", "+32470000003"),
        ("email", "s1@example.org"), ("email", "s3@example.org")}
    c = _campaign(db, new)
    assert c.msg_type == "Update" and c.references_id == original and c.kind == "alert"
    assert c.content["nl"]["email_subject"].startswith("UPDATE – ALARM")
    # The original's queued deliveries are not stopped by an update.
    assert set(_deliveries(db, original).values()) == {"queued"}

    first, update = _cap(db, original), _cap(db, new)
    assert update.findtext("cap:msgType", namespaces=NS) == "Update"
    assert update.findtext("cap:references", namespaces=NS) == _triple(first)
    assert update.findtext("cap:info/cap:expires", namespaces=NS) == \
        first.findtext("cap:info/cap:expires", namespaces=NS)
    assert [i.findtext("cap:description", namespaces=NS)
            for i in update.findall("cap:info", NS)] == ["Mise à jour: la zone s'étend.",
                                                         "Update: de zone groeit."]

    # An update of the update references both and reaches everyone reached so far.
    again = update_campaign(db, new, _req(None, texts=TEXTS, channels=["sms"], kind="warning"))
    refs = _cap(db, again).findtext("cap:references", namespaces=NS).split()
    assert refs == [_triple(first), _triple(update)]
    assert set(_deliveries(db, again)) == {("sms", f"+3247000000{i}") for i in (1, 2, 3)}
    assert _campaign(db, again).kind == "warning"


def test_update_refusals(db):
    original = launch_campaign(db, _req())
    with pytest.raises(CampaignNotFound):
        update_campaign(db, original, _req(authority_id="23002"))
    with pytest.raises(CampaignNotFound):
        update_campaign(db, "nope", _req())
    with pytest.raises(CampaignInputError) as exc:
        update_campaign(db, original, _req(environment="live"))
    assert exc.value.field == "environment"
    with pytest.raises(CampaignInputError) as exc:
        update_campaign(db, original, _req(texts={"fr": "Rue {street}"}))
    assert exc.value.field == "text.fr"
    no_cap = launch_campaign(db, _req(channels=["sms"]))
    with pytest.raises(CampaignInputError) as exc:
        update_campaign(db, no_cap, _req(channels=["sms", "cap"]))
    assert exc.value.field == "channels"
    with transaction(db) as s:
        draft = s.get(Campaign, no_cap)
        assert draft is not None
        draft.status = "draft"
    with pytest.raises(CampaignInputError) as exc:
        update_campaign(db, no_cap, _req())
    assert "draft" in exc.value.reason
    with transaction(db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)
                        .where(Campaign.msg_type == "Update")) == 0


# ----------------------------------------------------------------------------- cancel


def test_cancel_stops_queued_deliveries_and_publishes_cancel(db):
    original = launch_campaign(db, _req())
    claimed = queue.claim(db, "w1", "sms", "simulation", 1, 30.0, original)
    assert len(claimed) == 1
    result = cancel_campaign(db, original, "op", authority_id="23003", source="127.0.0.1")
    assert result["stopped"] == 2
    states = _deliveries(db, original)
    assert states[("sms", claimed[0].address)] == "in_flight"  # in flight finishes
    assert Counter(states.values()) == {"stopped": 2, "in_flight": 1}
    assert campaign_report(db, original)["status"] == "cancelled"

    cancel = _cap(db, result["cancel_campaign_id"])
    assert cancel.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert cancel.findtext("cap:identifier", namespaces=NS) == result["cap_identifier"]
    assert cancel.findtext("cap:references", namespaces=NS) == _triple(_cap(db, original))
    assert _deliveries(db, result["cancel_campaign_id"]) == {}
    # Once cancelled, nothing more: no second cancel, no update, no all-clear.
    for action in (lambda: cancel_campaign(db, original, "op"),
                   lambda: update_campaign(db, original, _req()),
                   lambda: all_clear(db, original, _req(None, texts={}, channels=[]))):
        with pytest.raises(CampaignInputError) as exc:
            action()
        assert exc.value.field == "campaign_id" and "cancelled" in exc.value.reason
    with pytest.raises(CampaignNotFound):
        cancel_campaign(db, launch_campaign(db, _req()), "op", authority_id="21004")


# ----------------------------------------------------------------------------- all-clear


def test_all_clear_goes_to_the_original_recipients_only(db):
    original = launch_campaign(db, _req())
    # A new subscriber in the area after the alert does not get the all-clear.
    import_subscribers(db, b"subscriber_id,language,mobile,email,lat,lon\n"
                           b"S9,fr,+32470000009,,50.7490,4.3010\n")
    new = all_clear(db, original, _req(None, texts={}, channels=[], kind=""))
    assert set(_deliveries(db, new)) == set(_deliveries(db, original))
    c = _campaign(db, new)
    assert c.response_type == "AllClear" and c.msg_type == "Update"
    assert c.texts["fr"].startswith("Fin de l'alerte pour Beersel")
    # Issue 7.11: no "(zone)" in public texts for a drawn area: it is in Beersel.
    assert c.content["fr"]["email_subject"] == "FIN D'ALERTE – Beersel"
    doc = _cap(db, new)
    assert [e.text for e in doc.iterfind("cap:info/cap:responseType", NS)] == ["AllClear"] * 2
    assert doc.findtext("cap:info/cap:urgency", namespaces=NS) == "Past"
    assert doc.findtext("cap:references", namespaces=NS) == _triple(_cap(db, original))
    # The operator's own texts (on another alert: a chain has one all-clear).
    texted = all_clear(db, launch_campaign(db, _req()),
                       _req(None, texts={"fr": "C'est fini.", "nl": "Gedaan."},
                            channels=["sms"], kind=""))
    assert _campaign(db, texted).texts == {"fr": "C'est fini.", "nl": "Gedaan."}


# ----------------------------------------------------------------------------- kinds


def test_information_only_to_opted_in_and_nobody_invalid(db):
    with transaction(db) as s:
        s.execute(sa.update(ContactPoint).where(ContactPoint.value.in_(
            ["+32470000001", "s3@example.org", "+32470000003"])).values(info_opt_in=True))
        s.execute(sa.update(ContactPoint).where(ContactPoint.value == "+32470000003")
                  .values(invalid_at=utcnow(), invalid_reason="5.1.1"))
    info = launch_campaign(db, _req(AREA_B, kind="information"))
    assert set(_deliveries(db, info)) == {("sms", "+32470000001"), ("email", "s3@example.org")}
    alert = launch_campaign(db, _req(AREA_B))
    assert ("sms", "+32470000003") not in _deliveries(db, alert)
    assert len(_deliveries(db, alert)) == 4
    doc = _cap(db, info)
    assert doc.findtext("cap:info/cap:urgency", namespaces=NS) == "Future"
    assert doc.findtext("cap:scope", namespaces=NS) == "Public"


# ----------------------------------------------------------------------------- worker


@pytest.mark.slow
async def test_a_running_worker_sends_a_scheduled_campaign(engine):
    from tocsin.core.settings import get_settings
    from tocsin.dispatch.worker import Worker, sender_factories, start_simulators, stop_simulators

    await asyncio.to_thread(import_subscribers, engine, CSV.encode())
    cid = await asyncio.to_thread(launch_campaign, engine, _req(
        scheduled_for=utcnow() + dt.timedelta(seconds=1)))
    sims = await start_simulators(receipt_delay=0.01)
    worker = Worker(engine, sender_factories(get_settings(), sims))
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(100):
            states = await asyncio.to_thread(_deliveries, engine, cid)
            if states and not {"queued", "in_flight"} & set(states.values()):
                break
            await asyncio.sleep(0.1)
    finally:
        worker.stop()
        await task
        await stop_simulators(sims)
    assert len(states) == 3 and set(states.values()) <= {"sent", "delivered"}


# ----------------------------------------------------------------------------- API and CLI


def _client(engine, tmp_path):
    from tocsin.authorities.services import create_user
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    create_user(engine, "beersel", "dike-watch-password-1", "23003")
    create_user(engine, "halle", "senne-valley-password-1", "23027")
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    return TestClient(create_app(engine, start_worker=False, settings=settings))


def _login(client: TestClient, username: str, password: str) -> str:
    return session_csrf(client, username, password, page="/campaigns/new")


def test_api_lifecycle(engine, tmp_path):
    import_subscribers(engine, CSV.encode())
    with _client(engine, tmp_path) as client:
        h = {"X-CSRF-Token": _login(client, "beersel", "dike-watch-password-1")}
        body = {"texts": TEXTS, "channels": ["sms", "email", "cap"],
                "area_geojson": json.loads(_area(AREA_A))}
        r = client.post("/api/campaigns", json=body, headers=h)
        assert r.status_code == 422 and r.json()["error"]["field"] == "kind"
        r = client.post("/api/campaigns/estimate", json=body, headers=h)
        assert r.status_code == 200 and r.json()["content"]["fr"]["sms"] == TEXTS["fr"]
        r = client.post("/api/campaigns", json={**body, "kind": "alert",
                                                "scheduled_for": "2020-01-01 08:00"}, headers=h)
        assert r.status_code == 422 and r.json()["error"]["field"] == "scheduled_for"
        r = client.post("/api/campaigns", json={**body, "kind": "alert"}, headers=h)
        assert r.status_code == 201, r.text
        cid = r.json()["campaign_id"]
        r = client.post(f"/api/campaigns/{cid}/update", headers=h, json={
            "texts": {"fr": "Mise à jour {street}", "nl": "Update {street}"},
            "fields": {"street": "Lotsestraat"}, "area_geojson": json.loads(_area(AREA_C))})
        assert r.status_code == 201, r.text
        assert len(_deliveries(engine, r.json()["campaign_id"])) == 5
        r = client.post(f"/api/campaigns/{cid}/all-clear", headers=h, json={})
        assert r.status_code == 201, r.text
        assert _campaign(engine, r.json()["campaign_id"]).response_type == "AllClear"
        # The all-clear ended the alert: it can no longer be cancelled (issue 7.1).
        r = client.post(f"/api/campaigns/{cid}/cancel", headers=h, json={})
        assert r.status_code == 422 and r.json()["error"]["field"] == "campaign_id"
        cid = client.post("/api/campaigns", json={**body, "kind": "alert"},
                          headers=h).json()["campaign_id"]
        assert client.post(f"/api/campaigns/{cid}/cancel", json={}).status_code == 403  # CSRF
        r = client.post(f"/api/campaigns/{cid}/cancel", headers=h, json={})
        assert r.status_code == 200 and r.json()["cap_identifier"], r.text
        r = client.post(f"/api/campaigns/{cid}/cancel", headers=h, json={})
        assert r.status_code == 422 and r.json()["error"]["field"] == "campaign_id"
        other = client.post("/api/campaigns", json={**body, "kind": "warning"},
                            headers=h).json()["campaign_id"]
        client.post("/logout", data={"csrf_token": h["X-CSRF-Token"]})
        h = {"X-CSRF-Token": _login(client, "halle", "senne-valley-password-1")}
        r = client.post(f"/api/campaigns/{other}/cancel", headers=h, json={})
        assert r.status_code == 404
        assert _campaign(engine, other).status == "sending"


def test_cli_schedule_and_cancel(engine, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    area = tmp_path / "a.geojson"
    area.write_text(_area(AREA_A))
    runner = CliRunner()
    day = _next(7, 1)
    result = runner.invoke(app, ["campaign", "send", "--authority", "23003", "--area", str(area),
                                 "--text", "fr=Alerte", "--at", f"{day:%Y-%m-%d} 08:00",
                                 "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "scheduled"
    assert out["scheduled_for"] == f"{day:%Y-%m-%d}T06:00:00+00:00"
    result = runner.invoke(app, ["campaign", "send", "--authority", "23003", "--area", str(area),
                                 "--text", "fr=Alerte", "--at", "2026-03-29 02:30"])
    assert result.exit_code == 1 and "error: scheduled_for:" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["campaign", "cancel", out["campaign_id"], "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stopped"] == 0
    result = runner.invoke(app, ["campaign", "cancel", out["campaign_id"]])
    assert result.exit_code == 1 and "error: campaign_id:" in result.output
    result = runner.invoke(app, ["campaign", "all-clear", "nope"])
    assert result.exit_code == 1 and "error: campaign_id:" in result.output


def test_launching_a_draft_replaces_it(db):
    draft_id = "d" * 32
    with transaction(db) as s:
        s.add(Campaign(id=draft_id, authority_id="23003", kind="warning",
                       environment="simulation", status="draft", priority=1, channels="cap",
                       texts={"nl": "Storm"}, area=json.dumps(mapping(AREA_A)),
                       area_name="Beersel", cap_params={}, cap_identifier="draft-" + draft_id,
                       sms_source="1789", mail_from="x@example.org", created_by="import"))
    with pytest.raises(CampaignInputError) as exc:
        launch_campaign(db, _req(authority_id="23003", draft_id="nope"))
    assert exc.value.field == "draft_id"
    with pytest.raises(CampaignInputError) as exc:  # a draft is not an alert to update
        update_campaign(db, draft_id, _req())
    assert "draft" in exc.value.reason
    cid = launch_campaign(db, _req(), draft_id=draft_id)
    with transaction(db) as s:
        assert s.get(Campaign, draft_id) is None
        assert s.get(Campaign, cid) is not None


# ----------------------------------------------------------------------------- fix round


def _refs(engine, campaign_id: str) -> list[str]:
    return (_cap(engine, campaign_id).findtext("cap:references", namespaces=NS) or "").split()


@pytest.mark.parametrize("cancel_which", ["original", "update"])
def test_a_cancelled_chain_is_closed(db, cancel_which):
    b = launch_campaign(db, _req())
    u = update_campaign(db, b, _req(AREA_C, kind=""))
    assert set(_deliveries(db, u).values()) == {"queued"}
    result = cancel_campaign(db, b if cancel_which == "original" else u, "op",
                             authority_id="23003")
    # Every queued delivery of the chain stops: the original's and its update's.
    assert set(_deliveries(db, b).values()) == {"stopped"}
    assert set(_deliveries(db, u).values()) == {"stopped"}
    assert result["stopped"] == len(_deliveries(db, b)) + len(_deliveries(db, u))
    assert _campaign(db, b).status == _campaign(db, u).status == "cancelled"
    # The CAP Cancel references every published message of the chain.
    assert _refs(db, result["cancel_campaign_id"]) == [_triple(_cap(db, b)),
                                                       _triple(_cap(db, u))]
    for target in (b, u):
        for action in (lambda t=target: cancel_campaign(db, t, "op"),
                       lambda t=target: update_campaign(db, t, _req(kind="")),
                       lambda t=target: all_clear(db, t, _req(None, texts={}, channels=[],
                                                               kind=""))):
            with pytest.raises(CampaignInputError) as exc:
                action()
            assert exc.value.field == "campaign_id" and "cancelled" in exc.value.reason
    with transaction(db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 3


def test_all_clear_references_every_published_message_of_the_chain(db):
    b = launch_campaign(db, _req())
    u = update_campaign(db, b, _req(kind=""))
    no_cap = update_campaign(db, b, _req(kind="", channels=["sms"]))
    assert _campaign(db, no_cap).cap_xml is not None  # panels must get every update
    ac = all_clear(db, b, _req(None, texts={}, channels=[], kind=""))
    assert _refs(db, ac) == [_triple(_cap(db, x)) for x in (b, u, no_cap)]


def test_lookup_by_cap_identifier(db):
    b = launch_campaign(db, _req())
    ident = _campaign(db, b).cap_identifier
    u = update_campaign(db, ident, _req(kind=""))
    assert _campaign(db, u).references_id == b
    ac = all_clear(db, f" {ident} ", _req(None, texts={}, channels=[], kind=""))
    assert _campaign(db, ac).references_id == b
    with pytest.raises(CampaignNotFound):
        cancel_campaign(db, ident, "op", authority_id="21004")
    with pytest.raises(CampaignInputError):  # found by identifier; over since its all-clear
        cancel_campaign(db, ident, "op", authority_id="23003")
    b2 = launch_campaign(db, _req())
    ident2 = _campaign(db, b2).cap_identifier
    assert cancel_campaign(db, ident2, "op", authority_id="23003")["campaign_id"] == b2


def test_lists_and_reports_tell_follow_ups_apart(db):
    from tocsin.campaigns.services import list_campaigns

    b = launch_campaign(db, _req())
    u = update_campaign(db, b, _req(kind=""))
    ac = all_clear(db, u, _req(None, texts={}, channels=[], kind=""))
    report = campaign_report(db, b)
    assert (report["msg_type"], report["response_type"], report["references_id"],
            report["label"]) == ("Alert", None, None, "Alert")
    assert [(f["campaign_id"], f["msg_type"], f["response_type"], f["label"])
            for f in report["follow_ups"]] == [(u, "Update", None, "Update"),
                                               (ac, "Update", "AllClear", "All clear")]
    assert all(f["launched_at"].endswith("Z") and f["status"] == "sending"
               for f in report["follow_ups"])
    assert campaign_report(db, ac)["label"] == "All clear"
    # A chain ends with its all-clear or its cancellation (issue 7.1): cancel another one.
    b2 = launch_campaign(db, _req())
    u2 = update_campaign(db, b2, _req(kind=""))
    cancel = cancel_campaign(db, b2, "op")["cancel_campaign_id"]
    rows = {r["campaign_id"]: r for r in list_campaigns(db, "23003", "simulation")}
    assert {k: rows[b][k] for k in ("msg_type", "response_type", "references_id", "label")} == \
        {"msg_type": "Alert", "response_type": None, "references_id": None, "label": "Alert"}
    assert [f["label"] for f in rows[b]["follow_ups"]] == ["Update", "All clear"]
    assert [f["label"] for f in rows[b2]["follow_ups"]] == ["Update", "Cancel"]
    assert rows[u2]["label"] == "Update" and rows[cancel]["references_id"] == b2
    assert rows[u]["label"] == "Update" and rows[u]["references_id"] == b
    assert rows[ac]["response_type"] == "AllClear" and rows[cancel]["label"] == "Cancel"
    assert rows[u]["follow_ups"] == []


def test_expiry_defaults_by_kind(db):
    from tocsin.campaigns.services import estimate_campaign

    now = utcnow()
    est = estimate_campaign(db, _req())
    expires = dt.datetime.fromisoformat(est["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(hours=23, minutes=59) < expires - now <= dt.timedelta(hours=24,
                                                                              minutes=1)
    assert est["expires_local"] == f"{expires.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M}"
    b = launch_campaign(db, _req())
    c = _campaign(db, b)
    assert c.expires_at == c.launched_at + dt.timedelta(hours=24)
    assert _cap(db, b).findtext("cap:info/cap:expires", namespaces=NS) == \
        brussels_time(c.expires_at)
    info = _campaign(db, launch_campaign(db, _req(kind="information")))
    assert info.expires_at == info.launched_at + dt.timedelta(days=7)
    at = now + dt.timedelta(hours=2)
    sched = _campaign(db, launch_campaign(db, _req(kind="test", scheduled_for=at)))
    assert sched.expires_at == at + dt.timedelta(hours=1)
    # An update keeps the alert's expiry while more than an hour of it is left.
    u = _campaign(db, update_campaign(db, b, _req(kind="")))
    assert u.expires_at == c.expires_at
    # An all-clear gets its own default from when it is sent.
    ac = _campaign(db, all_clear(db, b, _req(None, texts={}, channels=[], kind="")))
    assert ac.expires_at == ac.launched_at + dt.timedelta(hours=24)


@pytest.mark.parametrize("kw, field", [
    ({"expires_at": utcnow() + dt.timedelta(days=400)}, "expires_at"),
    ({"scheduled_for": utcnow() + dt.timedelta(days=400)}, "scheduled_for"),
])
def test_times_too_far_ahead_are_refused(db, kw, field):
    with pytest.raises(CampaignInputError) as exc:
        launch_campaign(db, _req(**kw))
    assert exc.value.field == field


def test_deleted_template_does_not_block_an_alert(db):
    from tocsin.campaigns.services import estimate_campaign
    from tocsin.messages.models import MessageTemplate

    with transaction(db) as s:
        s.add(MessageTemplate(id="t" * 32, authority_id="23003", name="Flood", kind="alert",
                              channels="sms", texts={"nl": "x"}, created_by="op"))
    kept = launch_campaign(db, _req(template_id="t" * 32))
    assert _campaign(db, kept).template_id == "t" * 32
    with transaction(db) as s:
        s.execute(sa.delete(MessageTemplate))
    est = estimate_campaign(db, _req(template_id="t" * 32))
    assert [w["field"] for w in est["warnings"]] == ["template_id"]
    cid = launch_campaign(db, _req(template_id="t" * 32))
    assert _campaign(db, cid).template_id is None
    assert len(_deliveries(db, cid)) == 3


def test_api_bad_times_and_bad_json_name_the_field(engine, tmp_path):
    import_subscribers(engine, CSV.encode())
    with _client(engine, tmp_path) as client:
        h = {"X-CSRF-Token": _login(client, "beersel", "dike-watch-password-1")}
        body = {"texts": TEXTS, "channels": ["sms", "email", "cap"], "kind": "alert",
                "area_geojson": json.loads(_area(AREA_A))}
        for key, value in (("scheduled_for", "9999-12-31T23:59:59-14:00"),
                           ("expires_at", "0001-01-01T00:30+14:00"),
                           ("expires_at", "9999-12-31 23:59")):
            r = client.post("/api/campaigns", json={**body, key: value}, headers=h)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] == key
        r = client.post("/api/campaigns/estimate", headers={**h, "Content-Type":
                                                            "application/json"},
                        content=b'{"texts": {"fr": "x"},\n  "channels": [sms]}')
        assert r.status_code == 422
        assert r.json()["error"] == {"field": "body",
                                     "reason": "not valid JSON (line 2 column 16)"}
        r = client.post("/api/campaigns/estimate", json=body, headers=h)
        assert r.json()["expires_at"].endswith("Z") and r.json()["warnings"] == []
        with transaction(engine) as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0


def test_default_all_clear_names_the_area_in_each_language(engine):
    from tocsin.campaigns.services import default_all_clear_texts

    cid = launch_campaign(engine, CampaignRequest(
        authority_id="21004", municipality_nis="21004", channels=["cap"],
        texts={"fr": "Alerte", "nl": "Alarm"}))
    texts = default_all_clear_texts(engine, cid)
    assert "Bruxelles" in texts["fr"] and "Brussel" in texts["nl"]
    assert "Bruxelles" not in texts["nl"]


# ----------------------------------------------------------------------------- issue 7.1


def test_follow_up_rule_closes_a_chain_after_its_all_clear():
    alert = rules.ChainMessage("a", "finished")
    update = rules.ChainMessage("u", "finished", "Update")
    clear = rules.ChainMessage("c", "sending", "Update", "AllClear")
    open_chain = [alert, update]
    for action in ("update", "all_clear", "cancel"):
        assert rules.follow_up_refusal(action, update, open_chain) is None
    for target in (alert, update, clear):
        for action in ("update", "all_clear", "cancel"):
            reason = rules.follow_up_refusal(action, target, [alert, update, clear])
            assert reason is not None and "all-clear" in reason and "new alert" in reason
    assert "cannot be updated" in rules.follow_up_refusal("update", alert,
                                                          [alert, clear])
    assert "taken back" in rules.follow_up_refusal("cancel", clear, [alert, clear])
    # a cancelled chain says so first, whatever else it holds
    cancelled = rules.ChainMessage("a", "cancelled")
    assert "cancelled" in rules.follow_up_refusal("update", cancelled, [cancelled, clear])


def test_an_all_cleared_chain_cannot_be_reopened(db):
    """Issue 7.1: after the all-clear, no update (it went to every original recipient and
    put the alert back in the live feed), no second all-clear, no cancel; on any message
    of the chain, nothing written."""
    b = launch_campaign(db, _req())
    u = update_campaign(db, b, _req(kind=""))
    ac = all_clear(db, u, _req(None, texts={}, channels=[], kind=""))
    with transaction(db) as s:
        before = s.scalar(sa.select(sa.func.count()).select_from(Campaign))
        deliveries = s.scalar(sa.select(sa.func.count()).select_from(Delivery))
    ident = _campaign(db, ac).cap_identifier
    for target in (b, u, ac, ident):
        for action in (lambda t=target: update_campaign(db, t, _req(kind="")),
                       lambda t=target: all_clear(db, t, _req(None, texts={}, channels=[],
                                                              kind="")),
                       lambda t=target: cancel_campaign(db, t, "op", authority_id="23003")):
            with pytest.raises(CampaignInputError) as exc:
                action()
            assert exc.value.field == "campaign_id"
            assert "all-clear" in exc.value.reason and "over" in exc.value.reason
    with transaction(db) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == before
        assert s.scalar(sa.select(sa.func.count()).select_from(Delivery)) == deliveries
    assert {_campaign(db, x).status for x in (b, u, ac)} == {"sending"}
    # the report says so, so that pages offer none of these
    refused = campaign_report(db, ac)["chain"]["refused"]
    assert all(refused[a] and "all-clear" in refused[a] for a in ("update", "all_clear",
                                                                  "cancel"))


def test_cli_and_web_refuse_to_reopen_an_all_cleared_chain(engine, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    import_subscribers(engine, CSV.encode())
    b = launch_campaign(engine, _req())
    ac = all_clear(engine, b, _req(None, texts={}, channels=[], kind=""))
    runner = CliRunner()
    for args in (["campaign", "update", ac, "--text", "fr=Encore", "--text", "nl=Nog"],
                 ["campaign", "all-clear", b],
                 ["campaign", "cancel", ac]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert "error: campaign_id:" in result.output and "all-clear" in result.output
        assert "Traceback" not in result.output
    with _client(engine, tmp_path) as client:
        h = {"X-CSRF-Token": _login(client, "beersel", "dike-watch-password-1")}
        for path, body in ((f"/api/campaigns/{ac}/update", {"texts": {"fr": "Encore"}}),
                           (f"/api/campaigns/{b}/all-clear", {}),
                           (f"/api/campaigns/{ac}/cancel", {})):
            r = client.post(path, headers=h, json=body)
            assert r.status_code == 422, (path, r.text)
            error = r.json()["error"]
            assert error["field"] == "campaign_id" and "all-clear" in error["reason"]
        for page_id in (b, ac):
            page = client.get(f"/campaigns/{page_id}").text
            for action in ("action-update", "action-all-clear", "action-cancel"):
                assert f'id="{action}"' not in page, (page_id, action)
            assert "this alert is over" in page
    with transaction(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 2


# ----------------------------------------------------------------------------- areas (issue 7)

# Across Beersel's western border (into Dilbeek/Sint-Pieters-Leeuw): part of it is cut.
ACROSS = box(4.25, 50.745, 4.29, 50.755)


def test_launch_and_update_say_what_was_cut_at_the_border(db):
    """Issue 7.3: the launch (CLI path) and an update with a new area say what was cut."""
    from tocsin.campaigns.services import launch, update_with_warnings
    from tocsin.geo.areas import area_km2

    launched = launch(db, _req(ACROSS))
    [cut] = [w for w in launched.warnings if w.get("code") == "area_cut"]
    kept = area_km2(json_shape(_campaign(db, launched.campaign_id).area))
    assert cut["km2"] == pytest.approx(area_km2(ACROSS) - kept, abs=0.01)
    assert cut["share"] == pytest.approx(cut["km2"] / area_km2(ACROSS), abs=0.002)
    assert cut["message"].startswith("The area was cut at the border of Beersel: ")
    inside = launch(db, _req(AREA_A)).warnings  # inside: no cut to tell
    assert [w for w in inside if w["code"] == "area_cut"] == []
    updated = update_with_warnings(db, launched.campaign_id,
                                   _req(ACROSS.union(AREA_B), kind="", environment=""))
    assert [w["code"] for w in updated.warnings] == ["area_cut"]
    # The drawn area is named after the municipality, never "(zone)" (issue 7.11).
    c = _campaign(db, launched.campaign_id)
    assert c.area_name == "Beersel"
    assert "(zone)" not in json.dumps(c.content, ensure_ascii=False)


def test_cli_send_says_what_was_cut_in_text_and_json(engine, monkeypatch, tmp_path):
    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    area = tmp_path / "a.geojson"
    area.write_text(_area(ACROSS))
    runner = CliRunner()
    day = _next(7, 1)
    common = ["campaign", "send", "--authority", "23003", "--area", str(area),
              "--text", "fr=Alerte", "--channels", "cap", "--receipt-timeout", "0"]
    result = runner.invoke(app, [*common, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # Every warning of the launch (here also Dutch, Beersel's language, missing).
    assert "area_cut" in [w["code"] for w in report["warnings"]]
    assert "warning: area: The area was cut at the border of Beersel: " in result.stderr
    result = runner.invoke(app, common)
    assert result.exit_code == 0, result.output
    assert "warning: The area was cut at the border of Beersel: " in result.stdout
    result = runner.invoke(app, [*common, "--at", f"{day:%Y-%m-%d} 08:00", "--json"])
    assert result.exit_code == 0, result.output
    assert "area_cut" in [w["code"] for w in json.loads(result.stdout)["warnings"]]


def json_shape(text: str):
    from shapely.geometry import shape

    return shape(json.loads(text))
