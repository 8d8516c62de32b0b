"""Server-rendered pages: dashboard, campaign composer, campaign progress and report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import FileResponse, Response

from tocsin.authorities import services as authorities
from tocsin.campaigns import rules
from tocsin.messages import templates as tpl
from tocsin.messages.content import FIELD_MAX, FIELD_VALUE_MAX, TEXT_MAX
from tocsin.web.actors import acting, authority_of
from tocsin.web.deps import (
    Operator,
    brussels_time,
    current_operator,
    engine_of,
    language_of,
    public_url_of,
    render,
    settings_of,
    translate,
)
from tocsin.web.i18n import N_, error_text, gettext
from tocsin.web.routes._campaigns import campaign_services

router = APIRouter()

FAVICON = Path(__file__).resolve().parent.parent / "static" / "favicon.svg"

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
# The sentence the operator confirms; said again in the launch dialog.
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
CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail", "cap": "CAP feed (alert maps, panels)",
                  "voice": "Voice call (landlines, mobiles chosen for calls)"}
CONTENT_LABELS = {
    "voice": "Voice script", "email_subject": "E-mail subject", "email_text": "E-mail body",
    "email_html": "E-mail body, HTML version", "cap_event": "CAP event",
    "cap_headline": "CAP headline", "cap_description": "CAP description",
    "cap_instruction": "CAP instruction",
}
KINDS = tuple((k, KIND_LABELS.get(k, k.capitalize())) for k in rules.KINDS)
CHANNELS = tuple((c, CHANNEL_LABELS.get(c, c)) for c in rules.CHANNELS)
#: Location-based channels (F18, F31), offered apart: they reach unregistered phones too.
#: Their labels are the composer template's (CHANNEL_LABELS).
LOCATION_CHANNELS = tuple((c, c) for c in rules.LOCATION_CHANNELS)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """The tab icon (browsers ask for /favicon.ico whatever the page links): an SVG bell."""
    return FileResponse(FAVICON, media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})


def message_label(c: dict[str, Any]) -> str:
    """What a campaign is for its readers: "Alert", "Update", "All clear" or "Cancel".

    The services' ``label`` when they give one, else derived from the CAP
    ``msg_type`` and ``response_type`` (CAP 1.2 §3.2.1, §3.2.2).
    """
    if c.get("label"):
        return str(c["label"])
    if c.get("msg_type") == "Cancel":
        return "Cancel"
    if c.get("response_type") == "AllClear":
        return "All clear"
    if c.get("msg_type") == "Update":
        return "Update"
    return "Alert"


_CHAIN_WORDS = {"Update": "updated", "All clear": "all clear", "Cancel": "cancelled"}


def _chain_notes(rows: list[dict[str, Any]]) -> None:
    """Say on each row how it belongs to its chain: a follow-up's ``relation`` (the
    message it refers to: ``{"label", "campaign_id", "area_name", "launched_at"}``) and a
    first message's ``chain_state`` (``[{"word", "launched_at", "campaign_id"}]``: what
    became of it: updated, all clear, cancelled)."""
    by_id = {r["campaign_id"]: r for r in rows}
    for row in rows:
        ref = row.get("references_id")
        if ref:
            parent = by_id.get(ref)
            row["relation"] = {
                "label": message_label(row).lower(), "campaign_id": ref,
                "of": ((str(parent.get("kind") or "").lower()
                        if message_label(parent) == "Alert" else message_label(parent).lower())
                       if parent else "an earlier message"),
                "of_kind": (parent.get("kind") if parent and message_label(parent) == "Alert"
                            else None),
                "of_label": (message_label(parent) if parent and message_label(parent) != "Alert"
                             else None),
                "area_name": parent.get("area_name") if parent else "",
                "launched_at": (parent.get("launched_at") or parent.get("created_at"))
                if parent else None,
            }
        state = []
        for f in row.get("follow_ups") or []:
            word = _CHAIN_WORDS.get(message_label(f))
            if word:
                state.append({"word": word, "launched_at": f.get("launched_at"),
                              "campaign_id": f.get("campaign_id")})
        row["chain_state"] = state


def message_badge(label: str) -> str:
    """The badge of a message's type: a first message (CAP ``Alert``, whatever its kind) is
    "New", so that a warning or an exercise is never badged "Alert"; the kind is shown
    beside it."""
    return "New" if label == "Alert" else label


@router.get("/")
def dashboard(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The templates (launch in three steps) and the campaigns of the operator's authority."""
    engine = engine_of(request)
    rows = campaign_services().list_campaigns(engine, acting(request, op), op.environment)
    for row in rows:
        row["label"] = message_label(row)
        row["badge"] = message_badge(row["label"])
    _chain_notes(rows)
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


def _local_input(value: Any) -> str:
    """An RFC 3339 time (or aware datetime) as a ``datetime-local`` value in Brussels time."""
    return brussels_time(value, "%Y-%m-%dT%H:%M") if value else ""


def _draft_prefill(draft: dict[str, Any], draft_id: str, language: str = "en"
                   ) -> dict[str, Any]:
    """The composer's prefill from ``campaigns.drafts.get_draft`` (an imported CAP alert);
    the import warnings written once per language are shown in ``language``."""
    area = draft.get("area_geojson", draft.get("area"))
    if isinstance(area, str):
        area = json.loads(area)
    warnings = [w if isinstance(w, str)
                else ": ".join(str(x) for x in (w.get("element"), error_text(w, language)) if x)
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
        "area_label": draft.get("area_name") or gettext(language, N_("imported area")),
        "warnings": warnings,
        "blocking": [f"{b['element']}: {b['message']}" for b in draft.get("blocking") or []],
        "expires_local": _local_input(draft.get("expires_at")),
    }


def _update_prefill(engine: Any, campaign_id: str, op: Operator) -> dict[str, Any]:
    """The composer's prefill for an update of campaign ``campaign_id`` (CAP Update, F19),
    from ``campaigns.followups.update_source``. Raises ``LookupError`` when there is
    nothing of this operator's to update."""
    src = campaign_services().update_source(engine, campaign_id, op.authority_id,
                                            op.environment)
    return {
        "source": "update", "update_id": src["campaign_id"], "template_name": src["area_name"],
        "kind": src["kind"], "texts": src["texts"], "content": src["content"],
        "channels": src["channels"], "cap": src["cap"], "fields": [],
        "area_geojson": src["area"], "municipality_nis": src["area_nis"],
        "area_label": src["area_name"], "warnings": [],
        "expires_local": _local_input(src["expires_at"]),
        "original_launched_at": brussels_time(src["launched_at"], "%Y-%m-%d %H:%M"),
    }


def _schedule_supported() -> bool:
    from tocsin.web.routes.api import CampaignBody

    return "scheduled_for" in CampaignBody.model_fields


def _composer_refused(request: Request, rule: str, reason: str, name: str) -> Response:
    """The page a user gets instead of the composer (403): what the authority's agreement
    or the user's role allows, in the page's language (SPEC F2)."""
    if rule == "agreement_groups_only":
        return render(
            request, "error.html", 403,
            title=translate(request, "%(name)s: no alerts to an area", name=name),
            message=translate(
                request, "%(name)s has a type-2 agreement: it may alert named groups and "
                "contact lists (SMS, voice call, e-mail), never the population of an area.",
                name=name),
            problems=[
                translate(request, "%(name)s has no group or contact list yet: import a list "
                          "(Contact lists) to alert its people from the composer.",
                          name=name),
                translate(request, "Only an authority bound by law to warn the population "
                          "(type-1 agreement) alerts an area; the federal operator records "
                          "the agreements."),
            ])
    if rule == "no_agreement":
        return render(
            request, "error.html", 403,
            title=translate(request, "%(name)s: no alerts", name=name),
            message=translate(request, "%(name)s has no agreement with the platform: it cannot "
                              "send. The federal operator records the agreements.", name=name))
    return render(request, "error.html", 403, title=translate(request, "Not for your role"),
                  message=reason[:1].upper() + reason[1:] + ".")


def _pickable(engine: Any, actor: Any, authority_id: str, target: Any) -> dict[str, Any]:
    """The groups and contact lists the composer offers (issue 10): those of the authority
    and its cooperation, when the actor may read contacts (``contacts.read``), else none."""
    from tocsin.authorities.policy import Action, decide

    if not decide(actor, Action.CONTACTS_READ, target):
        return {"groups": [], "lists": []}
    from tocsin.subscribers.contacts import contact_lists
    from tocsin.subscribers.groups import list_groups

    return {"groups": list_groups(engine, authority_id, actor),
            "lists": contact_lists(engine, authority_id, actor)}


@router.get("/campaigns/new")
def compose(request: Request, template: str | None = None, draft: str | None = None,
            update: str | None = None, op: Operator = Depends(current_operator)) -> Response:
    """The composer: map, content per language and channel, live SMS preview, estimate, launch.

    ``?template=<id>`` opens it prefilled from a template (step 2 of a template
    launch: check); ``?draft=<id>`` from a draft (an imported CAP alert);
    ``?update=<id>`` prefilled with a sent campaign's content, to send its update
    (POST /api/campaigns/<id>/update). Unknown or another authority's template,
    draft or campaign: 404. A role that cannot prepare campaigns (a viewer) gets a page
    saying so (403) instead of a composer whose every estimate would be refused.
    """
    from tocsin.authorities.policy import Action, AuthorityFacts, Target, decide

    actor = acting(request, op)
    engine = engine_of(request)
    authority = authorities.get_authority(engine, authority_of(request, op))
    # The agreement of the authority the campaign is for: the federal operator acting
    # for a type-2 municipality must see what that municipality may send.
    facts = AuthorityFacts(id=authority.id, kind=authority.kind,
                           parent_id=authority.parent_id,
                           agreement_type=authority.agreement_type)
    target = Target(authority=facts if authority.id != actor.authority.id else actor.authority)
    refusal = decide(actor, Action.CAMPAIGN_PREPARE, target)
    groups_only = False
    if not refusal and refusal.rule == "agreement_groups_only":
        # A type-2 authority sends to its groups and lists only (issue 10): the composer
        # without the area, when it has some to choose from.
        from dataclasses import replace

        pick = _pickable(engine, actor, authority.id, target)
        if (pick["groups"] or pick["lists"]) and decide(
                actor, Action.CAMPAIGN_PREPARE, replace(target, group_only=True)):
            refusal, groups_only = decide(actor, Action.CAMPAIGN_PREPARE,
                                          replace(target, group_only=True)), True
    if not refusal:
        return _composer_refused(request, refusal.rule, refusal.reason, authority.name)
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
        prefill = _draft_prefill(drafts.get_draft(engine, draft, op.authority_id), draft,
                                 language_of(request))
    elif update:
        prefill = _update_prefill(engine, update, op)
    try:
        from tocsin.messages.content import required_languages

        required = list(required_languages(authority.id, authority.parent_id))
    except ImportError:  # pragma: no cover - only in a partial development tree
        required = []
    return render(
        request,
        "compose.html",
        pick=_pickable(engine, actor, authority.id, target),
        groups_only=groups_only,
        authority=authority,
        official_languages=official,
        other_languages=others,
        languages=[*official, *others],
        required_languages=required,
        language_names=LANGUAGE_NAMES,
        kinds=KINDS,
        kind_sentences=KIND_SENTENCES,
        kind_labels={k: {lang: rules.kind_label(k, lang).capitalize() for lang in ALL_LANGUAGES}
                     for k in rules.KINDS},
        cap_defaults={k: rules.cap_info_defaults(k) for k in rules.KINDS},
        channels=CHANNELS,
        location_channels=LOCATION_CHANNELS,
        content_labels=CONTENT_LABELS,
        prefill=prefill,
        can_save_template=op.role in tpl.EDIT_ROLES,
        schedule=_schedule_supported() and (prefill or {}).get("source") != "update",
        sms_max_segments=settings_of(request).sms_max_segments,
        # The services' limits, so that the browser stops typing where they would refuse.
        limits={"text": TEXT_MAX, "field_value": FIELD_VALUE_MAX, "content": FIELD_MAX,
                "template_name": tpl.MAX_NAME},
    )


def _report(request: Request, op: Operator, campaign_id: str) -> dict:
    data: dict = campaign_services().campaign_report(
        engine_of(request), campaign_id, settings=settings_of(request),
        public_url=public_url_of(request), actor=acting(request, op))
    return data


def _report_context(request: Request, op: Operator, report: dict[str, Any]) -> dict[str, Any]:
    """What the report page shows besides the report: labels, follow-ups, the actions."""
    report["label"] = message_label(report)
    report["badge"] = message_badge(report["label"])
    follow_ups = report["follow_ups"]
    for f in follow_ups:
        f["label"] = message_label(f)
    original: dict[str, Any] | None = report.get("original")
    if original is not None:
        original["label"] = message_label(original)
    status = report.get("status")
    cap = (report.get("channels") or {}).get("cap") or {}
    may = report.get("permissions") or {}
    own = bool(may.get("update")) and report.get("environment") == op.environment
    follow = own and status in ("sending", "finished") and report.get("msg_type") != "Cancel"
    sent_with_cap = status == "finished" and bool(cap.get("published"))
    chain = report.get("chain") or {}
    # Follow-ups act on the chain's latest message; after an all-clear the alert is over.
    latest_id = chain.get("latest_id") or report["campaign_id"]
    is_latest = latest_id == report["campaign_id"]
    over = bool(chain.get("all_cleared")) or report.get("response_type") == "AllClear"
    # Offer only what the services accept (``rules.follow_up_refusal``: e.g. nothing
    # more once the all-clear was sent).
    refused = chain.get("refused") or {}
    actions = {
        "cancel": bool(may.get("cancel")) and report.get("environment") == op.environment
        and report.get("msg_type") != "Cancel" and (
            status in ("scheduled", "sending") or sent_with_cap)
        and not refused.get("cancel"),
        "send_update": follow and is_latest and not over and not refused.get("update"),
        "all_clear": follow and is_latest and not over and not refused.get("all_clear"),
        "open_draft": status == "draft",
        # Pause, resume, stop a running campaign (``campaigns.control``): the right to
        # cancel it, in the operator's environment.
        "control": bool(may.get("cancel")) and report.get("environment") == op.environment
        and status in ("sending", "paused"),
        "latest": (own and not is_latest and report.get("msg_type") != "Cancel"
                   and status != "cancelled"),
    }
    latest = {"campaign_id": latest_id, "label": chain.get("latest_label") or "",
              "launched_at": chain.get("latest_launched_at"), "over": over}
    all_clear_texts = (campaign_services().default_all_clear_texts(engine_of(request),
                                                                    report["campaign_id"])
                       if actions.get("all_clear") else {})
    return {"follow_ups": follow_ups, "original": original, "actions": actions, "latest": latest,
            "all_clear_texts": all_clear_texts, "language_names": LANGUAGE_NAMES}


@router.get("/campaigns/{campaign_id}")
def campaign_page(
    campaign_id: str, request: Request, op: Operator = Depends(current_operator)
) -> Response:
    """Live progress per channel, then the final report; its updates, all-clear, cancel."""
    report = _report(request, op, campaign_id)
    from tocsin.campaigns.answer_service import answer_options

    return render(request, "campaign.html", report=report,
                  answers=answer_options(engine_of(request), report["campaign_id"]),
                  **_report_context(request, op, report))


def _report_language(request: Request, lang: str | None) -> str:
    """``?lang=`` when given (checked by the service), else the first of fr/nl/de/en the
    browser's ``Accept-Language`` names, else English."""
    if lang:
        return lang.strip().lower()
    ranked = []
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        ranked.append((-weight, tag.strip().lower()[:2]))
    return next((code for _, code in sorted(ranked) if code in ALL_LANGUAGES), "en")


@router.get("/campaigns/{campaign_id}/report.{fmt}")
def campaign_report_file(
    campaign_id: str, fmt: str, request: Request, lang: str | None = None,
    op: Operator = Depends(current_operator),
) -> Response:
    """The report as a file to keep or print: ``report.pdf``, ``report.csv`` or
    ``report.json`` (``?lang=fr|nl|de|en``, else the browser's language)."""
    report = campaign_services().export_report(engine_of(request), campaign_id, fmt,
                           lang=_report_language(request, lang), actor=acting(request, op),
                           settings=settings_of(request), public_url=public_url_of(request))
    return Response(report.content, media_type=report.media_type, headers={
        "Content-Disposition": f'attachment; filename="{report.filename}"'})


@router.get("/campaigns/{campaign_id}/final")
def campaign_final(
    campaign_id: str, request: Request, op: Operator = Depends(current_operator)
) -> Response:
    """The final report table alone (inserted by the progress page when sending ends)."""
    report = _report(request, op, campaign_id)
    return render(request, "_report_final.html", report=report, language_names=LANGUAGE_NAMES)

