"""The live monitor pages (SPEC F26): running campaigns, one campaign's progress, and
their server-sent events. The figures come from ``campaigns.monitor``; routes stream them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from tocsin.campaigns import monitor
from tocsin.web import i18n
from tocsin.web.actors import acting
from tocsin.web.deps import Operator, current_operator, engine_of, render

router = APIRouter()

#: Seconds between two events (the issue asks at least one every 2 s).
POLL_S = 1.0
#: A stream ends after this many seconds; the browser's EventSource then reconnects, so a
#: forgotten tab never holds a connection for ever.
STREAM_MAX_S = 300.0
#: The delivery states in the order of the counters' rows (their words: ``i18n.LABELS``).
STATE_ORDER = tuple(i18n.LABELS["state"])


def _event(name: str, data: dict[str, Any]) -> bytes:
    """One server-sent event (HTML Living Standard §9.2, ``text/event-stream``)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(request: Request, name: str, read: Callable[[], Any],
                  is_final: Callable[[Any], bool], max_events: int | None) -> AsyncIterator[bytes]:
    """Events of ``read()`` every ``POLL_S`` seconds (in a thread: the service does
    blocking database I/O) until the client goes, ``is_final`` holds (that last state is
    sent), ``max_events`` were sent or ``STREAM_MAX_S`` passed."""
    started, sent = time.monotonic(), 0
    yield b"retry: 2000\n\n"
    while True:
        data = await asyncio.to_thread(read)
        yield _event(name, data)
        sent += 1
        if (is_final(data) or (max_events is not None and sent >= max_events)
                or time.monotonic() - started >= STREAM_MAX_S):
            return
        await asyncio.sleep(POLL_S)
        if await request.is_disconnected():
            return


def _sse(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/monitor")
def monitor_page(request: Request, large: bool = False,
                 op: Operator = Depends(current_operator)) -> Response:
    """The running campaigns (sending, or ended in the last hour) the operator may read."""
    rows = monitor.monitor_list(engine_of(request), acting(request, op), op.environment)
    return render(request, "monitor_list.html", campaigns=rows, large=large)


@router.get("/monitor/events")
def monitor_list_events(request: Request,
                        max_events: int | None = Query(None, ge=1, le=10_000),
                        op: Operator = Depends(current_operator)) -> Response:
    """Server-sent ``campaigns`` events: the monitor's list (``monitor.monitor_list``)."""
    engine, actor = engine_of(request), acting(request, op)

    def read() -> dict[str, Any]:
        return {"campaigns": monitor.monitor_list(engine, actor, op.environment)}

    return _sse(_stream(request, "campaigns", read, lambda _: False, max_events))


@router.get("/monitor/{campaign_id}")
def campaign_monitor_page(campaign_id: str, request: Request, large: bool = False,
                          op: Operator = Depends(current_operator)) -> Response:
    """One campaign's live counters, throughput, time left, failures and area (404 when
    the operator may not read it)."""
    data = monitor.campaign_monitor(engine_of(request), campaign_id, acting(request, op),
                                    with_area=True)
    area = data.pop("area")
    return render(request, "monitor.html", m=data, area=area, large=large,
                  state_names=STATE_ORDER)


@router.get("/monitor/{campaign_id}/events")
def campaign_monitor_events(campaign_id: str, request: Request,
                            max_events: int | None = Query(None, ge=1, le=10_000),
                            op: Operator = Depends(current_operator)) -> Response:
    """Server-sent ``progress`` events (``monitor.campaign_monitor``) every second until
    the campaign is final. 404 when the operator may not read it (checked before the
    stream starts)."""
    engine, actor = engine_of(request), acting(request, op)
    first = monitor.campaign_monitor(engine, campaign_id, actor)
    pending = [first]

    def read() -> dict[str, Any]:
        return pending.pop() if pending else monitor.campaign_monitor(engine, campaign_id, actor)

    return _sse(_stream(request, "progress", read, lambda d: bool(d["final"]), max_events))
