"""JSON API of the operator platform: map layers, estimate, launch, report (F16, F17, F26).

Errors are ``{"error": {"field": ..., "reason": ...}}`` with 422 (bad input),
401 (not logged in), 403 (role or CSRF), 404 (unknown or other authority's campaign).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tocsin.authorities import services as authorities
from tocsin.web import i18n
from tocsin.web.actors import acting, acting_for, authority_of
from tocsin.web.deps import (
    Operator,
    client_ip,
    current_operator,
    engine_of,
    language_of,
    public_url_of,
    require_api_csrf,
    settings_of,
    translate,
)
from tocsin.web.i18n import N_
from tocsin.web.routes._campaigns import campaign_services

router = APIRouter(prefix="/api")



#: The launch's refusal when the type of message is not confirmed.
_CONFIRM_KIND = N_("confirm the type of message (alert, warning, information, test, "
                   "exercise, group)")


class ApiError(Exception):
    """An API error answered as ``{"error": {"field", "reason"}}`` with ``status``
    (plus ``message``, the reason in the request's language, when given)."""

    def __init__(self, status: int, field: str, reason: str, message: str | None = None) -> None:
        super().__init__(f"{field}: {reason}")
        self.status, self.field, self.reason = status, field, reason
        self.message = message


class CampaignBody(BaseModel):
    """What the composer posts to estimate or launch a campaign."""

    texts: dict[str, str] = Field(default_factory=dict, description="language -> SMS/e-mail text")
    channels: list[str] = Field(default_factory=list, description="subset of sms, email, cap, "
                                "voice and the location-based lbsms, cb")
    justification: str | None = Field(
        None, description="with lbsms: the imminent danger, as the mobile operators record it")
    area_geojson: dict[str, Any] | None = Field(None, description="drawn area, GeoJSON WGS84")
    municipality_nis: str | None = Field(None, description="a whole municipality (NIS code)")
    groups: list[str] = Field(default_factory=list, description="groups of the authority "
                              "(names), beside or instead of an area")
    lists: list[str] = Field(default_factory=list, description="contact lists of the "
                             "authority (names), beside or instead of an area")
    kind: Literal["alert", "warning", "information", "test", "exercise", "group"] | None = Field(
        None, description="the type of message, confirmed by the operator (required to launch; "
        "an update keeps the original's when empty)"
    )
    cap: dict[str, str] = Field(default_factory=dict, description="CAP event/severity/...")
    confirm_area_name: str | None = Field(
        None, description="live only: the area name, typed by the operator (a live alert "
        "is never sent by a click alone)"
    )
    confirm_recipients: str | None = Field(
        None, description="live launch only: the number of deliveries shown in the "
        "estimate, typed by the operator"
    )
    content: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="language -> field -> text overriding a default "
        "(sms, voice, email_subject, email_text, email_html, cap_event, cap_headline, "
        "cap_description, cap_instruction)"
    )
    fields: dict[str, str] = Field(default_factory=dict, description="{name} placeholder values")
    scheduled_for: str | None = Field(
        None, description='send later: "YYYY-MM-DD HH:MM" Europe/Brussels, or RFC 3339'
    )
    expires_at: str | None = Field(None, description="CAP expires, same formats")
    template_id: str | None = Field(None, description="the template launched")
    draft_id: str | None = Field(None, description="the draft (imported CAP) this replaces")
    answers: list[str] = Field(default_factory=list, max_length=20, description="2 to 9 "
                               "answer options of a group message (empty: no answers)")
    quota: int | None = Field(None, description="people wanted: ask the first N of the "
                              "lists in order, the next on a decline or a timeout")
    answer_timeout_minutes: int = Field(15, description="a quota's time to answer, minutes")
    answer_escalate_minutes: int = Field(5, description="a quota's time between SMS, voice "
                                         "call and e-mail, minutes")


class FollowUpBody(CampaignBody):
    """An update or all-clear: every field optional (texts, channels, area default to the
    original's where it makes sense)."""


class CancelBody(BaseModel):
    """A cancellation; live needs the original's area name typed (F34)."""

    confirm_area_name: str | None = None


def _time(request: Request, body_value: str | None, field: str) -> Any:
    from tocsin.campaigns.rules import parse_local_time

    if not body_value or not body_value.strip():
        return None
    try:
        return parse_local_time(body_value)
    except ValueError as exc:
        raise ApiError(422, field, str(exc), i18n.error_text(exc, language_of(request))
                       ) from None


def _request(request: Request, body: CampaignBody, op: Operator,
             default_kind: str = "alert") -> Any:
    """The ``CampaignRequest`` of this body, for the authority this session works for
    (its own, or the one the federal operator acts for, with the request recorded)."""
    services = campaign_services()
    source, actor = client_ip(request), acting(request, op)
    return services.CampaignRequest(
        authority_id=authority_of(request, op),
        texts={k: v for k, v in body.texts.items() if v.strip()},
        channels=body.channels,
        area_geojson=body.area_geojson,
        municipality_nis=body.municipality_nis or None,
        groups=body.groups, lists=body.lists,
        kind=body.kind or default_kind,
        environment=op.environment,
        created_by=op.username,
        source=source,
        cap={k: v for k, v in body.cap.items() if v},
        content={lang: {k: v for k, v in fields.items() if v is not None}
                 for lang, fields in body.content.items()},
        fields=body.fields,
        scheduled_for=_time(request, body.scheduled_for, "scheduled_for"),
        expires_at=_time(request, body.expires_at, "expires_at"),
        template_id=body.template_id or None,
        draft_id=body.draft_id or None,
        actor=actor,
        on_behalf_request=(acting_for(request, op) or {}).get("request"),
        confirmation_required=True,
        confirm_area_name=body.confirm_area_name,
        confirm_recipients=body.confirm_recipients,
        justification=body.justification or None,
        answers=_answers(body),
    )


def _answers(body: CampaignBody) -> Any:
    """The answer setup of a group message (``answer_service.AnswerSetup``), or None."""
    options = [o for o in body.answers if o and o.strip()]
    if not options and body.quota is None:
        return None
    from tocsin.campaigns.answer_service import AnswerSetup

    return AnswerSetup(options, body.quota, body.answer_timeout_minutes,
                       body.answer_escalate_minutes)


@router.get("/authority/territory.geojson")
def territory(request: Request, op: Operator = Depends(current_operator)) -> dict[str, Any]:
    """The operator's authority territory, a GeoJSON Feature."""
    return authorities.authority_feature(engine_of(request), authority_of(request, op))


@router.get("/authority/municipalities.geojson")
def municipalities(request: Request, op: Operator = Depends(current_operator)) -> dict[str, Any]:
    """The municipalities within the operator's authority, a GeoJSON FeatureCollection."""
    return authorities.municipalities_geojson(engine_of(request), authority_of(request, op))


@router.post("/campaigns/estimate", dependencies=[Depends(require_api_csrf)])
def estimate(
    body: CampaignBody, request: Request, op: Operator = Depends(current_operator)
) -> Any:
    """Recipients per channel and language, SMS segments and cost, before launch (F14, F17)."""
    services = campaign_services()
    req = _request(request, body, op)
    result = services.estimate_campaign(engine_of(request), req, settings=settings_of(request))
    language = language_of(request)
    result["warnings"] = [i18n.warning_text(w, language) for w in result.get("warnings", [])]
    # The confirmation's times, written as the dashboard and reports write them.
    result["display"] = {
        "scheduled_for": i18n.format_brussels(req.scheduled_for, language, "%Y-%m-%d %H:%M"),
        "expires_at": i18n.format_brussels(result.get("expires_at"), language,
                                           "%Y-%m-%d %H:%M")}
    return jsonable_encoder(result)


@router.post("/campaigns/estimate/cells", dependencies=[Depends(require_api_csrf)])
def estimate_cells(
    body: CampaignBody, request: Request, op: Operator = Depends(current_operator)
) -> Any:
    """The cells a location-based campaign would use and its bleed, a GeoJSON
    FeatureCollection for the map (F17); ``tocsin_cell_model`` labels the model
    ("synthetic cell model" unless an operator's cells were imported)."""
    services = campaign_services()
    return services.estimate_cells_layer(engine_of(request), _request(request, body, op),
                                         settings=settings_of(request))


@router.post("/campaigns", status_code=201, dependencies=[Depends(require_api_csrf)])
def launch(body: CampaignBody, request: Request, op: Operator = Depends(current_operator)) -> Any:
    """Launch the campaign; ``{"campaign_id": ...}``.

    Live campaigns need ``confirm_area_name`` and ``confirm_recipients`` equal to the
    area name and the number of deliveries (F34: a live alert is never sent by a
    click alone; the service checks them, 422 naming the field).
    """
    if body.kind is None:
        raise ApiError(422, "kind", _CONFIRM_KIND, translate(request, _CONFIRM_KIND))
    services = campaign_services()
    req = _request(request, body, op)
    engine, settings = engine_of(request), settings_of(request)
    return {"campaign_id": services.launch_campaign(engine, req, settings=settings)}


@router.get("/campaigns/{campaign_id}/report")
def report(
    campaign_id: str,
    request: Request,
    download: bool = False,
    op: Operator = Depends(current_operator),
) -> JSONResponse:
    """The campaign's live progress / final report (F26); ``?download=1`` as an attachment."""
    services = campaign_services()
    data = services.campaign_report(engine_of(request), campaign_id, settings=settings_of(request),
                                    public_url=public_url_of(request),
                                    actor=acting(request, op))
    headers = {"Cache-Control": "no-store"}
    if download:
        headers["Content-Disposition"] = (
            f'attachment; filename="tocsin-campaign-{campaign_id}-report.json"'
        )
    return JSONResponse(jsonable_encoder(data), headers=headers)


def _original_for(request: Request, op: Operator, campaign_id: str,
                  confirm: str | None) -> None:
    """404 unless the operator may read the campaign; live: the typed area name (F34)."""
    services = campaign_services()
    data = services.campaign_report(engine_of(request), campaign_id,
                                    settings=settings_of(request),
                                    public_url=public_url_of(request),
                                    actor=acting(request, op))
    if op.is_live:
        expected = str(data["area_name"])
        if (confirm or "").strip().casefold() != expected.strip().casefold():
            raise ApiError(422, "confirm_area_name", f"type the area name exactly: {expected}",
                           translate(request, "type the area name exactly: %(area)s",
                                     area=expected))


def _follow_up(action: str, campaign_id: str, body: FollowUpBody, request: Request,
               op: Operator) -> Any:
    _original_for(request, op, campaign_id, body.confirm_area_name)
    services = campaign_services()
    req = _request(request, body, op, default_kind="")
    function = services.update_campaign if action == "update" else services.all_clear
    try:
        new_id = function(engine_of(request), campaign_id, req, settings=settings_of(request))
    except services.CampaignNotFound:
        raise LookupError(campaign_id) from None
    return {"campaign_id": new_id, "references_id": campaign_id}


@router.post("/campaigns/{campaign_id}/update", status_code=201,
             dependencies=[Depends(require_api_csrf)])
def update(campaign_id: str, body: FollowUpBody, request: Request,
           op: Operator = Depends(current_operator)) -> Any:
    """Send an update (CAP Update) to the original recipients plus the new area (F19);
    ``{"campaign_id": new id, "references_id": campaign_id}``."""
    return _follow_up("update", campaign_id, body, request, op)


@router.post("/campaigns/{campaign_id}/all-clear", status_code=201,
             dependencies=[Depends(require_api_csrf)])
def all_clear(campaign_id: str, body: FollowUpBody, request: Request,
              op: Operator = Depends(current_operator)) -> Any:
    """Send the all-clear (CAP Update, responseType AllClear) to the original recipients."""
    return _follow_up("all_clear", campaign_id, body, request, op)


@router.post("/campaigns/{campaign_id}/cancel", dependencies=[Depends(require_api_csrf)])
def cancel(campaign_id: str, body: CancelBody, request: Request,
           op: Operator = Depends(current_operator)) -> Any:
    """Cancel (F19): unsent deliveries stop, a CAP Cancel is published when it had CAP.

    ``{"campaign_id", "stopped", "cancel_campaign_id", "cap_identifier"}``.
    """
    _original_for(request, op, campaign_id, body.confirm_area_name)
    services = campaign_services()
    try:
        return services.cancel_campaign(engine_of(request), campaign_id, acting(request, op),
                                        source=client_ip(request),
                                        settings=settings_of(request))
    except services.CampaignNotFound:
        raise LookupError(campaign_id) from None
