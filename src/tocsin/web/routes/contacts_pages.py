"""Contact lists and groups pages (SPEC F10, F11): import in steps (upload -> mapping ->
preview -> confirm -> result), the error report as CSV, and groups.

Routes parse the form, call one service of ``subscribers.contacts`` /
``subscribers.groups`` and render; the policy decides (a refusal is a 403 page).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import UploadFile
from starlette.responses import Response

from tocsin.core.i18n import N_
from tocsin.subscribers import contacts as svc
from tocsin.subscribers import groups as grp
from tocsin.subscribers.contact_rules import FIELDS, IGNORE, header_key, known_field
from tocsin.web.actors import acting
from tocsin.web.deps import (
    Operator,
    check_form_csrf,
    current_operator,
    engine_of,
    render,
    translate,
)

router = APIRouter()

#: The reason of each error code, as _contact_errors.html words it (msgids there).
REASONS = {
    "file": "the file cannot be read",
    "phone": "not a valid phone number",
    "emergency_number": "an emergency number (112, 100, 101) is never put in a contact list",
    "premium_rate": "a premium-rate or shared-cost number is refused",
    "shared_cost": "070 numbers are shared-cost numbers and cannot receive alerts",
    "not_mobile": "not a mobile number: a landline cannot receive SMS",
    "email": "not a valid e-mail address",
    "language": "unknown language: use fr, nl, de or en",
    "formula": "a formula, not a value: export the values",
    "duplicate": "the same contact as an earlier row",
    "no_contact": "no mobile number and no e-mail address",
    "name": "the name is too long or holds a control character",
    "unknown_column": "unknown column: choose what it holds below",
    "duplicate_column": "two columns hold the same field: set one of them to Ignore",
    "no_contact_column": "no column of mobile numbers or e-mail addresses",
}

#: The fields of a contact as the import page names them (msgids there), and the header row.
FIELD_NAMES = {"name": "Name", "first_name": "First name", "last_name": "Last name",
               "mobile": "Mobile number (GSM)", "email": "E-mail address",
               "language": "Language", "header": N_("Column titles"), "file": "File"}

_MAX_UPLOAD = 10 * 1024 * 1024 + 1


def _lists_page(request: Request, op: Operator, status: int = 200,
                **context: Any) -> Response:
    actor = acting(request, op)
    lists = svc.contact_lists(engine_of(request), actor.authority.id, actor)
    return render(request, "contacts.html", status, lists=lists, **context)


@router.get("/contacts")
def contacts_page(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The authority's contact lists and the upload form of an import."""
    return _lists_page(request, op)


@router.post("/contacts/import")
async def contacts_upload(request: Request, op: Operator = Depends(current_operator)
                          ) -> Response:
    """Step 1: keep the uploaded file, then show the mapping or the preview."""
    form = await request.form()
    check_form_csrf(request, _text(form.get("csrf_token")))
    upload = form.get("file")
    list_name = _text(form.get("list"))
    data, filename = b"", ""
    if isinstance(upload, UploadFile):
        data = await upload.read(_MAX_UPLOAD)
        filename = upload.filename or ""
    actor = acting(request, op)
    try:
        stored = svc.store_upload(engine_of(request), data, actor.authority.id, list_name,
                                  filename, actor)
    except svc.ContactInputError as exc:
        return _lists_page(request, op, 422, error=exc, list_name=list_name)
    return _preview(request, op, stored.token, {})


@router.post("/contacts/import/{token}/preview")
async def contacts_preview(token: str, request: Request,
                           op: Operator = Depends(current_operator)) -> Response:
    """Step 2 (again): the preview with the columns mapped as chosen."""
    form = await request.form()
    check_form_csrf(request, _text(form.get("csrf_token")))
    return _preview(request, op, token, _mapping_of(form))


@router.post("/contacts/import/{token}/confirm")
async def contacts_confirm(token: str, request: Request,
                           op: Operator = Depends(current_operator)) -> Response:
    """Step 3: import for real (all or nothing) and show the result."""
    form = await request.form()
    check_form_csrf(request, _text(form.get("csrf_token")))
    mapping = _mapping_of(form)
    engine = engine_of(request)
    actor = acting(request, op)
    try:
        upload, data = svc.load_upload(engine, token, actor)
        result = svc.import_contacts(engine, data, upload.authority_id, upload.list_name,
                                     mapping=mapping, actor=actor, source="web")
    except svc.ContactInputError as exc:
        return _lists_page(request, op, 422, error=exc)
    if result.errors:
        return _render_preview(request, upload, result, mapping, 422)
    svc.forget_upload(engine, token)
    return render(request, "contacts_import.html", step="result", upload=upload,
                  result=result, mapping=mapping)


@router.get("/contacts/import/{token}/errors.csv")
def contacts_errors_csv(token: str, request: Request, map: str = "",
                        op: Operator = Depends(current_operator)) -> Response:
    """The bad rows of an upload as CSV (row, column, field, value, reason), formulas
    escaped (no CSV injection)."""
    engine = engine_of(request)
    actor = acting(request, op)
    mapping = dict(pair.split("=", 1) for pair in map.split("\x1f") if "=" in pair)
    try:
        upload, data = svc.load_upload(engine, token, actor)
        result = svc.import_contacts(engine, data, upload.authority_id, upload.list_name,
                                     mapping=mapping, dry_run=True, actor=actor,
                                     source="web")
    except svc.ContactInputError as exc:
        return _lists_page(request, op, 422, error=exc)
    # In the reader's language, as the page shows them (the English detail is for the CLI).
    errors = [{**e, "field": translate(request, FIELD_NAMES.get(e["field"], e["field"])),
               "reason": translate(request, REASONS.get(e["code"], e["reason"]))}
              for e in result.errors]
    headers = [translate(request, h) for h in ("Row", "Column", N_("Field"), "Value",
                                                  "Reason")]
    body = "\ufeff" + svc.error_report_csv(errors, headers)  # type: ignore[arg-type]  # BOM: Excel reads it as UTF-8
    return Response(body.encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="contact-import-errors.csv"'})


def _preview(request: Request, op: Operator, token: str, mapping: dict[str, str]) -> Response:
    engine = engine_of(request)
    actor = acting(request, op)
    try:
        upload, data = svc.load_upload(engine, token, actor)
        result = svc.import_contacts(engine, data, upload.authority_id, upload.list_name,
                                     mapping=mapping, dry_run=True, actor=actor,
                                     source="web")
    except svc.ContactInputError as exc:
        return _lists_page(request, op, 422, error=exc)
    return _render_preview(request, upload, result, mapping,
                           200 if not result.errors else 422)


def _render_preview(request: Request, upload: svc.Upload, result: svc.ImportResult,
                    mapping: dict[str, str], status: int) -> Response:
    header_codes = {"unknown_column", "duplicate_column", "no_contact_column"}
    needs_mapping = any(e["code"] in header_codes for e in result.errors)
    headers = _headers(result, mapping)
    errors_link = "\x1f".join(f"{k}={v}" for k, v in mapping.items())
    return render(request, "contacts_import.html", status,
                  step="mapping" if needs_mapping else "preview", upload=upload,
                  result=result, mapping=mapping, headers=headers, fields=FIELDS,
                  ignore=IGNORE, errors_map=errors_link)


def _headers(result: svc.ImportResult, mapping: dict[str, str]) -> list[dict[str, str]]:
    """Every column of the file with the field it is mapped to now ('' = not mapped)."""
    folded = {header_key(k): v for k, v in mapping.items()}
    return [{"title": title,
             "field": folded.get(header_key(title)) or result.columns.get(title)
             or ("" if any(e["column"] == title for e in result.errors) else IGNORE)}
            for title in dict.fromkeys(result.headers)]


def _mapping_of(form: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in form.multi_items():
        # Only what differs from the names recognised anyway is a mapping to remember.
        if (key.startswith("map:") and isinstance(value, str) and value
                and known_field(key[4:]) != value):
            out[key[4:]] = value
    return out


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# ----------------------------------------------------------------------------- groups


def _groups_page(request: Request, op: Operator, status: int = 200,
                 **context: Any) -> Response:
    actor = acting(request, op)
    engine = engine_of(request)
    groups = grp.list_groups(engine, actor.authority.id, actor)
    lists = svc.contact_lists(engine, actor.authority.id, actor)
    return render(request, "groups.html", status, groups=groups, lists=lists, **context)


@router.get("/groups")
def groups_page(request: Request, done: str = "",
                op: Operator = Depends(current_operator)) -> Response:
    """The groups the authority may use, and the forms that change them."""
    return _groups_page(request, op, done=done)


def _group_action(request: Request, op: Operator, call: Any, done: str) -> Response:
    try:
        call(acting(request, op))
    except svc.ContactInputError as exc:
        return _groups_page(request, op, 422, error=exc)
    return RedirectResponse(f"/groups?done={done}", status_code=303)


@router.post("/groups")
async def groups_create(request: Request, op: Operator = Depends(current_operator)
                        ) -> Response:
    """Create a group: static, or geographic when an area file (GeoJSON) is given."""
    form = await request.form()
    check_form_csrf(request, _text(form.get("csrf_token")))
    area = form.get("area")
    data = await area.read(_MAX_UPLOAD) if isinstance(area, UploadFile) else b""
    return _group_action(request, op, lambda a: grp.create_group(
        engine_of(request), a.authority.id, _text(form.get("name")),
        area_geojson=data or None, actor=a, source="web"), "created")


@router.post("/groups/members")
def groups_members(request: Request, group: str = Form(""), list_name: str = Form(""),
                   action: str = Form("add"), csrf_token: str = Form(""),
                   op: Operator = Depends(current_operator)) -> Response:
    """Add (or remove) every contact of a list to (from) a static group."""
    check_form_csrf(request, csrf_token)
    return _group_action(request, op, lambda a: grp.change_members(
        engine_of(request), a.authority.id, group, list_name, remove=action == "remove",
        actor=a, source="web"), "removed" if action == "remove" else "added")


@router.post("/groups/delete")
def groups_delete(request: Request, group: str = Form(""), csrf_token: str = Form(""),
                  op: Operator = Depends(current_operator)) -> Response:
    """Delete a group (its contacts stay in their lists)."""
    check_form_csrf(request, csrf_token)
    return _group_action(request, op, lambda a: grp.delete_group(
        engine_of(request), a.authority.id, group, actor=a, source="web"), "deleted")
