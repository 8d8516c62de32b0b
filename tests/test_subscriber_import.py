"""Contact-list CSV import (SPEC F7, F10): every bad row reported, nothing half-written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tocsin.core.db import make_engine
from tocsin.core.migrate import upgrade
from tocsin.subscribers.demo import write_subscriber_csv
from tocsin.subscribers.importer import import_subscribers
from tocsin.subscribers.models import Address, ContactPoint, Subscriber
from tocsin.subscribers.rules import parse_subscriber_csv

HEADER = "subscriber_id,language,mobile,email,lat,lon"

GOOD = f"""{HEADER}
A1,nl,0475 12 34 56,Jan.Peeters@Example.ORG,50.8466,4.3528
A1,,,,51.0543,3.7174
A1,nl,+32475123456,,50.8798,4.7005
B2,fr,,marie@example.org,50.4108,4.4446
C3,de,0032 487 11 22 33,,50.6257,6.0322
""".encode()


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine)
    return engine


def counts(engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.scalar(sa.select(sa.func.count()).select_from(t))
            for t in (Subscriber, ContactPoint, Address)
        )


def test_good_file_imports_with_counts(engine):
    report = import_subscribers(engine, GOOD)
    assert report.to_json() == {"rows": 5, "subscribers": 3, "addresses": 5, "errors": []}
    assert counts(engine) == (3, 4, 5)
    with engine.connect() as conn:
        subs = conn.execute(sa.select(Subscriber.id, Subscriber.external_id).order_by(
            Subscriber.id)).all()
        assert [s.external_id for s in subs] == ["A1", "B2", "C3"]
        cps = conn.execute(sa.select(ContactPoint.kind, ContactPoint.value,
                                     ContactPoint.verified_at)).all()
        assert {(c.kind, c.value) for c in cps} == {
            ("mobile", "+32475123456"), ("email", "Jan.Peeters@example.org"),
            ("email", "marie@example.org"), ("mobile", "+32487112233"),
        }
        assert all(c.verified_at is not None for c in cps)
        primary = conn.execute(sa.select(Address.lat, Address.position).where(
            Address.subscriber_id == subs[0].id).order_by(Address.position)).all()
        assert [(a.lat, a.position) for a in primary] == [(50.8466, 0), (51.0543, 1),
                                                           (50.8798, 2)]


def test_bom_and_semicolon(engine, tmp_path):
    path = write_subscriber_csv(
        [{"subscriber_id": "X", "language": "fr", "mobile": "0499 99 88 77",
          "lat": "50,85", "lon": "4,35"}],
        tmp_path / "x.csv", delimiter=";", bom=True,
    )
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b";" in data.splitlines()[0]
    report = import_subscribers(engine, data)
    assert report.to_json() == {"rows": 1, "subscribers": 1, "addresses": 1, "errors": []}
    assert counts(engine) == (1, 1, 1)


BAD = f"""{HEADER}
S1,nl,0475 12 34 5,,50.85,4.35
S2,nl,02 511 11 11,,50.85,4.35
S3,fr,,not-an-email,50.85,4.35
S4,fr,,s4@example.org,48.85,2.35
S5,fr,,s5@example.org,4.35,50.85
S6,fr,,s6@example.org,50.1,4.1
S6,,,,50.2,4.2
S6,,,,50.3,4.3
S6,,,,50.4,4.4
S6,,,,50.5,4.5
S6,,,,50.6,4.6
S7,nl,0475 00 00 01,,50.85,4.35
S7,nl,0475 00 00 02,,50.85,4.35
S8,nl,,,50.85,4.35
S9,xx,0475 00 00 03,,50.85,4.35
S10,fr,,s10@example.org,0,0
S11,fr,,s11@example.org,abc,4.35
OK1,fr,,ok@example.org,50.85,4.35
""".encode()


def test_every_bad_row_reported_and_nothing_written(engine):
    report = import_subscribers(engine, BAD)
    got = {(e["line"], e["field"]): e for e in report.errors}
    expected = {
        (2, "mobile"): "not a valid phone number",
        (3, "mobile"): "not a mobile number",
        (4, "email"): "not a valid e-mail address",
        (5, "lat"): "outside Belgium",
        (6, "lat"): "looks like lon,lat swapped",
        (12, "subscriber_id"): "more than 5 addresses",
        (14, "mobile"): "contradicts line 13",
        (15, "mobile"): "a mobile or an e-mail is required",
        (16, "language"): "unknown language",
        (17, "lat"): "0,0",
        (18, "lat"): "not a number",
    }
    for key, reason in expected.items():
        assert key in got, (key, report.errors)
        assert reason in got[key]["reason"], got[key]
    assert len(report.errors) == len(expected), report.errors
    assert got[(14, "mobile")]["value"] == "0475 00 00 02"
    assert got[(3, "mobile")]["value"] == "02 511 11 11"
    assert report.subscribers == 0 and report.addresses == 0 and report.rows == 18
    assert set(report.to_json()) == {"rows", "subscribers", "addresses", "errors"}
    assert counts(engine) == (0, 0, 0)


def test_missing_and_unknown_columns():
    plan = parse_subscriber_csv(b"subscriber_id;language;mobile;lat;lon;phone\nA;nl;;50;4;x\n")
    assert {(e["line"], e["field"], e["reason"]) for e in plan.errors} == {
        (1, "email", "missing column"), (1, "phone", "unknown column"),
    }
    assert plan.subscribers == []


def test_missing_column_nothing_written(engine):
    report = import_subscribers(engine, b"subscriber_id,language,mobile,lat,lon\nA,nl,,50,4\n")
    assert [(e["line"], e["field"], e["reason"]) for e in report.errors] == [
        (1, "email", "missing column")
    ]
    assert counts(engine) == (0, 0, 0)


def test_not_utf8():
    plan = parse_subscriber_csv(HEADER.encode() + b"\nA,fr,,caf\xe9@example.org,50.8,4.3\n")
    assert plan.errors[0]["line"] == 2 and plan.errors[0]["reason"] == "not UTF-8"


def test_columns_in_any_order_and_blank_lines():
    plan = parse_subscriber_csv(b"lon,lat,email,mobile,language,subscriber_id\n\n"
                                b"4.35,50.85,a@example.org,,EN,Z\n")
    assert plan.errors == []
    assert plan.rows == 1
    assert plan.subscribers[0].language == "en"
    assert plan.subscribers[0].addresses[0].lat == 50.85


def test_dry_run_writes_nothing(engine):
    report = import_subscribers(engine, GOOD, dry_run=True)
    assert report.to_json() == {"rows": 5, "subscribers": 3, "addresses": 5, "errors": []}
    assert counts(engine) == (0, 0, 0)


def test_family_phone_shared_by_two_subscribers(engine):
    data = f"""{HEADER}
F1,nl,0475 11 11 11,,50.85,4.35
F2,fr,+32475111111,,50.85,4.35
""".encode()
    report = import_subscribers(engine, data)
    assert report.errors == [] and report.subscribers == 2
    with engine.connect() as conn:
        owners = conn.execute(sa.select(ContactPoint.subscriber_id).where(
            ContactPoint.value == "+32475111111")).all()
    assert len(owners) == 2


def test_already_registered(engine):
    assert import_subscribers(engine, GOOD).ok
    again = import_subscribers(engine, GOOD)
    assert {(e["line"], e["value"], e["reason"]) for e in again.errors} == {
        (2, "A1", "already registered"), (5, "B2", "already registered"),
        (6, "C3", "already registered"),
    }
    assert counts(engine) == (3, 4, 5)


@pytest.mark.slow
def test_100k_rows_bulk(engine):
    import time

    lines = [HEADER]
    for i in range(100_000):
        sid = i // 2
        lines.append(f"S{sid},nl,+3247{sid * 7919 % 10**7:07d},p{sid}@example.org,"
                     f"{50.5 + (i % 97) / 200:.5f},{4 + (i % 89) / 100:.5f}")
    start = time.perf_counter()
    report = import_subscribers(engine, "\n".join(lines).encode())
    elapsed = time.perf_counter() - start
    assert report.errors == []
    assert counts(engine) == (50_000, 100_000, 100_000)
    assert elapsed < 45, elapsed
    with engine.connect() as conn:
        first = conn.execute(sa.select(Subscriber.external_id).order_by(Subscriber.id)
                             .limit(3)).scalars().all()
    assert first == ["S0", "S1", "S2"]


def test_a_field_over_the_csv_limit_is_a_row_error_naming_line_and_column(engine):
    """The csv module refuses fields over ``csv.field_size_limit()``: that is a row error
    with its line and column, never an exception (issue 7, point 6)."""
    import csv

    huge = "x" * (csv.field_size_limit() + 10)
    data = (f"{HEADER}\nA1,nl,,a@example.org,50.8466,4.3528\n"
            f"B2,fr,,{huge}@example.org,50.41,4.44\nC3,fr,,c@example.org,50.4,4.4\n").encode()
    report = import_subscribers(engine, data)
    assert [(e["line"], e["field"]) for e in report.errors] == [(3, "email")]
    assert "longer than" in report.errors[0]["reason"]
    assert counts(engine) == (0, 0, 0)
    # In the header too, and in a quoted field spanning lines.
    plan = parse_subscriber_csv(f"{HEADER},{huge}\n".encode())
    assert [(e["line"], e["field"]) for e in plan.errors] == [(1, "column 7")]
    plan = parse_subscriber_csv(f'{HEADER}\nA1,nl,,"a\n{huge}",50.8,4.3\n'.encode())
    assert [(e["line"], e["field"]) for e in plan.errors] == [(2, "email")]


def test_long_bad_values_are_quoted_short():
    plan = parse_subscriber_csv(f"{HEADER}\nA1,nl,,{'y' * 5000},50.8466,4.3528\n".encode())
    assert plan.errors and all(len(e["value"]) < 100 for e in plan.errors)


# ------------------------------------------------ general-interest opt-in column (issue 7.9)

OPT_HEADER = f"{HEADER},general_interest"


def _opt_ins(engine) -> dict[str, set[bool]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Subscriber.external_id, ContactPoint.info_opt_in)
                            .join(ContactPoint, ContactPoint.subscriber_id == Subscriber.id))
        out: dict[str, set[bool]] = {}
        for external_id, opt_in in rows:
            out.setdefault(external_id, set()).add(opt_in)
    return out


def test_general_interest_column_sets_the_opt_in(engine):
    data = f"""{OPT_HEADER}
Y1,fr,0475 00 00 11,y1@example.org,50.85,4.35,yes
Y2,fr,,y2@example.org,50.85,4.35,TRUE
Y3,nl,0475 00 00 13,,50.85,4.35, 1
N1,fr,,n1@example.org,50.85,4.35,no
N2,fr,,n2@example.org,50.85,4.35,False
N3,fr,,n3@example.org,50.85,4.35,0
N4,fr,,n4@example.org,50.85,4.35,
N4,,,,50.86,4.36,no
""".encode()
    report = import_subscribers(engine, data)
    assert report.errors == [] and report.subscribers == 7
    assert _opt_ins(engine) == {"Y1": {True}, "Y2": {True}, "Y3": {True}, "N1": {False},
                                "N2": {False}, "N3": {False}, "N4": {False}}


def test_general_interest_column_is_optional(engine):
    assert import_subscribers(engine, GOOD).ok
    assert all(v == {False} for v in _opt_ins(engine).values())


def test_general_interest_bad_value_names_line_field_value(engine):
    data = f"""{OPT_HEADER}
A,fr,,a@example.org,50.85,4.35,yes
B,fr,,b@example.org,50.85,4.35,maybe
C,fr,,c@example.org,50.85,4.35,yes
C,,,,50.86,4.36,no
""".encode()
    report = import_subscribers(engine, data)
    assert [(e["line"], e["field"], e["value"]) for e in report.errors] == [
        (3, "general_interest", "maybe"), (5, "general_interest", "no")]
    assert "yes, no, true, false, 1 or 0" in report.errors[0]["reason"]
    assert report.errors[1]["reason"] == "contradicts line 4"
    assert counts(engine) == (0, 0, 0)


def test_cli_import_reports_a_bad_general_interest(reference_db, tmp_path, monkeypatch):
    """The CLI needs an initialised database (authorities loaded): the reference one."""
    import shutil

    from typer.testing import CliRunner

    from tocsin.cli import app

    path = tmp_path / "list.csv"
    path.write_text(f"{OPT_HEADER}\nA,fr,,a@example.org,50.85,4.35,perhaps\n", encoding="utf-8")
    shutil.copy(reference_db, tmp_path / "ref.db")
    monkeypatch.setenv("TOCSIN_DATABASE_URL", f"sqlite:///{tmp_path / 'ref.db'}")
    result = CliRunner().invoke(app, ["subscribers", "import", str(path)])
    assert result.exit_code != 0
    assert "line 2" in result.output and "general_interest" in result.output
    assert "perhaps" in result.output


def test_write_subscriber_csv_round_trips_the_opt_in(engine, tmp_path):
    path = write_subscriber_csv(
        [{"subscriber_id": "O", "language": "fr", "email": "o@example.org",
          "lat": 50.85, "lon": 4.35, "general_interest": True},
         {"subscriber_id": "P", "language": "fr", "email": "p@example.org",
          "lat": 50.85, "lon": 4.35, "general_interest": False}],
        tmp_path / "o.csv")
    assert import_subscribers(engine, path.read_bytes()).ok
    assert _opt_ins(engine) == {"O": {True}, "P": {False}}
