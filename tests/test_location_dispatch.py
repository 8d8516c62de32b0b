"""Sending location-based SMS and cell broadcast (issue 11, SPEC F18, F31): a campaign with
``lbsms`` and ``cb`` goes out through the operator adapters to the simulators over real
HTTP (one LB-SMS operator per synthetic operator, one ECBE CBC, Tocsin's callback
listener), the operators' signed callbacks are applied once each and in order, the
registered subscribers in the area get the ordinary SMS too, and the report carries the
counts per operator. The acceptance test of the issue: for an area over part of Halle,
the estimate's "inside" is within 10 % of population × phones per capita × share, the
bleed is not zero, and the simulators' final counts fall in the estimate's range.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
import sqlalchemy as sa
from typer.testing import CliRunner

from tocsin.cli import app
from tocsin.core.settings import Settings

runner = CliRunner()

#: A rectangle over the centre of Halle (23027), wholly inside the municipality.
HALLE_PART = {"type": "Polygon", "coordinates": [[
    [4.225, 50.725], [4.255, 50.725], [4.255, 50.745], [4.225, 50.745], [4.225, 50.725]]]}


@pytest.fixture
def db(engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    # Fast simulated operators: the whole broadcast within a few seconds.
    monkeypatch.setenv("TOCSIN_LBSMS_SIMULATOR_RATE_PER_S", "20000")
    monkeypatch.setenv("TOCSIN_LBSMS_SIMULATOR_TICK_S", "0.2")
    monkeypatch.setenv("TOCSIN_LBSMS_SIMULATOR_RESOLVE_DELAY_S", "0.1")
    csv = tmp_path / "subs.csv"
    csv.write_text("subscriber_id,language,mobile,email,lat,lon\n"
                   "S1,nl,+32470123456,s1@example.org,50.7346,4.2406\n"
                   "S2,fr,+32470123457,,50.7350,4.2410\n"
                   "S3,nl,+32470123458,,50.80,4.40\n")  # outside the area
    result = runner.invoke(app, ["subscribers", "import", str(csv)])
    assert result.exit_code == 0, result.output
    return engine


def _area_file(tmp_path: Path) -> Path:
    p = tmp_path / "halle.geojson"
    p.write_text(json.dumps(HALLE_PART))
    return p


def _send(tmp_path: Path, *extra: str) -> dict:
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "23027", "--area", str(_area_file(tmp_path)),
        "--text", "nl=Chemische wolk: blijf binnen.", "--text", "fr=Nuage chimique: restez "
        "à l'intérieur.", "--justification", "imminent danger: chemical cloud",
        "--send-timeout", "60", "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_halle_estimate_matches_population_and_the_simulators_counts(db, tmp_path):
    from tocsin.geo import cellmodel as cm
    from tocsin.geo.reach import LOCATED_FRACTION, PHONES_PER_CAPITA

    estimate = runner.invoke(app, ["campaign", "estimate", "--authority", "23027", "--area",
                                   str(_area_file(tmp_path)), "--channels", "sms,lbsms,cb",
                                   "--json"])
    assert estimate.exit_code == 0, estimate.output
    lbsms = json.loads(estimate.stdout)["channels"]["lbsms"]
    assert lbsms["model"] == "synthetic"
    # Population of the part: Halle's population × the part's share of its area (the
    # municipalities data, read here independently of the estimate's code).
    m = cm.municipalities()
    i = list(m.nis).index("23027")
    part = cm.project(shapely.geometry.shape(HALLE_PART))
    population = float(m.population[i]) * part.area / float(shapely.area(m.geoms[i]))
    for op in cm.SYNTHETIC_OPERATORS:
        # Every phone inside, before the located share: the range's high end.
        expected = population * PHONES_PER_CAPITA * op.share
        inside = lbsms["by_operator"][op.key]["phones_inside"][1]
        assert abs(inside - expected) <= 0.10 * expected, (op.key, inside, expected)
    total_expected = population * PHONES_PER_CAPITA * LOCATED_FRACTION
    assert abs(lbsms["phones_inside_expected"] - total_expected) <= 0.10 * total_expected
    assert lbsms["bleed_km2"] > 0 and lbsms["phones_outside"][1] > 0

    report = _send(tmp_path, "--channels", "lbsms,cb")
    loc = report["location"]["lbsms"]
    assert loc["model"] == "synthetic cell model"
    assert set(loc["operators"]) == {"op1", "op2", "op3"}
    low = lbsms["phones_inside"][0] + lbsms["phones_outside"][0]
    high = lbsms["phones_inside"][1] + lbsms["phones_outside"][1]
    assert low <= loc["phones_targeted"] <= high, (low, loc["phones_targeted"], high)
    for key, op in loc["operators"].items():
        est = lbsms["by_operator"][key]
        assert op["state"] == "completed", op
        assert est["phones_inside"][0] + est["phones_outside"][0] <= op["phones_targeted"] \
            <= est["phones_inside"][1] + est["phones_outside"][1]
        assert op["delivered"] + op["failed"] == op["phones_targeted"]
        assert op["cells_reported"] > 0 and op["failed"] <= 0.02 * op["phones_targeted"] + 1
    assert report["channels"]["lbsms"]["by_status"] == {"delivered": 3}
    # Registered subscribers with an address in the area also got the SMS (F18).
    assert report["channels"]["sms"]["recipients"] == 2
    cb = report["location"]["cb"]["operators"]["cbc"]
    # An alert's CAP defaults (Severe, Immediate, Likely): EU-Alert level 3, 4375; the
    # second language on the additional-language identifier (+13).
    assert cb["state"] == "broadcasting" and cb["messages"] == [4375, 4388]
    assert report["status"] == "finished"


def test_the_operators_got_every_field(db, tmp_path):
    """What reached the simulated operator: sender 1789, priority, not-after, the
    justification, the area, every language in one text; the CBC: the EU-Alert ids."""
    from tocsin.campaigns.location_models import LocationSend
    from tocsin.core.db import transaction

    report = _send(tmp_path, "--channels", "lbsms", "--kind", "warning")
    with transaction(db) as s:
        rows = s.scalars(sa.select(LocationSend).where(
            LocationSend.campaign_id == report["campaign_id"])).all()
        assert {r.operator for r in rows} == {"op1", "op2", "op3"}
        assert all(r.last_seq >= 4 and not r.pending for r in rows)
        assert all(r.reference == f"tocsin:{report['campaign_id']}:lbsms:{r.operator}"
                   for r in rows)


def test_lbsms_needs_the_justification_and_writes_nothing(db, tmp_path):
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "23027", "--municipality", "23027",
        "--text", "nl=Test", "--channels", "lbsms"])
    assert result.exit_code == 1, result.output
    assert "justification" in result.output
    with db.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM campaign")).scalar_one() == 0


def test_live_lbsms_without_operators_is_refused(db):
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, launch_campaign

    req = CampaignRequest(authority_id="23027", texts={"nl": "Test"}, channels=["lbsms"],
                          municipality_nis="23027", environment="live",
                          justification="imminent danger")
    with pytest.raises(CampaignInputError) as err:
        launch_campaign(db, req, Settings())
    assert err.value.field == "channels" and err.value.code == "location_not_configured"


def test_information_is_not_sent_by_location_sms(db):
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, launch_campaign

    req = CampaignRequest(authority_id="23027", texts={"nl": "Test"}, channels=["lbsms"],
                          municipality_nis="23027", kind="information",
                          justification="imminent danger")
    with pytest.raises(CampaignInputError) as err:
        launch_campaign(db, req, Settings())
    assert err.value.code == "lbsms_kind"


def _launched(db, channels: list[str]) -> str:
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    req = CampaignRequest(authority_id="23027", texts={"nl": "Test"}, channels=channels,
                          area_geojson=HALLE_PART, justification="imminent danger")
    return launch_campaign(db, req, Settings())


@pytest.fixture
def anydb(any_engine, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOCSIN_DATABASE_URL", any_engine.url.render_as_string(
        hide_password=False))
    return any_engine


def test_callbacks_are_applied_once_and_in_order(anydb):
    db = anydb
    from tocsin.campaigns.location import UnknownBroadcast, apply_callback, campaign_location
    from tocsin.campaigns.services import campaign_report

    cid = _launched(db, ["lbsms"])
    ref = f"tocsin:{cid}:lbsms:op1"

    def event(seq: int, name: str, **extra: object) -> dict:
        return {"operator_ref": "op1-x", "reference": ref, "seq": seq, "event": name, **extra}

    assert apply_callback(db, "op1", event(1, "accepted")).applied == [1]
    # seq 3 before 2: it waits; then 2 applies both, in order.
    waiting = apply_callback(db, "op1", event(3, "progress", phones_targeted=10,
                                              counts={"submitted": 10, "delivered": 9,
                                                      "failed": 1},
                                              per_cell=[{"cell_id": "001-01-1", "targeted": 10,
                                                         "delivered": 9, "failed": 1}]))
    assert waiting.waiting and waiting.applied == []
    both = apply_callback(db, "op1", event(2, "resolved", phones_targeted=10,
                                           cells_resolved=1))
    assert both.applied == [2, 3] and both.state == "sending"
    assert apply_callback(db, "op1", event(2, "resolved")).duplicate
    done = apply_callback(db, "op1", event(4, "completed", phones_targeted=10,
                                           counts={"submitted": 10, "delivered": 9,
                                                   "failed": 1}))
    assert done.state == "completed"
    op1 = campaign_location(db, cid)["lbsms"]["operators"]["op1"]
    assert op1 | {"duplicates": 1, "delivered": 9, "failed": 1, "phones_targeted": 10,
                  "cells_reported": 1} == op1
    assert campaign_report(db, cid)["channels"]["lbsms"]["by_status"].get("delivered") == 1
    with pytest.raises(UnknownBroadcast):
        apply_callback(db, "op2", event(1, "accepted"))  # another operator's reference
    with pytest.raises(ValueError):
        apply_callback(db, "op1", event(0, "accepted"))


def test_callback_route_checks_the_signature(db):
    import time

    from fastapi.testclient import TestClient

    from tocsin.channels.webhook import sign
    from tocsin.web.routes.location_hooks import callback_app

    cid = _launched(db, ["lbsms"])
    body = json.dumps({"operator_ref": "op2-x", "reference": f"tocsin:{cid}:lbsms:op2",
                       "seq": 1, "event": "accepted"}).encode()
    client = TestClient(callback_app(db, "s3cret"))
    ts = int(time.time())
    bad = client.post("/hooks/lbsms/op2", content=body, headers={
        "X-Tocsin-Timestamp": str(ts), "X-Tocsin-Signature": sign("wrong", ts, body)})
    assert bad.status_code == 401
    headers = {"X-Tocsin-Timestamp": str(ts), "X-Tocsin-Signature": sign("s3cret", ts, body)}
    ok = client.post("/hooks/lbsms/op2", content=body, headers=headers)
    assert ok.status_code == 200 and ok.json()["applied"] == [1]
    again = client.post("/hooks/lbsms/op2", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_stop_reaches_the_operators_and_update_cancel_reach_the_cbc_in_order(db):
    """Through the real simulators: a slow broadcast is stopped at every operator (their
    ``stopped`` callbacks make the deliveries final); cell broadcast's update deletes
    then re-creates the messages with the update number + 1, the cancel deletes them."""
    import asyncio

    from tocsin.campaigns.location import campaign_location, refresh_status
    from tocsin.campaigns.services import (
        CampaignRequest,
        cancel_campaign,
        control_campaign,
        update_campaign,
    )
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.worker import sender_factories, start_simulators, stop_simulators

    settings = Settings(lbsms_simulator_rate_per_s=5, lbsms_simulator_tick_s=0.2,
                        lbsms_simulator_resolve_delay_s=0.1)

    async def scenario() -> tuple[dict, dict, list]:
        sims = await start_simulators(engine=db, settings=settings)
        try:
            senders = sender_factories(settings, sims)
            slow = _launched(db, ["lbsms"])
            run = asyncio.create_task(send_campaign(db, slow, senders, send_timeout=20,
                                                    settings=settings))
            for _ in range(200):
                ops = campaign_location(db, slow)["lbsms"]["operators"]
                if all(o["state"] == "sending" for o in ops.values()):
                    break
                await asyncio.sleep(0.05)
            # Polling (for when callbacks cannot arrive) reaches every operator too.
            assert await asyncio.to_thread(refresh_status, db, slow) == 3
            stopped = await asyncio.to_thread(control_campaign, db, slow, "stop")
            await run
            stopped_loc = campaign_location(db, slow)["lbsms"]["operators"]

            cb = _launched(db, ["cb"])
            await send_campaign(db, cb, senders, settings=settings)
            upd = await asyncio.to_thread(update_campaign, db, cb, CampaignRequest(
                authority_id="", texts={"nl": "Update"}, channels=[], environment=""),
                settings)
            await send_campaign(db, upd, senders, settings=settings)
            await asyncio.to_thread(cancel_campaign, db, cb, "cli")
            state = sims.location.cbc.app.state.cbc  # type: ignore[attr-defined]
            serials = [m.body["smscb_message"]["serial_nr"]["serial_nr_decoded"]
                       for m in state["history"]]
            return stopped, stopped_loc, [*state["log"], serials]
        finally:
            await stop_simulators(sims)

    stopped, ops, log = asyncio.run(scenario())
    serials = log.pop()
    assert set(stopped["location"]) == {"lbsms:op1", "lbsms:op2", "lbsms:op3"}
    for o in ops.values():
        assert o["state"] == "stopped" and o["delivered"] + o["failed"] < o["phones_targeted"]
    # Halle speaks Dutch: one message. Create; update = delete, then create with the
    # update number + 1 and the same message code; cancel = delete.
    assert [(m, st) for m, _, st in log] == [("POST", 201), ("DELETE", 200), ("POST", 201),
                                             ("DELETE", 200)]
    assert len({mid for _, mid, _ in log}) == 1
    assert [x["update_nr"] for x in serials] == [0, 1]
    assert serials[0]["msg_code"] == serials[1]["msg_code"]


def test_live_location_launch_types_the_area_and_the_expected_reach(db):
    """F34: a live location-based alert is confirmed by typing the area name and the
    expected reach (phones inside and outside), not the number of deliveries."""
    from tocsin.campaigns.services import (
        CampaignInputError,
        CampaignRequest,
        estimate_campaign,
        launch_campaign,
    )

    # A live operator is configured (nothing is sent here: no worker runs).
    settings = Settings(lbsms_operators="op1=https://operator.invalid",
                        lbsms_callback_secret="x")
    req = CampaignRequest(authority_id="23027", texts={"nl": "Test"}, channels=["lbsms"],
                          area_geojson=HALLE_PART, environment="live",
                          justification="imminent danger", confirmation_required=True)
    est = estimate_campaign(db, req, settings)
    reach = est["location_reach"]
    lbsms = est["channels"]["lbsms"]
    assert reach == lbsms["phones_inside_expected"] + lbsms["phones_outside_expected"] > 1000
    deliveries = sum(est["recipients"].values())
    from dataclasses import replace

    with pytest.raises(CampaignInputError) as err:
        launch_campaign(db, replace(req, confirm_area_name=est["area_name"],
                                    confirm_recipients=str(deliveries)), settings)
    assert err.value.field == "confirm_recipients" and "expected reach" in err.value.reason
    with pytest.raises(CampaignInputError) as err:
        launch_campaign(db, replace(req, confirm_area_name="Brussels",
                                    confirm_recipients=str(reach)), settings)
    assert err.value.field == "confirm_area_name"
    assert launch_campaign(db, replace(req, confirm_area_name=est["area_name"],
                                       confirm_recipients=f"{reach:,}"), settings)


# --- web ----------------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


def test_web_composer_and_launch(engine, tmp_path):
    """The composer offers the location-based channels apart, with the justification and
    the live location confirmation block; the estimate gives the expected reach; an
    untrained user's launch is refused naming the rule, a trained one's is accepted."""
    import datetime as dt

    from fastapi.testclient import TestClient

    from tocsin.authorities import services as authorities
    from tocsin.authorities.access import cli_actor
    from tocsin.authorities.governance import record_training
    from tocsin.core.db import transaction
    from tocsin.web.app import create_app
    from weblogin import csrf_of, log_in

    authorities.create_user(engine, "halle", PASSWORD, "23027")
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    with TestClient(create_app(engine, start_worker=False, settings=settings)) as c:
        log_in(c, "halle", PASSWORD)
        page = c.get("/campaigns/new").text
        assert 'class="channels channels-location"' in page and 'id="justification"' in page
        assert 'value="lbsms"' in page and 'value="cb"' in page
        token = csrf_of(page)
        body = {"channels": ["sms", "lbsms"], "area_geojson": HALLE_PART,
                "texts": {"nl": "Test"}, "kind": "alert", "justification": "chemical cloud"}
        est = c.post("/api/campaigns/estimate", json=body, headers={"X-CSRF-Token": token})
        assert est.status_code == 200 and est.json()["location_reach"] > 0
        refused = c.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
        assert refused.status_code == 403 and "training" in refused.text, refused.text
        with transaction(engine) as s:
            federal = cli_actor(s, "BE")
        record_training(engine, federal, "halle", dt.date.today(), "NCCN trainer")
        log_in(c, "halle", PASSWORD)
        token = csrf_of(c.get("/campaigns/new").text)
        no_why = c.post("/api/campaigns", json={**body, "justification": ""},
                        headers={"X-CSRF-Token": token})
        assert no_why.status_code == 422 and no_why.json()["error"]["field"] == "justification"
        ok = c.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
        assert ok.status_code == 201, ok.text
        cid = ok.json()["campaign_id"]
        report = c.get(f"/campaigns/{cid}").text
        assert 'data-location="lbsms"' in report and 'data-op="lbsms:op1"' in report


def test_an_update_follows_up_the_operators_earlier_broadcast(db):
    """An update of a location-based SMS names each operator's earlier broadcast
    (``follow_up_of``: the operator also reaches its earlier recipients) and keeps the
    stated justification; every field the operator API needs reached the simulator."""
    import asyncio

    from tocsin.campaigns.location import campaign_location
    from tocsin.campaigns.services import CampaignRequest, update_campaign
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.worker import sender_factories, start_simulators, stop_simulators

    settings = Settings(lbsms_simulator_rate_per_s=50_000, lbsms_simulator_tick_s=0.1,
                        lbsms_simulator_resolve_delay_s=0.05)

    async def scenario() -> tuple[str, str, dict]:
        sims = await start_simulators(engine=db, settings=settings)
        try:
            senders = sender_factories(settings, sims)
            first = _launched(db, ["lbsms"])
            await send_campaign(db, first, senders, settings=settings)
            upd = await asyncio.to_thread(update_campaign, db, first, CampaignRequest(
                authority_id="", texts={"nl": "Update: blijf binnen"}, channels=[],
                environment=""), settings)
            await send_campaign(db, upd, senders, settings=settings)
            op1 = sims.location.operators["op1"].app.state.sim  # type: ignore[attr-defined]
            return first, upd, {b.reference: b.body for b in op1["broadcasts"].values()}
        finally:
            await stop_simulators(sims)

    first, upd, bodies = asyncio.run(scenario())
    original = bodies[f"tocsin:{first}:lbsms:op1"]
    update = bodies[f"tocsin:{upd}:lbsms:op1"]
    ref = campaign_location(db, first)["lbsms"]["operators"]["op1"]["operator_ref"]
    assert original["follow_up_of"] is None and update["follow_up_of"] == ref
    assert update["sender"] == "1789" and update["priority"] == "alert"
    assert update["justification"] == "imminent danger" and "Update" in update["text"]
    assert update["area"]["type"] == "MultiPolygon" and update["not_after"].endswith("Z")
    assert campaign_location(db, upd)["lbsms"]["operators"]["op1"]["state"] == "completed"
