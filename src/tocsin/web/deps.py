"""Shared pieces of the web layer: templates, the logged-in operator, page rendering."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from tocsin.core.settings import Settings
from tocsin.web.security import CSRF_HEADER, csrf_token, csrf_valid

if TYPE_CHECKING:  # type names only: web modules never use SQLAlchemy themselves
    from sqlalchemy.engine import Engine

BRUSSELS = ZoneInfo("Europe/Brussels")  # F33: stored in UTC, shown in Brussels time
ENVIRONMENTS = ("simulation", "live")
TEMPLATES_DIR = Path(__file__).parent / "templates"


class NotLoggedIn(Exception):
    """Raised by :func:`current_operator`; pages redirect to /login, the API answers 401."""


class CsrfFailed(Exception):
    """Raised when a POST lacks a valid CSRF token (answered 403)."""


@dataclass(frozen=True)
class Operator:
    """The operator of this request, as kept in the signed session cookie."""

    username: str
    display_name: str
    authority_id: str
    authority_name: str
    role: str
    environment: str  # simulation | live (F27)

    @property
    def is_live(self) -> bool:
        return self.environment == "live"


def brussels_time(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    """Format an aware datetime or ISO 8601 string in Europe/Brussels time ("" for None)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(BRUSSELS).strftime(fmt)
    return str(value)


def eur(value: Any) -> str:
    """Format an amount in EUR with 3 decimals (SMS segments cost fractions of a cent)."""
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)):,.3f} €"
    except ArithmeticError:
        return str(value)


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["brussels"] = brussels_time
templates.env.filters["eur"] = eur


def engine_of(request: Request) -> Engine:
    """The app's database engine."""
    engine: Engine = request.app.state.engine
    return engine


def settings_of(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def public_url_of(request: Request) -> str:
    """The base of absolute links in this response: ``TOCSIN_PUBLIC_URL`` when set, else
    the request's own base URL (scheme, host and port it was reached on), no trailing /."""
    return settings_of(request).public_base_url or str(request.base_url).rstrip("/")


def client_ip(request: Request) -> str:
    """The peer address (a reverse proxy must be trusted explicitly to use X-Forwarded-For)."""
    return request.client.host if request.client else "unknown"


def optional_operator(request: Request) -> Operator | None:
    """The logged-in operator, or None."""
    data = request.session.get("user")
    if not isinstance(data, dict):
        return None
    try:
        return Operator(**data)
    except TypeError:
        return None


def current_operator(request: Request) -> Operator:
    """FastAPI dependency: the logged-in operator; raises NotLoggedIn."""
    op = optional_operator(request)
    if op is None:
        raise NotLoggedIn()
    return op


def require_api_csrf(request: Request) -> None:
    """FastAPI dependency for JSON POSTs: the ``X-CSRF-Token`` header must match."""
    if not csrf_valid(request, request.headers.get(CSRF_HEADER)):
        raise CsrfFailed()


def check_form_csrf(request: Request, token: str | None) -> None:
    """Raise CsrfFailed unless the form's ``csrf_token`` matches the session."""
    if not csrf_valid(request, token):
        raise CsrfFailed()


def render(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> Response:
    """Render ``template`` with the common context (operator, CSRF token, settings)."""
    op = optional_operator(request)
    settings = settings_of(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "operator": op,
            "environment": op.environment if op else None,
            "csrf_token": csrf_token(request),
            "map_tile_url": settings.map_tile_url,
            **context,
        },
        status_code=status_code,
    )
