"""Dispatch figures for Prometheus (``/metrics``, issue 13): read from the database, so
every web process reports the same whole-deployment numbers whatever worker sent.

Counted over the campaigns that are active (sending or paused) or ended in the last
hour, through ``ix_delivery_campaign_state``: a scrape costs the same with a
million old deliveries as with none.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.core.db import read_transaction, table, utcnow
from tocsin.dispatch.models import STATES, Delivery

#: Seconds over which ``throughput`` is measured.
THROUGHPUT_WINDOW_S = 60.0
RECENT = dt.timedelta(hours=1)
_CODE = re.compile(r"(ESME_R\w+|0x[0-9A-Fa-f]{8}|receipt stat:\w+|\b[45]\d\d\b|"
                   r"timeout|connection|redirect)")


def error_code(error: str | None) -> str:
    """A short, personal-data-free code for a provider error text: an SMPP status
    (``ESME_RTHROTTLED``, ``0x00000058``), a receipt state (``receipt stat:UNDELIV``),
    an SMTP or HTTP reply code (``550``), else ``other``."""
    match = _CODE.search(error or "")
    return match.group(1) if match else "other"


def snapshot(engine: Engine, now: dt.datetime | None = None) -> dict[str, Any]:
    """``{"deliveries": {(channel, state): n}, "throughput": {channel: per second over
    the last minute}, "errors": {(channel, code): n}, "campaigns": {status: n}}``."""
    from tocsin.campaigns.models import Campaign

    now = now or utcnow()
    d = table(Delivery)
    with read_transaction(engine) as s:
        campaigns = dict(s.execute(sa.select(Campaign.status, sa.func.count())
                                   .group_by(Campaign.status)).all())
        active = list(s.scalars(sa.select(Campaign.id).where(sa.or_(
            Campaign.status.in_(("sending", "paused")),
            Campaign.finished_at >= now - RECENT))))
        deliveries: dict[tuple[str, str], int] = {}
        throughput: dict[str, float] = {}
        errors: dict[tuple[str, str], int] = {}
        for start in range(0, len(active), 500):
            ids = active[start:start + 500]
            for channel, state, n in s.execute(
                    sa.select(d.c.channel, d.c.state, sa.func.count())
                    .where(d.c.campaign_id.in_(ids)).group_by(d.c.channel, d.c.state)):
                deliveries[(channel, state)] = deliveries.get((channel, state), 0) + int(n)
            for channel, n in s.execute(
                    sa.select(d.c.channel, sa.func.count())
                    .where(d.c.campaign_id.in_(ids),
                           d.c.sent_at >= now - dt.timedelta(seconds=THROUGHPUT_WINDOW_S))
                    .group_by(d.c.channel)):
                throughput[channel] = throughput.get(channel, 0.0) + n / THROUGHPUT_WINDOW_S
            for channel, error, n in s.execute(
                    sa.select(d.c.channel, d.c.error, sa.func.count())
                    .where(d.c.campaign_id.in_(ids), d.c.error.is_not(None))
                    .group_by(d.c.channel, d.c.error).limit(5000)):
                key = (channel, error_code(error))
                errors[key] = errors.get(key, 0) + int(n)
    for key in list(deliveries):
        deliveries.setdefault(key, 0)
    return {"deliveries": deliveries, "throughput": throughput, "errors": errors,
            "campaigns": {str(k): int(v) for k, v in campaigns.items()}, "states": STATES}
