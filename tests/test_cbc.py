"""Cell broadcast through a CBC (issue 11, points 5 and 6): the ECBE adapter against the
CBC simulator over real HTTP (osmo-cbc's paths, status codes and words)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tocsin.channels import cbc
from tocsin.channels import cell_broadcast as cb
from tocsin.channels.simulators.cbc import CbcSimulatorParams, check_message, create_cbc_app

TEXTS = {"fr": "ALERTE: incendie chimique à Halle. Restez à l'intérieur.",
         "nl": "ALARM: chemische brand in Halle. Blijf binnen.",
         "de": "ALARM: Chemiebrand in Halle. Bleiben Sie drinnen."}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cbc_server() -> Iterator[tuple[object, str]]:
    app = create_cbc_app(CbcSimulatorParams(ack_delay_s=0.05))
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}/api/ecbe/v1"
    srv.should_exit = True
    thread.join(timeout=10)


def _plan(**kw):
    return cbc.plan_messages(TEXTS, kind="alert", msg_code=17, cbe_name="tocsin-nccn",
                             severity="Extreme", urgency="Immediate", certainty="Likely",
                             **kw)


def test_plan_puts_languages_on_local_and_additional_ids():
    plan = _plan()
    assert [m.languages for m in plan] == [("fr",), ("nl", "de")]
    assert [m.message_id for m in plan] == [4372, 4385]
    second = plan[1].body["smscb_message"]
    assert second["payload"]["payload_decoded"]["language"] == "nl"
    assert TEXTS["de"] in second["payload"]["payload_decoded"]["data_utf8"]
    assert all(check_message(m.body) is None for m in plan)


def test_regional_area_needs_plmn_wide_permission():
    with pytest.raises(cbc.CbcError) as err:
        _plan(national=False)
    assert err.value.code == "area"
    assert len(_plan(national=False, allow_plmn_wide=True)) == 2


def test_send_update_cancel_in_order(cbc_server):
    app, base = cbc_server
    client = cbc.EcbeClient(base)
    plan = _plan()
    assert client.send_alert(plan) == ["accepted", "accepted"]
    with pytest.raises(cbc.CbcError) as err:  # one active message per id
        client.create(plan[0])
    assert (err.value.status, err.value.reason) == (409, "Could not allocate")
    update = cbc.next_update_plan(plan, {"fr": "MISE À JOUR: restez à l'intérieur."},
                                  kind="alert", cbe_name="tocsin-nccn", severity="Extreme",
                                  urgency="Immediate", certainty="Likely")
    assert client.update_alert(plan, update) == ["accepted"]
    serial = update[0].body["smscb_message"]["serial_nr"]["serial_nr_decoded"]
    assert serial == {"geo_scope": "plmn_wide", "msg_code": 17, "update_nr": 1}
    assert client.cancel_alert(update) == ["stopped"]
    assert client.delete(4372) == "unknown"
    log = app.state.cbc["log"]
    assert [(m, s) for m, _, s in log] == [
        ("POST", 201), ("POST", 201), ("POST", 409), ("DELETE", 200), ("DELETE", 200),
        ("POST", 201), ("DELETE", 200), ("DELETE", 404)]
    client.close()


def test_bad_messages_get_osmo_cbc_words(cbc_server):
    _, base = cbc_server
    body = _plan()[0].body
    bad = {**body, "scope": {"scope_cell": {}}}
    r = httpx.post(base + "/message", json=bad)
    assert (r.status_code, r.text) == (400, "CBCMSG only 'scope_plmn' supported")
    r = httpx.post(base + "/message", content=b"{", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.text) == (400, "REST: No JSON Body")
    client = cbc.EcbeClient(base)
    no_rep = {k: v for k, v in body.items() if k != "repetition_period"}
    with pytest.raises(cbc.CbcError) as err:
        client.create(cbc.PlannedMessage(("fr",), no_rep))
    assert err.value.code == "rejected" and "repetiton_period" in err.value.reason


def test_status_extension_counts_broadcasts(cbc_server):
    _, base = cbc_server
    body = cb.ecbe_message(cbe_name="t", message_id=4380, serial=0, text="Test",
                           language="en", repetition_period=1)
    assert httpx.post(base + "/message", json=body).status_code == 201
    time.sleep(1.2)
    state = httpx.get(base + "/message/4380").json()
    assert state["state"] == "broadcasting" and state["broadcasts"] >= 2


def test_unreachable_cbc_is_named():
    client = cbc.EcbeClient(f"http://127.0.0.1:{_free_port()}/api/ecbe/v1", timeout_s=2)
    with pytest.raises(cbc.CbcError) as err:
        client.create(_plan()[0])
    assert err.value.code == "unreachable"


def test_eu_alert_levels():
    assert cbc.eu_alert_level(4370) == "1" and cbc.eu_alert_level(4383) == "1"
    assert cbc.eu_alert_level(4372) == "2" and cbc.eu_alert_level(4385) == "2"
    assert cbc.eu_alert_level(4378) == "3" and cbc.eu_alert_level(4391) == "3"
    assert cbc.eu_alert_level(4396) == "4" and cbc.eu_alert_level(4397) == "4"
    assert cbc.eu_alert_level(4380) == "test" and cbc.eu_alert_level(4399) == "test"
    with pytest.raises(cbc.CbcError):
        cbc.eu_alert_level(1234)


def test_cap_backend_alert_fits_cb_polygons_and_validates():
    import datetime as dt
    import math

    import shapely
    from lxml import etree

    from tocsin.cap.polygons import cap_polygons_union
    from tocsin.cap.validate import validate_cap

    n = 5000  # a detailed outline: must come down to <= 250 points, never shrink
    ring = [(4.24 + 0.05 * math.cos(2 * math.pi * i / n) * (1 + 0.03 * math.sin(41 * i)),
             50.73 + 0.03 * math.sin(2 * math.pi * i / n)) for i in range(n)]
    area = shapely.Polygon(ring)
    sent = dt.datetime(2026, 12, 3, 13, 0, tzinfo=dt.UTC)
    xml = cbc.cap_for_cbc(identifier="tocsin-c1-cb", sender="nccn@tocsin.example",
                          sent=sent, status="Exercise", kind="alert", texts=TEXTS,
                          area=area, area_desc="Halle", event="Chemical fire",
                          severity="Extreme", urgency="Immediate", certainty="Observed",
                          expires=sent + dt.timedelta(hours=2))
    report = validate_cap(xml)
    assert report.valid, report.to_json()
    assert not any("cell-broadcast" in w.message for w in report.warnings)
    root = etree.fromstring(xml)
    ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
    infos = root.findall("c:info", ns)
    assert [i.findtext("c:language", namespaces=ns) for i in infos] == ["fr-BE", "nl-BE",
                                                                         "de-BE"]
    params = {(p.findtext("c:valueName", namespaces=ns), p.findtext("c:value", namespaces=ns))
              for p in infos[1].findall("c:parameter", ns)}
    assert ("CB-message-id", "4384") in params and ("EU-Alert-level", "2") in params
    rings = [[tuple(map(float, pt.split(","))) for pt in poly.text.split()]
             for poly in infos[0].iter("{urn:oasis:names:tc:emergency:cap:1.2}polygon")]
    assert rings and all(len(r) <= 250 for r in rings)
    assert cap_polygons_union(rings).covers(area)
    cancel = cbc.cap_for_cbc(identifier="tocsin-c1-cb-cancel", sender="nccn@tocsin.example",
                             sent=sent + dt.timedelta(minutes=5), status="Exercise",
                             kind="alert", texts={"fr": "Fin d'alerte."}, area=area,
                             area_desc="Halle", event="Chemical fire", msg_type="Cancel",
                             references=(("nccn@tocsin.example", "tocsin-c1-cb", sent),))
    assert b"<references>" in cancel and b"Cancel" in cancel


def test_cap_backend_refuses_a_text_over_15_pages():
    import datetime as dt

    import shapely

    with pytest.raises(cb.CbError) as err:
        cbc.cap_for_cbc(identifier="x", sender="s", sent=dt.datetime.now(dt.UTC),
                        status="Test", kind="test", texts={"fr": "a" * 1400},
                        area=shapely.box(4.2, 50.7, 4.3, 50.8), area_desc="x", event="Test")
    assert err.value.field == "text"
