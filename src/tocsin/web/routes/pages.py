"""Server-rendered pages: dashboard, campaign composer, campaign progress and report."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tocsin.authorities import services as authorities
from tocsin.web.deps import Operator, current_operator, engine_of, render, settings_of
from tocsin.web.routes._campaigns import campaign_services

router = APIRouter()

ALL_LANGUAGES = ("fr", "nl", "de", "en")
LANGUAGE_NAMES = {"fr": "French", "nl": "Dutch", "de": "German", "en": "English"}
KINDS = (
    ("alert", "Alert — emergency or imminent emergency"),
    ("warning", "Warning"),
    ("information", "Information — general interest"),
    ("test", "Test"),
    ("exercise", "Exercise"),
)
CHANNELS = (("sms", "SMS"), ("email", "E-mail"), ("cap", "CAP feed (alert maps, panels)"))


@router.get("/")
def dashboard(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The campaigns of the operator's authority in the session's environment."""
    authority_id = None if op.role == "federal_operator" else op.authority_id
    rows = campaign_services().list_campaigns(engine_of(request), authority_id, op.environment)
    return render(request, "dashboard.html", campaigns=rows)


@router.get("/campaigns/new")
def compose(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The composer: map, texts per language, channels, live estimate, launch."""
    authority = authorities.get_authority(engine_of(request), op.authority_id)
    official = [lang for lang in authority.languages if lang in ALL_LANGUAGES]
    others = [lang for lang in ALL_LANGUAGES if lang not in official]
    return render(
        request,
        "compose.html",
        authority=authority,
        official_languages=official,
        other_languages=others,
        language_names=LANGUAGE_NAMES,
        kinds=KINDS,
        channels=CHANNELS,
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
