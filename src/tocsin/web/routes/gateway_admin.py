"""The federal operator's page for CAP gateway keys (SPEC F24): list, create, revoke.

Only ``federal_operator`` users see it; anyone else gets 403. A new key and
its webhook secret are shown once, on the page answering the creation.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from tocsin.cap.gateway import (
    AlreadyRevoked,
    GatewayKeyError,
    create_key,
    list_keys,
    revoke_key,
)
from tocsin.web.deps import (
    Operator,
    check_form_csrf,
    client_ip,
    current_operator,
    engine_of,
    error_text,
    render,
    settings_of,
    translate,
)
from tocsin.web.i18n import N_

router = APIRouter()

ADMIN_ROLE = "federal_operator"


def federal_operator(op: Operator = Depends(current_operator)) -> Operator:
    """FastAPI dependency: the logged-in operator, who must be a federal operator (else 403)."""
    if op.role != ADMIN_ROLE:
        raise HTTPException(403, N_("CAP gateway keys are managed by the federal operator"))
    return op


def _page(request: Request, status: int = 200, **context: object) -> Response:
    return render(request, "gateway_admin.html", status, keys=list_keys(engine_of(request)),
                  field_labels=FIELD_LABELS, **context)


#: How the page names the fields a refusal is about.
FIELD_LABELS = {"name": N_("Integrator"), "area": N_("Area"), "webhook_url": N_("Webhook URL"),
                "id": N_("Key")}


@router.get("/admin/gateway")
def gateway_keys_page(request: Request, revoked: int | None = None,
                      op: Operator = Depends(federal_operator)) -> Response:
    """The keys, newest first, and the form to create one; ``?revoked=<id>`` (after a
    revocation) says which key was revoked."""
    key = next((k for k in list_keys(engine_of(request))
                if k.id == revoked and k.revoked_at is not None), None)
    return _page(request, revoked=key)


@router.post("/admin/gateway/keys")
def gateway_key_create(
    request: Request,
    name: str = Form(""),
    area: str = Form(""),
    webhook_url: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
    op: Operator = Depends(federal_operator),
) -> Response:
    """Create a key; the answer shows the key and the webhook secret once."""
    check_form_csrf(request, csrf_token_field)
    try:
        created = create_key(engine_of(request), name, op.username, area=area or None,
                             webhook_url=webhook_url or None, source=client_ip(request),
                             settings=settings_of(request))
    except GatewayKeyError as exc:
        return _page(request, 422, error=exc,
                     form={"name": name, "area": area, "webhook_url": webhook_url})
    response = _page(request, 201, created=created)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/admin/gateway/keys/{key_id}/revoke")
def gateway_key_revoke(
    key_id: int,
    request: Request,
    csrf_token_field: str = Form("", alias="csrf_token"),
    op: Operator = Depends(federal_operator),
) -> Response:
    """Revoke a key (the page asks first), then the list saying "Key … revoked"; 404 for
    no such key (any number), 409 when it was already revoked (the page says since when)."""
    check_form_csrf(request, csrf_token_field)
    try:
        revoke_key(engine_of(request), key_id, op.username, source=client_ip(request))
    except AlreadyRevoked as exc:
        reason = error_text(request, exc)
        return render(request, "error.html", 409, title=translate(request, "Key already revoked"),
                      message=reason[:1].upper() + reason[1:] + ".")
    except GatewayKeyError as exc:
        reason = error_text(request, exc)
        return render(request, "error.html", 404, title=translate(request, "Not found"),
                      message=reason[:1].upper() + reason[1:] + ".")
    return RedirectResponse(f"/admin/gateway?revoked={key_id}", status_code=303)
