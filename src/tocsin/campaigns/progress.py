"""The live monitor's figures (SPEC F26): throughput, time left, counters. Pure: no I/O.

``campaigns.monitor`` reads the counts from the database and calls these rules; they are
tested in milliseconds (tests/test_monitor.py).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

#: The rate is measured over this many seconds before now (the issue asks 10–30 s): long
#: enough to smooth a worker's batches, short enough to follow a change of pace.
THROUGHPUT_WINDOW_S = 20.0
#: A campaign that ended this long ago still shows on the monitor (seconds).
RECENT_S = 3600.0
#: Statuses of a campaign that will change no more: the monitor sends its last event.
FINAL_STATUSES = frozenset({"finished", "cancelled", "stopped"})
#: Delivery states still waiting to be handed to a provider (SPEC F26).
WAITING_STATES = frozenset({"queued", "in_flight"})
#: Delivery states that count as a failure on the monitor (SPEC F26).
FAILED_STATES = frozenset({"failed", "expired"})
#: The counter columns, in the order a delivery goes through them (SPEC F26).
STATE_ORDER = ("queued", "in_flight", "sent", "delivered", "failed", "expired", "stopped")


def throughput(handled_in_window: int, window_s: float = THROUGHPUT_WINDOW_S,
               running_s: float | None = None) -> float:
    """Deliveries per second over the last ``window_s`` seconds.

    ``handled_in_window``: deliveries handed to a provider or failed within the window;
    ``running_s``: seconds since the campaign was launched (None: unknown), so that a
    campaign younger than the window is not under-rated. A span under one second counts as
    one second (a burst is not an infinite rate). Raises ValueError on a negative count or
    a window that is not positive.
    """
    if handled_in_window < 0:
        raise ValueError("handled_in_window: must be 0 or more")
    if not window_s > 0:
        raise ValueError("window_s: must be more than 0 seconds")
    span = window_s if running_s is None else min(window_s, max(running_s, 0.0))
    return handled_in_window / max(span, 1.0)


def seconds_left(remaining: int, rate_per_s: float) -> float | None:
    """Seconds until the ``remaining`` deliveries are handled at ``rate_per_s``: 0 when
    nothing remains, None when something remains but nothing moves (no estimate is
    better than an infinite one). Rounded up to the second."""
    if remaining <= 0:
        return 0.0
    if rate_per_s <= 0:
        return None
    return float(math.ceil(remaining / rate_per_s))


def format_duration(seconds: float | None) -> str:
    """``seconds`` for a reader at a distance: ``"45 s"``, ``"3 min 05 s"``,
    ``"1 h 02 min"``; ``"unknown"`` for None."""
    if seconds is None:
        return "unknown"
    s = int(math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def is_recent(status: str, finished_at: dt.datetime | None, now: dt.datetime,
              recent_s: float = RECENT_S) -> bool:
    """Whether a campaign belongs on the monitor's list: sending, or final (finished or
    cancelled) less than ``recent_s`` seconds before ``now`` (aware UTC datetimes)."""
    if status == "sending":
        return True
    if status not in FINAL_STATUSES or finished_at is None:
        return False
    return (now - finished_at).total_seconds() <= recent_s


def summary(by_channel: Mapping[str, Mapping[str, int]], handled_in_window: int,
            running_s: float | None, status: str,
            window_s: float = THROUGHPUT_WINDOW_S) -> dict[str, Any]:
    """The monitor's figures from the counts per channel and delivery state.

    Returns ``{"channels": {channel: {"states": {state: n for every state of
    STATE_ORDER}, "total", "done", "failed", "remaining"}}, "total", "done" (no longer
    queued or in flight), "failed" (failed or expired), "remaining", "percent" (0–100,
    of deliveries done; 100 with none), "throughput_per_s" (rounded to 0.1),
    "seconds_left" (None: unknown; 0 once final), "time_left" (``format_duration``),
    "final"}``.
    """
    channels: dict[str, dict[str, Any]] = {}
    for name, states in by_channel.items():
        full = {st: int(states.get(st, 0)) for st in STATE_ORDER}
        for st, n in states.items():  # a state the monitor does not know still counts
            full.setdefault(st, int(n))
        total = sum(full.values())
        remaining = sum(full[st] for st in WAITING_STATES)
        channels[name] = {"states": full, "total": total, "done": total - remaining,
                          "failed": sum(full[st] for st in FAILED_STATES),
                          "remaining": remaining}
    total = sum(c["total"] for c in channels.values())
    remaining = sum(c["remaining"] for c in channels.values())
    final = status in FINAL_STATUSES
    rate = throughput(handled_in_window, window_s, running_s)
    left = 0.0 if final else seconds_left(remaining, rate)
    return {"channels": channels, "total": total, "done": total - remaining,
            "failed": sum(c["failed"] for c in channels.values()), "remaining": remaining,
            "percent": round(100.0 * (total - remaining) / total, 1) if total else 100.0,
            "throughput_per_s": round(rate, 1), "seconds_left": left,
            "time_left": format_duration(left), "final": final}
