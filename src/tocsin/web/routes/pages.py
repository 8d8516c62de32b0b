"""Server-rendered pages: dashboard, campaign composer, campaign progress and report."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tocsin.authorities import services as authorities
from tocsin.campaigns import rules
from tocsin.messages import templates as tpl
from tocsin.web.deps import Operator, current_operator, engine_of, render, settings_of
from tocsin.web.routes._campaigns import campaign_services

router = APIRouter()

ALL_LANGUAGES = ("fr", "nl", "de", "en")
LANGUAGE_NAMES = {"fr": "French", "nl": "Dutch", "de": "German", "en": "English"}
KIND_LABELS = {
    "alert": "Alert — emergency or imminent emergency",
    "warning": "Warning",
    "information": "Information — general interest",
    "test": "Test",
    "exercise": "Exercise",
    "group": "Group message",
}
# F12: the sentence the operator confirms; said again in the launch dialog.
KIND_SENTENCES = {
    "alert": "This is an ALERT: an emergency or imminent emergency. It goes to everyone "
             "registered in the area, on every channel chosen, and alert maps and display "
             "panels show it.",
    "warning": "This is a WARNING: a danger that may come. It goes to everyone registered in "
               "the area, and alert maps and display panels show it.",
    "information": "This is INFORMATION of general interest (road works, opening hours). It "
                   "reaches only subscribers who opted in to information messages; never "
                   "commercial, promotional or political content.",
    "test": "This is a TEST of the warning chain: recipients are told no action is needed; "
            "panels do not treat it as a danger.",
    "exercise": "This is an EXERCISE: a drill, marked as such for every recipient and panel.",
    "group": "This is a GROUP message: it goes to a group of contacts, not to the public, and "
             "is not published on alert maps.",
}
CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "cap": "CAP feed (alert maps, panels)"}
CONTENT_LABELS = {
    "voice": "Voice script", "email_subject": "E-mail subject", "email_text": "E-mail body",
    "email_html": "E-mail body, HTML version", "cap_event": "CAP event",
    "cap_headline": "CAP headline", "cap_description": "CAP description",
    "cap_instruction": "CAP instruction",
}
KINDS = tuple((k, KIND_LABELS.get(k, k.capitalize())) for k in rules.KINDS)
CHANNELS = tuple((c, CHANNEL_LABELS.get(c, c)) for c in rules.CHANNELS)


@router.get("/")
def dashboard(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The templates (launch in three steps) and the campaigns of the operator's authority."""
    engine = engine_of(request)
    authority_id = None if op.role == "federal_operator" else op.authority_id
    rows = campaign_services().list_campaigns(engine, authority_id, op.environment)
    return render(request, "dashboard.html", campaigns=rows,
                  templates=tpl.list_templates(engine, op.authority_id),
                  can_edit=op.role in tpl.EDIT_ROLES, compact=True)


def _template_prefill(t: tpl.TemplateInfo) -> dict[str, Any]:
    return {
        "source": "template", "template_id": t.id, "template_name": t.name, "kind": t.kind,
        "texts": t.texts, "content": t.content, "channels": t.channels, "cap": t.cap,
        "fields": t.fields, "area_geojson": t.area, "municipality_nis": t.area_nis,
        "area_label": t.area_label, "warnings": [],
    }


def _draft_prefill(draft: dict[str, Any], draft_id: str) -> dict[str, Any]:
    """The composer's prefill from ``campaigns.drafts.get_draft`` (an imported CAP alert)."""
    area = draft.get("area_geojson", draft.get("area"))
    if isinstance(area, str):
        area = json.loads(area)
    warnings = [w if isinstance(w, str)
                else ": ".join(str(x) for x in (w.get("element"), w.get("message")) if x)
                for w in draft.get("warnings") or []]
    return {
        "source": "draft", "draft_id": draft_id, "template_name": draft.get("name") or "",
        "kind": draft.get("kind") or "alert", "texts": dict(draft.get("texts") or {}),
        "content": dict(draft.get("content") or {}),
        "channels": list(draft.get("channels") or []),
        "cap": {k: str(v) for k, v in (draft.get("cap") or draft.get("cap_params") or {}).items()
                if k in ("event", "category", "urgency", "severity", "certainty") and v},
        "fields": [], "area_geojson": area,
        "municipality_nis": None if area else draft.get("area_nis"),
        "area_label": draft.get("area_name") or "imported area", "warnings": warnings,
    }


def _schedule_supported() -> bool:
    from tocsin.web.routes.api import CampaignBody

    return "scheduled_for" in CampaignBody.model_fields


@router.get("/campaigns/new")
def compose(request: Request, template: str | None = None, draft: str | None = None,
            op: Operator = Depends(current_operator)) -> Response:
    """The composer: map, content per language and channel, live SMS preview, estimate, launch.

    ``?template=<id>`` opens it prefilled from a template (step 2 of a template
    launch: check); ``?draft=<id>`` from a draft (an imported CAP alert).
    Unknown or another authority's template or draft: 404.
    """
    engine = engine_of(request)
    authority = authorities.get_authority(engine, op.authority_id)
    official = [lang for lang in authority.languages if lang in ALL_LANGUAGES]
    others = [lang for lang in ALL_LANGUAGES if lang not in official]
    prefill: dict[str, Any] | None = None
    if template:
        prefill = _template_prefill(tpl.get_template(engine, template, op.authority_id))
    elif draft:
        try:
            from tocsin.campaigns import drafts
        except ImportError:  # pragma: no cover - only in a partial development tree
            raise LookupError(draft) from None
        prefill = _draft_prefill(drafts.get_draft(engine, draft, op.authority_id), draft)
    try:
        from tocsin.messages.content import required_languages

        required = list(required_languages(authority.id, authority.parent_id))
    except ImportError:  # pragma: no cover - only in a partial development tree
        required = []
    return render(
        request,
        "compose.html",
        authority=authority,
        official_languages=official,
        other_languages=others,
        languages=[*official, *others],
        required_languages=required,
        language_names=LANGUAGE_NAMES,
        kinds=KINDS,
        kind_sentences=KIND_SENTENCES,
        channels=CHANNELS,
        content_labels=CONTENT_LABELS,
        prefill=prefill,
        can_save_template=op.role in tpl.EDIT_ROLES,
        schedule=_schedule_supported(),
        sms_max_segments=settings_of(request).sms_max_segments,
    )


def _report(request: Request, op: Operator, campaign_id: str) -> dict:
    data: dict = campaign_services().campaign_report(
        engine_of(request), campaign_id, settings=settings_of(request)
    )
    if data.get("authority_id") != op.authority_id and op.role != "federal_operator":
        raise LookupError(campaign_id)  # other authorities' campaigns do not exist for you
    return data


@router.get("/campaigns/{campaign_id}")
def campaign_page(
    campaign_id: str, request: Request, op: Operator = Depends(current_operator)
) -> Response:
    """Live progress per channel, then the final report (F26)."""
    report = _report(request, op, campaign_id)
    return render(request, "campaign.html", report=report, language_names=LANGUAGE_NAMES)


@router.get("/campaigns/{campaign_id}/final")
def campaign_final(
    campaign_id: str, request: Request, op: Operator = Depends(current_operator)
) -> Response:
    """The final report table alone (inserted by the progress page when sending ends)."""
    report = _report(request, op, campaign_id)
    return render(request, "_report_final.html", report=report, language_names=LANGUAGE_NAMES)
