"""Group messages with answers (issue 10 point 8): launch with options, SMS replies,
voice keys, e-mail buttons, the quota step with an injected clock, the board, the CSV
and the follow-up to non-responders (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.campaigns import answer_service as svc
from tocsin.campaigns.answer_models import AnswerCall, InboundMessage
from tocsin.core.db import read_transaction
from tocsin.core.errors import InputError
from tocsin.dispatch.models import Delivery
from tocsin.subscribers.contacts import import_contacts

HALLE = "23027"
SECRET = "test-secret"
PEOPLE = (b"naam,gsm,e-mail,taal\n"
          b"An,0470 00 00 01,an@example.org,nl\n"
          b"Bert,0470 00 00 02,,fr\n"
          b"Cis,0470 00 00 03,cis@example.org,nl\n"
          b"Dirk,0470 00 00 04,,de\n"
          b"Eve,0470 00 00 05,eve@example.org,en\n")


def _launch(engine: Engine, setup: svc.AnswerSetup, channels: list[str] | None = None,
            **kw: Any) -> str:
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    import_contacts(engine, PEOPLE, HALLE, "Vrijwilligers")
    return launch_campaign(engine, CampaignRequest(
        authority_id=HALLE, texts={"nl": "Wie kan komen helpen?", "fr": "Qui peut venir ?"},
        channels=channels or ["sms", "email"], kind="group", lists=["Vrijwilligers"],
        answers=setup, **kw))


def _sent(engine: Engine, campaign_id: str) -> list[tuple[str, str]]:
    with read_transaction(engine) as s:
        return sorted(s.execute(sa.select(Delivery.channel, Delivery.address)
                                .where(Delivery.campaign_id == campaign_id)).all())


@pytest.mark.parametrize("any_engine", ["sqlite", "postgres"], indirect=True)
def test_sms_replies_board_csv_and_follow_up(any_engine: Engine) -> None:
    cid = _launch(any_engine, svc.AnswerSetup(["Ja", "Nee", "@later"]))
    with read_transaction(any_engine) as s:
        call = s.get(AnswerCall, cid)
        assert call is not None and call.letter == "A" and call.status == "open"
        from tocsin.campaigns.models import Campaign
        c = s.get(Campaign, cid)
        assert c is not None
        assert c.content["nl"]["sms"].endswith("\nAntwoord A1 = Ja, A2 = Nee, A3 = @later")
        assert c.content["fr"]["sms"].endswith("\nRépondez A1 = Ja, A2 = Nee, A3 = @later")
    assert len(_sent(any_engine, cid)) == 8   # 5 SMS, 3 e-mails
    r = svc.record_inbound(any_engine, "32470000001", "a 1", via="smpp")
    assert (r.campaign_id, r.option, r.reason) == (cid, 1, None)
    assert svc.record_inbound(any_engine, "+32470000002", "NON", via="webhook").option == 2
    bad = svc.record_inbound(any_engine, "+32470000003", "misschien", via="webhook")
    assert (bad.option, bad.reason) == (None, "unrecognised")
    stranger = svc.record_inbound(any_engine, "+32499999999", "1", via="webhook")
    assert stranger.reason == "no_open_call"
    # A changed mind replaces the answer (no quota).
    svc.record_inbound(any_engine, "+32470000002", "ja", via="webhook")
    b = svc.board(any_engine, cid, None)
    assert [o["count"] for o in b["options"]] == [2, 0, 0]
    assert (b["asked"], b["no_answer"], b["answered"]) == (5, 3, 2)
    with read_transaction(any_engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 5
    # E-mail: a button pressed 3 s after delivery is flagged, the answer still counts.
    with read_transaction(any_engine) as s:
        s.execute(sa.update(Delivery).where(Delivery.campaign_id == cid,
                                            Delivery.channel == "email")
                  .values(state="delivered", final_at=dt.datetime(2026, 12, 3, 9, 0,
                                                                  tzinfo=dt.UTC)))
        s.commit()
    token = svc.answer_token(SECRET, cid, "cis@example.org")
    page = svc.answer_page(any_engine, SECRET, token)
    assert page["options"] == ["Ja", "Nee", "@later"] and page["answered"] is None
    done = svc.email_answer(any_engine, SECRET, token, 2,
                            now=dt.datetime(2026, 12, 3, 9, 0, 3, tzinfo=dt.UTC))
    assert done == {"option": 2, "label": "Nee", "possible_scanner": True}
    with pytest.raises(InputError):
        svc.answer_page(any_engine, SECRET, token[:-2] + "xx")
    with pytest.raises(InputError):
        svc.email_answer(any_engine, "other-secret", token, 1)
    b = svc.board(any_engine, cid, None)
    assert b["possible_scanners"] == 1 and b["no_answer"] == 2
    rows = list(csv.reader(io.StringIO(svc.answers_csv(any_engine, cid, None))))
    assert rows[0][:4] == ["respondent", "name", "option", "answer"]
    assert len(rows) == 6
    svc.record_inbound(any_engine, "+32470000001", "later", via="webhook")
    rows = list(csv.reader(io.StringIO(svc.answers_csv(any_engine, cid, None))))
    # no formula; the number as in report.csv (one helper: core.csvcell.csv_cell)
    assert [r[3] for r in rows if r[0] == "+32470000001"] == ["'@later"]
    svc.record_inbound(any_engine, "+32470000001", "1", via="webhook")
    assert svc.csv_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    # Follow-up to the two who did not answer; their answer counts on the original.
    follow = svc.follow_up(any_engine, cid, None, {"nl": "Nog iemand?", "fr": "Encore ?"})
    assert follow["recipients"] == 3   # Dirk (sms), Eve (sms, e-mail)
    assert _sent(any_engine, follow["campaign_id"]) == [
        ("email", "eve@example.org"), ("sms", "+32470000004"), ("sms", "+32470000005")]
    # Two calls open for Dirk's number? Only the follow-up: the original's delivery too.
    two = svc.record_inbound(any_engine, "+32470000004", "1", via="webhook")
    assert two.reason == "letter_needed"
    fu_letter = svc.board(any_engine, cid, None)["letter"]
    assert fu_letter == "A"
    assert svc.record_inbound(any_engine, "+32470000004", "B1", via="webhook").option == 1
    b = svc.board(any_engine, cid, None)
    assert b["no_answer"] == 1 and b["options"][0]["count"] == 3
    with pytest.raises(InputError):
        svc.follow_up(any_engine, cid, None)


def test_answers_need_groups_and_valid_options(engine: Engine) -> None:
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    with pytest.raises(InputError) as exc:
        _launch(engine, svc.AnswerSetup(["Ja"]))
    assert exc.value.code == "answers_count"
    with pytest.raises(InputError) as exc:
        launch_campaign(engine, CampaignRequest(
            authority_id=HALLE, texts={"nl": "x"}, channels=["sms"], kind="alert",
            municipality_nis=HALLE, answers=svc.AnswerSetup(["Ja", "Nee"])))
    assert exc.value.code == "answers_targets"
    with pytest.raises(InputError) as exc:
        _launch(engine, svc.AnswerSetup(["Ja", "Nee"], quota=9))
    assert exc.value.code == "quota_people"
    with read_transaction(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AnswerCall)) == 0


def test_quota_step_writes_deliveries_and_thanks(engine: Engine) -> None:
    t0 = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
    cid = _launch(engine, svc.AnswerSetup(["Ja", "Nee"], quota=2, timeout_minutes=5,
                                          escalate_minutes=2),
                  channels=["sms", "voice", "email"])
    assert _sent(engine, cid) == []                  # the fan-out leaves them to the quota
    at = lambda m: t0 + dt.timedelta(minutes=m)  # noqa: E731
    svc.run_quotas(engine, at(0))
    assert _sent(engine, cid) == [("sms", "+32470000001"), ("sms", "+32470000002")]
    svc.record_inbound(engine, "+32470000001", "ja", via="webhook", now=at(1))
    svc.run_quotas(engine, at(2))                    # Bert escalated to voice
    assert ("voice", "+32470000002") in _sent(engine, cid)
    with engine.begin() as conn:                     # Bert presses 2 on the call
        delivery_id = conn.scalar(sa.select(Delivery.id).where(
            Delivery.campaign_id == cid, Delivery.channel == "voice"))
    from tocsin.core.db import transaction
    with transaction(engine) as s:
        said = svc.voice_answer(s, cid, delivery_id, "2", now=at(3))
    assert said == ("fr", "Vous avez répondu : Nee. Merci.")
    run = svc.run_quotas(engine, at(3))              # Cis takes Bert's place
    assert run.actions[cid] == [("send", "+32470000003", "sms")]
    svc.record_inbound(engine, "+32470000003", "A1", via="webhook", now=at(4))
    run = svc.run_quotas(engine, at(4))
    assert run.actions[cid] == [("thank", "+32470000002", "sms"), ("filled", "", "")]
    with read_transaction(engine) as s:
        call = s.get(AnswerCall, cid)
        assert call is not None and call.status == "filled" and call.follow_up_id is None
        from tocsin.campaigns.models import Campaign
        thanks = s.scalars(sa.select(Campaign).where(Campaign.id != cid)).one()
        assert thanks.texts["fr"].startswith("Merci")
    assert _sent(engine, thanks.id) == [("sms", "+32470000002")]
    assert svc.run_quotas(engine, at(30)).actions == {}
    late = svc.record_inbound(engine, "+32470000004", "1", via="webhook", now=at(5))
    assert late.reason == "no_open_call"
    b = svc.board(engine, cid, None)
    assert b["quota"] == {"wanted": 2, "accepted": 2, "state": "filled"}
    assert b["asked"] == 3 and b["no_answer"] == 0


@pytest.mark.slow
async def test_voice_key_press_is_the_answer_and_is_read_back(engine: Engine) -> None:
    """A quota call reaching a person by voice only: the simulated phone presses 2; the
    TwiML reads the answer back and the board counts it."""
    import asyncio

    from tocsin.core.settings import Settings
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.voice_wiring import start_voice_simulator, voice_sender_factories
    from tocsin.dispatch.worker import Simulators, stop_simulators

    settings = Settings(voice_retry_seconds=1, voice_simulator_time_scale=0.01,
                        voice_calls_per_minute=600, voice_trunk=4)
    cid = await asyncio.to_thread(_launch, engine, svc.AnswerSetup(["Ja", "Nee"], quota=1),
                                  ["voice"])
    run = await asyncio.to_thread(svc.run_quotas, engine)
    assert run.actions[cid] == [("send", "+32470000001", "voice")]
    sims = Simulators("", 0, "", 0)
    await start_voice_simulator(sims, engine, settings, seed=1,
                                script={"+32470000001": ["answered:2"]})
    try:
        unfinished = await send_campaign(engine, cid, voice_sender_factories(settings, sims),
                                         send_timeout=30, settings=settings)
    finally:
        await stop_simulators(sims)
    assert unfinished == []
    call = next(iter(sims.voice.calls.values()))  # type: ignore[attr-defined]
    assert call.said[0][1].endswith("Druk 1 voor Ja. Druk 2 voor Nee.")   # An speaks Dutch
    assert call.said[-1] == ("nl-BE", "U hebt geantwoord: Nee. Dank u.")
    b = await asyncio.to_thread(svc.board, engine, cid, None)
    assert [o["count"] for o in b["options"]] == [0, 1]
    assert b["answers"][0]["channel"] == "voice"


def test_cli_send_with_answers(engine: Engine, tmp_path: Any,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TOCSIN_VAR_DIR", str(tmp_path))
    import_contacts(engine, PEOPLE, HALLE, "Vrijwilligers")
    base = ["campaign", "send", "--authority", HALLE, "--list", "Vrijwilligers",
            "--text", "nl=Wie kan komen?", "--channels", "sms", "--kind", "group",
            "--receipt-timeout", "0"]
    bad = CliRunner().invoke(app, [*base, "--answer", "Ja"])
    assert bad.exit_code == 1 and "answers" in bad.output and "Traceback" not in bad.output
    ok = CliRunner().invoke(app, [*base, "--answer", "Ja", "--answer", "Nee"])
    assert ok.exit_code == 0, ok.output
    with read_transaction(engine) as s:
        call = s.scalars(sa.select(AnswerCall)).one()
    assert call.options == ["Ja", "Nee"] and call.quota is None


def test_cli_reply_simulates_an_inbound_answer(engine: Engine, tmp_path: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`tocsin campaign reply` goes through the inbound path: the answer is on the board
    (the demo's way to show an answer arriving)."""
    from typer.testing import CliRunner

    from tocsin.cli import app

    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TOCSIN_VAR_DIR", str(tmp_path))
    import_contacts(engine, PEOPLE, HALLE, "Vrijwilligers")
    sent = CliRunner().invoke(app, [
        "campaign", "send", "--authority", HALLE, "--list", "Vrijwilligers", "--text",
        "nl=Wie kan komen?", "--channels", "sms", "--kind", "group", "--receipt-timeout", "0",
        "--answer", "Ja", "--answer", "Nee"])
    assert sent.exit_code == 0, sent.output
    with read_transaction(engine) as s:
        call = s.scalars(sa.select(AnswerCall)).one()
        cid = call.campaign_id
    number = PEOPLE.decode().splitlines()[1].split(",")[1]
    bad = CliRunner().invoke(app, ["campaign", "reply", "--from", "112", "--text", "1"])
    assert bad.exit_code == 1 and "from" in bad.output and "Traceback" not in bad.output
    ok = CliRunner().invoke(app, ["campaign", "reply", "--from", number, "--text", "2",
                                  "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout.strip().splitlines()[-1])["option"] == 2
    b = svc.board(engine, cid, None)
    assert [o["count"] for o in b["options"]] == [0, 1]
