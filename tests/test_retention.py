"""Retention of per-recipient data (issue 10 point 5, docs/decisions/0023): deliveries of
campaigns finished more than N days ago, and everything tied to them, hold keyed
pseudonyms instead of numbers and e-mail addresses; newer and unfinished campaigns are
untouched; reports still render; runs are idempotent and may overlap (PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from dbscan import tables_holding
from tocsin.authorities.audit import verify_chain
from tocsin.campaigns.report_export import export_report
from tocsin.cli import app
from tocsin.core.settings import Settings
from tocsin.dispatch.retention import pseudonym, retention_key, run_retention

runner = CliRunner()
SECRET = "retention-test-secret"
NUMBERS = ["+32470123456", "+32470123457", "+32470123458"]
EMAILS = ["s1@example.org", "s2@example.org", "s3@example.org"]


def _send(engine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> str:
    """A finished simulation campaign to Beersel (real SMPP and SMTP simulators): 3
    subscribers on SMS and e-mail."""
    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TOCSIN_SECRET_KEY", SECRET)
    subs = tmp_path / f"{name}.csv"
    subs.write_text("subscriber_id,language,mobile,email,lat,lon\n" + "".join(
        f"{name}{i},fr,{n},{e},50.7480,4.3000\n"
        for i, (n, e) in enumerate(zip(NUMBERS, EMAILS, strict=True))))
    assert runner.invoke(app, ["subscribers", "import", str(subs)]).exit_code == 0
    r = runner.invoke(app, ["campaign", "send", "--authority", "23003", "--municipality",
                            "23003", "--text", "fr=Test: restez à l'intérieur.",
                            "--channels", "sms,email", "--json", "--receipt-timeout", "10"])
    assert r.exit_code == 0, r.output
    return str(json.loads(r.stdout.strip().splitlines()[-1])["campaign_id"])


def _age(engine: Any, cid: str, days: float) -> None:
    """Make ``cid`` finished ``days`` ago, with the answers and calls a group call leaves."""
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE campaign SET finished_at = :t WHERE id = :c"),
                  {"t": then, "c": cid})
        c.execute(sa.text("UPDATE delivery SET final_at = :t WHERE campaign_id = :c AND "
                          "final_at IS NOT NULL"), {"t": then, "c": cid})


def _extras(engine: Any, cid: str) -> None:
    """What a group call and a voice channel leave beside the deliveries."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as c:
        sms = c.execute(sa.text("SELECT id FROM delivery WHERE campaign_id = :c AND "
                                "address = :a"), {"c": cid, "a": NUMBERS[0]}).scalar_one()
        c.execute(sa.text(
            "UPDATE delivery SET state = 'failed', error = :e WHERE id = :i"),
            {"e": f"refused: {NUMBERS[0]} barred", "i": sms})
        c.execute(sa.text(
            "INSERT INTO voice_call (delivery_id, campaign_id, route, attempt, "
            "provider_call_sid, status, started_at, duration_s, digits, acknowledged, error) "
            "VALUES (:d, :c, 'simulation', 1, 'CA123', 'completed', :t, 42, '1', true, :e)"),
            {"d": sms, "c": cid, "t": now, "e": f"call to {NUMBERS[0]} ended"})
        c.execute(sa.text(
            "INSERT INTO campaign_answer (campaign_id, respondent, name, channel, address, "
            "option, answered_at, possible_scanner) VALUES "
            "(:c, :a, 'Jan Peeters', 'sms', :a, 1, :t, false)"),
            {"c": cid, "a": NUMBERS[1], "t": now})
        c.execute(sa.text(
            "INSERT INTO quota_person (campaign_id, key, position, name, mobile, email, "
            "language, channels, state, sent) VALUES "
            "(:c, :k, 1, 'Jan Peeters', :k, :e, 'nl', 'sms,email', 'answered', 'sms')"),
            {"c": cid, "k": NUMBERS[1], "e": EMAILS[1]})
        c.execute(sa.text(
            "INSERT INTO inbound_message (channel, via, sender, recipient, text, received_at, "
            "campaign_id, option) VALUES ('sms', 'smpp', :s, '1789', :x, :t, :c, 1)"),
            {"s": NUMBERS[1], "x": f"1 ok, Jan {EMAILS[1]}", "t": now, "c": cid})




def _counts(engine: Any, cid: str) -> list[tuple[Any, ...]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(sa.text(
            "SELECT channel, state, count(*), sum(segments), sum(cost_eur) FROM delivery "
            "WHERE campaign_id = :c GROUP BY channel, state ORDER BY channel, state"),
            {"c": cid})]


def test_old_finished_campaign_is_pseudonymised_and_nothing_else(
        any_engine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine = any_engine
    old = _send(engine, monkeypatch, tmp_path, "A")
    _extras(engine, old)
    _age(engine, old, 31)
    recent = _send(engine, monkeypatch, tmp_path, "B")
    _age(engine, recent, 29)
    with engine.begin() as c:  # an old receipt, and an unmatched inbound SMS
        c.execute(sa.text("UPDATE delivery_receipt SET received_at = :t"),
                  {"t": dt.datetime.now(dt.UTC) - dt.timedelta(days=40)})
        c.execute(sa.text(
            "INSERT INTO inbound_message (channel, via, sender, text, received_at, reason) "
            "VALUES ('sms', 'webhook', :s, 'hello', :t, 'no_call')"),
            {"s": NUMBERS[2], "t": dt.datetime.now(dt.UTC) - dt.timedelta(days=40)})
    before_old, before_recent = _counts(engine, old), _counts(engine, recent)
    report_before = json.loads(export_report(engine, old, "json").content)

    settings = Settings(secret_key=SECRET)
    done = run_retention(engine, settings, owner="w1")
    assert done.campaign_ids == [old] and done.deliveries == 6, done
    assert (done.answers, done.quota_people, done.voice_calls) == (1, 1, 1)
    assert done.inbound == 2 and done.sms_ids >= 3 and done.receipts >= 3

    # counts, states, segments and costs unchanged; the report says the same
    assert _counts(engine, old) == before_old and _counts(engine, recent) == before_recent
    report_after = json.loads(export_report(engine, old, "json").content)
    for ch in ("sms", "email"):
        a, b = report_after["channels"][ch], report_before["channels"][ch]
        # the same, but the number inside a failure reason (now its pseudonym)
        assert {k: v for k, v in a.items() if a[k] != b[k]} in (
            {}, {"failure_reasons": {f"refused: {pseudonym(retention_key(SECRET), NUMBERS[0])}"
                                     " barred": 1}}), (a, b)
    key = retention_key(SECRET)
    with engine.connect() as c:
        addresses = set(c.execute(sa.text("SELECT address FROM delivery WHERE campaign_id = "
                                          ":c"), {"c": old}).scalars())
        assert addresses == {pseudonym(key, a) for a in NUMBERS + EMAILS}
        # the recent campaign keeps its recipients for its receipts and answers
        assert set(c.execute(sa.text("SELECT address FROM delivery WHERE campaign_id = :c"),
                             {"c": recent}).scalars()) == set(NUMBERS + EMAILS)
        assert c.execute(sa.text("SELECT error FROM delivery WHERE error LIKE 'refused:%'")
                         ).scalar_one() == f"refused: {pseudonym(key, NUMBERS[0])} barred"
        call = c.execute(sa.text("SELECT provider_call_sid, duration_s, acknowledged "
                                 "FROM voice_call")).one()
        assert call[0] is None and call[1] == 42 and call[2]
        assert c.execute(sa.text("SELECT count(*) FROM sms_message WHERE delivery_id IN "
                                 "(SELECT id FROM delivery WHERE campaign_id = :c)"),
                         {"c": old}).scalar() == 0
        assert c.execute(sa.text("SELECT count(*) FROM sms_message WHERE delivery_id IN "
                                 "(SELECT id FROM delivery WHERE campaign_id = :c)"),
                         {"c": recent}).scalar() == 3

    # Once the recent campaign's recipients leave the register, no table holds them
    # but the recent campaign's own (young) deliveries.
    with engine.begin() as c:
        c.execute(sa.text("DELETE FROM delivery WHERE campaign_id = :c"), {"c": recent})
        c.execute(sa.text("DELETE FROM contact_point"))
    assert tables_holding(engine, NUMBERS + EMAILS + ["Jan Peeters", "CA123"]) == []
    assert verify_chain(engine).ok

    # idempotent: nothing more to do, and the pseudonyms stay as they are
    again = run_retention(engine, settings, owner="w2")
    assert not again.changed and again.campaign_ids == []
    with engine.connect() as c:
        assert set(c.execute(sa.text("SELECT address FROM delivery WHERE campaign_id = :c"),
                             {"c": old}).scalars()) == addresses
        actions = list(c.execute(sa.text("SELECT detail FROM audit_log WHERE action = "
                                          "'retention.run' ORDER BY seq")).scalars())
    assert len(actions) == 2
    first = actions[0] if isinstance(actions[0], dict) else json.loads(actions[0])
    assert first["deliveries"] == 6 and first["days"] == 30
    assert verify_chain(engine).ok


def test_unfinished_campaigns_and_rows_are_never_touched(
        engine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cid = _send(engine, monkeypatch, tmp_path, "C")
    _age(engine, cid, 60)
    with engine.begin() as c:  # a campaign still sending, and one row not final
        c.execute(sa.text("UPDATE campaign SET status = 'sending' WHERE id = :c"), {"c": cid})
    assert run_retention(engine, Settings(secret_key=SECRET)).deliveries == 0
    with engine.begin() as c:
        c.execute(sa.text("UPDATE campaign SET status = 'finished' WHERE id = :c"), {"c": cid})
        c.execute(sa.text("UPDATE delivery SET state = 'in_flight', final_at = NULL WHERE "
                          "campaign_id = :c AND address = :a"), {"c": cid, "a": NUMBERS[0]})
    done = run_retention(engine, Settings(secret_key=SECRET))
    assert done.deliveries == 5 and done.waiting == 1 and done.campaigns == 0
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM delivery WHERE address = :a"),
                         {"a": NUMBERS[0]}).scalar() == 1
    # once final, the next run finishes it
    with engine.begin() as c:
        c.execute(sa.text("UPDATE delivery SET state = 'delivered' WHERE address = :a"),
                  {"a": NUMBERS[0]})
    done = run_retention(engine, Settings(secret_key=SECRET))
    assert (done.deliveries, done.campaigns, done.waiting) == (1, 1, 0)
    # a shorter period from the CLI, as JSON
    r = runner.invoke(app, ["retention", "run", "--days", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["days"] == 1 and out["deliveries"] == 0
    assert runner.invoke(app, ["retention", "run", "--days", "0"]).exit_code != 0
    assert runner.invoke(app, ["audit", "verify"]).exit_code == 0


def test_small_batches_and_concurrent_runs(
        any_engine: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two workers at once, 2 rows per transaction: every row done once, no error."""
    engine = any_engine
    ids = [_send(engine, monkeypatch, tmp_path, name) for name in ("D", "E")]
    for cid in ids:
        _age(engine, cid, 45)
    settings = Settings(secret_key=SECRET, retention_batch=2)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(owner: str) -> None:
        try:
            results.append(run_retention(engine, settings, owner=owner))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.deliveries for r in results) == 12
    assert sorted(c for r in results for c in r.campaign_ids) == sorted(ids)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM delivery WHERE address NOT LIKE "
                                 "'pseudo:%'")).scalar() == 0
        assert c.execute(sa.text("SELECT count(*) FROM campaign_retention WHERE done_at IS "
                                 "NOT NULL")).scalar() == 2
    assert verify_chain(engine).ok


# --- reports of a pseudonymised campaign ---------------------------------------------------

@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[TestClient, Any]]:
    from test_web import seed
    from tocsin.core.db import make_engine
    from tocsin.core.migrate import upgrade
    from tocsin.web.app import create_app

    eng = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(eng)
    seed(eng)
    settings = Settings(var_dir=tmp_path / "var", database_url=str(eng.url))
    with TestClient(create_app(eng, start_worker=False, settings=settings)) as c:
        yield c, eng


def test_reports_of_a_pseudonymised_campaign_render(web: tuple[TestClient, Any]) -> None:
    from test_web import login
    from weblogin import csrf_of

    client, engine = web
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO subscriber (external_id, language, created_at) "
                          "VALUES ('W1', 'fr', :t)"), {"t": dt.datetime.now(dt.UTC)})
        sid = c.execute(sa.text("SELECT id FROM subscriber WHERE external_id = 'W1'")).scalar()
        c.execute(sa.text("INSERT INTO contact_point (subscriber_id, kind, value, verified_at, "
                          "info_opt_in, voice) VALUES (:s, 'mobile', :v, :t, false, false)"),
                  {"s": sid, "v": NUMBERS[0], "t": dt.datetime.now(dt.UTC)})
        c.execute(sa.text("INSERT INTO address (subscriber_id, position, lat, lon, nis) "
                          "VALUES (:s, 0, 50.7, 4.55, '25112')"), {"s": sid})
    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"texts": {"fr": "Exercice: restez chez vous."}, "channels": ["sms", "cap"],
            "municipality_nis": "25112", "kind": "exercise"}
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    then = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    with engine.begin() as c:
        assert c.execute(sa.text("SELECT count(*) FROM delivery WHERE campaign_id = :c AND "
                                 "address = :a"), {"c": cid, "a": NUMBERS[0]}).scalar() == 1
        c.execute(sa.text("UPDATE delivery SET state = 'delivered', sent_at = :t, final_at = "
                          ":t, segments = 1, cost_eur = 0.055 WHERE campaign_id = :c"),
                  {"t": then, "c": cid})
        c.execute(sa.text("UPDATE campaign SET status = 'finished', finished_at = :t "
                          "WHERE id = :c"), {"t": then, "c": cid})
    before = client.get(f"/api/campaigns/{cid}/report").json()
    assert run_retention(engine, Settings(secret_key=SECRET)).deliveries >= 1
    assert client.get(f"/api/campaigns/{cid}/report").json()["channels"] == before["channels"]
    page = client.get(f"/campaigns/{cid}?lang=fr")
    assert page.status_code == 200 and NUMBERS[0] not in page.text
    pdf = client.get(f"/campaigns/{cid}/report.pdf?lang=nl")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert NUMBERS[0] not in text
    csv_text = client.get(f"/campaigns/{cid}/report.csv").text
    assert csv_text.startswith("Channel,State,Reason,Count") or "sms" in csv_text
    assert NUMBERS[0] not in csv_text


def test_the_worker_runs_it_periodically(engine: Any, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    import asyncio

    from tocsin.dispatch import worker as worker_module
    from tocsin.dispatch.transactional import MemoryOutbox

    cid = _send(engine, monkeypatch, tmp_path, "F")
    _age(engine, cid, 31)
    monkeypatch.setattr(worker_module, "PRIVACY_FIRST_SECONDS", 0.0)
    w = worker_module.Worker(engine, {}, settings=Settings(secret_key=SECRET,
                                                           privacy_check_seconds=1),
                             reminder_sender=MemoryOutbox())

    async def main() -> None:
        task = asyncio.create_task(w.run())
        for _ in range(100):
            await asyncio.sleep(0.1)
            with engine.connect() as c:
                if c.execute(sa.text("SELECT count(*) FROM campaign_retention WHERE "
                                     "done_at IS NOT NULL")).scalar():
                    break
        w.stop()
        await task

    asyncio.run(main())
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM delivery WHERE campaign_id = :c AND "
                                 "address LIKE 'pseudo:%'"), {"c": cid}).scalar() == 6
        assert c.execute(sa.text("SELECT actor FROM audit_log WHERE action = "
                                 "'retention.run'")).scalar() == "worker"


def test_per_recipient_list_shows_pseudonyms(engine: Any, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """A campaign to contact lists: after the period its per-recipient CSV rows stay,
    under their pseudonyms, with no number or address."""
    from tocsin.campaigns.report_export import recipient_rows

    cid = _send(engine, monkeypatch, tmp_path, "G")
    _age(engine, cid, 31)
    with engine.begin() as c:
        c.execute(sa.text("UPDATE campaign SET targets = :t WHERE id = :c"),
                  {"t": json.dumps({"lists": [], "groups": []}), "c": cid})
    run_retention(engine, Settings(secret_key=SECRET))
    rows = recipient_rows(engine, cid)
    key = retention_key(SECRET)
    assert sorted(r[0] for r in rows) == sorted(pseudonym(key, a) for a in NUMBERS + EMAILS)
    assert all(r[3] == "" for r in rows)
    text = export_report(engine, cid, "csv").content.decode("utf-8")
    assert pseudonym(key, NUMBERS[0]) in text
    assert not any(a in text for a in NUMBERS + EMAILS)
