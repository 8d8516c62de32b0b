"""Campaign use cases: check, estimate, launch, schedule, update, cancel, report
(SPEC F12–F17, F19, F26).

The web routes and the CLI build the same ``CampaignRequest`` and call the same
functions here. ``launch_campaign`` writes the campaign, every delivery and the
published CAP in one transaction: once it returns, the alert is accepted and
nothing can lose it; any error before that leaves nothing written. A campaign
scheduled for later is written with status ``scheduled`` and no deliveries and
no CAP; ``dispatch.scheduler`` fans it out when it is due (``fan_out_scheduled``).

Lifecycle (CAP 1.2 §3.2.1 msgType, SPEC F19):

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

Expiry: a message without ``expires_at`` gets ``rules.default_expires`` (by
kind, from its sending time); an update keeps its alert's expiry while more
than ``rules.UPDATE_KEEPS_EXPIRY`` of it is left. ``scheduled_for`` is at most
``rules.MAX_SCHEDULE_AHEAD`` ahead, ``expires_at`` at most
``rules.MAX_VALIDITY`` after sending.
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
    FIELD_MAX,
    SINGLE_LINE_FIELDS,
    TEXT_MAX,
    ContentError,
    check_fields,
    check_required_languages,
    check_text,
    complete_content,
    fill,
    language_name,
    local_time,
    text_label,
)
from tocsin.messages.sms import analyse
from tocsin.subscribers.models import ContactPoint, Subscriber

log = logging.getLogger(__name__)

RECEIPT_GRACE_SECONDS = 60.0
_BATCH = 10_000
#: The furthest ahead a campaign may be scheduled (``rules.MAX_SCHEDULE_AHEAD``).
MAX_SCHEDULE_AHEAD = rules.MAX_SCHEDULE_AHEAD


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
    ``expires`` (``None``: ``rules.default_expires``). ``template_id``: the
    template it was launched from, kept as provenance only while it exists
    (a deleted template never blocks an alert; the estimate warns).
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
    area_names: dict[str, str] = field(default_factory=dict)
    expires_at: dt.datetime | None = None
    template_id: str | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Recipient:
    """One delivery to make: ``language`` is the text they get, ``wanted`` their own
    language (``None`` unknown), ``subscriber`` the subscriber it was found through."""

    channel: str
    address: str
    language: str
    wanted: str | None = None
    subscriber: str | None = None


def _input_error(exc: ContentError) -> CampaignInputError:
    return CampaignInputError(exc.field, exc.reason)


def _check_text(field_name: str, text: str, limit: int, single_line: bool = False) -> None:
    try:
        check_text(field_name, text, limit, single_line=single_line)
    except ContentError as exc:
        raise _input_error(exc) from None


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
                                         "language")
    texts: dict[str, str] = {}
    for lang, text in req.texts.items():
        if lang not in rules.LANGUAGES:
            raise CampaignInputError(f"text.{lang}", f"unknown language {lang!r} "
                                                     f"(use {', '.join(rules.LANGUAGES)})")
        if not text or not text.strip():
            raise CampaignInputError(f"text.{lang}", f"{text_label(lang)} is empty")
        texts[lang] = text.strip()
    # Sizes first (a 10 MB text is refused before any other work), then characters.
    for lang, text in texts.items():
        _check_text(f"text.{lang}", text, TEXT_MAX)
    for lang, fields in (req.content or {}).items():
        if not isinstance(fields, dict):
            raise CampaignInputError(f"content.{lang}", "expected field -> text")
        for name, value in fields.items():
            if isinstance(value, str) and name in FIELD_MAX:
                _check_text(f"content.{lang}.{name}", value.strip(), FIELD_MAX[name],
                            single_line=name in SINGLE_LINE_FIELDS)
    try:
        check_fields(req.fields or {})
    except ContentError as exc:
        raise _input_error(exc) from None
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


def _check_area(session: Session, req: CampaignRequest, authority: Authority,
                optional: bool = False
                ) -> tuple[BaseGeometry, dict[str, str], str | None] | None:
    """The requested area clipped to the territory, its name per language
    (``_area_names``) and NIS code (a municipality).

    ``optional``: no area at all is allowed (returns ``None``), for an update.
    """
    if req.area_geojson is None and req.municipality_nis is None and optional:
        return None
    if (req.area_geojson is None) == (req.municipality_nis is None):
        raise CampaignInputError("area", "give exactly one of an area (GeoJSON) or a "
                                         "municipality (NIS code)")
    try:
        if req.municipality_nis is not None:
            area, _ = _municipality_area(session, req.municipality_nis,
                                         authority.language_list[0])
            nis: str | None = str(req.municipality_nis).strip()
        else:
            area = parse_area_geojson(req.area_geojson)  # type: ignore[arg-type]
            nis = None
        area = clip_to_territory(area, authority, field="municipality" if nis else "area")
    except AreaError as exc:
        raise CampaignInputError(exc.field, exc.reason) from None
    return area, _area_names(session, area, nis, authority), nis


def _complete(authority: Authority, req: CampaignRequest, kind: str, texts: dict[str, str],
              area_names: dict[str, str], when: dt.datetime, settings: Settings,
              action: str = "alert",
              events: dict[str, str] | None = None) -> tuple[dict[str, str],
                                                            dict[str, dict[str, str]],
                                                            dict[str, str]]:
    """Placeholders filled: (base texts, complete content, the field each SMS came from).

    ``area_names``: the area's name per language. ``events``: the CAP event per
    language to keep when the operator gives none (an update keeps its alert's).
    Raises ``CampaignInputError`` naming ``text.<lang>`` / ``content.<lang>.<field>``
    / ``cap.event`` for an unfilled placeholder, a text too long, a forbidden
    character or a line break in a one-line field.
    """
    names = {lang: authority.name(lang) for lang in rules.LANGUAGES}
    first = next(iter(area_names.values()), "")
    try:
        content = complete_content(texts, req.content, kind, area_names, when, req.fields,
                                   authority_name=names, cap_event=req.cap.get("event"),
                                   action=action)
        base = {lang: fill(text, {**req.fields, "area_name": area_names.get(lang) or first,
                                  "time": local_time(when)}, f"text.{lang}")
                for lang, text in texts.items()}
    except ContentError as exc:
        raise _input_error(exc) from None
    if events and not (req.cap.get("event") or "").strip():
        for lang, entry in content.items():
            if events.get(lang) and not ((req.content or {}).get(lang) or {}).get(
                    "cap_event", "").strip():
                entry["cap_event"] = events[lang]
    sms_field = {lang: (f"content.{lang}.sms" if ((req.content or {}).get(lang) or {})
                        .get("sms", "").strip() else f"text.{lang}") for lang in texts}
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



def _zoned(field: str, value: object) -> dt.datetime:
    """``value`` if it is a datetime with a time zone, else ``CampaignInputError(field)``."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise CampaignInputError(field, "needs a time zone (e.g. 2026-12-01T08:00+01:00)")
    return value

def _check_times(req: CampaignRequest, now: dt.datetime, kind: str,
                 default_expires: dt.datetime | None = None
                 ) -> tuple[dt.datetime, dt.datetime]:
    """Check ``scheduled_for`` / ``expires_at``; returns ``(sending time, expires)``.

    ``scheduled_for`` after ``now`` and at most ``rules.MAX_SCHEDULE_AHEAD`` ahead;
    ``expires_at`` after the sending time and at most ``rules.MAX_VALIDITY`` after
    it. No ``expires_at``: ``default_expires`` when given and still after the
    sending time, else ``rules.default_expires(kind, sending time)``.
    """
    when = now
    if req.scheduled_for is not None:
        at = _zoned("scheduled_for", req.scheduled_for)
        if at <= now:
            raise CampaignInputError(
                "scheduled_for", f"{at.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M} "
                f"(Europe/Brussels) is in the past; send now or choose a later time")
        if at - now > rules.MAX_SCHEDULE_AHEAD:
            raise CampaignInputError(
                "scheduled_for", f"{_local(at)} (Europe/Brussels) is more than "
                f"{rules.MAX_SCHEDULE_AHEAD.days} days ahead; choose an earlier time")
        when = at.astimezone(dt.UTC)
    if req.expires_at is not None:
        exp = _zoned("expires_at", req.expires_at)
        if exp <= when:
            raise CampaignInputError(
                "expires_at", f"{_local(exp)} (Europe/Brussels) is not after the sending "
                f"time {_local(when)}")
        if exp - when > rules.MAX_VALIDITY:
            raise CampaignInputError(
                "expires_at", f"{_local(exp)} (Europe/Brussels) is more than "
                f"{rules.MAX_VALIDITY.days} days after the sending time {_local(when)}; "
                "choose an earlier time")
        return when, exp.astimezone(dt.UTC)
    if default_expires is not None and default_expires > when:
        return when, default_expires
    return when, rules.default_expires(kind, when)


def _local(when: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM`` of an aware datetime in Europe/Brussels (as far as it goes)."""
    try:
        return f"{when.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M}"
    except OverflowError:  # pragma: no cover - parse_local_time refuses these
        return when.isoformat()


def _check(session: Session, req: CampaignRequest, settings: Settings,
           now: dt.datetime | None = None) -> _Checked:
    now = now or utcnow()
    authority, channels, texts = _check_common(session, req, settings, req.kind)
    when, expires = _check_times(req, now, req.kind)
    located = _check_area(session, req, authority)
    assert located is not None
    area, names, nis = located
    name = _first_name(names, authority)
    base, content, sms_fields = _complete(authority, req, req.kind, texts, names, when,
                                          settings)
    checked = _Checked(authority, area, name, nis, base, channels, content, req.kind,
                       sms_fields, {lang: names[lang] for lang in base}, expires)
    _check_sms(checked, settings)
    if req.template_id:
        checked.template_id = _template(session, req.template_id, authority.id)
        if checked.template_id is None:
            checked.warnings.append({
                "field": "template_id",
                "message": "The template this message was started from no longer exists; "
                           "the message is sent all the same, without a link to it"})
    if req.draft_id:
        _draft(session, req.draft_id, authority.id)
    return checked


def _first_name(names: dict[str, str], authority: Authority) -> str:
    """The area's name in the authority's first language: ``campaign.area_name``."""
    return names.get(authority.language_list[0]) or next(iter(names.values()), "")


def _template(session: Session, template_id: str, authority_id: str) -> str | None:
    """``template_id`` when this authority still has that template, else ``None``: a
    template is provenance only and never blocks an alert."""
    from tocsin.messages.models import MessageTemplate

    t = session.get(MessageTemplate, str(template_id))
    return t.id if t is not None and t.authority_id == authority_id else None


def _draft(session: Session, draft_id: str, authority_id: str) -> Campaign:
    c = session.get(Campaign, draft_id)
    if c is None or c.authority_id != authority_id or c.status != "draft":
        raise CampaignInputError("draft_id", f"no draft {draft_id!r} of this authority")
    return c


def _check_cap_params(cap: dict[str, str]) -> None:
    """CAP 1.2 §3.2.2 enumerations for the operator's optional CAP values."""
    from tocsin.cap.build import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES

    allowed = {"category": CATEGORIES, "urgency": URGENCIES, "severity": SEVERITIES,
               "certainty": CERTAINTIES}
    for key, value in cap.items():
        if key == "event":
            # Placeholders are filled (and checked) with the content: complete_content.
            if value:
                _check_text("cap.event", value.strip(), FIELD_MAX["cap_event"],
                            single_line=True)
            continue
        if key not in allowed:
            raise CampaignInputError(f"cap.{key}", "unknown CAP field (category, event, "
                                                   "urgency, severity, certainty)")
        if value and value not in allowed[key]:
            raise CampaignInputError(f"cap.{key}", f"{value!r} is not one of "
                                                   f"{', '.join(allowed[key])} (CAP 1.2)")


def _area_names(session: Session, area: BaseGeometry, nis: str | None,
                authority: Authority) -> dict[str, str]:
    """The area's name in every language (``rules.LANGUAGES``).

    A whole municipality (``nis``): its name in that language. A drawn area of a
    municipality: ``<its name> (zone)``; of a bigger authority: the
    municipalities it covers, named in that language (at most three, ``+N``
    more), or the authority's name when it covers none.
    """
    from tocsin.geo.areas import territory_of

    if nis is not None:
        m = session.get(Authority, nis)
        if m is not None:
            return {lang: m.name(lang) for lang in rules.LANGUAGES}
    if authority.kind == "municipality":
        return {lang: f"{authority.name(lang)} (zone)" for lang in rules.LANGUAGES}
    minx, miny, maxx, maxy = area.bounds
    covered = [m for m in session.scalars(sa.select(Authority).where(
        Authority.kind == "municipality", Authority.min_lon <= maxx,
        Authority.max_lon >= minx, Authority.min_lat <= maxy, Authority.max_lat >= miny))
        if territory_of(m).intersects(area)]
    out: dict[str, str] = {}
    for lang in rules.LANGUAGES:
        names = sorted(m.name(lang) for m in covered)
        out[lang] = (", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
                     if names else authority.name(lang))
    return out


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
            sa.select(ContactPoint.kind, ContactPoint.value, Subscriber.language,
                      Subscriber.id)
            .join(Subscriber, Subscriber.id == ContactPoint.subscriber_id)
            .where(ContactPoint.subscriber_id.in_(chunk), ContactPoint.kind.in_(wanted),
                   *_reachable(kind))
            .order_by(ContactPoint.subscriber_id, ContactPoint.id)
        ).all()
        for ckind, value, language, subscriber in rows:
            key = (_CHANNEL_OF[ckind], value)
            if key in seen:
                continue
            seen.add(key)
            out.append(Recipient(key[0], value,
                                 rules.choose_language(language, fallback, languages),
                                 language, str(subscriber)))
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


def _language_warnings(checked: _Checked, recipients: list[Recipient]) -> list[dict[str, str]]:
    """One warning per official language of the authority without a text, with how many
    recipients (people) who read it will get which language instead."""
    out: list[dict[str, str]] = []
    authority = checked.authority
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    for lang in authority.language_list:
        if lang in checked.texts or lang not in rules.LANGUAGES:
            continue
        instead = language_name(rules.choose_language(lang, fallback, list(checked.texts)))
        people = {r.subscriber or r.address for r in recipients if r.wanted == lang}
        name = language_name(lang)
        if people:
            n = len(people)
            message = (f"No {name} text: the {n} {name}-speaking recipient"
                       f"{'s' if n != 1 else ''} will get {instead}")
        else:
            message = (f"No {name} text, although {name} is an official language of "
                       f"{authority.name(lang)} (nobody in the area reads {name} now; "
                       f"they would get {instead})")
        out.append({"field": f"text.{lang}", "message": message})
    return out


def _estimate(checked: _Checked, recipients: list[Recipient], price: Decimal
              ) -> dict[str, Any]:
    by_lang: dict[str, Counter[str]] = {"sms": Counter(), "email": Counter()}
    for r in recipients:
        by_lang[r.channel][r.language] += 1
    facts = _sms_facts(_sms_texts(checked.content), price)
    cost = sum((facts[lang]["cost_eur"] * n for lang, n in by_lang["sms"].items()), Decimal(0))
    expires = checked.expires_at
    return {
        "area_name": checked.area_name,
        "area_names": checked.area_names,
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
        "expires_at": _iso(expires),
        "expires_local": _local(expires) if expires is not None else None,
        "warnings": _language_warnings(checked, recipients) + checked.warnings,
    }


def estimate_campaign(engine: Engine, req: CampaignRequest,
                      settings: Settings | None = None) -> dict[str, Any]:
    """Recipients per channel and language, SMS segments and cost, before launch (F14, F17).

    Returns ``{"area_name", "area_names": {lang: name}, "area_km2",
    "recipients": {"sms": n, "email": n}, "by_language": {"sms": {"fr": n},
    "email": {…}}, "sms": {"encoding", "segments", "by_language", "cost_eur"},
    "content": {lang: {field: text}} (the complete content that would be sent),
    "email_mode", "cap": {"msg_type", "scope"}, "expires_at" (RFC 3339 UTC, the
    given or default expiry), "expires_local" (``YYYY-MM-DD HH:MM``
    Europe/Brussels), "warnings": [{"field", "message"}]}``. Warnings never
    block a launch: an official language of the authority without a text (and
    how many recipients get which language instead), a template deleted since.
    Raises ``CampaignInputError``.
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
        "template_id": checked.template_id, "expires_at": checked.expires_at,
        "cap_identifier": f"BE-TOCSIN-{checked.authority.id}-{now:%Y%m%d%H%M%S}-"
                          f"{campaign_id[:8]}",
        "sms_source": settings.sms_source, "mail_from": settings.mail_from,
        "voice_caller": settings.voice_caller,
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
              action: str) -> tuple[Campaign, Authority]:
    """The campaign an update / all-clear / cancel acts on, with checks.

    ``campaign_id``: its id or CAP identifier. The chain's first message is
    locked first (PostgreSQL ``FOR UPDATE``), so two follow-ups of one chain
    never interleave. Refused: a draft, a chain with any message cancelled, a
    scheduled campaign (except to cancel it).
    """
    c = _find(s, campaign_id)
    if c is None or (authority_id is not None and c.authority_id != authority_id):
        raise CampaignNotFound("campaign_id", f"no campaign {campaign_id!r} of this authority")
    if s.get_bind().dialect.name == "postgresql":
        root = _root(s, c)
        s.execute(sa.select(Campaign.id).where(Campaign.id == root.id).with_for_update())
        s.refresh(c)
    if c.status == "draft":
        raise CampaignInputError("campaign_id", f"campaign {c.id} is a draft: launch it first")
    closed = next((m for m in _chain(s, c) if m.status == "cancelled"
                   or m.msg_type == "Cancel"), None)
    if closed is not None:
        which = "it" if closed.id == c.id else f"campaign {closed.id} of the same alert"
        verb = {"cancel": "cancelled again", "update": "updated",
                "all_clear": "given an all-clear"}.get(action, "changed")
        raise CampaignInputError(
            "campaign_id", f"campaign {c.id} is cancelled ({which} was cancelled): a "
            f"cancelled alert is closed and cannot be {verb}; send a new alert instead")
    if c.status == "scheduled" and action != "cancel":
        raise CampaignInputError("campaign_id", f"campaign {c.id} has not been sent yet "
                                                "(scheduled): cancel it and schedule again")
    authority = s.get(Authority, c.authority_id)
    assert authority is not None
    return c, authority


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
               settings: Settings, now: dt.datetime, action: str) -> tuple[Campaign, int]:
    """Write an Update (``action`` update or all_clear) of ``original`` and its deliveries."""
    kind = req.kind or original.kind
    req = _with(req, environment=req.environment or original.environment)
    if req.environment != original.environment:
        raise CampaignInputError("environment", f"the original is a {original.environment} "
                                                f"campaign; its update must be too")
    if req.scheduled_for is not None:
        raise CampaignInputError("scheduled_for", "an update is sent now")
    channels_req = list(req.channels) or original.channel_list
    if original.cap_xml is not None and "cap" not in channels_req:
        # Panels still show the original: they must get the update.
        channels_req = [*channels_req, "cap"]
    if "cap" in channels_req and original.cap_xml is None:
        raise CampaignInputError("channels", "the original published no CAP alert, so a CAP "
                                             "Update cannot reference it (remove cap)")
    req = _with(req, channels=channels_req, authority_id=original.authority_id)
    _, channels, texts = _check_common(s, req, settings, kind)
    keep = (original.expires_at if action == "update" and original.expires_at is not None
            and _aware(original.expires_at) - now > rules.UPDATE_KEEPS_EXPIRY else None)
    _, expires = _check_times(req, now, kind, _aware(keep) if keep is not None else None)
    located = _check_area(s, req, authority, optional=True)
    original_area = shape(json.loads(original.area))
    if located is None or action == "all_clear":
        area, nis = original_area, original.area_nis
        names = _area_names(s, area, nis, authority)
        names[authority.language_list[0]] = original.area_name
    else:
        area, names, nis = located
    name = _first_name(names, authority)
    # The alert's own CAP event (not its kind's default name) carries over to the chain.
    events = {lang: str(entry["cap_event"]) for lang, entry in (original.content or {}).items()
              if entry.get("cap_event")
              and entry["cap_event"] != rules.kind_label(original.kind, lang).capitalize()}
    base, content, sms_fields = _complete(authority, req, kind, texts, names, now, settings,
                                          action=action, events=events)
    checked = _Checked(authority, area, name, nis, base, channels, content, kind, sms_fields,
                       {lang: names[lang] for lang in base}, expires)
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
        cap_references=_cap_references(s, original) if "cap" in channels else None,
        response_type="AllClear" if action == "all_clear" else None,
        template_id=None)
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
    """Cancel a campaign and its whole chain (SPEC F19): stop what is not sent, publish
    a CAP ``Cancel``.

    ``campaign_id``: its id or CAP identifier; any message of a chain (the
    alert, an update, an all-clear) cancels the chain. Every delivery of the
    chain still ``queued`` becomes ``stopped`` (those ``in_flight`` finish);
    every message's status becomes ``cancelled``. When any message of the chain
    published CAP, a new campaign row (msgType Cancel, channel cap, no
    deliveries, ``references_id`` = ``campaign_id``) carries the CAP Cancel whose
    ``references`` name every published message of the chain. A scheduled
    campaign just stops: it never sent or published anything. ``authority_id``
    (``None`` = any, the CLI) must own the campaign. One transaction. Returns
    ``{"campaign_id", "stopped" (deliveries of the whole chain),
    "cancel_campaign_id" (or None), "cap_identifier" (or None)}``. Raises
    ``CampaignInputError`` (a chain already cancelled is closed).
    """
    settings = settings or get_settings()
    now = utcnow()
    d = table(Delivery)
    with transaction(engine) as s:
        original, authority = _original(s, campaign_id, authority_id, "cancel")
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
        return {"campaign_id": original.id, "stopped": stopped,
                "cancel_campaign_id": cancel_id, "cap_identifier": cap_identifier}


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
                    "launched_at": _iso(c.launched_at), "status": c.status}
                   for c in sorted(members, key=_sent_order)]
            for root, members in out.items()}


def campaign_report(engine: Engine, campaign_id: str,
                    settings: Settings | None = None) -> dict[str, Any]:
    """Progress and final report of a campaign (SPEC F26). Raises ``LookupError``.

    Shape: ``{"campaign_id", "cap_identifier", "environment", "kind", "status"
    (scheduled | sending | finished | cancelled | draft), "authority_id",
    "area_name", "texts", "launched_at", "scheduled_for", "expires_at",
    "msg_type" (Alert | Update | Cancel), "references_id", "response_type"
    (AllClear or None), "label" (``message_label``: Alert | Update | All clear |
    Cancel), "follow_ups" (on a chain's first message: every later message of
    the chain, oldest first, ``[{"campaign_id", "msg_type", "response_type",
    "label", "launched_at", "status"}]``; ``[]`` on the others), "chain" (on
    every message: ``{"root_id", "latest_id" (the chain's latest message that is
    not a cancellation), "latest_label", "latest_launched_at", "all_cleared"}``), "channels":
    {"sms": {"recipients", "segments", "cost_eur", "first_sent_at",
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
        follow_ups = (_follow_ups(s, [c.id])[c.id] if c.references_id is None else [])
        members = [m for m in _chain(s, c) if m.msg_type != "Cancel"]
        latest = members[-1] if members else c
        chain = {"root_id": members[0].id if members else c.id, "latest_id": latest.id,
                 "latest_label": message_label(latest.msg_type, latest.response_type),
                 "latest_launched_at": _iso(latest.launched_at),
                 "all_cleared": any(m.response_type == "AllClear" for m in members)}
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
        "msg_type": c.msg_type or "Alert", "references_id": c.references_id,
        "response_type": c.response_type, "label": message_label(c.msg_type, c.response_type),
        "follow_ups": follow_ups, "chain": chain, "channels": channels,
    }


def _failed_state(d: sa.Table) -> sa.ColumnElement[bool]:
    return sa.or_(d.c.state == "failed", d.c.state == "expired")


def list_campaigns(engine: Engine, authority_id: str | None,
                   environment: str) -> list[dict[str, Any]]:
    """Campaigns of an authority (all when ``None``) in one environment, newest first
    (at most 200).

    Each: ``{"campaign_id", "kind", "status", "msg_type", "response_type",
    "references_id", "label" (Alert | Update | All clear | Cancel),
    "follow_ups" (on a chain's first message, as in ``campaign_report``; ``[]``
    on the others), "scheduled_for", "expires_at", "area_name", "created_at",
    "launched_at", "channels", "recipients"}``.
    """
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
        follow_ups = _follow_ups(s, [c.id for c in campaigns if c.references_id is None])
        return [{"campaign_id": c.id, "kind": c.kind, "status": c.status,
                 "msg_type": c.msg_type or "Alert", "response_type": c.response_type,
                 "references_id": c.references_id,
                 "label": message_label(c.msg_type, c.response_type),
                 "follow_ups": follow_ups.get(c.id, []),
                 "scheduled_for": _iso(c.scheduled_for), "expires_at": _iso(c.expires_at),
                 "area_name": c.area_name, "created_at": _iso(c.created_at),
                 "launched_at": _iso(c.launched_at),
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
