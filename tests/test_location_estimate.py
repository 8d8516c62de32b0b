"""The reach estimate of location-based channels from the CLI and the web API (issue 11,
point 3; SPEC F17, F18): ``tocsin campaign estimate … --channels sms,lbsms,cb --json``
prints per channel the registered recipients and, for ``lbsms`` and ``cb``, phones
inside and outside, bleed, cells, per operator and the model label. Sending them needs
a trained user of a type-1 authority (tests/test_location_dispatch.py sends them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tocsin.cli import app
from tocsin.core.settings import Settings
from tocsin.web.app import create_app
from weblogin import csrf_of, log_in

runner = CliRunner()
NEED = {"phones_inside", "phones_outside", "bleed_km2", "max_bleed_km", "cells",
        "by_operator", "model"}


@pytest.fixture
def db(any_engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TOCSIN_DATABASE_URL", any_engine.url.render_as_string(
        hide_password=False))
    csv = tmp_path / "subs.csv"
    csv.write_text("subscriber_id,language,mobile,email,lat,lon\n"
                   "S1,nl,+32470123456,s1@example.org,50.7346,4.2406\n"
                   "S2,nl,+32470123457,,50.7350,4.2410\n"
                   "S3,nl,,s3@example.org,50.7340,4.2400\n")
    result = runner.invoke(app, ["subscribers", "import", str(csv)])
    assert result.exit_code == 0, result.output
    return any_engine


def _estimate(*args: str) -> dict:
    result = runner.invoke(app, ["campaign", "estimate", "--authority", "23027", *args,
                                 "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_estimate_json_per_channel(db):
    e = _estimate("--municipality", "23027", "--channels", "sms,email,lbsms,cb")
    ch = e["channels"]
    assert ch["sms"] == {"registered": 2} and ch["email"] == {"registered": 2}
    # Registered mobiles in the area get the location-based alert as an SMS too (F18).
    assert ch["lbsms"]["registered"] == 2 and ch["cb"]["registered"] is None
    for name in ("lbsms", "cb"):
        assert NEED <= set(ch[name])
        assert ch[name]["model"] == "synthetic"
        assert ch[name]["model_label"] == "synthetic cell model"
        lo, hi = ch[name]["phones_inside"]
        assert 0 < lo < hi and ch[name]["bleed_km2"] > 0 and ch[name]["cells"] > 0
    assert ch["cb"]["phones_inside"][0] < ch["lbsms"]["phones_inside"][0]  # 4G/5G only
    assert e["cell_model"] == "synthetic cell model"
    assert any(w["code"] == "cell_model" and "synthetic cell model" in w["message"]
               for w in e["warnings"])


def test_lbsms_alone_still_counts_registered_mobiles(db):
    ch = _estimate("--municipality", "23027", "--channels", "lbsms")["channels"]
    assert set(ch) == {"lbsms"} and ch["lbsms"]["registered"] == 2


def test_estimate_of_a_circle(db):
    e = _estimate("--circle", "50.7346,4.2406,1", "--channels", "sms,lbsms")
    assert e["area_km2"] == pytest.approx(math.pi, rel=0.02)
    assert e["channels"]["sms"]["registered"] == 2
    assert e["channels"]["lbsms"]["phones_outside"][1] > 0


def test_text_output_names_the_model(db):
    result = runner.invoke(app, ["campaign", "estimate", "--authority", "23027",
                                 "--municipality", "23027", "--channels", "lbsms"])
    assert result.exit_code == 0, result.output
    assert "phones inside" in result.stdout and "synthetic cell model" in result.stdout


@pytest.mark.parametrize("args, field", [
    (["--circle", "50.7346,4.2406"], "circle"),
    (["--circle", "4.2406,50.7346,1"], "circle"),
    (["--circle", "50.7346,4.2406,5000"], "circle"),
    (["--circle", "50.7346,4.2406,1", "--area", "x.geojson"], "circle"),
    (["--municipality", "23027", "--channels", "sms,fax"], "channels"),
])
def test_bad_estimate_input_exits_1_naming_the_field(db, args, field):
    result = runner.invoke(app, ["campaign", "estimate", "--authority", "23027", *args])
    assert result.exit_code == 1, result.output
    assert f"error: {field}:" in result.output and "Traceback" not in result.output


def _campaigns(engine) -> int:
    with engine.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM campaign")).scalar_one()


def test_sending_lbsms_needs_a_stated_justification_and_writes_nothing(db):
    # The command line acts as the authority's admin, trained (access.cli_actor); sending
    # works (tests/test_location_dispatch.py) once the imminent danger is stated.
    result = runner.invoke(app, ["campaign", "send", "--authority", "23027",
                                 "--municipality", "23027", "--text", "nl=Test",
                                 "--channels", "sms,lbsms"])
    assert result.exit_code == 1, result.output
    assert "error: justification:" in result.output
    assert "Traceback" not in result.output
    assert _campaigns(db) == 0


@pytest.mark.parametrize("trained, rule", [(False, "lbsms_training"), (True, None)])
def test_location_channels_need_a_trained_user(db, trained, rule):
    from dataclasses import replace

    from tocsin.authorities.access import Denied, command_line_actor
    from tocsin.campaigns.services import CampaignRequest, launch_campaign

    actor = replace(command_line_actor(db, "23027"), lbsms_trained=trained)
    req = CampaignRequest(authority_id="23027", texts={"nl": "Test"}, channels=["cb"],
                          municipality_nis="23027", actor=actor)
    if rule:
        with pytest.raises(Denied) as err:
            launch_campaign(db, req)
        assert err.value.rule == rule
        assert _campaigns(db) == 0
    else:
        assert launch_campaign(db, req)  # accepted: a worker sends it to the CBC
        assert _campaigns(db) == 1
    # Estimating needs no training: it sends nothing.
    from tocsin.campaigns.services import estimate_campaign

    assert "cb" in estimate_campaign(db, req)["channels"]


# --- web API ------------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(engine, tmp_path: Path) -> Iterator[TestClient]:
    from tocsin.authorities import services as authorities

    authorities.create_user(engine, "halle", PASSWORD, "23027")
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    with TestClient(create_app(engine, start_worker=False, settings=settings)) as c:
        log_in(c, "halle", PASSWORD)
        yield c


def test_web_estimate_and_cells_layer(client: TestClient):
    token = csrf_of(client.get("/campaigns/new").text)
    body = {"channels": ["sms", "lbsms", "cb"], "municipality_nis": "23027",
            "texts": {"nl": "Test"}}
    r = client.post("/api/campaigns/estimate", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 200, r.text
    ch = r.json()["channels"]
    assert NEED <= set(ch["lbsms"]) and ch["cb"]["model"] == "synthetic"
    layer = client.post("/api/campaigns/estimate/cells", json=body,
                        headers={"X-CSRF-Token": token})
    assert layer.status_code == 200, layer.text
    data = layer.json()
    assert data["type"] == "FeatureCollection"
    assert data["tocsin_cell_model"]["synthetic"] is True
    assert data["tocsin_cell_model"]["label"] == "synthetic cell model"
    kinds = [f["properties"]["kind"] for f in data["features"]]
    assert kinds.count("cell") == ch["lbsms"]["cells"] and kinds[-1] == "bleed"
    assert all(f["properties"]["cell_id"].startswith("001-")
               for f in data["features"] if f["properties"]["kind"] == "cell")


def test_web_cells_layer_outside_the_territory_is_refused(client: TestClient):
    token = csrf_of(client.get("/campaigns/new").text)
    r = client.post("/api/campaigns/estimate/cells", headers={"X-CSRF-Token": token},
                    json={"channels": ["lbsms"], "municipality_nis": "23003"})
    assert r.status_code == 403, r.text


# --- tocsin cells import ------------------------------------------------------------------

CELLS_CSV = """cell_id,lat,lon,azimuth,beamwidth,range,technology
206-10-1-1,50.735,4.235,0,120,2000,4G
206-10-1-2,50.735,4.235,120,120,2000,4G
206-10-1-3,50.735,4.235,240,120,2000,4G
"""


def _imports(engine) -> int:
    with engine.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM cell_import")).scalar_one()


def test_cells_import_replaces_one_operator(db, tmp_path):
    shown = runner.invoke(app, ["cells", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["label"] == "synthetic cell model"
    path = tmp_path / "op1.csv"
    path.write_text(CELLS_CSV)
    result = runner.invoke(app, ["cells", "import", str(path), "--operator", "op1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cells"] == 3
    model = json.loads(runner.invoke(app, ["cells", "show", "--json"]).stdout)
    assert model["kind"] == "mixed"
    ops = {o["key"]: o for o in model["operators"]}
    assert ops["op1"]["model"] == "imported" and ops["op1"]["cells"] == 3
    assert ops["op2"]["model"] == "synthetic"
    e = _estimate("--circle", "50.7346,4.2406,1", "--channels", "lbsms")["channels"]["lbsms"]
    assert e["model"] == "mixed" and e["by_operator"]["op1"]["model"] == "imported"
    assert e["by_operator"]["op1"]["source"] == "op1.csv"
    assert "synthetic cell model" in e["model_label"]  # op2 and op3 still are
    text = runner.invoke(app, ["cells", "show"])
    assert "op1" in text.stdout and "imported" in text.stdout


@pytest.mark.parametrize("content, operator, words", [
    (CELLS_CSV.replace("2000,4G\n206-10-1-2", "2000,9G\n206-10-1-2"), "op1",
     "error: technology: line 2:"),
    (CELLS_CSV, "op9", "error: operator:"),
    ("cell_id,lat\n1,50\n", "op1", "error: lon: line 1:"),
])
def test_bad_cells_import_names_line_and_column(db, tmp_path, content, operator, words):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = runner.invoke(app, ["cells", "import", str(path), "--operator", operator])
    assert result.exit_code == 1, result.output
    assert words in result.output and "Traceback" not in result.output
    assert _imports(db) == 0


def test_a_bowtie_area_is_repaired_and_the_estimate_says_so(db, tmp_path):
    # Two lobes crossing at 50.735, 4.235 in Halle, the subscribers in the eastern one:
    # both lobes are kept (never buffer(0), which keeps one).
    bowtie = {"type": "Polygon", "coordinates": [[[4.215, 50.725], [4.255, 50.745],
                                                  [4.255, 50.725], [4.215, 50.745],
                                                  [4.215, 50.725]]]}
    path = tmp_path / "bowtie.geojson"
    path.write_text(json.dumps(bowtie))
    e = _estimate("--area", str(path), "--channels", "sms")
    (repair,) = [w for w in e["warnings"] if w["code"] == "area_repaired"]
    assert "crosses itself at lon 4.235000, lat 50.735000" in repair["message"]
    assert repair["parts"] == 2
    assert e["area_km2"] > 2 * 0.9 * (0.02 * 71.0) * (0.01 * 111.2) / 2
    assert e["channels"]["sms"]["registered"] == 2


def test_estimate_writes_the_cells_layer(db, tmp_path):
    out = tmp_path / "cells.geojson"
    result = runner.invoke(app, ["campaign", "estimate", "--authority", "23027",
                                 "--circle", "50.7346,4.2406,1", "--channels", "cb",
                                 "--cells-geojson", str(out), "--json"])
    assert result.exit_code == 0, result.output
    layer = json.loads(out.read_text())
    assert layer["tocsin_cell_model"]["label"] == "synthetic cell model"
    cells = [f for f in layer["features"] if f["properties"]["kind"] == "cell"]
    assert len(cells) == json.loads(result.stdout)["channels"]["cb"]["cells"]


def test_simulator_commands_are_there():
    for args in (["simulate", "lbsms-operator", "--help"], ["simulate", "cbc", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "--port" in result.output
    bad = runner.invoke(app, ["simulate", "lbsms-operator", "--operator", "op7",
                              "--secret", "x"])
    assert bad.exit_code == 1 and "error: operator:" in bad.output


def test_location_text_facts(db):
    long_fr = "Restez à l'intérieur. " * 70  # 1,540 GSM-7 characters: over 15 CB pages
    e = _estimate("--municipality", "23027", "--channels", "lbsms,cb", "--text", "nl=Blijf binnen.",
                  "--text", f"fr={long_fr}")
    lb, cb = e["channels"]["lbsms"], e["channels"]["cb"]
    assert lb["text_languages"] == ["nl", "fr"] and lb["cost_eur"] == 0.0
    assert lb["segments"] > 1 and lb["encoding"] == "GSM-7"
    assert cb["pages"]["nl"] == 1 and cb["pages"]["fr"] is None and cb["too_long"] == ["fr"]


def test_a_circle_across_the_border_is_cut_to_belgium(db):
    # 5 km around Raeren's border with Germany: part of it is German.
    result = runner.invoke(app, ["campaign", "estimate", "--authority", "BE", "--circle",
                                 "50.68,6.10,5", "--channels", "cb", "--json"])
    assert result.exit_code == 0, result.output
    e = json.loads(result.stdout)
    (cut,) = [w for w in e["warnings"] if w["code"] == "area_cut"]
    assert "Belgium" in cut["message"] and 0.05 < cut["share"] < 0.95
    assert e["area_km2"] < math.pi * 25 * (1 - cut["share"]) * 1.02


def test_web_launch_with_lbsms_is_refused_to_an_untrained_user(client: TestClient, engine):
    token = csrf_of(client.get("/campaigns/new").text)
    r = client.post("/api/campaigns", headers={"X-CSRF-Token": token},
                    json={"channels": ["sms", "lbsms"], "municipality_nis": "23027",
                          "texts": {"nl": "Test"}, "kind": "exercise"})
    assert r.status_code == 403, r.text
    assert "training" in r.text
    assert _campaigns(engine) == 0
