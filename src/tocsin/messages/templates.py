"""Message templates: ready-to-use scenarios per authority, launched in three steps (SPEC F15).

A template holds what a campaign needs except what only the moment knows: the
kind, the channels, the base text (= the SMS text) and optional per-channel
content per language, CAP values, and a saved area (a drawn GeoJSON geometry
or a whole municipality) or none (the operator chooses it at launch). Texts may
carry placeholders, filled at launch by the campaign services:

- ``{area_name}``: the name of the targeted area;
- ``{time}``: the launch time, Europe/Brussels ``HH:MM``;
- ``{<field>}``: a free field declared in the template's ``fields`` (e.g.
  ``{street}``), typed by the operator at launch.

Admins and operators of an authority create, change and delete its templates;
viewers only read them. Every change is written to the audit log (F6). Writes
go through ``create_template`` / ``update_template`` / ``delete_template``,
which check everything first and write nothing on bad input.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from shapely.geometry import mapping
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials, authority_facts, require
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Target
from tocsin.authorities.policy import Actor as PolicyActor
from tocsin.authorities.services import record_audit
from tocsin.campaigns import rules
from tocsin.core.db import transaction, utcnow
from tocsin.core.errors import InputError, phrase
from tocsin.core.i18n import N_
from tocsin.core.text import TextInputError, check_name, forbidden_char
from tocsin.core.text import normalise_name as _normalise_name
from tocsin.geo.areas import (
    AreaError,
    clip_to_territory,
    clip_with_warning,
    municipality_area,
    parse_area_geojson,
)
from tocsin.messages.content import (
    BUILTIN_PLACEHOLDERS,
    CONTENT_FIELDS,
    FIELD_MAX,
    SINGLE_LINE_FIELDS,
    TEXT_MAX,
    ContentError,
    check_required_languages,
    check_text,
)
from tocsin.messages.models import MessageTemplate

EDIT_ROLES = frozenset({"admin", "operator", "federal_operator"})
MAX_FIELDS = 10
MAX_NAME = 200  # characters; MessageTemplate.name is String(200)
MAX_DESCRIPTION = 2000
MAX_TEXT = 20_000  # characters of one content field (an HTML e-mail body is the longest)

_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_BRACES = re.compile(r"\{([^{}]*)\}|[{}]")
_CAP_KEYS = ("category", "event", "urgency", "severity", "certainty")


class TemplateInputError(InputError):
    """Bad template input: ``field`` names what is wrong (``name``, ``texts.fr``,
    ``content.nl.email_subject``, ``fields``, ``area``…) and ``reason`` says why."""


class TemplatePermissionError(PermissionError):
    """The user's role may read templates but not change them (viewers)."""


class Actor(Protocol):
    """Who uses a template: the web layer's ``Operator`` or any object with these fields."""

    @property
    def username(self) -> str: ...

    @property
    def authority_id(self) -> str: ...

    @property
    def environment(self) -> str: ...


@dataclass
class TemplateInput:
    """What an admin or operator writes in a template.

    ``texts``: language -> base text (the SMS text); ``content``: language ->
    content field (``CONTENT_FIELDS``) -> text, blank fields default from the
    base text at launch; ``fields``: names of the free placeholders;
    ``area_geojson`` (GeoJSON geometry or Feature, WGS84) or ``area_nis`` (a
    municipality's NIS code), both empty = chosen at launch; ``cap``: CAP 1.2
    §3.2.2 values (``category``, ``event``, ``urgency``, ``severity``, ``certainty``).
    """

    name: str
    kind: str
    channels: list[str]
    texts: dict[str, str]
    content: dict[str, dict[str, str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    description: str = ""
    area_geojson: dict[str, Any] | str | None = None
    area_nis: str | None = None
    cap: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TemplateInfo:
    """A stored template, detached from the database.

    ``area`` is the saved GeoJSON geometry (WGS84, clipped to the territory) or
    None; ``area_label`` says in words what is targeted ("Wavre", "drawn
    area", "chosen at launch"). Times are aware UTC.
    """

    id: str
    authority_id: str
    name: str
    description: str
    kind: str
    channels: list[str]
    texts: dict[str, str]
    content: dict[str, dict[str, str]]
    fields: list[str]
    area: dict[str, Any] | None
    area_nis: str | None
    area_label: str
    cap: dict[str, str]
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    #: Only when just saved: what the operator must know (the drawn area cut at the
    #: territory's border, ``tocsin.geo.areas.cut_warning``).
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return list(self.texts)

    @property
    def has_area(self) -> bool:
        return self.area is not None or self.area_nis is not None

    def to_json(self) -> dict[str, Any]:
        """The template as JSON-ready data (times RFC 3339 UTC), e.g. to prefill the composer."""
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["updated_at"] = self.updated_at.isoformat()
        return data


# ---------------------------------------------------------------- placeholders


def placeholders(text: str, field_name: str) -> list[str]:
    """The placeholder names in ``text`` in order of appearance (``{time}`` -> ``"time"``).

    Raises ``TemplateInputError(field_name, …)`` on a brace that opens or closes
    nothing, or a name that is not lower-case letters, digits and ``_``.
    """
    names: list[str] = []
    for m in _BRACES.finditer(text):
        inner = m.group(1)
        if inner is None:
            raise TemplateInputError(
                field_name, N_(
                          "unmatched %(value)s at character %(value2)s: placeholders are "
                          "written {area_name}, {time} or {a_field}"), value=f"{m.group(0)!r}",
                                  value2=m.start() + 1)
        if not _FIELD_NAME.fullmatch(inner):
            raise TemplateInputError(
                field_name, N_(
                          "%(value)s is not a placeholder: use lower-case letters, digits and "
                          "_ (e.g. {street})"), value=f"{m.group(0)!r}")
        names.append(inner)
    return names


def _within_launch_limits(field_name: str, text: str, limit: int, *,
                          single_line: bool = False) -> None:
    # The launch's own limits (messages.content.check_text): a template that could
    # never be launched is refused when it is saved, not at 3 a.m.
    try:
        check_text(field_name, text, limit, single_line=single_line)
    except ContentError as exc:
        raise TemplateInputError(exc.field, exc.template, code=exc.code, **exc.params) from None


def _clean_text(value: object, field_name: str, *, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise TemplateInputError(field_name, N_("must be text"), code="not_text")
    text = value.strip()
    if required and not text:
        raise TemplateInputError(field_name, N_("the text is empty"), code="empty")
    if len(text) > MAX_TEXT:
        raise TemplateInputError(field_name, N_("%(count)s characters; at most %(max)s"),
                                 code="too_long", count=f"{len(text):,}", max=f"{MAX_TEXT:,}")
    bad = next((ch for ch in text if forbidden_char(ch)), None)
    if bad is not None:
        raise TemplateInputError(field_name, N_("contains the control character U+%(value)s"),
                value=f"{ord(bad):04X}")
    return text


# ---------------------------------------------------------------- checking


@dataclass
class _Checked:
    name: str
    description: str
    kind: str
    channels: list[str]
    texts: dict[str, str]
    content: dict[str, dict[str, str]]
    fields: list[str]
    area: str | None
    area_nis: str | None
    cap: dict[str, str]
    warnings: list[dict[str, Any]] = field(default_factory=list)


def normalise_name(name: str) -> str:
    """A template name as stored: NFC, invisible format characters removed, spaces collapsed
    (``tocsin.core.text.normalise_name``)."""
    return _normalise_name(name)


def name_key(name: str) -> str:
    """What makes two template names the same for operators: case (full Unicode case
    folding: "Straße" = "STRASSE"), compatibility forms, invisible characters and spacing."""
    return unicodedata.normalize("NFKC", normalise_name(name)).casefold()


def _check(session: Session, authority: Authority, data: TemplateInput,
           template_id: str | None) -> _Checked:
    try:
        name = check_name(data.name, "name", limit=MAX_NAME,
                          empty=N_("the name is empty: give the template a name"))
    except TextInputError as exc:
        raise TemplateInputError(exc.field, exc.template, code=exc.code, **exc.params) from None
    others = session.execute(sa.select(MessageTemplate.id, MessageTemplate.name).where(
        MessageTemplate.authority_id == authority.id)).all()
    clash = next((other for tid, other in others
                  if tid != template_id and name_key(other) == name_key(name)), None)
    if clash is not None:
        raise TemplateInputError("name", N_("%(authority)s already has a template named "
                                            "%(name)s"), code="name_taken",
                                 authority=authority.name(authority.language_list[0]),
                                 name=repr(clash))
    description = _clean_text(data.description, "description", required=False)
    if len(description) > MAX_DESCRIPTION:
        raise TemplateInputError("description", N_("%(count)s characters; at most %(max)s"),
                                 code="too_long", count=f"{len(description):,}",
                                 max=f"{MAX_DESCRIPTION:,}")

    if data.kind not in rules.KINDS:
        raise TemplateInputError("kind", N_("%(kind)s is not one of %(value)s"),
                kind=f"{data.kind!r}", value=', '.join(rules.KINDS))
    channels = list(dict.fromkeys(c.strip() for c in data.channels if c and c.strip()))
    if not channels:
        raise TemplateInputError("channels", N_("choose at least one channel (%(choices)s)"),
                                 code="channels_missing", choices=", ".join(rules.CHANNELS))
    for c in channels:
        if c not in rules.CHANNELS:
            raise TemplateInputError("channels", N_("unknown channel %(c)s (%(value)s)"),
                    c=f"{c!r}", value=', '.join(rules.CHANNELS))
    if data.kind == "group" and "cap" in channels:
        # A group message is not for the public: no CAP is published for it (CAP scope Private).
        raise TemplateInputError("channels", N_("a group message is not published as CAP: "
                                                "untick the CAP feed"), code="group_cap")

    declared = _check_fields(data.fields)
    used: set[str] = set()

    def _placeholders_ok(text: str, field_name: str) -> None:
        for p in placeholders(text, field_name):
            if p not in BUILTIN_PLACEHOLDERS and p not in declared:
                raise TemplateInputError(
                    field_name, N_("{%(name)s} is neither {area_name}, {time} nor a declared "
                                   "field: add %(quoted)s to the fields filled at launch"),
                    code="unknown_placeholder", name=p, quoted=repr(p))
            used.add(p)

    texts: dict[str, str] = {}
    for lang, raw in (data.texts or {}).items():
        if lang not in rules.LANGUAGES:
            raise TemplateInputError(f"texts.{lang}",
                    N_("unknown language %(lang)s (use %(value)s)"), lang=f"{lang!r}",
                    value=', '.join(rules.LANGUAGES))
        text = _clean_text(raw, f"texts.{lang}", required=False)
        if text:
            _within_launch_limits(f"texts.{lang}", text, TEXT_MAX)
            _placeholders_ok(text, f"texts.{lang}")
            texts[lang] = text
    if not texts:
        raise TemplateInputError("texts", N_("write the message in at least one language"),
                                 code="texts_missing")
    try:
        check_required_languages(authority.id, authority.parent_id, list(texts))
    except ContentError as exc:
        raise TemplateInputError(exc.field.replace("text.", "texts.", 1), exc.template,
                                 code=exc.code, **exc.params) from None
    # Ordered as the authority's languages, then the others: the campaign's language order.
    order = [*authority.language_list, *rules.LANGUAGES]
    texts = {lang: texts[lang] for lang in sorted(texts, key=order.index)}

    content: dict[str, dict[str, str]] = {}
    for lang, per_field in (data.content or {}).items():
        if lang not in texts:
            raise TemplateInputError(f"content.{lang}", N_(
                          "per-channel content for a language without a base text: write it "
                          "first"))
        if not isinstance(per_field, Mapping):
            raise TemplateInputError(f"content.{lang}", N_("must map content fields to texts"))
        kept: dict[str, str] = {}
        for key, raw in per_field.items():
            if key not in CONTENT_FIELDS:
                raise TemplateInputError(f"content.{lang}.{key}",
                                         N_("unknown content field (one of %(value)s)"),
                                                 value=', '.join(CONTENT_FIELDS))
            text = _clean_text(raw, f"content.{lang}.{key}", required=False)
            if text:
                _within_launch_limits(f"content.{lang}.{key}", text, FIELD_MAX[key],
                                      single_line=key in SINGLE_LINE_FIELDS)
                _placeholders_ok(text, f"content.{lang}.{key}")
                kept[key] = text
        if kept:
            content[lang] = kept
    unused = [f for f in declared if f not in used]
    if unused:
        raise TemplateInputError("fields", N_("{%(name)s} is declared but used in no text: use "
                                              "it or remove it"), code="unused_field",
                                 name=unused[0])

    area, area_nis, cut = _check_area(session, authority, data.area_geojson, data.area_nis)
    cap = _check_cap(data.cap or {})
    return _Checked(name, description, data.kind, channels, texts, content, declared, area,
                    area_nis, cap, [cut] if cut is not None else [])


def _check_fields(values: Iterable[str]) -> list[str]:
    declared: list[str] = []
    for raw in values or []:
        name = str(raw).strip().strip("{}").strip()
        if not name:
            continue
        if not _FIELD_NAME.fullmatch(name):
            raise TemplateInputError("fields", N_("%(value)s is not a field name: use lower-case "
                                                  "letters, digits and _ (e.g. street)"),
                                     code="bad_field_name", value=repr(raw))
        if name in BUILTIN_PLACEHOLDERS:
            raise TemplateInputError("fields", N_("{%(name)s} is filled automatically: do not "
                                                  "declare it"), code="builtin_field", name=name)
        if name in declared:
            raise TemplateInputError("fields", N_("%(name)s is declared twice"),
                                     code="field_twice", name=repr(name))
        declared.append(name)
    if len(declared) > MAX_FIELDS:
        raise TemplateInputError("fields", N_("at most %(max)s fields to fill at launch"),
                                 code="too_many_fields", max=MAX_FIELDS)
    return declared


def _check_area(session: Session, authority: Authority, geojson: dict[str, Any] | str | None,
                nis: str | None) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """``(drawn area as GeoJSON text clipped to the territory, NIS code, cut warning)``."""
    nis = (nis or "").strip() or None
    if isinstance(geojson, str) and not geojson.strip():
        geojson = None
    if geojson is not None and nis is not None:
        raise TemplateInputError("area", N_("give a drawn area or a municipality, not both"),
                                 code="area_twice")
    try:
        if nis is not None:
            geometry, _ = municipality_area(session, nis)
            clip_to_territory(geometry, authority, field="area_nis")
            return None, nis, None
        if geojson is not None:
            geometry, cut = clip_with_warning(parse_area_geojson(geojson), authority,
                                              field="area")
            return json.dumps(mapping(geometry)), None, cut
    except AreaError as exc:
        field_name = "area_nis" if exc.field == "municipality" else exc.field
        raise TemplateInputError(field_name, exc.reason) from None
    return None, None, None


def _check_cap(cap: Mapping[str, str]) -> dict[str, str]:
    """CAP 1.2 §3.2.2 enumerations for the template's optional CAP values."""
    from tocsin.cap.build import CATEGORIES, CERTAINTIES, SEVERITIES, URGENCIES

    allowed = {"category": CATEGORIES, "urgency": URGENCIES, "severity": SEVERITIES,
               "certainty": CERTAINTIES}
    out: dict[str, str] = {}
    for key, raw in cap.items():
        value = (raw or "").strip()
        if key not in _CAP_KEYS:
            raise TemplateInputError(f"cap.{key}", N_("unknown CAP value (one of %(value)s)"),
                    value=', '.join(_CAP_KEYS))
        if not value:
            continue
        if key == "event":
            # As at launch: CAP ``event`` is one line of at most FIELD_MAX["cap_event"].
            _within_launch_limits("cap.event", value, FIELD_MAX["cap_event"], single_line=True)
        elif value not in allowed[key]:
            raise TemplateInputError(f"cap.{key}",
                    N_("%(value)s is not one of %(value2)s (CAP 1.2)"), value=f"{value!r}",
                    value2=', '.join(allowed[key]))
        out[key] = value
    return out


# ---------------------------------------------------------------- reading


def _authority(session: Session, authority_id: str) -> Authority:
    authority = session.get(Authority, authority_id)
    if authority is None:
        raise LookupError(f"authority_id: no authority {authority_id!r}")
    return authority


def _area_label(session: Session, row: MessageTemplate, language: str) -> str:
    if row.area_nis:
        muni = session.get(Authority, row.area_nis)
        return muni.name(language) if muni is not None else row.area_nis
    if row.area:
        return phrase(N_("drawn area"))
    return phrase(N_("chosen at launch"))


def _info(session: Session, row: MessageTemplate, language: str) -> TemplateInfo:
    return TemplateInfo(
        id=row.id, authority_id=row.authority_id, name=row.name,
        description=row.description or "", kind=row.kind,
        channels=[c for c in row.channels.split(",") if c], texts=dict(row.texts),
        content={k: dict(v) for k, v in (row.content or {}).items()},
        fields=list(row.fields or []), area=json.loads(row.area) if row.area else None,
        area_nis=row.area_nis, area_label=_area_label(session, row, language),
        cap={k: str(v) for k, v in (row.cap_params or {}).items()},
        created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at,
    )


def _load(session: Session, template_id: str, authority_id: str) -> MessageTemplate:
    row = session.get(MessageTemplate, str(template_id))
    if row is None or row.authority_id != authority_id:
        # Other authorities' templates do not exist for you.
        raise LookupError(f"template {template_id!r} not found")
    return row


def list_templates(engine: Engine, authority_id: str) -> list[TemplateInfo]:
    """The templates of ``authority_id``, by name (case-insensitive)."""
    with transaction(engine) as s:
        lang = _authority(s, authority_id).language_list[0]
        rows = s.scalars(sa.select(MessageTemplate)
                         .where(MessageTemplate.authority_id == authority_id)
                         .order_by(sa.func.lower(MessageTemplate.name))).all()
        return [_info(s, r, lang) for r in rows]


def get_template(engine: Engine, template_id: str, authority_id: str) -> TemplateInfo:
    """The template ``template_id`` of ``authority_id``; raises ``LookupError`` otherwise."""
    with transaction(engine) as s:
        lang = _authority(s, authority_id).language_list[0]
        return _info(s, _load(s, template_id, authority_id), lang)


def municipality_choices(engine: Engine, authority_id: str) -> list[tuple[str, str]]:
    """``(nis, name)`` of the municipalities an authority may save as a template's area:
    itself (a municipality), its children (a province) or grandchildren (federal), by name."""
    with transaction(engine) as s:
        authority = _authority(s, authority_id)
        lang = authority.language_list[0]
        if authority.kind == "municipality":
            return [(authority.id, authority.name(lang))]
        children = sa.select(Authority.id).where(Authority.parent_id == authority.id)
        rows = s.scalars(sa.select(Authority).where(
            Authority.kind == "municipality",
            sa.or_(Authority.parent_id == authority.id, Authority.parent_id.in_(children)))).all()
        return sorted(((m.id, m.name(lang)) for m in rows), key=lambda x: x[1].casefold())


# ---------------------------------------------------------------- writing


def _may_edit(role: str) -> None:
    if role not in EDIT_ROLES:
        raise TemplatePermissionError(f"role: a {role} may read templates but not change them")


def _who(actor: str | PolicyActor, role: str | None) -> str:
    """The name the audit log gives; a plain name (the CLI) is checked by ``role``."""
    if isinstance(actor, PolicyActor):
        return actor.username
    _may_edit(role or "viewer")
    return actor


def _require_edit(actor: str | PolicyActor, authority: Authority) -> None:
    """A user (``PolicyActor``) needs ``policy``: TEMPLATES_MANAGE on ``authority``."""
    if isinstance(actor, PolicyActor):
        require(actor, Action.TEMPLATES_MANAGE, Target(authority=authority_facts(authority)),
                authority.id)


def _audit_detail(c: _Checked) -> dict[str, Any]:
    return {"name": c.name, "kind": c.kind, "channels": c.channels, "languages": list(c.texts),
            "fields": c.fields, "area_nis": c.area_nis, "area_drawn": c.area is not None}


def create_template(engine: Engine, authority_id: str, data: TemplateInput, *,
                    actor: str | PolicyActor, role: str | None = None,
                    source: str = "cli") -> TemplateInfo:
    """Check ``data`` and store it as a new template of ``authority_id``.

    ``actor``: the user (``policy``: TEMPLATES_MANAGE on the authority), or a name
    with its ``role`` (the CLI). Raises ``access.Denied`` or
    ``TemplatePermissionError`` (viewer), ``LookupError`` (unknown authority),
    ``TemplateInputError`` naming the field (nothing written). Audited as
    ``template.create``.
    """
    name = _who(actor, role)
    now = utcnow()
    try:
        with audited_denials(engine, source), transaction(engine) as s:
            authority = _authority(s, authority_id)
            _require_edit(actor, authority)
            c = _check(s, authority, data, None)
            row = MessageTemplate(id=uuid.uuid4().hex, authority_id=authority.id,
                                  created_by=name, created_at=now)
            _apply(row, c, now)
            s.add(row)
            s.flush()
            record_audit(s, name, "template.create", target=row.id, source=source,
                         detail={"authority": authority.id, **_audit_detail(c)})
            return dataclasses.replace(_info(s, row, authority.language_list[0]),
                                       warnings=c.warnings)
    except IntegrityError:
        # Two users saving the same name at once: the unique constraint decides.
        raise _name_race() from None


def update_template(engine: Engine, template_id: str, authority_id: str, data: TemplateInput,
                    *, actor: str | PolicyActor, role: str | None = None,
                    source: str = "cli") -> TemplateInfo:
    """Replace the template's content with ``data`` (same checks and rights as
    ``create_template``).

    Raises ``TemplatePermissionError``, ``LookupError`` (unknown or another
    authority's template), ``TemplateInputError`` (nothing written). Audited as
    ``template.update``.
    """
    name = _who(actor, role)
    try:
        with audited_denials(engine, source), transaction(engine) as s:
            authority = _authority(s, authority_id)
            row = _load(s, template_id, authority_id)
            _require_edit(actor, authority)
            c = _check(s, authority, data, row.id)
            _apply(row, c, utcnow())
            s.flush()
            record_audit(s, name, "template.update", target=row.id, source=source,
                         detail={"authority": authority.id, **_audit_detail(c)})
            return dataclasses.replace(_info(s, row, authority.language_list[0]),
                                       warnings=c.warnings)
    except IntegrityError:
        raise _name_race() from None


def _name_race() -> TemplateInputError:
    return TemplateInputError("name", N_("another template with this name was just saved"),
                              code="name_taken")


def _apply(row: MessageTemplate, c: _Checked, now: dt.datetime) -> None:
    """Copy checked template input onto ``row`` (create and update alike)."""
    row.name, row.description, row.kind = c.name, c.description or None, c.kind
    row.channels, row.texts, row.content = ",".join(c.channels), c.texts, c.content
    row.fields, row.area, row.area_nis, row.cap_params = c.fields, c.area, c.area_nis, c.cap
    row.updated_at = now


def delete_template(engine: Engine, template_id: str, authority_id: str, *,
                    actor: str | PolicyActor, role: str | None = None,
                    source: str = "cli") -> None:
    """Delete the template (campaigns launched from it keep their ``template_id``).
    Same rights as ``create_template``.

    Raises ``access.Denied``, ``TemplatePermissionError`` and ``LookupError``. Audited
    as ``template.delete``.
    """
    name = _who(actor, role)
    with audited_denials(engine, source), transaction(engine) as s:
        row = _load(s, template_id, authority_id)
        _require_edit(actor, _authority(s, authority_id))
        record_audit(s, name, "template.delete", target=row.id, source=source,
                     detail={"authority": authority_id, "name": row.name})
        s.delete(row)


# ---------------------------------------------------------------- launching


@dataclass
class TemplateOverrides:
    """What the operator sets or changes at launch.

    ``fields``: values of the free placeholders; ``texts`` / ``content`` /
    ``channels`` / ``kind`` / ``cap`` replace the template's when given;
    ``area_geojson`` or ``municipality_nis`` target another area than the saved
    one (required when the template has none); ``scheduled_for`` (aware) sends later.
    """

    fields: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] | None = None
    content: dict[str, dict[str, str]] | None = None
    channels: list[str] | None = None
    kind: str | None = None
    cap: dict[str, str] | None = None
    area_geojson: dict[str, Any] | str | None = None
    municipality_nis: str | None = None
    scheduled_for: dt.datetime | None = None
    source: str = "web"


def template_request(template: TemplateInfo, operator: Actor,
                     overrides: TemplateOverrides | None = None) -> Any:
    """The ``campaigns.services.CampaignRequest`` that launches ``template`` now.

    Placeholders stay in the texts; their values go in the request's
    ``fields`` and the campaign services substitute them at launch (an unfilled
    one is a ``CampaignInputError`` there). Raises ``LookupError`` when the
    template belongs to another authority than ``operator``'s, and
    ``TemplateInputError("area", …)`` when the template has no saved area and
    none is given.
    """
    from tocsin.campaigns import services as campaigns

    o = overrides or TemplateOverrides()
    if template.authority_id != operator.authority_id:
        raise LookupError(f"template {template.id!r} not found")
    area: dict[str, Any] | str | None
    nis: str | None
    if o.area_geojson is not None or o.municipality_nis:
        area, nis = o.area_geojson, (o.municipality_nis or None)
        if area is not None:
            nis = None
    elif template.area_nis:
        area, nis = None, template.area_nis
    elif template.area is not None:
        area, nis = template.area, None
    else:
        raise TemplateInputError("area",
                N_("the template %(name)s has no saved area: choose one on the map"),
                name=f"{template.name!r}")
    wanted: dict[str, Any] = {
        "authority_id": template.authority_id,
        "texts": dict(o.texts if o.texts is not None else template.texts),
        "channels": list(o.channels if o.channels is not None else template.channels),
        "area_geojson": area,
        "municipality_nis": nis,
        "kind": o.kind or template.kind,
        "environment": operator.environment,
        "created_by": operator.username,
        "source": o.source,
        "cap": dict(o.cap if o.cap is not None else template.cap),
        "content": {k: dict(v) for k, v in
                    (o.content if o.content is not None else template.content).items()},
        "fields": {k: str(v) for k, v in o.fields.items()},
        "template_id": template.id,
        "scheduled_for": o.scheduled_for,
    }
    known = {f.name for f in dataclasses.fields(campaigns.CampaignRequest)}
    return campaigns.CampaignRequest(**{k: v for k, v in wanted.items() if k in known})


# ---------------------------------------------------------------- demo


def _demo_scenarios() -> list[dict[str, Any]]:
    """Three realistic scenarios in fr, nl, de, en (the demo keeps an authority's languages;
    the name and description are in its first language)."""
    return [
        {
            "names": {"fr": "Incendie industriel – confinement",
                      "nl": "Industriële brand – blijf binnen",
                      "de": "Industriebrand – drinnen bleiben"},
            "description": {"fr": "Fumées toxiques : la population reste à l'intérieur.",
                            "nl": "Giftige rook: de bevolking blijft binnen.",
                            "de": "Giftiger Rauch: die Bevölkerung bleibt drinnen.",
                            "en": "Toxic smoke: people stay indoors."},
            "kind": "alert", "channels": ["sms", "email", "cap"], "saved_area": True,
            "cap": {"event": "Industrial fire", "category": "Fire", "urgency": "Immediate",
                    "severity": "Severe", "certainty": "Observed"},
            "texts": {
                "fr": "ALERTE {area_name} {time}: incendie industriel, fumées. Restez à "
                      "l'intérieur, fermez portes et fenêtres, coupez la ventilation. "
                      "Infos: crisiscenter.be",
                "nl": "ALARM {area_name} {time}: industriële brand, rook. Blijf binnen, sluit "
                      "deuren en ramen, zet de ventilatie uit. Info: crisiscenter.be",
                "de": "WARNUNG {area_name} {time}: Industriebrand, Rauch. Bleiben Sie drinnen, "
                      "schliessen Sie Türen und Fenster, Lüftung aus. Info: crisiscenter.be",
                "en": "ALERT {area_name} {time}: industrial fire, smoke. Stay indoors, close "
                      "doors and windows, turn off ventilation. Info: crisiscenter.be",
            },
        },
        {
            "names": {"fr": "Coupure d'eau", "nl": "Wateronderbreking",
                      "de": "Wasserunterbrechung"},
            "description": {"fr": "Information aux abonnés : travaux sur le réseau de "
                                  "distribution.",
                            "nl": "Informatie voor abonnees: werken aan het waternet.",
                            "de": "Information für Abonnenten: Arbeiten am Wassernetz.",
                            "en": "Information for subscribers: works on the water "
                                  "network."},
            "kind": "information", "channels": ["sms", "email"], "saved_area": False,
            "fields": ["street", "until"], "cap": {},
            "texts": {
                "fr": "INFO {area_name}: coupure d'eau {street} jusqu'à {until} (travaux). "
                      "Prévoyez une réserve d'eau.",
                "nl": "INFO {area_name}: geen water in {street} tot {until} (werken). Voorzie "
                      "een voorraad water.",
                "de": "INFO {area_name}: kein Wasser in {street} bis {until} (Arbeiten). Legen "
                      "Sie einen Wasservorrat an.",
                "en": "INFO {area_name}: no water in {street} until {until} (works). Keep some "
                      "water in reserve.",
            },
        },
        {
            "names": {"fr": "Test mensuel", "nl": "Maandelijkse test",
                      "de": "Monatlicher Test"},
            "description": {"fr": "Test du premier jeudi du mois.",
                            "nl": "Test van de eerste donderdag van de maand.",
                            "de": "Test am ersten Donnerstag des Monats.",
                            "en": "Test on the first Thursday of the month."},
            "kind": "test", "channels": ["sms", "email", "cap"], "saved_area": True,
            "cap": {"event": "Monthly test"},
            "texts": {
                "fr": "TEST {area_name} {time}: ceci est le test mensuel de l'alerte à la "
                      "population. Aucune action n'est requise.",
                "nl": "TEST {area_name} {time}: dit is de maandelijkse test van de "
                      "alarmering. U hoeft niets te doen.",
                "de": "TEST {area_name} {time}: dies ist der monatliche Test der "
                      "Bevölkerungswarnung. Sie müssen nichts tun.",
                "en": "TEST {area_name} {time}: this is the monthly test of public warning. "
                      "No action is needed.",
            },
        },
    ]


def seed_demo_templates(engine: Engine, authority_ids: Iterable[str],
                        actor: str = "demo") -> int:
    """Give each authority the demo scenarios in its official languages; returns how many
    were created. Idempotent: a template whose name exists is left alone.

    A municipality's saved area is itself; other authorities choose it at launch.
    Raises ``LookupError`` for an unknown authority.
    """
    created = 0
    for authority_id in authority_ids:
        with transaction(engine) as s:
            authority = _authority(s, authority_id)
            langs = authority.language_list or ["fr"]
            kind = authority.kind
            existing = set(s.scalars(sa.select(MessageTemplate.name)
                                     .where(MessageTemplate.authority_id == authority_id)))
        for sc in _demo_scenarios():
            name = sc["names"].get(langs[0], sc["names"]["fr"])
            if name in existing:
                continue
            nis = authority_id if sc["saved_area"] and kind == "municipality" else None
            data = TemplateInput(
                name=name, kind=sc["kind"], channels=sc["channels"],
                texts={lang: sc["texts"][lang] for lang in langs},
                fields=sc.get("fields", []), area_nis=nis,
                description=sc["description"].get(langs[0], sc["description"]["fr"]),
                cap=sc["cap"])
            create_template(engine, authority_id, data, actor=actor, role="admin",
                            source="demo")
            created += 1
    return created
