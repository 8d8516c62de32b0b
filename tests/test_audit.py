"""The audit log (F6): hash-chained, pseudonymous, with personal data on the side.

``tocsin audit verify`` must name the first entry that was modified, deleted
before or appended out of chain; an anchor kept elsewhere catches a truncated or
fully recomputed chain; retention clears personal data without breaking it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tocsin.authorities import audit
from tocsin.authorities.audit import (
    GENESIS_HASH,
    Anchor,
    current_anchor,
    entry_hash,
    export_csv,
    parse_anchor,
    purge_personal,
    record_audit,
    verify_chain,
)
from tocsin.authorities.models import AuditPersonal
from tocsin.authorities.services import create_user, log_action
from tocsin.authorities.services import record_audit as services_record_audit
from tocsin.cli import app
from tocsin.core.db import make_engine, transaction, utcnow
from tocsin.core.migrate import upgrade

runner = CliRunner()


def _append(engine: Engine, n: int, actor: str = "system", source: str | None = None) -> None:
    for i in range(n):
        with transaction(engine) as s:
            record_audit(s, actor, "test.action", target=f"t{i}", source=source,
                         detail={"i": i, "x": 0.1, "text": "Brüssel"})


def _rows(engine: Engine) -> list[sa.Row]:
    with engine.connect() as c:
        return list(c.execute(sa.text(
            "SELECT id, seq, at, actor, actor_id, on_behalf_of, action, target, source, "
            "detail, prev_hash, hash FROM audit_log ORDER BY id")))


def _raw(engine: Engine, sql: str, **params: object) -> None:
    with engine.begin() as c:
        c.execute(sa.text(sql), params)


def _sqlite_time(value: dt.datetime) -> str:
    """A UTC time as SQLAlchemy stores it in SQLite."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _rehash(row: sa.Row, prev_hash: str, **changes: object) -> str:
    fields = {
        "seq": row.seq, "at": row.at, "actor": row.actor, "actor_id": row.actor_id,
        "on_behalf_of": row.on_behalf_of, "action": row.action, "target": row.target,
        "source": row.source,
        "detail": json.loads(row.detail) if isinstance(row.detail, str) else row.detail,
        "prev_hash": prev_hash,
    }
    fields.update(changes)
    if isinstance(fields["at"], str):  # SQLite hands the stored text back
        fields["at"] = dt.datetime.fromisoformat(fields["at"]).replace(tzinfo=dt.UTC)
    elif fields["at"].tzinfo is None:
        fields["at"] = fields["at"].replace(tzinfo=dt.UTC)
    return entry_hash(**fields)  # type: ignore[arg-type]


# --- appending -------------------------------------------------------------------------


def test_entries_are_chained_from_genesis(any_engine: Engine) -> None:
    engine = any_engine
    _append(engine, 3)
    rows = _rows(engine)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS_HASH
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    assert all(len(r.hash) == 64 and r.hash == _rehash(r, r.prev_hash) for r in rows)
    report = verify_chain(engine)
    assert report.ok and report.entries == 3 and report.head_hash == rows[2].hash


def test_usernames_and_addresses_go_to_the_side_table(engine: Engine) -> None:
    user = create_user(engine, "olivia", "correct horse battery", "25072")
    with transaction(engine) as s:
        record_audit(s, "olivia", "login", target="25072", source="192.0.2.7")
        record_audit(s, "nobody-such", "login_failed", source="2001:db8::1")
        record_audit(s, "nobody-such", "login_failed", source="192.0.2.7")
        record_audit(s, "cli", "user.update", source="cli")
    rows = _rows(engine)
    login, failed1, failed2, by_cli = rows[-4:]
    assert (login.actor_id, login.actor) == (f"user:{user.id}", f"user:{user.id}")
    assert login.source.startswith("addr:") and "192.0.2.7" not in login.source
    assert failed1.actor_id.startswith("name:") and failed1.actor_id == failed2.actor_id
    assert failed2.source == login.source  # the same address, the same pseudonym
    assert (by_cli.actor_id, by_cli.source) == ("cli", "cli")
    dumped = json.dumps([list(map(str, r)) for r in rows])
    assert "olivia" not in dumped and "nobody-such" not in dumped and "192.0.2.7" not in dumped
    with transaction(engine) as s:
        side = {p.entry_id: (p.actor_name, p.address) for p in s.scalars(sa.select(AuditPersonal))}
    assert side[login.id] == ("olivia", "192.0.2.7")
    assert side[failed1.id] == ("nobody-such", "2001:db8::1")
    assert by_cli.id not in side
    # create_user names the new user by id; the user name is personal data on the side.
    created = next(r for r in rows if r.action == "user.create")
    assert created.target == f"user:{user.id}" and "olivia" not in str(created.detail)
    assert verify_chain(engine).ok


def test_old_signature_and_on_behalf_of(engine: Engine) -> None:
    assert services_record_audit is record_audit
    log_action(engine, "system", "test.logout", target="x", source="scheduler",
               detail={"a": 1})
    with transaction(engine) as s:
        record_audit(s, None, "campaign.launch", target="c1", actor_id="user:1",
                     on_behalf_of="23027", detail={"authority": "23027"})
        record_audit(s, "CAP gateway key 7", "cap.alert", actor_id="key:7", source="198.51.100.2")
    rows = _rows(engine)
    assert (rows[0].actor_id, rows[0].source, rows[0].action) == ("system", "scheduler",
                                                                  "test.logout")
    assert (rows[1].actor_id, rows[1].on_behalf_of) == ("user:1", "23027")
    assert rows[2].actor_id == "key:7"
    # on_behalf_of is covered by the hash.
    _raw(engine, "UPDATE audit_log SET on_behalf_of = '21004' WHERE id = :id", id=rows[1].id)
    report = verify_chain(engine)
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == rows[1].id and "modified" in report.problem.reason


@pytest.mark.parametrize("kwargs, field", [
    ({"actor_id": "Olivia Operator"}, "actor_id"),
    ({"on_behalf_of": "99999"}, "on_behalf_of"),
    ({"action": ""}, "action"),
])
def test_bad_input_names_the_field_and_writes_nothing(engine: Engine, kwargs: dict[str, str],
                                                      field: str) -> None:
    args = {"action": "x.y", **kwargs}
    action = args.pop("action")
    with pytest.raises((ValueError, LookupError), match=f"^{field}:"), \
            transaction(engine) as s:
        record_audit(s, "cli", action, **args)
    assert _rows(engine) == []


# --- verify ----------------------------------------------------------------------------


def test_verify_detects_a_modified_entry(any_engine: Engine) -> None:
    engine = any_engine
    _append(engine, 5)
    rows = _rows(engine)
    _raw(engine, "UPDATE audit_log SET target = 'changed' WHERE id = :id", id=rows[2].id)
    report = verify_chain(engine)
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == rows[2].id
    assert "modified" in report.problem.reason


def test_verify_detects_a_deleted_entry(engine: Engine) -> None:
    _append(engine, 5)
    rows = _rows(engine)
    _raw(engine, "DELETE FROM audit_log WHERE id = :id", id=rows[1].id)
    report = verify_chain(engine)
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == rows[2].id
    assert "deleted" in report.problem.reason and "seq 2" in report.problem.reason


def test_verify_detects_an_entry_appended_out_of_chain(engine: Engine) -> None:
    _append(engine, 4)
    rows = _rows(engine)
    head = rows[-1]
    # A forged entry with the next seq and a self-consistent hash, but a wrong
    # prev_hash (it forks from entry 2 instead of following the head).
    forged_at = utcnow()
    forged = _rehash(head, rows[1].hash, seq=5, at=forged_at, target="forged", detail=None)
    _raw(engine, "INSERT INTO audit_log (at, actor, actor_id, action, target, seq, prev_hash, "
                 "hash) VALUES (:at, 'system', 'system', 'test.action', 'forged', 5, :p, :h)",
         at=_sqlite_time(forged_at), p=rows[1].hash, h=forged)
    forged_id = _rows(engine)[-1].id
    report = verify_chain(engine)
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == forged_id
    assert "out of chain" in report.problem.reason
    # The next honest append follows the head, so the forgery stays the first bad entry.
    _append(engine, 1)
    assert verify_chain(engine).problem.entry_id == forged_id  # type: ignore[union-attr]


def test_verify_detects_an_unhashed_entry_after_the_chain_began(engine: Engine) -> None:
    _append(engine, 2)
    _raw(engine, "INSERT INTO audit_log (at, actor, action) VALUES (:at, 'mallory', 'x')",
         at=_sqlite_time(utcnow()))
    bad = _rows(engine)[-1].id
    report = verify_chain(engine)
    assert report.problem is not None and report.problem.entry_id == bad
    assert "out of chain" in report.problem.reason and "no hash" in report.problem.reason


def test_anchor_detects_a_truncated_chain(engine: Engine) -> None:
    _append(engine, 6)
    anchor = current_anchor(engine)
    assert (anchor.seq, anchor.hash) == (6, _rows(engine)[-1].hash)
    rows = _rows(engine)
    _raw(engine, "DELETE FROM audit_log WHERE seq > 3")
    assert verify_chain(engine).ok  # the remaining chain is consistent...
    report = verify_chain(engine, anchor=anchor)  # ...but the anchored head is gone
    assert not report.ok and report.problem is not None
    assert "truncated" in report.problem.reason and "seq 6" in report.problem.reason
    assert report.problem.entry_id == rows[2].id  # the last entry that is left
    # A bare hash (without its seq) is checked too.
    report = verify_chain(engine, anchor=Anchor(seq=None, hash=anchor.hash))
    assert not report.ok and "not in the chain" in report.problem.reason  # type: ignore[union-attr]


def test_anchor_detects_a_fully_recomputed_chain(engine: Engine) -> None:
    _append(engine, 5)
    anchor = current_anchor(engine)
    rows = _rows(engine)
    # Rewrite entry 2 and recompute every hash after it: the chain is consistent again.
    prev = rows[0].hash
    for r in rows[1:]:
        target = "rewritten" if r.seq == 2 else r.target
        h = _rehash(r, prev, target=target)
        _raw(engine, "UPDATE audit_log SET target = :t, prev_hash = :p, hash = :h WHERE id = :id",
             t=target, p=prev, h=h, id=r.id)
        prev = h
    assert verify_chain(engine).ok
    report = verify_chain(engine, anchor=anchor)
    assert not report.ok and report.problem is not None
    assert report.problem.entry_id == rows[-1].id and "recomputed" in report.problem.reason
    # An anchor that still matches passes.
    assert verify_chain(engine, anchor=current_anchor(engine)).ok


def test_parse_anchor_reads_what_anchor_prints() -> None:
    line = Anchor(seq=12, hash="ab" * 32).line()
    assert parse_anchor(line) == Anchor(seq=12, hash="ab" * 32)
    assert parse_anchor(f"  {'CD' * 32}\n") == Anchor(seq=None, hash="cd" * 32)
    with pytest.raises(ValueError, match="^anchor:"):
        parse_anchor("seq=3 hash=xyz")


def test_legacy_rows_before_the_migration_stay_outside_the_chain(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/t.db")
    upgrade(engine, "0002")
    _raw(engine, "INSERT INTO audit_log (at, actor, action, source) VALUES "
                 "('2020-01-01 10:00:00', 'olivia', 'login', '192.0.2.7')")
    upgrade(engine)
    _append(engine, 2)
    report = verify_chain(engine)
    assert report.ok and (report.entries, report.legacy) == (2, 1)
    # Retention pseudonymises the legacy row in place (it is outside the hash).
    purge_personal(engine, older_than_days=1)
    legacy = _rows(engine)[0]
    assert legacy.actor.startswith("name:") and legacy.source.startswith("addr:")
    assert verify_chain(engine).ok
    engine.dispose()


# --- personal data ---------------------------------------------------------------------


def test_purge_personal_keeps_the_chain_valid(engine: Engine) -> None:
    create_user(engine, "olivia", "correct horse battery", "25072")
    _append(engine, 4, actor="olivia", source="192.0.2.7")
    before = verify_chain(engine)
    rows = _rows(engine)[-4:]  # after user.create (whose side row is new)
    old = [r.id for r in rows[:3]]
    old_at = utcnow() - dt.timedelta(days=40)
    ids = ",".join(map(str, old))
    _raw(engine, f"UPDATE audit_personal SET at = :at WHERE entry_id IN ({ids})",
         at=_sqlite_time(old_at))
    report = purge_personal(engine, older_than_days=30)
    assert report.entries == 3
    with transaction(engine) as s:
        left = s.scalars(sa.select(AuditPersonal.entry_id)).all()
    assert set(old).isdisjoint(left) and rows[-1].id in left
    after = verify_chain(engine)
    assert after.ok and (after.entries, after.head_hash) == (before.entries, before.head_hash)
    assert purge_personal(engine, older_than_days=30).entries == 0
    with pytest.raises(ValueError, match="^older_than_days:"):
        purge_personal(engine, older_than_days=-1)


def test_erase_personal_of_one_person(engine: Engine) -> None:
    _append(engine, 2, actor="alice", source="192.0.2.1")
    _append(engine, 1, actor="bob", source="192.0.2.2")
    assert audit.erase_personal_of(engine, "alice") == 2
    with transaction(engine) as s:
        assert s.scalars(sa.select(AuditPersonal.actor_name)).all() == ["bob"]
    assert verify_chain(engine).ok


def test_export_csv_joins_personal_data(engine: Engine) -> None:
    _append(engine, 2, actor="alice", source="192.0.2.1")
    with transaction(engine) as s:
        record_audit(s, "system", "later", target="z", on_behalf_of="23027")
    buf = io.StringIO()
    assert export_csv(engine, buf) == 3
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["action"] for r in rows] == ["test.action", "test.action", "later"]
    assert rows[0]["actor_name"] == "alice" and rows[0]["address"] == "192.0.2.1"
    assert rows[0]["actor_id"].startswith("name:") and len(rows[0]["hash"]) == 64
    assert rows[2]["on_behalf_of"] == "23027" and rows[2]["actor_name"] == ""
    assert json.loads(rows[0]["detail"])["text"] == "Brüssel"
    later = _rows(engine)[-1].at
    since = later if isinstance(later, dt.datetime) else dt.datetime.fromisoformat(later)
    buf = io.StringIO()
    assert export_csv(engine, buf, since=since.replace(tzinfo=dt.UTC)) == 1


# --- concurrency -----------------------------------------------------------------------


def _hammer(engine: Engine, threads: int, each: int) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with transaction(engine) as s:
                    record_audit(s, f"worker{t}", "test.concurrent", target=f"{t}-{i}",
                                 source=f"192.0.2.{t}")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    assert errors == []
    report = verify_chain(engine)
    assert report.ok, report.problem
    assert report.entries == threads * each
    seqs = [r.seq for r in _rows(engine)]
    assert seqs == list(range(1, threads * each + 1))


@pytest.mark.postgres
def test_concurrent_appends_never_fork_the_chain_postgres(pg_empty_engine: Engine) -> None:
    _hammer(pg_empty_engine, threads=8, each=25)


def test_concurrent_appends_never_fork_the_chain_sqlite(engine: Engine) -> None:
    _hammer(engine, threads=4, each=10)


# --- command line ----------------------------------------------------------------------


@pytest.fixture
def cli_db(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    return engine


def test_cli_verify_anchor_and_export(cli_db: Engine, tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"chain intact: 0 entries, head {GENESIS_HASH}" in result.stdout
    _append(cli_db, 3, actor="alice", source="192.0.2.1")
    result = runner.invoke(app, ["audit", "anchor"])
    assert result.exit_code == 0, result.output
    head = _rows(cli_db)[-1].hash
    assert result.stdout.strip() == Anchor(seq=3, hash=head).line()
    anchor_file = tmp_path / "anchor.txt"
    anchor_file.write_text(result.stdout)
    result = runner.invoke(app, ["audit", "verify", "--anchor-file", str(anchor_file)])
    assert result.exit_code == 0, result.output
    assert f"chain intact: 3 entries, head {head}" in result.stdout and "anchor" in result.stdout
    out = tmp_path / "audit.csv"
    result = runner.invoke(app, ["audit", "export", "--since", "2000-01-01", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(out.open()))) == 3 and "3 entries" in result.output
    result = runner.invoke(app, ["audit", "purge-personal", "--older-than", "0"])
    assert result.exit_code == 0, result.output
    assert "3 entries" in result.output

    _raw(cli_db, "DELETE FROM audit_log WHERE seq = 3")
    result = runner.invoke(app, ["audit", "verify", "--anchor", head])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "truncated" in result.output
    _raw(cli_db, "UPDATE audit_log SET action = 'y' WHERE seq = 1")
    first = _rows(cli_db)[0].id
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"entry {first}" in result.output and "modified" in result.output


@pytest.mark.parametrize("args, field", [
    (["verify", "--anchor", "nothex"], "anchor"),
    (["verify", "--anchor-file", "/nonexistent/anchor.txt"], "anchor-file"),
    (["export", "--since", "yesterday", "-o", "{out}"], "since"),
    (["purge-personal", "--older-than", "-3"], "older-than"),
])
def test_cli_bad_input_exits_1_naming_the_field(cli_db: Engine, tmp_path: Path,
                                                args: list[str], field: str) -> None:
    out = tmp_path / "x.csv"
    result = runner.invoke(app, ["audit", *[a.replace("{out}", str(out)) for a in args]])
    assert result.exit_code != 0
    assert field in result.output and "Traceback" not in result.output
    assert not out.exists()
