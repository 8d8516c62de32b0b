"""Voice calls (issue 12): the Twilio-compatible request shape, the signature check, TwiML,
and campaigns called end to end through the voice gateway simulator over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import httpx
import pytest
from lxml import etree
from shapely.geometry import Point, box, mapping

from tocsin.authorities.audit import verify_chain
from tocsin.campaigns.services import CampaignRequest, campaign_report, launch_campaign
from tocsin.channels.base import OutgoingMessage
from tocsin.channels.voice import (
    VoiceAccount,
    VoiceSender,
    call_twiml,
    compute_signature,
    signature_valid,
)
from tocsin.core.settings import Settings
from tocsin.subscribers.importer import import_subscribers
from tocsin.subscribers.rules import InvalidValue, normalise_landline

# ----------------------------------------------------------------------------- signature

# Twilio's documented request-validation example ("Webhooks security"; the twilio
# helper libraries' RequestValidator tests): auth token 12345, this URL and these
# POST parameters give this X-Twilio-Signature.
VECTOR_TOKEN = "12345"
VECTOR_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
                 "From": "+14158675309", "To": "+18005551212"}
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_matches_twilios_documented_vector():
    assert compute_signature(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS) == VECTOR_SIGNATURE
    assert signature_valid(VECTOR_TOKEN, VECTOR_URL, VECTOR_PARAMS, VECTOR_SIGNATURE)
    # The documented algorithm by hand: HMAC-SHA1 of URL + sorted name/value pairs, base64.
    payload = VECTOR_URL + "".join(k + v for k, v in sorted(VECTOR_PARAMS.items()))
    by_hand = base64.b64encode(hmac.new(VECTOR_TOKEN.encode(), payload.encode(),
                                        hashlib.sha1).digest()).decode()
    assert by_hand == VECTOR_SIGNATURE


@pytest.mark.parametrize("change", [
    {"token": "54321"}, {"url": VECTOR_URL + "&x=1"}, {"param": ("Digits", "9999")},
    {"signature": ""}, {"signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8"},
])
def test_any_change_breaks_the_signature(change):
    params = dict(VECTOR_PARAMS)
    if "param" in change:
        params[change["param"][0]] = change["param"][1]
    assert not signature_valid(change.get("token", VECTOR_TOKEN), change.get("url", VECTOR_URL),
                               params, change.get("signature", VECTOR_SIGNATURE))


# ----------------------------------------------------------------------------- TwiML


def _xml(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def test_twiml_says_the_message_twice_in_its_language_then_asks_for_a_key():
    doc = _xml(call_twiml("Restez chez vous.", "fr", "https://t/g?round=1"))
    gather = doc.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert gather.get("action") == "https://t/g?round=1"
    says = gather.findall("Say")
    assert [s.text for s in says[:2]] == ["Restez chez vous."] * 2
    assert {s.get("language") for s in says} == {"fr-BE"}
    assert "1" in says[2].text and "9" in says[2].text
    assert doc[-1].tag == "Hangup"
    languages = {lang: _xml(call_twiml("x", lang, "u")).find("Gather/Say")
                 .get("language") for lang in ("fr", "nl", "de", "en")}
    assert languages == {"fr": "fr-BE", "nl": "nl-BE", "de": "de-DE", "en": "en-GB"}


def test_twiml_for_an_answering_machine_and_for_a_recording():
    machine = _xml(call_twiml("Blijf binnen.", "nl", "u", machine=True))
    assert [e.tag for e in machine] == ["Say", "Hangup"]
    assert machine.find("Say").get("language") == "nl-BE"
    played = _xml(call_twiml("x", "de", "u", audio_url="https://a/alert.mp3"))
    assert [p.text for p in played.findall("Gather/Play")] == ["https://a/alert.mp3"] * 2


def test_numbers_that_cannot_take_calls_are_refused():
    assert normalise_landline("02 555 12 34") == "+3225551234"
    assert normalise_landline("0475 12 34 56") == "+32475123456"
    for bad, reason in (("0900 12 345", "premium-rate"), ("02 55", "not a valid")):
        with pytest.raises(InvalidValue, match=reason):
            normalise_landline(bad)


# ----------------------------------------------------------------------------- request shape


class _Recorder(BaseHTTPRequestHandler):
    """A Twilio-compatible fake that records every request and answers like the API."""

    requests: list[dict[str, object]] = []
    answer = (201, {"sid": "CA0123456789abcdef0123456789abcdef", "status": "queued"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                                    "content_type": self.headers.get("Content-Type"),
                                    "form": parse_qs(body)})
        status, payload = type(self).answer
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class _Permits:
    """In-memory ``CallPermits``: call ids 41, 42…, and what became of each."""

    def __init__(self) -> None:
        self.accepted: dict[int, str] = {}
        self.failed: dict[int, str] = {}
        self.next = 40

    async def acquire(self, message: OutgoingMessage, cancelled=lambda: False) -> int:
        self.next += 1
        return self.next

    async def started(self, call_id: int, sid: str, at: float | None = None) -> None:
        self.accepted[call_id] = sid

    async def not_started(self, call_id: int, error: str,
                          counted_from: float | None = None) -> None:
        self.failed[call_id] = error


@pytest.fixture
def fake_provider():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_call_start_request_shape_against_a_twilio_compatible_fake(fake_provider):
    account = VoiceAccount(fake_provider, "AC11111111111111111111111111111111", "secret-token",
                           "https://alert.example.be", ring_timeout=25)
    permits = _Permits()
    sender = VoiceSender(account, permits)
    await sender.start()
    try:
        message = OutgoingMessage(7, "c1", "+3225551234", "fr", "Restez chez vous.",
                                  source="+3278151789")
        _Recorder.answer = (201, {"sid": "CA0123456789abcdef0123456789abcdef",
                                  "status": "queued"})
        [ok] = await sender.send([message])
        _Recorder.answer = (400, {"code": 21211, "message": "Invalid 'To' Phone Number",
                                  "status": 400})
        [refused] = await sender.send([message])
        _Recorder.answer = (503, {"code": 20500, "message": "Internal Server Error"})
        [later] = await sender.send([message])
        _Recorder.answer = (200, {"sid": "CA0123456789abcdef0123456789abcdef",
                                  "status": "completed"})
        assert await sender.hangup("CA0123456789abcdef0123456789abcdef")
    finally:
        await sender.close()

    assert (ok.result, ok.message_ids) == ("sent", ("CA0123456789abcdef0123456789abcdef",))
    assert refused.result == "failed" and "21211" in refused.error and "400" in refused.error
    assert later.result == "retry" and "503" in later.error
    first = _Recorder.requests[0]
    assert first["path"] == "/2010-04-01/Accounts/AC11111111111111111111111111111111/Calls.json"
    expected_auth = base64.b64encode(b"AC11111111111111111111111111111111:secret-token")
    assert first["auth"] == f"Basic {expected_auth.decode()}"
    assert str(first["content_type"]).startswith("application/x-www-form-urlencoded")
    assert first["form"] == {
        "To": ["+3225551234"], "From": ["+3278151789"],
        "Url": ["https://alert.example.be/voice/calls/41/twiml"], "Method": ["POST"],
        "StatusCallback": ["https://alert.example.be/voice/calls/41/status"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"], "MachineDetection": ["DetectMessageEnd"],
    }
    hangup = _Recorder.requests[-1]
    assert hangup["path"] == ("/2010-04-01/Accounts/AC11111111111111111111111111111111/Calls/"
                              "CA0123456789abcdef0123456789abcdef.json")
    assert hangup["form"] == {"Status": ["completed"]}
    assert permits.accepted == {41: "CA0123456789abcdef0123456789abcdef"}
    assert set(permits.failed) == {42, 43}


# ----------------------------------------------------------------------------- end to end

AREA = box(4.295, 50.7445, 4.311, 50.754)  # inside Beersel (23003): official language nl
IN = [Point(4.297 + i * 0.0005, 50.746 + (i % 5) * 0.001) for i in range(20)]
OUTSIDE = Point(4.23, 50.735)  # Halle
TEXTS = {"fr": "Alerte. Restez à l'intérieur.", "nl": "Alarm. Blijf binnen."}

# number -> (language the call must be in, outcome of each attempt at the simulator)
PLAN = {
    "+3225550001": ("fr", ["answered:1"]),              # answered, confirmed
    "+3225550002": ("nl", ["busy", "answered:9,1"]),    # busy, retried, repeat then confirm
    "+3225550003": ("nl", ["no-answer", "no-answer", "no-answer"]),  # gives up after 3
    "+3225550004": ("fr", ["voicemail"]),               # answering machine: once, delivered
    "+32470550005": ("nl", ["answered"]),               # a mobile chosen for voice, no key
    "+3225550006": ("nl", ["failed", "answered:1"]),    # de speaker: no de text -> nl
}


def _csv() -> str:
    lines = ["subscriber_id,language,mobile,email,lat,lon,landline,voice"]
    lines.append(f"V1,fr,,v1@example.org,{IN[0].y},{IN[0].x},+3225550001,")
    lines.append(f"V2,nl,+32470550002,,{IN[1].y},{IN[1].x},+3225550002,no")
    lines.append(f"V3,nl,,,{IN[2].y},{IN[2].x},+3225550003,")
    lines.append(f"V4,fr,,,{IN[3].y},{IN[3].x},+3225550004,")
    # The same landline again for another subscriber (a family): one call, not two.
    lines.append(f"V4b,nl,,,{IN[4].y},{IN[4].x},+3225550004,")
    lines.append(f"V5,nl,+32470550005,,{IN[5].y},{IN[5].x},,yes")
    lines.append(f"V6,de,,,{IN[6].y},{IN[6].x},+3225550006,")
    # Outside the area: never called.
    lines.append(f"V7,fr,,,{OUTSIDE.y},{OUTSIDE.x},+3225550007,")
    return "\n".join(lines) + "\n"


@pytest.mark.slow
async def test_campaign_calls_each_number_once_in_its_language_with_retries(any_engine):
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.voice_wiring import start_voice_simulator, voice_sender_factories
    from tocsin.dispatch.worker import Simulators, stop_simulators

    engine = any_engine
    report = await asyncio.to_thread(import_subscribers, engine, _csv().encode())
    assert report.errors == []
    settings = Settings(voice_retry_seconds=1, voice_simulator_time_scale=0.01,
                        voice_calls_per_minute=600, voice_trunk=4)
    campaign_id = await asyncio.to_thread(launch_campaign, engine, CampaignRequest(
        authority_id="23003", texts=TEXTS, channels=["voice"],
        area_geojson=json.dumps({"type": "Feature", "properties": {},
                                 "geometry": mapping(AREA)})), settings)
    sims = Simulators("", 0, "", 0)
    await start_voice_simulator(sims, engine, settings, seed=5,
                                script={n: list(o) for n, (_, o) in PLAN.items()})
    gateway = sims.voice
    try:
        unfinished = await send_campaign(engine, campaign_id,
                                         voice_sender_factories(settings, sims),
                                         send_timeout=30, settings=settings)
        # A callback sent again (a replay) is refused and audited; the call is unchanged.
        first = next(c for c in gateway.calls.values()  # type: ignore[attr-defined]
                     if c.to == "+3225550001")
        last, url = first.callbacks[-1], first.status_callback
        async with httpx.AsyncClient() as client:
            again = await client.post(url, data=last, headers={
                "X-Twilio-Signature": compute_signature(gateway.auth_token, url, last)})
        assert again.status_code == 409
    finally:
        await stop_simulators(sims)
    assert unfinished == []
    assert _audited(engine, "voice.callback_rejected") == 1

    calls = list(gateway.calls.values())  # type: ignore[attr-defined]
    attempts = Counter(c.to for c in calls)
    assert attempts == {"+3225550001": 1, "+3225550002": 2, "+3225550003": 3,
                        "+3225550004": 1, "+32470550005": 1, "+3225550006": 2}
    for call in calls:
        for language, _text in call.said:
            assert language == {"fr": "fr-BE", "nl": "nl-BE"}[PLAN[call.to][0]], call.to
    answered = {c.to: c for c in calls if c.outcome.startswith(("answered", "voicemail"))}
    assert answered["+3225550001"].said[0][1] == TEXTS["fr"]
    assert answered["+3225550006"].said[0][1] == TEXTS["nl"]
    # Repeat (9) plays the message again: 2 + 2 times, then the thanks.
    assert sum(1 for _, t in answered["+3225550002"].said if t == TEXTS["nl"]) == 4
    assert [t for _, t in answered["+3225550004"].said] == [TEXTS["fr"]]  # voicemail: once
    assert gateway.max_active <= 4  # the trunk  # type: ignore[attr-defined]
    # Every callback was signed and accepted (no 403, no replay).
    assert {code for c in calls for code in c.callback_codes} <= {204}

    final = await asyncio.to_thread(campaign_report, engine, campaign_id)
    voice = final["channels"]["voice"]
    assert final["status"] == "finished"
    assert voice["recipients"] == 6
    assert voice["by_status"] == {"delivered": 5, "failed": 1}
    assert voice["failure_reasons"] == {"no-answer": 1}
    assert voice["outcomes"] == {"answered": 4, "voicemail": 1, "busy": 0, "no-answer": 1,
                                 "failed": 0, "canceled": 0}
    assert voice["calls"] == 10
    assert voice["attempts_by_delivery"] == {"1": 3, "2": 2, "3": 1}
    assert voice["acknowledged"] == 3
    assert voice["by_language"] == {"fr": 2, "nl": 4}
    # Billed per started minute of answered calls only (SPEC F29).
    durations = [c.duration for c in calls if c.status == "completed"]
    minutes = sum(-(-d // 60) for d in durations)
    assert voice["billed_minutes"] == minutes and minutes >= 5
    assert voice["cost_eur"] == pytest.approx(0.055 * minutes)


async def test_forged_and_unknown_callbacks_are_refused_or_ignored(engine, caplog):
    from tocsin.dispatch.voice_wiring import CallbackListener

    listener = CallbackListener(engine, Settings(), "tok")
    await listener.start()
    try:
        async with httpx.AsyncClient() as client:
            url = f"{listener.base_url}/voice/calls/999999/status"
            params = {"CallSid": "CAx", "CallStatus": "completed", "SequenceNumber": "3"}
            forged = await client.post(url, data=params,
                                       headers={"X-Twilio-Signature": "AAAA"})
            unsigned = await client.post(url, data=params)
            signed = {"X-Twilio-Signature": compute_signature("tok", url, params)}
            unknown = await client.post(url, data=params, headers=signed)
    finally:
        await listener.stop()
    assert forged.status_code == 403 and unsigned.status_code == 403
    assert unknown.status_code == 200
    assert "unknown call 999999 ignored" in caplog.text
    assert _audited(engine, "voice.callback_rejected") == 2
    assert verify_chain(engine).problem is None


def _audited(engine, action: str) -> int:
    import sqlalchemy as sa

    from tocsin.authorities.models import AuditEntry

    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                               .where(AuditEntry.action == action)))


@pytest.mark.slow
async def test_cancel_hangs_up_a_ringing_call_and_never_retries_it(engine):
    from tocsin.campaigns.services import cancel_campaign
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.voice_wiring import start_voice_simulator, voice_sender_factories
    from tocsin.dispatch.worker import Simulators, stop_simulators

    csv = ("subscriber_id,language,mobile,email,lat,lon,landline\n"
           f"R1,nl,,,{IN[0].y},{IN[0].x},+3225550101\n")
    assert (await asyncio.to_thread(import_subscribers, engine, csv.encode())).errors == []
    # Rings 30 simulated seconds = 6 real seconds before no-answer: time to cancel.
    settings = Settings(voice_simulator_time_scale=0.2, voice_retry_seconds=1)
    campaign_id = await asyncio.to_thread(launch_campaign, engine, CampaignRequest(
        authority_id="23003", texts=TEXTS, channels=["voice"],
        area_geojson=json.dumps({"type": "Feature", "properties": {},
                                 "geometry": mapping(AREA)})), settings)
    sims = Simulators("", 0, "", 0)
    await start_voice_simulator(sims, engine, settings, script={"+3225550101": ["no-answer"]})
    gateway = sims.voice
    try:
        run = asyncio.create_task(send_campaign(engine, campaign_id,
                                                voice_sender_factories(settings, sims),
                                                send_timeout=30, settings=settings))
        for _ in range(100):
            if any(c.status == "ringing" for c in gateway.calls.values()):  # type: ignore
                break
            await asyncio.sleep(0.1)
        await asyncio.to_thread(cancel_campaign, engine, campaign_id, "operator")
        await asyncio.wait_for(run, 30)
    finally:
        await stop_simulators(sims)
    [call] = gateway.calls.values()  # type: ignore[attr-defined]
    assert call.hangup and call.status == "canceled"
    final = await asyncio.to_thread(campaign_report, engine, campaign_id)
    assert final["status"] == "cancelled"
    assert final["channels"]["voice"]["by_status"] == {"failed": 1}
    assert final["channels"]["voice"]["failure_reasons"] == {"canceled": 1}
    assert final["channels"]["voice"]["calls"] == 1


@pytest.mark.slow
async def test_provider_faults_lose_nothing_and_call_nobody_twice(engine):
    """5xx on call starts, final callbacks sent twice, ringing after the end."""
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.voice_wiring import start_voice_simulator, voice_sender_factories
    from tocsin.dispatch.worker import Simulators, stop_simulators

    numbers = [f"+32255502{i:02d}" for i in range(8)]
    csv = "subscriber_id,language,mobile,email,lat,lon,landline\n" + "".join(
        f"F{i},nl,,,{IN[i].y},{IN[i].x},{n}\n" for i, n in enumerate(numbers))
    assert (await asyncio.to_thread(import_subscribers, engine, csv.encode())).errors == []
    settings = Settings(voice_simulator_time_scale=0.01, voice_retry_seconds=1)
    campaign_id = await asyncio.to_thread(launch_campaign, engine, CampaignRequest(
        authority_id="23003", texts=TEXTS, channels=["voice"],
        area_geojson=json.dumps({"type": "Feature", "properties": {},
                                 "geometry": mapping(AREA)})), settings)
    sims = Simulators("", 0, "", 0)
    await start_voice_simulator(sims, engine, settings, seed=3,
                                script={n: ["answered:1"] for n in numbers},
                                faults={"http_5xx": 0.3, "duplicate": 1.0,
                                        "out_of_order": 1.0})
    gateway = sims.voice
    try:
        unfinished = await send_campaign(engine, campaign_id,
                                         voice_sender_factories(settings, sims),
                                         send_timeout=30, settings=settings)
    finally:
        await stop_simulators(sims)
    assert unfinished == []
    calls = list(gateway.calls.values())  # type: ignore[attr-defined]
    assert Counter(c.to for c in calls) == dict.fromkeys(numbers, 1)
    for call in calls:
        # final, its duplicate (refused as a replay), then the late "ringing" (ignored)
        assert call.callback_codes[-3:] == [204, 409, 204], call.callback_codes
    final = await asyncio.to_thread(campaign_report, engine, campaign_id)
    voice = final["channels"]["voice"]
    assert voice["by_status"] == {"delivered": 8}
    assert voice["outcomes"]["answered"] == 8 and voice["acknowledged"] == 8
    assert _audited(engine, "voice.callback_rejected") == 8


def test_estimate_gives_calls_minutes_cost_and_duration_at_the_rate(engine):
    from tocsin.campaigns.services import estimate_campaign

    assert import_subscribers(engine, _csv().encode()).errors == []
    settings = Settings(voice_calls_per_minute=3, voice_trunk=100)
    est = estimate_campaign(engine, CampaignRequest(
        authority_id="23003", texts=TEXTS, channels=["voice", "sms"],
        area_geojson=json.dumps({"type": "Feature", "properties": {},
                                 "geometry": mapping(AREA)})), settings)
    assert est["recipients"] == {"sms": 2, "voice": 6}
    assert est["by_language"]["voice"] == {"fr": 2, "nl": 4}
    voice = est["voice"]
    assert voice["calls"] == 6 and voice["calls_per_minute"] == 3
    assert voice["duration_s"] == pytest.approx(120.0)  # 6 calls at 3 per minute
    per_call = {lang: v["minutes_per_call"] for lang, v in voice["by_language"].items()}
    assert voice["minutes"] == 2 * per_call["fr"] + 4 * per_call["nl"]
    assert voice["cost_eur"] == pytest.approx(0.055 * voice["minutes"])
