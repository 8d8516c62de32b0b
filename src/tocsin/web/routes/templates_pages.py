"""Template pages (SPEC F15), "save as template" from the composer, and the CAP import upload.

Launching a template takes three actions from the dashboard or ``/templates``:
"Use" (opens the composer prefilled, with the estimate computed at once),
"Launch…" (the confirmation, which names the kind), "Launch" / "Send LIVE
alert now" (live: after typing the area name, F34).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from tocsin.campaigns import rules
from tocsin.messages import templates as tpl
from tocsin.messages.content import FIELD_MAX
from tocsin.web import i18n
from tocsin.web.deps import (
    Operator,
    check_form_csrf,
    client_ip,
    current_operator,
    engine_of,
    error_text,
    language_of,
    render,
    require_api_csrf,
    settings_of,
    translate,
)
from tocsin.web.i18n import N_

router = APIRouter()

LANGUAGE_NAMES = {"fr": N_("French"), "nl": N_("Dutch"), "de": N_("German"), "en": N_("English")}
CONTENT_LABELS = {
    "voice": N_("Voice script"), "email_subject": N_("E-mail subject"),
    "email_text": N_("E-mail body"), "email_html": N_("E-mail body, HTML version"),
    "cap_event": N_("CAP event"), "cap_headline": N_("CAP headline"),
    "cap_description": N_("CAP description"), "cap_instruction": N_("CAP instruction"),
}
CAP_CHOICES = {
    "urgency": ("Immediate", "Expected", "Future", "Past", "Unknown"),
    "severity": ("Extreme", "Severe", "Moderate", "Minor", "Unknown"),
    "certainty": ("Observed", "Likely", "Possible", "Unlikely", "Unknown"),
}
MAX_CAP_UPLOAD = 1024 * 1024  # bytes: an alert with detailed polygons stays far below


def _forbidden(request: Request, op: Operator) -> Response:
    return render(request, "error.html", 403, title=translate(request, "Not allowed"),
                  message=translate(request, "A %(role)s may read templates but not change "
                                    "them. Ask an admin or an operator of your authority.",
                                    role=i18n.label("role", op.role, language_of(request))))


def _languages(engine: Any, op: Operator) -> list[str]:
    from tocsin.authorities import services as authorities

    official = authorities.get_authority(engine, op.authority_id).languages
    return [*[x for x in official if x in rules.LANGUAGES],
            *[x for x in rules.LANGUAGES if x not in official]]


def _blank_values() -> dict[str, Any]:
    return {"name": "", "description": "", "kind": "alert", "channels": ["sms", "email", "cap"],
            "texts": {}, "content": {}, "fields": "", "area": "", "cap": {}}


def _values_of(t: tpl.TemplateInfo) -> dict[str, Any]:
    return {"name": t.name, "description": t.description, "kind": t.kind,
            "channels": t.channels, "texts": t.texts, "content": t.content,
            "fields": ", ".join(t.fields), "area": t.area_nis or ("drawn" if t.area else ""),
            "cap": t.cap}


def _values_from_form(form: FormData) -> dict[str, Any]:
    def text(key: str) -> str:
        value = form.get(key)
        return value if isinstance(value, str) else ""

    texts = {lang: text(f"text-{lang}") for lang in rules.LANGUAGES if text(f"text-{lang}")}
    content: dict[str, dict[str, str]] = {}
    for lang in rules.LANGUAGES:
        per = {f: text(f"content-{lang}-{f}") for f in CONTENT_LABELS
               if text(f"content-{lang}-{f}").strip()}
        if per:
            content[lang] = per
    return {"name": text("name"), "description": text("description"), "kind": text("kind"),
            "channels": [c for c in form.getlist("channels") if isinstance(c, str)],
            "texts": texts, "content": content, "fields": text("fields"),
            "area": text("area").strip(),
            "cap": {k: text(f"cap-{k}") for k in ("event", *CAP_CHOICES) if text(f"cap-{k}")}}


def _input_of(values: dict[str, Any], saved: tpl.TemplateInfo | None) -> tpl.TemplateInput:
    area = values["area"]
    drawn = saved.area if (saved is not None and area == "drawn") else None
    return tpl.TemplateInput(
        name=values["name"], kind=values["kind"], channels=values["channels"],
        texts=values["texts"], content=values["content"],
        fields=[f for f in values["fields"].replace(";", ",").split(",") if f.strip()],
        description=values["description"], area_geojson=drawn,
        area_nis=None if area in ("", "drawn") else area, cap=values["cap"])


def _form_page(request: Request, op: Operator, values: dict[str, Any],
               template: tpl.TemplateInfo | None, status: int = 200,
               error: tpl.TemplateInputError | None = None) -> Response:
    engine = engine_of(request)
    from tocsin.authorities import services as authorities

    authority = authorities.get_authority(engine, op.authority_id)
    return render(
        request, "template_form.html", status, saved=template, values=values,
        error=error, languages=_languages(engine, op), official=authority.languages,
        language_names=LANGUAGE_NAMES, content_labels=CONTENT_LABELS,
        kinds=rules.KINDS, channels=rules.CHANNELS, cap_choices=CAP_CHOICES,
        municipalities=tpl.municipality_choices(engine, op.authority_id),
        limits={"name": tpl.MAX_NAME, "description": tpl.MAX_DESCRIPTION,
                "cap_event": FIELD_MAX["cap_event"]})


@router.get("/templates")
def template_list(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """Step 1 of a template launch: the authority's templates, one "Use" button each."""
    rows = tpl.list_templates(engine_of(request), op.authority_id)
    return render(request, "templates.html", templates=rows,
                  can_edit=op.role in tpl.EDIT_ROLES, language_names=LANGUAGE_NAMES)


@router.get("/templates/new")
def template_new(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The empty template form (admins and operators)."""
    if op.role not in tpl.EDIT_ROLES:
        return _forbidden(request, op)
    return _form_page(request, op, _blank_values(), None)


@router.post("/templates/new")
async def template_create(request: Request,
                          op: Operator = Depends(current_operator)) -> Response:
    """Create the template; the form comes back (422) with the error next to its field."""
    form = await request.form()
    check_form_csrf(request, _str(form.get("csrf_token")))
    if op.role not in tpl.EDIT_ROLES:
        return _forbidden(request, op)
    values = _values_from_form(form)
    try:
        tpl.create_template(engine_of(request), op.authority_id, _input_of(values, None),
                            actor=op.username, role=op.role, source=client_ip(request))
    except tpl.TemplateInputError as exc:
        return _form_page(request, op, values, None, 422, exc)
    return RedirectResponse("/templates", status_code=303)


@router.get("/templates/{template_id}/edit")
def template_edit(template_id: str, request: Request,
                  op: Operator = Depends(current_operator)) -> Response:
    """The template form, filled in (404 for another authority's template)."""
    t = tpl.get_template(engine_of(request), template_id, op.authority_id)
    if op.role not in tpl.EDIT_ROLES:
        return _forbidden(request, op)
    return _form_page(request, op, _values_of(t), t)


@router.post("/templates/{template_id}/edit")
async def template_update(template_id: str, request: Request,
                          op: Operator = Depends(current_operator)) -> Response:
    """Save the changed template."""
    form = await request.form()
    check_form_csrf(request, _str(form.get("csrf_token")))
    engine = engine_of(request)
    t = tpl.get_template(engine, template_id, op.authority_id)
    if op.role not in tpl.EDIT_ROLES:
        return _forbidden(request, op)
    values = _values_from_form(form)
    try:
        tpl.update_template(engine, t.id, op.authority_id, _input_of(values, t),
                            actor=op.username, role=op.role, source=client_ip(request))
    except tpl.TemplateInputError as exc:
        return _form_page(request, op, values, t, 422, exc)
    return RedirectResponse("/templates", status_code=303)


@router.post("/templates/{template_id}/delete")
async def template_delete(template_id: str, request: Request,
                          op: Operator = Depends(current_operator)) -> Response:
    """Delete the template (campaigns launched from it are kept)."""
    form = await request.form()
    check_form_csrf(request, _str(form.get("csrf_token")))
    engine = engine_of(request)
    tpl.get_template(engine, template_id, op.authority_id)  # 404 before 403
    if op.role not in tpl.EDIT_ROLES:
        return _forbidden(request, op)
    tpl.delete_template(engine, template_id, op.authority_id, actor=op.username, role=op.role,
                        source=client_ip(request))
    return RedirectResponse("/templates", status_code=303)


class TemplateBody(BaseModel):
    """The composer's "Save as template": its current kind, texts, content, channels, area."""

    name: str
    description: str = ""
    kind: str = "alert"
    channels: list[str] = Field(default_factory=list)
    texts: dict[str, str] = Field(default_factory=dict)
    content: dict[str, dict[str, str]] = Field(default_factory=dict)
    fields: list[str] = Field(default_factory=list)
    area_geojson: dict[str, Any] | None = None
    municipality_nis: str | None = None
    cap: dict[str, str] = Field(default_factory=dict)


@router.post("/api/templates", status_code=201, dependencies=[Depends(require_api_csrf)])
def api_create_template(body: TemplateBody, request: Request,
                        op: Operator = Depends(current_operator)) -> Any:
    """Save the composer's message as a template; answers the stored template (201).

    422 ``{"error": {"field", "reason"}}`` on bad input, 403 for viewers.
    """
    if op.role not in tpl.EDIT_ROLES:
        return JSONResponse({"error": {"field": "role", "reason": f"a {op.role} cannot "
                                                                  "save templates"}}, 403)
    data = tpl.TemplateInput(
        name=body.name, kind=body.kind, channels=body.channels,
        texts={k: v for k, v in body.texts.items() if v.strip()}, content=body.content,
        fields=body.fields, description=body.description, area_geojson=body.area_geojson,
        area_nis=body.municipality_nis, cap=body.cap)
    t = tpl.create_template(engine_of(request), op.authority_id, data, actor=op.username,
                            role=op.role, source=client_ip(request))
    return jsonable_encoder(t.to_json())


@router.post("/campaigns/import-cap")
async def import_cap(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """Upload an upstream CAP alert (at most 1 MiB); it becomes a draft opened in the composer.

    Bad XML or CAP answers 422 with the error naming the element.
    """
    form = await request.form()
    check_form_csrf(request, _str(form.get("csrf_token")))
    if op.role not in tpl.EDIT_ROLES:
        return render(request, "error.html", 403, title=translate(request, "Not allowed"),
                      message=translate(request, "A %(role)s cannot prepare campaigns.",
                                        role=i18n.label("role", op.role, language_of(request))))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_error(request, 422, translate(request, "file: choose a CAP file (.xml) "
                                                     "to import."))
    data = await upload.read(MAX_CAP_UPLOAD + 1)
    if len(data) > MAX_CAP_UPLOAD:
        return _import_error(request, 413, translate(
            request, "file: %(name)s is larger than 1 MiB; a CAP alert is much smaller. Is it "
            "the right file?", name=upload.filename))
    if not data.strip():
        return _import_error(request, 422, translate(request, "file: %(name)s is empty.",
                                                     name=upload.filename))
    try:
        from tocsin.campaigns import drafts
        from tocsin.cap import importer
    except ImportError:
        return _import_error(request, 503, translate(
            request, "CAP import is not available on this server."))
    engine, settings = engine_of(request), settings_of(request)
    try:
        draft = drafts.import_cap_draft(engine, op.authority_id, data, op.username,
                                        source=client_ip(request), settings=settings,
                                        max_bytes=MAX_CAP_UPLOAD)
    except importer.CapImportError as exc:
        problems = [f"{p.element}: {error_text(request, p) if p.template else p.message}"
                    for p in exc.problems]
        if len(problems) == 1:
            return _import_error(request, 422, f"{upload.filename}: {problems[0]}.")
        return _import_error(request, 422, translate(request, "%(name)s: %(count)s problems.",
                                                     name=upload.filename, count=len(problems)),
                             problems)
    except ValueError as exc:
        # CampaignInputError names the field.
        where = getattr(exc, "field", None)
        reason = error_text(request, exc)
        message = f"{where}: {reason}" if where else reason
        return _import_error(request, 422, f"{upload.filename}: {message}.")
    return RedirectResponse(f"/campaigns/new?draft={draft['campaign_id']}", status_code=303)


@router.post("/campaigns/{campaign_id}/delete-draft")
async def delete_draft(campaign_id: str, request: Request,
                       op: Operator = Depends(current_operator)) -> Response:
    """Delete a draft (confirmed on the page); anything that is not a draft is refused."""
    form = await request.form()
    check_form_csrf(request, _str(form.get("csrf_token")))
    if op.role not in tpl.EDIT_ROLES:
        return render(request, "error.html", 403, title=translate(request, "Not allowed"),
                      message=translate(request, "A %(role)s cannot delete drafts.",
                                        role=i18n.label("role", op.role, language_of(request))))
    from tocsin.campaigns import drafts
    from tocsin.campaigns.services import CampaignInputError

    try:
        drafts.delete_draft(engine_of(request), campaign_id, op.authority_id, op.username,
                            source=client_ip(request))
    except CampaignInputError as exc:
        return render(request, "error.html", 422, title=translate(request, "Draft not deleted"),
                      message=f"{exc.field}: {error_text(request, exc)}.")
    return RedirectResponse("/?deleted=draft", status_code=303)


def _import_error(request: Request, status: int, message: str,
                  problems: list[str] | None = None) -> Response:
    return render(request, "error.html", status, title=translate(request, "CAP alert not imported"),
                  message=message + " " + translate(request, "Nothing was saved."),
                  problems=problems or [])


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
