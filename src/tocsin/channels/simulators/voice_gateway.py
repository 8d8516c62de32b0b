"""A voice gateway simulator: a real HTTP server speaking the Twilio-compatible Calls API.

It does what a voice provider does, over real HTTP, so that Tocsin's voice channel
is exercised end to end without a telephone network:

* ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (HTTP basic auth: account SID
  and auth token) starts a call and answers ``201`` with the call resource (JSON);
  ``POST …/Calls/{CallSid}.json`` with ``Status=completed`` or ``canceled`` hangs up;
* each call rings, then ends ``busy``, ``no-answer``, ``failed``, or is answered by a
  person or an answering machine, with realistic shares (``DEFAULT_SHARES``);
* an answered call fetches its TwiML from Tocsin (``Url``, POST, signed), "plays" it
  for as long as the text takes to speak (``messages.voice.estimate_voice``),
  presses keys in ``<Gather>`` (1 to confirm, 9 to repeat) and follows the action's
  TwiML;
* status callbacks (``StatusCallback``, for each ``StatusCallbackEvent``) are posted
  signed with ``X-Twilio-Signature`` (HMAC-SHA1 of URL + sorted form fields, keyed
  with the auth token), with ``CallDuration`` and ``AnsweredBy`` at the end.

Time runs ``time_scale`` real seconds per simulated second (rings, speech), while
the durations reported stay the simulated ones (what a real call would last).
Faults on demand (``faults``): ``http_5xx`` (share of call starts answered 503),
``slow_s`` (seconds before answering a start), ``duplicate`` (share of calls whose
final callback is sent twice), ``out_of_order`` (share whose ``ringing`` callback
comes after the final one). ``script`` fixes the outcome of each attempt at a
number for tests: ``{"+3223456789": ["busy", "answered:1"]}`` (``answered``,
``answered:1``, ``answered:9,1``, ``voicemail``, ``busy``, ``no-answer``,
``failed``). Every start's monotonic time and the most simultaneous calls are
kept for rate checks (``starts``, ``max_active``).

The simulated handset of a call marked with :meth:`VoiceGatewaySimulator.announce` (the
portal's code calls, in ``make demo``) prints what it hears on standard output, the
demo's console, as the SMS and e-mail simulators' codes appear there: without it, a
landline registration could not be finished in the demo. It prints, never logs: Tocsin's
logs never carry a code said by voice (docs/decisions/0024-voice-codes.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import secrets
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tocsin.channels.voice import compute_signature
from tocsin.messages.voice import estimate_voice

log = logging.getLogger(__name__)

#: Outcome shares of a call attempt to a registered number (a working day, mixed
#: mobiles and landlines): most answer, some voicemail, some no answer.
DEFAULT_SHARES = {"answered": 0.62, "voicemail": 0.10, "busy": 0.06, "no-answer": 0.18,
                  "failed": 0.04}
#: Of the people who answer: share who press 1 at once, and who press 9 first.
ACK_SHARE, REPEAT_SHARE = 0.6, 0.08
#: Simulated seconds a Play of a recording lasts.
PLAY_SECONDS = 20.0

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _says(doc: str) -> list[str]:
    """The texts of the ``<Say>`` verbs of a TwiML document, in order."""
    try:
        root = etree.fromstring(doc.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError:
        return []
    return [v.text or "" for v in root.iter() if v.tag == "Say"]


@dataclass
class SimCall:
    """One call as the simulator saw it."""

    sid: str
    to: str
    from_: str
    url: str
    status_callback: str
    events: list[str]
    timeout: int
    outcome: str
    started: float
    status: str = "queued"
    hangup: bool = False
    digits: str = ""
    said: list[tuple[str, str]] = field(default_factory=list)  # (language, text)
    twiml: list[str] = field(default_factory=list)  # each TwiML document played, as received
    callbacks: list[dict[str, str]] = field(default_factory=list)
    callback_codes: list[int] = field(default_factory=list)
    duration: int = 0
    scripted: bool = False
    ended: bool = False


class VoiceGatewaySimulator:
    """The simulator; ``await start()``, then ``base_url``; ``await stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 account_sid: str = "ACsimulator0000000000000000000000",
                 auth_token: str = "simulator-auth-token", time_scale: float = 0.02,
                 shares: dict[str, float] | None = None, seed: int | None = None,
                 script: dict[str, list[str]] | None = None,
                 faults: dict[str, float] | None = None) -> None:
        self.host, self.port = host, port
        self.account_sid, self.auth_token = account_sid, auth_token
        self.time_scale = time_scale
        self.shares = dict(shares or DEFAULT_SHARES)
        self.rng = random.Random(seed)
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.faults: dict[str, float] = {"http_5xx": 0.0, "slow_s": 0.0, "duplicate": 0.0,
                                         "out_of_order": 0.0, **(faults or {})}
        self.calls: dict[str, SimCall] = {}
        self.starts: list[float] = []
        self.active = 0
        self.max_active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: Any = None
        self._serve_task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._announced: set[str] = set()
        self._announce_lock = threading.Lock()

    def announce(self, sid: str) -> None:
        """Print what call ``sid`` hears on the console (the simulated handset; see the
        module's docstring), also what it heard before this call. Thread-safe."""
        with self._announce_lock:
            self._announced.add(sid)
            call = self.calls.get(sid)
            for doc in call.twiml if call is not None else []:
                self._print_heard(call, doc)  # type: ignore[arg-type]

    def _print_heard(self, call: SimCall, doc: str) -> None:
        said = " ".join(t.strip() for t in _says(doc) if t.strip())
        if said:
            print(f"[simulated phone {call.to}] hears: {said}", file=sys.stdout, flush=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ server

    async def start(self) -> None:
        import uvicorn

        app = Starlette(routes=[
            Route("/2010-04-01/Accounts/{account}/Calls.json", self._create, methods=["POST"]),
            Route("/2010-04-01/Accounts/{account}/Calls/{sid}.json", self._update,
                  methods=["POST"]),
        ])
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = uvicorn.Server(config)
        self._client = httpx.AsyncClient(timeout=10.0)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        for _ in range(200):
            if self._server.started:
                break
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.should_exit = True
        if self._serve_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._serve_task, timeout=5)
        if self._client is not None:
            await self._client.aclose()

    def _authorised(self, request: Request, account: str) -> bool:
        header = request.headers.get("authorization", "")
        if account != self.account_sid or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(
            password, self.auth_token)

    async def _create(self, request: Request) -> Response:
        account = request.path_params["account"]
        if not self._authorised(request, account):
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401},
                                status_code=401)
        if self.faults["slow_s"]:
            await asyncio.sleep(self.faults["slow_s"])
        if self.rng.random() < self.faults["http_5xx"]:
            return JSONResponse({"code": 20500, "message": "Internal Server Error",
                                 "status": 503}, status_code=503)
        form = await request.form()
        to, from_, url = str(form.get("To", "")), str(form.get("From", "")), str(form.get("Url",
                                                                                         ""))
        if not to.startswith("+") or not to[1:].isdigit() or len(to) < 8:
            return JSONResponse({"code": 21211, "message": f"Invalid 'To' Phone Number: {to}",
                                 "status": 400}, status_code=400)
        if not url:
            return JSONResponse({"code": 21205, "message": "Url parameter is required",
                                 "status": 400}, status_code=400)
        self.starts.append(time.monotonic())
        sid = "CA" + secrets.token_hex(16)
        scripted = bool(self.script.get(to))
        call = SimCall(sid, to, from_, url, str(form.get("StatusCallback", "")),
                       [str(e) for e in form.getlist("StatusCallbackEvent")] or ["completed"],
                       int(str(form.get("Timeout", "30")) or 30), self._outcome(to),
                       time.monotonic(), scripted=scripted)
        self.calls[sid] = call
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        task = asyncio.create_task(self._run(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return JSONResponse({"sid": sid, "account_sid": self.account_sid, "to": to,
                             "from": from_, "status": "queued",
                             "api_version": "2010-04-01",
                             "uri": f"/2010-04-01/Accounts/{account}/Calls/{sid}.json"},
                            status_code=201)

    async def _update(self, request: Request) -> Response:
        account, sid = request.path_params["account"], request.path_params["sid"]
        if not self._authorised(request, account):
            return JSONResponse({"code": 20003, "message": "Authenticate", "status": 401},
                                status_code=401)
        call = self.calls.get(sid)
        if call is None:
            return JSONResponse({"code": 20404, "message": "not found", "status": 404},
                                status_code=404)
        form = await request.form()
        if str(form.get("Status", "")) in ("completed", "canceled"):
            call.hangup = True
        return JSONResponse({"sid": sid, "status": call.status}, status_code=200)

    # ------------------------------------------------------------------ calls

    def _outcome(self, to: str) -> str:
        planned = self.script.get(to)
        if planned:
            return planned.pop(0)
        draw, total = self.rng.random(), 0.0
        for outcome, share in self.shares.items():
            total += share
            if draw < total:
                return outcome
        return "answered"

    async def _sleep(self, call: SimCall, seconds: float) -> float:
        """Sleep ``seconds`` simulated; stops early on hang-up. Returns seconds slept."""
        # Wake about every 0.2 real seconds to notice a hang-up, whatever the time scale.
        step, slept = max(0.5, 0.2 / self.time_scale), 0.0
        while slept < seconds and not call.hangup:
            part = min(step, seconds - slept)
            await asyncio.sleep(part * self.time_scale)
            slept += part
        return slept

    def _params(self, call: SimCall, status: str, **extra: str) -> dict[str, str]:
        return {"CallSid": call.sid, "AccountSid": self.account_sid, "From": call.from_,
                "To": call.to, "CallStatus": status, "Direction": "outbound-api",
                "ApiVersion": "2010-04-01", **extra}

    async def _post(self, url: str, params: dict[str, str]) -> httpx.Response | None:
        assert self._client is not None
        headers = {"X-Twilio-Signature": compute_signature(self.auth_token, url, params)}
        try:
            return await self._client.post(url, data=params, headers=headers)
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: stopping
            log.warning("voice simulator: %s unreachable: %s", url, exc)
            return None

    async def _callback(self, call: SimCall, event: str, status: str, **extra: str) -> None:
        if event not in call.events or not call.status_callback:
            return
        params = self._params(call, status, SequenceNumber=str(len(call.callbacks)),
                              Timestamp=time.strftime("%a, %d %b %Y %H:%M:%S +0000",
                                                      time.gmtime()),
                              CallbackSource="call-progress-events", **extra)
        call.callbacks.append(params)
        response = await self._post(call.status_callback, params)
        call.callback_codes.append(response.status_code if response is not None else 0)

    async def _run(self, call: SimCall) -> None:
        try:
            await self._run_call(call)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one call's problem must not stop the gateway
            log.exception("voice simulator: call %s failed", call.sid)
        finally:
            self._end(call)

    def _end(self, call: SimCall) -> None:
        """The call is over (before its final status is reported, as at a real provider)."""
        if not call.ended:
            call.ended = True
            self.active -= 1

    async def _run_call(self, call: SimCall) -> None:
        outcome, _, keys = call.outcome.partition(":")
        await self._callback(call, "initiated", "initiated")
        await self._sleep(call, 1.0)
        call.status = "ringing"
        ringing_late = self.rng.random() < self.faults["out_of_order"]
        if not ringing_late:
            await self._callback(call, "ringing", "ringing")
        final, extra = "completed", {}
        if outcome == "busy":
            await self._sleep(call, 2.0)
            final = "busy"
        elif outcome == "failed":
            final, extra = "failed", {"ErrorCode": "32009"}
        elif outcome == "no-answer":
            await self._sleep(call, float(call.timeout))
            final = "no-answer"
        else:
            await self._sleep(call, self.rng.uniform(4.0, 12.0) if outcome == "answered"
                              else min(20.0, float(call.timeout) - 1))
            if call.hangup:
                final = "canceled"
            else:
                answered_by = "human" if outcome == "answered" else "machine_end_beep"
                extra = {"AnsweredBy": answered_by}
                call.status = "in-progress"
                await self._callback(call, "answered", "in-progress", AnsweredBy=answered_by)
                # A scripted call presses exactly the keys given (none: none); the others
                # draw them (ACK_SHARE, REPEAT_SHARE).
                presses = [k for k in keys.split(",") if k] if call.scripted else None
                call.duration = int(await self._answer(call, answered_by, presses))
        if call.hangup and final not in ("completed", "canceled"):
            final = "canceled"
        call.status = final
        extra["CallDuration"] = str(call.duration if final == "completed" else 0)
        self._end(call)
        await self._callback(call, "completed", final, **extra)
        if self.rng.random() < self.faults["duplicate"]:
            call.callbacks.append(call.callbacks[-1])
            url = call.status_callback
            response = await self._post(url, call.callbacks[-1])
            call.callback_codes.append(response.status_code if response is not None else 0)
        if ringing_late:
            await self._callback(call, "ringing", "ringing")

    async def _answer(self, call: SimCall, answered_by: str,
                      presses: list[str] | None) -> float:
        """Fetch and play the TwiML; return the call's simulated duration in seconds."""
        params = self._params(call, "in-progress", AnsweredBy=answered_by)
        response = await self._post(call.url, params)
        elapsed = 1.0
        if response is None or response.status_code != 200:
            return elapsed
        twiml, rounds = response.content, 0
        while twiml and rounds < 8 and not call.hangup:
            rounds += 1
            seconds, gather = self._play(call, twiml)
            elapsed += await self._sleep(call, seconds)
            twiml = b""
            if gather is None or call.hangup or answered_by != "human":
                break
            key = self._key(presses)
            if not key:
                elapsed += await self._sleep(call, float(gather.get("timeout", "5")))
                break
            call.digits += key
            reply = await self._post(gather["action"], {**self._params(call, "in-progress"),
                                                       "Digits": key})
            if reply is not None and reply.status_code == 200:
                twiml = reply.content
        return elapsed

    def _key(self, presses: list[str] | None) -> str:
        if presses is not None:
            return presses.pop(0) if presses else ""
        draw = self.rng.random()
        if draw < ACK_SHARE:
            return "1"
        if draw < ACK_SHARE + REPEAT_SHARE:
            return "9"
        return ""

    def _play(self, call: SimCall, twiml: bytes) -> tuple[float, dict[str, str] | None]:
        """Simulated seconds to play ``twiml`` and its ``<Gather>`` attributes, if any."""
        with self._announce_lock:
            call.twiml.append(twiml.decode("utf-8", "replace"))
            if call.sid in self._announced:
                self._print_heard(call, call.twiml[-1])
        root = etree.fromstring(twiml, _PARSER)
        seconds, gather = 0.0, None
        for verb in root.iter():
            tag = verb.tag if isinstance(verb.tag, str) else ""
            if tag == "Say":
                language = (verb.get("language") or "en-GB")[:2]
                text = verb.text or ""
                call.said.append((verb.get("language") or "", text))
                try:
                    seconds += estimate_voice(text, language if language in (
                        "fr", "nl", "de", "en") else "en").seconds
                except ValueError:
                    seconds += len(text) / 15
            elif tag == "Pause":
                seconds += float(verb.get("length") or 1)
            elif tag == "Play":
                seconds += PLAY_SECONDS
            elif tag == "Gather":
                gather = {"action": verb.get("action") or "",
                          "timeout": verb.get("timeout") or "5"}
        return seconds, gather

    # ------------------------------------------------------------------ checks

    def most_starts_in(self, window_s: float = 60.0) -> int:
        """The most call starts received in any sliding window of ``window_s`` seconds."""
        starts, best, lo = sorted(self.starts), 0, 0
        for hi, t in enumerate(starts):
            while t - starts[lo] >= window_s:
                lo += 1
            best = max(best, hi - lo + 1)
        return best
