"""The official address register (issue 10 point 4): BeST import, lookups, resolve.

The address file is the BeST sample packaged for the demo (1,500 addresses of Brussels,
Halle and Malmedy; identical to ../shared/data/addresses/best-address-sample.csv); the
municipality and postal-name files are read from ../shared/data/addresses when present.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.geo.address_models import AddressImport, AddressPlace, AddressPoint, AddressStage
from tocsin.geo.address_rules import box_key, check_row, fold, nearest_numbers, number_key
from tocsin.geo.addresses import (
    MAX_RESULTS,
    AddressImportError,
    boxes,
    import_addresses,
    match_place,
    municipalities,
    numbers,
    resolve,
    streets,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src" / "tocsin" / "subscribers" / "data" / "best-address-sample.csv"
SHARED = ROOT.parent / "shared" / "data" / "addresses"


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _shared(name: str) -> list[str]:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    return _lines(path)


def _sample_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(SAMPLE.read_text(encoding="utf-8"))))


def _import(engine: Engine, lines: list[str] | None = None, **kw: object) -> dict:
    return import_addresses(engine, lines or _lines(SAMPLE), "sample.csv", **kw).to_json()


@pytest.fixture
def loaded(any_engine: Engine) -> Engine:
    _import(any_engine, municipalities=_shared("best-municipalities.csv"),
            postal=_shared("best-postalinfo.csv"))
    return any_engine


# --- rules --------------------------------------------------------------------------


def test_keys_ignore_case_accents_and_punctuation() -> None:
    assert fold("Chaussée de HAECHT") == "chaussee de haecht"
    assert fold("Sint-Jans-Molenbeek") == "sint jans molenbeek"
    assert number_key("12 a") == number_key("12A") == "12a"
    assert box_key("bte 7") == box_key("b007") == box_key("Bus 0007") == "7"
    assert box_key("A2.2") == "a22"
    assert nearest_numbers("12", ["2", "10", "14", "30", "11A"]) == ["2", "10", "11A", "14"]


def test_a_row_without_position_or_street_is_refused_with_the_reason() -> None:
    row = _sample_rows()[0]
    assert check_row(row)["street_key"] == "haachtsesteenweg"
    with pytest.raises(ValueError, match=r"coordinates \(0, 0\)"):
        check_row({**row, "x_lambert72": "0.0", "y_lambert72": "0.0"})
    with pytest.raises(ValueError, match="outside Belgium"):
        check_row({**row, "lat_wgs84": "48.85", "lon_wgs84": "2.35"})
    with pytest.raises(ValueError, match="no street name"):
        check_row({**row, "street_nl": "", "street_fr": ""})


# --- import -------------------------------------------------------------------------


def test_import_counts_and_refuses_the_47_rows_without_position(any_engine: Engine) -> None:
    report = _import(any_engine)
    zero = [i + 2 for i, r in enumerate(_sample_rows())
            if float(r["x_lambert72"]) == 0 and float(r["y_lambert72"]) == 0]
    assert len(zero) == 47
    assert report["rows"] == 1500
    assert report["refused"] == 47
    assert [r["row"] for r in report["refusals"]] == zero
    assert all("coordinates (0, 0)" in r["reason"] for r in report["refusals"])
    assert report["imported"] == 1453 and report["updated"] == 0
    assert report["retired"] == 13
    assert report["municipalities"] == ["21004", "23027", "63049"]
    with any_engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressPoint)) == 1453
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressStage)) == 0
        run = c.execute(sa.select(AddressImport)).one()
        assert (run.status, run.imported, run.refused) == ("done", 1453, 47)
        lats = c.execute(sa.select(AddressPoint.lat)).scalars().all()
        assert min(lats) > 49.4  # nothing placed at Lambert's origin in France


def test_reimport_is_idempotent_and_updates_by_best_id(any_engine: Engine) -> None:
    _import(any_engine)
    again = _import(any_engine)
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 1453)
    rows = _lines(SAMPLE)
    header, first = rows[0], rows[1]
    moved = first.replace("Haachtsesteenweg", "Haachtsesteenweg").replace(",current,",
                                                                         ",retired,", 1)
    third = _import(any_engine, [header, moved])
    assert (third["imported"], third["updated"], third["retired"]) == (0, 1, 1)
    best_id = first.split(",")[0]
    with any_engine.connect() as c:
        assert c.scalar(sa.select(AddressPoint.status).where(
            AddressPoint.best_id == best_id)) == "retired"
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressPoint)) == 1453


def test_a_repeated_best_id_keeps_the_later_row(engine: Engine) -> None:
    rows = _lines(SAMPLE)
    report = _import(engine, [rows[0], rows[1], rows[1].replace(",1840,", ",1842,")])
    assert report["imported"] == 1 and report["refused"] == 1
    assert report["refusals"][0]["row"] == 2 and "repeated on row 3" in \
        report["refusals"][0]["reason"]
    assert numbers(engine, match_place(engine, "Bruxelles"), "Haachtsesteenweg") == ["1842"]


def test_a_file_without_the_columns_writes_nothing(engine: Engine) -> None:
    with pytest.raises(AddressImportError, match="missing column"):
        _import(engine, ["a,b,c\n", "1,2,3\n"])
    with engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressImport)) == 0


def test_a_failed_run_leaves_the_register_as_it_was(engine: Engine) -> None:
    _import(engine)
    rows = _lines(SAMPLE)

    def broken() -> object:
        yield rows[0]
        yield rows[1].replace("Haachtsesteenweg", "Elders")
        raise OSError("disk gone")

    with pytest.raises(OSError):
        import_addresses(engine, broken(), "broken.csv")  # type: ignore[arg-type]
    with engine.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).where(
            AddressPoint.street_nl == "Elders")) == 0
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressStage)) == 0
        assert c.execute(sa.select(AddressImport.status).order_by(AddressImport.id)
                         ).scalars().all() == ["done", "failed"]


def test_cli_import_reports_refused_rows_and_exit_codes(engine: Engine, tmp_path: Path,
                                                        monkeypatch) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app

    db = engine.url.database
    monkeypatch.setenv("TOCSIN_DATABASE_URL", f"sqlite:///{db}")
    from tocsin.core.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    r = runner.invoke(app, ["addresses", "import", str(SAMPLE), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert (out["imported"], out["refused"]) == (1453, 47)
    r = runner.invoke(app, ["addresses", "import", str(SAMPLE)])
    assert r.exit_code == 0
    assert "row 1016: x_lambert72" in r.stderr
    assert "0 imported, 0 updated, 1453 unchanged, 47 refused" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    r = runner.invoke(app, ["addresses", "import", str(bad)])
    assert r.exit_code == 1 and "error: file: not a BeST address file" in r.stderr
    r = runner.invoke(app, ["addresses", "import", str(tmp_path / "absent.csv")])
    assert r.exit_code == 1 and "error: file: cannot read" in r.stderr


# --- lookups ------------------------------------------------------------------------


def test_municipalities_by_any_language_and_postcode(loaded: Engine) -> None:
    fr = municipalities(loaded, "brux", "fr")
    assert fr[0]["nis"] == "21004" and fr[0]["name"] == "Bruxelles" and fr[0]["addresses"]
    assert municipalities(loaded, "BRUSSEL", "nl")[0]["name"] == "Brussel"
    assert municipalities(loaded, "hal", "fr")[0]["label"] == "Hal"
    assert any(m["nis"] == "63049" for m in municipalities(loaded, "malmédy", "de"))
    by_code = municipalities(loaded, "113", "fr")
    assert by_code and all(m["postcode"].startswith("113") for m in by_code)
    assert by_code[0]["label"].startswith("1130 ")
    # a municipality of the municipality file without addresses in the sample
    ixelles = municipalities(loaded, "ixelles", "fr")
    assert ixelles[0]["nis"] == "21009" and not ixelles[0]["addresses"]
    assert len(municipalities(loaded, "s", "fr", limit=500)) == MAX_RESULTS


def test_match_place_reads_names_and_postcodes(loaded: Engine) -> None:
    assert match_place(loaded, "Bruxelles").nis == ("21004",)
    assert match_place(loaded, "1130").postcode == "1130"
    assert match_place(loaded, "1130 Bruxelles") == match_place(loaded, "1130")
    assert match_place(loaded, "HAL").nis == ("23027",)
    assert match_place(loaded, "Atlantis") is None


def test_streets_numbers_boxes(loaded: Engine) -> None:
    brussels = match_place(loaded, "Bruxelles")
    fr = streets(loaded, brussels, "chaussee de h", "fr")
    assert fr[0]["name"] == "Chaussée de Haecht"
    word = [s["name"] for s in streets(loaded, brussels, "haecht", "fr")]
    assert {"Chaussée de Haecht", "Ancienne chaussée de Haecht"} <= set(word)
    assert streets(loaded, brussels, "haachtse", "nl")[0]["name"] == "Haachtsesteenweg"
    nums = numbers(loaded, brussels, "chaussée de haecht")
    assert nums == sorted(nums, key=lambda n: (int("".join(c for c in n if c.isdigit())
                                                     or 0), n))[:len(nums)]
    assert "1840" in numbers(loaded, brussels, "Haachtsesteenweg", "184", limit=20)
    assert "b007" in boxes(loaded, brussels, "Haachtsesteenweg", "1840")
    assert len(streets(loaded, match_place(loaded, "Hal"), "", "nl", limit=99)) == MAX_RESULTS


def test_resolve_found_missing_and_no_data(loaded: Engine) -> None:
    found = resolve(loaded, "bruxelles", "chaussee de haecht", "1840", "bte 7", "fr")
    assert found.status == "found"
    assert found.point["best_id"] == "BA/1002057/1"
    assert found.point["label"] == "Chaussée de Haecht 1840 bte b007, 1130 Bruxelles"
    nl = resolve(loaded, "Brussel", "Haachtsesteenweg", "1840", "", "fr")
    assert nl.status == "found" and nl.point["label"].startswith("Haachtsesteenweg 1840")
    street = resolve(loaded, "Bruxelles", "Chaussée de Haect", "1", "", "fr")
    assert (street.status, street.field) == ("missing", "street")
    assert "Chaussée de Haecht" in street.suggestions
    number = resolve(loaded, "Bruxelles", "Chaussée de Haecht", "99999", "", "fr")
    assert (number.status, number.field, number.nis) == ("missing", "number", "21004")
    assert number.suggestions
    box = resolve(loaded, "Bruxelles", "Chaussée de Haecht", "1840", "bte 999", "fr")
    assert (box.status, box.field) == ("missing", "box") and "b007" in box.suggestions
    assert resolve(loaded, "Beersel", "Rue de la Gare", "12").status == "no_data"
    assert resolve(loaded, "Ixelles", "Rue Malibran", "1").status == "no_data"
    with loaded.connect() as c:
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressPlace).where(
            AddressPlace.kind == "municipality", AddressPlace.nis == "21009")) == 2


def test_retired_addresses_are_not_offered(engine: Engine) -> None:
    _import(engine)
    retired = next(r for r in _sample_rows() if r["status"] == "retired")
    result = resolve(engine, retired["municipality_fr"] or retired["municipality_nl"],
                     retired["street_nl"] or retired["street_fr"], retired["housenumber"],
                     retired["boxnumber"])
    assert result.status != "found" or result.point["best_id"] != retired["best_id"]


def test_a_killed_run_is_cleaned_by_the_next(engine: Engine) -> None:
    from tocsin.core.db import transaction

    with transaction(engine) as s:
        run = AddressImport(source="killed.csv", status="running")
        s.add(run)
        s.flush()
        s.add(AddressStage(run_id=run.id, row=2, **check_row(_sample_rows()[0])))
    assert _import(engine)["imported"] == 1453
    with engine.connect() as c:
        assert c.execute(sa.select(AddressImport.status).order_by(AddressImport.id)
                         ).scalars().all() == ["failed", "done"]
        assert c.scalar(sa.select(sa.func.count()).select_from(AddressStage)) == 0


def test_the_demo_says_how_many_sample_addresses_were_imported_and_refused(
        tmp_path: Path) -> None:
    """The README says the sample has refused rows: ``make demo`` prints both counts."""
    from tocsin.authorities.setup import prepare_demo
    from tocsin.cli.processes import DEMO_ACCOUNTS, register_summary

    setup = prepare_demo(0, DEMO_ACCOUNTS, url=f"sqlite:///{tmp_path / 'demo.db'}")
    assert (setup.register, setup.register_refused) == (1453, 47)
    line = register_summary(setup.register, setup.register_refused)
    assert "imported 1453" in line and "refused 47" in line
