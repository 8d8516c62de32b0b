"""Control of a running campaign: pause, resume, stop; live counters; send-time estimates
(issue 13, SPEC F26; decision 0014).

- ``pause``: a ``sending`` campaign becomes ``paused``; workers claim none of its
  deliveries (``dispatch.queue.claim`` serves ``sending`` campaigns only); those in
  flight finish. Its fan-out goes on (the deliveries wait, queued).
- ``resume``: ``paused`` becomes ``sending`` again.
- ``stop``: a ``sending`` or ``paused`` campaign becomes ``stopped`` (final):
  every delivery still ``queued`` becomes ``stopped`` in the same transaction, so
  nothing unsent leaves once the batches in flight (one claim, under a second at
  the configured rates) are answered; its fan-out ends at the next batch.

Who may: the right to cancel the campaign (``Action.CAMPAIGN_CANCEL``): stopping
or holding an alert back is the same responsibility as cancelling it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.authorities.access import audited_denials, cli_actor
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor
from tocsin.authorities.services import record_audit
from tocsin.campaigns.checks import CampaignInputError, CampaignNotFound, check_may
from tocsin.campaigns.models import Campaign
from tocsin.core.db import read_transaction, table, transaction, utcnow
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import QUEUED, STATES, STOPPED, Delivery

#: action -> (statuses it applies to, the status it sets)
CONTROL = {
    "pause": (("sending",), "paused"),
    "resume": (("paused",), "sending"),
    "stop": (("sending", "paused"), "stopped"),
}


def control_campaign(engine: Engine, campaign_id: str, action: str,
                     actor: Actor | str = "cli", *, authority_id: str | None = None,
                     source: str = "cli") -> dict[str, Any]:
    """Pause, resume or stop the running campaign ``campaign_id``.

    ``action``: ``pause`` | ``resume`` | ``stop``. ``actor``: an ``Actor`` (checked:
    ``CAMPAIGN_CANCEL``) or a name for the command line, acting for ``authority_id``
    (``None``: the campaign's own authority). One transaction, audited as
    ``campaign.<action>``. Returns ``{"campaign_id", "status" (the new one),
    "status_was", "stopped" (deliveries stopped: ``stop`` only, else 0)}``. Raises
    ``CampaignInputError`` (unknown action; a campaign not in a state the action
    applies to, e.g. resuming one that is not paused), ``CampaignNotFound``,
    ``access.Denied``.
    """
    if action not in CONTROL:
        raise CampaignInputError("action", f"{action!r}: one of pause, resume, stop")
    applies, new_status = CONTROL[action]
    now = utcnow()
    with audited_denials(engine, source), transaction(engine) as s:
        c = s.get(Campaign, str(campaign_id).strip())
        if c is None or (not isinstance(actor, Actor) and authority_id is not None
                         and c.authority_id != authority_id):
            raise CampaignNotFound("campaign_id",
                                   f"no campaign {campaign_id!r} of this authority")
        if s.get_bind().dialect.name == "postgresql":
            s.execute(sa.select(Campaign.id).where(Campaign.id == c.id).with_for_update())
            s.refresh(c)
        authority = s.get(Authority, c.authority_id)
        assert authority is not None  # foreign key
        who = actor if isinstance(actor, Actor) else cli_actor(s, authority_id
                                                               or c.authority_id)
        check_may(s, who, Action.CAMPAIGN_CANCEL, authority, c.environment, c)
        if c.status not in applies:
            raise CampaignInputError(
                "campaign_id", f"campaign {c.id} is {c.status}: only a campaign that is "
                               f"{' or '.join(applies)} can be {_DONE[action]}")
        was = c.status
        c.status = new_status
        stopped = 0
        if action == "stop":
            c.finished_at = now
            stopped = stop_queued(s, c.id, now, f"stopped by {who.username}")
        record_audit(s, who.username, f"campaign.{action}", target=c.id, source=source,
                     detail={"authority": authority.id, "status_was": was,
                             **({"stopped": stopped} if action == "stop" else {})})
        out: dict[str, Any] = {"campaign_id": c.id, "status": new_status,
                               "status_was": was, "stopped": stopped}
    if action == "stop":
        # Committed: the operators stop the location-based sends (issue 11).
        from tocsin.campaigns.location import stop_sends

        location = stop_sends(engine, out["campaign_id"])
        if location:
            out["location"] = location
    return out


_DONE = {"pause": "paused", "resume": "resumed", "stop": "stopped"}


def stop_queued(s: Any, campaign_id: str, now: dt.datetime, reason: str) -> int:
    """Mark every delivery of the campaign still ``queued`` as ``stopped``; returns how
    many (in the caller's transaction)."""
    d = table(Delivery)
    result = s.execute(sa.update(d).where(d.c.campaign_id == campaign_id, d.c.state == QUEUED)
                       .values(state=STOPPED, final_at=now, lease_until=None,
                               error=reason[:500]))
    return int(getattr(result, "rowcount", 0) or 0)


def stop_leftovers(engine: Engine, within: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Deliveries of a campaign stopped in the last ``within`` that went back to the
    queue after the stop (a retry, an expired lease): stopped too. Returns how many;
    the worker calls it periodically."""
    now = utcnow()
    total = 0
    with transaction(engine) as s:
        ids = list(s.scalars(sa.select(Campaign.id).where(
            Campaign.status.in_(("stopped", "cancelled")),
            Campaign.finished_at >= now - within)))
        for cid in ids:
            total += stop_queued(s, cid, now, "stopped")
    return total


# ----------------------------------------------------------------------------- progress


def campaign_progress(engine: Engine, campaign_id: str, actor: Actor | None = None, *,
                      authority_id: str | None = None, source: str = "api") -> dict[str, Any]:
    """Live counters of one campaign per channel, for an operations screen or a script.

    Returns ``{"campaign_id", "status", "fanout_done" (bool), "fanned_out" (deliveries
    written so far), "channels": {channel: {state: n for every SPEC F26 state,
    "total": n}}, "at" (RFC 3339 UTC)}``. Raises ``CampaignNotFound`` (also for a
    campaign of another authority the actor may not read), ``access.Denied``.
    """
    from tocsin.core.db import iso_utc

    d = table(Delivery)
    with audited_denials(engine, source), read_transaction(engine) as s:
        c = s.get(Campaign, str(campaign_id).strip())
        if c is None or (actor is None and authority_id is not None
                         and c.authority_id != authority_id):
            raise CampaignNotFound("campaign_id",
                                   f"no campaign {campaign_id!r} of this authority")
        authority = s.get(Authority, c.authority_id)
        assert authority is not None
        who = actor if actor is not None else cli_actor(s, authority_id or c.authority_id)
        check_may(s, who, Action.CAMPAIGN_READ, authority, c.environment, c)
        channels: dict[str, dict[str, int]] = {}
        for channel, state, n in s.execute(
                sa.select(d.c.channel, d.c.state, sa.func.count())
                .where(d.c.campaign_id == c.id).group_by(d.c.channel, d.c.state)):
            counts = channels.setdefault(channel, dict.fromkeys(STATES, 0))
            counts[state] = int(n)
        for counts in channels.values():
            counts["total"] = sum(counts[st] for st in STATES)
        return {"campaign_id": c.id, "status": c.status,
                "fanout_done": c.fanout_done_at is not None,
                "fanned_out": int(c.fanout_count or sum(x["total"] for x in channels.values())),
                "channels": channels, "at": iso_utc(utcnow())}


# ----------------------------------------------------------------------------- estimates


def channel_rates(settings: Settings | None = None, environment: str = "live"
                  ) -> dict[str, float]:
    """Messages per second each channel can send with the configured workers and
    providers: ``TOCSIN_WORKERS`` × one worker's rate (``TOCSIN_WORKER_SMS_PER_SECOND``,
    ``TOCSIN_WORKER_EMAIL_PER_SECOND``); live SMS also at most the first SMPP
    account's ``tps`` (it holds across all workers, ``dispatch.ratelimit``)."""
    from tocsin.channels.smpp import parse_smpp_urls

    settings = settings or get_settings()
    workers = settings.workers
    sms = workers * settings.worker_sms_per_second
    if environment == "live" and settings.smpp_url.strip():
        sms = min(sms, float(parse_smpp_urls(settings.smpp_url)[0].tps))
    return {"sms": sms, "email": workers * settings.worker_email_per_second}


def send_time(count: int, per_second: float) -> dict[str, Any]:
    """How long ``count`` messages take at ``per_second``: ``{"count", "per_second",
    "seconds", "text"}``, ``text`` like ``"412,000 ≈ 1 min 22 s at 5,000/s"``."""
    seconds = float(math.ceil(count / per_second)) if per_second > 0 and count else 0.0
    return {"count": count, "per_second": per_second, "seconds": seconds,
            "text": f"{count:,} ≈ {_duration(seconds)} at {per_second:,.0f}/s"}


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{max(s, 1) if seconds else 0} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def send_times(recipients: dict[str, int], settings: Settings | None = None,
               environment: str = "live") -> dict[str, dict[str, Any]]:
    """``send_time`` of each channel's recipients (``{"sms": n, "email": n}``) at
    ``channel_rates``."""
    rates = channel_rates(settings, environment)
    return {ch: send_time(n, rates.get(ch, 0.0)) for ch, n in recipients.items()
            if ch in rates}
