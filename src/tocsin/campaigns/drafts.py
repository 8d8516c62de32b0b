"""Draft campaigns: an upstream CAP alert saved for an operator to check and launch (F24).

``save_draft`` writes one ``campaign`` row with status ``draft``: no deliveries,
no published CAP, the area already clipped to the authority's territory. The
composer reads it back with ``get_draft``; launching it
(``campaigns.services.launch_campaign(req, draft_id=...)``) replaces the draft
row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from tocsin.authorities.models import Authority
from tocsin.authorities.services import record_audit
from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.campaigns.services import CampaignInputError
from tocsin.cap.importer import ImportedAlert, blocking_field, shorten_sms
from tocsin.cap.validate import Issue, utc_problem
from tocsin.core.db import iso_utc, transaction, utcnow
from tocsin.core.errors import phrase
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings, get_settings
from tocsin.geo.areas import AreaError, clip_with_warning, territory_label, territory_of
from tocsin.geo.reference import polygonal
from tocsin.messages.sms import analyse

DRAFT = "draft"
#: Channels a draft proposes; the operator chooses before launch.
DRAFT_CHANNELS = ("sms", "email", "cap")


def _area(session: sa.orm.Session, imported: ImportedAlert,
          warnings: list[Issue]) -> tuple[BaseGeometry, str | None]:
    """Union of the imported shapes and the territories of its NIS geocodes."""
    parts: list[BaseGeometry] = [imported.area] if imported.area is not None else []
    found: list[str] = []
    for nis in imported.area_nis:
        authority = session.get(Authority, nis)
        if authority is None or authority.kind == "federal":
            warnings.append(Issue.translatable("area", N_(
                "NIS geocode %(nis)s is not a Belgian municipality or province; left out"),
                nis=nis))
            continue
        parts.append(territory_of(authority))
        found.append(nis)
    if not parts:
        raise CampaignInputError("area", "the imported alert has no area that can be placed "
                                         "on the map (no polygon, circle or known NIS code)")
    only_nis = found[0] if imported.area is None and len(found) == 1 else None
    return polygonal(shapely.union_all(parts)), only_nis


def save_draft(engine: Engine, authority_id: str, imported: ImportedAlert, created_by: str,
               *, source: str = "cli", settings: Settings | None = None) -> str:
    """Store an imported CAP alert as a draft campaign of ``authority_id``; return its id.

    Writes one ``campaign`` row (status ``draft``, environment ``simulation``,
    channels sms, email and cap proposed, ``cap_xml`` None, a distinct
    ``cap_identifier`` ``BE-TOCSIN-DRAFT-<id>``) and one audit row
    (``campaign.draft``), in one transaction; no delivery. The area is the
    imported geometry plus the territories of its NIS geocodes, clipped to the
    authority's territory (SPEC F3/F16); a warning is added when more than 1 %
    (or 1 km²) of it lay outside (``tocsin.geo.areas.cut_warning``, the message the composer
    and the CLI give too). SMS texts longer than the authority's segment maximum
    are shortened again.

    Raises:
        CampaignInputError: ``authority`` unknown; ``area`` with no usable
            part, or entirely outside the authority's territory (nothing written;
            the reason says where the area lies and to draw it in the composer);
            ``kind`` not a Tocsin kind; ``text.<lang>`` not a Tocsin language.
    """
    settings = settings or get_settings()
    campaign_id = uuid.uuid4().hex
    now = utcnow()
    if imported.expires is not None and utc_problem(imported.expires) is not None:
        raise CampaignInputError("expires", utc_problem(imported.expires) or "")
    if imported.kind not in rules.KINDS:
        raise CampaignInputError("kind", f"{imported.kind!r} is not one of "
                                         f"{', '.join(rules.KINDS)}")
    for lang in imported.texts:
        if lang not in rules.LANGUAGES:
            raise CampaignInputError(f"text.{lang}", f"unknown language {lang!r}")
    warnings = list(imported.warnings)
    with transaction(engine) as s:
        authority = s.get(Authority, str(authority_id).strip())
        if authority is None:
            raise CampaignInputError("authority", f"unknown authority {authority_id!r}")
        area, area_nis = _area(s, imported, warnings)
        name = territory_label(authority)
        try:
            clipped, cut = clip_with_warning(area, authority, field="area", name=name)
        except AreaError as exc:
            raise CampaignInputError(exc.field, N_(
                "%(why)s. To alert %(name)s anyway, write the alert in the composer and "
                "draw the area yourself (within %(name)s)"), code=exc.code,
                why=phrase(exc.template, **exc.params), name=name) from None
        if cut is not None:
            warnings.append(Issue("area", cut["message"], getattr(cut, "template", ""),
                                  getattr(cut, "params", {})))
        maximum = authority.sms_max_segments or settings.sms_max_segments
        texts, content = dict(imported.texts), {k: dict(v) for k, v in imported.content.items()}
        for lang, text in texts.items():
            if analyse(text).segments > maximum:
                texts[lang] = shorten_sms(text, maximum)
                content.setdefault(lang, {})["sms"] = texts[lang]
                warnings.append(Issue.translatable(f"text.{lang}", N_(
                    "shortened to %(maximum)s SMS segments, the maximum of this authority"),
                    maximum=maximum))
        kind = imported.kind
        cap_params = {**rules.cap_info_defaults(kind), "event": kind.capitalize(),
                      **imported.cap_params}
        for name in imported.blocking:  # never a silent default: the operator chooses
            if name != "expires":
                cap_params.pop(name, None)
        area_name = imported.area_name or authority.name(authority.language_list[0])
        campaign = Campaign(
            id=campaign_id, authority_id=authority.id, kind=kind, environment="simulation",
            status=DRAFT, priority=rules.PRIORITY[kind], channels=",".join(DRAFT_CHANNELS),
            texts=texts, content=content, msg_type="Alert", scope="Public",
            area=json.dumps(mapping(clipped)), area_name=area_name[:300], area_nis=area_nis,
            cap_params=cap_params, cap_identifier=f"BE-TOCSIN-DRAFT-{campaign_id}",
            cap_xml=None, expires_at=imported.expires.astimezone(dt.UTC)
            if imported.expires else None,
            sms_source=settings.sms_source, mail_from=settings.mail_from,
            voice_caller=settings.voice_caller,
            created_by=created_by, created_at=now,
            imported_from={
                "format": f"CAP {imported.cap_version}", "identifier": imported.identifier,
                "sender": imported.sender,
                "sent": imported.sent.isoformat() if imported.sent else None,
                "status": imported.status, "msg_type": imported.msg_type,
                "references": imported.references,
                "warnings": [w.to_json() for w in warnings],
                "blocking": dict(imported.blocking),
            },
        )
        s.add(campaign)
        s.flush()
        record_audit(s, created_by, "campaign.draft", target=campaign_id, source=source,
                     detail={"authority": authority.id, "kind": kind, "area": area_name[:300],
                             "languages": list(texts), "cap_identifier": imported.identifier,
                             "cap_sender": imported.sender, "warnings": len(warnings)})
    return campaign_id


def import_cap_draft(engine: Engine, authority_id: str, data: bytes, created_by: str, *,
                     source: str = "cli", settings: Settings | None = None,
                     max_bytes: int | None = None) -> dict[str, Any]:
    """Read an upstream CAP alert (``tocsin.cap.importer.import_cap``), save it as a draft
    of ``authority_id`` (:func:`save_draft`) and return it as :func:`get_draft` does.

    Raises ``CapImportError`` (every refusal in ``problems``; nothing saved) or
    ``CampaignInputError`` (nothing saved; its ``warnings`` attribute holds the import
    warnings as ``[{"element", "message"}]``).
    """
    from tocsin.cap.importer import import_cap

    imported = (import_cap(data) if max_bytes is None
                else import_cap(data, max_bytes=max_bytes))
    try:
        campaign_id = save_draft(engine, authority_id, imported, created_by, source=source,
                                 settings=settings)
    except CampaignInputError as exc:
        exc.warnings = [w.to_json() for w in imported.warnings]  # type: ignore[attr-defined]
        raise
    return get_draft(engine, campaign_id, None)


def get_draft(engine: Engine, campaign_id: str, authority_id: str | None) -> dict[str, Any]:
    """A draft campaign, shaped to prefill the composer.

    ``authority_id`` None reads any authority's draft (federal operator).

    Returns ``{"campaign_id", "authority_id", "status": "draft", "kind",
    "environment", "channels": [...], "texts": {lang: text}, "content": {lang:
    {field: text}}, "area": GeoJSON geometry (WGS 84, clipped), "area_name",
    "area_nis", "cap": {category, event, urgency, severity, certainty},
    "expires_at" (RFC 3339 UTC or None), "created_by", "created_at",
    "source": {format, identifier, sender, sent, status, msg_type, references}
    or None, "warnings": [{"element", "message"}], "blocking": [{"element"
    ("cap.urgency", "expires_at"…), "message"}] (what must be chosen before launch; see
    ``launch_blockers``)}``.

    Raises LookupError when there is no draft with that id for that authority.
    """
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None or c.status != DRAFT or (
                authority_id is not None and c.authority_id != authority_id):
            raise LookupError(f"no draft campaign {campaign_id!r}"
                              + (f" of authority {authority_id}" if authority_id else ""))
        origin = dict(c.imported_from or {})
        warnings = origin.pop("warnings", [])
        blocking = origin.pop("blocking", {})
        return {
            "campaign_id": c.id, "authority_id": c.authority_id, "status": c.status,
            "kind": c.kind, "environment": c.environment, "channels": c.channel_list,
            "texts": dict(c.texts), "content": {k: dict(v) for k, v in (c.content or {}).items()},
            "area": json.loads(c.area), "area_name": c.area_name, "area_nis": c.area_nis,
            "cap": dict(c.cap_params or {}), "expires_at": iso_utc(c.expires_at, "seconds"),
            "created_by": c.created_by, "created_at": iso_utc(c.created_at, "seconds"),
            "source": origin or None, "warnings": warnings,
            "blocking": [{"element": blocking_field(k), "message": v}
                         for k, v in blocking.items()],
        }


def launch_blockers(draft: Campaign, cap: dict[str, str] | None,
                    expires_at: dt.datetime | None, now: dt.datetime | None = None
                    ) -> list[tuple[str, str]]:
    """What still blocks launching ``draft`` with the CAP values ``cap`` and the expiry
    ``expires_at`` of the launch request: ``[(field, reason)]`` for each value the import
    could not take from the upstream alert that the request leaves empty (``cap.urgency``…)
    or, for an expired upstream alert, an ``expires_at`` that is missing or not after
    ``now`` (default: the current time)."""
    blocking = (draft.imported_from or {}).get("blocking") or {}
    cap = cap or {}
    now = now or utcnow()
    left: list[tuple[str, str]] = []
    for name, reason in blocking.items():
        if name == "expires":
            if expires_at is None or expires_at <= now:
                left.append((blocking_field(name), reason))
        elif not str(cap.get(name) or "").strip():
            left.append((blocking_field(name), reason))
    return left


def delete_draft(engine: Engine, campaign_id: str, authority_id: str | None, actor: str,
                 *, source: str = "cli") -> dict[str, Any]:
    """Delete a draft campaign (never launched: no delivery, no published CAP) and write
    a ``campaign.draft_delete`` audit row, in one transaction.

    ``authority_id`` None deletes any authority's draft (federal operator, CLI).
    Returns ``{"campaign_id", "authority_id", "area_name", "kind"}`` of the deleted draft.
    Raises ``CampaignInputError`` (field ``campaign_id``) when there is no such campaign
    for that authority, or when it is not a draft (a launched, scheduled or cancelled
    message is part of the record and is never deleted).
    """
    with transaction(engine) as s:
        c = s.get(Campaign, str(campaign_id).strip())
        if c is None or (authority_id is not None and c.authority_id != authority_id):
            raise CampaignInputError("campaign_id", f"no campaign {campaign_id!r}"
                                     + (f" of authority {authority_id}" if authority_id
                                        else ""))
        if c.status != DRAFT:
            raise CampaignInputError("campaign_id", (
                f"campaign {c.id} is {c.status}, not a draft: only drafts can be deleted "
                f"(to stop a message, cancel it)"))
        gone = {"campaign_id": c.id, "authority_id": c.authority_id,
                "area_name": c.area_name, "kind": c.kind}
        s.delete(c)
        s.flush()
        record_audit(s, actor, "campaign.draft_delete", target=gone["campaign_id"],
                     source=source, detail={"authority": gone["authority_id"],
                                            "kind": gone["kind"], "area": gone["area_name"]})
    return gone
