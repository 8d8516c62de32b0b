"""A mobile operator's location-based SMS platform, simulated on the cell model (SPEC
F18; research note ``location-based-channels.md`` §2.4).

A real HTTP server of the operator API in ``tocsin.channels.lbsms`` (FastAPI; run it with
uvicorn), one per synthetic operator (``op1``…). Phones per cell = the cell's
population (its best-server area, UK ward method) × the operator's market share ×
``located_fraction`` (phones the network has seen recently). A broadcast is resolved
after ``resolve_delay_s``, sent at ``rate_per_s`` with a share ``fail_share`` failing,
and reported to the callback URL, signed, in ``seq`` order, retried on failure.

Faults (``SimulatorFaults``): ``down`` (every request 503 with ``Retry-After``),
``slow_s`` (each answer delayed), ``stall_at`` (sending stops at that share, the
Wallonia case: only a stop or ``not_after`` ends it), ``duplicate`` (each callback sent
twice), ``out_of_order`` (progress callbacks sent in swapped pairs).

Everything it reports comes from the **synthetic cell model** unless an operator's
real cells were imported; its answers say which (``model``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tocsin.channels.lbsms import PRIORITIES, TERMINAL_EVENTS
from tocsin.channels.webhook import sign
from tocsin.geo import cellmodel as cm
from tocsin.geo.areas import AreaError, parse_area_geojson


@dataclass
class SimulatorFaults:
    """Faults to inject (see the module docstring)."""

    down: bool = False
    slow_s: float = 0.0
    stall_at: float | None = None
    duplicate: bool = False
    out_of_order: bool = False


@dataclass
class SimulatorParams:
    """Timing and outcome of the simulated operator (seconds, messages per second)."""

    located_fraction: float = 0.92
    resolve_delay_s: float = 1.0
    rate_per_s: float = 200.0
    tick_s: float = 1.0
    fail_share: float = 0.01
    callback_retries: int = 5


@dataclass
class _Broadcast:
    ref: str
    reference: str
    body: dict[str, Any]
    secret: str
    cells: list[dict[str, Any]] = field(default_factory=list)
    targeted: int = 0
    submitted: int = 0
    delivered: int = 0
    failed: int = 0
    state: str = "accepted"
    seq: int = 0
    stop: bool = False
    per_cell: dict[str, dict[str, int]] = field(default_factory=dict)
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)


def _error(status: int, code: str, message: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def operator_cells(area_wgs84: Any, operator: str, model: cm.CellModel,
                   located_fraction: float) -> list[dict[str, Any]]:
    """The cells of ``operator`` serving ``area_wgs84`` and the phones located in each:
    ``[{"cell_id", "tech", "phones"}]`` (phones rounded to whole phones)."""
    import numpy as np
    import shapely

    from tocsin.geo.reach import footprint

    fp = footprint(area_wgs84, model, keep_sectors=True)
    op = next(o for o in fp.operators if o.operator.key == operator)
    geoms = np.array([g for _, g in op.sectors], dtype=object)
    phones = cm.phones_per_region(geoms) * op.operator.share * located_fraction
    techs = dict(zip(*_tech_index(model, operator), strict=True))
    return [{"cell_id": cell_id, "tech": techs.get(cell_id, "4G"),
             "phones": int(round(p))}
            for (cell_id, g), p in zip(op.sectors, phones, strict=True)
            if not shapely.is_empty(g)]


def _tech_index(model: cm.CellModel, operator: str) -> tuple[list[str], list[str]]:
    o = next(o for o in model.operators if o.operator.key == operator)
    return o.cell_ids, o.tech


def create_operator_app(operator: str = "op1", *, model: cm.CellModel | None = None,
                        params: SimulatorParams | None = None,
                        faults: SimulatorFaults | None = None,
                        callback_secrets: dict[str, str] | None = None) -> FastAPI:
    """The simulated operator ``operator`` (``op1``…). ``callback_secrets``: key id ->
    HMAC secret used to sign callbacks (``{"k1": "…"}``). The app's ``state.sim`` holds
    the broadcasts (``broadcasts``: operator_ref -> state) for tests and inspection."""
    params = params or SimulatorParams()
    faults = faults or SimulatorFaults()
    secrets = callback_secrets or {}
    app = FastAPI(title=f"Tocsin LB-SMS operator simulator ({operator})")
    broadcasts: dict[str, _Broadcast] = {}
    keys: dict[str, tuple[str, str]] = {}  # idempotency key -> (body digest, ref)
    tasks: set[asyncio.Task[None]] = set()
    app.state.sim = {"broadcasts": broadcasts, "faults": faults, "params": params}

    def the_model() -> cm.CellModel:
        return model or cm.synthetic_model()

    async def guard() -> JSONResponse | None:
        if faults.slow_s:
            await asyncio.sleep(faults.slow_s)
        if faults.down:
            return _error(503, "unavailable", "operator platform down",
                          {"Retry-After": "1"})
        return None

    @app.post("/lbsms/v1/estimates")
    async def estimate(request: Request) -> Any:
        if (refused := await guard()) is not None:
            return refused
        data = await request.json()
        try:
            area = parse_area_geojson(data.get("area"), field="area", repairs=[])
        except AreaError as exc:
            return _error(400, "area_invalid", exc.reason)
        cells = await asyncio.to_thread(operator_cells, area, operator, the_model(),
                                        params.located_fraction)
        return {"cells": cells, "phones_total": sum(c["phones"] for c in cells),
                "model": "synthetic" if the_model().synthetic else "operator",
                "model_label": the_model().label,
                "generated_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

    @app.post("/lbsms/v1/broadcasts", status_code=202)
    async def create(request: Request) -> Any:
        if (refused := await guard()) is not None:
            return refused
        raw = await request.body()
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return _error(400, "idempotency_key_missing", "send an Idempotency-Key header")
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "body_invalid", "not JSON")
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key in keys:
            seen, ref = keys[key]
            if seen != digest:
                return _error(409, "idempotency_conflict",
                              "this Idempotency-Key was used with another body")
            return JSONResponse({"operator_ref": ref, "state": broadcasts[ref].state},
                                status_code=202)
        problem = _check_body(body, secrets)
        if problem is not None:
            return _error(400, *problem)
        area = None
        if body.get("area") is not None:
            try:
                area = parse_area_geojson(body["area"], field="area", repairs=[])
            except AreaError as exc:
                return _error(400, "area_invalid", exc.reason)
        ref = f"{operator}-{uuid.uuid4().hex[:12]}"
        b = _Broadcast(ref, body["reference"], body, secrets[body["callback"]["key_id"]])
        broadcasts[ref] = b
        keys[key] = (digest, ref)
        task = asyncio.create_task(_run(b, area, body.get("cell_ids")))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return JSONResponse({"operator_ref": ref, "state": "accepted"}, status_code=202)

    @app.get("/lbsms/v1/broadcasts/{ref}")
    async def status(ref: str) -> Any:
        if (refused := await guard()) is not None:
            return refused
        b = broadcasts.get(ref)
        if b is None:
            return _error(404, "not_found", f"no broadcast {ref}")
        return _aggregate(b)

    @app.delete("/lbsms/v1/broadcasts/{ref}", status_code=202)
    async def stop(ref: str) -> Any:
        if (refused := await guard()) is not None:
            return refused
        b = broadcasts.get(ref)
        if b is None:
            return _error(404, "not_found", f"no broadcast {ref}")
        b.stop = True
        return {"operator_ref": ref, "state": "stopping" if b.state not in TERMINAL_EVENTS
                else b.state}

    async def _run(b: _Broadcast, area: Any, cell_ids: list[str] | None) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            pending: list[dict[str, Any]] = []

            async def emit(event: str, **extra: Any) -> None:
                b.seq += 1
                b.state = "sending" if event == "progress" else event
                payload = {"operator_ref": b.ref, "reference": b.reference, "seq": b.seq,
                           "event": event, "at": dt.datetime.now(dt.UTC).strftime(
                               "%Y-%m-%dT%H:%M:%S.%fZ"), **extra}
                if faults.out_of_order and event == "progress" and not pending:
                    pending.append(payload)  # sent after the next one
                    return
                for p in [payload, *pending[::-1]] if pending else [payload]:
                    await _deliver(http, b, p)
                pending.clear()

            await emit("accepted")
            await asyncio.sleep(params.resolve_delay_s)
            if b.stop:
                await emit("stopped", counts=_counts(b))
                return
            if area is not None:
                b.cells = await asyncio.to_thread(operator_cells, area, operator, the_model(),
                                                  params.located_fraction)
            else:
                b.cells = [{"cell_id": c, "tech": "4G", "phones": 0} for c in cell_ids or []]
            previous = broadcasts.get(b.body.get("follow_up_of") or "")
            if previous is not None:  # the operator's store: earlier recipients too
                known = {c["cell_id"]: c for c in b.cells}
                for c in previous.cells:
                    if c["phones"] > known.get(c["cell_id"], {"phones": -1})["phones"]:
                        known[c["cell_id"]] = c
                b.cells = list(known.values())
            b.targeted = sum(c["phones"] for c in b.cells)
            await emit("resolved", cells_resolved=len(b.cells), phones_targeted=b.targeted)
            deadline = _deadline(b.body.get("not_after"))
            while b.submitted < b.targeted:
                if b.stop or time.time() > deadline:
                    await emit("stopped", counts=_counts(b), per_cell=_cells(b))
                    return
                stalled = (faults.stall_at is not None
                           and b.submitted >= faults.stall_at * b.targeted)
                if not stalled:
                    step = max(1, int(params.rate_per_s * params.tick_s))
                    _send(b, min(step, b.targeted - b.submitted), params.fail_share)
                    await emit("progress", cells_resolved=len(b.cells),
                               phones_targeted=b.targeted, counts=_counts(b),
                               per_cell=_cells(b))
                await asyncio.sleep(params.tick_s)
            await emit("completed", cells_resolved=len(b.cells), phones_targeted=b.targeted,
                       counts=_counts(b), per_cell=_cells(b))

    async def _deliver(http: httpx.AsyncClient, b: _Broadcast, payload: dict[str, Any]
                       ) -> None:
        data = json.dumps(payload).encode()
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "X-Tocsin-Timestamp": str(ts),
                   "X-Tocsin-Signature": sign(b.secret, ts, data)}
        for _ in range(2 if faults.duplicate else 1):
            wait = 0.2
            for _attempt in range(params.callback_retries):
                try:
                    r = await http.post(b.body["callback"]["url"], content=data,
                                        headers=headers)
                    if r.status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(wait)
                wait *= 2
            b.callbacks_sent.append(payload)

    return app


def _check_body(body: Any, secrets: dict[str, str]) -> tuple[str, str] | None:
    if not isinstance(body, dict):
        return "body_invalid", "not a JSON object"
    for name in ("reference", "text", "justification", "not_after"):
        if not isinstance(body.get(name), str) or not body[name].strip():
            return f"{name}_missing", f"{name} is required"
    if len(body["text"]) > 1530:
        return "text_too_long", "at most 1,530 characters"
    if body.get("sender") != "1789":
        return "sender_invalid", "location-based alerts are sent from 1789"
    if body.get("priority") not in PRIORITIES:
        return "priority_invalid", f"priority is one of {', '.join(PRIORITIES)}"
    if (body.get("area") is None) == (body.get("cell_ids") is None):
        return "area_invalid", "give exactly one of area or cell_ids"
    callback = body.get("callback") or {}
    if not str(callback.get("url", "")).startswith(("http://", "https://")):
        return "callback_invalid", "callback.url must be an http(s) URL"
    if callback.get("key_id") not in secrets:
        return "callback_invalid", "unknown callback.key_id"
    if _deadline(body["not_after"]) < time.time():
        return "not_after_passed", "not_after is in the past"
    return None


def _deadline(not_after: str | None) -> float:
    if not not_after:
        return math.inf
    try:
        return dt.datetime.fromisoformat(not_after.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return -math.inf


def _send(b: _Broadcast, n: int, fail_share: float) -> None:
    """Send the next ``n`` messages, cell after cell; every ``1/fail_share``-th fails."""
    left = n
    for c in b.cells:
        if left <= 0:
            break
        done = b.per_cell.setdefault(c["cell_id"], {"targeted": c["phones"], "delivered": 0,
                                                    "failed": 0})
        room = c["phones"] - done["delivered"] - done["failed"]
        take = min(room, left)
        if take <= 0:
            continue
        failed = int((done["failed"] + done["delivered"] + take) * fail_share) - done["failed"]
        failed = max(0, min(failed, take))
        done["failed"] += failed
        done["delivered"] += take - failed
        b.failed += failed
        b.delivered += take - failed
        left -= take
    b.submitted += n - left


def _counts(b: _Broadcast) -> dict[str, int]:
    return {"submitted": b.submitted, "delivered": b.delivered, "failed": b.failed,
            "expired": 0}


def _cells(b: _Broadcast) -> list[dict[str, Any]]:
    return [{"cell_id": k, **v} for k, v in b.per_cell.items()]


def _aggregate(b: _Broadcast) -> dict[str, Any]:
    return {"operator_ref": b.ref, "reference": b.reference, "state": b.state,
            "cells_resolved": len(b.cells), "phones_targeted": b.targeted,
            "counts": _counts(b), "last_seq": b.seq}
