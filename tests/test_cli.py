"""The ``tocsin`` command as users call it: bad input exits 1 with nothing written, an
unreachable SMSC never stops the e-mail and CAP of the same alert (exit 3)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tocsin.channels.simulators.smtp_sink import SmtpSink
from tocsin.cli import app
from tocsin.core.settings import get_settings

runner = CliRunner()

BEERSEL_BOX = {"type": "Polygon", "coordinates": [[[4.295, 50.7445], [4.311, 50.7445],
                                                   [4.311, 50.754], [4.295, 50.754],
                                                   [4.295, 50.7445]]]}
LIEGE_BOX = {"type": "Polygon", "coordinates": [[[5.55, 50.62], [5.6, 50.62], [5.6, 50.65],
                                                 [5.55, 50.65], [5.55, 50.62]]]}


@pytest.fixture
def db(engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    csv = tmp_path / "subs.csv"
    csv.write_text("subscriber_id,language,mobile,email,lat,lon\n"
                   "S1,fr,+32470123456,s1@example.org,50.7480,4.3000\n"
                   "S2,nl,+32470123457,s2@example.org,50.7500,4.3050\n")
    result = runner.invoke(app, ["subscribers", "import", str(csv)])
    assert result.exit_code == 0, result.output
    return engine


def _campaigns(engine) -> int:
    with engine.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM campaign")).scalar_one()


def _write(tmp_path: Path, name: str, content: object) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


@pytest.mark.parametrize("args, field", [
    (["--area", "{LIEGE}", "--text", "fr=x"], "area"),
    (["--area", "{BROKEN}", "--text", "fr=x"], "area"),
    (["--area", "{BEERSEL}", "--text", "fr=x", "--text", "de="], "text.de"),
    (["--area", "{BEERSEL}"], "text"),
    (["--area", "{BEERSEL}", "--text", "fr=x", "--channels", "sms,fax"], "channels"),
    (["--area", "{BEERSEL}", "--text", "fr=x", "--kind", "promo"], "kind"),
    (["--municipality", "99999", "--text", "fr=x"], "municipality"),
    (["--area", "{BEERSEL}", "--text", "fr=x", "--environment", "live", "--yes"], "channels"),
])
def test_bad_input_exits_1_naming_the_field_and_writes_nothing(db, tmp_path, args, field):
    files = {"{LIEGE}": _write(tmp_path, "liege.geojson", LIEGE_BOX),
             "{BROKEN}": _write(tmp_path, "broken.geojson", '{"type": "Polygon", "coord'),
             "{BEERSEL}": _write(tmp_path, "beersel.geojson", BEERSEL_BOX)}
    args = [files.get(a, a) for a in args]
    result = runner.invoke(app, ["campaign", "send", "--authority", "23003", *args, "--json"])
    assert result.exit_code == 1, result.output
    assert f"error: {field}:" in result.output
    assert "Traceback" not in result.output
    assert _campaigns(db) == 0


def test_unknown_authority(db, tmp_path):
    result = runner.invoke(app, ["campaign", "send", "--authority", "12345", "--area",
                                 _write(tmp_path, "a.geojson", BEERSEL_BOX), "--text", "fr=x"])
    assert result.exit_code == 1
    assert "error: authority: unknown authority" in result.output
    assert _campaigns(db) == 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_unreachable_smsc_does_not_stop_email_and_cap(db, tmp_path, monkeypatch):
    sink = SmtpSink(keep=True).start()
    try:
        monkeypatch.setenv("TOCSIN_SMPP_URL", f"smpp://tocsin:pw@127.0.0.1:{_closed_port()}")
        monkeypatch.setenv("TOCSIN_SMTP_URL", sink.url)
        get_settings.cache_clear()
        area = _write(tmp_path, "a.geojson", BEERSEL_BOX)
        estimate = json.loads(runner.invoke(app, [
            "campaign", "estimate", "--authority", "23003", "--area", area,
            "--environment", "live", "--json"]).stdout)
        result = runner.invoke(app, [
            "campaign", "send", "--authority", "23003", "--area", area, "--text", "fr=Alerte",
            "--text", "nl=Alarm", "--environment", "live", "--yes",
            "--confirm-area", estimate["area_name"], "--confirm-count",
            str(estimate["deliveries"]), "--send-timeout", "3", "--json"])
    finally:
        sink.stop()
    assert result.exit_code == 3, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["unfinished_channels"] == ["sms"]
    assert report["channels"]["sms"]["by_status"] == {"queued": 2}
    assert report["channels"]["email"]["by_status"] == {"sent": 2}
    assert report["channels"]["cap"]["published"] is True
    assert sorted(r for r, _ in sink.deliveries()) == ["s1@example.org", "s2@example.org"]
    cap = runner.invoke(app, ["cap", "show", report["cap_identifier"]])
    assert cap.exit_code == 0 and "<status>Actual</status>" in cap.stdout


def test_simulation_send_json_report(db, tmp_path):
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "23003", "--municipality", "23003",
        "--text", "fr=Test: restez à l'intérieur.", "--text", "nl=Test: blijf binnen.",
        "--channels", "sms,email,cap", "--json", "--receipt-timeout", "10"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout.strip().splitlines()[-1])
    assert r["environment"] == "simulation"
    assert r["channels"]["sms"]["recipients"] == 2
    assert r["channels"]["sms"]["by_status"] == {"delivered": 2}
    assert r["channels"]["sms"]["by_language"] == {"fr": 1, "nl": 1}
    assert r["channels"]["email"]["by_status"] == {"sent": 2}
    assert r["channels"]["sms"]["cost_eur"] == pytest.approx(0.11)
    assert r["channels"]["sms"]["first_sent_at"].endswith("Z")
    cap = runner.invoke(app, ["cap", "show", r["cap_identifier"]])
    assert "<status>Exercise</status>" in cap.stdout
    assert "<valueName>NIS</valueName>" in cap.stdout


def test_message_preview_json():
    result = runner.invoke(app, ["message", "preview", "--text", "Restez à l’intérieur", "--json"])
    assert result.exit_code == 0
    p = json.loads(result.stdout)
    assert p["encoding"] == "UCS-2" and p["non_gsm_chars"] == ["’"]


@pytest.mark.parametrize("args, field", [
    (["--text", "nl=" + "x" * 1000], "text.nl"),
    (["--text", "nl=ok", "--urgency", "Soon"], "cap.urgency"),
    (["--text", "nl=ok", "--severity", "Huge"], "cap.severity"),
    (["--text", "nl=ok", "--category", "Weird"], "cap.category"),
    (["--text", "nl=bad\x01char"], "text.nl"),
])
def test_sms_too_long_and_bad_cap_values_are_input_errors(db, args, field):
    result = runner.invoke(app, ["campaign", "send", "--authority", "23003",
                                 "--municipality", "23003", *args])
    assert result.exit_code == 1, result.output
    assert f"error: {field}:" in result.output
    assert "Traceback" not in result.output
    assert _campaigns(db) == 0


def test_follow_ups_accept_the_cap_identifier_and_simulation_is_not_billed(db):
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "23003", "--municipality", "23003",
        "--text", "fr=Test: restez à l'intérieur.", "--text", "nl=Test: blijf binnen.",
        "--channels", "sms,cap", "--receipt-timeout", "5"])
    assert result.exit_code == 0, result.output
    assert "not billed (simulation)" in result.stdout
    assert "EUR" in result.stdout  # the estimate is still shown
    with db.connect() as c:
        ident = c.execute(sa.text("SELECT cap_identifier FROM campaign")).scalar_one()
    assert ident.startswith("BE-TOCSIN-")
    result = runner.invoke(app, ["campaign", "update", ident, "--text", "nl=Update",
                                 "--text", "fr=Mise à jour", "--json",
                                 "--receipt-timeout", "5"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["label"] == "Update"
    result = runner.invoke(app, ["campaign", "cancel", ident, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cap_identifier"].startswith("BE-TOCSIN-")
    result = runner.invoke(app, ["campaign", "all-clear", ident])
    assert result.exit_code == 1 and "error: campaign_id:" in result.output
    assert "cancelled" in result.output


@pytest.mark.parametrize("option, value, field", [
    ("--at", "9999-12-31T23:59:59-14:00", "scheduled_for"),
    ("--expires", "0001-01-01T00:30+14:00", "expires_at"),
    ("--expires", "9999-12-31 23:59", "expires_at"),
    ("--content", "fr.email_subject=Alerte\r\nBcc: x@example.org", "content.fr.email_subject"),
])
def test_absurd_times_and_header_injection_are_input_errors(db, option, value, field):
    result = runner.invoke(app, ["campaign", "send", "--authority", "23003",
                                 "--municipality", "23003", "--text", "fr=x",
                                 option, value])
    assert result.exit_code == 1, result.output
    assert f"error: {field}:" in result.output
    assert "Traceback" not in result.output
    assert _campaigns(db) == 0


@pytest.mark.parametrize("variable, value", [
    ("TOCSIN_VOICE_CALLER", "078151789"),        # not E.164
    ("TOCSIN_SMS_SOURCE", "Crisis Centre BE"),   # alphanumeric sender over 11 characters
    ("TOCSIN_CAP_SENDER", "crisis centre"),      # CAP 1.2 §3.2.1: no spaces
    ("TOCSIN_MAIL_FROM", "not-an-address"),
])
def test_invalid_sender_identity_is_refused_naming_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["message", "preview", "--text", "x"])
    assert result.exit_code == 1
    assert variable in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("variable, value, named", [
    ("TOCSIN_SMPP_URL", "smpp://acct:S3cretPW@127.0.0.1:2775?concat=foo", "concat"),
    ("TOCSIN_SMPP_URL", "smpp://acct:S3cretPW@127.0.0.1:2775?udh_ref=12", "udh_ref"),
    ("TOCSIN_SMPP_URL", "acct:S3cretPW@127.0.0.1:2775", "TOCSIN_SMPP_URL"),     # no scheme
    ("TOCSIN_SMPP_URL", "smpp://acct:S3c@retPW@127.0.0.1:2775?binds=x", "binds"),
    ("TOCSIN_SMTP_URL", "foo://user:S3cretPW@127.0.0.1:25", "TOCSIN_SMTP_URL"),
])
def test_a_wrong_provider_url_is_one_line_before_anything_starts(monkeypatch, variable,
                                                                 value, named):
    """A provider URL that cannot be used stops every command at once with one line
    naming the setting and the part, never a traceback, and never the password (a
    trial found a 128-line traceback, and a password shown when the URL had no scheme
    or an '@' in it)."""
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["message", "preview", "--text", "x"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.startswith("configuration error: ")
    assert named in result.output and "Traceback" not in result.output
    assert "S3c" not in result.output and "retPW" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("columns", ["40", "80"])
def test_error_lines_are_never_wrapped(columns: str, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    """An error names the file, the field and the reason on one line, whatever the
    terminal width, so that ``grep`` finds it (issue 7, point 7)."""
    monkeypatch.setenv("COLUMNS", columns)
    missing = tmp_path / ("a-rather-long-folder-name-for-a-narrow-terminal" * 2) / "x.csv"
    result = runner.invoke(app, ["subscribers", "import", str(missing)])
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.startswith("error"))
    assert str(missing) in line


def test_send_prints_every_warning_of_the_estimate_before_sending(db, monkeypatch):
    """Issue 7.5/7.14: a wrong-language text, a missing official language, channels that
    reach nobody and any other warning (e.g. a cut area) are printed before sending."""
    import tocsin.campaigns.launch as launch_module

    real = launch_module.estimate_warnings
    cut = {"code": "area_cut", "field": "area",
           "message": "0.4 km² (3 %) of the drawn area lies outside Bruxelles and is left out"}
    monkeypatch.setattr(launch_module, "estimate_warnings", lambda c, r: [*real(c, r), cut])
    # The federal authority (fr, nl, de) over Beersel; the "Dutch" text is French; an
    # information message and nobody there opted in to information.
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "BE", "--municipality", "23003",
        "--kind", "information",
        "--text", "nl=Restez à l'intérieur, fermez les portes et les fenêtres et écoutez "
                  "la radio.", "--channels", "sms,email,cap", "--receipt-timeout", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    warnings = [i for i, line in enumerate(lines) if line.startswith("warning: ")]
    text = "\n".join(lines[i] for i in warnings)
    assert "warning: text.nl: The Dutch text reads as French" in text
    assert "warning: text.fr: No French text" in text
    assert "warning: channels.sms: No subscriber will receive an SMS" in text
    assert "warning: channels.email: No subscriber will receive an e-mail" in text
    assert "warning: text.de: No German text" in text
    assert "opted in to information" in text
    assert "warning: area: 0.4 km² (3 %) of the drawn area lies outside Bruxelles" in text
    accepted = next(i for i, line in enumerate(lines) if "accepted" in line)
    assert warnings and max(warnings) < accepted


def test_cancelling_a_scheduled_message_says_nothing_was_sent(db):
    import datetime as dt

    day = dt.date.today() + dt.timedelta(days=3)
    result = runner.invoke(app, ["campaign", "send", "--authority", "23003",
                                 "--municipality", "23003", "--text", "fr=Alerte",
                                 "--at", f"{day:%Y-%m-%d} 12:00", "--json"])
    assert result.exit_code == 0, result.output
    cid = json.loads(result.stdout)["campaign_id"]
    result = runner.invoke(app, ["campaign", "cancel", cid])
    assert result.exit_code == 0, result.output
    assert "The scheduled message will not be sent; nothing had been sent." in result.output
    assert "stopped" not in result.output


def test_default_database_does_not_depend_on_the_current_folder(monkeypatch, tmp_path):
    """Run from another folder, the CLI uses the same embedded database as ``make demo``
    (the checkout's var/ here), never ``./var`` of the current folder (issue 7, point 2)."""
    from tocsin.core.settings import Settings, default_var_dir

    monkeypatch.delenv("TOCSIN_VAR_DIR")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.var_dir == default_var_dir() and settings.var_dir.is_absolute()
    assert tmp_path not in settings.var_dir.parents
    assert settings.resolved_database_url() == f"sqlite:///{settings.var_dir / 'tocsin.db'}"
    assert not (tmp_path / "var").exists()


def test_no_command_creates_or_writes_an_uninitialised_database(monkeypatch, tmp_path):
    """An import into a database nobody initialised is refused, naming the file and the
    fix; no file is created. Only ``db init`` creates it, and says where (point 2)."""
    var = tmp_path / "elsewhere"
    monkeypatch.setenv("TOCSIN_VAR_DIR", str(var))
    get_settings.cache_clear()
    csv = tmp_path / "subs.csv"
    csv.write_text("subscriber_id,language,mobile,email,lat,lon\n"
                   "S1,fr,+32470123456,s1@example.org,50.7480,4.3000\n")
    for args in (["subscribers", "import", str(csv)], ["cap", "key", "list"],
                 ["campaign", "cancel", "X"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        line = next(x for x in result.output.splitlines() if x.startswith("error"))
        assert str(var / "tocsin.db") in line and "tocsin db init" in line, line
        assert "Traceback" not in result.output
    assert not var.exists()

    result = runner.invoke(app, ["db", "upgrade"])  # schema, but no authorities yet
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["subscribers", "import", str(csv)])
    assert result.exit_code == 1
    assert "no authorities" in result.output and "tocsin db init" in result.output

    result = runner.invoke(app, ["db", "init"])
    assert result.exit_code == 0, result.output
    assert f"database: {var / 'tocsin.db'}" in result.output
    result = runner.invoke(app, ["subscribers", "import", str(csv)])
    assert result.exit_code == 0, result.output
    assert f"database: {var / 'tocsin.db'}" in result.output


def test_cap_links_use_the_public_url_setting(db, monkeypatch):
    """Every absolute link the CLI prints starts with ``TOCSIN_PUBLIC_URL``, not a fixed
    port (issue 7, point 11)."""
    monkeypatch.setenv("TOCSIN_PUBLIC_URL", "https://alert.example.be/")
    get_settings.cache_clear()
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "23003", "--municipality", "23003",
        "--text", "fr=Test.", "--text", "nl=Test.", "--channels", "cap", "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.stdout.strip().splitlines()[-1])
    assert r["channels"]["cap"]["url"] == (
        f"https://alert.example.be/simulation/cap/{r['cap_identifier']}.xml")
    result = runner.invoke(app, [
        "campaign", "send", "--authority", "23003", "--municipality", "23003",
        "--text", "fr=Test.", "--text", "nl=Test.", "--channels", "cap"])
    assert "https://alert.example.be/simulation/cap/" in result.stdout


def test_an_invalid_public_url_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TOCSIN_PUBLIC_URL", "alert.example.be")
    result = CliRunner().invoke(app, ["message", "preview", "--text", "x"])
    assert result.exit_code == 1
    assert "TOCSIN_PUBLIC_URL" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_a_csv_field_over_the_limit_is_a_clear_error_not_a_traceback(db, tmp_path, as_json):
    """Issue 7, point 6: with and without --json, the line and the column, exit 1."""
    import csv as csv_module

    path = tmp_path / "huge.csv"
    path.write_text("subscriber_id,language,mobile,email,lat,lon\n"
                    f"S9,fr,,{'x' * (csv_module.field_size_limit() + 1)},50.75,4.30\n")
    result = runner.invoke(app, ["subscribers", "import", str(path)]
                           + (["--json"] if as_json else []))
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert any(x.startswith("line 2: email") and "longer than" in x
               for x in result.stderr.splitlines()), result.stderr
    if as_json:
        errors = json.loads(result.stdout)["errors"]
        assert [(e["line"], e["field"]) for e in errors] == [(2, "email")]


@pytest.mark.parametrize("extra, flag", [
    ([], "--confirm-area"),
    (["--confirm-area", "{NAME}"], "--confirm-count"),
    (["--confirm-area", "{NAME}", "--confirm-count", "999"], "--confirm-count"),
    (["--confirm-area", "Brussel", "--confirm-count", "{COUNT}"], "--confirm-area"),
])
def test_live_yes_needs_the_area_name_and_count(db, tmp_path, monkeypatch, extra, flag):
    """F34: ``--yes`` for a live campaign requires the same facts an operator types in the
    web dialog; a wrong or missing one names its flag and writes nothing."""
    sink = SmtpSink(keep=True).start()
    try:
        monkeypatch.setenv("TOCSIN_SMTP_URL", sink.url)
        get_settings.cache_clear()
        area = _write(tmp_path, "a.geojson", BEERSEL_BOX)
        estimate = json.loads(runner.invoke(app, [
            "campaign", "estimate", "--authority", "23003", "--area", area, "--channels",
            "email", "--environment", "live", "--json"]).stdout)
        assert estimate["deliveries"] == 2
        args = [{"{NAME}": estimate["area_name"], "{COUNT}": "2"}.get(a, a) for a in extra]
        result = runner.invoke(app, [
            "campaign", "send", "--authority", "23003", "--area", area, "--text", "fr=Alerte",
            "--text", "nl=Alarm", "--channels", "email", "--environment", "live", "--yes",
            *args])
    finally:
        sink.stop()
    assert result.exit_code == 1, result.output
    assert f"error: {flag}:" in result.output
    assert _campaigns(db) == 0


def test_estimate_needs_no_text_and_names_denials(db, tmp_path):
    ok = runner.invoke(app, ["campaign", "estimate", "--authority", "23003", "--municipality",
                             "23003", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["recipients"]["sms"] == 2
    denied = runner.invoke(app, ["campaign", "estimate", "--authority", "23027",
                                 "--municipality", "23003", "--json"])
    assert denied.exit_code == 1 and "outside_territory" in denied.output
    assert "Traceback" not in denied.output
