"""The call start rules (dispatch.call_rules) on a fake clock: whatever the time a start
request takes to reach the provider, the provider never receives more than the limit in
any 60 s, and the rate is used to the full while calls remain (issue 12)."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.dispatch.call_rules import (
    WINDOW_SECONDS,
    CallStart,
    counts_at,
    decide_start,
    most_in_window,
    settle_time,
)

TIMEOUT_S = 10.0
HOLD_S = 30.0  # an unsettled start counts this long (+ 60 s) at most


@dataclass
class SimStart:
    """One start on the fake clock: permit ``p``; the provider receives it at
    ``received`` (None: never); the worker learns the outcome at ``known`` and then
    records it settled at ``settled_at``."""

    p: float
    received: float | None
    known: float
    settled_at: float

    def view(self, now: float) -> CallStart:
        """What the database says of this start at ``now``."""
        if now >= self.known:
            return CallStart(self.settled_at, True)
        return CallStart(self.p, False)


def _stalls(rng: random.Random, seconds: float) -> list[tuple[float, float]]:
    """Periods in which a process does nothing (descheduled on a busy machine, a long
    garbage collection, a stuck disk): one every 30 s on average, 1 to 12 s long."""
    out, t = [], 0.0
    while t < seconds:
        t += rng.expovariate(1 / 30)
        length = rng.uniform(1.0, 12.0)
        out.append((t, t + length))
        t += length
    return out


def _after(stalls: list[tuple[float, float]], t: float) -> float:
    """When a process stalled over ``stalls`` can act on something due at ``t``."""
    for a, b in stalls:
        if a <= t < b:
            return b
    return t


def _request(rng: random.Random, p: float, profile: str, worker: list[tuple[float, float]],
             provider: list[tuple[float, float]]) -> SimStart:
    """One start request's fate. Its worker sends it and reads the answer when not
    stalled (``worker``: every request it holds waits together), the provider reads it
    when not stalled; mostly quick, sometimes answered late, timed out (received or
    not), never sent, or recorded much later."""
    draw = rng.random()
    if profile == "quick":
        sent = p + rng.uniform(0, 0.05)
        answered = sent + rng.uniform(0, 0.05)
        return SimStart(p, sent, answered, settle_time("answered", answered, TIMEOUT_S))
    sent = _after(worker, p + rng.uniform(0, 0.05))
    received = _after(provider, sent + rng.uniform(0, 0.02))
    if draw < 0.8:
        # Answered; the worker reads the answer when it can (a callback about the call
        # can overtake it: the start is settled when either arrives).
        answered = _after(worker, received + rng.uniform(0, 0.05))
        return SimStart(p, received, answered, settle_time("answered", answered, TIMEOUT_S))
    if draw < 0.9:  # no answer within the timeout; the provider may still receive it,
        gave_up = max(sent + TIMEOUT_S, _after(worker, sent + TIMEOUT_S))  # up to one
        late = gave_up + rng.uniform(-TIMEOUT_S, TIMEOUT_S)  # more timeout later
        return SimStart(p, late if rng.random() < 0.7 else None, gave_up,
                        settle_time("unknown", gave_up, TIMEOUT_S))
    if draw < 0.95:  # the connection could not be opened: never received
        failed = _after(worker, sent + rng.uniform(0, 0.5))
        return SimStart(p, None, failed, settle_time("unsent", failed, TIMEOUT_S))
    # The answer is written to the database only much later (a stuck database write).
    answered = _after(worker, received + rng.uniform(0, 0.05))
    return SimStart(p, received, answered + rng.uniform(0, 20.0), answered)


def _simulate(seed: int, per_minute: int, workers: int, seconds: float, margin_s: float,
              profile: str = "mixed", former: bool = False) -> list[SimStart]:
    """Workers asking for permits on a fake clock; each asks again ``wait_s`` after a
    refusal (a little later unless ``profile`` is quick: they are not punctual), at once
    after a permit, and not while it is stalled. Returns the starts given. ``former``:
    the rule before this one (a start counts from its permit time, settled or not)."""
    rng = random.Random(seed)
    quick = profile == "quick"
    stalls = [[] if quick else _stalls(rng, seconds) for _ in range(workers)]
    provider = [] if quick else _stalls(rng, seconds)
    starts: list[SimStart] = []
    first = 0
    last_slot: float | None = None
    asks = [(rng.uniform(0, 0.3), w) for w in range(workers)]
    heapq.heapify(asks)
    while asks:
        now, w = heapq.heappop(asks)
        if now > seconds:
            continue
        if _after(stalls[w], now) > now:
            heapq.heappush(asks, (_after(stalls[w], now), w))
            continue
        while first < len(starts) and starts[first].p < now - HOLD_S - 61:
            first += 1  # can no longer count
        seen = [CallStart(s.p, True) if former else s.view(now) for s in starts[first:]]
        decision = decide_start(now, seen,
                                per_minute=per_minute, active=0, trunk=1,
                                last_slot=last_slot, margin_s=margin_s, hold_s=HOLD_S)
        if decision.allowed:
            last_slot = decision.slot
            starts.append(_request(rng, now, profile, stalls[w], provider))
            heapq.heappush(asks, (now + rng.uniform(0, 0.01), w))
        else:
            lateness = 0.0 if quick else rng.expovariate(1 / 0.02)
            heapq.heappush(asks, (now + decision.wait_s + lateness, w))
    return starts


def test_a_request_slower_than_any_margin_cannot_overfill_the_providers_minute():
    # 2 a minute. The first request reaches the provider 59 s after its permit (a stuck
    # process); counting it from its permit time (+ a 0.5 s margin) would let a third
    # start at 60.5 s, and the provider would see 3 starts in (0.6, 60.6].
    first = CallStart(0.0, False)
    second = CallStart(30.02, True)  # permitted at 30, answered at once
    decision = decide_start(60.6, [first, second], per_minute=2, active=0, trunk=10,
                            last_slot=30.0, margin_s=0.5, hold_s=900)
    assert not decision.allowed  # unsettled: it still counts
    # Its answer came at 59.01: it counts until 119.51, so the next start is due when the
    # second one leaves the window, at 90.52.
    settled = CallStart(settle_time("answered", 59.01, TIMEOUT_S), True)
    decision = decide_start(60.6, [settled, second], per_minute=2, active=0, trunk=10,
                            last_slot=30.0, margin_s=0.5, hold_s=900)
    assert not decision.allowed and decision.wait_s == pytest.approx(90.52 - 60.6)
    assert decide_start(90.53, [settled, second], per_minute=2, active=0, trunk=10,
                        last_slot=30.0, margin_s=0.5, hold_s=900).allowed


def test_counting_rules():
    assert counts_at(CallStart(0.0, True), 60.0, 0.0, 900) is False  # (t-60, t]
    assert counts_at(CallStart(0.0, True), 59.99, 0.0, 900)
    assert counts_at(CallStart(0.0, True), 60.09, 0.1, 900)
    assert counts_at(CallStart(0.0, False), 959.9, 0.0, 900)  # a worker died holding it
    assert not counts_at(CallStart(0.0, False), 960.0, 0.0, 900)
    assert settle_time("unknown", 100.0, 10.0) == 110.0
    assert settle_time("answered", 100.0, 10.0) == settle_time("unsent", 100.0, 10.0) == 100.0
    with pytest.raises(ValueError):
        settle_time("lost", 1.0, 1.0)


def test_pacing_spreads_starts_and_catches_up_one_second_at_most():
    kw = {"per_minute": 600, "active": 0, "trunk": 200, "margin_s": 0.1, "hold_s": 900}
    first = decide_start(100.0, [], last_slot=None, **kw)
    assert first.allowed and first.slot == pytest.approx(99.0)
    # Slots 0.1 s apart; a worker 3 s late gets 10 starts at once, then waits for slots.
    slot: float | None = 96.0
    given_now = 0
    while True:
        d = decide_start(99.0 + 0.001 * given_now, [], last_slot=slot, **kw)
        if not d.allowed:
            break
        slot, given_now = d.slot, given_now + 1
    assert given_now == 10 or given_now == 11
    waiting = decide_start(99.02, [], last_slot=99.05, **kw)
    assert not waiting.allowed and waiting.wait_s == pytest.approx(0.13)


def test_the_trunk_refuses_once_full():
    d = decide_start(10.0, [], per_minute=600, active=200, trunk=200, last_slot=None,
                     margin_s=0.1, hold_s=900)
    assert not d.allowed and d.wait_s > 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), per_minute=st.integers(1, 30),
       workers=st.integers(1, 5), margin_s=st.sampled_from([0.0, 0.1, 0.5]))
def test_the_provider_never_receives_more_than_the_limit_in_any_60_s(seed, per_minute,
                                                                     workers, margin_s):
    starts = _simulate(seed, per_minute, workers, 400.0, margin_s)
    received = [s.received for s in starts if s.received is not None]
    assert most_in_window(received) <= per_minute
    # And Tocsin's own record of them (the settled times) holds the limit too.
    assert most_in_window([s.settled_at for s in starts]) <= per_minute


@pytest.mark.parametrize("margin_s", [0.1, 0.5])
def test_the_rate_is_used_to_the_full_when_requests_are_quick(margin_s):
    # 120 a minute over 4 minutes (600 behaves alike, 5 times slower to simulate), three
    # punctual workers, answers within 0.1 s: each slot of the minute is reused one
    # round trip (+ margin) after 60 s, so at least 99 % of the limit is used.
    starts = _simulate(7, 120, 3, 240.0, margin_s, profile="quick")
    received = sorted(s.received for s in starts if s.received is not None)
    assert most_in_window(received) <= 120
    per_minute = (len(received) - 1) / (received[-1] - received[0]) * 60
    assert per_minute >= 120 * WINDOW_SECONDS / (WINDOW_SECONDS + margin_s + 0.1)
    assert per_minute >= 0.99 * 120


def test_counting_from_the_permit_time_would_overfill_the_providers_minute():
    """Why a start counts until it is known received: in the same simulation, the former
    rule (a start counts 60 s + a 0.5 s margin from its permit) lets requests held up by
    a stalled worker or provider pile into one minute at the provider."""
    excess = 0
    for seed in range(12):
        starts = _simulate(seed, 10, 3, 400.0, 0.5, former=True)
        excess = max(excess, most_in_window(
            [s.received for s in starts if s.received is not None]) - 10)
    assert excess > 0
