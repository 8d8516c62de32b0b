"""Report files (SPEC F26): ``tocsin campaign report ID --format pdf|csv|json`` and the
web downloads. The CSV and the PDF say what the JSON report says."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from babel.dates import format_datetime
from fastapi.testclient import TestClient
from pypdf import PdfReader
from typer.testing import CliRunner

from tocsin.campaigns.report_export import BRUSSELS, _parse, export_report
from tocsin.campaigns.report_labels import LABELS
from tocsin.cli import app

runner = CliRunner()


def _send(engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A finished simulation campaign to Beersel: 3 subscribers on SMS and e-mail."""
    monkeypatch.setenv("TOCSIN_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    subs = tmp_path / "subs.csv"
    subs.write_text("subscriber_id,language,mobile,email,lat,lon\n"
                    "S1,fr,+32470123456,s1@example.org,50.7480,4.3000\n"
                    "S2,nl,+32470123457,s2@example.org,50.7500,4.3050\n"
                    "S3,nl,+32470123458,s3@example.org,50.7510,4.3040\n")
    assert runner.invoke(app, ["subscribers", "import", str(subs)]).exit_code == 0
    r = runner.invoke(app, ["campaign", "send", "--authority", "23003", "--municipality",
                            "23003", "--text", "fr=Test: restez à l'intérieur.",
                            "--text", "nl=Test: blijf binnen.", "--channels", "sms,email,cap",
                            "--json", "--receipt-timeout", "10"])
    assert r.exit_code == 0, r.output
    return str(json.loads(r.stdout.strip().splitlines()[-1])["campaign_id"])


@pytest.fixture
def sent(engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple:
    """``_send``, then one SMS marked failed with a reason that looks like a spreadsheet
    formula."""
    cid = _send(engine, monkeypatch, tmp_path)
    with engine.begin() as c:
        one = c.execute(sa.text("SELECT min(id) FROM delivery WHERE campaign_id = :c AND "
                                "channel = 'sms'"), {"c": cid}).scalar_one()
        c.execute(sa.text("UPDATE delivery SET state = 'failed', error = '=HYPERLINK(1)' "
                          "WHERE id = :i"), {"i": one})
    return engine, cid


def _csv(engine, cid: str, lang: str = "en") -> list[list[str]]:
    data = export_report(engine, cid, "csv", lang=lang).content.decode("utf-8")
    return list(csv.reader(io.StringIO(data)))


def test_csv_rows_match_the_json_report(sent) -> None:
    engine, cid = sent
    report = json.loads(export_report(engine, cid, "json").content)
    rows = _csv(engine, cid)
    assert rows[0] == ["Channel", "State", "Reason", "Count"]
    by_status: dict[str, dict[str, int]] = {}
    reasons: dict[str, dict[str, int]] = {}
    for channel, state, reason, count in rows[1:]:
        by_status.setdefault(channel, {})[state] = (by_status.get(channel, {}).get(state, 0)
                                                    + int(count))
        if reason:
            reasons.setdefault(channel, {})[reason] = int(count)
    assert by_status == {ch: report["channels"][ch]["by_status"] for ch in ("sms", "email")}
    assert by_status["sms"] == {"delivered": 2, "failed": 1}
    # The reason is kept, but a spreadsheet shows it as text instead of running it.
    assert reasons == {"sms": {"'=HYPERLINK(1)": 1}}
    assert report["channels"]["sms"]["failure_reasons"] == {"=HYPERLINK(1)": 1}
    assert _csv(engine, cid, "de")[0] == ["Kanal", "Zustand", "Grund", "Anzahl"]


def test_report_never_names_a_citizen(sent) -> None:
    engine, cid = sent
    for fmt in ("csv", "json"):
        text = export_report(engine, cid, fmt).content.decode("utf-8")
        assert "+3247" not in text and "@example.org" not in text


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_pdf_shows_the_area_figures_and_launch_time(sent, lang: str, tmp_path: Path) -> None:
    engine, cid = sent
    report = json.loads(export_report(engine, cid, "json").content)
    pdf = export_report(engine, cid, "pdf", lang=lang).content
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    text = " ".join(p.extract_text() for p in PdfReader(path).pages)
    words = LABELS[lang]
    assert report["area_name"] in text
    assert words["title"] in text
    launched = format_datetime(_parse(report["launched_at"]), "medium", tzinfo=BRUSSELS,
                               locale=lang)
    assert launched in text
    lines = text.splitlines()
    for channel in ("sms", "email"):
        for state, n in report["channels"][channel]["by_status"].items():
            row = f"{words['channel.' + channel]} {words['state.' + state]} {n}"
            assert row in lines, (row, lines)
    assert "=HYPERLINK(1)" in text  # the failure reason
    assert words["created_by"].split()[0] in text and "cli" in text
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(path),
                        str(tmp_path / "page")], check=True)
        png = tmp_path / "page-1.png"
        assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 5000


def test_pdf_names_who_approved_and_who_asked_on_behalf(sent, tmp_path: Path) -> None:
    from tocsin.campaigns.models import Campaign

    engine, cid = sent
    with engine.begin() as c:
        c.execute(sa.update(Campaign).where(Campaign.id == cid).values(
            approved_by="bourgmestre", acting_authority_id="BE",
            on_behalf_request={"requested_by": "Gouverneur du Brabant", "channel": "phone"}))
    pdf = export_report(engine, cid, "pdf", lang="fr").content
    # Words only: a long name wraps in its table cell.
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "bourgmestre" in text
    assert "Gouverneur du Brabant" in text and "à la demande de" in text


def test_cli_writes_pdf_atomically_and_refuses_bad_input(sent, tmp_path: Path) -> None:
    engine, cid = sent
    out = tmp_path / "report.pdf"
    r = runner.invoke(app, ["campaign", "report", cid, "--format", "pdf", "--lang", "nl",
                            "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    r = runner.invoke(app, ["campaign", "report", cid, "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["campaign_id"] == cid
    for args, field in ((["--format", "pdf"], "output"), (["--format", "xls"], "format"),
                        (["--format", "csv", "--lang", "es"], "lang")):
        r = runner.invoke(app, ["campaign", "report", cid, *args])
        assert r.exit_code == 1 and f"error: {field}:" in r.output, r.output
    r = runner.invoke(app, ["campaign", "report", "nope", "--format", "csv"])
    assert r.exit_code == 1 and "error: campaign_id:" in r.output


@pytest.mark.parametrize("spread_s, step", [(170, 1), (1800, 60)])
def test_timeline_counts_every_sent_delivery_per_bucket(any_engine, monkeypatch, tmp_path,
                                                        spread_s: int, step: int) -> None:
    """Per second when sending took at most 10 minutes, else per minute; on SQLite and
    PostgreSQL; the chart merges buckets into at most ``MAX_BARS`` bars."""
    from tocsin.campaigns.report_export import MAX_BARS, chart_svg, report_timeline
    from tocsin.dispatch.models import Delivery

    cid = _send(any_engine, monkeypatch, tmp_path)
    t0 = dt.datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=dt.UTC)
    with any_engine.begin() as c:
        ids = c.scalars(sa.select(Delivery.id).where(Delivery.campaign_id == cid)
                        .order_by(Delivery.id)).all()
        offsets = [i * spread_s // (len(ids) - 1) for i in range(len(ids))]
        for i, off in zip(ids, offsets, strict=True):
            c.execute(sa.update(Delivery).where(Delivery.id == i)
                      .values(sent_at=t0 + dt.timedelta(seconds=off)))
    report = json.loads(export_report(any_engine, cid, "json").content)
    first = min(ch["first_sent_at"] for ch in report["channels"].values()
                if ch.get("first_sent_at"))
    last = max(ch["last_sent_at"] for ch in report["channels"].values()
               if ch.get("last_sent_at"))
    got_step, buckets = report_timeline(any_engine, cid, first, last)
    assert got_step == step
    assert sum(n for _, _, n in buckets) == len(ids)
    expected: dict[tuple[dt.datetime, str], int] = {}
    with any_engine.connect() as c:
        for ch, at in c.execute(sa.select(Delivery.channel, Delivery.sent_at)
                                .where(Delivery.campaign_id == cid)):
            key = at.replace(microsecond=0, second=at.second if step == 1 else 0)
            expected[(key, ch)] = expected.get((key, ch), 0) + 1
    assert {(t, ch): n for t, ch, n in buckets} == expected
    svg = chart_svg(step, buckets, report["channel_list"], "nl")
    assert svg.startswith("<svg") and 0 < svg.count("<rect") - 2 <= MAX_BARS * 2
    assert "Sms" in svg and "E-mail" in svg


# --- web ---------------------------------------------------------------------------------

@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from test_web import seed
    from tocsin.core.db import make_engine
    from tocsin.core.migrate import upgrade
    from tocsin.core.settings import Settings
    from tocsin.web.app import create_app

    eng = make_engine(f"sqlite:///{tmp_path / 'web.db'}")
    upgrade(eng)
    seed(eng)
    settings = Settings(var_dir=tmp_path / "var", database_url=str(eng.url))
    with TestClient(create_app(eng, start_worker=False, settings=settings)) as c:
        yield c


def test_web_downloads_pdf_and_csv_for_those_who_may_read(client: TestClient) -> None:
    from test_web import login
    from weblogin import csrf_of

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"texts": {"fr": "Exercice: restez chez vous."}, "channels": ["sms", "email", "cap"],
            "municipality_nis": "25112", "kind": "exercise"}
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    page = client.get(f"/campaigns/{cid}")
    assert f"/campaigns/{cid}/report.pdf" in page.text
    assert f"/campaigns/{cid}/report.csv" in page.text
    pdf = client.get(f"/campaigns/{cid}/report.pdf?lang=de")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Kampagnenbericht" in text and "Übung" in text
    csv_fr = client.get(f"/campaigns/{cid}/report.csv", headers={"Accept-Language": "fr-BE"})
    assert csv_fr.status_code == 200 and csv_fr.text.startswith("Canal,État,Motif,Nombre")
    assert client.get(f"/campaigns/{cid}/report.xls").status_code == 422
    client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    login(client, username="wavre")
    assert client.get(f"/campaigns/{cid}/report.pdf").status_code == 404


def test_report_page_shows_the_area_and_where_it_was_cut(client: TestClient) -> None:
    """Trial defect: the campaign page showed no area nor that it was cut at the border."""
    from test_web import login
    from weblogin import csrf_of

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    # half of this square lies east of the province (4.5-4.7 E): cut at its border
    square = {"type": "Polygon", "coordinates": [[[4.65, 50.65], [4.75, 50.65], [4.75, 50.7],
                                                  [4.65, 50.7], [4.65, 50.65]]]}
    body = {"texts": {"fr": "Exercice: restez chez vous."}, "channels": ["sms", "cap"],
            "area_geojson": square, "kind": "exercise"}
    r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    report = client.get(f"/api/campaigns/{cid}/report").json()
    assert report["area"]["cut"]["share"] == pytest.approx(0.5, abs=0.05)
    assert 10 < report["area"]["km2"] < 25  # what is left: 0.05° × 0.05° at 50.7° N
    page = client.get(f"/campaigns/{cid}?lang=en").text
    assert 'id="area-cut"' in page and "cut at the border" in page and "km²" in page
    de = client.get(f"/campaigns/{cid}?lang=de").text
    assert "abgeschnitten" in de
    whole = client.post("/api/campaigns", headers={"X-CSRF-Token": token}, json={
        **body, "area_geojson": None, "municipality_nis": "25112"}).json()["campaign_id"]
    page = client.get(f"/campaigns/{whole}?lang=en").text
    assert 'id="area-not-cut"' in page and "NIS code 25112" in page


def test_cap_only_final_report_says_so_instead_of_an_empty_table(client: TestClient) -> None:
    """Trial defect: a CAP-only campaign showed an empty per-channel table."""
    from test_web import login
    from weblogin import csrf_of

    login(client)
    token = csrf_of(client.get("/campaigns/new").text)
    r = client.post("/api/campaigns", headers={"X-CSRF-Token": token}, json={
        "texts": {"fr": "Exercice."}, "channels": ["cap"], "municipality_nis": "25112",
        "kind": "exercise"})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    final = client.get(f"/campaigns/{cid}/final?lang=en").text
    assert 'id="cap-only"' in final and "<table" not in final
    assert "CAP:" in final


def test_every_csv_escapes_cells_with_the_same_helper() -> None:
    """Fresh-user trial: "+32…" was prefixed with ' in the answers CSV but not in
    report.csv. One helper serves the report, the answers and the contact errors."""
    from tocsin.campaigns import answer_service, report_export
    from tocsin.core.csvcell import csv_cell
    from tocsin.subscribers.spreadsheets import escape_formula

    assert answer_service.csv_cell is csv_cell and report_export.csv_cell is csv_cell
    for value, safe in (("+32470000001", "+32470000001"), ("+cmd|' /C calc'!A0",
                                                         "'+cmd|' /C calc'!A0"),
                        ("=HYPERLINK(1)", "'=HYPERLINK(1)"), ("-1", "'-1"), ("@x", "'@x"),
                        ("Jan", "Jan")):
        assert csv_cell(value) == safe and escape_formula(value) == safe
    assert csv_cell(None) == "" and csv_cell(3) == 3
