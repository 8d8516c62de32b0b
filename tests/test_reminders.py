"""The yearly "is this still correct?" e-mail (issue 10 point 5, docs/decisions/0023): sent
once at the anniversary through a real SMTP conversation with the sink, in the citizen's
language, with no link carrying a token; never twice (two runs, two workers), never to
an unverified e-mail or an erased citizen; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.datastructures import MultiDict
from typer.testing import CliRunner

from test_portal import FORM, SECRET, T0, _register
from tocsin.channels.simulators.smtp_sink import SmtpSink
from tocsin.cli import app
from tocsin.core.settings import Settings
from tocsin.dispatch.transactional import ChannelCodeSender, MemoryOutbox
from tocsin.subscribers.gdpr import erase_subscriber
from tocsin.subscribers.registration import parse_profile, update_profile
from tocsin.subscribers.reminders import portal_address, reminder_message, send_reminders

YEAR = dt.timedelta(days=365)
PORTAL = "alert.example.be"


@pytest.fixture
def smtp() -> Iterator[Any]:
    sink = SmtpSink()
    sink.start()
    yield SimpleNamespace(smtp=sink, smtp_host="127.0.0.1", smtp_port=sink.port)
    sink.stop()


def _sender(smtp: Any, tmp_path: Path) -> ChannelCodeSender:
    return ChannelCodeSender(Settings(var_dir=tmp_path), lambda: smtp)


def _citizens(engine: Any) -> dict[str, int]:
    """Three portal registrations at T0: e-mail in French, e-mail in Dutch (changed to
    Dutch), and a mobile number only."""
    outbox = MemoryOutbox()
    _, fr = _register(engine, outbox, "anne@example.org", "anne@example.org")
    _, nl = _register(engine, outbox, "bart@example.org", "bart@example.org")
    form = MultiDict([*((k, v) for k, v in FORM.items() if k not in ("language", "channels")),
                      ("language", "nl"), ("channels", "sms"), ("channels", "email")])
    update_profile(engine, nl, parse_profile(form), "192.0.2.1", T0)
    _, mobile = _register(engine, outbox, "0470 11 22 33", "+32470112233")
    return {"fr": fr, "nl": nl, "mobile": mobile}


def _mails(smtp: Any) -> list[tuple[list[str], str, str]]:
    return [(m.recipients, str(m.message["Subject"]), m.message.get_content())
            for m in smtp.smtp.messages]


def test_sent_once_at_the_anniversary_in_the_citizens_language(
        any_engine: Any, smtp: Any, tmp_path: Path) -> None:
    engine = any_engine
    ids = _citizens(engine)
    sender = _sender(smtp, tmp_path)
    # not before the year is over
    early = send_reminders(engine, sender, portal=PORTAL, limit=10, now=T0 + YEAR / 2)
    assert (early.due, early.sent) == (0, 0) and _mails(smtp) == []
    report = send_reminders(engine, sender, portal=PORTAL, limit=10,
                            now=T0 + YEAR + dt.timedelta(hours=1))
    assert report.sent == 2 and sorted(report.subscriber_ids) == sorted([ids["fr"], ids["nl"]])
    mails = {tuple(r): (subject, body) for r, subject, body in _mails(smtp)}
    assert set(mails) == {("anne@example.org",), ("bart@example.org",)}
    subject, body = mails[("anne@example.org",)]
    assert "toujours correcte" in subject and "STOP" in body and PORTAL in body
    assert "adresses e-mail : 1" in body or "adresses e-mail: 1" in body
    nl_subject, nl_body = mails[("bart@example.org",)]
    assert "nog juist" in nl_subject and "STOP" in nl_body and "sms" in nl_body.lower()
    for _, text in mails.values():
        assert not re.search(r"https?://|token|/me\b|/register", text)
        assert "anne@example.org" not in text and "bart@example.org" not in text
        assert "Gare" not in text  # no address, no street
    # a second run, the same day or later in the year: nothing more
    for later in (T0 + YEAR + dt.timedelta(hours=2), T0 + YEAR + dt.timedelta(days=200)):
        again = send_reminders(engine, sender, portal=PORTAL, limit=10, now=later)
        assert (again.due, again.sent) == (0, 0)
    assert len(_mails(smtp)) == 2
    # next year, again once
    nxt = send_reminders(engine, sender, portal=PORTAL, limit=10,
                         now=T0 + 2 * YEAR + dt.timedelta(days=1))
    assert nxt.sent == 2 and len(_mails(smtp)) == 4


def test_not_to_unverified_invalid_or_erased(
        engine: Any, smtp: Any, tmp_path: Path) -> None:
    ids = _citizens(engine)
    sender = _sender(smtp, tmp_path)
    with engine.begin() as c:  # Bart's e-mail bounced: it is invalid
        c.execute(sa.text("UPDATE contact_point SET invalid_at = :t WHERE value = :v"),
                  {"t": T0, "v": "bart@example.org"})
    erase_subscriber(engine, ids["fr"], SECRET)
    assert send_reminders(engine, sender, portal=PORTAL, limit=10,
                          now=T0 + YEAR + dt.timedelta(days=1)).due == 0
    # an unverified e-mail is no e-mail
    with engine.begin() as c:
        c.execute(sa.text("UPDATE contact_point SET invalid_at = NULL, verified_at = NULL "
                          "WHERE value = :v"), {"v": "bart@example.org"})
    assert send_reminders(engine, sender, portal=PORTAL, limit=10,
                          now=T0 + YEAR + dt.timedelta(days=1)).due == 0
    assert _mails(smtp) == []


def test_profile_change_postpones_and_limit_throttles(engine: Any, smtp: Any,
                                                      tmp_path: Path) -> None:
    ids = _citizens(engine)
    sender = _sender(smtp, tmp_path)
    update_profile(engine, ids["fr"], parse_profile(FORM), "192.0.2.1",
                   T0 + dt.timedelta(days=100))
    first = send_reminders(engine, sender, portal=PORTAL, limit=1,
                           now=T0 + YEAR + dt.timedelta(days=1))
    assert first.subscriber_ids == [ids["nl"]]  # Anne changed her profile since
    assert send_reminders(engine, sender, portal=PORTAL, limit=10,
                          now=T0 + YEAR + dt.timedelta(days=1)).sent == 0
    assert send_reminders(engine, sender, portal=PORTAL, limit=10,
                          now=T0 + YEAR + dt.timedelta(days=101)).subscriber_ids == [ids["fr"]]
    # a refused e-mail is tried again on the next run
    refused = MemoryOutbox(accept=False)
    now = T0 + 2 * YEAR + dt.timedelta(days=2)
    assert send_reminders(engine, refused, portal=PORTAL, limit=10, now=now).failed == 1
    assert send_reminders(engine, MemoryOutbox(), portal=PORTAL, limit=10, now=now).sent == 1


def test_two_workers_at_once_send_each_once(any_engine: Any) -> None:
    engine = any_engine
    _citizens(engine)
    outbox = MemoryOutbox()
    errors: list[BaseException] = []
    now = T0 + YEAR + dt.timedelta(days=1)

    def run() -> None:
        try:
            send_reminders(engine, outbox, portal=PORTAL, limit=10, now=now)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(m.address for m in outbox.messages) == ["anne@example.org",
                                                          "bart@example.org"]


def test_every_language_is_translated() -> None:
    counts = {"mobile": 1, "landline": 0, "email": 1, "address": 2}
    texts = {lang: reminder_message(lang, counts, ["sms", "email"], PORTAL)
             for lang in ("fr", "nl", "de", "en")}
    assert len({t for t, _ in texts.values()}) == 4 and len({s for _, s in texts.values()}) == 4
    assert "E-Mail" in texts["de"][0] and "STOP" in texts["de"][0]
    assert portal_address("https://alert.example.be/") == "alert.example.be"


def test_cli_dry_run_and_json(engine: Any, monkeypatch: pytest.MonkeyPatch, smtp: Any) -> None:
    from tocsin.core.settings import get_settings

    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    _citizens(engine)

    def registered(ago: dt.timedelta) -> None:
        at = dt.datetime.now(dt.UTC) - ago
        with engine.begin() as c:
            c.execute(sa.text("UPDATE subscriber SET created_at = :t"), {"t": at})
            c.execute(sa.text("UPDATE subscriber_profile SET updated_at = :t"), {"t": at})
            c.execute(sa.text("UPDATE contact_point SET verified_at = :t"), {"t": at})

    runner = CliRunner()
    registered(dt.timedelta(days=1))
    r = runner.invoke(app, ["subscribers", "remind", "--dry-run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["due"] == 0  # registered yesterday
    registered(YEAR + dt.timedelta(days=1))
    r = runner.invoke(app, ["subscribers", "remind", "--dry-run", "--json"])
    out = json.loads(r.stdout)
    assert out["due"] == 2 and out["dry_run"] and out["sent"] == 0
    assert runner.invoke(app, ["subscribers", "remind"]).exit_code == 1  # no SMTP URL
    monkeypatch.setenv("TOCSIN_SMTP_URL", f"smtp://127.0.0.1:{smtp.smtp_port}")
    get_settings.cache_clear()
    r = runner.invoke(app, ["subscribers", "remind", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sent"] == 2 and len(_mails(smtp)) == 2
    r = runner.invoke(app, ["subscribers", "remind", "--json"])
    assert json.loads(r.stdout)["sent"] == 0 and len(_mails(smtp)) == 2
