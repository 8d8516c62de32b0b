"""The citizen portal's pages over HTTP, without JavaScript (issue 10 points 1, 2, 5): the
whole flow with the no-script challenge path solved by the test, the same answer for a
known and a new contact, hostile input answered 422 naming the field (never 500), the
e-mail link that changes nothing on GET, the separate citizen cookie, exports, deletion."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.core.settings import Settings
from tocsin.dispatch.transactional import MemoryOutbox
from tocsin.subscribers import challenge
from tocsin.subscribers.pumping import Limits
from tocsin.subscribers.verification import PortalConfig
from tocsin.web.app import create_app


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path / "var", public_base_url="http://testserver")
    app = create_app(engine, start_worker=False, settings=settings)
    app.state.code_sender = MemoryOutbox()
    # no back-off between codes here: tests ask twice for one contact within a minute
    app.state.portal_config = PortalConfig(difficulty=4, limits=Limits(backoff_first_s=0))
    with TestClient(app) as c:
        yield c


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, name
    return m.group(1)


def _ask(c: TestClient, contact: str, path: str = "/register", page: str = "/register"):  # type: ignore[no-untyped-def]
    html = c.get(page).text
    token = _hidden(html, "challenge")
    return c.post(path, data={"csrf_token": _hidden(html, "csrf_token"), "contact": contact,
                              "challenge": token, "solution": challenge.solve(token, 4)},
                  follow_redirects=False)


def _code(c: TestClient, address: str) -> str:
    message = c.app.state.code_sender.last_to(address)  # type: ignore[attr-defined]
    assert message is not None
    return re.search(r"\b(\d{6})\b", message.text).group(1)  # type: ignore[union-attr]


def _verify(c: TestClient, code: str):  # type: ignore[no-untyped-def]
    html = c.get("/register/verify").text
    return c.post("/register/verify", data={"csrf_token": _hidden(html, "csrf_token"),
                                            "code": code}, follow_redirects=False)


PROFILE = {"language": "fr", "channels": ["sms"], "accessibility": "none",
           "addr-0-kind": "home", "addr-0-municipality": "Beersel",
           "addr-0-street": "Rue de la Gare", "addr-0-number": "12",
           "addr-1-kind": "work", "addr-1-municipality": "Halle",
           "addr-1-street": "Grote Markt", "addr-1-number": "1", "primary": "0",
           "consent_alerts": "yes"}


def test_register_verify_profile_me_export_delete(client: TestClient) -> None:
    c = client
    assert c.get("/register?lang=fr").status_code == 200
    r = _ask(c, "0470 12 34 56")
    assert r.status_code == 303 and r.headers["location"] == "/register/verify"
    cookie = r.headers["set-cookie"]
    assert "tocsin_citizen=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "+32 … 56" in c.get("/register/verify").text
    r = _verify(c, _code(c, "+32470123456"))
    assert r.headers["location"] == "/register/profile"
    html = c.get("/register/profile").text
    r = c.post("/register/profile", data={**PROFILE, "csrf_token": _hidden(html, "csrf_token")},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    me = c.get("/me").text
    assert "Grote Markt" in me and "+32470123456" in me
    data = json.loads(c.get("/me/export.json").text)
    assert [a["municipality"] for a in data["addresses"]] == ["Beersel", "Halle"]
    csv_text = c.get("/me/export.csv?lang=en").text
    assert csv_text.startswith("\ufeffsection,field,value,detail")
    assert "Grote Markt 1, Halle" in csv_text
    # in the reader's language: column names and fixed words, what was typed as typed
    french = c.get("/me/export.csv?lang=fr").text
    assert french.startswith("\ufeffrubrique,champ,valeur,détail")
    assert "adresse," in french and "consentement," in french and ",oui," in french
    assert "Grote Markt 1, Halle" in french and "section" not in french
    assert c.get("/me/export.csv?lang=de").text.startswith("\ufeffBereich,Feld,Wert,Detail")
    # the operator's pages do not open with the citizen's cookie
    assert c.get("/", follow_redirects=False).headers["location"] == "/login"
    r = c.post("/me/delete", data={"csrf_token": _hidden(me, "csrf_token")})
    assert r.status_code == 422 and 'id="confirm-error"' in r.text
    r = c.post("/me/delete", data={"csrf_token": _hidden(me, "csrf_token"), "confirm": "yes"})
    assert r.status_code == 200
    assert c.get("/me", follow_redirects=False).headers["location"] == "/register"


def test_same_answer_for_known_and_new_contacts(client: TestClient) -> None:
    c = client
    _ask(c, "bob@example.org")
    _verify(c, _code(c, "bob@example.org"))
    html = c.get("/register/profile").text
    c.post("/register/profile", data={**PROFILE, "csrf_token": _hidden(html, "csrf_token")})
    c.cookies.clear()
    known = _ask(c, "bob@example.org")
    known_page = c.get("/register/verify").text
    c.cookies.clear()
    new = _ask(c, "nobody@example.org")
    new_page = c.get("/register/verify").text
    assert known.status_code == new.status_code == 303
    assert known.headers["location"] == new.headers["location"]
    assert known_page.replace("b…@", "X").replace(_hidden(known_page, "csrf_token"), "T") == \
        new_page.replace("n…@", "X").replace(_hidden(new_page, "csrf_token"), "T")


@pytest.mark.parametrize(("contact", "needle"), [
    ("a@b.org\r\nBcc: victim@example.org", "line breaks"),
    ("x" * 5000, "too long"),
    ("0900 12 345", "premium-rate"),
    ("hello", "neither an e-mail"),
    ("", "give an e-mail"),
])
def test_hostile_contacts_name_the_field(client: TestClient, contact: str, needle: str) -> None:
    r = _ask(client, contact)
    assert r.status_code == 422
    assert needle in r.text and 'id="contact-error"' in r.text and 'aria-invalid="true"' in r.text


def test_missing_challenge_and_no_js_wait(client: TestClient) -> None:
    html = client.get("/register").text
    r = client.post("/register", data={"csrf_token": _hidden(html, "csrf_token"),
                                       "contact": "a@example.org", "challenge": "forged"})
    assert r.status_code == 422 and "reload the page" in r.text
    r = client.post("/register", data={"csrf_token": _hidden(html, "csrf_token"),
                                       "contact": "a@example.org",
                                       "challenge": _hidden(html, "challenge")})
    assert r.status_code == 422 and "please wait" in r.text


def test_code_brute_force_over_http(client: TestClient) -> None:
    c = client
    _ask(c, "eve@example.org")
    code = _code(c, "eve@example.org")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    texts = [_verify(c, wrong).text for _ in range(5)]
    assert "4 tries left" in texts[0] and "too many wrong codes" in texts[4]
    assert "one last try" in texts[3]  # not "1 tries left"
    # the locked page has no code field any more: post as a script would
    token = _hidden(c.get("/register").text, "csrf_token")
    r = c.post("/register/verify", data={"csrf_token": token, "code": code})
    assert r.status_code == 422 and 'id="error-summary"' in r.text
    assert "too many wrong codes" in r.text  # locked, not "expired or already used"
    for bad in ("1" * 5000, "é" * 6, "12\n34\n56"):
        assert c.post("/register/verify", data={"csrf_token": token,
                                                "code": bad}).status_code == 422


def test_oversized_and_crlf_profile_fields(client: TestClient) -> None:
    c = client
    _ask(c, "fay@example.org")
    _verify(c, _code(c, "fay@example.org"))
    html = c.get("/register/profile").text
    bad = {**PROFILE, "addr-0-street": "Rue\r\nSet-Cookie: x", "addr-1-municipality": "H" * 500,
           "language": "xx", "csrf_token": _hidden(html, "csrf_token")}
    del bad["consent_alerts"]
    r = c.post("/register/profile", data=bad)
    assert r.status_code == 422
    for field in ("addr-0-street", "addr-1-municipality", "language", "consent_alerts"):
        assert f'id="{field}-error"' in r.text and f'href="#{field}"' in r.text
    r = c.post("/register/profile", data={**PROFILE, "addr-1-municipality": "Atlantis",
                                          "csrf_token": _hidden(html, "csrf_token")})
    assert r.status_code == 422 and "Atlantis" in r.text


def test_profile_shows_every_error_at_once_and_refuses_email_without_address(
        client: TestClient) -> None:
    """Form errors, an unknown municipality and the e-mail channel without an e-mail
    address come in one answer: a summary linking to each field, and each field's
    message (issue 10 trial: they came one round at a time)."""
    c = client
    _ask(c, "0470 22 33 44")
    _verify(c, _code(c, "+32470223344"))
    html = c.get("/register/profile").text
    bad = {**PROFILE, "channels": ["sms", "email"], "addr-1-municipality": "Atlantis",
           "language": "xx", "csrf_token": _hidden(html, "csrf_token")}
    del bad["consent_alerts"]
    r = c.post("/register/profile?lang=en", data=bad)
    assert r.status_code == 422
    summary = r.text.split('id="error-summary"')[1].split("</div>")[0]
    for field, anchor in (("channels", "channels-sms"), ("addr-1-municipality", None),
                          ("language", None), ("consent_alerts", None)):
        assert f'id="{field}-error"' in r.text, field
        assert f'href="#{anchor or field}"' in summary, field
    assert "Atlantis" in summary and "e-mail only with an e-mail address" in summary
    # once registered with a mobile only, /me/edit refuses e-mail too, in French
    r = c.post("/register/profile", data={**PROFILE, "csrf_token": _hidden(html, "csrf_token")},
               follow_redirects=False)
    assert r.status_code == 303, r.text
    edit = c.get("/me/edit").text
    r = c.post("/me/edit?lang=fr", data={**PROFILE, "channels": ["email"],
                                          "csrf_token": _hidden(edit, "csrf_token")})
    assert r.status_code == 422 and 'id="channels-error"' in r.text
    assert "e-mail only" not in r.text                                  # translated


def test_email_link_shows_the_code_and_changes_nothing(client: TestClient) -> None:
    c = client
    _ask(c, "gus@example.org")
    message = c.app.state.code_sender.last_to("gus@example.org")  # type: ignore[attr-defined]
    link = re.search(r"http://testserver(/register/code/\d{6})\?lang=\w+", message.text)
    assert link
    code = _code(c, "gus@example.org")
    for _ in range(3):  # a mail scanner opening it changes nothing
        page = c.get(link.group(1))
        assert page.status_code == 200 and f"{code[:3]} {code[3:]}" in page.text
    r = c.post("/register/verify", data={"csrf_token": _hidden(page.text, "csrf_token"),
                                         "code": _hidden(page.text, "code")},
               follow_redirects=False)
    assert r.headers["location"] == "/register/profile"
    assert c.get("/register/code/12ab56").status_code == 404


def test_posts_need_the_csrf_token(client: TestClient) -> None:
    assert client.post("/register", data={"contact": "a@example.org"}).status_code == 403
    assert client.post("/me/delete", data={"confirm": "yes"}).status_code == 403


@pytest.mark.parametrize(("header", "query", "word"), [
    ("nl-BE,nl;q=0.9", "", "Inschrijven voor alarmen"),
    ("fr-BE", "", "inscrire aux alertes"),
    ("fr-BE", "?lang=de", "Für Warnungen anmelden"),
    ("", "", "Register for alerts"),
])
def test_portal_language(client: TestClient, header: str, query: str, word: str) -> None:
    html = client.get(f"/register{query}", headers={"Accept-Language": header}).text
    assert word in html
    assert 'hreflang="nl"' in html


def test_errors_in_the_citizens_language(client: TestClient) -> None:
    html = client.get("/register?lang=fr").text
    token = _hidden(html, "challenge")
    r = client.post("/register?lang=fr", data={
        "csrf_token": _hidden(html, "csrf_token"), "contact": "0900 12 345",
        "challenge": token, "solution": challenge.solve(token, 4)})
    assert r.status_code == 422 and "numéros surtaxés" in r.text


def test_metrics_count_codes_sent_and_entered(client: TestClient) -> None:
    _ask(client, "hal@example.org")
    _verify(client, _code(client, "hal@example.org"))
    _ask(client, "ivy@example.org")
    text = client.get("/metrics").text
    assert "tocsin_portal_codes_sent 2.0" in text
    assert "tocsin_portal_codes_entered 1.0" in text
    assert "tocsin_portal_pumping_alarm 0.0" in text


def test_a_malformed_code_is_not_counted_and_a_locked_code_hides_the_form(
        client: TestClient) -> None:
    """Issue 10 trial: "12ab" was answered "wrong code; 4 tries left"; after five wrong
    codes the field and "Confirm" stayed on screen with nothing to do there."""
    c = client
    _ask(c, "eve@example.org")
    code = _code(c, "eve@example.org")
    malformed = _verify(c, "12ab")
    assert malformed.status_code == 422 and "the code has 6 digits" in malformed.text
    assert "tries left" not in malformed.text and 'id="code-error"' in malformed.text
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert "4 tries left" in _verify(c, wrong).text  # the malformed one was not counted
    for _ in range(4):
        locked = _verify(c, wrong)
    assert "too many wrong codes" in locked.text
    assert 'id="code"' not in locked.text and 'name="code"' not in locked.text
    assert 'href="/register"' in locked.text
    again = c.get("/register/verify").text  # reloading the page: still nothing to type
    assert 'name="code"' not in again and "too many wrong codes" in again


def test_the_error_summary_names_each_field_and_takes_the_focus(client: TestClient) -> None:
    """Issue 10 trial: after a page load with an error the focus stayed at the top (7 Tabs
    to the code field), and the summary gave the reason without the field."""
    c = client
    _ask(c, "0470 22 33 44")
    verify = c.get("/register/verify").text
    assert re.search(r'<input id="code"[^>]*autofocus', verify)
    assert '<script src="/static/portal.js" defer>' in verify
    _verify(c, _code(c, "+32470223344"))
    html = c.get("/register/profile").text
    r = c.post("/register/profile?lang=fr", data={
        **PROFILE, "addr-0-street": "x" * 151, "language": "xx",
        "csrf_token": _hidden(html, "csrf_token")})
    assert r.status_code == 422
    assert re.search(r'<div class="alert-error" role="alert" id="error-summary" tabindex="-1"',
                     r.text)
    summary = r.text.split('id="error-summary"')[1].split("</div>")[0]
    assert "Adresse 1 — Rue : trop long" in summary
    assert "Langue des alertes :" in summary
    assert '<script src="/static/portal.js" defer>' in r.text
    js = (Path(__file__).resolve().parent.parent / "src" / "tocsin" / "web" / "static"
          / "portal.js").read_text(encoding="utf-8")
    assert 'getElementById("error-summary")' in js and ".focus()" in js
