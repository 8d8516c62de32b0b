"""Location-based SMS (issue 11, points 4 and 6): the operator adapter against the
simulated operator over real HTTP, signed ordered idempotent callbacks, faults.

The simulator runs on the synthetic cell model; its final counts fall within the
reach estimate's range (``tocsin.geo.reach``).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import shapely
import uvicorn
from fastapi import FastAPI, Request, Response
from shapely.geometry import box, mapping

from tocsin.channels import lbsms
from tocsin.channels.simulators.lbsms_operator import (
    SimulatorFaults,
    SimulatorParams,
    create_operator_app,
)
from tocsin.geo import reach
from tocsin.geo.reference import reference_authorities

SECRET = "s3cret-callback-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", srv, thread


class Receiver:
    """Tocsin's side of the callbacks: verifies, then feeds one ledger per broadcast."""

    def __init__(self) -> None:
        self.ledgers: dict[str, lbsms.CallbackLedger] = {}
        self.bad_signatures = 0
        self.raw: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/hooks/lbsms/op1")
        async def hook(request: Request) -> Response:
            body = await request.body()
            if not lbsms.verify_callback(SECRET, dict(request.headers), body):
                self.bad_signatures += 1
                return Response(status_code=401)
            event = json.loads(body)
            self.raw.append(event)
            ledger = self.ledgers.setdefault(event["operator_ref"],
                                             lbsms.CallbackLedger(event["operator_ref"]))
            ledger.receive(event)
            return Response(status_code=204)


@pytest.fixture(scope="module")
def halle_part():
    halle = next(a for a in reference_authorities()[0] if a.id == "23027").territory
    minx, miny, maxx, maxy = halle.bounds
    return shapely.intersection(halle, box(minx, miny, (minx + maxx) / 2, maxy))


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    base, srv, thread = _serve(r.app)
    yield r, base
    srv.should_exit = True
    thread.join(timeout=10)


def _operator(faults: SimulatorFaults | None = None, **params: Any
              ) -> tuple[FastAPI, str, uvicorn.Server, threading.Thread]:
    p = SimulatorParams(resolve_delay_s=0.05, tick_s=0.05, rate_per_s=4000,
                        **params)
    app = create_operator_app("op1", params=p, faults=faults,
                              callback_secrets={"k1": SECRET})
    base, srv, thread = _serve(app)
    return app, base, srv, thread


@pytest.fixture
def operator(request) -> Iterator[tuple[FastAPI, lbsms.LbsmsOperatorClient]]:
    faults = getattr(request, "param", None)
    app, base, srv, thread = _operator(faults)
    client = lbsms.LbsmsOperatorClient(base, retries=2, max_wait_s=0.1)
    yield app, client
    client.close()
    srv.should_exit = True
    thread.join(timeout=10)


def _body(area: Any, hook: str, **extra: Any) -> dict[str, Any]:
    return lbsms.broadcast_body(
        reference="tocsin:c1:lbsms:op1:1", environment="simulation",
        area=json.loads(shapely.to_geojson(area)),
        text="NL Blijf binnen. / FR Restez à l'intérieur. / DE Bleiben Sie drinnen.",
        not_after=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30),
        justification="imminent danger: chemical fire", callback_url=hook + "/hooks/lbsms/op1",
        key_id="k1", **extra)


def _wait(receiver: Receiver, ref: str, timeout: float = 60) -> lbsms.CallbackLedger:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ledger = receiver.ledgers.get(ref)
        if ledger is not None and ledger.done:
            return ledger
        time.sleep(0.05)
    raise AssertionError(f"broadcast {ref} did not finish: {receiver.ledgers.get(ref)}")


def test_final_counts_match_the_estimate(operator, receiver, halle_part):
    _, client = operator
    rec, hook = receiver
    est = reach.estimate_reach(halle_part, ["lbsms"])["lbsms"]["by_operator"]["op1"]
    low = est["phones_inside"][0] + est["phones_outside"][0]
    high = est["phones_inside"][1] + est["phones_outside"][1]
    counted = client.estimate(json.loads(shapely.to_geojson(halle_part)))
    assert counted["model"] == "synthetic" and counted["model_label"] == "synthetic cell model"
    assert low <= counted["phones_total"] <= high
    assert all(c["cell_id"].startswith("001-01-") for c in counted["cells"])
    sent = client.send(_body(halle_part, hook))
    ledger = _wait(rec, sent["operator_ref"])
    assert ledger.state == "completed" and rec.bad_signatures == 0
    total = ledger.counts["delivered"] + ledger.counts["failed"]
    assert total == ledger.phones_targeted == counted["phones_total"]
    assert low <= total <= high
    assert 0 < ledger.counts["failed"] <= 0.02 * total
    assert sum(c["delivered"] + c["failed"] for c in ledger.per_cell.values()) == total
    assert ledger.applied == list(range(1, len(ledger.applied) + 1))
    assert client.status(sent["operator_ref"])["state"] == "completed"


@pytest.mark.parametrize("operator", [SimulatorFaults(duplicate=True, out_of_order=True)],
                         indirect=True)
def test_duplicate_and_out_of_order_callbacks_apply_once_in_order(operator, receiver,
                                                                  halle_part):
    _, client = operator
    rec, hook = receiver
    sent = client.send(_body(halle_part, hook))
    ledger = _wait(rec, sent["operator_ref"])
    assert ledger.duplicates >= len(ledger.applied) - 1
    assert ledger.applied == list(range(1, len(ledger.applied) + 1))
    raw_seqs = [e["seq"] for e in rec.raw]
    assert raw_seqs != sorted(raw_seqs)  # they really arrived out of order
    assert ledger.counts["delivered"] + ledger.counts["failed"] == ledger.phones_targeted


def test_idempotency_key(operator, receiver, halle_part):
    _, client = operator
    _, hook = receiver
    body = _body(halle_part, hook)
    first = client.send(body, key="k-1")
    assert client.send(body, key="k-1")["operator_ref"] == first["operator_ref"]
    changed = dict(body, text="another text")
    with pytest.raises(lbsms.LbsmsError) as err:
        client.send(changed, key="k-1")
    assert err.value.status == 409 and err.value.code == "idempotency_conflict"
    client.stop(first["operator_ref"])


@pytest.mark.parametrize("operator", [SimulatorFaults(stall_at=0.5)], indirect=True)
def test_a_stalled_operator_is_stopped(operator, receiver, halle_part):
    _, client = operator
    rec, hook = receiver
    sent = client.send(_body(halle_part, hook))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = client.status(sent["operator_ref"])
        if status["phones_targeted"] and status["counts"]["submitted"] >= \
                0.5 * status["phones_targeted"]:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    stalled = client.status(sent["operator_ref"])["counts"]["submitted"]
    time.sleep(0.3)
    assert client.status(sent["operator_ref"])["counts"]["submitted"] == stalled
    client.stop(sent["operator_ref"])
    ledger = _wait(rec, sent["operator_ref"])
    assert ledger.state == "stopped"
    assert ledger.counts["submitted"] < ledger.phones_targeted


@pytest.mark.parametrize("operator", [SimulatorFaults(down=True)], indirect=True)
def test_a_down_operator_is_retried_then_reported(operator, halle_part):
    _, client = operator
    started = time.monotonic()
    with pytest.raises(lbsms.LbsmsError) as err:
        client.estimate(json.loads(shapely.to_geojson(halle_part)))
    assert err.value.status == 503 and err.value.code == "unavailable"
    assert time.monotonic() - started >= 0.15  # two retries, Retry-After capped at 0.1 s


def test_follow_up_reaches_the_earlier_recipients_too(operator, receiver, halle_part):
    _, client = operator
    rec, hook = receiver
    first = client.send(_body(halle_part, hook))
    before = _wait(rec, first["operator_ref"]).phones_targeted
    smaller = shapely.intersection(halle_part, halle_part.centroid.buffer(0.01))
    body = _body(smaller, hook, follow_up_of=first["operator_ref"])
    body["reference"] = "tocsin:c2:lbsms:op1:1"
    second = client.send(body)
    assert _wait(rec, second["operator_ref"]).phones_targeted >= before


def test_callback_ledger_rules():
    ledger = lbsms.CallbackLedger("r1")
    ev = [{"operator_ref": "r1", "seq": i, "event": e, "counts": {"delivered": i}}
          for i, e in enumerate(["accepted", "resolved", "progress", "completed"], start=1)]
    assert ledger.receive(ev[1]) == []  # waits for seq 1
    assert [e["seq"] for e in ledger.receive(ev[0])] == [1, 2]
    assert ledger.receive(ev[0]) == [] and ledger.duplicates == 1
    ledger.receive(ev[3])
    ledger.receive(ev[2])
    assert ledger.done and ledger.state == "completed" and ledger.counts == {"delivered": 4}
    with pytest.raises(lbsms.LbsmsError):
        ledger.receive({"operator_ref": "r2", "seq": 1, "event": "accepted"})
    with pytest.raises(lbsms.LbsmsError):
        ledger.receive({"operator_ref": "r1", "seq": 0, "event": "accepted"})


@pytest.mark.parametrize("change, field", [
    ({"environment": "prod"}, "environment"),
    ({"priority": "urgent"}, "priority"),
    ({"text": ""}, "text"),
    ({"text": "x" * 1531}, "text"),
    ({"justification": " "}, "justification"),
    ({"cell_ids": ["001-01-1-1"]}, "area"),
    ({"area": {"type": "Point", "coordinates": [4.2, 50.7]}}, "area"),
    ({"not_after": dt.datetime(2030, 1, 1)}, "not_after"),
])
def test_broadcast_body_names_the_bad_field(change, field):
    args: dict[str, Any] = {
        "reference": "r", "environment": "simulation",
        "area": mapping(box(4.2, 50.7, 4.3, 50.8)), "text": "x",
        "not_after": dt.datetime(2030, 1, 1, tzinfo=dt.UTC), "justification": "fire",
        "callback_url": "https://tocsin.example/hooks", "key_id": "k1", **change}
    with pytest.raises(lbsms.LbsmsError) as err:
        lbsms.broadcast_body(**args)
    assert err.value.code == field
