"""Shared pieces of the web layer: templates, the logged-in operator, page rendering."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from starlette.responses import Response

from tocsin.authorities.policy import LIVE_SENDER_ROLES
from tocsin.authorities.sessions import SessionInfo, resolve_session
from tocsin.core.settings import Settings
from tocsin.messages.voice import engine_available as voice_engine_available
from tocsin.web import i18n
from tocsin.web.security import CSRF_HEADER, client_address, csrf_token, csrf_valid

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
    """The operator of this request, from its server-side session (``web_session``).

    ``second_factor``: the session passed TOTP; ``totp_enrolled``: the user has
    TOTP (pages nudge sender roles that have not).
    """

    username: str
    display_name: str
    authority_id: str
    authority_name: str
    role: str
    environment: str  # simulation | live (F27)
    user_id: int = 0
    second_factor: bool = False
    totp_enrolled: bool = False
    language: str | None = None  # the user's interface language setting, if any

    @property
    def is_live(self) -> bool:
        return self.environment == "live"


def brussels_time(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S %Z",
                  language: str = i18n.DEFAULT_LANGUAGE) -> str:
    """Format an aware datetime or ISO 8601 string in Europe/Brussels time ("" for None),
    for ``language`` (see :func:`tocsin.web.i18n.format_brussels`)."""
    return i18n.format_brussels(value, language, fmt)


def eur(value: Any, language: str = i18n.DEFAULT_LANGUAGE) -> str:
    """Format an amount in EUR with 3 decimals (SMS segments cost fractions of a cent)."""
    return i18n.format_eur(value, language)


def _lang(context: Any) -> str:
    lang = context.get("lang")
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


@pass_context
def _gettext(context: Any, message: str) -> str:
    return i18n.translations(_lang(context)).ugettext(message)


@pass_context
def _ngettext(context: Any, singular: str, plural: str, n: int) -> str:
    return i18n.translations(_lang(context)).ungettext(singular, plural, n)


@pass_context
def _brussels_filter(context: Any, value: Any, fmt: str = "%Y-%m-%d %H:%M:%S %Z") -> str:
    return brussels_time(value, fmt, _lang(context))


@pass_context
def _eur_filter(context: Any, value: Any) -> str:
    return eur(value, _lang(context))


@pass_context
def _num_filter(context: Any, value: Any, digits: int | None = None) -> str:
    return i18n.format_number(value, _lang(context), digits)


@pass_context
def _pgettext(context: Any, ctx: str, message: str) -> str:
    return i18n.translations(_lang(context)).upgettext(ctx, message)


def _label_of(kind: str) -> Any:
    @pass_context
    def word(context: Any, code: Any) -> str:
        return i18n.label(kind, code, _lang(context))
    return word


templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.add_extension("jinja2.ext.i18n")
templates.env.install_gettext_callables(  # type: ignore[attr-defined]
    _gettext, _ngettext, newstyle=True)
templates.env.filters["brussels"] = _brussels_filter
templates.env.filters["eur"] = _eur_filter
templates.env.filters["num"] = _num_filter
templates.env.globals["pgettext"] = _pgettext
templates.env.globals["error_text"] = pass_context(
    lambda context, error: i18n.error_text(error, _lang(context)))
# status_name("sending") → "wird versendet" …: the words for the services' codes.
for _kind in i18n.LABELS:
    templates.env.globals[f"{_kind}_name"] = _label_of(_kind)
templates.env.globals["tts_available"] = voice_engine_available
templates.env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES


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
    """The client address: the peer, or what a trusted proxy (``TOCSIN_TRUSTED_PROXIES``)
    forwarded (``Forwarded`` / ``X-Forwarded-For``)."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers, settings_of(request).trusted_proxy_networks())


SESSION_KEY = "sid"


def web_session_of(request: Request) -> SessionInfo | None:
    """The request's server-side session (also one awaiting its second factor), or None.

    Looked up once per request; a revoked, idle or expired session is None.
    """
    if getattr(request.state, "web_session_loaded", False):
        info: SessionInfo | None = request.state.web_session
        return info
    sid = request.session.get(SESSION_KEY) if "session" in request.scope else None
    info = resolve_session(engine_of(request), sid) if isinstance(sid, str) else None
    request.state.web_session = info
    request.state.web_session_loaded = True
    return info


def open_session(request: Request, token: str) -> None:
    """Make ``token`` this browser's session id (a new cookie: nothing from before survives)."""
    lang = request.session.get(i18n.SESSION_LANG_KEY)
    request.session.clear()
    if lang in i18n.LANGUAGES:
        request.session[i18n.SESSION_LANG_KEY] = lang
    request.session[SESSION_KEY] = token
    request.state.web_session_loaded = False
    web_session_of(request)


def close_session(request: Request) -> None:
    """Forget the session cookie (the server-side session is ended by the service);
    the chosen interface language stays."""
    lang = request.session.get(i18n.SESSION_LANG_KEY)
    request.session.clear()
    if lang in i18n.LANGUAGES:
        request.session[i18n.SESSION_LANG_KEY] = lang
    request.state.web_session = None
    request.state.web_session_loaded = True


def optional_operator(request: Request) -> Operator | None:
    """The logged-in operator (second factor done when required), or None."""
    info = web_session_of(request)
    if info is None or info.pending is not None:
        return None
    return Operator(
        username=info.username, display_name=info.display_name,
        authority_id=info.authority_id, authority_name=info.authority_name, role=info.role,
        environment=info.environment, user_id=info.user_id,
        second_factor=info.second_factor, totp_enrolled=info.totp_enrolled,
        language=info.language)


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


def language_of(request: Request) -> str:
    """The interface language of this request (fr, nl, de or en; see :mod:`tocsin.web.i18n`).

    A valid ``?lang=`` is remembered in the session cookie. Computed once per request.
    """
    cached = getattr(request.state, "language", None)
    if cached is not None:
        return str(cached)
    query = request.query_params.get("lang")
    query = query if query in i18n.LANGUAGES else None
    has_session = "session" in request.scope
    if query and has_session:
        request.session[i18n.SESSION_LANG_KEY] = query
    info = web_session_of(request) if has_session else None
    remembered = request.session.get(i18n.SESSION_LANG_KEY) if has_session else None
    language = i18n.choose_language(query, info.language if info else None, remembered,
                                    request.headers.get("accept-language"))
    request.state.language = language
    return language


def translate(request: Request, message: str, **params: Any) -> str:
    """``message`` in the request's language, with ``%(name)s`` params filled in."""
    return i18n.gettext(language_of(request), message, **params)


def error_text(request: Request, error: Any) -> str:
    """A service error's message in the request's language (docs/decisions/0018)."""
    return i18n.error_text(error, language_of(request))


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
            "nudge_totp": bool(op and op.role in LIVE_SENDER_ROLES and not op.totp_enrolled),
            "csrf_token": csrf_token(request),
            "map_tile_url": settings.map_tile_url,
            "lang": language_of(request),
            **context,
        },
        status_code=status_code,
    )
