"""Web side of group answers (issue 10 point 8): the board, its events and CSV, the
follow-up, the e-mail answer page (GET changes nothing, buttons POST), the inbound SMS
webhook (shared secret) and the composer's group picker and answer options."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.campaigns import answer_service as svc
from tocsin.campaigns.answer_models import CampaignAnswer
from tocsin.core.db import read_transaction
from tocsin.core.settings import Settings
from tocsin.subscribers.contacts import import_contacts

PASSWORD = "correct horse battery staple"
HALLE = "23027"
SECRET = "s3cret-shared-with-the-provider"


@pytest.fixture
def site(engine: Engine, tmp_path: Path) -> tuple[TestClient, str, Settings]:
    from tocsin.authorities.services import create_user
    from tocsin.campaigns.services import CampaignRequest, launch_campaign
    from tocsin.web.app import create_app
    from weblogin import session_csrf

    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url),
                        inbound_sms_secret=SECRET)
    import_contacts(engine, b"naam,gsm,e-mail,taal\nAn,0470 00 00 01,an@example.org,nl\n"
                    b"Bert,0470 00 00 02,,fr\n", HALLE, "Vrijwilligers")
    cid = launch_campaign(engine, CampaignRequest(
        authority_id=HALLE, texts={"nl": "Wie kan komen?", "fr": "Qui peut venir ?"},
        channels=["sms", "email"], kind="group", lists=["Vrijwilligers"],
        answers=svc.AnswerSetup(["Ja", "Nee"])), settings=settings)
    create_user(engine, "halle-op", PASSWORD, HALLE, role="operator")
    client = TestClient(create_app(engine, start_worker=False, settings=settings))
    session_csrf(client, "halle-op", PASSWORD)
    return client, cid, settings


def test_board_events_csv_and_follow_up(site: tuple[TestClient, str, Settings]) -> None:
    client, cid, _ = site
    page = client.get(f"/campaigns/{cid}/answers?lang=nl")
    assert page.status_code == 200
    assert 'aria-live="polite"' in page.text and "Nog geen antwoord" in page.text
    r = client.post("/inbound/sms", data={"From": "+32470000001", "Body": "ja", "To": "8811"},
                    headers={"X-Tocsin-Secret": SECRET})
    assert r.status_code == 200 and r.json()["option"] == 1
    with client.stream("GET", f"/campaigns/{cid}/answers/events?max_events=1") as events:
        body = "".join(events.iter_text())
    assert "event: answers" in body and '"no_answer":1' in body
    csv_text = client.get(f"/campaigns/{cid}/answers.csv").text
    assert csv_text.lstrip("\ufeff").startswith("respondent,name,option,answer")
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get(f"/campaigns/{cid}/answers").text)
    assert token
    r = client.post(f"/campaigns/{cid}/answers/follow-up",
                    data={"csrf_token": token.group(1)}, follow_redirects=False)
    assert r.status_code == 303
    assert "Follow-up" not in client.get(f"/campaigns/{cid}/answers?lang=en").text
    assert client.get("/campaigns/nope/answers").status_code == 404


def test_inbound_webhook_needs_the_secret(site: tuple[TestClient, str, Settings]) -> None:
    client, _, _ = site
    anon = TestClient(client.app)
    body = {"from": "+32470000002", "text": "B 1"}
    assert anon.post("/inbound/sms", json=body).status_code == 401
    assert anon.post("/inbound/sms", json=body,
                     headers={"X-Tocsin-Secret": "wrong"}).status_code == 401
    ok = anon.post("/inbound/sms", json=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert ok.status_code == 200 and ok.json()["option"] == 1   # a wrong letter, one call
    missing = anon.post("/inbound/sms", json={"from": "+32470000002"},
                        headers={"X-Tocsin-Secret": SECRET})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "text"
    assert anon.post("/inbound/sms", content=b"[1,2]", headers={
        "X-Tocsin-Secret": SECRET, "content-type": "application/json"}).status_code == 422


def test_webhook_off_without_a_secret(engine: Engine, tmp_path: Path) -> None:
    from tocsin.web.app import create_app

    app = create_app(engine, start_worker=False,
                     settings=Settings(var_dir=tmp_path / "var", database_url=str(engine.url)))
    r = TestClient(app).post("/inbound/sms", json={"from": "+3247", "text": "1"},
                             headers={"X-Tocsin-Secret": ""})
    assert r.status_code == 404


def test_email_answer_page_get_changes_nothing_post_records(
        site: tuple[TestClient, str, Settings], engine: Engine) -> None:
    client, cid, settings = site
    from tocsin.subscribers.optout import unsubscribe_secret

    link = svc.answer_link("http://x", unsubscribe_secret(settings), cid, "an@example.org")
    path = link.removeprefix("http://x")
    anon = TestClient(client.app)
    page = anon.get(path)
    assert page.status_code == 200 and 'lang="nl"' in page.text   # An's language
    assert "Wie kan komen?" in page.text and 'name="option" value="2"' in page.text
    with read_transaction(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(CampaignAnswer)) == 0
    done = anon.post(path, data={"option": "2"})
    assert done.status_code == 200, done.text
    assert "Nee" in done.text
    assert svc.board(engine, cid, None)["options"][1]["count"] == 1
    assert anon.post(path, data={"option": "7"}).status_code == 422
    assert anon.get(path[:-3] + "abc").status_code == 400
    assert anon.post(path[:-3] + "abc", data={"option": "1"}).status_code == 400


def test_email_of_an_answerable_campaign_carries_the_link() -> None:
    footer = svc.email_footer("https://tocsin.example", "k", "c1", "an@example.org", "fr",
                              ["Oui", "Non"])
    assert "Répondre (1 = Oui, 2 = Non): https://tocsin.example/answer/" in footer
    assert svc.email_footer("https://x", "k", "c1", "a@b.c", "fr", []) == ""


def test_composer_offers_groups_lists_and_answers(site: tuple[TestClient, str, Settings],
                                                  engine: Engine) -> None:
    client, _, _ = site
    from tocsin.subscribers.groups import create_group

    create_group(engine, HALLE, "Ploeg A")
    page = client.get("/campaigns/new?lang=en").text
    assert 'name="lists" value="Vrijwilligers"' in page
    assert 'name="groups" value="Ploeg A"' in page
    assert 'id="answer-options"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = client.post("/api/campaigns", json={
        "texts": {"nl": "Wie kan komen?"}, "channels": ["sms"], "kind": "group",
        "lists": ["Vrijwilligers"], "answers": ["Ja", "Nee", ""], "quota": 1,
        "answer_timeout_minutes": 5}, headers={"X-CSRF-Token": token.group(1)})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    t0 = dt.datetime.now(dt.UTC)
    assert svc.run_quotas(engine, t0).actions[cid] == [("send", "+32470000001", "sms")]
    bad = client.post("/api/campaigns", json={
        "texts": {"nl": "x"}, "channels": ["sms"], "kind": "group",
        "lists": ["Vrijwilligers"], "answers": ["Ja"]}, headers={"X-CSRF-Token": token.group(1)})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "answers"


def test_type2_authority_composes_to_its_lists(engine: Engine, tmp_path: Path) -> None:
    """A groups-only (type-2) authority with a contact list gets the composer without the
    area, and sends to the list from it."""
    from tocsin.authorities.access import command_line_actor
    from tocsin.authorities.governance import set_agreement
    from tocsin.authorities.services import create_user
    from tocsin.web.app import create_app
    from weblogin import session_csrf

    set_agreement(engine, command_line_actor(engine, "BE"), "23104", 2, "test")
    create_user(engine, "op.lennik", PASSWORD, "23104", role="operator")
    client = TestClient(create_app(engine, start_worker=False, settings=Settings(
        var_dir=tmp_path / "var", database_url=str(engine.url))))
    session_csrf(client, "op.lennik", PASSWORD)
    assert client.get("/campaigns/new?lang=en").status_code == 403   # no list yet
    import_contacts(engine, b"gsm\n0470 00 00 09\n", "23104", "Crisiscel")
    page = client.get("/campaigns/new?lang=en")
    assert page.status_code == 200 and 'id="groups-only-note"' in page.text
    assert re.search(r'<section class="card compose-area"[^>]*hidden', page.text)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    r = client.post("/api/campaigns", json={
        "texts": {"nl": "Crisiscel: kom naar het gemeentehuis."}, "channels": ["sms"],
        "kind": "group", "lists": ["Crisiscel"], "answers": ["Ja", "Nee"]},
        headers={"X-CSRF-Token": token.group(1)})
    assert r.status_code == 201, r.text
    area = client.post("/api/campaigns", json={
        "texts": {"nl": "x"}, "channels": ["sms"], "kind": "alert",
        "municipality_nis": "23104"}, headers={"X-CSRF-Token": token.group(1)})
    assert area.status_code == 403                                   # never an area


def test_oversized_bodies_are_refused_even_when_chunked(
        site: tuple[TestClient, str, Settings], engine: Engine) -> None:
    """A body over the public limit gets 413 naming the body, whether it declares its
    length or streams it in chunks without one (web/limits.py); nothing is stored."""
    client, cid, _ = site
    anon = TestClient(client.app)
    before = _inbound_rows(engine)

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"from": "+32470000001", "text": "1", "pad": "'
        for _ in range(200):
            yield b"x" * 1024
        yield b'"}'

    chunked = anon.post("/inbound/sms", content=chunks(), headers={
        "X-Tocsin-Secret": SECRET, "content-type": "application/json"})
    assert chunked.status_code == 413
    assert chunked.json()["error"]["field"] == "body"
    declared = anon.post("/inbound/sms", content=b"x" * 70_000, headers={
        "X-Tocsin-Secret": SECRET, "content-type": "application/json"})
    assert declared.status_code == 413
    token = "a" * 40
    answer = anon.post(f"/answer/{token}", content=chunks(),
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413
    register = anon.post("/register", content=chunks(),
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert register.status_code == 413
    assert _inbound_rows(engine) == before
    small = anon.post("/inbound/sms", json={"from": "+32470000001", "text": "1"},
                      headers={"X-Tocsin-Secret": SECRET})
    assert small.status_code == 200


def _inbound_rows(engine: Engine) -> int:
    import sqlalchemy as sa

    with engine.connect() as c:
        return int(c.execute(sa.text("SELECT count(*) FROM inbound_message")).scalar_one())


def test_estimate_of_a_list_only_message_names_the_list_not_an_area(
        site: tuple[TestClient, str, Settings]) -> None:
    """The confirmation says exactly who gets it: the list and its size, no km² (there is
    no area), and its times as the dashboard writes them (issue 10 trial)."""
    client, _, _ = site
    day = dt.date.today() + dt.timedelta(days=30)
    page = client.get("/campaigns/new?lang=fr").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = client.post("/api/campaigns/estimate?lang=fr", json={
        "texts": {"nl": "Wie kan komen?"}, "channels": ["sms"], "kind": "group",
        "lists": ["Vrijwilligers"], "answers": ["Ja", "Nee"],
        "scheduled_for": f"{day:%Y-%m-%d} 10:30"}, headers={"X-CSRF-Token": token.group(1)})
    assert r.status_code == 200, r.text
    est = r.json()
    assert est["targets_only"] is True and est["area_km2"] is None
    assert [(t["type"], t["name"]) for t in est["targets"]] == [("list", "Vrijwilligers")]
    assert est["targets"][0]["contacts"] >= 1
    from zoneinfo import ZoneInfo

    from tocsin.web.i18n import format_brussels

    moment = dt.datetime(day.year, day.month, day.day, 10, 30, tzinfo=ZoneInfo("Europe/Brussels"))
    # the dashboard's helper and format, Belgian French ("2/01/27 10:30")
    assert est["display"]["scheduled_for"] == format_brussels(moment, "fr", "%Y-%m-%d %H:%M")
    assert "10:30" in est["display"]["scheduled_for"] and "-" not in est["display"]["scheduled_for"]


def test_unreadable_reply_is_shown_on_the_board_with_its_reason(
        site: tuple[TestClient, str, Settings], engine: Engine) -> None:
    """Fresh-user trial: "peut-être" from a list member was shown nowhere; the person
    only counted as "no answer yet"."""
    client, cid, _ = site
    r = client.post("/inbound/sms", data={"From": "+32470000002", "Body": "peut-être",
                                          "To": "8811"}, headers={"X-Tocsin-Secret": SECRET})
    assert r.status_code == 200 and r.json()["option"] is None
    board = svc.board(engine, cid, None)
    assert [(u["name"], u["text"], u["reason"]) for u in board["unreadable"]] == [
        ("Bert", "peut-être", "unrecognised")]
    page = client.get(f"/campaigns/{cid}/answers?lang=fr").text
    latest = page[page.index('id="board-latest"'):]
    assert "Bert" in latest and "peut-être" in latest
    assert 'class="unreadable"' in latest and "Reply not understood" not in latest


def test_follow_up_line_uses_plurals_and_live_counts(
        site: tuple[TestClient, str, Settings]) -> None:
    """"aux 1 personnes" (no plural) and a count that stayed at 3 until a reload."""
    client, cid, _ = site
    page = client.get(f"/campaigns/{cid}/answers?lang=fr").text
    assert 'id="follow-up-count"' in page and "aux 2 personnes" in page
    client.post("/inbound/sms", data={"From": "+32470000001", "Body": "ja", "To": "8811"},
                headers={"X-Tocsin-Secret": SECRET})
    page = client.get(f"/campaigns/{cid}/answers?lang=fr").text
    assert "aux 1 personnes" not in page and "à la personne" in page
    with client.stream("GET", f"/campaigns/{cid}/answers/events?max_events=1&lang=fr"
                       ) as events:
        body = "".join(events.iter_text())
    assert '"follow_up_text":' in body and "la personne qui n" in body  # the live count


def test_campaign_page_and_pdf_of_a_list_message_name_the_list_not_an_area(
        site: tuple[TestClient, str, Settings], engine: Engine) -> None:
    """Fresh-user trial: "Zone : Vrijwilligers — 0,00 km² … rien n'a été coupé" and a PDF
    titled "Rapport de campagne: Alerte — …" with a CAP identifier though none was
    published."""
    import io

    from pypdf import PdfReader

    from tocsin.campaigns.report_export import export_report

    client, cid, _ = site
    page = client.get(f"/campaigns/{cid}?lang=fr").text
    facts = page[page.index('id="area-facts"'):]
    facts = facts[:facts.index("</section>")]
    assert "km²" not in facts and 'id="area-not-cut"' not in facts
    assert "Destinataires" in facts and "Vrijwilligers" in facts and "2 contacts" in facts
    pdf = export_report(engine, cid, "pdf", lang="fr").content
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert text.startswith("Message de groupe — Vrijwilligers")      # the title, its kind
    assert not re.search(r"Rapport de campagne ?: ?Alerte", text)
    assert "Identifiant CAP" not in text
