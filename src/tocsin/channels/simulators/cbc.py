"""A Cell Broadcast Centre speaking osmo-cbc's ECBE REST paths (SPEC F31; research note
``location-based-channels.md`` §2.4).

``POST /api/ecbe/v1/message`` answers 201 ``Created`` after ``ack_delay_s`` (the peers'
WRITE ACK), 400 with a plain-text reason in osmo-cbc's words, 409 ``Could not
allocate`` while the ``message_id`` is active; ``DELETE /api/ecbe/v1/message/:id``
answers 200 ``OK`` or 404 ``Unknown message ID``. Extension (not in osmo-cbc):
``GET /api/ecbe/v1/message/:id`` returns the message, its state and how many times it
was broadcast so far (every ``repetition_period`` seconds, until ``num_of_bcast`` or
``warning_period_sec`` runs out). ``timeout`` makes POSTs wait ``timeout_s`` (the
CBC's 15 s timer) before answering 201 anyway.

``POST /cap``: an operator CBC taking CAP 1.2 (research note §2.3 ``cap`` backend).
200 ``OK`` for a valid Alert, Update or Cancel; 400 naming the problem for a document
that is not valid CAP 1.2 or lacks the cell-broadcast parameters (:func:`check_cap`);
409 for an Update or Cancel whose ``references`` name no message it received before
(so order is proven). ``app.state.cbc["cap"]``: ``received`` (in order), ``log``
(``(msgType, identifier, status)``), ``active``.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from tocsin.channels.cell_broadcast import GEO_SCOPES

_CATEGORIES = ("normal", "high_priority", "background")


@dataclass
class CbcSimulatorParams:
    """Timing of the simulated CBC, seconds."""

    ack_delay_s: float = 0.2
    timeout: bool = False
    timeout_s: float = 15.0
    #: Fault injection for ``POST /cap``: each request first takes the next status here
    #: (e.g. 503, then 400) and answers it without recording the message.
    cap_faults: list[int] = field(default_factory=list)


@dataclass
class _Message:
    body: dict[str, Any]
    created: float = field(default_factory=time.monotonic)
    deleted: float | None = None


def _text(status: int, body: str) -> PlainTextResponse:
    return PlainTextResponse(body, status_code=status)


def check_message(body: Any) -> str | None:
    """osmo-cbc's reason for refusing ``body`` (400), or ``None`` when it is valid."""
    if not isinstance(body, dict):
        return "CBCMSG must be JSON object"
    if not isinstance(body.get("cbe_name"), str):
        return "CBCMSG 'cbe_name' is mandatory"
    if "category" in body and body["category"] not in _CATEGORIES:
        return "CBCMSG 'category' unknown"
    rep = body.get("repetition_period")
    if rep is None:
        return "CBCMSG 'repetiton_period' is mandatory"  # sic, osmo-cbc's spelling
    if not isinstance(rep, int) or not 0 <= rep <= 4095:
        return "CBCMSG 'repetiton_period' out of range"
    n = body.get("num_of_bcast", 0)
    if not isinstance(n, int) or not 0 <= n <= 65535:
        return "CBCMSG 'num_of_bcast' out of range"
    w = body.get("warning_period_sec")
    if w is not None and (not isinstance(w, int) or not 0 <= w <= 65535):
        return "CBCMSG 'warning_period_sec' out of range"
    if "scope" not in body:
        return "CBCMSG 'scope' is mandatory"
    if not isinstance(body["scope"], dict) or "scope_plmn" not in body["scope"]:
        return "CBCMSG only 'scope_plmn' supported"
    sm = body.get("smscb_message")
    if not isinstance(sm, dict):
        return "CBCMSG 'smscb_message' is mandatory"
    mid = sm.get("message_id")
    if not isinstance(mid, int) or not 0 <= mid <= 65535:
        return "message_id out of range"
    serial = sm.get("serial_nr")
    if not isinstance(serial, dict):
        return "'serial_nr' must be present and an object"
    decoded = serial.get("serial_nr_decoded")
    if decoded is None and "serial_nr_encoded" not in serial:
        return "Either 'serial_nr_encoded' or 'serial_nr_decoded' are mandatory"
    if decoded is not None:
        if "geo_scope" not in decoded:
            return "'geo_scope' is mandatory"
        if decoded["geo_scope"] not in GEO_SCOPES:
            return "'geo_scope' is invalid"
        if not isinstance(decoded.get("msg_code"), int) or not 0 <= decoded["msg_code"] <= 1023:
            return "'msg_code' is out of range"
        if not isinstance(decoded.get("update_nr"), int) or not 0 <= decoded["update_nr"] <= 15:
            return "'update_nr' is out of range"
    payload = (sm.get("payload") or {}).get("payload_decoded")
    if payload is None:
        return ("'payload_type_encoded', 'payload_type_decoded' or 'payload_etws' must be "
                "present")
    if "character_set" not in payload:
        return "Currently 'character_set' is mandatory"
    if payload["character_set"] not in ("gsm", "8bit", "ucs2"):
        return "Invalid 'character_set'"
    if "language" in payload and len(str(payload["language"])) != 2:
        return "Only two-digit 'language' code is supported"
    if not isinstance(payload.get("data_utf8"), str):
        return "'data_utf8' is mandatory"
    return None


def create_cbc_app(params: CbcSimulatorParams | None = None) -> FastAPI:
    """The simulated CBC. ``app.state.cbc["messages"]``: message id -> what was posted
    (active and deleted), ``app.state.cbc["log"]``: every request in order."""
    params = params or CbcSimulatorParams()
    app = FastAPI(title="Tocsin CBC simulator (osmo-cbc ECBE paths)")
    active: dict[int, _Message] = {}
    history: list[_Message] = []
    log: list[tuple[str, int, int]] = []  # (method, message_id, status)
    lock = asyncio.Lock()
    app.state.cbc = {"active": active, "history": history, "log": log}

    @app.post("/api/ecbe/v1/message")
    async def create(request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _text(400, "REST: No JSON Body")
        reason = check_message(body)
        if reason is not None:
            log.append(("POST", -1, 400))
            return _text(400, reason)
        mid = body["smscb_message"]["message_id"]
        async with lock:
            if mid in active:
                log.append(("POST", mid, 409))
                return _text(409, "Could not allocate")
            msg = _Message(body)
            active[mid] = msg
            history.append(msg)
        await asyncio.sleep(params.timeout_s if params.timeout else params.ack_delay_s)
        log.append(("POST", mid, 201))
        return _text(201, "Created")

    @app.delete("/api/ecbe/v1/message/{message_id}")
    async def delete(message_id: int) -> Any:
        if not 0 <= message_id <= 65535:
            return PlainTextResponse("", status_code=400)
        async with lock:
            msg = active.pop(message_id, None)
        if msg is None:
            log.append(("DELETE", message_id, 404))
            return _text(404, "Unknown message ID")
        msg.deleted = time.monotonic()
        log.append(("DELETE", message_id, 200))
        return _text(200, "OK")

    cap: dict[str, Any] = {"received": [], "log": [], "active": {}}
    app.state.cbc["cap"] = cap
    cap_lock = asyncio.Lock()

    @app.post("/cap")
    async def cap_message(request: Request) -> Any:
        """An operator CBC taking CAP 1.2 (research note §2.3 ``cap`` backend)."""
        raw = await request.body()
        async with cap_lock:
            if params.cap_faults:
                fault = params.cap_faults.pop(0)
                cap["log"].append(("fault", "", fault))
                return _text(fault, f"simulated fault {fault}\nsecond line")
            status, reason, entry = check_cap(raw, {r["key"] for r in cap["received"]},
                                              cap["active"])
            cap["log"].append((entry.get("msg_type", "?"), entry.get("identifier", ""),
                               status))
            if status != 200:
                return _text(status, reason)
            entry["authorization"] = request.headers.get("authorization", "")
            entry["content_type"] = request.headers.get("content-type", "")
            cap["received"].append(entry)
            key = entry["key"]
            if entry["msg_type"] == "Cancel":
                for ref in entry["references"]:
                    cap["active"].pop(ref, None)
            else:
                for ref in entry["references"]:
                    cap["active"].pop(ref, None)
                cap["active"][key] = entry
        await asyncio.sleep(params.ack_delay_s)
        return _text(200, "OK")

    @app.get("/api/ecbe/v1/message/{message_id}")
    async def status(message_id: int) -> Any:
        msg = active.get(message_id)
        if msg is None:
            return _text(404, "Unknown message ID")
        return JSONResponse({"message_id": message_id, "state": "broadcasting",
                             "broadcasts": _broadcasts(msg), "message": msg.body})

    return app


def _broadcasts(msg: _Message) -> int:
    """Broadcasts so far: one at creation, then one per repetition period, until
    ``num_of_bcast`` (0 = unlimited) or ``warning_period_sec`` runs out."""
    period = max(int(msg.body["repetition_period"]), 1)
    end = msg.deleted or time.monotonic()
    warning = msg.body.get("warning_period_sec")
    if warning is not None:
        end = min(end, msg.created + warning)
    n = 1 + int(max(end - msg.created, 0) // period)
    limit = int(msg.body.get("num_of_bcast") or 0)
    return min(n, limit) if limit else n


def check_cap(raw: bytes, known: set[str], active: dict[str, Any]
              ) -> tuple[int, str, dict[str, Any]]:
    """What the simulated CAP CBC answers ``raw``: ``(status, reason, entry)``. 400
    when it is not valid CAP 1.2 (Tocsin's hardened parser and the OASIS XSD plus the
    rules it cannot express, ``tocsin.cap.validate``), lacks the ``EU-Alert-level`` or
    ``CB-message-id`` parameter or has a polygon over 250 points; 409 when it repeats an
    identifier, or an Update or Cancel names no earlier message this CBC received (or
    one already updated or cancelled). ``entry``: ``{"key", "identifier", "sender",
    "sent", "msg_type", "references", "parameters", "xml"}``; ``key`` =
    ``sender,identifier,sent``."""
    from tocsin.cap.build import parse_references
    from tocsin.cap.validate import validate_cap
    from tocsin.cap.xml import CapParseError, parse_cap

    report = validate_cap(raw)
    if not report.valid:
        first = report.errors[0] if report.errors else None
        return 400, f"invalid CAP: {first.element if first else ''}: " \
                    f"{first.message if first else ''}", {}
    try:
        root = parse_cap(raw)
    except CapParseError as exc:  # pragma: no cover - validate_cap said valid
        return 400, f"invalid CAP: {exc}", {}
    ns = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}

    def text(path: str) -> str:
        return (root.findtext(path, namespaces=ns) or "").strip()

    entry: dict[str, Any] = {
        "identifier": text("c:identifier"), "sender": text("c:sender"),
        "sent": text("c:sent"), "msg_type": text("c:msgType"), "xml": raw,
        "references": [",".join(t) for t in parse_references(text("c:references"))],
        "parameters": []}
    entry["key"] = f"{entry['sender']},{entry['identifier']},{entry['sent']}"
    for info in root.findall("c:info", ns):
        params = {p.findtext("c:valueName", namespaces=ns): p.findtext("c:value", namespaces=ns)
                  for p in info.findall("c:parameter", ns)}
        if not params.get("EU-Alert-level") or not params.get("CB-message-id"):
            return 400, "info: parameters EU-Alert-level and CB-message-id are mandatory", entry
        entry["parameters"].append(params)
        for poly in info.iter(f"{{{ns['c']}}}polygon"):
            if len((poly.text or "").split()) > 250:
                return 400, "polygon: more than 250 points", entry
    if any(r["identifier"] == entry["identifier"] for r in _received_ids(known)):
        return 409, f"identifier {entry['identifier']} already received", entry
    if entry["msg_type"] in ("Update", "Cancel"):
        if not entry["references"]:
            return 409, f"{entry['msg_type']} without references", entry
        unknown = [r for r in entry["references"] if r not in known]
        if unknown:
            return 409, f"references name no alert received: {unknown[0]}", entry
        if not any(r in active for r in entry["references"]):
            return 409, "references name no active alert (already updated or cancelled)", entry
    return 200, "OK", entry


def _received_ids(known: set[str]) -> list[dict[str, str]]:
    out = []
    for key in known:
        sender, identifier, sent = (key.split(",") + ["", "", ""])[:3]
        out.append({"sender": sender, "identifier": identifier, "sent": sent})
    return out
