"""Campaign use cases: check, estimate, launch, report (SPEC F12–F17, F19, F26).

The web routes and the CLI build the same ``CampaignRequest`` and call the same
functions here. ``launch_campaign`` writes the campaign, every delivery and the
published CAP in one transaction: once it returns, the alert is accepted and
nothing can lose it; any error before that leaves nothing written.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.models import Authority
from tocsin.authorities.services import record_audit
from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.core.db import table, transaction, utcnow
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import FINAL_STATES, IN_FLIGHT, QUEUED, SENT, Delivery
from tocsin.geo.areas import AreaError, area_km2, clip_to_territory, parse_area_geojson
from tocsin.geo.areas import municipality_area as _municipality_area
from tocsin.geo.spatial import subscribers_in_area
from tocsin.messages.sms import analyse
from tocsin.subscribers.models import ContactPoint, Subscriber

RECEIPT_GRACE_SECONDS = 60.0
_BATCH = 10_000


class CampaignInputError(ValueError):
    """Bad campaign input: ``field`` names what is wrong (``text.de``, ``area``…) and
    ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class CampaignRequest:
    """What an operator asks for. ``texts``: language -> text, in the order given."""

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


@dataclass
class _Checked:
    authority: Authority
    area: BaseGeometry
    area_name: str
    area_nis: str | None
    texts: dict[str, str]
    channels: list[str]


@dataclass
class Recipient:
    channel: str
    address: str
    language: str


def _check(session: Session, req: CampaignRequest, settings: Settings) -> _Checked:
    authority = session.get(Authority, str(req.authority_id).strip())
    if authority is None:
        raise CampaignInputError("authority", f"unknown authority {req.authority_id!r}")
    if req.kind not in rules.KINDS:
        raise CampaignInputError("kind", f"{req.kind!r} is not one of {', '.join(rules.KINDS)}")
    if req.environment not in rules.ENVIRONMENTS:
        raise CampaignInputError("environment", f"{req.environment!r} is not simulation or live")
    channels = [c.strip() for c in req.channels if c.strip()]
    if not channels:
        raise CampaignInputError("channels", "choose at least one channel (sms, email, cap)")
    for c in channels:
        if c not in rules.CHANNELS:
            raise CampaignInputError("channels", f"unknown channel {c!r} (sms, email, cap)")
    channels = list(dict.fromkeys(channels))
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
        bad = next((ch for ch in text if _forbidden_char(ch)), None)
        if bad is not None:
            raise CampaignInputError(f"text.{lang}", f"contains the control character "
                                                     f"U+{ord(bad):04X}, which cannot be sent")
    if "sms" in channels:
        for lang, text in texts.items():
            try:
                segments = analyse(text).segments
            except ValueError as exc:
                raise CampaignInputError(f"text.{lang}",
                                         str(exc).removeprefix("text: ")) from None
            if segments > settings.sms_max_segments:
                raise CampaignInputError(
                    f"text.{lang}", f"the SMS would need {segments} segments; at most "
                    f"{settings.sms_max_segments} are allowed (shorten the text)")
    _check_cap_params(req.cap)
    if req.environment == "live":
        missing = [c for c, url in (("sms", settings.smpp_url), ("email", settings.smtp_url))
                   if c in channels and not url.strip()]
        if missing:
            env = {"sms": "TOCSIN_SMPP_URL", "email": "TOCSIN_SMTP_URL"}
            raise CampaignInputError(
                "channels", "no live provider configured for "
                + ", ".join(f"{c} ({env[c]})" for c in missing)
                + "; use the simulation environment or configure the provider")
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
    return _Checked(authority, area, name, nis, texts, channels)


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


def resolve_recipients(session: Session, checked: _Checked) -> list[Recipient]:
    """One recipient per distinct phone number and e-mail address with an address in the area.

    Each gets their own language if a text exists in it, else the authority's
    languages in order, else the first text (``rules.choose_language``). A
    contact point shared by several subscribers gets the language of the first
    subscriber imported (lowest id). Only verified contact points (SPEC F8).
    """
    ids = subscribers_in_area(session, checked.area)
    channel_of = {"mobile": "sms", "email": "email"}
    wanted = [k for k, c in channel_of.items() if c in checked.channels]
    if not ids or not wanted:
        return []
    langs = checked.authority.language_list
    order = list(checked.texts)
    seen: set[tuple[str, str]] = set()
    out: list[Recipient] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        rows = session.execute(
            sa.select(ContactPoint.kind, ContactPoint.value, Subscriber.language)
            .join(Subscriber, Subscriber.id == ContactPoint.subscriber_id)
            .where(ContactPoint.subscriber_id.in_(chunk), ContactPoint.kind.in_(wanted),
                   ContactPoint.verified_at.is_not(None))
            .order_by(ContactPoint.subscriber_id, ContactPoint.id)
        ).all()
        for kind, value, language in rows:
            key = (channel_of[kind], value)
            if key in seen:
                continue
            seen.add(key)
            out.append(Recipient(key[0], value, rules.choose_language(language, langs, order)))
    return out


def _sms_facts(texts: dict[str, str], price: Decimal) -> dict[str, dict[str, Any]]:
    facts = {}
    for lang, text in texts.items():
        a = analyse(text)
        facts[lang] = {"encoding": a.encoding, "segments": a.segments,
                       "cost_eur": a.cost_eur(price)}
    return facts


def estimate_campaign(engine: Engine, req: CampaignRequest,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Recipients per channel and language, SMS segments and cost, before launch (F14, F17).

    Returns ``{"area_name", "area_km2", "recipients": {"sms": n, "email": n},
    "by_language": {"sms": {"fr": n}, "email": {…}}, "sms": {"encoding",
    "segments", "cost_eur"}}``. Raises ``CampaignInputError``.
    """
    settings = settings or get_settings()
    price = Decimal(settings.sms_segment_price_eur)
    with transaction(engine) as s:
        checked = _check(s, req, settings)
        recipients = resolve_recipients(s, checked)
    by_lang: dict[str, Counter[str]] = {"sms": Counter(), "email": Counter()}
    for r in recipients:
        by_lang[r.channel][r.language] += 1
    facts = _sms_facts(checked.texts, price)
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
    }


def launch_campaign(engine: Engine, req: CampaignRequest,
                    settings: Settings | None = None) -> str:
    """Check ``req``, then write the campaign, its deliveries and its CAP in one transaction.

    Returns the campaign id. Raises ``CampaignInputError`` (nothing written).
    Deliveries are then sent by any running worker.
    """
    from tocsin.cap.services import build_campaign_cap

    settings = settings or get_settings()
    price = Decimal(settings.sms_segment_price_eur)
    campaign_id = uuid.uuid4().hex
    now = utcnow()
    with transaction(engine) as s:
        checked = _check(s, req, settings)
        recipients = resolve_recipients(s, checked)
        campaign = Campaign(
            id=campaign_id, authority_id=checked.authority.id, kind=req.kind,
            environment=req.environment, status="sending", priority=rules.PRIORITY[req.kind],
            channels=",".join(checked.channels), texts=checked.texts,
            area=json.dumps(mapping(checked.area)), area_name=checked.area_name,
            area_nis=checked.area_nis,
            cap_params={**rules.CAP_DEFAULTS, "event": req.kind.capitalize(),
                        **{k: v for k, v in req.cap.items() if v}},
            cap_identifier=f"BE-TOCSIN-{checked.authority.id}-{now:%Y%m%d%H%M%S}-"
                           f"{campaign_id[:8]}",
            sms_source=settings.sms_source, mail_from=settings.mail_from,
            created_by=req.created_by, created_at=now, launched_at=now,
        )
        if "cap" in checked.channels:
            campaign.cap_xml = build_campaign_cap(campaign, checked.authority, checked.area,
                                                  settings).decode("utf-8")
        s.add(campaign)
        s.flush()
        facts = _sms_facts(checked.texts, price)
        rows = [
            {"campaign_id": campaign_id, "channel": r.channel, "address": r.address,
             "language": r.language, "state": QUEUED, "priority": campaign.priority,
             "environment": req.environment, "attempts": 0,
             "segments": facts[r.language]["segments"] if r.channel == "sms" else 0,
             "cost_eur": facts[r.language]["cost_eur"] if r.channel == "sms" else Decimal(0)}
            for r in recipients
        ]
        for start in range(0, len(rows), _BATCH):
            s.execute(sa.insert(table(Delivery)), rows[start:start + _BATCH])
        campaign.fanout_done_at = utcnow()
        record_audit(s, req.created_by, "campaign.launch", target=campaign_id,
                     source=req.source,
                     detail={"authority": checked.authority.id, "kind": req.kind,
                             "environment": req.environment, "area": checked.area_name,
                             "channels": checked.channels, "recipients": len(rows)})
    return campaign_id


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_report(engine: Engine, campaign_id: str,
                    settings: Settings | None = None) -> dict[str, Any]:
    """Progress and final report of a campaign (SPEC F26). Raises ``LookupError``.

    Shape: ``{"campaign_id", "cap_identifier", "environment", "kind", "status"
    (sending | finished), "authority_id", "area_name", "texts", "launched_at",
    "channels": {"sms": {"recipients", "segments", "cost_eur", "first_sent_at",
    "last_sent_at", "throughput_per_s", "by_status", "by_language"}, "email":
    {…}, "cap": {"published", "url"}}}``. Times are RFC 3339 UTC. Costs count
    messages accepted by the provider; simulation campaigns are never billed
    (``billed_eur`` 0, SPEC F27/F29).
    """
    settings = settings or get_settings()
    d = table(Delivery)
    with transaction(engine) as s:
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
    if c.status == "cancelled":
        status = "cancelled"
    elif status == "finished" and c.status != "finished":
        # Record the end once, so lists need not recompute every campaign's progress.
        with transaction(engine) as s:
            s.execute(sa.update(Campaign).where(Campaign.id == c.id)
                      .values(status="finished", finished_at=utcnow()))
    failed = sum(n for ch in channels.values() for n in ch.get("failure_reasons", {}).values())
    return {
        "campaign_id": c.id, "cap_identifier": c.cap_identifier, "environment": c.environment,
        "kind": c.kind, "status": status, "failed": failed, "authority_id": c.authority_id,
        "area_name": c.area_name, "texts": c.texts, "launched_at": _iso(c.launched_at),
        "channels": channels,
    }


def _failed_state(d: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(d.c.state == "failed", d.c.state == "expired")


def list_campaigns(engine: Engine, authority_id: str | None,
                   environment: str) -> list[dict[str, Any]]:
    """Campaigns of an authority (all when ``None``) in one environment, newest first."""
    d = table(Delivery)
    with transaction(engine) as s:
        q = sa.select(Campaign).where(Campaign.environment == environment)
        if authority_id is not None:
            q = q.where(Campaign.authority_id == authority_id)
        campaigns = s.scalars(q.order_by(Campaign.created_at.desc()).limit(200)).all()
        counts: dict[str, int] = dict(s.execute(
            sa.select(d.c.campaign_id, sa.func.count())
            .where(d.c.campaign_id.in_([c.id for c in campaigns])).group_by(d.c.campaign_id)
        ).all()) if campaigns else {}
        return [{"campaign_id": c.id, "kind": c.kind, "status": c.status,
                 "area_name": c.area_name, "created_at": _iso(c.created_at),
                 "channels": c.channel_list, "recipients": counts.get(c.id, 0)}
                for c in campaigns]


def pending_counts(engine: Engine, campaign_id: str) -> dict[str, dict[str, int]]:
    """Deliveries of a campaign per channel and state (for progress displays)."""
    d = table(Delivery)
    out: dict[str, dict[str, int]] = {}
    with transaction(engine) as s:
        for ch, st, n in s.execute(
            sa.select(d.c.channel, d.c.state, sa.func.count())
            .where(d.c.campaign_id == campaign_id).group_by(d.c.channel, d.c.state)
        ):
            out.setdefault(ch, {})[st] = n
    return out
