"""Campaign input: the request, its checks, and the errors they raise (SPEC F12–F17).

Every check runs before anything is written: a request that fails leaves
nothing behind, and the error names the field and the reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from tocsin.authorities.access import (
    Denied,
    authority_facts,
    cli_actor,
    targetable_territory,
)
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor, Decision, Target, decide
from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.core.db import utcnow
from tocsin.core.errors import InputError, warning
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings
from tocsin.geo.areas import (
    AreaError,
    area_km2,
    area_names,
    clip_to_territory,
    cut_warning,
    parse_area_geojson,
)
from tocsin.geo.areas import municipality_area as _municipality_area
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
)
from tocsin.messages.sms import analyse

#: The furthest ahead a campaign may be scheduled (``rules.MAX_SCHEDULE_AHEAD``).
MAX_SCHEDULE_AHEAD = rules.MAX_SCHEDULE_AHEAD



class CampaignInputError(InputError):
    """Bad campaign input: ``field`` names what is wrong (``text.de``, ``area``…) and
    ``reason`` says why."""


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
    ``actor``: who acts (the web passes the logged-in user's); ``None`` is the
    command line acting for ``authority_id`` (``access.cli_actor``: that
    authority's admin, the federal operator for ``BE``). ``on_behalf_request``:
    when the federal operator acts for another authority, who asked and how
    (``{"requested_by", "requested_at", "channel", "note"}``); required then.
    ``lists`` / ``groups``: names of contact lists and groups of the authority (or its
    cooperation) to reach beside the area, or instead of it (``campaigns.group_targets``).
    ``justification``: with location-based SMS, the imminent danger as the operators
    must record it (F18; required then, at most 500 characters).
    ``confirmation_required`` (set by the web and the CLI, the ways people launch):
    a live launch needs ``confirm_area_name`` and ``confirm_recipients`` typed by
    the operator (``rules.live_confirmation_problems``, SPEC F34).
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
    actor: Actor | None = None
    on_behalf_request: dict[str, str] | None = None
    confirmation_required: bool = False
    confirm_area_name: str | None = None
    confirm_recipients: int | str | None = None
    lists: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    justification: str | None = None
    #: Answer options and quota (``campaigns.answer_service.AnswerSetup``), or None.
    answers: Any = None


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
    warnings: list[dict[str, Any]] = field(default_factory=list)
    actor: Actor | None = None
    targets: dict[str, list[dict[str, Any]]] | None = None


def _input_error(exc: ContentError) -> CampaignInputError:
    return CampaignInputError(exc.field, exc.template, code=exc.code, **exc.params)


def _check_text(field_name: str, text: str, limit: int, single_line: bool = False) -> None:
    try:
        check_text(field_name, text, limit, single_line=single_line)
    except ContentError as exc:
        raise _input_error(exc) from None


def _check_common(session: Session, req: CampaignRequest, settings: Settings,
                  kind: str) -> tuple[Authority, list[str], dict[str, str]]:
    """Authority, kind, environment, channels, texts, overrides, CAP values, providers.

    The location-based channels (``rules.LOCATION_CHANNELS``) are accepted here; their
    own checks (who may, the justification…) come later (``_check_location``)."""
    authority = session.get(Authority, str(req.authority_id).strip())
    if authority is None:
        raise CampaignInputError("authority", N_("unknown authority %(authority_id)s"),
                authority_id=f"{req.authority_id!r}")
    if kind not in rules.KINDS:
        raise CampaignInputError("kind", N_("%(kind)s is not one of %(value)s"), kind=f"{kind!r}",
                value=', '.join(rules.KINDS))
    if req.environment not in rules.ENVIRONMENTS:
        raise CampaignInputError("environment", N_("%(environment)s is not simulation or live"),
                environment=f"{req.environment!r}")
    channels = [c.strip() for c in req.channels if c.strip()]
    if not channels:
        raise CampaignInputError("channels",
                                 N_("choose at least one channel (sms, email, cap, voice)"))
    for c in channels:
        if c not in rules.CHANNELS and c not in rules.LOCATION_CHANNELS:
            raise CampaignInputError("channels", N_("unknown channel %(c)s (%(value)s)"),
                    c=f"{c!r}", value=', '.join(rules.CHANNELS + rules.LOCATION_CHANNELS))
    channels = list(dict.fromkeys(channels))
    if kind == "group" and "cap" in channels:
        raise CampaignInputError("channels", N_(
                      "a group message is not for the public: it has no CAP alert (remove "
                      "cap)"))
    if not req.texts:
        raise CampaignInputError("text",
                N_("no text given: write the message in at least one language"))
    texts: dict[str, str] = {}
    for lang, text in req.texts.items():
        if lang not in rules.LANGUAGES:
            raise CampaignInputError(f"text.{lang}",
                    N_("unknown language %(lang)s (use %(value)s)"), lang=f"{lang!r}",
                    value=', '.join(rules.LANGUAGES))
        if not text or not text.strip():
            raise CampaignInputError(f"text.{lang}", N_(
                "the %(lang_name)s text (text.%(lang)s) is empty"), lang=lang,
                lang_name=language_name(lang))
        texts[lang] = text.strip()
    # Sizes first (a 10 MB text is refused before any other work), then characters.
    for lang, text in texts.items():
        _check_text(f"text.{lang}", text, TEXT_MAX)
    for lang, fields in (req.content or {}).items():
        if not isinstance(fields, dict):
            raise CampaignInputError(f"content.{lang}", N_("expected field -> text"))
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
            raise _input_error(exc) from None
    if req.environment == "live":
        missing = [c for c, url in (("sms", settings.smpp_url), ("email", settings.smtp_url),
                                    ("voice", settings.voice_url))
                   if c in channels and not url.strip()]
        if missing:
            env = {"sms": "TOCSIN_SMPP_URL", "email": "TOCSIN_SMTP_URL",
                   "voice": "TOCSIN_VOICE_URL"}
            raise CampaignInputError(
                "channels", "no live provider configured for "
                + ", ".join(f"{c} ({env[c]})" for c in missing)
                + "; use the simulation environment or configure the provider")
    return authority, channels, texts


def _check_area(session: Session, req: CampaignRequest, authority: Authority,
                optional: bool = False, actor: Actor | None = None,
                repairs: list[dict[str, Any]] | None = None
                ) -> tuple[BaseGeometry, dict[str, str], str | None,
                           dict[str, Any] | None] | None:
    """The requested area clipped to what the campaign's authority may target (its
    territory, its cooperation's and its partners' in force; Belgium for the federal
    authority, ``access.targetable_territory``), its name per language
    (``_area_names``), NIS code (a municipality) and the warning that it was cut
    at that border (``tocsin.geo.areas.cut_warning``, or ``None``).

    ``optional``: no area at all is allowed (returns ``None``), for an update.
    ``repairs``: a list to repair an invalid outline instead of refusing it (every lobe
    kept, ``tocsin.geo.areas.repair_polygon``); each repair is appended to it as a
    warning ``{"code": "area_repaired", "field", "message", …}``.
    Raises ``Denied`` (rule ``outside_territory``, field ``area`` or
    ``municipality``) when nothing of the area may be targeted.
    """
    if req.area_geojson is None and req.municipality_nis is None and optional:
        return None
    if (req.area_geojson is None) == (req.municipality_nis is None):
        raise CampaignInputError("area",
                N_("give exactly one of an area (GeoJSON) or a municipality (NIS code)"))
    try:
        if req.municipality_nis is not None:
            area, _ = _municipality_area(session, req.municipality_nis,
                                         authority.language_list[0])
            nis: str | None = str(req.municipality_nis).strip()
        else:
            area = parse_area_geojson(req.area_geojson,  # type: ignore[arg-type]
                                      repairs=repairs)
            nis = None
    except AreaError as exc:
        raise CampaignInputError(exc.field, exc.template, code=exc.code, **exc.params) from None
    field_name = "municipality" if nis else "area"
    territory, label = _territory(session, authority)
    try:
        clipped = clip_to_territory(area, territory, label, field=field_name)
    except AreaError as exc:
        who = actor or acting_actor(session, req, authority)
        raise Denied(who, Action.CAMPAIGN_PREPARE, Decision(
            False, "outside_territory", exc.reason, exc.template,
            tuple(sorted(exc.params.items()))),
                     authority.id, field=field_name) from None
    cut = cut_warning(area_km2(area), area_km2(clipped), label)
    return clipped, _area_names(session, clipped, nis, authority), nis, cut


def _territory(session: Session, authority: Authority) -> tuple[BaseGeometry, str]:
    """What campaigns of ``authority`` may target (Belgium for the federal authority),
    and its name for the operator ("Beersel", "Halle and its partners", "Belgium")."""
    from tocsin.geo.areas import territory_label, territory_of

    territory = targetable_territory(session, authority.id)
    label = territory_label(authority)
    if territory is None:
        be = session.get(Authority, "BE")
        return territory_of(be if be is not None else authority), label
    if not territory.equals(territory_of(authority)):
        label = f"{label} and the municipalities it may target (partners, cooperation)"
    return territory, label


def acting_actor(session: Session, req: CampaignRequest, authority: Authority) -> Actor:
    """``req.actor``, or the command line acting for ``authority`` (``cli_actor``)."""
    return req.actor if req.actor is not None else cli_actor(session, authority.id)


def check_may(session: Session, actor: Actor, action: Action, authority: Authority,
              environment: str, campaign: Campaign | None = None, *,
              group_only: bool = False) -> None:
    """Raise ``Denied`` unless ``actor`` may do ``action`` on a campaign of ``authority``
    (``campaign``: an existing one). A campaign the actor may not even read is
    ``hidden`` (answered as not found)."""
    target = Target(authority=authority_facts(authority), environment=environment,
                    prepared_by=campaign.created_by if campaign is not None else None,
                    group_only=group_only)
    target_id = campaign.id if campaign is not None else authority.id
    if campaign is not None:
        readable = decide(actor, Action.CAMPAIGN_READ, target)
        if not readable:
            raise Denied(actor, action, readable, target_id, hidden=True)
    decision = decide(actor, action, target)
    if not decision:
        raise Denied(actor, action, decision, target_id)


def _check_on_behalf(actor: Actor, authority: Authority, req: CampaignRequest) -> None:
    """The federal operator acting for another authority records who asked (F: acting
    on behalf); everyone else acts for their own (or their cooperation's) authority."""
    if actor.authority.id == authority.id or authority.id in actor.cooperation:
        return
    request = req.on_behalf_request or {}
    if not str(request.get("requested_by", "")).strip():
        raise CampaignInputError(
            "on_behalf_request.requested_by", N_(
                      "you are acting for %(value)s: record who asked for this campaign "
                      "(name and function)"), value=authority.name('fr'))
    for key, value in request.items():
        if key not in ("requested_by", "requested_at", "channel", "note"):
            raise CampaignInputError(f"on_behalf_request.{key}", N_("unknown field (%(fields)s)"),
                                     fields="requested_by, requested_at, channel, note")
        _check_text(f"on_behalf_request.{key}", str(value).strip(), 500, single_line=False)


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
                name, N_(
                          "the SMS would need %(segments)s segments; at most %(maximum)s are "
                          "allowed (shorten the text)"), segments=segments, maximum=maximum)



def _zoned(field: str, value: object) -> dt.datetime:
    """``value`` if it is a datetime with a time zone, else ``CampaignInputError(field)``."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise CampaignInputError(field, N_("needs a time zone (e.g. 2026-12-01T08:00+01:00)"))
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
                "scheduled_for", N_(
                          "%(value)s (Europe/Brussels) is in the past; send now or choose a "
                          "later time"), value=f"{at.astimezone(rules.BRUSSELS):%Y-%m-%d %H:%M}")
        if at - now > rules.MAX_SCHEDULE_AHEAD:
            raise CampaignInputError(
                "scheduled_for", N_(
                          "%(value)s (Europe/Brussels) is more than %(days)s days ahead; "
                          "choose an earlier time"), value=_local(at),
                                  days=rules.MAX_SCHEDULE_AHEAD.days)
        when = at.astimezone(dt.UTC)
    if req.expires_at is not None:
        exp = _zoned("expires_at", req.expires_at)
        if exp <= when:
            raise CampaignInputError(
                "expires_at",
                        N_("%(value)s (Europe/Brussels) is not after the sending time %(value2)s"),
                        value=_local(exp), value2=_local(when))
        if exp - when > rules.MAX_VALIDITY:
            raise CampaignInputError(
                "expires_at", N_(
                          "%(value)s (Europe/Brussels) is more than %(days)s days after the "
                          "sending time %(value2)s; choose an earlier time"), value=_local(exp),
                                  days=rules.MAX_VALIDITY.days, value2=_local(when))
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
           now: dt.datetime | None = None,
           action: Action = Action.CAMPAIGN_PREPARE) -> _Checked:
    """Every check of a new campaign, the permission first (``action``: prepare for an
    estimate, launch for a launch). Raises ``Denied`` or ``CampaignInputError``."""
    now = now or utcnow()
    authority, channels, texts = _check_common(session, req, settings, req.kind)
    actor = acting_actor(session, req, authority)
    group_only = (req.area_geojson is None and req.municipality_nis is None
                  and bool(req.lists or req.groups))
    check_may(session, actor, action, authority, req.environment, group_only=group_only)
    location = [c for c in channels if c in rules.LOCATION_CHANNELS]
    if location and action is not Action.CAMPAIGN_PREPARE:
        # Only trained users of type-1 authorities (SPEC F5, F18).
        decision = decide(actor, Action.LBSMS_USE)
        if not decision:
            raise Denied(actor, Action.LBSMS_USE, decision, authority.id, field="channels")
    _check_on_behalf(actor, authority, req)
    when, expires = _check_times(req, now, req.kind)
    repairs: list[dict[str, Any]] = []
    targets = None
    if req.lists or req.groups:
        from tocsin.campaigns.group_targets import check_targets

        targets = check_targets(session, authority, req.lists, req.groups)
    if targets is not None and group_only:
        from shapely.geometry import GeometryCollection

        from tocsin.campaigns.group_targets import targets_label

        if "cap" in channels:
            raise CampaignInputError("channels", N_(
                          "a campaign to groups and contact lists only has no area: no CAP "
                          "alert (remove cap)"))
        label = targets_label(targets)
        area, names, nis, cut = (GeometryCollection(), dict.fromkeys(rules.LANGUAGES, label),
                                 None, None)
    else:
        located = _check_area(session, req, authority, actor=actor, repairs=repairs)
        assert located is not None
        area, names, nis, cut = located
    name = _first_name(names, authority)
    base, content, sms_fields = _complete(authority, req, req.kind, texts, names, when,
                                          settings)
    checked = _Checked(authority, area, name, nis, base, channels, content, req.kind,
                       sms_fields, {lang: names[lang] for lang in base}, expires)
    checked.actor = actor
    checked.warnings.extend(repairs)
    checked.targets = targets
    if cut is not None:
        checked.warnings.append(cut)
    _check_sms(checked, settings)
    if location and action is not Action.CAMPAIGN_PREPARE:
        _check_location(checked, req.environment, req.justification, settings)
    if req.template_id:
        checked.template_id = _template(session, req.template_id, authority.id)
        if checked.template_id is None:
            checked.warnings.append(warning("template_deleted", "template_id", N_(
                "The template this message was started from no longer exists; the message "
                "is sent all the same, without a link to it")))
    if req.draft_id:
        from tocsin.campaigns.drafts import launch_blockers

        draft = _draft(session, req.draft_id, authority.id)
        for name, reason in launch_blockers(draft, req.cap, req.expires_at):
            raise CampaignInputError(name, reason)
    return checked


def _check_location(checked: _Checked, environment: str, justification: str | None,
                    settings: Settings) -> None:
    """The location-based channels' own checks (``campaigns.location.check_location``:
    kind, justification, text length, a configured operator when live)."""
    from tocsin.campaigns.location import check_location

    try:
        check_location(checked.channels, checked.kind, environment, checked.content,
                       checked.texts, justification, settings)
    except InputError as exc:
        raise CampaignInputError(exc.field, exc.template, code=exc.code,
                                 **exc.params) from None


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
        raise CampaignInputError("draft_id", N_("no draft %(draft_id)s of this authority"),
                draft_id=f"{draft_id!r}")
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
            raise CampaignInputError(f"cap.{key}",
                    N_("unknown CAP field (category, event, urgency, severity, certainty)"))
        if value and value not in allowed[key]:
            raise CampaignInputError(f"cap.{key}",
                    N_("%(value)s is not one of %(value2)s (CAP 1.2)"), value=f"{value!r}",
                    value2=', '.join(allowed[key]))


def _area_names(session: Session, area: BaseGeometry, nis: str | None,
                authority: Authority) -> dict[str, str]:
    """The area's name in every language (``rules.LANGUAGES``), as people say it:
    the country, a province, "3 communes de Hal-Vilvorde", a municipality
    (``tocsin.geo.areas.area_names``). Never "(zone)": it is read in public texts."""
    return area_names(session, area, nis, authority)
