"""Quotas and escalation (issue 10 point 8): "quota 3, 5 people, 5-minute timeouts" gives
the expected timeline, minute by minute, with an injected clock."""

from __future__ import annotations

import datetime as dt

from tocsin.campaigns.quota import (
    ACCEPTED,
    DECLINED,
    TIMED_OUT,
    Person,
    QuotaRules,
    answer,
    escalation_channels,
    step,
)

T0 = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
RULES = QuotaRules(quota=3, timeout=dt.timedelta(minutes=5),
                   escalate_after=dt.timedelta(minutes=2))
ALL = ("sms", "voice", "email")


def _people() -> list[Person]:
    return [Person(f"P{i}", i, ALL) for i in range(1, 6)]


def _run(answers: dict[int, tuple[str, int]], minutes: int = 12) -> list[tuple[int, str, str, str]]:
    """Tick every minute; ``answers``: minute -> (person, option) arriving before that tick."""
    people = _people()
    by_key = {p.key: p for p in people}
    timeline: list[tuple[int, str, str, str]] = []
    closed = False
    for minute in range(minutes + 1):
        now = T0 + dt.timedelta(minutes=minute)
        if minute in answers:
            key, option = answers[minute]
            assert answer(by_key[key], option, now, RULES)
            timeline.append((minute, "answer", key, str(option)))
        for a in step(people, RULES, now, closed):
            timeline.append((minute, a.kind, a.key, a.channel))
            closed = closed or a.kind in ("filled", "exhausted")
    return timeline


def test_quota_three_of_five_with_five_minute_timeouts() -> None:
    timeline = _run({1: ("P1", 1), 3: ("P2", 2), 6: ("P4", 1), 8: ("P5", 1)})
    assert timeline == [
        (0, "send", "P1", "sms"), (0, "send", "P2", "sms"), (0, "send", "P3", "sms"),
        (1, "answer", "P1", "1"),                      # P1 accepts: no voice call for P1
        (2, "send", "P2", "voice"), (2, "send", "P3", "voice"),
        (3, "answer", "P2", "2"),                      # P2 declines: P4 takes the place
        (3, "send", "P4", "sms"),
        (4, "send", "P3", "email"),
        (5, "timeout", "P3", ""),                      # P3 silent 5 min: P5 asked
        (5, "send", "P4", "voice"), (5, "send", "P5", "sms"),
        (6, "answer", "P4", "1"),
        (7, "send", "P5", "voice"),
        (8, "answer", "P5", "1"),                      # filled: thank the others asked
        (8, "thank", "P2", "sms"), (8, "thank", "P3", "sms"),
        (8, "filled", "", ""),
    ]


def test_list_exhausted_before_filled() -> None:
    timeline = _run({1: ("P1", 2), 2: ("P2", 2), 3: ("P3", 2), 4: ("P4", 2), 5: ("P5", 1)})
    # Everyone answered by minute 5, one accepted: the list is used up.
    assert timeline[-1] == (5, "exhausted", "", "")
    assert ("thank", "") not in {(k, c) for _, k, _, c in timeline}


def test_answer_rules() -> None:
    p = Person("X", 1, ("sms",))
    assert not answer(p, 1, T0, RULES)            # never asked
    step([p], QuotaRules(quota=1), T0)
    assert answer(p, 2, T0, RULES) and p.state == DECLINED
    assert not answer(p, 1, T0, RULES)            # one answer per person
    q = Person("Y", 1, ("sms",))
    step([q], RULES, T0)
    step([q], RULES, T0 + dt.timedelta(minutes=6))
    assert q.state == TIMED_OUT
    assert answer(q, 1, T0 + dt.timedelta(minutes=7), RULES) and q.state == ACCEPTED
    assert escalation_channels(["email", "sms"], ["sms", "email", "cap"]) == ("sms", "email")
    assert escalation_channels(["voice"], ["sms"]) == ()
