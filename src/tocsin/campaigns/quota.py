"""Quotas and escalation of an answerable group message (issue 10 point 8). Pure: no I/O,
no clock (the caller passes ``now``).

"We need 5 volunteers": the message goes to the first ``quota`` people of an ordered
list. Each person asked is escalated from channel to channel (SMS, then a voice call,
then e-mail, among the channels they have and the campaign uses), one step every
``escalate_after``; any answer stops the escalation. A person who declines (any option
but ``accept_option``) or has not answered ``timeout`` after being asked frees the
place, and the next person of the list is asked. Once ``quota`` people accepted, the
call is filled: nobody else is asked, and everyone asked who did not accept (declined,
timed out, or still waiting) is thanked and stood down.

:func:`step` is run by the worker on a timer (``campaigns.answer_service.run_quotas``);
it returns what to do now and updates the people it is given. Time moves only through
``now``, so a test replays a whole morning in a loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

#: The escalation order of channels (SMS, then voice, then e-mail).
ESCALATION = ("sms", "voice", "email")

WAITING, ASKED, ACCEPTED, DECLINED, TIMED_OUT = (
    "waiting", "asked", "accepted", "declined", "timed_out")
STATES = (WAITING, ASKED, ACCEPTED, DECLINED, TIMED_OUT)


@dataclass(frozen=True)
class QuotaRules:
    """``quota`` people wanted; ``timeout``: how long a person has to answer once asked;
    ``escalate_after``: time between channel steps; ``accept_option``: the 1-based
    option that counts as "yes, I come"."""

    quota: int
    timeout: dt.timedelta = dt.timedelta(minutes=15)
    escalate_after: dt.timedelta = dt.timedelta(minutes=5)
    accept_option: int = 1


@dataclass
class Person:
    """One person of the ordered list. ``channels``: the channels that reach them, in
    escalation order; ``sent``: the channels already used; ``option``: their answer."""

    key: str
    position: int
    channels: tuple[str, ...]
    state: str = WAITING
    asked_at: dt.datetime | None = None
    sent: list[str] = field(default_factory=list)
    option: int | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    thanked_at: dt.datetime | None = None


@dataclass(frozen=True)
class Action:
    """What to do: ``kind`` ``send`` (``channel`` to ``key``), ``timeout``, ``thank``
    (the "filled, thank you" message to ``key`` on their first channel) or ``filled``
    / ``exhausted`` (the call is over; ``key`` empty)."""

    kind: str
    key: str = ""
    channel: str = ""


def escalation_channels(available: Sequence[str], used: Sequence[str]) -> tuple[str, ...]:
    """The channels of :data:`ESCALATION` that are both ``available`` to the person and
    ``used`` by the campaign, in escalation order."""
    return tuple(c for c in ESCALATION if c in available and c in used)


def answer(person: Person, option: int, at: dt.datetime, rules: QuotaRules) -> bool:
    """Record ``person``'s answer; returns False (nothing changed) when they already
    answered or were never asked. Accepting after a time-out still counts while the
    call is open (they are there after all); the caller checks that it is open."""
    if person.state not in (ASKED, TIMED_OUT) or person.option is not None:
        return False
    person.option = option
    person.answered_at = at
    person.state = ACCEPTED if option == rules.accept_option else DECLINED
    person.ended_at = person.ended_at or at
    return True


def accepted(people: Sequence[Person]) -> int:
    """How many accepted."""
    return sum(1 for p in people if p.state == ACCEPTED)


def step(people: Sequence[Person], rules: QuotaRules, now: dt.datetime,
         closed: bool = False) -> list[Action]:
    """Advance the call to ``now``: time-outs, then (if filled) thanks, else new asks and
    escalation steps that are due. ``people`` are updated in place; ``closed``: the call
    was already filled or exhausted (returns nothing). Actions are in list order."""
    if closed:
        return []
    out: list[Action] = []
    ordered = sorted(people, key=lambda p: p.position)
    for p in ordered:
        if p.state == ASKED and p.asked_at is not None and now >= p.asked_at + rules.timeout:
            p.state = TIMED_OUT
            p.ended_at = p.asked_at + rules.timeout
            out.append(Action("timeout", p.key))
    if accepted(ordered) >= rules.quota:
        for p in ordered:
            if p.state in (ASKED, DECLINED, TIMED_OUT) and p.thanked_at is None:
                p.thanked_at = now
                if p.state == ASKED:
                    p.ended_at = now
                out.append(Action("thank", p.key, p.channels[0] if p.channels else ""))
        out.append(Action("filled"))
        return out
    open_asks = sum(1 for p in ordered if p.state == ASKED)
    free = rules.quota - accepted(ordered) - open_asks
    for p in ordered:
        if free <= 0:
            break
        if p.state == WAITING:
            if not p.channels:
                p.state, p.ended_at = TIMED_OUT, now  # nothing reaches them
                continue
            p.state, p.asked_at = ASKED, now
            free -= 1
    for p in ordered:
        if p.state != ASKED or p.asked_at is None:
            continue
        for i, channel in enumerate(p.channels):
            if channel not in p.sent and now >= p.asked_at + i * rules.escalate_after:
                p.sent.append(channel)
                out.append(Action("send", p.key, channel))
    if not any(p.state in (WAITING, ASKED) for p in ordered):
        out.append(Action("exhausted"))
    return out
