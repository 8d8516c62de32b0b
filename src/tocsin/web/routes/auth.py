"""Login (with the choice of environment, F27), the TOTP step, logout, accounts, invitations.

Every POST here is also checked for its CSRF token by the app before it runs.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from tocsin.authorities import accounts, sessions, totp
from tocsin.authorities.policy import LIVE_SENDER_ROLES
from tocsin.web.deps import (
    ENVIRONMENTS,
    Operator,
    check_form_csrf,
    client_ip,
    close_session,
    current_operator,
    engine_of,
    error_text,
    language_of,
    open_session,
    optional_operator,
    public_url_of,
    render,
    settings_of,
    translate,
    web_session_of,
)

router = APIRouter()


def _login_page(request: Request, status: int = 200, error: str = "", username: str = "",
                environment: str = "simulation", notice: str = "") -> Response:
    return render(request, "login.html", status, error=error, notice=notice,
                  form_username=username[:120],
                  form_environment=environment if environment in ENVIRONMENTS else "simulation")


@router.get("/login")
def login_page(request: Request, done: str = "") -> Response:
    """The login form (username, password, environment)."""
    if optional_operator(request) is not None:
        return RedirectResponse("/", status_code=303)
    notice = {"password": translate(request, "Password changed: log in with the new one."),
              "logout": translate(request, "You are logged out.")}.get(done, "")
    return _login_page(request, notice=notice)


@router.post("/login")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    environment: str = Form("simulation"),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    """Check the credentials (rate-limited); on success open a new server-side session."""
    check_form_csrf(request, csrf_token_field)
    if environment not in ENVIRONMENTS:
        return _login_page(request, 422, translate(request, "Choose Simulation or Live."),
                           username)
    if not username.strip() or not password:
        return _login_page(request, 422, translate(request, "Type your username and password."),
                           username,
                           environment)
    settings = settings_of(request)
    result = sessions.log_in(engine_of(request), username, password, environment,
                             client_ip(request), idle_timeout_s=settings.session_idle_timeout_s,
                             lifetime_s=settings.session_lifetime_s)
    if result.outcome == "throttled":
        return _login_page(request, 429, translate(
            request, "Too many failed attempts. Try again in %(seconds)s s.",
            seconds=result.wait_s), username, environment)
    if result.outcome != "ok":
        return _login_page(request, 401, translate(request, "Wrong username or password."),
                           username, environment)
    # A new session id at login: nothing from before (including the CSRF token) survives.
    open_session(request, result.token)
    if result.pending == "totp":
        return RedirectResponse("/login/totp", status_code=303)
    if result.pending == "enrol":
        return RedirectResponse("/account/totp", status_code=303)
    return RedirectResponse("/", status_code=303)


def _pending(request: Request, stage: str) -> sessions.SessionInfo | None:
    info = web_session_of(request)
    return info if info is not None and info.pending == stage else None


@router.get("/login/totp")
def totp_page(request: Request) -> Response:
    """The second step of a login: the 6-digit code of the authenticator app."""
    if _pending(request, "totp") is None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login_totp.html")


@router.post("/login/totp")
def totp_check(request: Request, code: str = Form(""),
               csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
    """Check the TOTP code; on success the session gets a new id and is logged in."""
    check_form_csrf(request, csrf_token_field)
    if _pending(request, "totp") is None:
        return RedirectResponse("/login", status_code=303)
    token = request.session.get("sid", "")
    try:
        new = sessions.verify_second_factor(engine_of(request), token, code, client_ip(request))
    except LookupError:
        close_session(request)
        return RedirectResponse("/login", status_code=303)
    except sessions.SecondFactorError as exc:
        return render(request, "login_totp.html", 429 if exc.wait_s else 401, error=exc.reason)
    open_session(request, new)
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
    """End the session: its id no longer opens anything, even from a saved cookie."""
    check_form_csrf(request, csrf_token_field)
    token = request.session.get("sid")
    if isinstance(token, str):
        sessions.end_session(engine_of(request), token, source=client_ip(request))
    close_session(request)
    return RedirectResponse("/login?done=logout", status_code=303)


# ----------------------------------------------------------------------------- TOTP enrolment


def _enrol_page(request: Request, status: int = 200, error: str = "") -> Response:
    info = web_session_of(request)
    if info is None or info.pending == "totp":
        return RedirectResponse("/login", status_code=303)
    try:
        secret, uri = sessions.enrolment(engine_of(request), request.session.get("sid", ""))
    except LookupError:
        return RedirectResponse("/login", status_code=303)
    except ValueError:
        return render(request, "totp_enrol.html", 200, enrolled=True)
    grouped = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    live_blocked = info.pending == "enrol"
    return render(request, "totp_enrol.html", status, secret=grouped, otpauth_uri=uri,
                  qr_svg=totp.qr_svg(uri), error=error, live_blocked=live_blocked,
                  enrolled=False)


@router.get("/account/totp")
def totp_enrol_page(request: Request) -> Response:
    """Set up the second factor: the secret, its QR code (SVG) and a code to confirm."""
    return _enrol_page(request)


@router.post("/account/totp")
def totp_enrol(request: Request, code: str = Form(""),
               csrf_token_field: str = Form("", alias="csrf_token")) -> Response:
    """Confirm the enrolment with a code from the app; the session passes the second factor."""
    check_form_csrf(request, csrf_token_field)
    try:
        new = sessions.confirm_enrolment(engine_of(request), request.session.get("sid", ""),
                                         code, client_ip(request))
    except LookupError:
        return RedirectResponse("/login", status_code=303)
    except sessions.SecondFactorError as exc:
        return _enrol_page(request, 422, exc.reason)
    open_session(request, new)
    return RedirectResponse("/", status_code=303)


# ----------------------------------------------------------------------------- account


@router.get("/account")
def account_page(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """The operator's account: interface language, second factor and password."""
    return render(request, "account.html", live_sender=op.role in LIVE_SENDER_ROLES)


@router.post("/account/language")
def language_change(
    request: Request,
    language: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
    op: Operator = Depends(current_operator),
) -> Response:
    """Set the user's interface language (``fr|nl|de|en``, or empty: follow the browser)."""
    check_form_csrf(request, csrf_token_field)
    try:
        accounts.set_language(engine_of(request), op.user_id, language,
                              source=client_ip(request))
    except ValueError as exc:
        return render(request, "account.html", 422, error=str(exc),
                      live_sender=op.role in LIVE_SENDER_ROLES)
    if language:  # the new setting wins over an earlier ?lang= of this browser
        request.session.pop("lang", None)
    return RedirectResponse("/account", status_code=303)


@router.post("/account/password")
def password_change(
    request: Request,
    current_password: str = Form(""),
    password: str = Form(""),
    password_again: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
    op: Operator = Depends(current_operator),
) -> Response:
    """Change the password; every session of the user ends, this one too."""
    check_form_csrf(request, csrf_token_field)
    if password != password_again:
        return render(request, "account.html", 422,
                      error=translate(request, "password_again: the two new passwords differ"),
                      live_sender=op.role in LIVE_SENDER_ROLES)
    try:
        accounts.change_password(engine_of(request), op.user_id, current_password, password,
                                 source=client_ip(request))
    except ValueError as exc:
        return render(request, "account.html", 422, error=str(exc),
                      live_sender=op.role in LIVE_SENDER_ROLES)
    close_session(request)
    return RedirectResponse("/login?done=password", status_code=303)


# ----------------------------------------------------------------------------- users (admin)


def _actor(request: Request, op: Operator) -> accounts.Actor:
    return accounts.users_actor(engine_of(request), op.user_id, op.second_factor)


@router.get("/admin/users")
def users_page(request: Request, op: Operator = Depends(current_operator)) -> Response:
    """Invite a user; end a user's sessions (authority admins and the federal operator)."""
    return render(request, "users_admin.html", form_authority=op.authority_id)


@router.post("/admin/users/invite")
def users_invite(
    request: Request,
    email: str = Form(""),
    role: str = Form("operator"),
    authority_id: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
    op: Operator = Depends(current_operator),
) -> Response:
    """Invite by e-mail; the link is shown when no SMTP relay is configured."""
    check_form_csrf(request, csrf_token_field)
    try:
        invitation = accounts.invite_and_send(
            engine_of(request), _actor(request, op), email, role,
            authority_id.strip() or op.authority_id, settings_of(request),
            source=client_ip(request), base_url=public_url_of(request),
            language=language_of(request))
    except accounts.Denied as exc:
        return render(request, "users_admin.html", 403,
                      error=translate(request, "Not allowed: %(reason)s.",
                                      reason=error_text(request, exc)),
                      form_authority=authority_id)
    except (ValueError, LookupError) as exc:
        return render(request, "users_admin.html", 422, error=str(exc).strip("'\""),
                      form_authority=authority_id)
    return render(request, "users_admin.html", invitation=invitation,
                  form_authority=invitation.authority_id)


@router.post("/admin/users/revoke-sessions")
def users_revoke(
    request: Request,
    username: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
    op: Operator = Depends(current_operator),
) -> Response:
    """End every session of a user at once (a lost laptop, a departure)."""
    check_form_csrf(request, csrf_token_field)
    try:
        count = accounts.revoke_user_sessions(engine_of(request), _actor(request, op), username,
                                              source=client_ip(request))
    except accounts.Denied as exc:
        return render(request, "users_admin.html", 403,
                      error=translate(request, "Not allowed: %(reason)s.",
                                      reason=error_text(request, exc)),
                      form_authority=op.authority_id)
    except LookupError as exc:
        return render(request, "users_admin.html", 404, error=str(exc).strip("'\""),
                      form_authority=op.authority_id)
    return render(request, "users_admin.html", form_authority=op.authority_id,
                  notice=translate(request, "%(count)s session(s) of %(name)s ended.",
                                   count=count, name=username))


# ----------------------------------------------------------------------------- invitations


@router.get("/invitation/{token}")
def invitation_page(request: Request, token: str) -> Response:
    """The invitee chooses a username and a password."""
    try:
        info = accounts.invitation_info(engine_of(request), token)
    except LookupError as exc:
        return render(request, "error.html", 404, title=translate(request, "Invitation"),
                      message=str(exc).removeprefix("invitation: ").strip("'\""))
    return render(request, "invitation.html", invitation=info, token=token,
                  form_username=info.email.split("@")[0])


@router.post("/invitation/{token}")
def invitation_accept(
    request: Request,
    token: str,
    username: str = Form(""),
    display_name: str = Form(""),
    password: str = Form(""),
    password_again: str = Form(""),
    csrf_token_field: str = Form("", alias="csrf_token"),
) -> Response:
    """Create the account from the invitation, log in (simulation) and set up TOTP."""
    check_form_csrf(request, csrf_token_field)
    engine = engine_of(request)
    try:
        info = accounts.invitation_info(engine, token)
    except LookupError as exc:
        return render(request, "error.html", 404, title=translate(request, "Invitation"),
                      message=str(exc).removeprefix("invitation: ").strip("'\""))
    error = ""
    if password != password_again:
        error = translate(request, "password_again: the two passwords differ")
    else:
        settings = settings_of(request)
        try:
            sid = accounts.accept_invitation(
                engine, token, username, password, display_name, source=client_ip(request),
                idle_timeout_s=settings.session_idle_timeout_s,
                lifetime_s=settings.session_lifetime_s)
        except LookupError as exc:
            error = str(exc).strip("'\"")
        except ValueError as exc:  # a TextInputError (username, display_name) is translated
            error = (f"{getattr(exc, 'field', '')}: {error_text(request, exc)}"
                     if getattr(exc, "template", "") else str(exc))
        else:
            open_session(request, sid)
            return RedirectResponse("/account/totp", status_code=303)
    return render(request, "invitation.html", 422, invitation=info, token=token,
                  form_username=username[:120], error=error)
