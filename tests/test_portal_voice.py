"""Codes by voice (issue 10 point 2): a landline's code, and a mobile's "call me
instead", said in a call placed through the voice gateway simulator over real HTTP, its
TwiML served by Tocsin's signed callback routes; the cost guard counts voice codes
(the budget at their cost); a forged signature is refused; the code is never in a URL
or a log line."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy.engine import Engine

from tocsin.channels.voice import code_twiml, compute_signature, spaced_digits
from tocsin.core.errors import InputError
from tocsin.core.settings import Settings
from tocsin.dispatch.transactional import ChannelCodeSender, MemoryOutbox
from tocsin.subscribers import challenge
from tocsin.subscribers.pumping import Limits, voice_code_weight
from tocsin.subscribers.verification import (
    PortalConfig,
    confirm_code,
    masked,
    request_call,
    request_code,
    spoken_code,
)
from tocsin.web.app import create_app

SECRET = "test-secret"
CONFIG = PortalConfig(difficulty=4, limits=Limits(backoff_first_s=0))
T0 = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
LANDLINE, LANDLINE_E164 = "02 555 12 34", "+3225551234"


def _ask(engine: Any, outbox: Any, contact: str, token: str | None = None,
         now: dt.datetime = T0, config: PortalConfig = CONFIG, ip: str = "192.0.2.1",
         lang: str = "fr") -> Any:
    c = challenge.issue(SECRET, now)
    return request_code(engine, outbox, SECRET, token, contact, ip, lang, c,
                        challenge.solve(c, config.difficulty), config, "http://portal", now)


def _call_me(engine: Any, outbox: Any, token: str, now: dt.datetime,
             config: PortalConfig = CONFIG) -> Any:
    c = challenge.issue(SECRET, now)
    return request_call(engine, outbox, SECRET, token, "192.0.2.1", "nl", c,
                        challenge.solve(c, config.difficulty), config, now)


# ----------------------------------------------------------------------------- pure parts


def test_twiml_says_the_code_digit_by_digit_twice_then_offers_it_again() -> None:
    doc = etree.fromstring(code_twiml("047123", "de", "https://t/g?lang=de&round=2").encode())
    gather = doc.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("action") == "https://t/g?lang=de&round=2"
    says = [s.text for s in gather.findall("Say")]
    assert says.count("0, 4, 7, 1, 2, 3.") == 2 and "047123" not in "".join(says)
    assert {s.get("language") for s in gather.findall("Say")} == {"de-DE"}
    assert gather.find("Pause") is not None and "1" in says[-1]
    assert doc[-1].tag == "Hangup"
    assert spaced_digits("000001") == "0, 0, 0, 0, 0, 1."


def test_a_code_call_weighs_its_cost_in_the_budget_and_landlines_are_masked() -> None:
    assert voice_code_weight(Decimal("0.055"), Decimal("0.055")) == 2  # 2 minutes at most
    assert voice_code_weight(Decimal("0.12"), Decimal("0.05")) == 5
    assert voice_code_weight(Decimal("0.01"), Decimal("0.05")) == 1
    assert PortalConfig.for_prices("0.12", "0.05").limits.voice_weight == 5
    assert masked("landline", "+3225551245") == "02 xxx xx 45"
    assert masked("landline", "+3250123456") == "050 xx xx 56"
    assert masked("mobile", "+32470123456") == "+32 … 56"


# ----------------------------------------------------------------------------- services


def test_landline_code_is_called_verifies_once_and_counts_tries(any_engine: Any) -> None:
    engine, outbox = any_engine, MemoryOutbox()
    asked = _ask(engine, outbox, LANDLINE)
    assert (asked.channel, asked.kind, asked.masked) == ("voice", "landline", "02 xxx xx 34")
    assert outbox.messages == [] and [(c.address, c.language) for c in outbox.calls] == [
        (LANDLINE_E164, "fr")]
    code = spoken_code(engine, SECRET, outbox.calls[0].code_id, CONFIG, T0)
    assert code is not None and re.fullmatch(r"\d{6}", code)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(InputError) as exc:
        confirm_code(engine, SECRET, asked.token, wrong, "x", CONFIG, T0)
    assert (exc.value.code, exc.value.params["left"]) == ("code_wrong", 4)
    done = confirm_code(engine, SECRET, asked.token, code, "x", CONFIG, T0)
    assert done.state == "new"
    # used: nothing more to say, and it works once
    assert spoken_code(engine, SECRET, outbox.calls[0].code_id, CONFIG, T0) is None
    with pytest.raises(InputError):
        confirm_code(engine, SECRET, done.token, code, "x", CONFIG, T0)


def test_voice_codes_expire_and_lock_like_the_others(engine: Engine) -> None:
    outbox = MemoryOutbox()
    asked = _ask(engine, outbox, LANDLINE)
    code_id = outbox.calls[-1].code_id
    assert spoken_code(engine, SECRET, code_id, CONFIG, T0 + dt.timedelta(minutes=10)) is None
    code = spoken_code(engine, SECRET, code_id, CONFIG, T0)
    assert code is not None
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        with pytest.raises(InputError):
            confirm_code(engine, SECRET, asked.token, wrong, "x", CONFIG, T0)
    assert spoken_code(engine, SECRET, code_id, CONFIG, T0) is None  # locked: not said


def test_the_cost_guard_counts_voice_codes(engine: Engine) -> None:
    outbox = MemoryOutbox()
    for minute in range(3):  # per number: 3 per 10 minutes, calls as SMS
        _ask(engine, outbox, LANDLINE, now=T0 + dt.timedelta(minutes=minute))
    with pytest.raises(InputError) as exc:
        _ask(engine, outbox, LANDLINE, now=T0 + dt.timedelta(minutes=4))
    assert exc.value.code == "rate_number_10min" and len(outbox.calls) == 3
    # the same prefix (the number without its last 4 digits) counts calls too
    tight = PortalConfig(difficulty=4, limits=Limits(backoff_first_s=0, per_prefix_hour=4))
    _ask(engine, outbox, "02 555 99 99", now=T0 + dt.timedelta(minutes=5), config=tight)
    with pytest.raises(InputError) as exc:
        _ask(engine, outbox, "02 555 88 88", now=T0 + dt.timedelta(minutes=6), config=tight)
    assert exc.value.code == "rate_prefix"
    # premium-rate and shared-cost numbers: refused as before, nothing called
    for number in ("0900 12 345", "078 15 17 89"):
        with pytest.raises(InputError) as exc:
            _ask(engine, outbox, number)
        assert exc.value.code == "special_number"
    assert len(outbox.calls) == 4


def test_a_call_counts_at_its_cost_in_the_daily_budget(engine: Engine) -> None:
    outbox = MemoryOutbox()
    budget = PortalConfig(difficulty=4, limits=Limits(backoff_first_s=0, global_day=4,
                                                      voice_weight=3))
    _ask(engine, outbox, LANDLINE, config=budget, ip="192.0.2.7")  # 3 of 4
    with pytest.raises(InputError) as exc:  # 3 + 3 > 4
        _ask(engine, outbox, "02 666 12 34", config=budget, ip="192.0.2.8")
    assert exc.value.code == "rate_budget"
    _ask(engine, outbox, "a@example.org", config=budget, ip="192.0.2.9")  # an e-mail: 1
    with pytest.raises(InputError) as exc:
        _ask(engine, outbox, "b@example.org", config=budget, ip="192.0.2.10")
    assert exc.value.code == "rate_budget"


def test_call_me_instead_replaces_the_sms_code(engine: Engine) -> None:
    outbox = MemoryOutbox()
    asked = _ask(engine, outbox, "0470 12 34 56")
    sms_code = re.search(r"\b(\d{6})\b", outbox.messages[-1].text).group(1)  # type: ignore[union-attr]
    # the number's back-off holds: a call one minute after the SMS at the earliest
    with pytest.raises(InputError) as exc:
        _call_me(engine, outbox, asked.token, T0 + dt.timedelta(seconds=10),
                 config=PortalConfig(difficulty=4))
    assert exc.value.code == "rate_backoff" and outbox.calls == []
    called = _call_me(engine, outbox, asked.token, T0 + dt.timedelta(minutes=1))
    assert (called.channel, called.kind) == ("voice", "mobile")
    assert [(c.address, c.language) for c in outbox.calls] == [("+32470123456", "nl")]
    at = T0 + dt.timedelta(minutes=2)
    with pytest.raises(InputError) as exc:
        confirm_code(engine, SECRET, asked.token, sms_code, "x", CONFIG, at)
    assert exc.value.code in ("code_wrong", "code_expired")
    code = spoken_code(engine, SECRET, outbox.calls[0].code_id, CONFIG, at)
    assert confirm_code(engine, SECRET, asked.token, code or "", "x", CONFIG, at).state == "new"
    with pytest.raises(InputError) as exc:  # nothing left to call about
        _call_me(engine, outbox, asked.token, T0 + dt.timedelta(minutes=3))
    assert exc.value.code == "code_none"


# ----------------------------------------------------------------------------- over HTTP


class _Telephony:
    """The voice gateway simulator and Tocsin's callback listener on their own event loop
    (as in the demo's worker thread)."""

    def __init__(self, engine: Engine, settings: Settings, script: dict[str, list[str]]):
        from tocsin.channels.simulators.voice_gateway import VoiceGatewaySimulator
        from tocsin.dispatch.voice_wiring import CallbackListener

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.listener = CallbackListener(engine, settings, "sim-token")
        self.gateway = VoiceGatewaySimulator(auth_token="sim-token", time_scale=0.01,
                                             script=script, seed=1)
        self._run(self.listener.start())
        self._run(self.gateway.start())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def stop(self) -> None:
        self._run(self.gateway.stop())
        self._run(self.listener.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def ended_call_to(self, number: str) -> Any:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            calls = [c for c in self.gateway.calls.values() if c.to == number and c.ended]
            if calls:
                return calls[-1]
            time.sleep(0.05)
        raise AssertionError(f"no call to {number} ended")


class _Sender:
    """SMS and e-mail into memory (read by the test); calls through the real channel."""

    def __init__(self, settings: Settings, telephony: _Telephony) -> None:
        self.outbox = MemoryOutbox()
        self.caller = ChannelCodeSender(settings, lambda: SimpleNamespace(
            voice=telephony.gateway, voice_listener=telephony.listener))

    def send(self, *args: Any) -> bool:
        return self.outbox.send(*args)

    def call(self, address: str, code_id: int, language: str) -> bool:
        return self.caller.call(address, code_id, language)


@pytest.fixture
def web(engine: Engine, tmp_path: Path) -> Iterator[tuple[TestClient, _Telephony]]:
    settings = Settings(var_dir=tmp_path / "var", public_base_url="http://testserver")
    telephony = _Telephony(engine, settings, {LANDLINE_E164: ["answered:1"],
                                              "+32470123456": ["answered"]})
    app = create_app(engine, start_worker=False, settings=settings)
    app.state.code_sender = _Sender(settings, telephony)
    app.state.portal_config = PortalConfig(difficulty=4, limits=Limits(backoff_first_s=0))
    try:
        with TestClient(app) as c:
            yield c, telephony
    finally:
        telephony.stop()


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, name
    return m.group(1)


def _post_form(c: TestClient, page: str, path: str, **data: str) -> Any:
    html = c.get(page).text
    token = _hidden(html, "challenge")
    return c.post(path, data={"csrf_token": _hidden(html, "csrf_token"), "challenge": token,
                              "solution": challenge.solve(token, 4), **data},
                  follow_redirects=False)


def _verify(c: TestClient, code: str) -> Any:
    html = c.get("/register/verify").text
    return c.post("/register/verify", data={"csrf_token": _hidden(html, "csrf_token"),
                                            "code": code}, follow_redirects=False)


def _spoken(call: Any) -> list[str]:
    """The codes said in a call (``4, 7, 1, 0, 0, 3.`` -> ``471003``), in order."""
    return [text.replace(", ", "").rstrip(".") for _, text in call.said
            if re.fullmatch(r"(\d, ){5}\d\.", text or "")]


def test_a_landline_registers_with_a_code_said_in_a_call(web: Any, caplog: Any) -> None:
    c, telephony = web
    caplog.set_level(logging.DEBUG)
    r = _post_form(c, "/register?lang=nl", "/register?lang=nl", contact=LANDLINE)
    assert r.status_code == 303 and r.headers["location"].startswith("/register/verify")
    page = c.get("/register/verify?lang=nl").text
    assert "02 xxx xx 34" in page and "/register/call" not in page
    for lang, says in (("fr", "Nous appelons le 02 xxx xx 34"), ("nl", "We bellen 02 xxx xx 34"),
                       ("de", "Wir rufen 02 xxx xx 34 an"), ("en", "We are calling 02 xxx xx 34")):
        assert says in c.get(f"/register/verify?lang={lang}").text, lang
    call = telephony.ended_call_to(LANDLINE_E164)
    # said in Dutch: the sentence, the code twice, the prompt; "1" pressed: once more
    assert {lang for lang, _ in call.said} == {"nl-BE"}
    assert call.said[0][1] == "Hallo. Dit is uw Tocsin-code."
    codes = _spoken(call)
    assert len(codes) == 4 and len(set(codes)) == 1 and len(call.twiml) == 2
    code = codes[0]
    assert all(doc.count(spaced_digits(code)) == 2 for doc in call.twiml)
    assert call.digits == "1" and not call.status_callback
    # the code is in no URL: not the call's, not the key press's, not the pages'
    assert code not in call.url and "/voice/codes/" in call.url and "lang=nl" in call.url
    assert all(code not in doc.split("action=")[1].split('"')[1] for doc in call.twiml)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    r = _verify(c, wrong)
    assert r.status_code == 422 and "4" in r.text
    r = _verify(c, code)
    assert r.status_code == 303 and r.headers["location"].startswith("/register/profile")
    assert re.search(r'value="voice"[^>]*checked', c.get("/register/profile").text)
    lines = [rec.getMessage() for rec in caplog.records]
    assert lines and not [line for line in lines if code in line]


def test_call_me_instead_for_a_mobile(web: Any, caplog: Any) -> None:
    c, telephony = web
    caplog.set_level(logging.DEBUG)
    r = _post_form(c, "/register?lang=de", "/register?lang=de", contact="0470 12 34 56")
    assert r.status_code == 303
    page = c.get("/register/verify?lang=de").text
    assert "/register/call" in page and 'id="call"' in page
    sms = c.app.state.code_sender.outbox.last_to("+32470123456")  # type: ignore[attr-defined]
    assert sms is not None and sms.channel == "sms"
    r = _post_form(c, "/register/verify?lang=de", "/register/call?lang=de")
    assert r.status_code == 303 and r.headers["location"].startswith("/register/verify")
    page = c.get("/register/verify?lang=de").text
    assert "+32 … 56" in page and "/register/call" not in page  # now: "we are calling"
    call = telephony.ended_call_to("+32470123456")
    assert {lang for lang, _ in call.said} == {"de-DE"}
    codes = _spoken(call)
    assert len(codes) == 2 and codes[0] == codes[1]
    sms_code = re.search(r"\b(\d{6})\b", sms.text).group(1)  # type: ignore[union-attr]
    if sms_code != codes[0]:
        assert _verify(c, sms_code).status_code == 422  # the SMS code was replaced
    r = _verify(c, codes[0])
    assert r.status_code == 303 and r.headers["location"].startswith("/register/profile")
    assert not [rec for rec in caplog.records if codes[0] in rec.getMessage()]


def test_forged_or_replayed_code_callbacks_are_refused(web: Any, engine: Engine) -> None:
    c, telephony = web
    r = _post_form(c, "/register", "/register", contact=LANDLINE)
    assert r.status_code == 303
    call = telephony.ended_call_to(LANDLINE_E164)
    code = _spoken(call)[0]
    url = call.url.replace("lang=fr", "lang=en")  # a URL the provider was not given
    params = {"CallSid": "CAforged", "CallStatus": "in-progress"}
    with httpx.Client() as http:
        forged = http.post(url, data=params, headers={
            "X-Twilio-Signature": compute_signature("not-the-token", url, params)})
        unsigned = http.post(call.url, data=params)
        good_sig = compute_signature("sim-token", call.url, params)
        fresh = http.post(call.url, data=params, headers={"X-Twilio-Signature": good_sig})
        replay = http.post(call.url, data=params, headers={"X-Twilio-Signature": good_sig})
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert code not in forged.text + unsigned.text
    assert fresh.status_code == 200 and spaced_digits(code) in fresh.text
    assert replay.status_code == 409 and code not in replay.text
    # the web app itself: no live voice token configured, so nothing is ever signed right
    path = call.url.split(telephony.listener.base_url, 1)[1]
    r = c.post(path, data=params, headers={"X-Twilio-Signature": good_sig})
    assert r.status_code == 403 and code not in r.text
    import sqlalchemy as sa

    from tocsin.authorities.models import AuditEntry

    with engine.connect() as conn:
        rejected = conn.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                               .where(AuditEntry.action == "voice.callback_rejected"))
    assert rejected == 4


def test_the_demo_console_shows_what_the_simulated_phone_hears(web: Any, caplog: Any,
                                                               capsys: Any) -> None:
    """Issue 10 trial: a landline registration could not be finished in ``make demo``;
    the voice gateway simulator's handset prints what it hears (as the SMS simulator's
    codes appear), while Tocsin's own logs still never carry the code."""
    c, telephony = web
    caplog.set_level(logging.DEBUG)
    r = _post_form(c, "/register?lang=fr", "/register?lang=fr", contact=LANDLINE)
    assert r.status_code == 303
    code = _spoken(telephony.ended_call_to(LANDLINE_E164))[0]
    out = capsys.readouterr().out
    assert f"[simulated phone {LANDLINE_E164}] hears:" in out
    assert spaced_digits(code) in out
    assert not [rec for rec in caplog.records if code in rec.getMessage()]
