"""Composer message tools over HTTP (F13, F14, F22, F25) and the SMS composer preview.

Real app, real session cookie and CSRF token, real espeak-ng when installed.
"""

from __future__ import annotations

import io
import json
import shutil
import unicodedata
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.authorities import services as authorities
from tocsin.authorities.models import Authority
from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.core.settings import Settings
from tocsin.messages.sms import GSM7_REWRITES, composer_preview, gsm7_rewrite, is_gsm7, preview
from tocsin.web.app import create_app
from weblogin import session_csrf

PASSWORD = "correct horse battery staple"
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")


def _authority(id_: str, kind: str, name: str, parent: str | None, max_segments: int | None
               ) -> Authority:
    square = {"type": "Polygon",
              "coordinates": [[[4.5, 50.6], [4.7, 50.6], [4.7, 50.8], [4.5, 50.8], [4.5, 50.6]]]}
    return Authority(
        id=id_, kind=kind, name_fr=name, name_nl=name, name_de=None, parent_id=parent,
        languages="fr", agreement_type=1, population=1000, territory=json.dumps(square),
        min_lon=4.5, min_lat=50.6, max_lon=4.7, max_lat=50.8, sms_max_segments=max_segments,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'messages.db'}")
    upgrade(eng)
    with transaction(eng) as s:
        s.add(_authority("25000", "province", "Brabant wallon", None, None))
        s.flush()
        s.add(_authority("25112", "municipality", "Wavre", "25000", 2))
    authorities.create_user(eng, "op", PASSWORD, "25000")
    authorities.create_user(eng, "wavre", PASSWORD, "25112")
    return eng


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url),
                        sms_max_segments=4, voice_minute_price_eur="0.06")
    app = create_app(engine, start_worker=False, settings=settings)
    with TestClient(app) as c:
        yield c


def _login(c: TestClient, username: str = "op") -> dict[str, str]:
    """Log in and return the headers a JSON POST needs."""
    return {"X-CSRF-Token": session_csrf(c, username, PASSWORD)}


# ---------------------------------------------------------------------- composer_preview (pure)


def test_composer_preview_keeps_preview_keys_and_adds_cap() -> None:
    text = "Fermez portes et fenêtres."
    p = composer_preview(text, max_segments=3)
    assert {k: p[k] for k in preview(text)} == preview(text)
    assert p["max_segments"] == 3 and p["over_max"] is False
    assert p["gsm7_rewrite"] is None and p["rewrite_segments"] is None  # ê: stays UCS-2


def test_composer_preview_offers_rewrite_that_makes_gsm7() -> None:
    text = "Restez à l’intérieur… «\u00a0Évacuation\u00a0» – zone A" * 3
    p = composer_preview(text, max_segments=1)
    assert p["encoding"] == "UCS-2" and p["segments"] == 3 and p["over_max"] is True
    assert p["gsm7_rewrite"] == ("Restez à l'intérieur... \"Évacuation\" - zone A" * 3)
    assert p["rewrite_segments"] == 1
    assert preview(p["gsm7_rewrite"])["encoding"] == "GSM-7"


def test_composer_preview_no_rewrite_when_letters_force_ucs2() -> None:
    # ’ is fixable but ê is not: the rewrite would not make the text GSM-7.
    p = composer_preview("Fenêtres fermées, n’ouvrez pas", max_segments=6)
    assert p["encoding"] == "UCS-2" and p["gsm7_rewrite"] is None
    p = composer_preview("Already GSM-7 text", max_segments=6)
    assert p["gsm7_rewrite"] is None and p["rewrite_segments"] is None


def test_composer_preview_empty_text_is_zero() -> None:
    p = composer_preview("", max_segments=6)
    assert p == {"encoding": "GSM-7", "units": 0, "segments": 0, "part_units": [],
                 "cost_eur": 0.0, "non_gsm_chars": [], "max_segments": 6, "over_max": False,
                 "gsm7_rewrite": None, "rewrite_segments": None, "accent_rewrite": None,
                 "accent_rewrite_segments": None, "accent_changes": []}


def test_composer_preview_bad_cap() -> None:
    with pytest.raises(ValueError, match="max_segments"):
        composer_preview("x", max_segments=0)
    with pytest.raises(TypeError, match="max_segments"):
        composer_preview("x", max_segments="6")  # type: ignore[arg-type]


def test_rewrite_table_never_touches_letters() -> None:
    # Letters not in GSM 03.38 are left alone: changing them changes the spelling.
    for char in "êëçîôûïâœáíóúÊËÎÔÛ":
        assert not is_gsm7(char)
        assert char not in GSM7_REWRITES
        assert gsm7_rewrite(char) == char
    # Accented letters of the default alphabet are GSM-7 and kept as they are.
    for char in "éèàùìòÇÉÄÖÑÜßäöñü":
        assert is_gsm7(char) and gsm7_rewrite(char) == char
    # Every replacement is GSM-7 and no replaced character is a letter (ʼ U+02BC is a
    # "modifier letter", Lm, but it is the apostrophe Unicode recommends: punctuation here).
    for char, replacement in GSM7_REWRITES.items():
        assert unicodedata.category(char) in ("Lm", "Pd", "Pf", "Pi", "Po", "Ps", "Pe", "Sk",
                                              "Sm", "Zs", "Zl", "Zp", "Cc", "Cf"), char
        assert all(is_gsm7(c) for c in replacement), char


def test_rewrite_table_additions() -> None:
    assert gsm7_rewrite("l\u02bcalerte 1\u20442 ok\u2000\u205f\u3000x\u2043y\u2024") == (
        "l'alerte 1/2 ok   x-y."
    )


# ---------------------------------------------------------------------- HTTP


def test_endpoints_need_login_andcsrf_of(client: TestClient) -> None:
    paths = ["sms-preview", "voice-estimate", "voice-preview", "language-check"]
    for path in paths:
        r = client.post(f"/api/messages/{path}", json={})
        assert r.status_code == 401, path
    _login(client)
    for path in paths:
        r = client.post(f"/api/messages/{path}", json={"text": "x"})
        assert r.status_code == 403 and r.json()["error"]["field"] == "csrf_token", path


def test_sms_preview_shape_and_cap(client: TestClient) -> None:
    h = _login(client)
    r = client.post("/api/messages/sms-preview", json={"text": "Sluit ramen en deuren"}, headers=h)
    assert r.status_code == 200
    assert r.json() == {"encoding": "GSM-7", "units": 21, "segments": 1, "part_units": [21],
                        "cost_eur": 0.055, "non_gsm_chars": [], "max_segments": 4,
                        "over_max": False, "gsm7_rewrite": None, "rewrite_segments": None,
                        "accent_rewrite": None, "accent_rewrite_segments": None,
                        "accent_changes": []}
    # Wavre caps at 2 segments; a 3-segment UCS-2 text is over, its rewrite fits in 1.
    long = "Évacuez le quartier – n’attendez pas. " * 5
    r = client.post("/api/messages/sms-preview", json={"text": long, "authority_id": "25112"},
                    headers=h)
    assert r.status_code == 403 and r.json()["error"]["field"] == "authority_id"
    client.post("/logout", data={"csrf_token": h["X-CSRF-Token"]})
    h = _login(client, "wavre")
    body = client.post("/api/messages/sms-preview", json={"text": long}, headers=h).json()
    assert body["max_segments"] == 2 and body["segments"] == 3 and body["over_max"] is True
    assert body["gsm7_rewrite"] == long.replace("–", "-").replace("’", "'")
    assert body["rewrite_segments"] == 2


def test_sms_preview_limits(client: TestClient, engine: Engine) -> None:
    h = _login(client)
    r = client.post("/api/messages/sms-preview", json={"text": "x" * 10_001}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"
    r = client.post("/api/messages/sms-preview", json={}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"
    r = client.post("/api/messages/sms-preview", content=b'{"text": "a\\ud800b"}',
                    headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "text"  # lone surrogate
    assert client.post("/api/messages/sms-preview", json={"text": "x" * 10_000},
                       headers=h).json()["segments"] == 66
    with transaction(engine) as s:
        s.execute(sa.update(Authority).where(Authority.id == "25000").values(sms_max_segments=1))
    r = client.post("/api/messages/sms-preview", json={"text": "x" * 161}, headers=h)
    assert r.json()["max_segments"] == 1 and r.json()["over_max"] is True


def test_voice_estimate_endpoint(client: TestClient) -> None:
    h = _login(client)
    script = "Fermez portes et fenêtres. Restez à l'intérieur et écoutez la radio."
    r = client.post("/api/messages/voice-estimate", json={"script": script, "language": "fr"},
                    headers=h)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"words", "seconds", "billed_minutes", "cost_eur"}
    assert body["words"] == 11 and body["billed_minutes"] == 1
    assert body["cost_eur"] == 0.06  # the deployment's voice tariff, not the SMS one
    r = client.post("/api/messages/voice-estimate", json={"script": script, "language": "es"},
                    headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "language"
    r = client.post("/api/messages/voice-estimate",
                    json={"script": "a" * 10_001, "language": "fr"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "script"


@needs_espeak
def test_voice_preview_returns_wav(client: TestClient) -> None:
    h = _login(client)
    r = client.post("/api/messages/voice-preview",
                    json={"script": "Sluit ramen en deuren.", "language": "nl"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(r.content)) as w:
        assert w.getnchannels() == 1 and 0.5 < w.getnframes() / w.getframerate() < 5


def test_voice_preview_limits(client: TestClient) -> None:
    h = _login(client)
    r = client.post("/api/messages/voice-preview",
                    json={"script": "mot " * 600, "language": "fr"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "script"
    r = client.post("/api/messages/voice-preview", json={"script": "  ", "language": "fr"},
                    headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"] == "script"


def test_voice_preview_says_so_without_engine(client: TestClient,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Security probe (issue 8): a missing optional engine was a 503; it is a fact to show.
    h = _login(client)
    monkeypatch.setenv("PATH", "/nonexistent")  # as on a server without espeak-ng
    r = client.post("/api/messages/voice-preview",
                    json={"script": "Close doors and windows.", "language": "en"}, headers=h)
    assert r.status_code == 200
    assert r.json()["available"] is False
    assert "No text-to-speech engine on this server" in r.json()["message"]
    page = client.get("/campaigns/new").text
    assert "voice-listen" not in page  # no Listen button to press in vain
    assert "No text-to-speech engine on this server" in page


def test_language_check_endpoint(client: TestClient) -> None:
    h = _login(client)
    texts = {
        "fr": "Fermez portes et fenêtres, restez à l'intérieur.",
        "nl": "Fermez portes et fenêtres, restez à l'intérieur.",  # pasted in the wrong field
        "de": "Schließen Sie Fenster und Türen.",
        "en": "Test",
    }
    r = client.post("/api/messages/language-check", json={"texts": texts}, headers=h)
    assert r.status_code == 200
    warnings = r.json()["warnings"]
    assert len(warnings) == 1
    w = warnings[0]
    assert (w["language"], w["detected"], w["field"]) == ("nl", "fr", "text.nl")
    assert "text.nl" in w["message"] and "French" in w["message"]
    r = client.post("/api/messages/language-check", json={"texts": {"es": "Hola"}}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("texts")
    r = client.post("/api/messages/language-check", json={"texts": {"fr": "a" * 10_001}},
                    headers=h)
    assert r.status_code == 422 and "texts" in r.json()["error"]["field"]


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    for path, model in (("sms-preview", "SmsPreviewOut"), ("voice-estimate", "VoiceEstimateOut"),
                        ("language-check", "LanguageCheckOut")):
        op = spec["paths"][f"/api/messages/{path}"]["post"]
        ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith(model)
    audio = spec["paths"]["/api/messages/voice-preview"]["post"]["responses"]
    assert "audio/wav" in audio["200"]["content"] and "503" in audio
