"""Launch: accept the campaign and its CAP in one transaction, then stream its fan-out.

Once the accepting transaction commits, the alert is accepted and nothing can
lose it (its fan-out is resumable, ``dispatch.fanout``); any error before that
leaves nothing written. ``launch_campaign`` returns once every delivery is
queued; workers send the first batches meanwhile. A campaign scheduled for later is
written with status ``scheduled`` and no deliveries and no CAP;
``dispatch.scheduler`` fans it out when it is due (``fan_out_scheduled``).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action
from tocsin.authorities.services import record_audit
from tocsin.campaigns import rules
from tocsin.campaigns.checks import CampaignInputError, CampaignRequest, _check, _Checked, _draft
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.targeting import (
    Recipient,
    RecipientCounts,
    _sms_facts,
    _sms_texts,
    count_recipients,
    estimate_warnings,
    location_reach,
    resolve_recipients,
)
from tocsin.core.db import iso_utc, table, transaction, utcnow
from tocsin.core.errors import warning
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import QUEUED, Delivery

_BATCH = 10_000



def _new_campaign(checked: _Checked, req: CampaignRequest, settings: Settings,
                  now: dt.datetime, **extra: Any) -> Campaign:
    campaign_id = uuid.uuid4().hex
    cap_params = {**rules.cap_info_defaults(checked.kind),
                  **{k: v for k, v in req.cap.items() if v}}
    values: dict[str, Any] = {
        "id": campaign_id, "authority_id": checked.authority.id, "kind": checked.kind,
        "environment": req.environment, "status": "sending",
        "priority": rules.PRIORITY[checked.kind], "channels": ",".join(checked.channels),
        "texts": checked.texts, "content": checked.content,
        "area": json.dumps(mapping(checked.area)), "area_name": checked.area_name,
        "area_nis": checked.area_nis, "cap_params": cap_params,
        "msg_type": "Alert", "scope": rules.cap_scope(checked.kind),
        "template_id": checked.template_id, "expires_at": checked.expires_at,
        "cap_identifier": f"BE-TOCSIN-{checked.authority.id}-{now:%Y%m%d%H%M%S}-"
                          f"{campaign_id[:8]}",
        "sms_source": settings.sms_source, "mail_from": settings.mail_from,
        "voice_caller": settings.voice_caller,
        "created_by": _author(checked, req), "created_at": now,
        "acting_authority_id": _acting_authority(checked),
        "on_behalf_request": dict(req.on_behalf_request or {}) if _acting_authority(checked)
        else None,
        "targets": checked.targets,
        "location_justification": (req.justification or "").strip() or None
        if "lbsms" in checked.channels else None,
    }
    values.update(extra)
    return Campaign(**values)


def _record_member_reach(s: Session, campaign: Campaign, authority: Authority,
                         recipients: list[Recipient]) -> None:
    """For a campaign of a structural cooperation's member (F4): how many recipients
    each member reached, counted once per subscriber by primary residence (address
    position 0), so that billing can split the campaign. Subscribers living outside
    every member are not counted. Nothing for authorities outside a cooperation."""
    import shapely

    from tocsin.authorities.access import cooperation_of
    from tocsin.campaigns.models import CampaignMemberReach
    from tocsin.geo.areas import territory_of
    from tocsin.subscribers.models import Address

    members = cooperation_of(s, authority.id)
    subscribers = sorted({int(r.subscriber) for r in recipients if r.subscriber})
    if not members or not subscribers:
        return
    rows = s.scalars(sa.select(Authority).where(Authority.id.in_([authority.id, *members])))
    territories = {a.id: territory_of(a) for a in rows}
    counts = dict.fromkeys(territories, 0)
    for start in range(0, len(subscribers), _BATCH):
        points = s.execute(sa.select(Address.lon, Address.lat).where(
            Address.subscriber_id.in_(subscribers[start:start + _BATCH]),
            Address.position == 0)).all()
        lons = [p[0] for p in points]
        lats = [p[1] for p in points]
        for member_id, territory in territories.items():
            counts[member_id] += int(shapely.contains_xy(territory, lons, lats).sum())
    s.add_all(CampaignMemberReach(campaign_id=campaign.id, authority_id=member_id,
                                  recipients=n) for member_id, n in sorted(counts.items()))


def _author(checked: _Checked, req: CampaignRequest) -> str:
    """Who prepared it: the acting user, else ``req.created_by`` (the CLI)."""
    actor = checked.actor
    return actor.username if actor is not None and actor.username != "cli" else req.created_by


def _acting_authority(checked: _Checked) -> str | None:
    """The federal operator's authority when it acts for another authority, else None."""
    actor = checked.actor
    if actor is None or actor.authority.id == checked.authority.id \
            or checked.authority.id in actor.cooperation:
        return None
    return actor.authority.id


def _publish(s: Session, campaign: Campaign, authority: Authority, area: BaseGeometry,
             settings: Settings, now: dt.datetime) -> int:
    """Publish the CAP (when a channel) and queue the CAP gateway's webhook pushes.

    Sets ``launched_at`` (the CAP ``sent``) and status ``sending``. A published live
    public CAP is also queued for the CAP gateway's webhooks (``cap.gateway``).
    Returns the number of webhook deliveries queued.
    """
    from tocsin.cap.gateway import webhook_delivery_rows
    from tocsin.cap.services import build_campaign_cap

    campaign.launched_at = now
    campaign.status = "sending"
    if "cap" in campaign.channel_list:
        campaign.cap_xml = build_campaign_cap(campaign, authority, area,
                                              settings).decode("utf-8")
    s.add(campaign)
    s.flush()
    hooks = webhook_delivery_rows(s, campaign, area)  # CAP gateway pushes (F24)
    if hooks:
        s.execute(sa.insert(table(Delivery)), hooks)
    return len(hooks)


def _accept_streamed(s: Session, campaign: Campaign, authority: Authority,
                     area: BaseGeometry, settings: Settings, now: dt.datetime) -> None:
    """Accept an area campaign in the caller's transaction: CAP published, webhooks
    queued, and its fan-out marked to run (``dispatch.fanout``). Once committed, the
    alert is sent whatever crashes: ``_stream`` (or any worker, ``fanout.resume_pending``)
    writes its deliveries in batches while workers already send the first ones."""
    from tocsin.campaigns.location import add_sends
    from tocsin.dispatch import fanout

    _publish(s, campaign, authority, area, settings, now)
    add_sends(s, campaign, settings)  # one per operator of lbsms / cb (issue 11)
    fanout.begin(campaign)


def _stream(engine: Engine, campaign_id: str, settings: Settings,
            want_languages: bool = False) -> Any:
    """Run the accepted campaign's fan-out now, in this process (``fanout.run``)."""
    import os

    from tocsin.dispatch import fanout

    return fanout.run(engine, campaign_id, f"launch:{os.getpid()}:{uuid.uuid4().hex[:6]}",
                      settings, want_languages=want_languages)


def _fan_out(s: Session, campaign: Campaign, authority: Authority, area: BaseGeometry,
             recipients: list[Recipient], settings: Settings, now: dt.datetime) -> int:
    """Publish the CAP (when a channel) and write one queued delivery per recipient
    of a given list (updates and cancels reach the recipients of earlier campaigns).

    Returns the number of deliveries to recipients. Sets ``launched_at`` (the CAP
    ``sent``), ``fanout_done_at`` and status ``sending`` (``finished`` when there is
    nothing to deliver; otherwise the worker finishes it, ``dispatch.queue``).
    """
    price = Decimal(settings.sms_segment_price_eur)
    hooks = _publish(s, campaign, authority, area, settings, now)
    facts = _sms_facts(_sms_texts(campaign.content) if campaign.content else campaign.texts,
                       price)
    rows = [
        {"campaign_id": campaign.id, "channel": r.channel, "address": r.address,
         "language": r.language, "state": QUEUED, "priority": campaign.priority,
         "environment": campaign.environment, "attempts": 0,
         "segments": facts[r.language]["segments"] if r.channel == "sms" else 0,
         "cost_eur": facts[r.language]["cost_eur"] if r.channel == "sms" else Decimal(0)}
        for r in recipients
    ]
    for start in range(0, len(rows), _BATCH):
        s.execute(sa.insert(table(Delivery)), rows[start:start + _BATCH])
    from tocsin.campaigns.location import add_sends

    located = add_sends(s, campaign, settings)  # one per operator of lbsms / cb
    _record_member_reach(s, campaign, authority, recipients)
    campaign.fanout_done_at = utcnow()
    if not rows and not hooks and not located:
        # Nothing to deliver (CAP only, or nobody in the area): done once published.
        campaign.status, campaign.finished_at = "finished", campaign.fanout_done_at
    return len(rows)


@dataclass(frozen=True)
class Launched:
    """What a launch wrote: ``campaign_id``, ``recipients`` (deliveries written; 0 for a
    scheduled campaign, resolved when it is due) and ``warnings`` (the estimate's,
    ``targeting.estimate_warnings``: ``[{"code", "field", "message", …}]``), for the
    caller to show before the deliveries go out."""

    campaign_id: str
    recipients: int
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _area_cut(warnings: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"area_cut": {"km2", "share"}}`` when the area was cut at the authority's border
    (for the report, which shows it), else ``{}``."""
    for w in warnings:
        if isinstance(w, dict) and w.get("code") == "area_cut":
            return {"area_cut": {"km2": w.get("km2"), "share": w.get("share")}}
    return {}


def launch_campaign(engine: Engine, req: CampaignRequest,
                    settings: Settings | None = None, *, draft_id: str | None = None) -> str:
    """Check ``req``, then write the campaign, its deliveries and its CAP in one transaction.

    Every language of ``req.texts`` gets a complete ``campaign.content``. With
    ``req.scheduled_for`` the campaign is written ``scheduled`` instead: no
    deliveries and no CAP until ``fan_out_scheduled`` runs when it is due.
    ``draft_id`` (or ``req.draft_id``): the draft this launch replaces is deleted
    in the same transaction. Returns the campaign id (``launch`` also returns the
    warnings). Raises ``CampaignInputError`` (nothing written). Deliveries are
    then sent by any running worker.
    """
    return launch(engine, req, settings, draft_id=draft_id).campaign_id


def launch(engine: Engine, req: CampaignRequest, settings: Settings | None = None, *,
           draft_id: str | None = None) -> Launched:
    """``launch_campaign``, returning the ``Launched`` facts: id, deliveries written and
    the warnings the estimate gives (wrong or missing language, a channel that reaches
    nobody…), so that the CLI prints them before sending. Raises ``CampaignInputError``
    (nothing written)."""
    settings = settings or get_settings()
    draft_id = draft_id or req.draft_id
    if draft_id and req.draft_id != draft_id:
        req = _with(req, draft_id=draft_id)
    now = utcnow()
    with audited_denials(engine, req.source), transaction(engine) as s:
        checked = _check(s, req, settings, now, action=Action.CAMPAIGN_LAUNCH)
        scheduled = req.scheduled_for is not None
        # Two-person rule: a live alert of an authority that requires it waits, like a
        # scheduled one (no deliveries, no CAP), until another user approves it.
        held = req.environment == "live" and bool(checked.authority.two_person_rule)
        campaign = _new_campaign(
            checked, req, settings, now,
            status="pending_approval" if held else "scheduled" if scheduled else "sending",
            scheduled_for=req.scheduled_for.astimezone(dt.UTC)
            if req.scheduled_for is not None else None)
        counted: int | None = None
        if req.environment == "live" and req.confirmation_required:
            counted = count_recipients(s, checked)
            reach = location_reach(s, checked)
            # A location-based alert reaches every phone in (and around) the area: its
            # operator types the expected reach instead of the deliveries (SPEC F34).
            problems = (rules.live_confirmation_templates(
                checked.area_name, counted, req.confirm_area_name, req.confirm_recipients)
                if reach is None else rules.live_location_confirmation_templates(
                    checked.area_name, reach, req.confirm_area_name, req.confirm_recipients))
            for name, template, params in problems:
                raise CampaignInputError(name, template, **params)
        warnings: list[dict[str, Any]] = []
        if held:
            warnings.append(warning("pending_approval", "approval", N_(
                "Your authority requires a second user's approval of live alerts: nothing "
                "is sent until another user approves it.")))
        if scheduled or held:
            warnings = estimate_warnings(checked, resolve_recipients(s, checked)) + warnings
            if "cap" in checked.channels:
                # Build it once now so that a CAP problem is refused at scheduling time.
                from tocsin.cap.services import build_campaign_cap

                campaign.launched_at = campaign.scheduled_for
                build_campaign_cap(campaign, checked.authority, checked.area, settings)
                campaign.launched_at = None
            s.add(campaign)
            count = 0
        else:
            _accept_streamed(s, campaign, checked.authority, checked.area, settings, now)
            count = counted or 0
        if req.answers is not None:
            from tocsin.campaigns.answer_service import attach

            attach(s, campaign, req.answers)
        if draft_id:
            s.delete(_draft(s, draft_id, checked.authority.id))
        record_audit(s, campaign.created_by,
                     "campaign.hold" if held else "campaign.schedule" if scheduled
                     else "campaign.launch",
                     target=campaign.id, source=req.source,
                     on_behalf_of=checked.authority.id if campaign.acting_authority_id
                     else None,
                     detail={"authority": checked.authority.id, "kind": checked.kind,
                             **({"on_behalf_of": checked.authority.id,
                                 "acting_authority": campaign.acting_authority_id,
                                 "request": campaign.on_behalf_request}
                                if campaign.acting_authority_id else {}),
                             "environment": req.environment, "area": checked.area_name,
                             "channels": checked.channels,
                             **({"recipients": counted} if counted is not None else {}),
                             **({"scheduled_for": iso_utc(campaign.scheduled_for)}
                                if scheduled else {}),
                             **({"template_id": req.template_id} if req.template_id else {}),
                             **({"draft_id": draft_id} if draft_id else {}),
                             **({"warnings": [w["message"] for w in checked.warnings]}
                                if checked.warnings else {}),
                             **_area_cut(checked.warnings)})
        streamed = not (scheduled or held)
        campaign_id = campaign.id
    if streamed:
        # Accepted (committed): from here on nothing can lose it. Deliveries are written
        # in batches that workers already send (a crash here is resumed by a worker).
        # People per language are counted only for a language that lacks a text.
        missing = any(lang not in checked.texts for lang in checked.authority.language_list)
        result = _stream(engine, campaign_id, settings, want_languages=missing)
        count = result.count
        warnings = estimate_warnings(checked, RecipientCounts(
            result.by_channel, result.people_by_language)) + warnings
    return Launched(campaign_id, count, warnings)


def _with(req: CampaignRequest, **changes: Any) -> CampaignRequest:
    from dataclasses import replace

    return replace(req, **changes)


def fan_out_scheduled(engine: Engine, campaign_id: str, settings: Settings | None = None,
                      now: dt.datetime | None = None) -> int | None:
    """Send a due scheduled campaign: claim it, resolve recipients now, publish, queue.

    The claim is ``UPDATE campaign SET status='sending' WHERE id=… AND
    status='scheduled' AND scheduled_for <= now``: with several workers exactly
    one sees one row changed and fans out, in the same transaction. Returns
    the number of deliveries, or ``None`` when another worker won, the campaign
    was cancelled or is not due.
    """
    settings = settings or get_settings()
    now = now or utcnow()
    with transaction(engine) as s:
        claimed = s.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "scheduled",
                   Campaign.scheduled_for <= now)
            .values(status="sending")
            .execution_options(synchronize_session=False))
        if int(getattr(claimed, "rowcount", 0) or 0) != 1:
            return None
        campaign = s.get(Campaign, campaign_id)
        assert campaign is not None
        s.refresh(campaign)
        authority = s.get(Authority, campaign.authority_id)
        assert authority is not None
        area = shape(json.loads(campaign.area))
        _accept_streamed(s, campaign, authority, area, settings, now)
        record_audit(s, "system", "campaign.launch", target=campaign.id, source="scheduler",
                     detail={"authority": authority.id, "kind": campaign.kind,
                             "environment": campaign.environment, "area": campaign.area_name,
                             "channels": campaign.channel_list,
                             "scheduled_for": iso_utc(campaign.scheduled_for)})
    return int(_stream(engine, campaign_id, settings).count)


def _with_targets(s: Session, campaign: Campaign, authority: Authority,
                  recipients: list[Recipient]) -> list[Recipient]:
    """``recipients`` and those of the campaign's groups and contact lists, resolved now."""
    if not campaign.targets:
        return recipients
    from tocsin.campaigns.group_targets import target_recipients

    return target_recipients(s, campaign.targets, authority, campaign.channel_list,
                             list(campaign.texts), campaign.kind, recipients)


def due_scheduled(engine: Engine, now: dt.datetime | None = None, limit: int = 100) -> list[str]:
    """Ids of scheduled campaigns whose time has come, the earliest first."""
    now = now or utcnow()
    with transaction(engine) as s:
        return list(s.scalars(
            sa.select(Campaign.id)
            .where(Campaign.status == "scheduled", Campaign.scheduled_for <= now)
            .order_by(Campaign.scheduled_for, Campaign.id).limit(limit)))


# ----------------------------------------------------------------------------- lifecycle


