"""Voice channel: calls through a Twilio-compatible Calls API, spoken with TwiML (SPEC F22).

The de-facto interface of voice providers, implemented by Twilio and by the
open-source Somleng platform:

* start a call: ``POST {base}/2010-04-01/Accounts/{AccountSid}/Calls.json`` with the
  form fields ``To``, ``From``, ``Url`` (where the provider fetches the call's TwiML),
  ``Method``, ``StatusCallback``, ``StatusCallbackEvent``, ``StatusCallbackMethod``,
  ``MachineDetection`` and ``Timeout``, HTTP basic auth (account SID, auth token);
  the answer (201) is the call resource, JSON, with its ``sid``;
* hang up: ``POST {base}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` with
  ``Status=completed``;
* every request the provider makes to Tocsin (TwiML fetch, key presses, status
  callbacks) carries ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed with the auth
  token, of the full URL followed by each POST parameter name and value, sorted by
  name (Twilio, "Webhooks security").

TwiML and the signature come from the ``twilio`` helper library (MIT); requests are
made with httpx, so that any base URL works. The sender never touches the database:
``CallPermits`` (``dispatch.calls``) says when a call may start (the rate and the trunk
held across workers) and under which call id Tocsin's URLs name it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Gather, VoiceResponse

from tocsin.channels.base import OutgoingMessage, SendOutcome
from tocsin.dispatch.call_rules import settle_time

log = logging.getLogger(__name__)

#: ``<Say language>`` per Tocsin language: Belgian French and Dutch, German, British English.
SAY_LANGUAGE = {"fr": "fr-BE", "nl": "nl-BE", "de": "de-DE", "en": "en-GB"}

#: What the recipient hears after the message, per language (key press acknowledgement).
PROMPT = {
    "fr": "Appuyez sur 1 pour confirmer que vous avez entendu ce message, "
          "sur 9 pour l'entendre à nouveau.",
    "nl": "Druk op 1 om te bevestigen dat u dit bericht hebt gehoord, op 9 om het opnieuw "
          "te beluisteren.",
    "de": "Drücken Sie die 1, um zu bestätigen, dass Sie diese Nachricht gehört haben, "
          "die 9, um sie noch einmal zu hören.",
    "en": "Press 1 to confirm you heard this message, 9 to hear it again.",
}
THANKS = {"fr": "Merci. Au revoir.", "nl": "Dank u. Tot ziens.",
          "de": "Danke. Auf Wiederhören.", "en": "Thank you. Goodbye."}

#: Call statuses after which a call is over (Twilio ``CallStatus``).
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
#: The status callback events Tocsin asks for.
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
#: Key presses.
KEY_CONFIRM, KEY_REPEAT = "1", "9"
#: Seconds the recipient has to press a key after the prompt.
GATHER_TIMEOUT_S = 6


@dataclass(frozen=True)
class VoiceAccount:
    """One provider account. ``base_url``: the Calls API's base (``https://api.twilio.com``,
    a Somleng host); ``callback_base``: where the provider reaches Tocsin's ``/voice/…``
    routes; ``ring_timeout``: seconds before no-answer; ``machine_detection``:
    ``DetectMessageEnd``, ``Enable`` or empty (off); ``timeout``: seconds per HTTP
    request to the provider."""

    base_url: str
    account_sid: str
    auth_token: str
    callback_base: str
    ring_timeout: int = 30
    machine_detection: str = "DetectMessageEnd"
    timeout: float = 10.0

    @property
    def calls_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Calls.json"

    def call_url(self, sid: str) -> str:
        return (f"{self.base_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}"
                f"/Calls/{sid}.json")


def call_urls(callback_base: str, call_id: int) -> dict[str, str]:
    """Tocsin's URLs for one call: ``twiml``, ``status`` and ``gather`` (key presses)."""
    base = f"{callback_base.rstrip('/')}/voice/calls/{call_id}"
    return {"twiml": f"{base}/twiml", "status": f"{base}/status", "gather": f"{base}/gather"}


def _say(parent: VoiceResponse | Gather, text: str, language: str) -> None:
    parent.say(text, language=SAY_LANGUAGE.get(language, "en-GB"))


def call_twiml(script: str, language: str, gather_url: str, *, audio_url: str = "",
               machine: bool = False) -> str:
    """The TwiML of one call: the message twice, then "press 1 to confirm, 9 to repeat".

    ``script`` is spoken with ``<Say language="fr-BE">`` (``SAY_LANGUAGE``), or
    ``audio_url`` (a recorded file) is played instead. Inside ``<Gather numDigits="1">``
    so a key press interrupts it and is posted to ``gather_url``. An answering
    machine (``machine``) gets the message once and no prompt.
    """
    response = VoiceResponse()
    if machine:
        if audio_url:
            response.play(audio_url)
        else:
            _say(response, script, language)
        response.hangup()
        return str(response)
    gather = response.gather(num_digits=1, action=gather_url, method="POST",
                             timeout=GATHER_TIMEOUT_S)
    for i in range(2):
        if audio_url:
            gather.play(audio_url)
        else:
            _say(gather, script, language)
        if i == 0:
            gather.pause(length=1)
    _say(gather, PROMPT.get(language, PROMPT["en"]), language)
    response.hangup()
    return str(response)


def thanks_twiml(language: str) -> str:
    """TwiML after a confirmation: "thank you", then hang up."""
    response = VoiceResponse()
    _say(response, THANKS.get(language, THANKS["en"]), language)
    response.hangup()
    return str(response)


def say_twiml(text: str, language: str) -> str:
    """TwiML that says ``text`` in ``language`` (e.g. an answer read back), then hangs up."""
    response = VoiceResponse()
    _say(response, text, language)
    response.hangup()
    return str(response)


def hangup_twiml() -> str:
    """TwiML that ends the call."""
    response = VoiceResponse()
    response.hangup()
    return str(response)


def compute_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature`` of a POST to ``url`` with form ``params``: base64 of
    HMAC-SHA1(auth_token, url + name1 + value1 + name2 + value2…), names sorted."""
    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def signature_valid(auth_token: str, url: str, params: Mapping[str, str],
                    signature: str) -> bool:
    """Whether ``signature`` is the provider's for this request (constant-time compare).
    An empty token or signature is never valid."""
    if not auth_token or not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


class CallPermits(Protocol):
    """When a call may start, held across all workers (``dispatch.calls.DbCallPermits``)."""

    async def acquire(self, message: OutgoingMessage,
                      cancelled: Callable[[], bool] = lambda: False) -> int | None:
        """Wait until one more call may start (starts per minute, trunk); return the new
        call's id, which names it in Tocsin's URLs, or None once ``cancelled()`` is true
        (the sender is closing)."""

    async def started(self, call_id: int, sid: str, at: float | None = None) -> None:
        """The provider accepted the call as ``sid``; its answer arrived at ``at`` (UTC
        epoch seconds): it had received the start by then."""

    async def not_started(self, call_id: int, error: str,
                          counted_from: float | None = None) -> None:
        """The provider refused or did not answer, or the request never left: the call
        is over before it began. ``counted_from`` (UTC epoch seconds): the instant by
        which the provider had received the request if it ever did
        (``dispatch.call_rules.settle_time``)."""


def _provider_error(response: httpx.Response) -> str:
    """``provider <HTTP status> <code>: <message>`` from a Twilio-style error body."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = body.get("code", "") if isinstance(body, dict) else ""
    message = body.get("message", "") if isinstance(body, dict) else ""
    text = f"provider {response.status_code}"
    if code:
        text += f" {code}"
    if message:
        text += f": {message}"
    return text[:300]


class VoiceSender:
    """Starts one call per delivery through a Twilio-compatible Calls API.

    A call is ``sent`` once the provider accepted it (``message_ids``: its call SID);
    its outcome comes later in status callbacks (``dispatch.calls``). A 4xx answer is
    ``failed`` with the provider's code; 429, 5xx, timeouts and connection errors are
    ``retry``.
    """

    channel = "voice"

    def __init__(self, account: VoiceAccount, permits: CallPermits, name: str = "voice",
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.account = account
        self.permits = permits
        self.name = name
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        """Open the HTTP client (the provider is reached per request)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                auth=(self.account.account_sid, self.account.auth_token),
                timeout=self.account.timeout, transport=self._transport)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def call_form(self, message: OutgoingMessage, call_id: int) -> list[tuple[str, str]]:
        """The form fields of one call start (``StatusCallbackEvent`` repeated per event)."""
        urls = call_urls(self.account.callback_base, call_id)
        form = [("To", message.address), ("From", message.source),
                ("Url", urls["twiml"]), ("Method", "POST"),
                ("StatusCallback", urls["status"]), ("StatusCallbackMethod", "POST"),
                *(("StatusCallbackEvent", e) for e in CALLBACK_EVENTS),
                ("Timeout", str(self.account.ring_timeout))]
        if self.account.machine_detection:
            form.append(("MachineDetection", self.account.machine_detection))
        return form

    async def send(self, messages: Sequence[OutgoingMessage]) -> list[SendOutcome]:
        """Start one call per message, each once ``permits`` lets it (in order)."""
        if self._client is None:
            raise ConnectionError("voice sender not started")
        tasks, outcomes = [], []
        for message in messages:
            call_id = None
            if self._client is not None:
                call_id = await self.permits.acquire(message, lambda: self._client is None)
            if call_id is None:  # closing: the rest goes back to the queue
                outcomes.append(SendOutcome(message.delivery_id, "retry",
                                            error="voice sender closed"))
                continue
            tasks.append(asyncio.create_task(self._place(message, call_id)))
        return outcomes + list(await asyncio.gather(*tasks))

    async def _place(self, message: OutgoingMessage, call_id: int) -> SendOutcome:
        if self._client is None:
            await self.permits.not_started(call_id, "voice sender closed",
                                           settle_time("unsent", time.time(), 0.0))
            return SendOutcome(message.delivery_id, "retry", error="voice sender closed")
        try:
            response = await self._client.post(self.account.calls_url,
                                               data=_form_dict(self.call_form(message, call_id)))
        except httpx.HTTPError as exc:
            # Not connected: the request never left. Otherwise the provider may have it
            # and still be working through it (``call_rules.settle_time``).
            unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout,
                                      httpx.PoolTimeout))
            error = f"provider unreachable: {type(exc).__name__} {exc}"[:300]
            await self.permits.not_started(
                call_id, error, settle_time("unsent" if unsent else "unknown", time.time(),
                                            self.account.timeout))
            return SendOutcome(message.delivery_id, "retry", error=error)
        answered = settle_time("answered", time.time(), self.account.timeout)
        if response.status_code in (200, 201):
            try:
                sid = str(response.json()["sid"])
            except (ValueError, KeyError, TypeError):
                error = "provider answered without a call sid"
                await self.permits.not_started(call_id, error, answered)
                return SendOutcome(message.delivery_id, "retry", error=error)
            await self.permits.started(call_id, sid, answered)
            return SendOutcome(message.delivery_id, "sent", (sid,))
        error = _provider_error(response)
        await self.permits.not_started(call_id, error, answered)
        if response.status_code == 429 or response.status_code >= 500:
            return SendOutcome(message.delivery_id, "retry", error=error)
        return SendOutcome(message.delivery_id, "failed", error=error)

    async def hangup(self, sid: str) -> bool:
        """End a call still ringing or in progress (``Status=completed``); True when the
        provider took the request."""
        if self._client is None:
            await self.start()
        assert self._client is not None
        try:
            response = await self._client.post(self.account.call_url(sid),
                                               data={"Status": "completed"})
        except httpx.HTTPError as exc:
            log.warning("hanging up %s failed: %s", sid, exc)
            return False
        return response.status_code in (200, 201, 202, 204)


def _form_dict(form: list[tuple[str, str]]) -> Any:
    # httpx encodes a list value as the field repeated (StatusCallbackEvent=a&…=b).
    out: dict[str, Any] = {}
    for name, value in form:
        if name in out:
            existing = out[name]
            out[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            out[name] = value
    return out


# ----------------------------------------------------------------------------- one-time codes

#: What a code call says before the code, per language (issue 10 point 2: codes by voice
#: for landlines). Only this sentence and the code: no name, no address, no other data.
CODE_INTRO = {
    "fr": "Bonjour. Voici votre code Tocsin.",
    "nl": "Hallo. Dit is uw Tocsin-code.",
    "de": "Guten Tag. Hier ist Ihr Tocsin-Code.",
    "en": "Hello. Here is your Tocsin code.",
}
#: After the code (said twice): how to hear it again.
CODE_PROMPT = {
    "fr": "Appuyez sur 1 pour l'entendre à nouveau.",
    "nl": "Druk op 1 om hem opnieuw te horen.",
    "de": "Drücken Sie die 1, um ihn noch einmal zu hören.",
    "en": "Press 1 to hear it again.",
}
#: The key of a code call that says the code again.
KEY_CODE_AGAIN = "1"
#: Seconds of silence between the two readings of a code.
CODE_PAUSE_S = 2


def spaced_digits(code: str) -> str:
    """``"047123"`` -> ``"0, 4, 7, 1, 2, 3."``: one digit at a time, a short pause
    (the comma) between them, so that text-to-speech never reads a number."""
    return ", ".join(code) + "."


def code_call_urls(callback_base: str, code_id: int, language: str) -> dict[str, str]:
    """Tocsin's URLs for one code call (``portal_code.id``): ``twiml`` and ``gather``. They
    name the code's row and the language, never the code."""
    base = f"{callback_base.rstrip('/')}/voice/codes/{code_id}"
    return {"twiml": f"{base}/twiml?lang={language}", "gather": f"{base}/gather?lang={language}"}


def code_twiml(code: str, language: str, gather_url: str) -> str:
    """The TwiML of a code call: a short sentence, the code digit by digit, a pause, the
    code again, then "press 1 to hear it again" (``<Gather numDigits="1">`` posting to
    ``gather_url``), in ``language`` (``SAY_LANGUAGE``)."""
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url, method="POST",
                             timeout=GATHER_TIMEOUT_S)
    _say(gather, CODE_INTRO.get(language, CODE_INTRO["en"]), language)
    for i in range(2):
        _say(gather, spaced_digits(code), language)
        if i == 0:
            gather.pause(length=CODE_PAUSE_S)
    _say(gather, CODE_PROMPT.get(language, CODE_PROMPT["en"]), language)
    response.hangup()
    return str(response)


def place_code_call(account: VoiceAccount, to: str, caller: str, code_id: int,
                    language: str, transport: httpx.BaseTransport | None = None) -> str | None:
    """Start one code call (blocking): ``To`` the E.164 ``to``, ``From`` ``caller``, its
    TwiML at :func:`code_call_urls` (no status callback, no answering-machine detection:
    the citizen is waiting by the phone). Returns the provider's call SID, or None when
    the provider refused or could not be reached (logged without the code, which is
    never in the request)."""
    urls = code_call_urls(account.callback_base, code_id, language)
    form = {"To": to, "From": caller, "Url": urls["twiml"], "Method": "POST",
            "Timeout": str(account.ring_timeout)}
    try:
        with httpx.Client(auth=(account.account_sid, account.auth_token),
                          timeout=account.timeout, transport=transport) as client:
            response = client.post(account.calls_url, data=form)
    except httpx.HTTPError as exc:
        log.warning("code call to %s… not placed: provider unreachable (%s)", to[:5],
                    type(exc).__name__)
        return None
    if response.status_code not in (200, 201):
        log.warning("code call to %s… not placed: %s", to[:5], _provider_error(response))
        return None
    try:
        return str(response.json()["sid"])
    except (ValueError, KeyError, TypeError):
        log.warning("code call to %s…: the provider answered without a call sid", to[:5])
        return None
