"""Contact lists and groups (issue 10 points 6-7, SPEC F10, F11): imports of CSV, TSV,
XLSX and ODS, all or nothing, one fixture per error kind, hostile files, groups, and
campaigns that reach them.

Fixtures: tests/fixtures/contacts (written by make_fixtures.py there).
"""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tocsin.authorities.access import Denied
from tocsin.core.db import read_transaction
from tocsin.subscribers.contact_models import Contact, ContactGroupMember, ContactList
from tocsin.subscribers.contact_rules import header_key, known_field, repair_phone
from tocsin.subscribers.contacts import (
    ContactInputError,
    contact_lists,
    error_report_csv,
    import_contacts,
)
from tocsin.subscribers.groups import (
    change_members,
    create_group,
    delete_group,
    group_members,
    list_groups,
)
from tocsin.subscribers.rules import InvalidValue
from tocsin.subscribers.spreadsheets import (
    MAX_FILE_BYTES,
    SpreadsheetError,
    escape_formula,
    read_table,
)

FIXTURES = Path(__file__).parent / "fixtures" / "contacts"
HALLE, PEPINGEN, MALMEDY = "23027", "23064", "63049"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def contacts_of(engine: Engine, name: str = "Vrijwilligers", authority: str = HALLE
                ) -> dict[str, tuple[str | None, str | None, str | None]]:
    with read_transaction(engine) as s:
        rows = s.execute(sa.select(Contact.key, Contact.name, Contact.email, Contact.language)
                         .join(ContactList, ContactList.id == Contact.list_id)
                         .where(ContactList.name == name,
                                ContactList.authority_id == authority)).all()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def table_count(engine: Engine, model: type) -> int:
    with read_transaction(engine) as s:
        return int(s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


# ----------------------------------------------------------------------------- pure rules


@pytest.mark.parametrize("header, field", [
    ("GSM", "mobile"), ("téléphone portable", "mobile"), ("Telefoon", "mobile"),
    ("Handy", "mobile"), ("Handynummer", "mobile"), ("taal", "language"),
    ("Langue", "language"), ("Sprache", "language"), ("E-mail", "email"),
    ("Courriel", "email"), ("E-Mail-Adresse", "email"), ("naam", "name"), ("Nom", "name"),
    ("Name", "name"), ("Prénom", "first_name"), ("Achternaam", "last_name"),
    ("Functie", None),
])
def test_headers_are_recognised_in_four_languages(header: str, field: str | None) -> None:
    assert known_field(header) == field


def test_header_key_folds_accents_case_and_punctuation() -> None:
    assert header_key("  Téléphone  PORTABLE ") == "telephone portable"
    assert header_key("E-Mail") == "e mail"


@pytest.mark.parametrize("raw, number, repaired", [
    ("0470 12 34 56", "+32470123456", False),
    ("+32 470 12 34 56", "+32470123456", False),
    ("0032 470 12 34 56", "+32470123456", False),
    ("0470/12.34.56", "+32470123456", False),
    ("32470123456.0", "+32470123456", True),
    ("32470123456,0", "+32470123456", True),
    ("3.2470123456E+10", "+32470123456", True),
    ("470123456", "+32470123456", True),
    ("32470123456", "+32470123456", True),
    ("31612345678", "+31612345678", True),
    ("+49 151 23456789", "+4915123456789", False),
])
def test_phone_numbers_are_repaired_only_where_safe(raw: str, number: str,
                                                    repaired: bool) -> None:
    assert repair_phone(raw) == (number, repaired)


@pytest.mark.parametrize("raw, reason", [
    ("112", "emergency"), ("101", "emergency"), ("100", "emergency"),
    ("0900 12 345", "premium-rate"), ("070 24 52 45", "070 numbers are shared-cost numbers"),
    ("02 512 34 56", "landline"), ("0470 12 34", "not a valid"),
    ("=1+1", "not a phone number"), ("4701234567890123456789", "not a phone number"),
])
def test_phone_numbers_refused(raw: str, reason: str) -> None:
    with pytest.raises(InvalidValue, match=reason):
        repair_phone(raw)


def test_escape_formula_neutralises_csv_injection() -> None:
    assert escape_formula('=HYPERLINK("http://evil")') == '\'=HYPERLINK("http://evil")'
    for lead in "=+-@\t\r":
        assert escape_formula(lead + "x").startswith("'")
    assert escape_formula("Jan") == "Jan"


# ----------------------------------------------------------------------------- files


def test_belgian_excel_csv_semicolons_bom_decimal_comma() -> None:
    table = read_table(fixture("belgian_excel.csv"))
    assert (table.format, table.delimiter, table.encoding) == ("csv", ";", "utf-8")
    assert table.header == ["Naam", "GSM", "E-mail", "Taal", "Bedrag"]
    assert table.rows[0] == (2, ["Jan Peeters", "32470123456,0", "jan@example.org", "nl",
                                 "1,50"])


def test_latin1_csv_falls_back_to_windows_1252() -> None:
    table = read_table(fixture("latin1.csv"))
    assert table.encoding == "windows-1252"
    assert table.header[1] == "Téléphone portable"
    assert table.rows[1][1][0] == "Zoë Müller"


def test_xlsx_skips_hidden_rows_and_reads_formula_results() -> None:
    table = read_table(fixture("ok.xlsx"))
    assert [n for n, _ in table.rows] == [2, 3, 4]          # row 5 is hidden
    assert table.rows[1][1][1] == "0471123456"               # =CONCATENATE(...) result
    assert (2, 1) in table.numeric                           # 470123456 typed as a number


def test_ods_skips_hidden_rows_and_padding() -> None:
    started = time.monotonic()
    table = read_table(fixture("ok.ods"))
    assert time.monotonic() - started < 5
    assert table.header == ["Nom", "Téléphone portable", "Courriel", "Langue"]
    assert [(n, cells[0]) for n, cells in table.rows] == [(2, "Jan Peeters"),
                                                          (4, "Marie Dubois")]
    assert table.rows[0][1][1] == "470123456" and (2, 1) in table.numeric


def test_billion_laughs_xlsx_is_refused_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(SpreadsheetError, match="DTD"):
        read_table(fixture("billion_laughs.xlsx"))
    assert time.monotonic() - started < 2


def test_zip_bomb_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", b"<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b" " * 50_000_000)
    with pytest.raises(SpreadsheetError, match="inflates"):
        read_table(buffer.getvalue())


def test_oversized_file_is_refused_before_parsing() -> None:
    with pytest.raises(SpreadsheetError, match="at most"):
        read_table(b"name,mobile\n" + b"x" * MAX_FILE_BYTES)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"), (b"\x00\x01\x02binary", "binary"),
    (b"PK\x03\x04garbage", "damaged"), (fixture("err_file.xls"), "97-2003"),
])
def test_unreadable_files(data: bytes, reason: str) -> None:
    with pytest.raises(SpreadsheetError, match=reason):
        read_table(data)


# ----------------------------------------------------------------------------- imports

ERROR_FIXTURES = {
    "err_phone.csv": [(2, "mobile", "phone")],
    "err_emergency_number.csv": [(2, "mobile", "emergency_number"),
                                 (3, "mobile", "emergency_number")],
    "err_premium_rate.csv": [(2, "mobile", "premium_rate")],
    "err_not_mobile.csv": [(2, "mobile", "not_mobile")],
    "err_email.csv": [(2, "email", "email")],
    "err_language.csv": [(2, "language", "language")],
    "err_formula.csv": [(2, "name", "formula")],
    "err_duplicate.csv": [(3, "mobile", "duplicate")],
    "err_no_contact.csv": [(2, "mobile", "no_contact")],
    "err_unknown_column.csv": [(1, "header", "unknown_column")],
    "err_no_contact_column.csv": [(1, "header", "no_contact_column")],
    "err_duplicate_column.csv": [(1, "header", "duplicate_column")],
    "err_name.csv": [(2, "name", "name")],
    "err_file.xls": [(0, "file", "file")],
    "billion_laughs.xlsx": [(0, "file", "file")],
}


def test_every_error_fixture_is_listed() -> None:
    files = {p.name for p in FIXTURES.iterdir() if p.name.startswith("err_")}
    assert files <= set(ERROR_FIXTURES)


@pytest.mark.parametrize("name", sorted(ERROR_FIXTURES))
def test_error_fixture_reports_its_row_cell_and_reason_and_writes_nothing(
        any_engine: Engine, name: str) -> None:
    result = import_contacts(any_engine, fixture(name), HALLE, "Vrijwilligers")
    got = [(e["row"], e["field"], e["code"]) for e in result.errors]
    assert got == ERROR_FIXTURES[name], result.errors
    assert all(e["reason"] for e in result.errors)
    assert not result.written
    assert table_count(any_engine, ContactList) == 0
    assert table_count(any_engine, Contact) == 0


@pytest.mark.parametrize("name, count", [("ok.xlsx", 3), ("ok.ods", 2), ("ok.tsv", 1),
                                         ("latin1.csv", 2)])
def test_good_files_import(any_engine: Engine, name: str, count: int) -> None:
    result = import_contacts(any_engine, fixture(name), HALLE, "Vrijwilligers")
    assert result.ok, result.errors
    assert (result.imported, result.updated, result.removed) == (count, 0, 0)
    assert len(contacts_of(any_engine)) == count


def test_xlsx_contacts_are_normalised_and_repairs_reported(any_engine: Engine) -> None:
    result = import_contacts(any_engine, fixture("ok.xlsx"), HALLE, "Vrijwilligers")
    assert contacts_of(any_engine) == {
        "+32470123456": ("Jan Peeters", "jan@example.org", "nl"),
        "+32471123456": ("Marie Dubois", None, "fr"),
        "+4915123456789": ("Anna Schmidt", "anna@example.de", "de"),
    }
    assert result.repaired == [{"row": 2, "field": "mobile", "value": "470123456",
                                "to": "+32470123456"}]


def test_reimport_previews_then_replaces_the_list(any_engine: Engine) -> None:
    first = b"naam;gsm;taal\nJan;0470 12 34 56;nl\nPiet;0471 12 34 56;nl\nAn;0472 12 34 56;nl\n"
    import_contacts(any_engine, first, HALLE, "Vrijwilligers")
    create_group(any_engine, HALLE, "Ploeg A")
    change_members(any_engine, HALLE, "Ploeg A", "Vrijwilligers", ["0472 12 34 56"])
    second = (b"naam;gsm;taal\nJan;0470 12 34 56;nl\nPieter;0471 12 34 56;nl\n"
              b"Nieuw;0473 12 34 56;fr\n")
    preview = import_contacts(any_engine, second, HALLE, "Vrijwilligers", dry_run=True)
    assert preview.summary() == "3 contacts: 1 new, 1 updated, 1 removed"
    assert preview.unchanged == 1 and not preview.written
    assert "+32472123456" in contacts_of(any_engine)           # a dry run writes nothing
    done = import_contacts(any_engine, second, HALLE, "Vrijwilligers")
    assert (done.imported, done.updated, done.removed, done.written) == (1, 1, 1, True)
    assert contacts_of(any_engine) == {"+32470123456": ("Jan", None, "nl"),
                                       "+32471123456": ("Pieter", None, "nl"),
                                       "+32473123456": ("Nieuw", None, "fr")}
    assert table_count(any_engine, ContactGroupMember) == 0    # gone with its contact


def test_one_bad_row_keeps_the_previous_list_whole(any_engine: Engine) -> None:
    import_contacts(any_engine, b"name,mobile\nJan,0470 12 34 56\n", HALLE, "Vrijwilligers")
    bad = b"name,mobile\nPiet,0471 12 34 56\nSOS,112\n"
    result = import_contacts(any_engine, bad, HALLE, "Vrijwilligers")
    assert [(e["row"], e["value"]) for e in result.errors] == [(3, "112")]
    assert contacts_of(any_engine) == {"+32470123456": ("Jan", None, None)}


def test_unknown_header_mapped_once_is_remembered_per_authority(any_engine: Engine) -> None:
    data = fixture("err_unknown_column.csv")
    mapped = import_contacts(any_engine, data, HALLE, "Vrijwilligers",
                             mapping=["Functie=ignore"])
    assert mapped.ok, mapped.errors
    again = import_contacts(any_engine, data, HALLE, "Andere lijst")
    assert again.ok, again.errors                              # remembered for Halle
    other = import_contacts(any_engine, data, MALMEDY, "Liste")
    assert [e["code"] for e in other.errors] == ["unknown_column"]  # not for Malmedy


def test_a_mapping_to_an_unknown_field_is_refused(engine: Engine) -> None:
    with pytest.raises(ContactInputError, match="map"):
        import_contacts(engine, b"a\n1\n", HALLE, "L", mapping=["a=phone_number"])


def test_bad_list_name_and_unknown_authority(engine: Engine) -> None:
    with pytest.raises(ContactInputError, match="list"):
        import_contacts(engine, b"gsm\n0470123456\n", HALLE, "  ")
    with pytest.raises(ContactInputError, match="authority"):
        import_contacts(engine, b"gsm\n0470123456\n", "99999", "L")


def test_error_report_csv_escapes_formulas() -> None:
    result_errors = [{"row": 2, "field": "name", "column": "name",
                      "value": '=HYPERLINK("http://evil.example","x")',
                      "reason": "a formula, not a value", "code": "formula"}]
    report = error_report_csv(result_errors)  # type: ignore[arg-type]
    rows = list(csv.reader(io.StringIO(report)))
    assert rows[0] == ["row", "column", "field", "value", "reason"]
    assert rows[1][3] == '\'=HYPERLINK("http://evil.example","x")'
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_viewer_and_operator_may_not_import(engine: Engine) -> None:
    from tocsin.authorities.access import load_actor
    from tocsin.authorities.services import create_user

    create_user(engine, "op", "correct horse battery staple", HALLE, role="operator")
    with read_transaction(engine) as s:
        actor = load_actor(s, "op")
    with pytest.raises(Denied):
        import_contacts(engine, b"gsm\n0470123456\n", HALLE, "L", actor=actor)


# ----------------------------------------------------------------------------- groups


def test_static_group_lifecycle(any_engine: Engine) -> None:
    import_contacts(any_engine, fixture("ok.xlsx"), HALLE, "Vrijwilligers")
    assert create_group(any_engine, HALLE, "Brandweer")["kind"] == "static"
    with pytest.raises(ContactInputError, match="already"):
        create_group(any_engine, HALLE, "Brandweer")
    added = change_members(any_engine, HALLE, "Brandweer", "Vrijwilligers",
                           ["0470 12 34 56", "anna@example.de"])
    assert (added["changed"], added["members"]) == (2, 2)
    again = change_members(any_engine, HALLE, "Brandweer", "Vrijwilligers")
    assert (again["changed"], again["members"]) == (1, 3)
    with pytest.raises(ContactInputError, match="not in list"):
        change_members(any_engine, HALLE, "Brandweer", "Vrijwilligers", ["0479 99 99 99"])
    removed = change_members(any_engine, HALLE, "Brandweer", "Vrijwilligers",
                             ["+32470123456"], remove=True)
    assert removed["members"] == 2
    shown = group_members(any_engine, HALLE, "Brandweer")
    assert [m["name"] for m in shown["members"]] == ["Marie Dubois", "Anna Schmidt"]
    assert list_groups(any_engine, HALLE) == [{"name": "Brandweer", "kind": "static",
                                               "authority": HALLE, "members": 2}]
    assert delete_group(any_engine, HALLE, "Brandweer")["members"] == 2
    assert list_groups(any_engine, HALLE) == []
    assert len(contacts_of(any_engine)) == 3                  # contacts stay in their list


def test_groups_and_lists_are_shared_within_the_cooperation(any_engine: Engine) -> None:
    from tocsin.authorities.access import command_line_actor
    from tocsin.authorities.governance import create_cooperation

    create_cooperation(any_engine, command_line_actor(any_engine, "BE"), "Pajottenland",
                       [HALLE, PEPINGEN])
    import_contacts(any_engine, fixture("ok.tsv"), HALLE, "Vrijwilligers")
    create_group(any_engine, HALLE, "Brandweer")
    assert [g["authority"] for g in list_groups(any_engine, PEPINGEN)] == [HALLE]
    change_members(any_engine, PEPINGEN, "Brandweer", "Vrijwilligers")
    assert [c["name"] for c in contact_lists(any_engine, PEPINGEN)] == ["Vrijwilligers"]
    with pytest.raises(ContactInputError, match="no group"):
        group_members(any_engine, MALMEDY, "Brandweer")


# ----------------------------------------------------------------------------- campaigns


def _request(authority: str = HALLE, **kw: object):  # type: ignore[no-untyped-def]
    from tocsin.campaigns.services import CampaignRequest

    return CampaignRequest(authority_id=authority, texts={"nl": "Oefening.",
                                                          "fr": "Exercice."},
                           channels=["sms", "email"], kind="group", **kw)  # type: ignore[arg-type]


def test_campaign_to_a_list_and_a_group_deduplicates_with_subscribers(
        any_engine: Engine) -> None:
    from tocsin.campaigns.services import estimate_campaign, launch_campaign
    from tocsin.dispatch.models import Delivery
    from tocsin.subscribers.importer import import_subscribers

    # A registered subscriber of Halle who is also on the list: reached once.
    import_subscribers(any_engine, b"subscriber_id,language,mobile,email,lat,lon\n"
                       b"S1,fr,+32470123456,,50.7339,4.2350\n")
    import_contacts(any_engine, fixture("ok.xlsx"), HALLE, "Vrijwilligers")
    import_contacts(any_engine, b"name,gsm,e-mail\nJan,0470 12 34 56,jan@example.org\n"
                    b"Els,0475 00 00 01,\n", HALLE, "Schooldirecties")
    create_group(any_engine, HALLE, "Directie")
    change_members(any_engine, HALLE, "Directie", "Schooldirecties")
    estimate = estimate_campaign(any_engine, _request(municipality_nis=HALLE,
                                                      lists=["Vrijwilligers"],
                                                      groups=["Directie"]))
    # sms: S1/Jan, Marie, Anna, Els; email: jan@, anna@
    assert estimate["recipients"] == {"sms": 4, "email": 2}
    only = estimate_campaign(any_engine, _request(groups=["Directie"]))
    assert only["recipients"] == {"sms": 2, "email": 1}
    assert only["area_name"] == "Directie"
    campaign_id = launch_campaign(any_engine, _request(lists=["Vrijwilligers"]))
    with read_transaction(any_engine) as s:
        rows = s.execute(sa.select(Delivery.channel, Delivery.address).where(
            Delivery.campaign_id == campaign_id)).all()
    assert sorted(rows) == [("email", "anna@example.de"), ("email", "jan@example.org"),
                            ("sms", "+32470123456"), ("sms", "+32471123456"),
                            ("sms", "+4915123456789")]


def test_update_of_a_list_campaign_reaches_the_list_as_it_is_now(engine: Engine) -> None:
    from tocsin.campaigns.services import CampaignRequest, launch_campaign, update_campaign
    from tocsin.dispatch.models import Delivery

    import_contacts(engine, b"gsm\n0470 12 34 56\n", HALLE, "Vrijwilligers")
    original = launch_campaign(engine, _request(lists=["Vrijwilligers"]))
    import_contacts(engine, b"gsm\n0470 12 34 56\n0471 12 34 56\n", HALLE, "Vrijwilligers")
    update = update_campaign(engine, original, CampaignRequest(
        authority_id=HALLE, texts={"nl": "Update.", "fr": "Mise à jour."}, channels=["sms"],
        kind=""))
    with read_transaction(engine) as s:
        sent = sorted(s.scalars(sa.select(Delivery.address).where(
            Delivery.campaign_id == update)))
    assert sent == ["+32470123456", "+32471123456"]


def test_scheduled_list_campaign_resolves_the_list_when_due(engine: Engine) -> None:
    import datetime as dt

    from tocsin.campaigns.launch import fan_out_scheduled
    from tocsin.campaigns.services import launch_campaign
    from tocsin.core.db import utcnow

    import_contacts(engine, b"gsm\n0470 12 34 56\n", HALLE, "Vrijwilligers")
    when = utcnow() + dt.timedelta(hours=1)
    campaign_id = launch_campaign(engine, _request(lists=["Vrijwilligers"],
                                                   scheduled_for=when))
    import_contacts(engine, b"gsm\n0471 12 34 56\n", HALLE, "Vrijwilligers")
    assert fan_out_scheduled(engine, campaign_id, now=when + dt.timedelta(seconds=1)) == 1


def test_campaign_to_unknown_list_or_with_cap_is_refused(engine: Engine) -> None:
    from tocsin.campaigns.services import CampaignInputError, estimate_campaign

    with pytest.raises(CampaignInputError, match="list: no list 'Nope'"):
        estimate_campaign(engine, _request(lists=["Nope"]))
    import_contacts(engine, fixture("ok.tsv"), HALLE, "Vrijwilligers")
    req = _request(lists=["Vrijwilligers"])
    req.channels = ["sms", "cap"]
    req.kind = "alert"
    with pytest.raises(CampaignInputError, match="channels"):
        estimate_campaign(engine, req)


def test_geographic_group_reaches_registered_subscribers_at_send_time(
        engine: Engine) -> None:
    from tocsin.campaigns.services import estimate_campaign
    from tocsin.subscribers.importer import import_subscribers

    square = {"type": "Polygon", "coordinates": [[[4.22, 50.72], [4.25, 50.72],
                                                  [4.25, 50.745], [4.22, 50.745],
                                                  [4.22, 50.72]]]}
    create_group(engine, HALLE, "Centrum", area_geojson=square)
    assert estimate_campaign(engine, _request(groups=["Centrum"]))["recipients"]["sms"] == 0
    import_subscribers(engine, b"subscriber_id,language,mobile,email,lat,lon\n"
                       b"S1,nl,+32470000001,,50.7339,4.2350\n"
                       b"S2,nl,+32470000002,,50.80,4.40\n")
    assert estimate_campaign(engine, _request(groups=["Centrum"]))["recipients"]["sms"] == 1


def test_report_csv_lists_each_contact_and_only_pseudonyms_of_citizens(
        any_engine: Engine) -> None:
    """Issue 9, point 4: the CSV report carries the per-recipient delivery list for the
    authority's own groups; registered citizens (a geographic group) only under a
    pseudonym."""
    import csv
    import io

    from tocsin.campaigns.report_export import export_report
    from tocsin.campaigns.services import launch_campaign
    from tocsin.subscribers.importer import import_subscribers

    import_contacts(any_engine, b"name,gsm,e-mail\nJan,0470 12 34 56,jan@example.org\n"
                    b"Els,0475 00 00 01,\n", HALLE, "Schooldirecties")
    square = {"type": "Polygon", "coordinates": [[[4.22, 50.72], [4.25, 50.72],
                                                  [4.25, 50.745], [4.22, 50.745],
                                                  [4.22, 50.72]]]}
    create_group(any_engine, HALLE, "Centrum", area_geojson=square)
    import_subscribers(any_engine, b"subscriber_id,language,mobile,email,lat,lon\n"
                       b"S1,nl,+32470000001,,50.7339,4.2350\n")
    campaign_id = launch_campaign(any_engine, _request(lists=["Schooldirecties"],
                                                       groups=["Centrum"]))
    text = export_report(any_engine, campaign_id, "csv", lang="nl").content.decode()
    assert "+32470000001" not in text  # the citizen's number never appears
    table = list(csv.reader(io.StringIO(text)))
    start = table.index([])
    header, rows = table[start + 1], table[start + 2:]
    assert header[:4] == ["Ontvanger", "Lijst of groep", "Kanaal", "Nummer of adres"]
    named = sorted((r[0], r[2], r[3]) for r in rows if not r[0].startswith("citizen-"))
    assert named == [("Els", "sms", "+32475000001"), ("Jan", "email", "jan@example.org"),
                     ("Jan", "sms", "+32470123456")]
    citizens = [r for r in rows if r[0].startswith("citizen-")]
    assert len(citizens) == 1 and citizens[0][1] == "Centrum" and citizens[0][3] == ""
    again = export_report(any_engine, campaign_id, "csv", lang="nl").content.decode()
    assert citizens[0][0] in again  # a stable pseudonym


# ----------------------------------------------------------------------------- CLI


def test_cli_contract_bad_list_exits_1_with_errors(engine: Engine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tocsin.cli import app

    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TOCSIN_DATABASE_URL", url)
    bad = tmp_path / "c.csv"
    bad.write_text("name,mobile\nX,0470 12 34\n")
    report = tmp_path / "errors.csv"
    result = CliRunner().invoke(app, ["contacts", "import", str(bad), "--authority", HALLE,
                                      "--list", "Test", "--json", "--errors-csv",
                                      str(report)])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout.splitlines()[0])
    assert out["imported"] == out["updated"] == out["removed"] == 0
    assert out["errors"][0] | {"reason": ""} == {
        "row": 2, "field": "mobile", "column": "mobile", "value": "0470 12 34",
        "reason": "", "code": "phone"}
    assert "row 2" in result.stderr and "Traceback" not in result.output
    assert report.read_text().startswith("row,column,field,value,reason")
    good = tmp_path / "g.csv"
    good.write_text("name,mobile\nX,0470 12 34 56\n")
    result = CliRunner().invoke(app, ["contacts", "import", str(good), "--authority", HALLE,
                                      "--list", "Test", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["imported"] == 1
    for args in (["groups", "create", "Ploeg", "--authority", HALLE],
                 ["groups", "add", "Ploeg", "--authority", HALLE, "--list", "Test"],
                 ["groups", "list", "--authority", HALLE, "--json"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["members"] == 1
    result = CliRunner().invoke(app, ["groups", "add", "Nope", "--authority", HALLE,
                                      "--list", "Test"])
    assert result.exit_code == 1 and "group: no group 'Nope'" in result.stderr


# ----------------------------------------------------------------------------- web


@pytest.fixture
def web(engine: Engine):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tocsin.authorities.services import create_user
    from tocsin.web.app import create_app

    create_user(engine, "admin.halle", "correct horse battery staple", HALLE, role="admin")
    create_user(engine, "viewer.halle", "correct horse battery staple", HALLE, role="viewer")
    create_user(engine, "op.halle", "correct horse battery staple", HALLE, role="operator")
    with TestClient(create_app(engine, start_worker=False)) as c:
        yield c


def test_web_import_upload_mapping_preview_confirm_result(web, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    import re

    from weblogin import session_csrf

    token = session_csrf(web, "admin.halle", "correct horse battery staple", page="/contacts")
    r = web.post("/contacts/import", data={"list": "Vrijwilligers", "csrf_token": token},
                 files={"file": ("lijst.csv", fixture("err_unknown_column.csv"), "text/csv")})
    assert r.status_code == 422 and 'name="map:Functie"' in r.text   # the mapping step
    action = re.search(r'formaction="(/contacts/import/[^/"]+)/preview"', r.text)
    assert action
    base = action.group(1)
    r = web.post(f"{base}/preview", data={"csrf_token": token, "map:Functie": "ignore",
                                          "map:name": "name", "map:mobile": "mobile"})
    assert r.status_code == 200 and "1 contacts: 1 new, 0 updated, 0 removed" in r.text
    assert contacts_of(engine) == {}                                 # nothing yet
    assert re.search(r'<option value="ignore" selected>', r.text)      # Functie kept ignored
    r = web.post(f"{base}/confirm", data={"csrf_token": token, "map:Functie": "ignore"})
    assert r.status_code == 200 and 'id="import-result"' in r.text
    assert list(contacts_of(engine)) == ["+32470123456"]
    r = web.post(f"{base}/confirm", data={"csrf_token": token})
    assert r.status_code == 422 and "upload the file again" in r.text  # used once
    page = web.get("/contacts?lang=nl").text
    assert "Vrijwilligers" in page and 'lang="nl"' in page


def test_web_import_errors_are_listed_and_the_report_escapes_formulas(web) -> None:  # type: ignore[no-untyped-def]
    import re

    from weblogin import session_csrf

    token = session_csrf(web, "admin.halle", "correct horse battery staple", page="/contacts")
    r = web.post("/contacts/import?lang=fr", data={"list": "L", "csrf_token": token},
                 files={"file": ("l.csv", fixture("err_formula.csv"), "text/csv")})
    assert r.status_code == 422 and 'id="import-errors"' in r.text
    assert 'formaction="/contacts/import/' in r.text and "/confirm" not in r.text
    link = re.search(r'href="(/contacts/import/[^"]+/errors\.csv[^"]*)"', r.text)
    assert link
    report = web.get(link.group(1).replace("&amp;", "&"))
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[1][0] == "2" and rows[1][3].startswith("'=HYPERLINK")
    assert rows[1][4].startswith("une formule, pas une valeur")      # the user's language
    assert rows[0] == ["Ligne", "Colonne", "Champ", "Valeur", "Motif"]  # headers too
    assert "not a value" not in rows[1][4] and rows[1][2] == "Nom"     # no English left


def test_web_groups_and_viewer_refused(web, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    from weblogin import session_csrf

    import_contacts(engine, fixture("ok.xlsx"), HALLE, "Vrijwilligers")
    token = session_csrf(web, "admin.halle", "correct horse battery staple", page="/groups")
    r = web.post("/groups", data={"name": "Brandweer", "csrf_token": token},
                 follow_redirects=False)
    assert r.status_code == 303
    square = json.dumps({"type": "Polygon", "coordinates": [[[4.22, 50.72], [4.25, 50.72],
                                                             [4.25, 50.745], [4.22, 50.72]]]})
    r = web.post("/groups", data={"name": "Centrum", "csrf_token": token},
                 files={"area": ("c.geojson", square.encode(), "application/geo+json")})
    assert r.status_code == 200 and "geographic" in r.text
    r = web.post("/groups", data={"name": "Fout", "csrf_token": token},
                 files={"area": ("c.geojson", b"{not json", "application/geo+json")})
    assert r.status_code == 422 and 'id="groups-error"' in r.text
    delete_group(engine, HALLE, "Centrum")
    r = web.post("/groups/members", data={"group": "Brandweer", "list_name": "Vrijwilligers",
                                          "action": "add", "csrf_token": token})
    assert r.status_code == 200 and 'id="groups-done"' in r.text
    assert group_members(engine, HALLE, "Brandweer")["members"][0]["name"] == "Jan Peeters"
    r = web.post("/groups", data={"name": "Brandweer", "csrf_token": token})
    assert r.status_code == 422 and "already" in r.text
    r = web.post("/groups/delete", data={"group": "Brandweer", "csrf_token": token})
    assert r.status_code == 200 and list_groups(engine, HALLE) == []
    web.post("/logout", data={"csrf_token": token})
    session_csrf(web, "viewer.halle", "correct horse battery staple", page="/")
    assert web.get("/contacts").status_code == 403


def test_web_operator_is_told_who_may_import(web) -> None:  # type: ignore[no-untyped-def]
    """An operator (no contacts.manage) sees no import form, and a sentence saying who
    may import, in their language (issue 10 trial: the form was silently missing)."""
    from weblogin import session_csrf

    session_csrf(web, "op.halle", "correct horse battery staple", page="/")
    page = web.get("/contacts?lang=fr").text
    assert 'action="/contacts/import"' not in page
    assert 'id="import-who"' in page and "administrat" in page
    assert "Only an administrator" not in page                       # translated
    groups = web.get("/groups?lang=nl").text
    assert 'id="groups-who"' in groups and "Only an administrator" not in groups


def test_web_import_refusals_are_in_the_readers_language(web) -> None:  # type: ignore[no-untyped-def]
    """An empty file and a too-long list name are refused in French (fresh-user trial:
    the reason was left in English)."""
    from weblogin import session_csrf

    token = session_csrf(web, "admin.halle", "correct horse battery staple", page="/contacts")
    r = web.post("/contacts/import?lang=fr", data={"list": "L", "csrf_token": token},
                 files={"file": ("l.csv", b"", "text/csv")})
    assert r.status_code == 422 and 'id="contacts-error"' in r.text
    assert "choose a file" not in r.text and "choisissez un fichier" in r.text
    r = web.post("/contacts/import?lang=fr", data={"list": "x" * 300, "csrf_token": token},
                 files={"file": ("l.csv", b"gsm\n0470123456\n", "text/csv")})
    assert r.status_code == 422 and "characters; at most" not in r.text
    assert "300 caractères" in r.text
    r = web.post("/contacts/import?lang=nl", data={"list": "L", "csrf_token": token},
                 files={"file": ("l.csv", b"", "text/csv")})
    assert "choose a file" not in r.text


def test_contact_input_errors_are_coded() -> None:
    from tocsin.core.errors import InputError
    from tocsin.subscribers.contacts import check_list_name

    with pytest.raises(InputError) as caught:
        check_list_name("x" * 300)
    assert caught.value.code == "text_too_long" and "300" in str(caught.value.params["length"])
