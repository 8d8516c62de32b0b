"""The public citizen portal (issue 10 points 1, 2, 3, 5; SPEC F7–F9, F36).

No login with a password: ``/register`` takes an e-mail address or a mobile number and
sends a one-time code (``subscribers.verification``); the code opens the citizen's
profile (``/me``) or, for a new contact, the profile form (``/register/profile``). The
answer is the same for a registered and a new contact. The citizen's session is the
``tocsin_citizen`` cookie (a random token, HttpOnly, SameSite=Lax, Secure over HTTPS),
separate from the operators' session; every POST carries the CSRF token like the rest
of the site. Pages work without JavaScript; ``static/portal.js`` only solves the form's
proof of work (without it the form asks for a few seconds' wait instead).

The e-mail's link opens ``/register/code/{code}``: a page that shows the code and a
button that POSTs it (mail scanners open links: a GET changes nothing).

``/register/addresses/…`` answer the address fields' autocomplete from the official
address register (JSON, public, GET only, at most 20 items, cacheable): the form works
the same without them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tocsin.core.db import utcnow
from tocsin.core.errors import InputError
from tocsin.geo import addresses as address_register
from tocsin.subscribers import challenge
from tocsin.subscribers.gdpr import erase_subscriber, export_csv, export_json
from tocsin.subscribers.registration import (
    ACCESSIBILITY,
    ADDRESS_KINDS,
    CHANNELS,
    ProfileErrors,
    check_profile,
    create_profile,
    profile_of,
    remove_contact,
    update_profile,
)
from tocsin.subscribers.rules import LANGUAGES
from tocsin.subscribers.verification import (
    CitizenView,
    PortalConfig,
    citizen_session,
    confirm_code,
    end_session,
    request_call,
    request_code,
)
from tocsin.web.deps import (
    client_ip,
    engine_of,
    error_text,
    language_of,
    public_url_of,
    render,
    settings_of,
)
from tocsin.web.i18n import N_
from tocsin.web.security import resolve_secret_key

router = APIRouter()

COOKIE = "tocsin_citizen"
MAX_ADDRESS_ROWS = 5


# --- plumbing -----------------------------------------------------------------------


def _secret(request: Request) -> str:
    return resolve_secret_key(settings_of(request))


def _config(request: Request) -> PortalConfig:
    config = getattr(request.app.state, "portal_config", None)
    if isinstance(config, PortalConfig):
        return config
    settings = settings_of(request)
    return PortalConfig.for_prices(settings.voice_minute_price_eur,
                                   settings.sms_segment_price_eur)


def _token(request: Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token and len(token) < 100 else None


def _citizen(request: Request) -> CitizenView | None:
    return citizen_session(engine_of(request), _token(request), config=_config(request))


def _set_cookie(request: Request, response: Response, token: str) -> None:
    https = (settings_of(request).public_base_url.startswith("https://")
             or request.url.scheme == "https")
    response.set_cookie(COOKIE, token, max_age=_config(request).session_ttl_s, httponly=True,
                        samesite="lax", secure=https, path="/")


def _redirect(request: Request, path: str) -> RedirectResponse:
    lang = request.query_params.get("lang")
    if lang in LANGUAGES:
        path += ("&" if "?" in path else "?") + f"lang={lang}"
    return RedirectResponse(path, status_code=303)


def _field_errors(request: Request, exc: InputError) -> dict[str, str]:
    errors = exc.errors if isinstance(exc, ProfileErrors) else [exc]
    out: dict[str, str] = {}
    for e in errors:  # two problems of one field are both said
        text = error_text(request, e)
        out[e.field] = f"{out[e.field]}; {text}" if e.field in out else text
    return out


def _page(request: Request, template: str, status: int = 200, **ctx: Any) -> Response:
    ctx.setdefault("errors", {})
    return render(request, template, status, portal_lang_links=True, **ctx)


async def _form(request: Request) -> Any:
    try:
        return await request.form(max_files=0, max_fields=80, max_part_size=4096)
    except Exception:  # noqa: BLE001 - an unreadable or oversized body: treated as empty
        return {}


def _text(form: Any, name: str) -> str:
    value = form.get(name) if hasattr(form, "get") else None
    return value if isinstance(value, str) else ""


def _challenge_context(request: Request) -> dict[str, Any]:
    config = _config(request)
    return {"challenge": challenge.issue(_secret(request), utcnow()),
            "difficulty": config.difficulty, "no_js_delay": config.no_js_delay_s}


# --- registration -------------------------------------------------------------------


@router.get("/register")
def register_page(request: Request) -> Response:
    """Step 1: an e-mail address or a mobile number."""
    citizen = _citizen(request)
    return _page(request, "portal_register.html", logged_in=bool(citizen and
                                                                 citizen.subscriber_id),
                 contact="", **_challenge_context(request))


@router.post("/register")
async def register(request: Request) -> Response:
    """Send a code (same answer for a known and a new contact); 422 naming the field."""
    form = await _form(request)
    contact = _text(form, "contact")
    try:
        sent = await run_in_threadpool(
            request_code, engine_of(request), request.app.state.code_sender, _secret(request),
            _token(request), contact, client_ip(request), language_of(request),
            _text(form, "challenge"), _text(form, "solution"), _config(request),
            public_url_of(request))
    except InputError as exc:
        return _page(request, "portal_register.html", 422, errors=_field_errors(request, exc),
                     contact=contact[:320], logged_in=False, **_challenge_context(request))
    response = _redirect(request, "/register/verify")
    _set_cookie(request, response, sent.token)
    return response


def _masked(citizen: CitizenView | None) -> str:
    from tocsin.subscribers.verification import masked

    if citizen is None or not citizen.pending_value or not citizen.pending_kind:
        return ""
    return masked(citizen.pending_kind, citizen.pending_value)


def _verify_context(request: Request, citizen: CitizenView | None) -> dict[str, Any]:
    """The code page: the contact masked, whether the code is said in a call, and the
    "call me instead" form (a mobile whose code went by SMS) with its challenge."""
    kind = citizen.pending_kind if citizen else ""
    channel = citizen.code_channel if citizen else ""
    locked = bool(citizen and citizen.code_locked)
    ctx: dict[str, Any] = {"masked": _masked(citizen), "channel": kind,
                           "calling": channel == "voice", "locked": locked,
                           "call_instead": kind == "mobile" and channel == "sms" and not locked}
    if ctx["call_instead"]:
        ctx.update(_challenge_context(request))
    return ctx


@router.get("/register/verify")
def verify_page(request: Request) -> Response:
    """Step 2: type the code."""
    citizen = _citizen(request)
    if citizen is None or not citizen.pending_value or citizen.verified:
        return _redirect(request, "/register")
    return _page(request, "portal_verify.html", **_verify_context(request, citizen))


@router.post("/register/call")
async def call_instead(request: Request) -> Response:
    """"Call me instead": a new code said in a voice call to the number being verified;
    422 on the code page naming the reason (cost guard, challenge)."""
    form = await _form(request)
    try:
        await run_in_threadpool(
            request_call, engine_of(request), request.app.state.code_sender, _secret(request),
            _token(request), client_ip(request), language_of(request),
            _text(form, "challenge"), _text(form, "solution"), _config(request))
    except InputError as exc:
        citizen = await run_in_threadpool(_citizen, request)
        if citizen is None or not citizen.pending_value or citizen.verified:
            return _redirect(request, "/register")
        errors = _field_errors(request, exc)
        if "challenge" in errors:
            errors["call"] = errors.pop("challenge")
        if "contact" in errors:
            errors["call"] = errors.pop("contact")
        return _page(request, "portal_verify.html", 422, errors=errors,
                     **_verify_context(request, citizen))
    return _redirect(request, "/register/verify")


@router.post("/register/verify")
async def verify(request: Request) -> Response:
    """Check the code: an existing profile opens ``/me``, a new contact the profile form."""
    form = await _form(request)
    citizen = await run_in_threadpool(_citizen, request)
    try:
        done = await run_in_threadpool(confirm_code, engine_of(request), _secret(request),
                                       _token(request), _text(form, "code"),
                                       client_ip(request), _config(request))
    except InputError as exc:
        if exc.code == "code_locked":  # the page now shows what to do instead of the field
            citizen = await run_in_threadpool(_citizen, request)
        return _page(request, "portal_verify.html", 422, errors=_field_errors(request, exc),
                     **_verify_context(request, citizen))
    response = _redirect(request, "/register/profile" if done.state == "new" else "/me")
    _set_cookie(request, response, done.token)
    return response


@router.get("/register/code/{code}")
def code_link(request: Request, code: str) -> Response:
    """The e-mail's link: shows the code and a button that POSTs it; changes nothing."""
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        raise LookupError("code")
    return _page(request, "portal_code.html", code=code)


def _pin_rows(values: dict[str, Any], exc: InputError | None) -> dict[int, Any]:
    """The address rows that offer "place it on the map": those the register missed
    (error code ``register_…``) and those already pinned; each with the position the
    map opens at (``{"lat", "lon"}`` or None)."""
    rows: set[int] = set()
    for e in (exc.errors if isinstance(exc, ProfileErrors) else [exc] if exc else []):
        parts = e.field.split("-")
        if e.code.startswith("register_") or e.code.startswith("pin"):
            if len(parts) == 3 and parts[1].isdigit():
                rows.add(int(parts[1]))
    for i in range(MAX_ADDRESS_ROWS):
        if values.get(f"addr-{i}-lat") or values.get(f"addr-{i}-lon"):
            rows.add(i)
    return {i: values.get(f"addr-{i}-municipality", "") for i in sorted(rows)}


def _profile_context(request: Request, values: dict[str, Any],
                     exc: InputError | None = None) -> dict[str, Any]:
    pins = _pin_rows(values, exc)
    engine = engine_of(request)
    centres = {i: address_register.centre_of(engine, town) if town else None
               for i, town in pins.items()}
    return {"values": values, "channels_all": CHANNELS, "accessibility_all": ACCESSIBILITY,
            "kinds_all": ADDRESS_KINDS, "rows": range(MAX_ADDRESS_ROWS),
            "languages_all": LANGUAGES, "pin_rows": centres,
            "autocomplete": address_register.has_register(engine)}


def _form_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {k: (v[:200] if isinstance(v, str) else "")
                              for k, v in form.items()} if hasattr(form, "items") else {}
    values["channels"] = [c for c in form.getlist("channels")] if hasattr(form, "getlist") \
        else []
    return values


@router.get("/register/profile")
def profile_page(request: Request) -> Response:
    """Step 3: the profile of a verified new contact."""
    citizen = _citizen(request)
    if citizen is None or not citizen.verified or citizen.subscriber_id is not None:
        return _redirect(request, "/me" if citizen and citizen.subscriber_id else "/register")
    first = {"email": "email", "landline": "voice"}.get(citizen.pending_kind or "", "sms")
    values = {"language": language_of(request), "channels": [first], "accessibility": "none",
              "primary": "0"}
    return _page(request, "portal_profile.html", action="/register/profile", new=True,
                 masked=_masked(citizen), **_profile_context(request, values))


@router.post("/register/profile")
async def create(request: Request) -> Response:
    """Create the profile; 422 listing every problem."""
    form = await _form(request)
    citizen = await run_in_threadpool(_citizen, request)
    try:
        profile = await run_in_threadpool(
            check_profile, engine_of(request), form,
            citizen is not None and citizen.pending_kind == "email")
        await run_in_threadpool(create_profile, engine_of(request), _token(request),
                                profile, client_ip(request))
    except InputError as exc:
        if exc.code == "session":
            return _redirect(request, "/register")
        return _page(request, "portal_profile.html", 422, errors=_field_errors(request, exc),
                     action="/register/profile", new=True, masked=_masked(citizen),
                     **_profile_context(request, _form_values(form), exc))
    return _redirect(request, "/me?saved=1")


# --- the citizen's own profile ------------------------------------------------------


def _subscriber(request: Request) -> int | None:
    citizen = _citizen(request)
    return citizen.subscriber_id if citizen is not None else None


@router.get("/me")
def me(request: Request, saved: str = "") -> Response:
    """The citizen's profile (after a one-time-code login), else the way to log in."""
    sid = _subscriber(request)
    if sid is None:
        return _redirect(request, "/register")
    return _page(request, "portal_me.html", profile=profile_of(engine_of(request), sid),
                 saved=saved == "1", contact="", **_challenge_context(request))


@router.get("/me/edit")
def edit_page(request: Request) -> Response:
    """The profile form, filled in."""
    sid = _subscriber(request)
    if sid is None:
        return _redirect(request, "/register")
    view = profile_of(engine_of(request), sid)
    values: dict[str, Any] = {"language": view.language, "channels": view.channels,
                              "accessibility": view.accessibility, "primary": "0",
                              "consent_alerts": "yes" if view.consent_alerts else "",
                              "consent_info": "yes" if view.info_opt_in else ""}
    for a in view.addresses:
        i = a["position"]
        values.update({f"addr-{i}-kind": a["kind"], f"addr-{i}-municipality": a["municipality"],
                       f"addr-{i}-street": a["street"], f"addr-{i}-number": a["number"],
                       f"addr-{i}-box": a["box"]})
        if a["geocoded"] == "pin":
            values.update({f"addr-{i}-lat": str(a["lat"]), f"addr-{i}-lon": str(a["lon"])})
    return _page(request, "portal_profile.html", action="/me/edit", new=False,
                 **_profile_context(request, values))


@router.post("/me/edit")
async def edit(request: Request) -> Response:
    """Save the profile; 422 listing every problem."""
    sid = await run_in_threadpool(_subscriber, request)
    if sid is None:
        return _redirect(request, "/register")
    form = await _form(request)
    try:
        view = await run_in_threadpool(profile_of, engine_of(request), sid)
        profile = await run_in_threadpool(
            check_profile, engine_of(request), form,
            any(c["kind"] == "email" for c in view.contacts))
        await run_in_threadpool(update_profile, engine_of(request), sid, profile,
                                client_ip(request))
    except InputError as exc:
        return _page(request, "portal_profile.html", 422, errors=_field_errors(request, exc),
                     action="/me/edit", new=False,
                     **_profile_context(request, _form_values(form), exc))
    return _redirect(request, "/me?saved=1")


@router.post("/me/contacts")
async def add_contact(request: Request) -> Response:
    """Add an e-mail address or a number: a code is sent to it, then ``/register/verify``."""
    sid = await run_in_threadpool(_subscriber, request)
    if sid is None:
        return _redirect(request, "/register")
    form = await _form(request)
    contact = _text(form, "contact")
    try:
        await run_in_threadpool(
            request_code, engine_of(request), request.app.state.code_sender, _secret(request),
            _token(request), contact, client_ip(request), language_of(request),
            _text(form, "challenge"), _text(form, "solution"), _config(request),
            public_url_of(request))
    except InputError as exc:
        return _page(request, "portal_me.html", 422, profile=profile_of(engine_of(request), sid),
                     errors=_field_errors(request, exc), contact=contact[:320], saved=False,
                     **_challenge_context(request))
    return _redirect(request, "/register/verify")


@router.post("/me/contacts/{contact_id}/remove")
def drop_contact(request: Request, contact_id: int) -> Response:
    """Remove one contact (not the last one)."""
    sid = _subscriber(request)
    if sid is None:
        return _redirect(request, "/register")
    try:
        remove_contact(engine_of(request), sid, contact_id, client_ip(request))
    except InputError as exc:
        return _page(request, "portal_me.html", 422, profile=profile_of(engine_of(request), sid),
                     errors=_field_errors(request, exc), contact="", saved=False,
                     **_challenge_context(request))
    return _redirect(request, "/me?saved=1")


@router.get("/me/export.{fmt}")
def export(request: Request, fmt: str) -> Response:
    """The whole profile as JSON or CSV (GDPR Art. 15, 20)."""
    sid = _subscriber(request)
    if sid is None:
        return _redirect(request, "/register")
    view = profile_of(engine_of(request), sid)
    if fmt == "json":
        body, media = export_json(view), "application/json"
    elif fmt == "csv":
        body, media = export_csv(view, language_of(request)), "text/csv; charset=utf-8"
    else:
        raise LookupError(fmt)
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="tocsin-profile.{fmt}"'})


@router.post("/me/delete")
async def delete(request: Request) -> Response:
    """Delete the profile at once (the box must be ticked: 422 naming ``confirm``)."""
    sid = await run_in_threadpool(_subscriber, request)
    if sid is None:
        return _redirect(request, "/register")
    form = await _form(request)
    if _text(form, "confirm") != "yes":
        exc = InputError("confirm", N_("tick this box to confirm the deletion"),
                         code="confirm")
        return _page(request, "portal_me.html", 422, profile=profile_of(engine_of(request), sid),
                     errors=_field_errors(request, exc), contact="", saved=False,
                     **_challenge_context(request))
    await run_in_threadpool(erase_subscriber, engine_of(request), sid, _secret(request))
    response = _page(request, "portal_deleted.html")
    response.delete_cookie(COOKIE, path="/")
    return response


@router.post("/me/logout")
def logout(request: Request) -> Response:
    """End the citizen's session."""
    end_session(engine_of(request), _token(request))
    response = _redirect(request, "/register")
    response.delete_cookie(COOKIE, path="/")
    return response


# --- the address register's autocomplete (JSON) --------------------------------------

_CACHE = {"Cache-Control": "public, max-age=300"}
_Q = Query("", max_length=100, description="What was typed (case and accents ignored).")
_LIMIT = Query(10, ge=1, le=address_register.MAX_RESULTS, description="At most this many items.")
_NIS = Query("", pattern=r"^(\d{5})?$", description="The municipality's NIS code.")
_TOWN = Query("", max_length=100, description="The municipality as typed, or a postcode.")


def _json(items: list[Any]) -> JSONResponse:
    return JSONResponse({"items": items}, headers=_CACHE)


def _place(request: Request, nis: str, municipality: str) -> address_register.PlaceMatch | None:
    if nis:
        return address_register.PlaceMatch((nis,))
    if not municipality.strip():
        raise InputError("municipality", N_("give the municipality (nis or municipality)"),
                         code="missing")
    return address_register.match_place(engine_of(request), municipality)


def _bad(request: Request, exc: InputError) -> JSONResponse:
    return JSONResponse({"error": {"field": exc.field, "reason": exc.reason,
                                   "message": error_text(request, exc)}}, status_code=422)


@router.get("/register/addresses/municipalities")
def address_municipalities(request: Request, q: str = _Q, limit: int = _LIMIT) -> Response:
    """Municipalities and postal names starting with ``q`` (any language, or a postcode):
    ``{"items": [{"nis", "postcode", "name", "label", "addresses"}]}``."""
    return _json(address_register.municipalities(engine_of(request), q, language_of(request),
                                                 limit))


@router.get("/register/addresses/streets")
def address_streets(request: Request, q: str = _Q, nis: str = _NIS,
                    municipality: str = _TOWN, limit: int = _LIMIT) -> Response:
    """Streets of a municipality (``nis``, or ``municipality`` as typed) matching ``q``:
    ``{"items": [{"name", "names", "postcodes"}]}``; 422 naming ``municipality`` when
    neither is given."""
    try:
        place = _place(request, nis, municipality)
    except InputError as exc:
        return _bad(request, exc)
    return _json(address_register.streets(engine_of(request), place, q, language_of(request), limit)
                 if place else [])


@router.get("/register/addresses/numbers")
def address_numbers(request: Request, street: str = Query(..., min_length=1, max_length=150),
                    q: str = _Q, nis: str = _NIS, municipality: str = _TOWN,
                    limit: int = _LIMIT) -> Response:
    """House numbers of ``street`` starting with ``q``: ``{"items": ["2", "10", "10A"]}``."""
    try:
        place = _place(request, nis, municipality)
    except InputError as exc:
        return _bad(request, exc)
    return _json(address_register.numbers(engine_of(request), place, street, q, limit)
                 if place else [])


@router.get("/register/addresses/boxes")
def address_boxes(request: Request, street: str = Query(..., min_length=1, max_length=150),
                  number: str = Query(..., min_length=1, max_length=20), nis: str = _NIS,
                  municipality: str = _TOWN, limit: int = _LIMIT) -> Response:
    """Boxes of ``number`` in ``street``: ``{"items": ["1", "2", "b007"]}`` (none: [])."""
    try:
        place = _place(request, nis, municipality)
    except InputError as exc:
        return _bad(request, exc)
    return _json(address_register.boxes(engine_of(request), place, street, number, limit)
                 if place else [])
