"""When one more voice call may start on a route: the rules alone, no I/O (SPEC F22, issue 12).

The provider counts a call start when it *receives* the start request, which is some
time after Tocsin gave the permit (the request is built, sent, queued in a busy
process…). So Tocsin does not count a start at its permit time. Each start is kept
in the window, on one clock shared by the workers, as:

* **unsettled** from its permit until the worker learns what the provider did with
  the request: it counts, whatever its age (up to ``hold_s``, for a worker that died
  with the request in hand);
* **settled** at ``at``, an instant at which the provider had certainly received the
  request if it ever did: the time its HTTP answer (any status) or a callback about
  the call arrived; for a request whose answer never came (a timeout, a broken
  connection) the time the worker gave up plus one request timeout. It counts until
  ``at + 60 s + margin_s``.

**Invariant.** A permit is given at ``now`` only when fewer than ``per_minute`` starts
count at ``now``. Then the provider never receives more than ``per_minute`` starts in
any 60 s, whatever the request latencies. Proof: say it received ``per_minute + 1``
starts in ``(T - 60, T]``; let ``j`` be the one whose permit came last (permits are
given one at a time, under the route's row lock) and ``i`` any other. ``i`` was
received at ``R_i > T - 60`` and ``j`` was permitted at ``P_j <= R_j <= T``, so
``R_i > P_j - 60``. At ``P_j`` either ``i`` was unsettled, and counted, or settled at
``at_i >= R_i > P_j - 60``, and counted too (``at_i + 60 + margin > P_j``). So
``per_minute`` starts counted at ``P_j``, and ``j`` would have been refused. ∎ The same
argument bounds the starts Tocsin records in any 60 s. ``margin_s`` is only for
clocks that differ between workers (NTP keeps them within milliseconds); the request
latency needs no margin, because a start leaves the window only once it is known to
have been received. The cost: each of the minute's slots is reused one round trip
(plus ``margin_s``) after 60 s, e.g. 600 per 60.15 s = 598.5/min for 50 ms answers
and a 0.1 s margin.

Pacing: starts are spread ``60 / per_minute`` seconds apart (``slot``), catching up at
most ``PACING_SLACK_S`` of lateness at once, instead of a minute's worth in a burst.

Times are seconds on any one clock (the callers use UTC epoch seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Seconds of the provider's sliding window of call starts.
WINDOW_SECONDS = 60.0
#: Seconds of pacing lateness caught up at once (a few starts in a row).
PACING_SLACK_S = 1.0
#: Seconds a waiting worker sleeps at most before it looks again (the trunk frees
#: slots at times no rule can predict: when calls end).
MAX_WAIT_S = 0.25


@dataclass(frozen=True)
class CallStart:
    """One start in the window: ``at`` (seconds) is the permit time while ``settled`` is
    False, else the instant by which the provider had received the request."""

    at: float
    settled: bool


@dataclass(frozen=True)
class StartDecision:
    """``allowed``: one more call may start now, using pacing slot ``slot`` (seconds);
    else ``wait_s``, the seconds until it may be worth asking again."""

    allowed: bool
    wait_s: float = 0.0
    slot: float | None = None


def counted_until(start: CallStart, margin_s: float, hold_s: float) -> float:
    """Until when (seconds) ``start`` counts in the window: ``at + 60 + margin_s`` once
    settled; ``at + hold_s + 60 + margin_s`` while unsettled (``hold_s``: how long an
    unsettled start can stay so, its worker having died with the request in hand)."""
    extra = 0.0 if start.settled else hold_s
    return start.at + extra + WINDOW_SECONDS + margin_s


def counts_at(start: CallStart, now: float, margin_s: float, hold_s: float) -> bool:
    """Whether ``start`` counts in the window at ``now``."""
    return counted_until(start, margin_s, hold_s) > now


def settle_time(outcome: str, now: float, request_timeout_s: float) -> float:
    """``CallStart.at`` of a start whose request ended with ``outcome`` at ``now``:

    * ``answered``: the provider answered the request (any HTTP status), or a callback
      about the call arrived: it had received the request by ``now``;
    * ``unsent``: the request never left (the permit was given back before sending, or
      the connection could not be opened): ``now``;
    * ``unknown``: the worker gave up waiting (timeout, broken connection): the provider
      may still be working through a request it received, so ``now`` plus one more
      ``request_timeout_s``.
    """
    if outcome in ("answered", "unsent"):
        return now
    if outcome == "unknown":
        return now + request_timeout_s
    raise ValueError(f"unknown request outcome {outcome!r}")


def decide_start(now: float, starts: Iterable[CallStart], *, per_minute: int, active: int,
                 trunk: int, last_slot: float | None, margin_s: float,
                 hold_s: float) -> StartDecision:
    """Whether one more call may start at ``now`` on a route.

    ``starts``: the route's recent starts (those that may still count; older ones are
    ignored); ``active``: its calls not yet ended (against ``trunk``); ``last_slot``:
    the pacing slot last given (None: none yet). Refused while ``per_minute`` starts
    count (then ``wait_s`` is the time until enough of them leave the window), while
    ``trunk`` calls are active, and until the next pacing slot.
    """
    if per_minute < 1 or trunk < 1:
        raise ValueError("per_minute and trunk must be at least 1")
    until = sorted(t for t in (counted_until(s, margin_s, hold_s) for s in starts) if t > now)
    if len(until) >= per_minute:
        # The earliest instant at which fewer than per_minute count.
        return StartDecision(False, until[len(until) - per_minute] - now)
    if active >= trunk:
        return StartDecision(False, MAX_WAIT_S)
    gap = WINDOW_SECONDS / per_minute
    slot = now - PACING_SLACK_S
    if last_slot is not None and last_slot + gap > slot:
        slot = last_slot + gap
    if slot > now:
        return StartDecision(False, slot - now)
    return StartDecision(True, 0.0, slot)


def most_in_window(times: Iterable[float], window_s: float = WINDOW_SECONDS) -> int:
    """The most of ``times`` (seconds) in any half-open window ``(t - window_s, t]``."""
    ordered, best, lo = sorted(times), 0, 0
    for hi, t in enumerate(ordered):
        while t - ordered[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
