"""Targeting and estimates: who an area reaches, per channel and language (SPEC F12, F14).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials
from tocsin.authorities.models import Authority
from tocsin.campaigns import rules
from tocsin.campaigns.checks import CampaignRequest, _check, _Checked, _local
from tocsin.core.db import iso_utc, read_transaction, table
from tocsin.core.errors import warning
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import Delivery
from tocsin.geo.areas import area_km2
from tocsin.geo.cellmodel import SYNTHETIC_LABEL, CellModel
from tocsin.geo.services import cell_model
from tocsin.geo.spatial import subscribers_in_area
from tocsin.messages.content import (
    language_name,
)
from tocsin.messages.sms import analyse
from tocsin.subscribers.models import ContactPoint, Subscriber
from tocsin.subscribers.portal_models import SubscriberProfile, chosen_channels

_BATCH = 10_000



@dataclass
class Recipient:
    """One delivery to make: ``language`` is the text they get, ``wanted`` their own
    language (``None`` unknown), ``subscriber`` the subscriber it was found through."""

    channel: str
    address: str
    language: str
    wanted: str | None = None
    subscriber: str | None = None


_CHANNEL_OF = {"mobile": "sms", "email": "email"}
_KIND_OF = {"sms": "mobile", "email": "email"}
#: Contact point kinds a voice call reaches: landlines, and mobiles chosen for voice.
VOICE_KINDS = ("landline", "mobile")


def _wanted_kinds(channels: list[str]) -> list[str]:
    kinds = [k for k, c in _CHANNEL_OF.items() if c in channels]
    if "voice" in channels:
        kinds += [k for k in VOICE_KINDS if k not in kinds]
    return kinds


def _channels_of(kind: str, voice: bool, channels: list[str]) -> list[str]:
    """The chosen channels a contact point of ``kind`` takes (a mobile: SMS, and voice
    when its subscriber chose calls on it; a landline: voice only)."""
    out = [c for c in (_CHANNEL_OF.get(kind),) if c is not None and c in channels]
    if "voice" in channels and (kind == "landline" or (kind == "mobile" and voice)):
        out.append("voice")
    return out


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
    wanted = _wanted_kinds(channels)
    if not ids or not wanted:
        return []
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    seen: set[tuple[str, str]] = set()
    out: list[Recipient] = []
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        rows = session.execute(
            sa.select(ContactPoint.kind, ContactPoint.value, Subscriber.language,
                      Subscriber.id, ContactPoint.voice, SubscriberProfile.channels)
            .join(Subscriber, Subscriber.id == ContactPoint.subscriber_id)
            .outerjoin(SubscriberProfile, SubscriberProfile.subscriber_id == Subscriber.id)
            .where(ContactPoint.subscriber_id.in_(chunk), ContactPoint.kind.in_(wanted),
                   *_reachable(kind))
            .order_by(ContactPoint.subscriber_id, ContactPoint.id)
        ).all()
        for ckind, value, language, subscriber, voice, chose in rows:
            chosen = chosen_channels(chose)
            for channel in _channels_of(ckind, bool(voice), channels):
                if chosen is not None and channel not in chosen:
                    continue  # the citizen's own choice on the portal (F7)
                key = (channel, value)
                if key in seen:
                    continue
                seen.add(key)
                out.append(Recipient(channel, value,
                                     rules.choose_language(language, fallback, languages),
                                     language, str(subscriber)))
    return out


def resolve_recipients(session: Session, checked: _Checked) -> list[Recipient]:
    """One recipient per channel and distinct phone number or e-mail address with an address
    in the area: SMS to mobiles, e-mail to addresses, voice calls (one per number) to
    landlines and to mobiles whose subscriber chose calls.

    Each gets their own language if a text exists in it, else the first
    language with a text in the authority's fallback order
    (``authority.language_fallback``, else its official languages then fr, nl,
    de, en; ``rules.choose_language``). A contact point shared by several
    subscribers gets the language of the first subscriber imported (lowest id).
    Only verified contact points (SPEC F8), never one marked invalid (a hard
    bounce); ``information`` only to contact points that opted in (F12).
    """
    recipients = _recipients_in_area(session, checked.area, checked.authority,
                                     checked.channels, list(checked.texts), checked.kind)
    if checked.targets:
        # Groups and contact lists (SPEC F11, F16), after the area's subscribers.
        from tocsin.campaigns.group_targets import target_recipients

        recipients = target_recipients(session, checked.targets, checked.authority,
                                       checked.channels, list(checked.texts), checked.kind,
                                       recipients)
    return recipients


def _recipients_of(session: Session, campaign_ids: list[str], authority: Authority,
                   channels: list[str], languages: list[str], kind: str) -> list[Recipient]:
    """The recipients of earlier campaigns (their deliveries), still reachable, in the
    language they would get now. A contact point deleted since (SPEC F9) is skipped."""
    d = table(Delivery)
    wanted = [_KIND_OF[c] for c in channels if c in _KIND_OF]
    if "voice" in channels:
        wanted += [k for k in VOICE_KINDS if k not in wanted]
    if not wanted or not campaign_ids:
        return []
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    rows = session.execute(
        sa.select(ContactPoint.kind, ContactPoint.value, Subscriber.language, d.c.channel)
        .join(Subscriber, Subscriber.id == ContactPoint.subscriber_id)
        .join(d, sa.and_(d.c.address == ContactPoint.value, sa.or_(
            d.c.channel == sa.case((ContactPoint.kind == "mobile", "sms"),
                                   (ContactPoint.kind == "landline", "voice"),
                                   else_="email"),
            sa.and_(d.c.channel == "voice", ContactPoint.kind == "mobile",
                    ContactPoint.voice.is_(True)))))
        .where(d.c.campaign_id.in_(campaign_ids), ContactPoint.kind.in_(wanted),
               d.c.channel.in_(channels), *_reachable(kind))
        .order_by(ContactPoint.subscriber_id, ContactPoint.id)
    ).all()
    seen: set[tuple[str, str]] = set()
    out: list[Recipient] = []
    for _ckind, value, language, channel in rows:
        key = (channel, value)
        if key in seen:
            continue
        seen.add(key)
        out.append(Recipient(channel, value, rules.choose_language(language, fallback,
                                                                   languages)))
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


def _language_warnings(checked: _Checked, recipients: list[Recipient]) -> list[dict[str, Any]]:
    """One warning per official language of the authority without a text, with how many
    recipients (people) who read it will get which language instead."""
    people: dict[str, set[str]] = {}
    for r in recipients:
        if r.wanted:
            people.setdefault(r.wanted, set()).add(r.subscriber or r.address)
    return _language_warnings_counted(checked, Counter({k: len(v) for k, v in people.items()}))


def _language_warnings_counted(checked: _Checked, people_by_language: Counter[str]
                               ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    authority = checked.authority
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    for lang in authority.language_list:
        if lang in checked.texts or lang not in rules.LANGUAGES:
            continue
        instead = language_name(rules.choose_language(lang, fallback, list(checked.texts)))
        n = people_by_language.get(lang, 0)
        names: dict[str, Any] = {"lang_name": language_name(lang), "instead_name": instead}
        field = f"text.{lang}"
        if n == 1:
            out.append(warning("missing_language", field, N_(
                "No %(lang_name)s text: the %(n)s %(lang_name)s-speaking recipient will "
                "get %(instead_name)s"), n=n, **names))
        elif n:
            out.append(warning("missing_language", field, N_(
                "No %(lang_name)s text: the %(n)s %(lang_name)s-speaking recipients will "
                "get %(instead_name)s"), n=n, **names))
        else:
            out.append(warning("missing_language", field, N_(
                "No %(lang_name)s text, although %(lang_name)s is an official language of "
                "%(authority)s (nobody in the area reads %(lang_name)s now; they would get "
                "%(instead_name)s)"), authority=authority.name(lang), **names))
    return out


def _wrong_language_warnings(checked: _Checked) -> list[dict[str, Any]]:
    """One warning per text that reads as another language than its own (SPEC F13,
    ``messages.language.language_warnings``), worded for an operator."""
    from tocsin.messages.language import language_warnings

    out: list[dict[str, Any]] = []
    for w in language_warnings(checked.texts):
        here, there = language_name(w["language"]), language_name(w["detected"])
        out.append(warning("wrong_language", w["field"], N_(
            "The %(lang_name)s text reads as %(detected_name)s: check that it really is "
            "the %(lang_name)s text"),
            extra={"language": w["language"], "detected": w["detected"]},
            lang_name=here, detected_name=there))
    return out


_NO_RECIPIENT = {
    ("information", "sms"): N_("No subscriber will receive an SMS: nobody in the area has "
                               "opted in to information messages"),
    ("information", "email"): N_("No subscriber will receive an e-mail: nobody in the area "
                                 "has opted in to information messages"),
    ("", "sms"): N_("No subscriber will receive an SMS: nobody registered in the area has "
                    "a mobile number that can receive it"),
    ("", "email"): N_("No subscriber will receive an e-mail: nobody registered in the area "
                      "has an e-mail address that can receive it"),
    ("information", "voice"): N_("No subscriber will receive a voice call: nobody in the "
                                 "area has opted in to information messages"),
    ("", "voice"): N_("No subscriber will receive a voice call: nobody registered in the area "
                      "has a landline or a mobile chosen for calls that can receive it"),
}


def _no_recipient_warnings(checked: _Checked, counts: dict[str, int]
                           ) -> list[dict[str, Any]]:
    """One warning per chosen channel that reaches nobody (nothing will be sent on it:
    no provider session is opened either)."""
    out: list[dict[str, Any]] = []
    for channel in ("sms", "email", "voice"):
        if channel not in checked.channels or counts.get(channel, 0):
            continue
        kind = "information" if checked.kind == "information" else ""
        out.append(warning("no_recipients", f"channels.{channel}",
                           _NO_RECIPIENT[(kind, channel)], extra={"channel": channel}))
    return out


@dataclass
class RecipientCounts:
    """What a streamed fan-out counted instead of a list of recipients
    (``dispatch.fanout.FanOutResult``): deliveries per channel, and people per
    their own language."""

    by_channel: dict[str, int]
    people_by_language: Counter[str]


def estimate_warnings(checked: _Checked, recipients: list[Recipient] | RecipientCounts
                      ) -> list[dict[str, Any]]:
    """Everything an operator must read before launching, as ``[{"code", "field",
    "message", …}]``; never blocks a launch.

    Codes: ``missing_language`` (an official language of the authority without a
    text), ``wrong_language`` (a text that reads as another language),
    ``no_recipients`` (a chosen channel reaches nobody; ``channel`` says which),
    then those found by the checks (``template_deleted``, and any other the checks
    add, e.g. ``area_cut``). Screens and the CLI show every entry's ``message``
    whatever its code.
    """
    if isinstance(recipients, RecipientCounts):
        return (_language_warnings_counted(checked, recipients.people_by_language)
                + _wrong_language_warnings(checked)
                + _no_recipient_warnings(checked, recipients.by_channel) + checked.warnings)
    counts = Counter(r.channel for r in recipients)
    return (_language_warnings(checked, recipients) + _wrong_language_warnings(checked)
            + _no_recipient_warnings(checked, counts) + checked.warnings)


def count_recipients(session: Session, checked: _Checked) -> int:
    """How many deliveries a launch of ``checked`` would write now (distinct numbers and
    addresses), for the live launch's typed confirmation (SPEC F34)."""
    return len(resolve_recipients(session, checked))


def _estimate(checked: _Checked, recipients: list[Recipient], price: Decimal
              ) -> dict[str, Any]:
    by_lang: dict[str, Counter[str]] = {"sms": Counter(), "email": Counter(),
                                        "voice": Counter()}
    for r in recipients:
        by_lang[r.channel][r.language] += 1
    facts = _sms_facts(_sms_texts(checked.content), price)
    cost = sum((facts[lang]["cost_eur"] * n for lang, n in by_lang["sms"].items()), Decimal(0))
    expires = checked.expires_at
    return {
        "area_name": checked.area_name,
        "area_names": checked.area_names,
        "area_km2": round(area_km2(checked.area), 3),
        "area": mapping(checked.area),
        "recipients": {c: sum(by_lang[c].values()) for c in ("sms", "email", "voice")
                       if c in checked.channels},
        "by_language": {c: dict(by_lang[c]) for c in ("sms", "email", "voice")
                        if c in checked.channels},
        "sms": {"encoding": ",".join(sorted({f["encoding"] for f in facts.values()})),
                "segments": max(f["segments"] for f in facts.values()),
                "by_language": {k: {"encoding": v["encoding"], "segments": v["segments"]}
                                for k, v in facts.items()},
                "cost_eur": float(cost.quantize(Decimal("0.001")))},
        "content": checked.content,
        "email_mode": rules.email_mode(checked.kind),
        "cap": {"msg_type": "Alert", "scope": rules.cap_scope(checked.kind)},
        "expires_at": iso_utc(expires),
        "expires_local": _local(expires) if expires is not None else None,
        "warnings": estimate_warnings(checked, recipients),
    }


def channel_estimates(checked: _Checked, registered: dict[str, int],
                      registered_sms: int | None, model: CellModel | None = None
                      ) -> dict[str, dict[str, Any]]:
    """Per chosen channel: ``{"registered": n}`` (exact: subscribers with an address in
    the area), and for the location-based channels the reach and bleed of
    ``tocsin.geo.reach.channel_estimate`` (``phones_inside``, ``phones_outside``,
    ``bleed_km2``, ``max_bleed_km``, ``cells``, ``by_operator``, ``model``…).
    ``lbsms.registered`` counts the registered mobiles that get the extra SMS (F18);
    ``cb.registered`` is ``None`` (nobody registers for cell broadcast). ``model``: the
    cell model in force (``tocsin.geo.services.cell_model``; default synthetic)."""
    from tocsin.geo.reach import estimate_reach

    out: dict[str, dict[str, Any]] = {
        c: {"registered": registered.get(c, 0)} for c in checked.channels
        if c not in rules.LOCATION_CHANNELS}
    if "cap" in out:
        out["cap"] = {"registered": None}
    reach = estimate_reach(checked.area, checked.channels, model)
    for c, est in reach.items():
        out[c] = {"registered": registered_sms if c == "lbsms" else None, **est,
                  **_location_text_facts(checked, c)}
    return out


#: Between the languages of one location-based text (F18: nobody knows a located
#: phone's language, so one message carries every official language of the area).
LOCATION_TEXT_JOINER = "\n"


def _location_text_facts(checked: _Checked, channel: str) -> dict[str, Any]:
    """What the text costs on a location-based channel. ``lbsms``: the one text with
    every language (``text_languages``, ``segments``, ``encoding``; the operators send
    it at their cost, Royal Decree 2017: ``cost_eur`` 0). ``cb``: pages per language
    (one message per language, ``tocsin.channels.cell_broadcast.pages``), ``null`` for
    a text over 15 pages (``too_long`` lists those languages)."""
    from tocsin.channels.cell_broadcast import CbError, pages

    texts = {lang: entry["sms"] for lang, entry in checked.content.items() if entry.get("sms")}
    if channel == "lbsms":
        combined = LOCATION_TEXT_JOINER.join(texts.values())
        facts = analyse(combined) if combined else None
        return {"text_languages": list(texts), "cost_eur": 0.0,
                "segments": facts.segments if facts else 0,
                "encoding": facts.encoding if facts else None}
    out: dict[str, int | None] = {}
    for lang, text in texts.items():
        try:
            out[lang] = pages(text).count
        except CbError:
            out[lang] = None
    return {"pages": out, "too_long": [lang for lang, n in out.items() if n is None],
            "cost_eur": 0.0}


def voice_estimate(content: dict[str, dict[str, str]], texts: dict[str, str],
                   calls_by_language: Counter[str], settings: Settings) -> dict[str, Any]:
    """Voice calls of a campaign before launch (SPEC F17, F22, F25, F29).

    Each call says the script twice then the key-press prompt; ``seconds_per_call``
    and ``minutes_per_call`` (started minutes) are per language
    (``messages.voice.estimate_voice``). Returns ``{"calls", "by_language": {lang:
    {"calls", "seconds_per_call", "minutes_per_call"}}, "minutes" (if every call is
    answered), "cost_eur" (the same, at ``voice_minute_price_eur``: billed only for
    answered calls, so an upper bound), "calls_per_minute", "trunk", "duration_s"
    (how long the first attempts take: the start rate or the trunk, whichever
    binds), "retries", "retry_seconds"}``.
    """
    import math

    from tocsin.channels.voice import PROMPT
    from tocsin.messages.voice import estimate_voice

    price = Decimal(settings.voice_minute_price_eur)
    per_language: dict[str, dict[str, int]] = {}
    minutes = 0
    call_seconds = 0.0
    for lang, n in calls_by_language.items():
        script = (content.get(lang) or {}).get("voice") or texts.get(lang, "")
        spoken = estimate_voice(script, lang).seconds if lang in PROMPT else 0
        prompt = estimate_voice(PROMPT.get(lang, PROMPT["en"]),
                                lang if lang in PROMPT else "en").seconds
        seconds = 2 * spoken + 1 + prompt
        per_call = math.ceil(seconds / 60)
        per_language[lang] = {"calls": n, "seconds_per_call": seconds,
                              "minutes_per_call": per_call}
        minutes += per_call * n
        call_seconds += seconds * n
    calls = sum(calls_by_language.values())
    rate_s = calls / settings.voice_calls_per_minute * 60
    # Each call holds a trunk line while it rings (~10 s) and speaks.
    trunk_s = (call_seconds + 10 * calls) / settings.voice_trunk
    return {"calls": calls, "by_language": per_language, "minutes": minutes,
            "cost_eur": float((price * minutes).quantize(Decimal("0.001"))),
            "calls_per_minute": settings.voice_calls_per_minute,
            "trunk": settings.voice_trunk,
            "duration_s": round(max(rate_s, trunk_s), 1),
            "retries": settings.voice_retries, "retry_seconds": settings.voice_retry_seconds}


def estimate_campaign(engine: Engine, req: CampaignRequest,
                      settings: Settings | None = None, *,
                      texts_optional: bool = False) -> dict[str, Any]:
    """Recipients per channel and language, SMS segments and cost, before launch (F14, F17).

    Returns ``{"area_name", "area_names": {lang: name}, "area_km2", "area" (the
    area that will really be used: GeoJSON geometry, WGS84, clipped to the
    authority's territory), "recipients": {"sms": n, "email": n},
    "by_language": {"sms": {"fr": n},
    "email": {…}}, "sms": {"encoding", "segments", "by_language", "cost_eur"},
    "content": {lang: {field: text}} (the complete content that would be sent),
    "email_mode", "cap": {"msg_type", "scope"}, "targets" (``group_targets.target_sizes``:
    the groups and lists named, with their contacts), "targets_only" (true when it
    goes to them only: ``area_km2`` is then ``None``), "expires_at" (RFC 3339 UTC, the
    given or default expiry), "approval_required" (a live alert of an authority with
    the two-person rule waits for a second user), "expires_local" (``YYYY-MM-DD HH:MM``
    Europe/Brussels), "send_time": {channel: {"count", "per_second", "seconds", "text"}}
    (``control.send_times``: "SMS: 412,000 ≈ 1 min 22 s at 5,000/s"), "warnings":
    [{"code", "field", "message", …}]}``
    (``estimate_warnings``). Warnings never block a launch: an official language
    of the authority without a text (and how many recipients get which language
    instead), a text that reads as another language, a channel that reaches
    nobody, a template deleted since, the area cut at the territory's border
    (``{"code": "area_cut", "field": "area", "km2", "share", "message"}``,
    ``tocsin.geo.areas.cut_warning``), the cell model used for location-based channels
    (``{"code": "cell_model", "label": "synthetic cell model", …}``). ``"channels"``:
    per chosen channel, ``channel_estimates`` (registered recipients; for ``lbsms`` and
    ``cb`` phones expected inside and outside the area, bleed, cells, per operator,
    the model); ``"cell_model"``: the model's label when one was used;
    ``"location_reach"``: the phones expected to get it, inside and outside
    (``rules.expected_reach``, typed to confirm a live location-based launch).
    ``texts_optional``: without texts, estimate with a neutral one per official language.
    Raises ``CampaignInputError``, and ``access.Denied`` when ``req.actor`` may not
    prepare it (audited).
    """
    settings = settings or get_settings()
    price = Decimal(settings.sms_segment_price_eur)
    with audited_denials(engine, req.source), read_transaction(engine) as s:
        if texts_optional and not req.texts:
            # Reach does not depend on the words: estimate with a neutral text in each
            # official language of the authority (``texts_optional``, the CLI's estimate).
            authority = s.get(Authority, str(req.authority_id).strip())
            if authority is not None:
                req = replace(req, texts={lang: "Test." for lang in authority.language_list})
        checked = _check(s, req, settings)
        recipients = resolve_recipients(s, checked)
        registered_sms, model = None, None
        if any(c in rules.LOCATION_CHANNELS for c in checked.channels):
            model = cell_model(s)
        if "lbsms" in checked.channels:
            # Registered subscribers in the area get the location-based alert as an
            # ordinary (billed) SMS too (SPEC F18).
            registered_sms = (sum(r.channel == "sms" for r in recipients)
                              if "sms" in checked.channels else len(_recipients_in_area(
                                  s, checked.area, checked.authority, ["sms"],
                                  list(checked.texts), checked.kind)))
        from tocsin.campaigns.group_targets import target_sizes

        sizes = target_sizes(s, checked.targets)
    result = _estimate(checked, recipients, price)
    # Who it goes to, said exactly at the confirmation (issue 10 trial): the groups and
    # lists with their sizes; a campaign to them only has no area (no km²).
    result["targets"] = sizes
    result["targets_only"] = bool(sizes) and checked.area.is_empty
    if result["targets_only"]:
        result["area_km2"] = None
    result["channels"] = channel_estimates(checked, result["recipients"], registered_sms,
                                           model)
    if any(c in rules.LOCATION_CHANNELS for c in checked.channels):
        label = next(v["model_label"] for c, v in result["channels"].items()
                     if c in rules.LOCATION_CHANNELS)
        result["cell_model"] = label
        # What a live location-based launch's operator types to confirm (SPEC F34).
        result["location_reach"] = rules.expected_reach(result["channels"])
        result["warnings"].append(warning(
            "cell_model", "channels",
            N_("Location-based reach is estimated with the synthetic cell model: generated "
               "from population, not operator antenna data") if label == SYNTHETIC_LABEL
            else N_("Location-based reach is estimated with the %(label)s"),
            extra={"label": label}, **({} if label == SYNTHETIC_LABEL else {"label": label})))
    from tocsin.campaigns.control import send_times

    # How long each channel takes at the configured rates and workers (issue 13).
    result["send_time"] = send_times(result["recipients"], settings, req.environment)
    if "voice" in checked.channels:
        result["voice"] = voice_estimate(checked.content, checked.texts,
                                         Counter(r.language for r in recipients
                                                 if r.channel == "voice"), settings)
    # Two-person rule: say before launch that a live alert will wait for a second user.
    result["approval_required"] = (req.environment == "live"
                                   and bool(checked.authority.two_person_rule))
    if result["approval_required"]:
        result["warnings"].append(warning(
            "approval_required", "approval",
            N_("Your authority requires a second user's approval of live alerts: nothing is "
               "sent until another user approves it")))
    return result




def estimate_cells_layer(engine: Engine, req: CampaignRequest,
                         settings: Settings | None = None, max_cells: int = 3000
                         ) -> dict[str, Any]:
    """The map layer of the cells a location-based campaign would use, and its bleed
    (SPEC F17): ``tocsin.geo.reach.cells_layer`` of the area ``req`` would really
    target (checked and clipped as for :func:`estimate_campaign`; texts optional).

    Returns a GeoJSON FeatureCollection (WGS84) with ``tocsin_cell_model`` (its label:
    ``synthetic: true`` and the disclaimer for the synthetic model) and
    ``truncated``. Raises ``CampaignInputError`` and ``access.Denied`` as the estimate.
    """
    from tocsin.geo.reach import cells_layer

    settings = settings or get_settings()
    with audited_denials(engine, req.source), read_transaction(engine) as s:
        if not req.texts:
            authority = s.get(Authority, str(req.authority_id).strip())
            if authority is not None:
                req = replace(req, texts={lang: "Test." for lang in authority.language_list})
        if not any(c in rules.LOCATION_CHANNELS for c in req.channels):
            req = replace(req, channels=[*req.channels, "lbsms"])
        checked = _check(s, req, settings)
        model = cell_model(s)
    return cells_layer(checked.area, model, max_cells=max_cells)


def location_reach(s: Session, checked: _Checked) -> int | None:
    """The expected reach of ``checked``'s location-based channels
    (``rules.expected_reach`` of the cell model in force), or ``None`` without one."""
    from tocsin.geo.reach import estimate_reach

    if not any(c in rules.LOCATION_CHANNELS for c in checked.channels):
        return None
    return rules.expected_reach(estimate_reach(checked.area, checked.channels, cell_model(s)))
