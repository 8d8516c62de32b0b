"""Follow-ups: update, all-clear and cancel of an alert chain (CAP 1.2 §3.2.1 msgType, SPEC F19).

A chain is an alert and every message about it (updates, all-clears, the
cancellation), linked by ``references_id``. Follow-ups are looked up by campaign
id or CAP identifier, and serialised on the chain's first message (row lock on
PostgreSQL; SQLite writers are serial).

- ``update_campaign``: a new campaign with msgType ``Update`` whose CAP
  ``references`` name every published message of the chain, sent to
  the original's recipients plus everyone in the new area. Deliveries of the
  original still queued are NOT stopped: the update adds to the original, and
  a recipient who gets both reads them in order (same priority, older first).
- ``all_clear``: an Update with ``responseType`` AllClear, to the original's
  recipients only; its ``references`` name every published message of the chain
  (CAP 1.2 §3.2.1: "the earlier message(s)").
- ``cancel_campaign``: cancelling any message cancels its whole chain: every
  delivery of the chain still queued becomes ``stopped`` (those in flight
  finish), every message of it becomes ``cancelled``, and one CAP ``Cancel``
  referencing every published message of the chain is published. A cancelled
  chain is closed: no update, all-clear or second cancel of any of its
  messages. A scheduled campaign cancelled before it is due sends nothing and
  publishes nothing.

A chain whose all-clear was sent is over, and closed like a cancelled one: no
update (it would put the alert back in the live CAP feed), no second all-clear,
and no cancel (an all-clear cannot be taken back, and a CAP Cancel of an ended
chain would tell panels to disregard the all-clear too). If the danger is back,
a new alert is a new message. The rule is ``rules.follow_up_refusal``; web and
CLI get the same ``CampaignInputError`` (field ``campaign_id``).

Expiry: a message without ``expires_at`` gets ``rules.default_expires`` (by
kind, from its sending time); an update keeps its alert's expiry while more
than ``rules.UPDATE_KEEPS_EXPIRY`` of it is left. ``scheduled_for`` is at most
``rules.MAX_SCHEDULE_AHEAD`` ahead, ``expires_at`` at most
``rules.MAX_VALIDITY`` after sending.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials, cli_actor
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor
from tocsin.authorities.services import record_audit
from tocsin.campaigns import rules
from tocsin.campaigns.checks import (
    CampaignInputError,
    CampaignNotFound,
    CampaignRequest,
    _area_names,
    _check_area,
    _check_common,
    _check_sms,
    _check_times,
    _Checked,
    _complete,
    _first_name,
    check_may,
)
from tocsin.campaigns.launch import Launched, _fan_out, _new_campaign, _with
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.targeting import _recipients_in_area, _recipients_of
from tocsin.core.db import read_transaction, table, transaction, utcnow
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import QUEUED, STOPPED, Delivery
from tocsin.messages.content import (
    ContentError,
    complete_content,
)


def _find(s: Session, key: str) -> Campaign | None:
    """A campaign by its id or its CAP identifier (``BE-TOCSIN-…``, what reports show)."""
    key = str(key).strip()
    if not key:
        return None
    c = s.get(Campaign, key)
    if c is None:
        c = s.scalars(sa.select(Campaign).where(Campaign.cap_identifier == key)).first()
    return c


def _original(s: Session, campaign_id: str, authority_id: str | None,
              action: str, actor: Actor | None = None) -> tuple[Campaign, Authority, Actor]:
    """The campaign an update / all-clear / cancel acts on, with checks, and who acts.

    ``campaign_id``: its id or CAP identifier. ``actor``: who acts (``None``: the
    command line acting for ``authority_id``, or for the campaign's own authority
    when that is ``None``). A campaign the actor may not read is not found
    (``Denied`` with ``hidden``); one it may read but not change is ``Denied``
    (``access``/``policy``: CAMPAIGN_UPDATE for update and all-clear,
    CAMPAIGN_CANCEL). The chain's first message is locked first (PostgreSQL ``FOR
    UPDATE``), so two follow-ups of one chain never interleave. Refused
    (``rules.follow_up_refusal``): a draft, a chain with any message cancelled, a
    chain whose all-clear was sent, a scheduled campaign (except to cancel it).
    """
    c = _find(s, campaign_id)
    if c is None or (actor is None and authority_id is not None
                     and c.authority_id != authority_id):
        raise CampaignNotFound("campaign_id", f"no campaign {campaign_id!r} of this authority")
    authority = s.get(Authority, c.authority_id)
    assert authority is not None
    who = actor if actor is not None else cli_actor(s, authority_id or c.authority_id)
    check_may(s, who, Action.CAMPAIGN_CANCEL if action == "cancel" else Action.CAMPAIGN_UPDATE,
              authority, c.environment, c)
    if s.get_bind().dialect.name == "postgresql":
        root = _root(s, c)
        s.execute(sa.select(Campaign.id).where(Campaign.id == root.id).with_for_update())
        s.refresh(c)
    refusal = rules.follow_up_refusal_template(action, _chain_message(c),
                                               [_chain_message(m) for m in _chain(s, c)])
    if refusal is not None:
        raise CampaignInputError("campaign_id", refusal[0], code="follow_up_refused",
                                 **refusal[1])
    return c, authority, who


def _chain_message(c: Campaign) -> rules.ChainMessage:
    return rules.ChainMessage(c.id, c.status, c.msg_type or "Alert", c.response_type)


def follow_up_refusals(s: Session, campaign: Campaign) -> dict[str, str | None]:
    """For each follow-up action (update, all_clear, cancel): why it is refused on
    ``campaign`` (``rules.follow_up_refusal``), or ``None`` when it is allowed. What the
    report shows, so that pages offer only what the services accept."""
    target = _chain_message(campaign)
    chain = [_chain_message(m) for m in _chain(s, campaign)]
    return {action: rules.follow_up_refusal(action, target, chain)
            for action in ("update", "all_clear", "cancel")}


def _root(s: Session, campaign: Campaign) -> Campaign:
    """The first message of ``campaign``'s chain (following ``references_id``)."""
    root, seen = campaign, {campaign.id}
    while root.references_id and root.references_id not in seen:
        parent = s.get(Campaign, root.references_id)
        if parent is None:
            break
        seen.add(parent.id)
        root = parent
    return root


def _sent_order(c: Campaign) -> tuple[dt.datetime, dt.datetime, str]:
    first = dt.datetime.min.replace(tzinfo=dt.UTC)
    launched = c.launched_at or c.created_at or first
    created = c.created_at or first
    return (_aware(launched), _aware(created), c.id)


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _chain(s: Session, campaign: Campaign) -> list[Campaign]:
    """Every message of ``campaign``'s chain: its first message, then every message that
    refers to it directly or through another (updates, all-clears, the cancellation),
    in sending order."""
    root = _root(s, campaign)
    members, ids, frontier = [root], {root.id}, [root.id]
    while frontier:
        found = [c for c in s.scalars(sa.select(Campaign).where(
            Campaign.references_id.in_(frontier))) if c.id not in ids]
        ids.update(c.id for c in found)
        members += found
        frontier = [c.id for c in found]
    return [root, *sorted(members[1:], key=_sent_order)]


def _thread(s: Session, campaign: Campaign) -> list[str]:
    """Ids of every message of ``campaign``'s chain (``_chain``)."""
    return [c.id for c in _chain(s, campaign)]


def _cap_references(s: Session, original: Campaign) -> str:
    """CAP ``references`` of a message about ``original`` (CAP 1.2 §3.2.1, "the earlier
    message(s)"): what the chain's first message itself referenced, then every
    published message of the chain (not a cancellation), in sending order."""
    from tocsin.cap.build import reference_of

    chain = _chain(s, original)
    refs = list((chain[0].cap_references or "").split())
    for m in chain:
        if m.cap_xml is not None and m.msg_type != "Cancel":
            own = ",".join(reference_of(m.cap_xml))
            if own not in refs:
                refs.append(own)
    return " ".join(refs)


def _follow_up(s: Session, original: Campaign, authority: Authority, req: CampaignRequest,
               settings: Settings, now: dt.datetime, action: str
               ) -> tuple[Campaign, int, list[dict[str, Any]]]:
    """Write an Update (``action`` update or all_clear) of ``original`` and its deliveries;
    returns it, its number of deliveries and the checks' warnings (a new area cut)."""
    kind = req.kind or original.kind
    req = _with(req, environment=req.environment or original.environment)
    if req.environment != original.environment:
        raise CampaignInputError("environment", N_("the original is a %(environment)s "
                                                   "campaign; its update must be too"),
                                 code="update_environment", environment=original.environment)
    if req.scheduled_for is not None:
        raise CampaignInputError("scheduled_for", N_("an update is sent now"),
                                 code="update_scheduled")
    channels_req = list(req.channels) or original.channel_list
    if original.cap_xml is not None and "cap" not in channels_req:
        # Panels still show the original: they must get the update.
        channels_req = [*channels_req, "cap"]
    if "cap" in channels_req and original.cap_xml is None:
        raise CampaignInputError("channels", N_("the original published no CAP alert, so a CAP "
                                                "Update cannot reference it (remove cap)"),
                                 code="update_without_cap")
    req = _with(req, channels=channels_req, authority_id=original.authority_id)
    _, channels, texts = _check_common(s, req, settings, kind)
    location = [c for c in channels if c in rules.LOCATION_CHANNELS]
    if location:
        # Only trained users of type-1 authorities (SPEC F5, F18), as at launch.
        from tocsin.authorities.access import Denied
        from tocsin.authorities.policy import decide

        who = req.actor or cli_actor(s, authority.id)
        decision = decide(who, Action.LBSMS_USE)
        if not decision:
            raise Denied(who, Action.LBSMS_USE, decision, authority.id, field="channels")
    keep = (original.expires_at if action == "update" and original.expires_at is not None
            and _aware(original.expires_at) - now > rules.UPDATE_KEEPS_EXPIRY else None)
    _, expires = _check_times(req, now, kind, _aware(keep) if keep is not None else None)
    located = _check_area(s, req, authority, optional=True, actor=req.actor)
    original_area = shape(json.loads(original.area))
    cut = None
    if located is None or action == "all_clear":
        area, nis = original_area, original.area_nis
        names = _area_names(s, area, nis, authority)
        names[authority.language_list[0]] = original.area_name
    else:
        area, names, nis, cut = located
    name = _first_name(names, authority)
    # The alert's own CAP event (not its kind's default name) carries over to the chain.
    events = {lang: str(entry["cap_event"]) for lang, entry in (original.content or {}).items()
              if entry.get("cap_event")
              and entry["cap_event"] != rules.kind_label(original.kind, lang).capitalize()}
    base, content, sms_fields = _complete(authority, req, kind, texts, names, now, settings,
                                          action=action, events=events)
    checked = _Checked(authority, area, name, nis, base, channels, content, kind, sms_fields,
                       {lang: names[lang] for lang in base}, expires)
    if cut is not None:
        checked.warnings.append(cut)
    _check_sms(checked, settings)
    justification = req.justification or original.location_justification
    if location:
        from tocsin.campaigns.checks import _check_location

        _check_location(checked, req.environment, justification, settings)
    recipients = _recipients_of(s, _thread(s, original), authority, channels, list(base),
                                kind)
    if original.targets:
        # The original's groups and contact lists, resolved now (SPEC F11).
        from tocsin.campaigns.group_targets import target_recipients

        checked.targets = original.targets
        recipients = target_recipients(s, original.targets, authority, channels, list(base),
                                       kind, recipients)
    if action == "update" and located is not None:
        seen = {(r.channel, r.address) for r in recipients}
        for r in _recipients_in_area(s, area, authority, channels, list(base), kind):
            if (r.channel, r.address) not in seen:
                seen.add((r.channel, r.address))
                recipients.append(r)
    cap_params = dict(original.cap_params or {})
    cap_params.update({k: v for k, v in req.cap.items() if v})
    if action == "all_clear":
        # CAP practice for an all-clear: the event is past, minor, observed.
        cap_params.update({"urgency": "Past", "severity": "Minor", "certainty": "Observed"})
    campaign = _new_campaign(
        checked, req, settings, now, cap_params=cap_params,
        msg_type=rules.cap_msg_type(action), references_id=original.id,
        cap_references=_cap_references(s, original) if "cap" in channels else None,
        response_type="AllClear" if action == "all_clear" else None,
        template_id=None,
        location_justification=justification if "lbsms" in channels else None)
    count = _fan_out(s, campaign, authority, area, recipients, settings, now)
    return campaign, count, list(checked.warnings)


def update_campaign(engine: Engine, original_id: str, req: CampaignRequest,
                    settings: Settings | None = None) -> str:
    """Send an update of a sent (or sending) campaign; returns the new campaign id.

    :func:`update_with_warnings` without the warnings; see it for the rules.
    """
    return update_with_warnings(engine, original_id, req, settings).campaign_id


def update_with_warnings(engine: Engine, original_id: str, req: CampaignRequest,
                         settings: Settings | None = None) -> Launched:
    """Send an update of a sent (or sending) campaign: CAP ``Update`` (SPEC F19).

    ``req``: new texts/content and optionally a new (bigger) area; no area =
    the original's. ``req.kind`` ``""`` keeps the original's kind,
    ``req.environment`` ``""`` its environment (any other must equal it);
    ``req.authority_id`` must own the original (``""``: not checked, the CLI).
    Recipients: every contact point that had a delivery in the original (or in
    earlier updates of it)
    plus everyone in the new area, once each. The CAP references the original
    (``sender,identifier,sent`` as written in its CAP) and what it referenced;
    published whenever the original published CAP. Deliveries of the original
    still queued are kept (see module docstring). One transaction; returns the
    new campaign id and the warnings (a new area cut at the territory's border:
    ``code`` ``area_cut``) as a ``Launched``. Raises ``CampaignInputError`` (field
    ``campaign_id``: a draft, a scheduled campaign, a chain cancelled or whose
    all-clear was sent) and ``access.Denied``.
    """
    settings = settings or get_settings()
    now = utcnow()
    with audited_denials(engine, req.source), transaction(engine) as s:
        original, authority, actor = _original(s, original_id, req.authority_id or None,
                                               "update", req.actor)
        req = _with(req, actor=actor)
        campaign, count, warnings = _follow_up(s, original, authority, req, settings, now,
                                               "update")
        record_audit(s, _name(req), "campaign.update", target=campaign.id,
                     source=req.source,
                     detail={"references": original.id, "authority": authority.id,
                             "area": campaign.area_name, "channels": campaign.channel_list,
                             "recipients": count,
                             **({"warnings": [w["message"] for w in warnings]}
                                if warnings else {})})
        return Launched(campaign.id, count, warnings)


def default_all_clear_texts(engine: Engine, campaign_id: str) -> dict[str, str]:
    """The all-clear text offered per language of the campaign (``rules.ALL_CLEAR_TEXT``),
    with the area named in that language ("Brussel" in Dutch). Raises ``LookupError``."""
    with read_transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        authority = s.get(Authority, c.authority_id) if c is not None else None
        if c is None or authority is None:
            raise LookupError(f"campaign {campaign_id!r} not found")
        names = _area_names(s, shape(json.loads(c.area)), c.area_nis, authority)
        return {lang: rules.ALL_CLEAR_TEXT.get(lang, rules.ALL_CLEAR_TEXT["en"])
                .replace("{area_name}", names.get(lang) or c.area_name)
                for lang in c.texts}


def all_clear(engine: Engine, original_id: str, req: CampaignRequest,
              settings: Settings | None = None) -> str:
    """Send the all-clear of a campaign: a CAP ``Update`` with ``responseType`` AllClear.

    Sent to the original's recipients only, on the original's channels unless
    ``req.channels`` says otherwise. ``req.texts`` empty: ``rules.ALL_CLEAR_TEXT``
    in each language of the original. One transaction; returns the new campaign
    id. Raises ``CampaignInputError`` (field ``campaign_id``: a chain cancelled or
    whose all-clear was already sent is over).
    """
    settings = settings or get_settings()
    now = utcnow()
    with audited_denials(engine, req.source), transaction(engine) as s:
        original, authority, actor = _original(s, original_id, req.authority_id or None,
                                               "all_clear", req.actor)
        req = _with(req, actor=actor)
        texts = req.texts or {lang: rules.ALL_CLEAR_TEXT[lang] for lang in original.texts}
        channels = req.channels or original.channel_list
        req = _with(req, texts=texts, channels=channels, area_geojson=None,
                    municipality_nis=None)
        campaign, count, _ = _follow_up(s, original, authority, req, settings, now,
                                        "all_clear")
        record_audit(s, _name(req), "campaign.all_clear", target=campaign.id,
                     source=req.source,
                     detail={"references": original.id, "authority": authority.id,
                             "channels": campaign.channel_list, "recipients": count})
        return campaign.id


_CANCEL_TEXT = {
    "fr": "Le message précédent pour {area_name} est annulé.",
    "nl": "Het vorige bericht voor {area_name} is ingetrokken.",
    "de": "Die vorige Mitteilung für {area_name} ist aufgehoben.",
    "en": "The previous message for {area_name} is cancelled.",
}


def cancel_campaign(engine: Engine, campaign_id: str, actor: Actor | str, *,
                    authority_id: str | None = None, source: str = "cli",
                    settings: Settings | None = None) -> dict[str, Any]:
    """Cancel a campaign and its whole chain (SPEC F19): stop what is not sent, publish
    a CAP ``Cancel``.

    ``campaign_id``: its id or CAP identifier; any message of a chain (the
    alert, an update, an all-clear) cancels the chain. Every delivery of the
    chain still ``queued`` becomes ``stopped`` (those ``in_flight`` finish);
    every message's status becomes ``cancelled``. When any message of the chain
    published CAP, a new campaign row (msgType Cancel, channel cap, no
    deliveries, ``references_id`` = ``campaign_id``) carries the CAP Cancel whose
    ``references`` name every published message of the chain. A scheduled
    campaign just stops: it never sent or published anything. ``actor``: who
    cancels (an ``Actor``, checked by the policy), or a name for the command line,
    which acts for ``authority_id`` (``None``: the campaign's own authority; any
    other authority does not see it). One transaction. Returns
    ``{"campaign_id", "stopped" (deliveries of the whole chain),
    "cancel_campaign_id" (or None), "cap_identifier" (or None), "status_was"
    (the campaign's status before), "summary" (what happened, in one sentence:
    ``rules.cancel_summary``)}``. Raises
    ``CampaignInputError`` (a chain already cancelled, or whose all-clear was sent,
    is closed: ``rules.follow_up_refusal``).
    """
    settings = settings or get_settings()
    now = utcnow()
    d = table(Delivery)
    with audited_denials(engine, source), transaction(engine) as s:
        original, authority, who = _original(s, campaign_id, authority_id, "cancel",
                                             actor if isinstance(actor, Actor) else None)
        actor = who.username if isinstance(actor, Actor) else actor
        chain = _chain(s, original)
        result = s.execute(
            sa.update(d).where(d.c.campaign_id.in_([m.id for m in chain]),
                               d.c.state == QUEUED)
            .values(state=STOPPED, final_at=now, lease_until=None,
                    error=f"cancelled by {actor}"[:500]))
        stopped = int(getattr(result, "rowcount", 0) or 0)
        was = original.status
        for m in chain:
            if m.status != "finished" or m.finished_at is None:
                m.finished_at = now
            m.status = "cancelled"
        cancel_id: str | None = None
        cap_identifier: str | None = None
        if any(m.cap_xml is not None for m in chain):
            texts = {lang: _CANCEL_TEXT.get(lang, _CANCEL_TEXT["en"])
                     for lang in original.texts}
            names = _area_names(s, shape(json.loads(original.area)), original.area_nis,
                                authority)
            names[authority.language_list[0]] = original.area_name
            try:
                content = complete_content(
                    texts, {}, original.kind, names, now,
                    authority_name={x: authority.name(x) for x in rules.LANGUAGES},
                    action="cancel")
            except ContentError as exc:  # pragma: no cover - fixed texts
                raise CampaignInputError(exc.field, exc.reason) from None
            for lang, entry in content.items():
                entry["cap_event"] = ((original.content or {}).get(lang) or {}).get(
                    "cap_event") or (original.cap_params or {}).get("event") \
                    or entry["cap_event"]
            cancel_id = uuid.uuid4().hex
            cancel = Campaign(
                id=cancel_id, authority_id=original.authority_id, kind=original.kind,
                environment=original.environment, status="finished",
                priority=original.priority, channels="cap",
                texts={lang: e["cap_description"] for lang, e in content.items()},
                content=content, area=original.area, area_name=original.area_name,
                area_nis=original.area_nis, cap_params=dict(original.cap_params or {}),
                msg_type="Cancel", scope=original.scope, references_id=original.id,
                cap_references=_cap_references(s, original),
                cap_identifier=f"BE-TOCSIN-{original.authority_id}-{now:%Y%m%d%H%M%S}-"
                               f"{cancel_id[:8]}",
                sms_source=original.sms_source, mail_from=original.mail_from,
                voice_caller=original.voice_caller,
                created_by=actor, created_at=now, launched_at=now, fanout_done_at=now,
                finished_at=now)
            from tocsin.cap.services import build_campaign_cap

            cancel.cap_xml = build_campaign_cap(cancel, authority,
                                                shape(json.loads(original.area)),
                                                settings).decode("utf-8")
            s.add(cancel)
            s.flush()
            from tocsin.cap.gateway import webhook_delivery_rows

            hooks = webhook_delivery_rows(s, cancel, shape(json.loads(original.area)))
            if hooks:  # CAP gateway pushes of the Cancel (F24)
                s.execute(sa.insert(table(Delivery)), hooks)
            cap_identifier = cancel.cap_identifier
        record_audit(s, actor, "campaign.cancel", target=original.id, source=source,
                     detail={"authority": authority.id, "status_was": was,
                             "chain": [m.id for m in chain],
                             "stopped": stopped, "cap_cancel": cap_identifier})
        was_sent = any(m.launched_at is not None for m in chain)
        chain_ids = [m.id for m in chain]
        out = {"campaign_id": original.id, "stopped": stopped,
               "cancel_campaign_id": cancel_id, "cap_identifier": cap_identifier,
               "status_was": was,
               "summary": rules.cancel_summary(was_sent, stopped, cap_identifier is not None)}
    # Committed: the operators stop their location-based SMS, the CBC deletes the
    # chain's cell-broadcast messages (in the chain's order).
    from tocsin.campaigns.location import stop_sends

    location: dict[str, str] = {}
    for cid in chain_ids:
        location.update(stop_sends(engine, cid, settings=settings))
    if location:
        out["location"] = location
    return out




#: Content fields an update keeps from the original only when the operator wrote them
#: (the others are derived again at launch: the e-mail subject then says "update").
_UPDATE_KEEPS = ("voice", "email_text", "cap_description", "cap_instruction")


def _name(req: CampaignRequest) -> str:
    """Who the audit log names for a request: the acting user, else ``created_by``."""
    return req.actor.username if req.actor is not None and req.actor.username != "cli" \
        else req.created_by


def update_source(engine: Engine, campaign_id: str, authority_id: str,
                  environment: str) -> dict[str, Any]:
    """What an update of ``campaign_id`` starts from (CAP Update, SPEC F19): the
    original's kind, texts, channels, CAP values and area (which the operator may
    enlarge), and per-channel texts only where they differed from the SMS text.

    Returns ``{"campaign_id", "kind", "texts": {lang: text}, "content": {lang: {field:
    text}}, "channels", "cap": {event, urgency, severity, certainty}, "area" (GeoJSON
    geometry), "area_nis", "area_name", "expires_at" (aware UTC, None when already
    past), "launched_at" (aware UTC)}``. Raises ``LookupError`` for another authority's
    or environment's campaign, a draft, a scheduled or cancelled campaign, or a
    cancellation (nothing to update).
    """
    with read_transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if (c is None or c.authority_id != authority_id or c.environment != environment
                or c.status in ("draft", "scheduled", "cancelled") or c.msg_type == "Cancel"):
            raise LookupError(campaign_id)
        texts = {lang: str(t) for lang, t in (c.texts or {}).items()}
        content: dict[str, dict[str, str]] = {}
        for lang, entry in (c.content or {}).items():
            base = (entry or {}).get("sms") or texts.get(lang, "")
            kept = {f: str(entry[f]) for f in _UPDATE_KEEPS
                    if (entry or {}).get(f) and str(entry[f]).strip() != base.strip()}
            event = (entry or {}).get("cap_event")
            if event and event != rules.kind_label(c.kind, lang).capitalize():
                kept["cap_event"] = str(event)
            if kept and lang in texts:
                content[lang] = kept
        expires = c.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return {
            "campaign_id": c.id, "kind": c.kind, "texts": texts, "content": content,
            "channels": c.channel_list,
            "cap": {k: str(v) for k, v in (c.cap_params or {}).items()
                    if k in ("event", "urgency", "severity", "certainty") and v},
            "area": json.loads(c.area), "area_nis": c.area_nis, "area_name": c.area_name,
            # An expiry already past is not kept: the estimate's default replaces it.
            "expires_at": expires if expires is not None and expires > utcnow() else None,
            "launched_at": c.launched_at,
        }
