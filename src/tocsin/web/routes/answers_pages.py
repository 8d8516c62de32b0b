"""Answers to group messages (issue 10 point 8): the live response board, its events and
CSV, the follow-up to non-responders, the public answer page of e-mail links, and the
provider's webhook for inbound SMS.

Routes parse input, call one service of ``campaigns.answer_service`` and render.

- ``GET /campaigns/{id}/answers``: the board (counts per option and "no answer yet",
  the latest answers); ``…/answers/events``: server-sent ``answers`` events every
  second (the page updates within 2 s; without JavaScript it refreshes every 5 s);
  ``…/answers.csv``: the export (formula cells escaped); ``POST …/answers/follow-up``.
- ``GET /answer/{token}``: the page an e-mail's link opens (changes nothing: mail
  scanners follow links); ``POST /answer/{token}``: the button pressed (the signed token
  is the proof, no session, no CSRF token).
- ``POST /inbound/sms``: an SMS received by the provider (form or JSON: ``from`` /
  ``From`` / ``msisdn``, ``text`` / ``Body``, ``to`` / ``To``, ``id`` / ``MessageSid``),
  authenticated by ``X-Tocsin-Secret`` (or ``Authorization: Bearer``) equal to
  ``TOCSIN_INBOUND_SMS_SECRET``; 404 when that is not set.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from tocsin.campaigns import answer_service as svc
from tocsin.core.errors import InputError
from tocsin.core.i18n import ngettext
from tocsin.subscribers.optout import unsubscribe_secret
from tocsin.web.actors import acting
from tocsin.web.deps import (
    Operator,
    check_form_csrf,
    current_operator,
    engine_of,
    language_of,
    render,
    settings_of,
    templates,
)
from tocsin.web.i18n import LANGUAGES, N_, error_text
from tocsin.web.routes.monitor import _sse, _stream

router = APIRouter()

#: The follow-up sentence, singular and plural: the msgids of the board template's
#: ``{% trans %}`` block (extracted there), for the live update of its count.
FOLLOW_UP_ONE = ("Send the message again to the %(n)s person who has not answered. "
                 "Their answer counts here.")
FOLLOW_UP_MANY = ("Send the message again to the %(n)s people who have not answered. "
                  "Their answers count here.")

#: Largest inbound webhook body read (bytes): an SMS is short.
_MAX_INBOUND = 16 * 1024

#: Words of the public answer page (msgids, translated by the template's ``_``).
_TEXT = {
    "title": N_("Your answer"),
    "skip": N_("Skip to content"),
    "choose": N_("Choose your answer:"),
    "answered": N_("Your answer: %(label)s. You may change it below."),
    "done": N_("Thank you: your answer is recorded: %(label)s."),
    "closed": N_("This call is closed: answers are no longer taken."),
    "bad": N_("This answer link is not valid."),
    "bad_hint": N_("Use the complete link from the e-mail."),
    "message": N_("The message"),
}


def _board_page(request: Request, op: Operator, campaign_id: str, status: int = 200,
                **context: Any) -> Response:
    data = svc.board(engine_of(request), campaign_id, acting(request, op))
    # The answers and the replies not understood, one list, newest first.
    latest = sorted([{**a, "at": a["answered_at"]} for a in data["answers"]]
                    + [{**u, "at": u["received_at"]} for u in data["unreadable"]],
                    key=lambda row: row["at"], reverse=True)[:200]
    return render(request, "answers_board.html", status, b=data, latest=latest, **context)


def _follow_up_text(language: str, waiting: int) -> str:
    """The follow-up sentence for ``waiting`` people (plural forms of ``language``)."""
    return ngettext(language, FOLLOW_UP_ONE, FOLLOW_UP_MANY, waiting, n=waiting)


@router.get("/campaigns/{campaign_id}/answers")
def board_page(campaign_id: str, request: Request, followed: int | None = None,
               op: Operator = Depends(current_operator)) -> Response:
    """The live response board of a campaign that collects answers (404 otherwise, or
    when the operator may not read it)."""
    return _board_page(request, op, campaign_id, followed=followed)


@router.get("/campaigns/{campaign_id}/answers/events")
def board_events(campaign_id: str, request: Request,
                 max_events: int | None = Query(None, ge=1, le=10_000),
                 op: Operator = Depends(current_operator)) -> Response:
    """Server-sent ``answers`` events (``answer_service.board``) every second while the
    call is open. 404 before the stream starts when the operator may not read it."""
    engine, actor = engine_of(request), acting(request, op)
    language = language_of(request)

    def board() -> dict[str, Any]:  # with the follow-up sentence for the live count
        data = svc.board(engine, campaign_id, actor)
        return {**data, "follow_up_text": _follow_up_text(language, data["no_answer"])}

    pending = [board()]

    def read() -> dict[str, Any]:
        return pending.pop() if pending else board()

    return _sse(_stream(request, "answers", read,
                        lambda d: d["call_status"] != "open", max_events))


@router.get("/campaigns/{campaign_id}/answers.csv")
def board_csv(campaign_id: str, request: Request,
              op: Operator = Depends(current_operator)) -> Response:
    """The answers as CSV (``answer_service.answers_csv``), downloaded."""
    body = svc.answers_csv(engine_of(request), campaign_id, acting(request, op))
    return Response(body.encode("utf-8-sig"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="answers-{campaign_id[:8]}.csv"'})


@router.post("/campaigns/{campaign_id}/answers/follow-up")
def board_follow_up(campaign_id: str, request: Request, csrf_token: str = Form(""),
                    op: Operator = Depends(current_operator)) -> Response:
    """Send the campaign again to those who have not answered (``answer_service.follow_up``),
    then back to the board."""
    check_form_csrf(request, csrf_token)
    try:
        svc.follow_up(engine_of(request), campaign_id, acting(request, op),
                      created_by=op.username)
    except InputError as exc:
        return _board_page(request, op, campaign_id, 422, error=error_text(exc, _lang(request)))
    return RedirectResponse(f"/campaigns/{campaign_id}/answers?followed=1", status_code=303)


def _lang(request: Request, lang: str = "") -> str:
    if lang in LANGUAGES:
        return lang
    query = request.query_params.get("lang", "")
    if query in LANGUAGES:
        return query
    for item in request.headers.get("accept-language", "").split(","):
        primary = item.split(";")[0].strip().split("-")[0].lower()
        if primary in LANGUAGES:
            return primary
    return "en"


def _answer_page(request: Request, lang: str, state: str, status: int = 200,
                 **ctx: Any) -> Response:
    return templates.TemplateResponse(
        request, "answer.html", {"lang": lang, "t": _TEXT, "state": state, **ctx},
        status_code=status)


@router.get("/answer/{token}")
def answer_form(request: Request, token: str, lang: str = "") -> Response:
    """The answer page of an e-mail's link: the message and one button per option
    (changes nothing); 400 for a bad link, 404 for a campaign gone."""
    secret = unsubscribe_secret(settings_of(request))
    try:
        page = svc.answer_page(engine_of(request), secret, token)
    except InputError as exc:
        language = _lang(request, lang)
        return _answer_page(request, language, "bad", 400, reason=error_text(exc, language))
    language = lang if lang in LANGUAGES else page["language"]
    return _answer_page(request, language, "form" if page["open"] else "closed", page=page,
                        action=str(request.url.path) + f"?lang={language}")


@router.post("/answer/{token}")
def answer_submit(request: Request, token: str, option: int = Form(0),
                  lang: str = "") -> Response:
    """The button pressed: records the answer (a second press changes it while the call
    is open); 400 for a bad link, 422 for an option out of range or a closed call."""
    secret = unsubscribe_secret(settings_of(request))
    engine = engine_of(request)
    language = _lang(request, lang)
    try:
        done = svc.email_answer(engine, secret, token, option)
    except InputError as exc:
        if exc.field == "token":
            return _answer_page(request, language, "bad", 400,
                                reason=error_text(exc, language))
        page = svc.answer_page(engine, secret, token)
        return _answer_page(request, language, "form" if page["open"] else "closed", 422,
                            page=page, action=str(request.url.path) + f"?lang={language}",
                            reason=error_text(exc, language))
    return _answer_page(request, language, "done", label=done["label"])


def _secret_ok(request: Request, expected: str) -> bool:
    given = request.headers.get("x-tocsin-secret", "")
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _first(data: Any, *names: str) -> str:
    for name in names:
        value = data.get(name)
        if isinstance(value, str | int) and str(value).strip():
            return str(value)
    return ""


@router.post("/inbound/sms", include_in_schema=False)
async def inbound_sms(request: Request) -> Response:
    """An SMS the provider received for Tocsin: stored and read as an answer
    (``answer_service.record_inbound``). ``{"id", "campaign_id", "option", "reason"}``;
    401 bad secret, 404 webhook off, 413 body too large, 422 no sender or no text."""
    expected = settings_of(request).inbound_sms_secret
    if not expected:
        return JSONResponse({"error": {"field": "request", "reason": "not found"}}, 404)
    if not _secret_ok(request, expected):
        return JSONResponse({"error": {"field": "secret", "reason": "missing or wrong "
                                       "shared secret"}}, 401)
    if int(request.headers.get("content-length") or 0) > _MAX_INBOUND:
        return JSONResponse({"error": {"field": "body", "reason": "too large"}}, 413)
    data: Any
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            data = await request.json()
        else:
            data = await request.form()
    except Exception:  # noqa: BLE001 - an unreadable body is the sender's error
        data = None
    if not hasattr(data, "get"):
        return JSONResponse({"error": {"field": "body", "reason": "a form or a JSON object "
                                       "is expected"}}, 422)
    sender = _first(data, "from", "From", "msisdn", "sender")
    text = _first(data, "text", "Text", "Body", "body", "message")
    if not sender or not text:
        field = "from" if not sender else "text"
        return JSONResponse({"error": {"field": field, "reason": "missing"}}, 422)
    result = await run_in_threadpool(
        svc.record_inbound, engine_of(request), sender[:32], text, via="webhook",
        recipient=_first(data, "to", "To")[:32] or None,
        provider_id=_first(data, "id", "MessageSid", "messageId")[:100] or None)
    return JSONResponse({"id": result.id, "campaign_id": result.campaign_id,
                         "option": result.option, "reason": result.reason})
