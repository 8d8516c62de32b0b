"""Login (with the choice of environment, F27) and logout."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from tocsin.authorities import services as authorities
from tocsin.web.deps import (
    ENVIRONMENTS,
    check_form_csrf,
    client_ip,
    engine_of,
    optional_operator,
    render,
)
from tocsin.web.security import csrf_token

router = APIRouter()


@router.get("/login")
def login_page(request: Request) -> Response:
    """The login form (username, password, environment)."""
    if optional_operator(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", form_username="", form_environment="simulation")


@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    environment: str = Form("simulation"),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    """Check the credentials; on success open a session in the chosen environment."""
    check_form_csrf(request, csrf_token_field)
    limiter = request.app.state.login_limiter
    ip = client_ip(request)
    context = {"form_username": username, "form_environment": environment}
    if environment not in ENVIRONMENTS:
        return render(request, "login.html", 422, error="Choose Simulation or Live.", **context)
    if limiter.blocked(username, ip):
        return render(
            request, "login.html", 429,
            error="Too many failed attempts. Wait 15 minutes, then try again.", **context,
        )
    user = authorities.authenticate(engine_of(request), username, password, source=ip)
    if user is None:
        limiter.record_failure(username, ip)
        return render(request, "login.html", 401, error="Wrong username or password.", **context)
    limiter.reset(username, ip)
    # A new session at login: nothing from before (including the CSRF token) survives.
    request.session.clear()
    data = asdict(user)
    data.pop("id")
    request.session["user"] = {**data, "environment": environment}
    csrf_token(request)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
    """End the session."""
    check_form_csrf(request, csrf_token_field)
    op = optional_operator(request)
    if op is not None:
        authorities.log_action(engine_of(request), op.username, "logout", source=client_ip(request))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
