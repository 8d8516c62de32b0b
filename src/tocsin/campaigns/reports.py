"""Reports: the campaigns list, one campaign's report and its pending counts (SPEC F26).

Reading never writes: a campaign's status is the stored one, set by the services
that change it (launch, cancel) and, when its last delivery is final, by the
dispatch worker (``dispatch.queue.finish_done`` / ``finish_campaigns``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import (
    audited_denials,
    authority_facts,
    readable_authority_ids,
)
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor, Target, decide
from tocsin.campaigns import rules
from tocsin.campaigns.checks import check_may
from tocsin.campaigns.followups import _chain, _sent_order, follow_up_refusals
from tocsin.campaigns.models import Campaign
from tocsin.core.db import iso_utc, read_transaction, table
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import FINAL_STATES, STOPPED, Delivery
from tocsin.dispatch.queue import RECEIPT_GRACE_SECONDS

__all__ = ["RECEIPT_GRACE_SECONDS", "campaign_report", "list_campaigns", "message_label",
           "pending_counts"]


def message_label(msg_type: str | None, response_type: str | None) -> str:
    """What an operator calls a message: ``Alert`` (CAP msgType Alert, whatever its
    kind), ``Update``, ``All clear`` (an Update with responseType AllClear) or
    ``Cancel``."""
    if msg_type == "Cancel":
        return "Cancel"
    if msg_type == "Update":
        return "All clear" if response_type == "AllClear" else "Update"
    return "Alert"


def _follow_ups(s: Session, root_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """For each first message of a chain: every later message of the chain (direct or
    through another), in sending order, as ``{"campaign_id", "msg_type",
    "response_type", "label", "launched_at", "status"}``."""
    out: dict[str, list[Campaign]] = {root: [] for root in root_ids}
    owner = {root: root for root in root_ids}
    frontier = list(root_ids)
    while frontier:
        found = [c for c in s.scalars(sa.select(Campaign).where(
            Campaign.references_id.in_(frontier))) if c.id not in owner]
        for c in found:
            owner[c.id] = owner[str(c.references_id)]
            out[owner[c.id]].append(c)
        frontier = [c.id for c in found]
    return {root: [{"campaign_id": c.id, "msg_type": c.msg_type or "Alert",
                    "response_type": c.response_type,
                    "label": message_label(c.msg_type, c.response_type),
                    "launched_at": iso_utc(c.launched_at), "status": c.status}
                   for c in sorted(members, key=_sent_order)]
            for root, members in out.items()}


#: The audit actions that record what a campaign was launched (or held, scheduled) with.
_LAUNCH_ACTIONS = ("campaign.launch", "campaign.hold", "campaign.schedule")


def _area_facts(s: Session, c: Campaign) -> dict[str, Any]:
    """``{"km2", "municipality_nis", "cut", "cut_known", "targets", "targets_only"}``:
    the targeted area's size
    (km², EPSG:3812), its municipality when it is one, and ``cut`` — ``{"km2",
    "share"}`` left out at the authority's border when the launch said so
    (``geo.areas.cut_warning``, recorded in the launch's audit entry), else None;
    ``cut_known``: that entry was found; ``targets``: the groups and lists reached
    (``group_targets.target_sizes``); ``targets_only``: a message to groups and lists
    with no area (then no km² and no cut)."""
    import json

    from shapely.geometry import shape

    from tocsin.authorities.models import AuditEntry
    from tocsin.campaigns.group_targets import target_sizes
    from tocsin.geo.areas import area_km2

    targets = target_sizes(s, c.targets) if c.targets else []
    try:
        geometry = shape(json.loads(c.area)) if c.area else None
        km2: float | None = round(area_km2(geometry), 2) if geometry is not None else None
    except (ValueError, TypeError, AttributeError):
        geometry, km2 = None, None
    if targets and (geometry is None or geometry.is_empty):
        # groups and contact lists only (``checks``: an empty area): no km², no cut
        return {"km2": None, "municipality_nis": None, "cut": None, "cut_known": False,
                "targets": targets, "targets_only": True}
    cut = None
    # The entry is written in the transaction that creates the campaign: look only
    # around that moment (``at`` is indexed; the report is polled while sending).
    around = dt.timedelta(minutes=5)
    detail = s.scalar(sa.select(AuditEntry.detail).where(
        AuditEntry.at.between(c.created_at - around, c.created_at + around),
        AuditEntry.target == c.id, AuditEntry.action.in_(_LAUNCH_ACTIONS))
        .order_by(AuditEntry.id).limit(1)) if c.created_at else None
    if isinstance(detail, dict) and isinstance(detail.get("area_cut"), dict):
        cut = {k: detail["area_cut"].get(k) for k in ("km2", "share")}
    return {"km2": km2, "municipality_nis": c.area_nis, "cut": cut,
            "cut_known": isinstance(detail, dict), "targets": targets,
            "targets_only": False}


def campaign_report(engine: Engine, campaign_id: str,
                    settings: Settings | None = None, *,
                    public_url: str | None = None,
                    actor: Actor | None = None) -> dict[str, Any]:
    """Progress and final report of a campaign (SPEC F26). Raises ``LookupError``, and
    ``access.Denied`` (``hidden``: answered as not found) when ``actor`` may not read
    it (``None``: the system and the command line, which read every campaign).

    Shape: ``{"campaign_id", "cap_identifier", "environment", "kind", "status"
    (scheduled | sending | finished | cancelled | draft: the stored status; the
    worker finishes a campaign when its last delivery is final), "authority_id",
    "area_name", "texts", "content" (per language, every channel's text: what goes
    out), "channel_list", "launched_at", "scheduled_for", "expires_at",
    "msg_type" (Alert | Update | Cancel), "references_id", "response_type"
    (AllClear or None), "label" (``message_label``: Alert | Update | All clear |
    Cancel), "original" (on a follow-up: the message it refers to, ``{"campaign_id", "kind",
    "area_name", "launched_at", "msg_type", "response_type", "label"}``; else None),
    "follow_ups" (on a chain's first message: every later message of
    the chain, oldest first, ``[{"campaign_id", "msg_type", "response_type",
    "label", "launched_at", "status"}]``; ``[]`` on the others), "chain" (on
    every message: ``{"root_id", "latest_id" (the chain's latest message that is
    not a cancellation), "latest_label", "latest_launched_at", "all_cleared",
    "refused": {"update", "all_clear", "cancel"}: why the service would refuse that
    follow-up of this message, or None (``rules.follow_up_refusal``)}``), "channels":
    {"sms": {"recipients", "segments", "cost_eur", "first_sent_at",
    "last_sent_at", "throughput_per_s", "by_status", "by_language", "submissions"
    (submissions the provider accepted, a resend included), "duplicates" (known
    resends), "unconfirmed_submissions" (submissions whose fate is unknown: a worker
    died or a connection was lost with them on the wire; each may be a duplicate),
    "cost_max_eur" (``cost_eur`` plus the unconfirmed ones: the most the provider can
    bill)}, "email":
    {…}, "voice": {the same, plus ``dispatch.calls.voice_report``: "outcomes",
    "calls", "attempts_by_delivery", "acknowledged", "answered_seconds",
    "billed_minutes"}, "cap": {"published", "url"}}, "cancel_summary" (a cancelled campaign: what
    the cancellation did here, ``rules.cancel_summary``; else None), "permissions"
    (with ``actor``: ``{"update", "cancel", "approve"}`` -> whether the policy lets
    the actor do it; else None), "created_by", "approved_by", "acting_authority_id"
    and "on_behalf_request" (acting on behalf: who asked), "member_reach" (a
    structural cooperation's campaign: member authority id -> recipients reached by
    primary residence, for billing; ``{}`` otherwise)}``. Times are
    RFC 3339 UTC. Costs count every submission accepted by the provider (a message
    sent twice is billed twice); simulation campaigns are never billed
    (``billed_eur`` 0, SPEC F27/F29). ``public_url`` is the base of the absolute CAP
    URL (the web passes the request's when ``TOCSIN_PUBLIC_URL`` is unset); default
    ``settings.public_url()``.
    """
    settings = settings or get_settings()
    base_url = (public_url or settings.public_url()).rstrip("/")
    d = table(Delivery)
    with audited_denials(engine), read_transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            raise LookupError(f"campaign {campaign_id!r} not found")
        permissions: dict[str, bool] | None = None
        if actor is not None:
            owner = s.get(Authority, c.authority_id)
            assert owner is not None  # foreign key
            check_may(s, actor, Action.CAMPAIGN_READ, owner, c.environment, c)
            target = Target(authority=authority_facts(owner), environment=c.environment,
                            prepared_by=c.created_by)
            permissions = {name: decide(actor, action, target).allowed for name, action in (
                ("update", Action.CAMPAIGN_UPDATE), ("cancel", Action.CAMPAIGN_CANCEL),
                ("approve", Action.CAMPAIGN_APPROVE))}
        by_status = s.execute(
            sa.select(d.c.channel, d.c.state, sa.func.count())
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel, d.c.state)
        ).all()
        by_language = s.execute(
            sa.select(d.c.channel, d.c.language, sa.func.count())
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel, d.c.language)
        ).all()
        reasons = s.execute(
            sa.select(d.c.channel, d.c.error, sa.func.count())
            .where(d.c.campaign_id == campaign_id, _failed_state(d))
            .group_by(d.c.channel, d.c.error)
        ).all()
        follow_ups = (_follow_ups(s, [c.id])[c.id] if c.references_id is None else [])
        voice_facts: dict[str, Any] | None = None
        if "voice" in c.channel_list:
            from tocsin.dispatch.calls import voice_report

            voice_facts = voice_report(s, campaign_id)
        from tocsin.campaigns.models import CampaignMemberReach

        member_reach = {r.authority_id: r.recipients for r in s.scalars(
            sa.select(CampaignMemberReach).where(CampaignMemberReach.campaign_id == c.id))}
        o = s.get(Campaign, c.references_id) if c.references_id else None
        original = None if o is None else {
            "campaign_id": o.id, "kind": o.kind, "area_name": o.area_name,
            "launched_at": iso_utc(o.launched_at), "msg_type": o.msg_type or "Alert",
            "response_type": o.response_type,
            "label": message_label(o.msg_type, o.response_type)}
        whole_chain = _chain(s, c)
        members = [m for m in whole_chain if m.msg_type != "Cancel"]
        cap_cancelled = len(members) < len(whole_chain)
        latest = members[-1] if members else c
        chain = {"root_id": members[0].id if members else c.id, "latest_id": latest.id,
                 "latest_label": message_label(latest.msg_type, latest.response_type),
                 "latest_launched_at": iso_utc(latest.launched_at),
                 "all_cleared": any(m.response_type == "AllClear" for m in members),
                 "refused": follow_up_refusals(s, c)}
        sums = s.execute(
            sa.select(d.c.channel, sa.func.count(d.c.sent_at), sa.func.min(d.c.sent_at),
                      sa.func.max(d.c.sent_at),
                      sa.func.sum(sa.case((d.c.sent_at.is_not(None), d.c.segments), else_=0)),
                      sa.func.sum(sa.case((d.c.sent_at.is_not(None), d.c.cost_eur), else_=0)))
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel)
        ).all()
        area = _area_facts(s, c)
        # Every submission counts and is billed, a resend included (issue 13).
        submitted = {ch: (int(n or 0), int(unc or 0), int(segs or 0), Decimal(cost or 0),
                          Decimal(unc_cost or 0), int(dups or 0))
                     for ch, n, unc, segs, cost, unc_cost, dups in s.execute(
            sa.select(d.c.channel, sa.func.sum(d.c.submissions), sa.func.sum(d.c.unconfirmed),
                      sa.func.sum(d.c.segments * d.c.submissions),
                      sa.func.sum(d.c.cost_eur * d.c.submissions),
                      sa.func.sum(d.c.cost_eur * d.c.unconfirmed),
                      sa.func.sum(sa.case((d.c.submissions > 1, d.c.submissions - 1),
                                          else_=0)))
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel)).all()}
    channels: dict[str, Any] = {}
    listed = list(c.channel_list)
    if "lbsms" in listed and "sms" not in listed:
        listed.append("sms")  # F18: registered subscribers in the area got the SMS too
    for name in listed:
        if name == "cap":
            prefix = "" if c.environment == "live" else "/simulation"
            channels["cap"] = {
                "published": c.cap_xml is not None,
                "url": f"{base_url}{prefix}/cap/{c.cap_identifier}.xml",
            }
            continue
        statuses = {st: n for ch, st, n in by_status if ch == name}
        entry: dict[str, Any] = {
            "recipients": sum(statuses.values()),
            "by_status": statuses,
            "by_language": {lang: n for ch, lang, n in by_language if ch == name},
            "first_sent_at": None, "last_sent_at": None, "throughput_per_s": 0.0,
        }
        if name == "sms":
            entry["segments"] = 0
        entry["cost_eur"] = 0.0
        for ch, count, first, last, segments, cost in sums:
            if ch != name:
                continue
            first = first.replace(tzinfo=dt.UTC) if first and first.tzinfo is None else first
            last = last.replace(tzinfo=dt.UTC) if last and last.tzinfo is None else last
            entry["first_sent_at"], entry["last_sent_at"] = iso_utc(first), iso_utc(last)
            span = (last - first).total_seconds() if first and last else 0.0
            entry["throughput_per_s"] = round(count / span, 1) if span > 0 else float(count)
            if name == "sms":
                entry["segments"] = int(segments or 0)
            entry["cost_eur"] = float(Decimal(cost or 0).quantize(Decimal("0.001")))
        n_sub, n_unc, sub_segments, sub_cost, unc_cost, dups = submitted.get(
            name, (0, 0, 0, Decimal(0), Decimal(0), 0))
        if n_sub:
            # Bill what was submitted: a message sent twice is paid twice.
            if name == "sms":
                entry["segments"] = max(entry["segments"], sub_segments)
            entry["cost_eur"] = max(entry["cost_eur"], float(sub_cost.quantize(Decimal("0.001"))))
        entry["submissions"] = n_sub
        entry["duplicates"] = dups
        entry["unconfirmed_submissions"] = n_unc
        entry["cost_max_eur"] = float((Decimal(str(entry["cost_eur"])) + unc_cost)
                                      .quantize(Decimal("0.001")))
        entry["billed_eur"] = entry["cost_eur"] if c.environment == "live" else 0.0
        entry["final"] = sum(n for st, n in statuses.items() if st in FINAL_STATES)
        entry["failure_reasons"] = {(err or "unknown"): n for ch, err, n in reasons
                                    if ch == name}
        if name == "voice" and voice_facts is not None:
            entry.update(voice_facts)
        channels[name] = entry
    location: dict[str, Any] = {}
    if any(ch in rules.LOCATION_CHANNELS for ch in c.channel_list):
        from tocsin.campaigns.location import location_summary

        with read_transaction(engine) as s2:
            location = location_summary(s2, c.id)
    status = c.status
    cancel_summary = (rules.cancel_summary(
        c.launched_at is not None,
        sum(ch.get("by_status", {}).get(STOPPED, 0) for ch in channels.values()),
        cap_cancelled) if status == "cancelled" else None)
    failed = sum(n for ch in channels.values() for n in ch.get("failure_reasons", {}).values())
    return {
        "campaign_id": c.id, "cap_identifier": c.cap_identifier, "environment": c.environment,
        "kind": c.kind, "status": status, "failed": failed, "authority_id": c.authority_id,
        "area_name": c.area_name, "area": area, "texts": c.texts,
        "content": c.content or {},
        "channel_list": c.channel_list, "launched_at": iso_utc(c.launched_at),
        "scheduled_for": iso_utc(c.scheduled_for), "expires_at": iso_utc(c.expires_at),
        "msg_type": c.msg_type or "Alert", "references_id": c.references_id,
        "response_type": c.response_type, "label": message_label(c.msg_type, c.response_type),
        "follow_ups": follow_ups, "original": original, "chain": chain, "channels": channels,
        "cancel_summary": cancel_summary, "permissions": permissions,
        "member_reach": member_reach, "location": location,
        "created_by": c.created_by, "approved_by": c.approved_by,
        "acting_authority_id": c.acting_authority_id,
        "on_behalf_request": c.on_behalf_request,
    }


def _failed_state(d: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(d.c.state == "failed", d.c.state == "expired")


def list_campaigns(engine: Engine, viewer: Actor | str | None,
                   environment: str) -> list[dict[str, Any]]:
    """Campaigns in one environment, newest first (at most 200): those ``viewer`` may
    read (an ``Actor``: own, cooperation's and, for a province, its municipalities';
    everything for the federal operator), of one authority (an authority id), or all
    (``None``).

    Each: ``{"campaign_id", "kind", "status", "msg_type", "response_type",
    "references_id", "label" (Alert | Update | All clear | Cancel),
    "follow_ups" (on a chain's first message, as in ``campaign_report``; ``[]``
    on the others), "scheduled_for", "expires_at", "area_name", "created_at",
    "launched_at", "channels", "recipients"}``.
    """
    d = table(Delivery)
    with read_transaction(engine) as s:
        q = sa.select(Campaign).where(Campaign.environment == environment)
        if isinstance(viewer, Actor):
            readable = readable_authority_ids(s, viewer)
            if readable is not None:
                q = q.where(Campaign.authority_id.in_(sorted(readable)))
        elif viewer is not None:
            q = q.where(Campaign.authority_id == viewer)
        campaigns = s.scalars(q.order_by(Campaign.created_at.desc()).limit(200)).all()
        counts: dict[str, int] = dict(s.execute(
            sa.select(d.c.campaign_id, sa.func.count())
            .where(d.c.campaign_id.in_([c.id for c in campaigns])).group_by(d.c.campaign_id)
        ).all()) if campaigns else {}
        follow_ups = _follow_ups(s, [c.id for c in campaigns if c.references_id is None])
        return [{"campaign_id": c.id, "kind": c.kind, "status": c.status,
                 "msg_type": c.msg_type or "Alert", "response_type": c.response_type,
                 "references_id": c.references_id,
                 "label": message_label(c.msg_type, c.response_type),
                 "follow_ups": follow_ups.get(c.id, []),
                 "scheduled_for": iso_utc(c.scheduled_for), "expires_at": iso_utc(c.expires_at),
                 "area_name": c.area_name, "created_at": iso_utc(c.created_at),
                 "launched_at": iso_utc(c.launched_at),
                 "channels": c.channel_list, "recipients": counts.get(c.id, 0)}
                for c in campaigns]


def pending_counts(engine: Engine, campaign_id: str) -> dict[str, dict[str, int]]:
    """Deliveries of a campaign per channel and state (for progress displays)."""
    d = table(Delivery)
    out: dict[str, dict[str, int]] = {}
    with read_transaction(engine) as s:
        for ch, st, n in s.execute(
            sa.select(d.c.channel, d.c.state, sa.func.count())
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel, d.c.state)
        ):
            out.setdefault(ch, {})[st] = n
    return out
