"""The live monitor (SPEC F26): running campaigns and one campaign's progress, as figures.

Reading never writes. The maths (throughput, time left, totals) is in
``campaigns.progress``; this module counts deliveries and checks who may read.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.authorities.access import audited_denials
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor
from tocsin.campaigns import progress
from tocsin.campaigns.checks import check_may
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.reports import list_campaigns, message_label
from tocsin.core.db import iso_utc, read_transaction, table, utcnow
from tocsin.dispatch.models import Delivery

__all__ = ["campaign_monitor", "monitor_list"]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _handled_since(d: sa.Table, since: dt.datetime) -> sa.ColumnElement[bool]:
    """Deliveries handed to a provider (``sent_at``) or ended without it (``final_at``:
    failed, expired, stopped) at or after ``since``."""
    return sa.or_(d.c.sent_at >= since, sa.and_(d.c.sent_at.is_(None), d.c.final_at >= since))


def _counts(s: Any, d: sa.Table, ids: list[str], since: dt.datetime
            ) -> tuple[dict[str, dict[str, dict[str, int]]], dict[str, int]]:
    by: dict[str, dict[str, dict[str, int]]] = {cid: {} for cid in ids}
    for cid, ch, st, n in s.execute(
            sa.select(d.c.campaign_id, d.c.channel, d.c.state, sa.func.count())
            .where(d.c.campaign_id.in_(ids))
            .group_by(d.c.campaign_id, d.c.channel, d.c.state)):
        by[cid].setdefault(ch, {})[st] = n
    handled = dict(s.execute(
        sa.select(d.c.campaign_id, sa.func.count())
        .where(d.c.campaign_id.in_(ids), _handled_since(d, since))
        .group_by(d.c.campaign_id)).all())
    return by, {cid: int(handled.get(cid, 0)) for cid in ids}


def _running_s(launched_at: dt.datetime | None, now: dt.datetime) -> float | None:
    launched = _aware(launched_at)
    return None if launched is None else (now - launched).total_seconds()


def monitor_list(engine: Engine, actor: Actor, environment: str,
                 now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The campaigns on the monitor: those ``actor`` may read in ``environment``
    (``reports.list_campaigns``) that are sending, or ended (finished or cancelled) in the
    last ``progress.RECENT_S`` seconds; sending first, then newest first.

    Each: ``{"campaign_id", "kind", "label", "area_name", "status", "launched_at",
    "finished_at"}`` plus the figures of ``progress.summary`` (without "channels") and
    ``"channels"`` (the names). ``now``: aware UTC, default the current time.
    """
    now = now or utcnow()
    rows = [r for r in list_campaigns(engine, actor, environment)
            if r["status"] in ("sending", "paused", *progress.FINAL_STATUSES)]
    if not rows:
        return []
    ids = [r["campaign_id"] for r in rows]
    d = table(Delivery)
    since = now - dt.timedelta(seconds=progress.THROUGHPUT_WINDOW_S)
    with read_transaction(engine) as s:
        times = {cid: (_aware(launched), _aware(finished)) for cid, launched, finished in
                 s.execute(sa.select(Campaign.id, Campaign.launched_at, Campaign.finished_at)
                           .where(Campaign.id.in_(ids)))}
        keep = [r for r in rows if progress.is_recent(r["status"], times[r["campaign_id"]][1],
                                                       now)]
        by, handled = _counts(s, d, [r["campaign_id"] for r in keep], since) if keep else ({}, {})
    out = []
    for r in keep:
        cid = r["campaign_id"]
        figures = progress.summary(by[cid], handled[cid],
                                   _running_s(times[cid][0], now), r["status"])
        figures.pop("channels")
        out.append({"campaign_id": cid, "kind": r["kind"], "label": r["label"],
                    "area_name": r["area_name"], "status": r["status"],
                    "launched_at": r["launched_at"], "finished_at": iso_utc(times[cid][1]),
                    "channels": [c for c in r["channels"] if c != "cap"], **figures})
    sending = [x for x in out if x["status"] == "sending"]
    ended = [x for x in out if x["status"] != "sending"]
    for group in (sending, ended):
        group.sort(key=lambda x: x["launched_at"] or "", reverse=True)
    return sending + ended


def campaign_monitor(engine: Engine, campaign_id: str, actor: Actor | None, *,
                     now: dt.datetime | None = None, with_area: bool = False) -> dict[str, Any]:
    """One campaign's live figures (SPEC F26). Raises ``LookupError`` (unknown id) and
    ``access.Denied`` (``hidden``: answered as not found) when ``actor`` may not read it
    (``None``: the system, which reads everything).

    Shape: ``{"campaign_id", "kind", "label", "area_name", "environment", "status",
    "launched_at", "finished_at", "updated_at" (RFC 3339 UTC of ``now``), "failures":
    [{"channel", "reason", "count"}] (most frequent first), "window_s"}`` plus the
    figures of ``progress.summary`` (``channels`` per channel and state, ``total``,
    ``done``, ``failed``, ``remaining``, ``percent``, ``throughput_per_s`` in deliveries
    per second over the last ``window_s`` seconds, ``seconds_left``, ``time_left``,
    ``final``); with ``with_area`` also ``"area"`` (the GeoJSON geometry, WGS84).
    """
    now = now or utcnow()
    d = table(Delivery)
    since = now - dt.timedelta(seconds=progress.THROUGHPUT_WINDOW_S)
    with audited_denials(engine), read_transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            raise LookupError(f"campaign {campaign_id!r} not found")
        if actor is not None:
            owner = s.get(Authority, c.authority_id)
            assert owner is not None  # foreign key
            check_may(s, actor, Action.CAMPAIGN_READ, owner, c.environment, c)
        by, handled = _counts(s, d, [c.id], since)
        failures = s.execute(
            sa.select(d.c.channel, d.c.error, sa.func.count())
            .where(d.c.campaign_id == c.id,
                   d.c.state.in_(sorted(progress.FAILED_STATES)))
            .group_by(d.c.channel, d.c.error)).all()
        figures = progress.summary(
            {ch: by[c.id].get(ch, {}) for ch in c.channel_list if ch != "cap"},
            handled[c.id], _running_s(c.launched_at, now), c.status)
        out: dict[str, Any] = {
            "campaign_id": c.id, "kind": c.kind,
            "label": message_label(c.msg_type, c.response_type), "area_name": c.area_name,
            "environment": c.environment, "status": c.status,
            "launched_at": iso_utc(_aware(c.launched_at)),
            "finished_at": iso_utc(_aware(c.finished_at)), "updated_at": iso_utc(now),
            "window_s": progress.THROUGHPUT_WINDOW_S,
            "failures": sorted(({"channel": ch, "reason": err or "unknown", "count": int(n)}
                                for ch, err, n in failures),
                               key=lambda f: (-f["count"], f["channel"], f["reason"])),
            **figures}
        if with_area:
            out["area"] = json.loads(c.area) if c.area else None
    return out
