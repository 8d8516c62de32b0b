"""The operator platform's FastAPI application factory.

``uvicorn --factory tocsin.web.app:create_app`` serves it; the in-process
dispatch worker starts with the app unless ``start_worker`` is False.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tocsin.authorities.access import Denied
from tocsin.core.db import get_engine
from tocsin.core.settings import Settings, get_settings
from tocsin.web.deps import (
    CsrfFailed,
    NotLoggedIn,
    error_text,
    render,
    translate,
    web_session_of,
)
from tocsin.web.limits import BodySizeLimit
from tocsin.web.routes import (
    answers_pages,
    api,
    approvals,
    areas_api,
    auth,
    cap,
    contacts_pages,
    control,
    gateway_admin,
    governance,
    health,
    location_hooks,
    messages_api,
    monitor,
    pages,
    portal,
    templates_pages,
    unsubscribe,
    voice,
)
from tocsin.web.routes._campaigns import CampaignsUnavailable
from tocsin.web.security import (
    CSRF_HEADER,
    SessionCookieMiddleware,
    csrf_valid,
    resolve_secret_key,
)

if TYPE_CHECKING:  # type names only: web modules never use SQLAlchemy themselves
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
#: POSTs that carry their own credential instead of the session cookie: the RFC 8058
#: one-click unsubscribe (a mail client posts it, with the signed token in the URL).
#: The voice provider's requests carry X-Twilio-Signature instead (``routes.voice``).
#: The answer page posts with its signed token; the SMS webhook carries a shared secret;
#: the mobile operators' location-based SMS callbacks are signed (``routes.location_hooks``).
CSRF_EXEMPT_PREFIXES = ("/unsubscribe/", "/voice/calls/", "/voice/codes/", "/answer/",
                        "/inbound/", "/hooks/")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def csrf_guard(request: Request) -> None:
    """App-wide dependency: every unsafe request carries the CSRF token (403 otherwise).

    The token is the ``X-CSRF-Token`` header or the form field ``csrf_token``.
    Runs before any route code, so no route can forget it. An ``/api`` call
    without a session is let through to answer 401 (log in) rather than 403.
    """
    if request.method in _SAFE_METHODS or request.url.path.startswith(CSRF_EXEMPT_PREFIXES):
        return
    info = await run_in_threadpool(web_session_of, request)
    if info is None and _is_api(request):
        return
    token = request.headers.get(CSRF_HEADER)
    if not token and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        try:
            value = (await request.form()).get("csrf_token")
        except Exception:  # noqa: BLE001 - an unreadable body has no valid token
            value = None
        token = value if isinstance(value, str) else None
    if not csrf_valid(request, token):
        raise CsrfFailed()


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _api_error(status: int, field: str, reason: str, message: str | None = None) -> JSONResponse:
    """``{"error": {"field", "reason"}}``: ``reason`` in English (stable for programs);
    ``message``, when the service error can be translated, in the request's language."""
    body = {"field": field, "reason": reason}
    if message is not None and message != reason:
        body["message"] = message
    return JSONResponse({"error": body}, status_code=status)


def _portal_home(path: str) -> str:
    """Where the error page of ``path`` leads back: the citizen portal's own start
    (``/me`` or ``/register``) for its pages, "" (the campaigns) for operator pages."""
    for home in ("/me", "/register"):
        if path == home or path.startswith(home + "/"):
            return home
    return ""


def _page_error(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", status, title=title, message=message,
                  portal=_portal_home(request.url.path))


def _content_security_policy(map_tile_url: str) -> str:
    img = "'self' data:"
    if map_tile_url:
        parts = urlsplit(map_tile_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in map_tile_url else parts.netloc
        img += f" {parts.scheme}://{host}"
    # Leaflet positions its panes with inline styles, hence 'unsafe-inline' for styles only.
    # The composer plays the voice preview it fetched (POST) from a blob: URL.
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src {img}; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'self'; "
        "form-action 'self'"
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotLoggedIn)
    async def not_logged_in(request: Request, exc: NotLoggedIn) -> Response:
        if _is_api(request):
            return _api_error(401, "session", "not logged in")
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        if _is_api(request):
            return _api_error(403, "csrf_token", "missing or invalid CSRF token; reload the page")
        return _page_error(
            request, 403, translate(request, "Form expired"),
            translate(request, "This form has expired or was not sent from Tocsin. Go back, "
                      "reload the page and try again."),
        )

    @app.exception_handler(api.ApiError)
    async def api_error(request: Request, exc: api.ApiError) -> Response:
        return _api_error(exc.status, exc.field, exc.reason, exc.message)

    @app.exception_handler(CampaignsUnavailable)
    async def campaigns_unavailable(request: Request, exc: CampaignsUnavailable) -> Response:
        if _is_api(request):
            return _api_error(503, "campaigns", "campaign services are not available")
        return _page_error(request, 503, translate(request, "Unavailable"),
                           translate(request, "Campaign services are not available."))

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> Response:
        if exc.hidden:  # not even readable: answered as not found, confirming nothing
            if _is_api(request):
                return _api_error(404, "id", "not found")
            return _page_error(request, 404, translate(request, "Not found"),
                               translate(request, "There is nothing at this address."))
        if _is_api(request):
            return JSONResponse({"error": {"field": exc.field or "permission",
                                           "reason": exc.reason, "rule": exc.rule,
                                           "message": error_text(request, exc)}},
                                status_code=403)
        reason = error_text(request, exc)
        return _page_error(request, 403, translate(request, "Not allowed"), reason[:1].upper()
                           + reason[1:] + ". "
                           + translate(request, "(Rule: %(rule)s.)", rule=exc.rule))

    @app.exception_handler(LookupError)
    async def not_found(request: Request, exc: LookupError) -> Response:
        if _is_api(request):
            return _api_error(404, "id", "not found")
        return _page_error(request, 404, translate(request, "Not found"),
                               translate(request, "There is nothing at this address."))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
        if first.get("type") == "json_invalid":
            return _api_error(422, "body", await _json_problem(request))
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        return _api_error(422, ".".join(loc) or "body", str(first.get("msg", "invalid")))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _is_api(request) or exc.status_code == 405:
            return _api_error(exc.status_code, "request", str(exc.detail))
        if exc.status_code == 404:  # Starlette's "Not Found" (no route) or a raised 404
            return _page_error(request, 404, translate(request, "Not found"),
                               translate(request, "There is nothing at this address."))
        detail = str(exc.detail)
        phrases = {s.value: s.phrase for s in HTTPStatus}
        if detail == phrases.get(exc.status_code):  # the bare English status phrase
            message = translate(request, "The request could not be handled (HTTP %(status)s).",
                                status=exc.status_code)
        else:  # a detail marked N_ where it is raised is shown in the reader's language
            message = translate(request, detail)
        return _page_error(request, exc.status_code, translate(request, "Error"), message)

    # CampaignInputError subclasses ValueError; registered by name to keep the import guarded.
    @app.exception_handler(ValueError)
    async def bad_input(request: Request, exc: ValueError) -> Response:
        field = getattr(exc, "field", None)
        if field is None:
            raise exc
        reason = str(getattr(exc, "reason", exc))
        if _is_api(request):
            return _api_error(422, str(field), reason, error_text(request, exc))
        return _page_error(request, 422, translate(request, "Invalid input"),
                           f"{field}: {error_text(request, exc)}")


async def _json_problem(request: Request) -> str:
    """``not valid JSON (line x column y)`` for a request body that is not JSON."""
    import json

    try:
        json.loads(await request.body())
    except json.JSONDecodeError as exc:
        return f"not valid JSON (line {exc.lineno} column {exc.colno})"
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON (not UTF-8 text)"
    return "not valid JSON"


def create_app(
    engine: Engine | None = None, start_worker: bool = True, settings: Settings | None = None
) -> FastAPI:
    """The operator platform.

    ``engine``: the database (default: the settings' database); ``start_worker``:
    run the dispatch worker in this process for the app's lifetime;
    ``settings``: deployment settings (default: from ``TOCSIN_*``).
    """
    settings = settings or get_settings()
    engine = engine or get_engine()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        handle: Any = None
        if start_worker:
            try:
                from tocsin.dispatch.worker import start_background_worker
            except ImportError:
                log.warning("tocsin.dispatch.worker not available: no in-process worker")
            else:
                handle = start_background_worker(engine, settings=settings)
                app.state.simulators = getattr(handle, "sims", None)
        try:
            yield
        finally:
            if handle is not None:
                result = handle.stop()
                if inspect.isawaitable(result):
                    await result

    app = FastAPI(
        title="Tocsin operator platform",
        lifespan=lifespan,
        dependencies=[Depends(csrf_guard)],
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.engine = engine
    app.state.settings = settings
    # One-time codes of the citizen portal: live providers, else the worker's simulators.
    from tocsin.dispatch.transactional import ChannelCodeSender

    app.state.simulators = None
    app.state.code_sender = ChannelCodeSender(settings, lambda: app.state.simulators)
    csp = _content_security_policy(settings.map_tile_url)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # The cookie holds only the server-side session id (web_session), signed.
    app.add_middleware(
        SessionCookieMiddleware,
        trusted=settings.trusted_proxy_networks(),
        secret_key=resolve_secret_key(settings),
        session_cookie="tocsin_session",
        max_age=settings.session_lifetime_s,
        same_site="lax",
        https_only=settings.public_base_url.startswith("https://"),
    )
    # Outermost: a body over its limit is refused before anything reads it (web/limits.py).
    app.add_middleware(BodySizeLimit)
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for module in (health, auth, pages, api, cap, messages_api, templates_pages, unsubscribe,
                   gateway_admin, governance, approvals, monitor, areas_api,
                   contacts_pages, control, voice, portal, location_hooks,
                   answers_pages):
        app.include_router(module.router)
    return app
