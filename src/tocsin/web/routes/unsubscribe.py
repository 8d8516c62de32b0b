"""Unsubscribing from general-interest information by e-mail link (SPEC F8, F12; RFC 8058).

``GET /unsubscribe/{token}`` only shows a confirmation page: mail scanners and
link previewers fetch links, so a GET never changes anything.
``POST /unsubscribe/{token}`` unsubscribes: it is the RFC 8058 one-click request
a mail client sends (body ``List-Unsubscribe=One-Click``, no cookie, no CSRF
token — the signed token is the proof), and what the page's button sends.
A malformed or forged token answers 400 with a page naming the problem.
Alerts keep reaching the address: only general-interest information stops.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tocsin.subscribers.optout import (
    BadUnsubscribeToken,
    do_info_opt_out,
    read_unsubscribe_token,
    unsubscribe_secret,
)
from tocsin.web.deps import client_ip, engine_of, settings_of, templates
from tocsin.web.i18n import LANGUAGES, N_, error_text

router = APIRouter()

#: The page's words (msgids of the catalogues, translated by the template's ``_``).
_TEXT = {
    "title": N_("General-interest information"),
    "skip": N_("Skip to content"),
    "question": N_("Stop receiving general-interest information (road works, opening "
                   "hours…) by e-mail?"),
    "address": N_("Address:"),
    "button": N_("Unsubscribe"),
    "done": N_("Done: this address will no longer receive general-interest "
               "information."),
    "alerts_continue": N_("Alerts (danger, take shelter…) will still reach you."),
    "bad": N_("This unsubscribe link is not valid."),
    "bad_hint": N_("Use the complete link from the e-mail."),
}



def _language(request: Request, lang: str) -> str:
    """``lang`` when supported, else the first supported Accept-Language, else English."""
    if lang in LANGUAGES:
        return lang
    for item in request.headers.get("accept-language", "").split(","):
        primary = item.split(";")[0].strip().split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return "en"


def _masked(address: str) -> str:
    """``alice@example.org`` -> ``a…@example.org``: enough to recognise, not to harvest."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def _page(request: Request, lang: str, state: str, status: int = 200, **ctx: str) -> Response:
    language = _language(request, lang)
    return templates.TemplateResponse(
        request, "unsubscribe.html",
        {"lang": language, "t": _TEXT, "state": state, **ctx},
        status_code=status)


def _address(request: Request, token: str) -> str:
    return read_unsubscribe_token(unsubscribe_secret(settings_of(request)), token)


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str, lang: str = "") -> Response:
    """The confirmation page (changes nothing); 400 for a bad token."""
    try:
        address = _address(request, token)
    except BadUnsubscribeToken as exc:
        return _page(request, lang, "bad", 400,
                     reason=error_text(exc, _language(request, lang)))
    return _page(request, lang, "confirm", masked=_masked(address),
                 action=str(request.url.path) + (f"?lang={lang}" if lang in LANGUAGES else ""))


@router.post("/unsubscribe/{token}")
def unsubscribe(request: Request, token: str, lang: str = "") -> Response:
    """RFC 8058 one-click unsubscription: ``info_opt_in = False`` for every e-mail contact
    point with the token's address, one audit row; 200 (also when already done),
    400 for a bad token."""
    try:
        address = _address(request, token)
    except BadUnsubscribeToken as exc:
        return _page(request, lang, "bad", 400,
                     reason=error_text(exc, _language(request, lang)))
    do_info_opt_out(engine_of(request), address, source=client_ip(request))
    return _page(request, lang, "done", masked=_masked(address))
