"""Campaign use cases: check, estimate, launch, schedule, update, cancel, report
(SPEC F12–F17, F19, F26).

The web routes and the CLI build the same ``CampaignRequest`` and call the same
functions here. ``launch_campaign`` writes the campaign, every delivery and the
published CAP in one transaction: once it returns, the alert is accepted and
nothing can lose it; any error before that leaves nothing written. A campaign
scheduled for later is written with status ``scheduled`` and no deliveries and
no CAP; ``dispatch.scheduler`` fans it out when it is due (``fan_out_scheduled``).

Lifecycle (CAP 1.2 §3.2.1 msgType, SPEC F19):

- ``update_campaign``: a new campaign with msgType ``Update`` whose CAP
  ``references`` name the original (and what the original referenced), sent to
  the original's recipients plus everyone in the new area. Deliveries of the
  original still queued are NOT stopped: the update adds to the original, and
  a recipient who gets both reads them in order (same priority, older first).
- ``all_clear``: an Update with ``responseType`` AllClear, to the original's
  recipients only.
- ``cancel_campaign``: deliveries of the original still queued become
  ``stopped`` (those in flight finish), its status becomes ``cancelled``, and a
  CAP ``Cancel`` referencing it is published when the original published CAP.
  A scheduled campaign cancelled before it is due sends nothing and publishes
  nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.models import Authority
from tocsin.authorities.services import record_audit
from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.core.db import read_transaction, table, transaction, utcnow
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import FINAL_STATES, IN_FLIGHT, QUEUED, SENT, STOPPED, Delivery
from tocsin.geo.areas import AreaError, area_km2, clip_to_territory, parse_area_geojson
from tocsin.geo.areas import municipality_area as _municipality_area
from tocsin.geo.spatial import subscribers_in_area
from tocsin.messages.content import (
    CONTENT_FIELDS,
    ContentError,
    check_required_languages,
    complete_content,
    fill,
    local_time,
)
from tocsin.messages.sms import analyse
from tocsin.subscribers.models import ContactPoint, Subscriber

log = logging.getLogger(__name__)

RECEIPT_GRACE_SECONDS = 60.0
_BATCH = 10_000
#: The furthest ahead a campaign may be scheduled.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)


class CampaignInputError(ValueError):
    """Bad campaign input: ``field`` names what is wrong (``text.de``, ``area``…) and
    ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class CampaignNotFound(CampaignInputError):
    """No such campaign, or one of another authority (``field`` is ``campaign_id``)."""


@dataclass
class CampaignRequest:
    """What an operator asks for.

    ``texts``: language -> base text (the SMS text), in the order given.
    ``content``: optional overrides, language -> field (``CONTENT_FIELDS``) -> text.
    ``fields``: values of free placeholders (``{street}`` -> ``fields["street"]``).
    ``scheduled_for``: aware datetime to send later (``rules.parse_local_time``
    reads Belgian local time); ``expires_at``: aware datetime, the CAP
    ``expires``. ``template_id``: the template it was launched from.
    ``draft_id``: a draft (e.g. an imported CAP alert) this launch replaces.
    ``kind`` ``""`` on an update means "the original's kind".
    """

    authority_id: str
    texts: dict[str, str]
    channels: list[str]
    area_geojson: dict[str, Any] | str | bytes | None = None
    municipality_nis: str | None = None
    kind: str = "alert"
    environment: str = "simulation"
    created_by: str = "cli"
    source: str = "cli"
    cap: dict[str, str] = field(default_factory=dict)
    content: dict[str, dict[str, str]] = field(default_factory=dict)
    scheduled_for: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    template_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    draft_id: str | None = None


@dataclass
class _Checked:
    authority: Authority
    area: BaseGeometry
    area_name: str
    area_nis: str | None
    texts: dict[str, str]
    channels: list[str]
    content: dict[str, dict[str, str]] = field(default_factory=dict)
    kind: str = "alert"
    sms_fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Recipient:
    channel: str
    address: str
    language: str


def _check_common(session: Session, req: CampaignRequest, settings: Settings,
                  kind: str) -> tuple[Authority, list[str], dict[str, str]]:
    """Authority, kind, environment, channels, texts, overrides, CAP values, providers."""
    authority = session.get(Authority, str(req.authority_id).strip())
    if authority is None:
        raise CampaignInputError("authority", f"unknown authority {req.authority_id!r}")
    if kind not in rules.KINDS:
        raise CampaignInputError("kind", f"{kind!r} is not one of {', '.join(rules.KINDS)}")
    if req.environment not in rules.ENVIRONMENTS:
        raise CampaignInputError("environment", f"{req.environment!r} is not simulation or live")
    channels = [c.strip() for c in req.channels if c.strip()]
    if not channels:
        raise CampaignInputError("channels", "choose at least one channel (sms, email, cap)")
    for c in channels:
        if c not in rules.CHANNELS:
            raise CampaignInputError("channels", f"unknown channel {c!r} (sms, email, cap)")
    channels = list(dict.fromkeys(channels))
    if kind == "group" and "cap" in channels:
        raise CampaignInputError("channels", "a group message is not for the public: it has "
                                             "no CAP alert (remove cap)")
    if not req.texts:
        raise CampaignInputError("text", "no text given: write the message in at least one "
                                         "language (e.g. fr=\"…\")")
    texts: dict[str, str] = {}
    for lang, text in req.texts.items():
        if lang not in rules.LANGUAGES:
            raise CampaignInputError(f"text.{lang}", f"unknown language {lang!r} "
                                                     f"(use {', '.join(rules.LANGUAGES)})")
        if not text or not text.strip():
            raise CampaignInputError(f"text.{lang}", "the text is empty")
        texts[lang] = text.strip()
    for lang, text in texts.items():
        _no_control_chars(f"text.{lang}", text)
    for lang, fields in (req.content or {}).items():
        if not isinstance(fields, dict):
            raise CampaignInputError(f"content.{lang}", "expected field -> text")
        for name, value in fields.items():
            if isinstance(value, str):
                _no_control_chars(f"content.{lang}.{name}", value)
    for name, value in (req.fields or {}).items():
        if isinstance(value, str):
            _no_control_chars(f"fields.{name}", value)
    _check_cap_params(req.cap)
    if kind != "group":
        try:
            check_required_languages(authority.id, authority.parent_id, list(texts))
        except ContentError as exc:
            raise CampaignInputError(exc.field, exc.reason) from None
    if req.environment == "live":
        missing = [c for c, url in (("sms", settings.smpp_url), ("email", settings.smtp_url))
                   if c in channels and not url.strip()]
        if missing:
            env = {"sms": "TOCSIN_SMPP_URL", "email": "TOCSIN_SMTP_URL"}
            raise CampaignInputError(
                "channels", "no live provider configured for "
                + ", ".join(f"{c} ({env[c]})" for c in missing)
                + "; use the simulation environment or configure the provider")
    return authority, channels, texts


def _no_control_chars(field_name: str, text: str) -> None:
    bad = next((ch for ch in text if _forbidden_char(ch)), None)
    if bad is not None:
        raise CampaignInputError(field_name, f"contains the control character "
                                             f"U+{ord(bad):04X}, which cannot be sent")


def _check_area(session: Session, req: CampaignRequest, authority: Authority,
                optional: bool = False) -> tuple[BaseGeometry, str, str | None] | None:
    """The requested area clipped to the territory, its name and NIS code (a municipality).

    ``optional``: no area at all is allowed (returns ``None``), for an update.
    """
    if req.area_geojson is None and req.municipality_nis is None and optional:
        return None
    if (req.area_geojson is None) == (req.municipality_nis is None):
        raise CampaignInputError("area", "give exactly one of an area (GeoJSON) or a "
                                         "municipality (NIS code)")
    try:
        if req.municipality_nis is not None:
            area, name = _municipality_area(session, req.municipality_nis,
                                            authority.language_list[0])
            nis: str | None = str(req.municipality_nis).strip()
        else:
            area = parse_area_geojson(req.area_geojson)  # type: ignore[arg-type]
            name, nis = _area_name(session, area, authority), None
        area = clip_to_territory(area, authority, field="municipality" if nis else "area")
    except AreaError as exc:
        raise CampaignInputError(exc.field, exc.reason) from None
    return area, name, nis


def _complete(authority: Authority, req: CampaignRequest, kind: str, texts: dict[str, str],
              area_name: str, when: dt.datetime, settings: Settings,
              action: str = "alert") -> tuple[dict[str, str], dict[str, dict[str, str]],
                                              dict[str, str]]:
    """Placeholders filled: (base texts, complete content, the field each SMS came from).

    Raises ``CampaignInputError`` naming ``text.<lang>`` / ``content.<lang>.<field>``
    for an unfilled placeholder or an SMS over the authority's segment maximum.
    """
    names = {lang: authority.name(lang) for lang in rules.LANGUAGES}
    try:
        content = complete_content(texts, req.content, kind, area_name, when, req.fields,
                                   authority_name=names, cap_event=req.cap.get("event"),
                                   action=action)
        values = {**req.fields, "area_name": area_name, "time": local_time(when)}
        base = {lang: fill(text, values, f"text.{lang}") for lang, text in texts.items()}
    except ContentError as exc:
        raise CampaignInputError(exc.field, exc.reason) from None
    sms_field = {lang: (f"content.{lang}.sms" if ((req.content or {}).get(lang) or {})
                        .get("sms", "").strip() else f"text.{lang}") for lang in texts}
    for lang, entry in content.items():
        for name in CONTENT_FIELDS:
            _no_control_chars(f"content.{lang}.{name}", entry[name])
    return base, content, sms_field


def _check_sms(checked: _Checked, settings: Settings) -> None:
    if "sms" not in checked.channels:
        return
    maximum = checked.authority.sms_max_segments or settings.sms_max_segments
    for lang, entry in checked.content.items():
        name = checked.sms_fields.get(lang, f"text.{lang}")
        try:
            segments = analyse(entry["sms"]).segments
        except ValueError as exc:
            raise CampaignInputError(name, str(exc).removeprefix("text: ")) from None
        if segments > maximum:
            raise CampaignInputError(
                name, f"the SMS would need {segments} segments; at most {maximum} are "
                      f"allowed (shorten the text)")


def _check_times(req: CampaignRequest, now: dt.datetime) -> dt.datetime:
    """Check ``scheduled_for`` / ``expires_at``; returns the sending time."""
    when = now
    if req.scheduled_for is not None:
        at = req.scheduled_for
        if not isinstance(at, dt.datetime) or at.tzinfo is None or at.utcoffset() is None:
            raise CampaignInputError("scheduled_for", "needs a time zone (read local times with "
                                                      "rules.parse_local_time)")
        if at <= now:
            raise CampaignInputError(
                "scheduled_for", f"{at.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M} "
                f"(Europe/Brussels) is in the past; send now or choose a later time")
        if at - now > MAX_SCHEDULE_AHEAD:
            raise CampaignInputError("scheduled_for", "more than a year ahead")
        when = at.astimezone(dt.UTC)
    if req.expires_at is not None:
        exp = req.expires_at
        if not isinstance(exp, dt.datetime) or exp.tzinfo is None or exp.utcoffset() is None:
            raise CampaignInputError("expires_at", "needs a time zone")
        if exp <= when:
            raise CampaignInputError(
                "expires_at", f"{exp.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M} "
                f"(Europe/Brussels) is not after the sending time "
                f"{when.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M}")
    return when


def _check(session: Session, req: CampaignRequest, settings: Settings,
           now: dt.datetime | None = None) -> _Checked:
    now = now or utcnow()
    when = _check_times(req, now)
    authority, channels, texts = _check_common(session, req, settings, req.kind)
    located = _check_area(session, req, authority)
    assert located is not None
    area, name, nis = located
    base, content, sms_fields = _complete(authority, req, req.kind, texts, name, when, settings)
    checked = _Checked(authority, area, name, nis, base, channels, content, req.kind,
                       sms_fields)
    _check_sms(checked, settings)
    if req.template_id:
        _check_template(session, req.template_id, authority.id)
    if req.draft_id:
        _draft(session, req.draft_id, authority.id)
    return checked


def _check_template(session: Session, template_id: str, authority_id: str) -> None:
    from tocsin.messages.models import MessageTemplate

    t = session.get(MessageTemplate, template_id)
    if t is None or t.authority_id != authority_id:
        raise CampaignInputError("template_id", f"no template {template_id!r} of this authority")


def _draft(session: Session, draft_id: str, authority_id: str) -> Campaign:
    c = session.get(Campaign, draft_id)
    if c is None or c.authority_id != authority_id or c.status != "draft":
        raise CampaignInputError("draft_id", f"no draft {draft_id!r} of this authority")
    return c


def _forbidden_char(ch: str) -> bool:
    # XML 1.0 (CAP) cannot carry C0 controls but tab/newline/CR; SMS and e-mail gain nothing
    # from them either.
    return (ord(ch) < 0x20 and ch not in "\t\n\r") or ch in "\ufffe\uffff"


def _check_cap_params(cap: dict[str, str]) -> None:
    """CAP 1.2 §3.2.2 enumerations for the operator's optional CAP values."""
    from tocsin.cap.build import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES

    allowed = {"category": CATEGORIES, "urgency": URGENCIES, "severity": SEVERITIES,
               "certainty": CERTAINTIES}
    for key, value in cap.items():
        if key == "event":
            if value and len(value) > 200:
                raise CampaignInputError("cap.event", "longer than 200 characters")
            if value:
                _no_control_chars("cap.event", value)
            continue
        if key not in allowed:
            raise CampaignInputError(f"cap.{key}", "unknown CAP field (category, event, "
                                                   "urgency, severity, certainty)")
        if value and value not in allowed[key]:
            raise CampaignInputError(f"cap.{key}", f"{value!r} is not one of "
                                                   f"{', '.join(allowed[key])} (CAP 1.2)")


def _area_name(session: Session, area: BaseGeometry, authority: Authority) -> str:
    """A human name for a drawn area: the municipalities it covers (at most three named)."""
    from tocsin.geo.areas import territory_of

    lang = authority.language_list[0]
    if authority.kind == "municipality":
        return f"{authority.name(lang)} (zone)"
    minx, miny, maxx, maxy = area.bounds
    names = []
    for m in session.scalars(sa.select(Authority).where(
            Authority.kind == "municipality", Authority.min_lon <= maxx,
            Authority.max_lon >= minx, Authority.min_lat <= maxy, Authority.max_lat >= miny)):
        if territory_of(m).intersects(area):
            names.append(m.name(lang))
    if not names:
        return authority.name(lang)
    return ", ".join(sorted(names)[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")


_CHANNEL_OF = {"mobile": "sms", "email": "email"}
_KIND_OF = {"sms": "mobile", "email": "email"}


def _reachable(kind: str) -> list[sa.ColumnElement[bool]]:
    """Which contact points a campaign of ``kind`` may reach (SPEC F8, F12)."""
    where: list[sa.ColumnElement[bool]] = [ContactPoint.verified_at.is_not(None),
                                           ContactPoint.invalid_at.is_(None)]
    if kind == "information":
        where.append(ContactPoint.info_opt_in.is_(True))
    return where


def _recipients_in_area(session: Session, area: BaseGeometry, authority: Authority,
                        channels: list[str], languages: list[str], kind: str) -> list[Recipient]:
    ids = subscribers_in_area(session, area)
    wanted = [k for k, c in _CHANNEL_OF.items() if c in channels]
    if not ids or not wanted:
        return []
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    seen: set[tuple[str, str]] = set()
    out: list[Recipient] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        rows = session.execute(
            sa.select(ContactPoint.kind, ContactPoint.value, Subscriber.language)
            .join(Subscriber, Subscriber.id == ContactPoint.subscriber_id)
            .where(ContactPoint.subscriber_id.in_(chunk), ContactPoint.kind.in_(wanted),
                   *_reachable(kind))
            .order_by(ContactPoint.subscriber_id, ContactPoint.id)
        ).all()
        for ckind, value, language in rows:
            key = (_CHANNEL_OF[ckind], value)
            if key in seen:
                continue
            seen.add(key)
            out.append(Recipient(key[0], value,
                                 rules.choose_language(language, fallback, languages)))
    return out


def resolve_recipients(session: Session, checked: _Checked) -> list[Recipient]:
    """One recipient per distinct phone number and e-mail address with an address in the area.

    Each gets their own language if a text exists in it, else the first
    language with a text in the authority's fallback order
    (``authority.language_fallback``, else its official languages then fr, nl,
    de, en; ``rules.choose_language``). A contact point shared by several
    subscribers gets the language of the first subscriber imported (lowest id).
    Only verified contact points (SPEC F8), never one marked invalid (a hard
    bounce); ``information`` only to contact points that opted in (F12).
    """
    return _recipients_in_area(session, checked.area, checked.authority, checked.channels,
                               list(checked.texts), checked.kind)


def _recipients_of(session: Session, campaign_ids: list[str], authority: Authority,
                   channels: list[str], languages: list[str], kind: str) -> list[Recipient]:
    """The recipients of earlier campaigns (their deliveries), still reachable, in the
    language they would get now. A contact point deleted since (SPEC F9) is skipped."""
    d = table(Delivery)
    wanted = [_KIND_OF[c] for c in channels if c in _KIND_OF]
    if not wanted or not campaign_ids:
        return []
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    rows = session.execute(
        sa.select(ContactPoint.kind, ContactPoint.value, Subscriber.language)
        .join(Subscriber, Subscriber.id == ContactPoint.subscriber_id)
        .join(d, sa.and_(d.c.address == ContactPoint.value,
                         d.c.channel == sa.case((ContactPoint.kind == "mobile", "sms"),
                                                else_="email")))
        .where(d.c.campaign_id.in_(campaign_ids), ContactPoint.kind.in_(wanted),
               *_reachable(kind))
        .order_by(ContactPoint.subscriber_id, ContactPoint.id)
    ).all()
    seen: set[tuple[str, str]] = set()
    out: list[Recipient] = []
    for ckind, value, language in rows:
        key = (_CHANNEL_OF[ckind], value)
        if key in seen:
            continue
        seen.add(key)
        out.append(Recipient(key[0], value, rules.choose_language(language, fallback, languages)))
    return out


def _sms_facts(texts: dict[str, str], price: Decimal) -> dict[str, dict[str, Any]]:
    facts = {}
    for lang, text in texts.items():
        a = analyse(text)
        facts[lang] = {"encoding": a.encoding, "segments": a.segments,
                       "cost_eur": a.cost_eur(price)}
    return facts


def _sms_texts(content: dict[str, dict[str, str]]) -> dict[str, str]:
    return {lang: entry["sms"] for lang, entry in content.items()}


def _estimate(checked: _Checked, recipients: list[Recipient], price: Decimal
              ) -> dict[str, Any]:
    by_lang: dict[str, Counter[str]] = {"sms": Counter(), "email": Counter()}
    for r in recipients:
        by_lang[r.channel][r.language] += 1
    facts = _sms_facts(_sms_texts(checked.content), price)
    cost = sum((facts[lang]["cost_eur"] * n for lang, n in by_lang["sms"].items()), Decimal(0))
    return {
        "area_name": checked.area_name,
        "area_km2": round(area_km2(checked.area), 3),
        "recipients": {c: sum(by_lang[c].values()) for c in ("sms", "email")
                       if c in checked.channels},
        "by_language": {c: dict(by_lang[c]) for c in ("sms", "email") if c in checked.channels},
        "sms": {"encoding": ",".join(sorted({f["encoding"] for f in facts.values()})),
                "segments": max(f["segments"] for f in facts.values()),
                "by_language": {k: {"encoding": v["encoding"], "segments": v["segments"]}
                                for k, v in facts.items()},
                "cost_eur": float(cost.quantize(Decimal("0.001")))},
        "content": checked.content,
        "email_mode": rules.email_mode(checked.kind),
        "cap": {"msg_type": "Alert", "scope": rules.cap_scope(checked.kind)},
    }


def estimate_campaign(engine: Engine, req: CampaignRequest,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Recipients per channel and language, SMS segments and cost, before launch (F14, F17).

    Returns ``{"area_name", "area_km2", "recipients": {"sms": n, "email": n},
    "by_language": {"sms": {"fr": n}, "email": {…}}, "sms": {"encoding",
    "segments", "by_language", "cost_eur"}, "content": {lang: {field: text}}
    (the complete content that would be sent), "email_mode", "cap": {"msg_type",
    "scope"}}``. Raises ``CampaignInputError``.
    """
    settings = settings or get_settings()
    price = Decimal(settings.sms_segment_price_eur)
    with read_transaction(engine) as s:
        checked = _check(s, req, settings)
        recipients = resolve_recipients(s, checked)
    return _estimate(checked, recipients, price)


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
        "template_id": req.template_id or None, "expires_at": req.expires_at,
        "cap_identifier": f"BE-TOCSIN-{checked.authority.id}-{now:%Y%m%d%H%M%S}-"
                          f"{campaign_id[:8]}",
        "sms_source": settings.sms_source, "mail_from": settings.mail_from,
        "created_by": req.created_by, "created_at": now,
    }
    values.update(extra)
    return Campaign(**values)


def _fan_out(s: Session, campaign: Campaign, authority: Authority, area: BaseGeometry,
             recipients: list[Recipient], settings: Settings, now: dt.datetime) -> int:
    """Publish the CAP (when a channel) and write one queued delivery per recipient.

    Returns the number of deliveries to recipients. Sets ``launched_at`` (the CAP
    ``sent``), ``fanout_done_at`` and status ``sending``. A published live public
    CAP is also queued for the CAP gateway's webhooks (``cap.gateway``).
    """
    from tocsin.cap.services import build_campaign_cap

    price = Decimal(settings.sms_segment_price_eur)
    campaign.launched_at = now
    campaign.status = "sending"
    if "cap" in campaign.channel_list:
        campaign.cap_xml = build_campaign_cap(campaign, authority, area,
                                              settings).decode("utf-8")
    s.add(campaign)
    s.flush()
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
    from tocsin.cap.gateway import webhook_delivery_rows

    hooks = webhook_delivery_rows(s, campaign, area)  # CAP gateway pushes (F24)
    if hooks:
        s.execute(sa.insert(table(Delivery)), hooks)
    campaign.fanout_done_at = utcnow()
    return len(rows)


def launch_campaign(engine: Engine, req: CampaignRequest,
                    settings: Settings | None = None, *, draft_id: str | None = None) -> str:
    """Check ``req``, then write the campaign, its deliveries and its CAP in one transaction.

    Every language of ``req.texts`` gets a complete ``campaign.content``. With
    ``req.scheduled_for`` the campaign is written ``scheduled`` instead: no
    deliveries and no CAP until ``fan_out_scheduled`` runs when it is due.
    ``draft_id`` (or ``req.draft_id``): the draft this launch replaces is deleted
    in the same transaction. Returns the campaign id. Raises
    ``CampaignInputError`` (nothing written). Deliveries are then sent by any
    running worker.
    """
    settings = settings or get_settings()
    draft_id = draft_id or req.draft_id
    if draft_id and req.draft_id != draft_id:
        req = _with(req, draft_id=draft_id)
    now = utcnow()
    with transaction(engine) as s:
        checked = _check(s, req, settings, now)
        scheduled = req.scheduled_for is not None
        campaign = _new_campaign(
            checked, req, settings, now,
            status="scheduled" if scheduled else "sending",
            scheduled_for=req.scheduled_for.astimezone(dt.UTC)
            if req.scheduled_for is not None else None)
        if scheduled:
            if "cap" in checked.channels:
                # Build it once now so that a CAP problem is refused at scheduling time.
                from tocsin.cap.services import build_campaign_cap

                campaign.launched_at = campaign.scheduled_for
                build_campaign_cap(campaign, checked.authority, checked.area, settings)
                campaign.launched_at = None
            s.add(campaign)
            count = 0
        else:
            recipients = resolve_recipients(s, checked)
            count = _fan_out(s, campaign, checked.authority, checked.area, recipients,
                             settings, now)
        if draft_id:
            s.delete(_draft(s, draft_id, checked.authority.id))
        record_audit(s, req.created_by, "campaign.schedule" if scheduled else "campaign.launch",
                     target=campaign.id, source=req.source,
                     detail={"authority": checked.authority.id, "kind": checked.kind,
                             "environment": req.environment, "area": checked.area_name,
                             "channels": checked.channels, "recipients": count,
                             **({"scheduled_for": _iso(campaign.scheduled_for)}
                                if scheduled else {}),
                             **({"template_id": req.template_id} if req.template_id else {}),
                             **({"draft_id": draft_id} if draft_id else {})})
        return campaign.id


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
        recipients = _recipients_in_area(s, area, authority, campaign.channel_list,
                                         list(campaign.texts), campaign.kind)
        count = _fan_out(s, campaign, authority, area, recipients, settings, now)
        record_audit(s, "system", "campaign.launch", target=campaign.id, source="scheduler",
                     detail={"authority": authority.id, "kind": campaign.kind,
                             "environment": campaign.environment, "area": campaign.area_name,
                             "channels": campaign.channel_list, "recipients": count,
                             "scheduled_for": _iso(campaign.scheduled_for)})
        return count


def due_scheduled(engine: Engine, now: dt.datetime | None = None, limit: int = 100) -> list[str]:
    """Ids of scheduled campaigns whose time has come, the earliest first."""
    now = now or utcnow()
    with transaction(engine) as s:
        return list(s.scalars(
            sa.select(Campaign.id)
            .where(Campaign.status == "scheduled", Campaign.scheduled_for <= now)
            .order_by(Campaign.scheduled_for, Campaign.id).limit(limit)))


# ----------------------------------------------------------------------------- lifecycle


def _original(s: Session, campaign_id: str, authority_id: str | None,
              action: str) -> tuple[Campaign, Authority]:
    """The campaign an update / all-clear / cancel acts on, locked, with checks."""
    q = sa.select(Campaign).where(Campaign.id == str(campaign_id).strip())
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    c = s.scalars(q).first()
    if c is None or (authority_id is not None and c.authority_id != authority_id):
        raise CampaignNotFound("campaign_id", f"no campaign {campaign_id!r} of this authority")
    if c.status == "draft":
        raise CampaignInputError("campaign_id", f"campaign {c.id} is a draft: launch it first")
    if c.status == "cancelled":
        raise CampaignInputError("campaign_id", f"campaign {c.id} is cancelled")
    if c.msg_type == "Cancel":
        raise CampaignInputError("campaign_id", f"campaign {c.id} is a cancellation")
    if c.status == "scheduled" and action != "cancel":
        raise CampaignInputError("campaign_id", f"campaign {c.id} has not been sent yet "
                                                "(scheduled): cancel it and schedule again")
    authority = s.get(Authority, c.authority_id)
    assert authority is not None
    return c, authority


def _thread(s: Session, campaign: Campaign) -> list[str]:
    """Ids of the campaign, the alert it follows up and every update of that alert."""
    root = campaign
    while root.references_id:
        parent = s.get(Campaign, root.references_id)
        if parent is None:
            break
        root = parent
    ids, frontier = [root.id], [root.id]
    while frontier:
        frontier = list(s.scalars(sa.select(Campaign.id).where(
            Campaign.references_id.in_(frontier), Campaign.id.not_in(ids))))
        ids += frontier
    return ids


def _cap_references(original: Campaign) -> str:
    """CAP ``references`` of a message about ``original``: what it referenced, then itself."""
    from tocsin.cap.build import reference_of

    assert original.cap_xml is not None
    own = ",".join(reference_of(original.cap_xml))
    earlier = (original.cap_references or "").split()
    return " ".join([*[x for x in earlier if x != own], own])


def _follow_up(s: Session, original: Campaign, authority: Authority, req: CampaignRequest,
               settings: Settings, now: dt.datetime, action: str) -> tuple[Campaign, int]:
    """Write an Update (``action`` update or all_clear) of ``original`` and its deliveries."""
    kind = req.kind or original.kind
    req = _with(req, environment=req.environment or original.environment)
    if req.environment != original.environment:
        raise CampaignInputError("environment", f"the original is a {original.environment} "
                                                f"campaign; its update must be too")
    if req.scheduled_for is not None:
        raise CampaignInputError("scheduled_for", "an update is sent now")
    _check_times(req, now)
    channels_req = list(req.channels) or original.channel_list
    if original.cap_xml is not None and "cap" not in channels_req:
        # Panels still show the original: they must get the update.
        channels_req = [*channels_req, "cap"]
    if "cap" in channels_req and original.cap_xml is None:
        raise CampaignInputError("channels", "the original published no CAP alert, so a CAP "
                                             "Update cannot reference it (remove cap)")
    req = _with(req, channels=channels_req, authority_id=original.authority_id)
    _, channels, texts = _check_common(s, req, settings, kind)
    located = _check_area(s, req, authority, optional=True)
    original_area = shape(json.loads(original.area))
    if located is None or action == "all_clear":
        area, name, nis = original_area, original.area_name, original.area_nis
    else:
        area, name, nis = located
    base, content, sms_fields = _complete(authority, req, kind, texts, name, now, settings,
                                          action=action)
    checked = _Checked(authority, area, name, nis, base, channels, content, kind, sms_fields)
    _check_sms(checked, settings)
    recipients = _recipients_of(s, _thread(s, original), authority, channels, list(base),
                                kind)
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
        cap_references=_cap_references(original) if "cap" in channels else None,
        response_type="AllClear" if action == "all_clear" else None,
        expires_at=req.expires_at or original.expires_at)
    count = _fan_out(s, campaign, authority, area, recipients, settings, now)
    return campaign, count


def update_campaign(engine: Engine, original_id: str, req: CampaignRequest,
                    settings: Settings | None = None) -> str:
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
    new campaign id. Raises ``CampaignInputError``.
    """
    settings = settings or get_settings()
    now = utcnow()
    with transaction(engine) as s:
        original, authority = _original(s, original_id, req.authority_id or None, "update")
        campaign, count = _follow_up(s, original, authority, req, settings, now, "update")
        record_audit(s, req.created_by, "campaign.update", target=campaign.id,
                     source=req.source,
                     detail={"references": original.id, "authority": authority.id,
                             "area": campaign.area_name, "channels": campaign.channel_list,
                             "recipients": count})
        return campaign.id


def all_clear(engine: Engine, original_id: str, req: CampaignRequest,
              settings: Settings | None = None) -> str:
    """Send the all-clear of a campaign: a CAP ``Update`` with ``responseType`` AllClear.

    Sent to the original's recipients only, on the original's channels unless
    ``req.channels`` says otherwise. ``req.texts`` empty: ``rules.ALL_CLEAR_TEXT``
    in each language of the original. One transaction; returns the new campaign
    id. Raises ``CampaignInputError``.
    """
    settings = settings or get_settings()
    now = utcnow()
    with transaction(engine) as s:
        original, authority = _original(s, original_id, req.authority_id or None,
                                        "all_clear")
        texts = req.texts or {lang: rules.ALL_CLEAR_TEXT[lang] for lang in original.texts}
        channels = req.channels or original.channel_list
        req = _with(req, texts=texts, channels=channels, area_geojson=None,
                    municipality_nis=None)
        campaign, count = _follow_up(s, original, authority, req, settings, now, "all_clear")
        record_audit(s, req.created_by, "campaign.all_clear", target=campaign.id,
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


def cancel_campaign(engine: Engine, campaign_id: str, actor: str, *,
                    authority_id: str | None = None, source: str = "cli",
                    settings: Settings | None = None) -> dict[str, Any]:
    """Cancel a campaign (SPEC F19): stop what is not sent, publish a CAP ``Cancel``.

    Deliveries still ``queued`` become ``stopped`` (those ``in_flight`` finish);
    the status becomes ``cancelled``. When the original published CAP, a new
    campaign row (msgType Cancel, channel cap, no deliveries) carries the CAP
    Cancel whose ``references`` name it. A scheduled campaign just stops: it
    never sent or published anything. ``authority_id`` (``None`` = any, the
    CLI) must own the campaign. One transaction. Returns ``{"campaign_id",
    "stopped", "cancel_campaign_id" (or None), "cap_identifier" (or None)}``.
    Raises ``CampaignInputError``.
    """
    settings = settings or get_settings()
    now = utcnow()
    d = table(Delivery)
    with transaction(engine) as s:
        original, authority = _original(s, campaign_id, authority_id, "cancel")
        result = s.execute(
            sa.update(d).where(d.c.campaign_id == original.id, d.c.state == QUEUED)
            .values(state=STOPPED, final_at=now, lease_until=None,
                    error=f"cancelled by {actor}"[:500]))
        stopped = int(getattr(result, "rowcount", 0) or 0)
        was = original.status
        original.status = "cancelled"
        original.finished_at = now
        cancel_id: str | None = None
        cap_identifier: str | None = None
        if original.cap_xml is not None:
            texts = {lang: _CANCEL_TEXT.get(lang, _CANCEL_TEXT["en"])
                     for lang in original.texts}
            try:
                content = complete_content(
                    texts, {}, original.kind, original.area_name, now,
                    authority_name={x: authority.name(x) for x in rules.LANGUAGES},
                    cap_event=(original.cap_params or {}).get("event"), action="cancel")
            except ContentError as exc:  # pragma: no cover - fixed texts
                raise CampaignInputError(exc.field, exc.reason) from None
            for lang, entry in content.items():
                entry["cap_event"] = ((original.content or {}).get(lang) or {}).get(
                    "cap_event") or entry["cap_event"]
            cancel_id = uuid.uuid4().hex
            cancel = Campaign(
                id=cancel_id, authority_id=original.authority_id, kind=original.kind,
                environment=original.environment, status="finished",
                priority=original.priority, channels="cap",
                texts={lang: e["cap_description"] for lang, e in content.items()},
                content=content, area=original.area, area_name=original.area_name,
                area_nis=original.area_nis, cap_params=dict(original.cap_params or {}),
                msg_type="Cancel", scope=original.scope, references_id=original.id,
                cap_references=_cap_references(original),
                cap_identifier=f"BE-TOCSIN-{original.authority_id}-{now:%Y%m%d%H%M%S}-"
                               f"{cancel_id[:8]}",
                sms_source=original.sms_source, mail_from=original.mail_from,
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
                             "stopped": stopped, "cap_cancel": cap_identifier})
        return {"campaign_id": original.id, "stopped": stopped,
                "cancel_campaign_id": cancel_id, "cap_identifier": cap_identifier}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_report(engine: Engine, campaign_id: str,
                    settings: Settings | None = None) -> dict[str, Any]:
    """Progress and final report of a campaign (SPEC F26). Raises ``LookupError``.

    Shape: ``{"campaign_id", "cap_identifier", "environment", "kind", "status"
    (scheduled | sending | finished | cancelled | draft), "authority_id",
    "area_name", "texts", "launched_at", "scheduled_for", "expires_at",
    "msg_type" (Alert | Update | Cancel), "references_id", "response_type",
    "channels": {"sms": {"recipients", "segments", "cost_eur", "first_sent_at",
    "last_sent_at", "throughput_per_s", "by_status", "by_language"}, "email":
    {…}, "cap": {"published", "url"}}}``. Times are RFC 3339 UTC. Costs count
    messages accepted by the provider; simulation campaigns are never billed
    (``billed_eur`` 0, SPEC F27/F29).
    """
    settings = settings or get_settings()
    d = table(Delivery)
    with read_transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            raise LookupError(f"campaign {campaign_id!r} not found")
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
        sums = s.execute(
            sa.select(d.c.channel, sa.func.count(d.c.sent_at), sa.func.min(d.c.sent_at),
                      sa.func.max(d.c.sent_at),
                      sa.func.sum(sa.case((d.c.sent_at.is_not(None), d.c.segments), else_=0)),
                      sa.func.sum(sa.case((d.c.sent_at.is_not(None), d.c.cost_eur), else_=0)))
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel)
        ).all()
    channels: dict[str, Any] = {}
    open_states = {QUEUED, IN_FLIGHT}
    busy = awaiting = False
    for name in c.channel_list:
        if name == "cap":
            prefix = "" if c.environment == "live" else "/simulation"
            channels["cap"] = {
                "published": c.cap_xml is not None,
                "url": f"{settings.public_base_url}{prefix}/cap/{c.cap_identifier}.xml",
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
            entry["first_sent_at"], entry["last_sent_at"] = _iso(first), _iso(last)
            span = (last - first).total_seconds() if first and last else 0.0
            entry["throughput_per_s"] = round(count / span, 1) if span > 0 else float(count)
            if name == "sms":
                entry["segments"] = int(segments or 0)
            entry["cost_eur"] = float(Decimal(cost or 0).quantize(Decimal("0.001")))
            if name == "sms" and statuses.get(SENT) and last is not None and (
                    utcnow() - last).total_seconds() < RECEIPT_GRACE_SECONDS:
                awaiting = True
        entry["billed_eur"] = entry["cost_eur"] if c.environment == "live" else 0.0
        entry["final"] = sum(n for st, n in statuses.items() if st in FINAL_STATES)
        entry["failure_reasons"] = {(err or "unknown"): n for ch, err, n in reasons
                                    if ch == name}
        busy = busy or any(statuses.get(st) for st in open_states)
        channels[name] = entry
    status = "sending" if busy or awaiting else "finished"
    if c.status in ("cancelled", "scheduled", "draft"):
        status = c.status
    elif status == "finished" and c.status != "finished":
        # Record the end once, so lists need not recompute every campaign's progress.
        with transaction(engine) as s:
            s.execute(sa.update(Campaign).where(Campaign.id == c.id,
                                                Campaign.status == "sending")
                      .values(status="finished", finished_at=utcnow()))
    failed = sum(n for ch in channels.values() for n in ch.get("failure_reasons", {}).values())
    return {
        "campaign_id": c.id, "cap_identifier": c.cap_identifier, "environment": c.environment,
        "kind": c.kind, "status": status, "failed": failed, "authority_id": c.authority_id,
        "area_name": c.area_name, "texts": c.texts, "launched_at": _iso(c.launched_at),
        "scheduled_for": _iso(c.scheduled_for), "expires_at": _iso(c.expires_at),
        "msg_type": c.msg_type, "references_id": c.references_id,
        "response_type": c.response_type, "channels": channels,
    }


def _failed_state(d: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(d.c.state == "failed", d.c.state == "expired")


def list_campaigns(engine: Engine, authority_id: str | None,
                   environment: str) -> list[dict[str, Any]]:
    """Campaigns of an authority (all when ``None``) in one environment, newest first."""
    d = table(Delivery)
    with read_transaction(engine) as s:
        q = sa.select(Campaign).where(Campaign.environment == environment)
        if authority_id is not None:
            q = q.where(Campaign.authority_id == authority_id)
        campaigns = s.scalars(q.order_by(Campaign.created_at.desc()).limit(200)).all()
        counts: dict[str, int] = dict(s.execute(
            sa.select(d.c.campaign_id, sa.func.count())
            .where(d.c.campaign_id.in_([c.id for c in campaigns])).group_by(d.c.campaign_id)
        ).all()) if campaigns else {}
        return [{"campaign_id": c.id, "kind": c.kind, "status": c.status,
                 "msg_type": c.msg_type, "references_id": c.references_id,
                 "scheduled_for": _iso(c.scheduled_for),
                 "area_name": c.area_name, "created_at": _iso(c.created_at),
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
