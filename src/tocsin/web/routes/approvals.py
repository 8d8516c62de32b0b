"""Two-person rule: approve or reject a held live campaign (forms on its page).

The service decides (``campaigns.approval``): the approver may not be who prepared
it, needs the right to launch for that authority and a second factor.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from tocsin.web.actors import acting
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
from tocsin.web.routes._campaigns import campaign_services

router = APIRouter()


@router.post("/campaigns/{campaign_id}/approve")
def approve(campaign_id: str, request: Request, csrf_token: str = Form(""),
            op: Operator = Depends(current_operator)) -> Response:
    """Approve a campaign held for a second user's approval: it goes out now."""
    check_form_csrf(request, csrf_token)
    services = campaign_services()
    try:
        services.approve_campaign(engine_of(request), acting(request, op), campaign_id,
                                  source=client_ip(request), settings=settings_of(request))
    except services.CampaignInputError as exc:
        text = error_text(request, exc)
        return render(request, "error.html", 409, title=translate(request, "Not approved"),
                      message=text[:1].upper() + text[1:] + ".")
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


@router.post("/campaigns/{campaign_id}/reject")
def reject(campaign_id: str, request: Request, reason: str = Form(""),
           csrf_token: str = Form(""), op: Operator = Depends(current_operator)) -> Response:
    """Reject a held campaign: it is never sent."""
    check_form_csrf(request, csrf_token)
    services = campaign_services()
    try:
        services.reject_campaign(engine_of(request), acting(request, op), campaign_id, reason,
                                 source=client_ip(request))
    except services.CampaignInputError as exc:
        return render(request, "error.html", 422, title=translate(request, "Not rejected"),
                      message=f"{exc.field}: {error_text(request, exc)}")
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)
