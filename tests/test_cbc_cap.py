"""Cell broadcast through an operator CBC taking CAP 1.2 (issue 11 point 5, research note
§2.3 ``cap`` backend): :class:`tocsin.channels.cbc.CapCbcClient` against the CBC
simulator's ``POST /cap`` over real HTTP. The alert, its update and its cancel arrive in
order, each valid CAP 1.2 with the EU-Alert level and CB message id and polygons of at
most 250 points, the Update and Cancel referencing the earlier messages; a 4xx is final,
a 5xx retried; end to end through a live campaign with ``TOCSIN_CBC_PROTOCOL=cap``."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
import sqlalchemy as sa
import uvicorn
from lxml import etree

from tocsin.cap.validate import validate_cap
from tocsin.channels import cbc
from tocsin.channels.simulators.cbc import CbcSimulatorParams, create_cbc_app
from tocsin.core.settings import Settings

NS = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
SENDER = "nccn@tocsin.example"
SENT = dt.datetime(2026, 12, 3, 13, 0, tzinfo=dt.UTC)
TEXTS = {"fr": "ALERTE: incendie chimique à Halle. Restez à l'intérieur.",
         "nl": "ALARM: chemische brand in Halle. Blijf binnen."}
#: A rectangle over the centre of Halle (23027), wholly inside the municipality.
HALLE_PART = {"type": "Polygon", "coordinates": [[
    [4.225, 50.725], [4.255, 50.725], [4.255, 50.745], [4.225, 50.745], [4.225, 50.725]]]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Cbc:
    def __init__(self, params: CbcSimulatorParams) -> None:
        self.params = params
        self.app = create_cbc_app(params)
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/cap"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port,
                                                    log_level="warning"))

    @property
    def state(self) -> dict[str, Any]:
        return self.app.state.cbc["cap"]  # type: ignore[no-any-return]


@pytest.fixture
def cap_cbc() -> Iterator[_Cbc]:
    sim = _Cbc(CbcSimulatorParams(ack_delay_s=0.01))
    thread = threading.Thread(target=sim.server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not sim.server.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield sim
    sim.server.should_exit = True
    thread.join(timeout=10)


def _detailed_area() -> shapely.Polygon:
    n = 5000  # a detailed outline: must come down to <= 250 points per polygon
    return shapely.Polygon([
        (4.24 + 0.05 * math.cos(2 * math.pi * i / n) * (1 + 0.03 * math.sin(41 * i)),
         50.73 + 0.03 * math.sin(2 * math.pi * i / n)) for i in range(n)])


def _cap(identifier: str, sent: dt.datetime, msg_type: str = "Alert",
         references: tuple[tuple[str, str, Any], ...] = (),
         texts: dict[str, str] | None = None) -> bytes:
    return cbc.cap_for_cbc(identifier=identifier, sender=SENDER, sent=sent,
                           status="Exercise", kind="alert", texts=texts or TEXTS,
                           area=_detailed_area(), area_desc="Halle", event="Chemical fire",
                           severity="Extreme", urgency="Immediate", certainty="Likely",
                           msg_type=msg_type, references=references)


def _ref(xml: bytes) -> tuple[str, str, str]:
    r = cbc.cap_reference(xml)
    return r["sender"], r["identifier"], r["sent"]


def _check_cb_cap(xml: bytes, msg_type: str) -> etree._Element:
    report = validate_cap(xml)
    assert report.valid, report.to_json()
    root = etree.fromstring(xml)
    assert root.findtext("c:msgType", namespaces=NS) == msg_type
    for info in root.findall("c:info", NS):
        params = {p.findtext("c:valueName", namespaces=NS): p.findtext("c:value", namespaces=NS)
                  for p in info.findall("c:parameter", NS)}
        assert params["EU-Alert-level"] == "2" and params["CB-message-id"] in ("4372", "4385")
        polys = list(info.iter(f"{{{NS['c']}}}polygon"))
        assert polys and all(len(p.text.split()) <= 250 for p in polys)
    return root


def test_alert_update_cancel_arrive_in_order_with_references(cap_cbc):
    client = cbc.CapCbcClient(cap_cbc.url, token="s3cret")
    alert = _cap("BE-TOCSIN-1-CB", SENT)
    update = _cap("BE-TOCSIN-2-CB", SENT + dt.timedelta(minutes=5), "Update",
                  references=(_ref(alert),))
    cancel = _cap("BE-TOCSIN-2-CB-CANCEL", SENT + dt.timedelta(minutes=9), "Cancel",
                  references=(_ref(alert), _ref(update)))
    # Out of order: an Update naming an alert the CBC never received is refused (409),
    # finally (a 4xx).
    with pytest.raises(cbc.CbcError) as err:
        client.update_alert(update)
    assert err.value.status == 409 and err.value.code == "http_409"
    assert "references name no alert received" in err.value.reason
    assert client.send_alert(alert) == "accepted"
    assert client.update_alert(update) == "accepted"
    assert client.cancel_alert(cancel) == "accepted"
    # A second cancel: what it references is no longer active.
    with pytest.raises(cbc.CbcError) as err:
        client.cancel_alert(_cap("BE-TOCSIN-3-CB", SENT + dt.timedelta(minutes=10), "Cancel",
                                 references=(_ref(update),)))
    assert err.value.status == 409
    # The client refuses to send a document of another msgType than asked.
    with pytest.raises(ValueError):
        client.cancel_alert(alert)
    client.close()

    got = cap_cbc.state["received"]
    assert [e["msg_type"] for e in got] == ["Alert", "Update", "Cancel"]
    assert [e["identifier"] for e in got] == ["BE-TOCSIN-1-CB", "BE-TOCSIN-2-CB",
                                              "BE-TOCSIN-2-CB-CANCEL"]
    assert got[1]["references"] == [got[0]["key"]]
    assert got[2]["references"] == [got[0]["key"], got[1]["key"]]
    assert all(e["authorization"] == "Bearer s3cret" for e in got)
    assert all(e["content_type"] == "application/cap+xml" for e in got)
    for e in got:
        _check_cb_cap(e["xml"], e["msg_type"])
    assert [(t, s) for t, _, s in cap_cbc.state["log"]] == [
        ("Update", 409), ("Alert", 200), ("Update", 200), ("Cancel", 200), ("Cancel", 409)]
    assert cap_cbc.state["active"] == {}


def test_simulator_refuses_invalid_cap_and_missing_cb_parameters(cap_cbc):
    import httpx

    r = httpx.post(cap_cbc.url, content=b"<alert>not CAP</alert>")
    assert r.status_code == 400 and r.text.startswith("invalid CAP")
    alert = _cap("BE-TOCSIN-9-CB", SENT)
    no_params = etree.fromstring(alert)
    for p in no_params.iter(f"{{{NS['c']}}}parameter"):
        p.getparent().remove(p)
    client = cbc.CapCbcClient(cap_cbc.url, username="tocsin", password="pw")
    with pytest.raises(cbc.CbcError) as err:
        client.send_alert(etree.tostring(no_params, xml_declaration=True, encoding="UTF-8"))
    assert (err.value.code, err.value.status) == ("rejected", 400)
    assert "EU-Alert-level" in err.value.reason
    assert client.send_alert(alert) == "accepted"
    with pytest.raises(cbc.CbcError) as err:  # the same identifier twice
        client.send_alert(alert)
    assert err.value.status == 409
    client.close()
    auth = cap_cbc.state["received"][0]["authorization"]
    assert auth == "Basic " + base64.b64encode(b"tocsin:pw").decode()


def test_4xx_is_final_5xx_and_unreachable_are_retried(cap_cbc):
    cap_cbc.params.cap_faults[:] = [503, 403]
    client = cbc.CapCbcClient(cap_cbc.url)
    alert = _cap("BE-TOCSIN-5-CB", SENT)
    with pytest.raises(cbc.CbcError) as err:
        client.send_alert(alert)
    assert (err.value.code, err.value.status) == ("http_503", 503)
    with pytest.raises(cbc.CbcError) as err:
        client.send_alert(alert)
    # The status and only the first line of the body.
    assert (err.value.code, err.value.status) == ("http_403", 403)
    assert err.value.reason == "HTTP 403: simulated fault 403"
    assert client.send_alert(alert) == "accepted"
    client.close()
    gone = cbc.CapCbcClient(f"http://127.0.0.1:{_free_port()}/cap", timeout_s=2)
    with pytest.raises(cbc.CbcError) as err:
        gone.send_alert(alert)
    assert err.value.code == "unreachable"
    gone.close()


# --- end to end: a live campaign with TOCSIN_CBC_PROTOCOL=cap -------------------------------


@pytest.fixture
def db(engine, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    return engine


def _deliveries(db, cid: str) -> list[tuple[str, str]]:
    with db.connect() as c:
        return [(r.state, r.error or "") for r in c.execute(sa.text(
            "SELECT state, error FROM delivery WHERE campaign_id = :c AND channel = 'cb'"),
            {"c": cid})]


def test_live_campaign_update_cancel_reach_a_cap_cbc_in_order(db, cap_cbc):
    """A live cell-broadcast campaign, its update and its cancel reach the CAP CBC as
    Alert, Update (referencing the alert) and Cancel (referencing both); a 503 on the
    first attempt is retried; the identifiers are kept in the location_send detail."""
    from tocsin.campaigns.location import campaign_location
    from tocsin.campaigns.location_models import LocationSend
    from tocsin.campaigns.services import (
        CampaignRequest,
        cancel_campaign,
        launch_campaign,
        update_campaign,
    )
    from tocsin.core.db import transaction
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.worker import sender_factories

    settings = Settings(cbc_url=cap_cbc.url, cbc_protocol="cap", cbc_username="tocsin",
                        cbc_password="pw", cap_sender=SENDER)
    cap_cbc.params.cap_faults[:] = [503]
    senders = sender_factories(settings, None)
    assert ("cb", "live") in senders
    req = CampaignRequest(authority_id="23027", texts={"nl": "Chemische wolk: blijf binnen."},
                          channels=["cb"], area_geojson=HALLE_PART, environment="live",
                          kind="exercise")
    first = launch_campaign(db, req, settings)

    async def scenario() -> str:
        await send_campaign(db, first, senders, settings=settings, send_timeout=30)
        upd = await asyncio.to_thread(update_campaign, db, first, CampaignRequest(
            authority_id="", texts={"nl": "Update: blijf binnen"}, channels=[],
            environment="", kind=""), settings)  # kind "": the exercise's
        await send_campaign(db, upd, senders, settings=settings, send_timeout=30)
        await asyncio.to_thread(cancel_campaign, db, first, "cli", settings=settings)
        return upd

    upd = asyncio.run(scenario())
    assert _deliveries(db, first) == [("sent", "")]
    assert _deliveries(db, upd) == [("sent", "")]
    log = cap_cbc.state["log"]
    assert [(t, s) for t, _, s in log] == [("fault", 503), ("Alert", 200), ("Update", 200),
                                           ("Cancel", 200)]
    got = cap_cbc.state["received"]
    for e in got:
        root = _check_cb_cap_exercise(e["xml"], e["msg_type"])
        assert root.findtext("c:status", namespaces=NS) == "Exercise"
        assert root.findtext("c:sender", namespaces=NS) == SENDER
    assert got[1]["references"] == [got[0]["key"]]
    assert got[2]["references"] == [got[0]["key"], got[1]["key"]]
    assert all(e["authorization"].startswith("Basic ") for e in got)
    with transaction(db) as s:
        rows = {r.campaign_id: (r.state, r.detail) for r in s.scalars(
            sa.select(LocationSend).where(LocationSend.channel == "cb"))}
    assert rows[first][0] == "replaced" and rows[upd][0] == "stopped"
    assert [r["identifier"] for r in rows[upd][1]["cap"]] == [e["identifier"] for e in got]
    assert rows[upd][1]["protocol"] == "cap"
    op = campaign_location(db, upd)["cb"]["operators"]["cbc"]
    assert op["state"] == "stopped" and op["cap_messages"] == [e["identifier"] for e in got]


def _check_cb_cap_exercise(xml: bytes, msg_type: str) -> etree._Element:
    """As :func:`_check_cb_cap` for an exercise: CB message id 4381 (EU-Exercise)."""
    report = validate_cap(xml)
    assert report.valid, report.to_json()
    root = etree.fromstring(xml)
    assert root.findtext("c:msgType", namespaces=NS) == msg_type
    for info in root.findall("c:info", NS):
        params = {p.findtext("c:valueName", namespaces=NS): p.findtext("c:value", namespaces=NS)
                  for p in info.findall("c:parameter", NS)}
        assert params["EU-Alert-level"] == "exercise" and params["CB-message-id"] == "4381"
        polys = list(info.iter(f"{{{NS['c']}}}polygon"))
        assert polys and all(len(p.text.split()) <= 250 for p in polys)
    return root


def test_protocol_setting_is_validated(monkeypatch: pytest.MonkeyPatch):
    from pydantic import ValidationError

    assert Settings().cbc_protocol == "ecbe"
    monkeypatch.setenv("TOCSIN_CBC_PROTOCOL", "cap")
    assert Settings().cbc_protocol == "cap"
    with pytest.raises(ValidationError):
        Settings(cbc_protocol="smpp")
    with pytest.raises(ValidationError):
        Settings(cbc_username="a b")
