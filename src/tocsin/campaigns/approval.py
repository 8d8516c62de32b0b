"""Two-person rule: a second user approves (or rejects) a held live alert.

An authority may require that its live alerts are approved by a second user before
they go out (``Authority.two_person_rule``; off by default so that a lone operator
at night is never blocked; simulation never waits). ``launch`` then writes the
campaign ``pending_approval`` with no deliveries and no CAP. The approver sees
exactly what will go out (the campaign's stored content and area) and approves it:
it is sent then (or scheduled, when it had a time still ahead). Nobody approves
their own campaign (``policy``: CAMPAIGN_APPROVE).
"""

from __future__ import annotations

import datetime as dt
import json

from shapely.geometry import shape
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor
from tocsin.authorities.services import record_audit
from tocsin.campaigns.checks import CampaignInputError, CampaignNotFound, check_may
from tocsin.campaigns.launch import _accept_streamed, _stream
from tocsin.campaigns.models import Campaign
from tocsin.core.db import transaction, utcnow
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings, get_settings

AWAITING = "pending_approval"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _held(s: Session, actor: Actor, campaign_id: str,
          action: Action) -> tuple[Campaign, Authority]:
    c = s.get(Campaign, str(campaign_id).strip())
    if c is None:
        raise CampaignNotFound("campaign_id", f"no campaign {campaign_id!r} of this authority")
    authority = s.get(Authority, c.authority_id)
    assert authority is not None  # foreign key
    check_may(s, actor, action, authority, c.environment, c)
    if c.status != AWAITING:
        raise CampaignInputError("campaign_id",
                                 N_("campaign %(id)s is not awaiting approval (it is %(status)s)"),
                                 code="not_awaiting_approval", id=c.id, status=c.status)
    return c, authority


def approve_campaign(engine: Engine, actor: Actor, campaign_id: str, *,
                     source: str = "cli", settings: Settings | None = None) -> int:
    """Approve a held live campaign: it goes out now (recipients resolved now), or at
    its scheduled time when that is still ahead. Returns the deliveries written (0
    when scheduled). Raises ``Denied`` (own campaign, no right, no second factor) or
    ``CampaignInputError`` (not awaiting approval); audited as ``campaign.approve``."""
    settings = settings or get_settings()
    now = utcnow()
    with audited_denials(engine, source), transaction(engine) as s:
        c, authority = _held(s, actor, campaign_id, Action.CAMPAIGN_APPROVE)
        c.approved_by, c.approved_at = actor.username, now
        count = 0
        if c.scheduled_for is not None and _aware(c.scheduled_for) > now:
            c.status = "scheduled"
        else:
            c.status = "sending"
            area = shape(json.loads(c.area))
            _accept_streamed(s, c, authority, area, settings, now)
        record_audit(s, actor.username, "campaign.approve", target=c.id, source=source,
                     detail={"authority": authority.id, "prepared_by": c.created_by,
                             "status": c.status})
        streamed, campaign_id = c.status == "sending", c.id
    if streamed:  # accepted: the fan-out streams now (resumed by a worker after a crash)
        count = int(_stream(engine, campaign_id, settings).count)
    return count


def reject_campaign(engine: Engine, actor: Actor, campaign_id: str, reason: str, *,
                    source: str = "cli") -> None:
    """Refuse a held live campaign: it is cancelled and never sent. ``reason`` (at most
    500 characters) is kept in the audit log. Same rights as approving."""
    reason = reason.strip()
    if not reason:
        raise CampaignInputError("reason", N_("say why it is rejected, for the operator"),
                                 code="reason_missing")
    if len(reason) > 500:
        raise CampaignInputError("reason", N_("at most %(max)s characters"), code="too_long",
                                 max=500)
    now = utcnow()
    with audited_denials(engine, source), transaction(engine) as s:
        c, authority = _held(s, actor, campaign_id, Action.CAMPAIGN_APPROVE)
        c.status, c.finished_at = "cancelled", now
        record_audit(s, actor.username, "campaign.reject", target=c.id, source=source,
                     detail={"authority": authority.id, "prepared_by": c.created_by,
                             "reason": reason})
