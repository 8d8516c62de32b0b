"""Governance pages: agreements, training records, cooperations (federal operator),
partnerships and the two-person rule (authority admins), SPEC F1–F5.

Routes parse the form, call one service in ``authorities.governance`` and render;
the policy decides (a refusal is a 403 page naming the rule).
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from tocsin.authorities import governance
from tocsin.authorities.policy import AGREEMENTS
from tocsin.core.i18n import N_
from tocsin.web.actors import acting, set_acting_for, stop_acting_for
from tocsin.web.deps import (
    Operator,
    check_form_csrf,
    client_ip,
    current_operator,
    engine_of,
    render,
)

router = APIRouter()

FIELD_LABELS = {"requested_by": N_("Requested by"), "channel": N_("How"), "note": N_("Note"),
                "authority": N_("Authority"),
                "partner": N_("Neighbouring municipality"), "ends_at": N_("End date"),
                "reason": N_("Reason"), "agreement_type": N_("Agreement"), "username": N_("User"),
                "trainer": N_("Trainer"), "trained_on": N_("Training date"), "name": N_("Name"),
                "members": N_("Members"), "partnership": N_("Partnership"), "topic": N_("Topic")}
#: The agreement types' words (policy.AGREEMENTS, as msgids).
AGREEMENT_LABELS = {0: N_("none"), 1: N_("type 1 (population and groups)"),
                    2: N_("type 2 (groups only)")}
#: How a request to act for an authority came (governance.ON_BEHALF_CHANNELS).
REQUEST_CHANNELS = {"phone": N_("phone"), "e-mail": N_("e-mail"), "radio": N_("radio"),
                    "in person": N_("in person"), "other": N_("other")}


def _page(request: Request, op: Operator, status: int = 200, **context: object) -> Response:
    overview = governance.governance_overview(engine_of(request), acting(request, op))
    agreements = {k: AGREEMENT_LABELS.get(k, v) for k, v in AGREEMENTS.items()}
    return render(request, "governance.html", status, overview=overview, agreements=agreements,
                  request_channels=REQUEST_CHANNELS,
                  field_labels=FIELD_LABELS, today=dt.date.today().isoformat(), **context)


@router.get("/admin/governance")
def governance_page(request: Request, done: str = "",
                    op: Operator = Depends(current_operator)) -> Response:
    """The actor's authority (agreement, two-person rule), its partnerships and, for
    the federal operator, every authority, training record and cooperation."""
    return _page(request, op, done=done)


def _run(request: Request, op: Operator, call, done: str, form: dict[str, str]) -> Response:  # type: ignore[no-untyped-def]
    try:
        call(acting(request, op))
    except governance.GovernanceError as exc:
        return _page(request, op, 422, error=exc, form=form)
    return RedirectResponse(f"/admin/governance?done={done}", status_code=303)


@router.post("/admin/governance/two-person")
def two_person(request: Request, required: str = Form(""),
               csrf_token: str = Form(""), op: Operator = Depends(current_operator)) -> Response:
    """Turn the two-person rule on or off for the actor's authority."""
    check_form_csrf(request, csrf_token)
    return _run(request, op, lambda a: governance.set_two_person_rule(
        engine_of(request), a, a.authority.id, required == "on", client_ip(request)),
        "two_person", {})


@router.post("/admin/governance/partnerships")
def propose(request: Request, partner: str = Form(""), ends_on: str = Form(""),
            reason: str = Form(""), csrf_token: str = Form(""),
            op: Operator = Depends(current_operator)) -> Response:
    """Propose a partnership to a neighbour until the end of ``ends_on`` (Belgian time)."""
    from tocsin.campaigns.rules import parse_local_time

    check_form_csrf(request, csrf_token)
    form = {"partner": partner, "ends_on": ends_on, "reason": reason}
    try:
        ends_at = parse_local_time(f"{ends_on.strip()} 23:59")
    except ValueError:
        return _page(request, op, 422, form=form, error=governance.GovernanceError(
            "ends_at", N_("give the end date as YYYY-MM-DD"), code="date_format"))
    return _run(request, op, lambda a: governance.propose_partnership(
        engine_of(request), a, partner, ends_at, reason, client_ip(request)), "proposed", form)


@router.post("/admin/governance/partnerships/{partnership_id}/{action}")
def partnership_action(partnership_id: int, action: str, request: Request,
                       csrf_token: str = Form(""),
                       op: Operator = Depends(current_operator)) -> Response:
    """Accept or end a partnership."""
    check_form_csrf(request, csrf_token)
    if action not in ("accept", "end"):
        raise LookupError(action)
    service = governance.accept_partnership if action == "accept" else governance.end_partnership
    return _run(request, op, lambda a: service(engine_of(request), a, partnership_id,
                                               client_ip(request)), action + "ed", {})


@router.post("/admin/governance/agreements")
def agreement(request: Request, authority_id: str = Form(""), agreement_type: str = Form(""),
              csrf_token: str = Form(""), op: Operator = Depends(current_operator)) -> Response:
    """Set an authority's agreement type (federal operator)."""
    check_form_csrf(request, csrf_token)
    if agreement_type not in ("0", "1", "2"):
        return _page(request, op, 422, form={}, error=governance.GovernanceError(
            "agreement_type", N_("choose none, type 1 or type 2"), code="agreement_unknown"))
    return _run(request, op, lambda a: governance.set_agreement(
        engine_of(request), a, authority_id, int(agreement_type), client_ip(request)),
        "agreement", {})


@router.post("/admin/governance/training")
def training(request: Request, username: str = Form(""), trained_on: str = Form(""),
             trainer: str = Form(""), csrf_token: str = Form(""),
             op: Operator = Depends(current_operator)) -> Response:
    """Record a location-based SMS training (federal operator)."""
    check_form_csrf(request, csrf_token)
    form = {"username": username, "trained_on": trained_on, "trainer": trainer}
    try:
        day = dt.date.fromisoformat(trained_on.strip())
    except ValueError:
        return _page(request, op, 422, form=form, error=governance.GovernanceError(
            "trained_on", N_("give the date as YYYY-MM-DD"), code="date_format"))
    return _run(request, op, lambda a: governance.record_training(
        engine_of(request), a, username.strip(), day, trainer, "lbsms", client_ip(request)),
        "training", form)


@router.post("/admin/governance/cooperations")
def cooperation(request: Request, name: str = Form(""), members: str = Form(""),
                csrf_token: str = Form(""), op: Operator = Depends(current_operator)) -> Response:
    """Create a structural cooperation (federal operator); ``members``: NIS codes."""
    check_form_csrf(request, csrf_token)
    ids = [m.strip() for m in members.replace(";", ",").split(",") if m.strip()]
    return _run(request, op, lambda a: governance.create_cooperation(
        engine_of(request), a, name, ids, client_ip(request)), "cooperation",
        {"name": name, "members": members})


@router.post("/admin/acting")
def start_acting(request: Request, authority_id: str = Form(""), requested_by: str = Form(""),
                 channel: str = Form("phone"), note: str = Form(""), csrf_token: str = Form(""),
                 op: Operator = Depends(current_operator)) -> Response:
    """The federal operator on duty acts for an authority that asked: every campaign
    prepared until *Stop* is that authority's, with the request recorded."""
    check_form_csrf(request, csrf_token)
    form = {"authority_id": authority_id, "requested_by": requested_by, "note": note}
    try:
        acting_as = governance.start_acting_for(engine_of(request), acting(request, op),
                                                authority_id, requested_by, channel, note,
                                                client_ip(request))
    except governance.GovernanceError as exc:
        return _page(request, op, 422, error=exc, form=form)
    set_acting_for(request, op, acting_as.authority_id, acting_as.name, acting_as.request)
    return RedirectResponse("/campaigns/new", status_code=303)


@router.post("/admin/acting/stop")
def stop_acting(request: Request, csrf_token: str = Form(""),
                op: Operator = Depends(current_operator)) -> Response:
    """Back to the operator's own authority."""
    check_form_csrf(request, csrf_token)
    stop_acting_for(request)
    return RedirectResponse("/", status_code=303)
