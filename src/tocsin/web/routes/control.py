"""Control of a running campaign (pause, resume, stop), its live counters, and the
Prometheus metrics of the deployment (issue 13). The services decide
(``campaigns.control``, ``dispatch.metrics``); these routes parse and render.
"""

from __future__ import annotations

from typing import Any, Literal

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
    require_api_csrf,
)
from tocsin.web.routes._campaigns import campaign_services

router = APIRouter()

Control = Literal["pause", "resume", "stop"]


def _control(request: Request, op: Operator, campaign_id: str, action: str) -> Any:
    services = campaign_services()
    try:
        return services.control_campaign(engine_of(request), campaign_id, action,
                                         acting(request, op), source=client_ip(request))
    except services.CampaignNotFound:
        raise LookupError(campaign_id) from None


@router.post("/api/campaigns/{campaign_id}/{action}", dependencies=[Depends(require_api_csrf)])
def control_api(campaign_id: str, action: Control, request: Request,
                op: Operator = Depends(current_operator)) -> Any:
    """Pause, resume or stop a running campaign: ``{"campaign_id", "status", "status_was",
    "stopped"}``; 422 when the campaign is not in a state the action applies to."""
    return _control(request, op, campaign_id, action)


@router.post("/campaigns/{campaign_id}/control")
def control_form(campaign_id: str, request: Request, action: str = Form(""),
                 csrf_token: str = Form(""), op: Operator = Depends(current_operator)
                 ) -> Response:
    """The campaign page's Pause / Resume / Stop buttons."""
    check_form_csrf(request, csrf_token)
    _control(request, op, campaign_id, action)
    return RedirectResponse(f"/campaigns/{campaign_id}", status_code=303)


def _progress(request: Request, op: Operator, campaign_id: str) -> Any:
    services = campaign_services()
    try:
        return services.campaign_progress(engine_of(request), campaign_id, acting(request, op),
                                          source=client_ip(request))
    except services.CampaignNotFound:
        raise LookupError(campaign_id) from None


@router.get("/api/v1/campaigns/{campaign_id}/progress")
def progress_v1(campaign_id: str, request: Request,
                op: Operator = Depends(current_operator)) -> Any:
    """Live counters per channel and delivery state (SPEC F26):
    ``{"campaign_id", "status", "fanout_done", "fanned_out", "channels": {channel:
    {state: n, "total": n}}, "at"}``."""
    return _progress(request, op, campaign_id)


@router.get("/api/campaigns/{campaign_id}/progress")
def progress(campaign_id: str, request: Request,
             op: Operator = Depends(current_operator)) -> Any:
    """The same as ``/api/v1/campaigns/{id}/progress``."""
    return _progress(request, op, campaign_id)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus text exposition (version 0.0.4) of the whole deployment's dispatch:
    deliveries by channel and state (queued, in flight, sent, delivered, failed…),
    throughput per channel, provider errors by code, campaigns by status. Counted in
    the database, so any web process answers for every worker. Put it behind the
    reverse proxy's access control: it names no person, but it is operational data."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    from tocsin.dispatch.metrics import snapshot

    data = snapshot(engine_of(request))
    from tocsin.subscribers.verification import conversion, pumping_alarm

    codes_sent, codes_entered = conversion(engine_of(request))

    class _Collector:
        def collect(self) -> Any:
            deliveries = GaugeMetricFamily(
                "tocsin_deliveries", "Deliveries of active and recent campaigns by state",
                labels=["channel", "state"])
            for (channel, state), n in sorted(data["deliveries"].items()):
                deliveries.add_metric([channel, state], n)
            yield deliveries
            rate = GaugeMetricFamily("tocsin_throughput_per_second",
                                     "Messages handed to providers per second, last minute",
                                     labels=["channel"])
            for channel, v in sorted(data["throughput"].items()):
                rate.add_metric([channel], v)
            yield rate
            errors = GaugeMetricFamily("tocsin_provider_errors",
                                       "Deliveries of active and recent campaigns with a "
                                       "provider error, by code", labels=["channel", "code"])
            for (channel, code), n in sorted(data["errors"].items()):
                errors.add_metric([channel, code], n)
            yield errors
            campaigns = GaugeMetricFamily("tocsin_campaigns", "Campaigns by status",
                                          labels=["status"])
            for status, n in sorted(data["campaigns"].items()):
                campaigns.add_metric([status], n)
            yield campaigns
            # The citizen portal's one-time codes (F36): many sent, few entered = pumping.
            for name, text, value in (
                    ("tocsin_portal_codes_sent", "One-time codes sent, last 24 hours",
                     codes_sent),
                    ("tocsin_portal_codes_entered", "One-time codes sent in the last 24 "
                     "hours whose code was entered", codes_entered),
                    ("tocsin_portal_pumping_alarm", "1 when codes are sent but rarely "
                     "entered (SMS pumping suspected)",
                     int(pumping_alarm(codes_sent, codes_entered)))):
                gauge = GaugeMetricFamily(name, text)
                gauge.add_metric([], value)
                yield gauge

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())  # type: ignore[arg-type]
    return Response(generate_latest(registry),
                    media_type="text/plain; version=0.0.4; charset=utf-8")
