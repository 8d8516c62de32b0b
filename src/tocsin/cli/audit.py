"""The tamper-evident audit log (F6): ``tocsin audit verify|anchor|export|purge-personal``."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import typer

from tocsin.cli.common import EXIT_INPUT, err, fail, open_engine, out

audit_app = typer.Typer(no_args_is_help=True,
                        help="The audit log: verify its hash chain, anchor it, export it.")


def _broken(report: Any) -> typer.Exit:
    where = f" at entry {report.problem.entry_id}" if report.problem.entry_id is not None else ""
    err.print(f"chain broken{where}: {report.problem.reason}", markup=False, highlight=False)
    return typer.Exit(EXIT_INPUT)


@audit_app.command("verify")
def audit_verify(
    anchor: str | None = typer.Option(
        None, "--anchor", help="Head hash kept earlier (or the whole line `audit anchor` "
                               "printed): also check it is still in the chain."),
    anchor_file: Path | None = typer.Option(
        None, "--anchor-file", help="File holding the line `tocsin audit anchor` printed."),
) -> None:
    """Check the whole hash chain; exit 0 "chain intact", exit 1 naming the first bad entry."""
    from tocsin.authorities.audit import parse_anchor, verify_chain

    if anchor is not None and anchor_file is not None:
        raise fail("anchor", "give --anchor or --anchor-file, not both")
    given = None
    if anchor is not None:
        try:
            given = parse_anchor(anchor)
        except ValueError as exc:
            raise fail("anchor", str(exc).removeprefix("anchor: ")) from None
    if anchor_file is not None:
        try:
            text = anchor_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise fail("anchor-file", f"cannot read {anchor_file}: "
                                      f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            given = parse_anchor(text)
        except ValueError as exc:
            raise fail("anchor-file", str(exc).removeprefix("anchor: ")) from None
    report = verify_chain(open_engine(), anchor=given)
    if not report.ok:
        raise _broken(report)
    line = f"chain intact: {report.entries} entries, head {report.head_hash}"
    if report.legacy:
        line += f" ({report.legacy} older entries from before the chain, not chained)"
    if given is not None:
        seq = f"seq {given.seq}" if given.seq is not None else "its hash"
        line += f"; anchor {given.hash[:12]}… found ({seq})"
    out.print(line, markup=False, highlight=False)


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Verify the chain and print its head (seq = entry count, hash) to keep elsewhere."""
    from tocsin.authorities.audit import verify_chain

    report = verify_chain(open_engine())
    if not report.ok:
        raise _broken(report)
    out.print(report.head.line(), markup=False, highlight=False)
    err.print(f"{report.entries} entries. Keep this line outside the database (another "
              f"machine, a ticket, paper); later: tocsin audit verify --anchor-file FILE",
              markup=False, highlight=False)


_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


@audit_app.command("export")
def audit_export(
    output: Path = typer.Option(..., "-o", "--output", help="CSV file to write ('-' = stdout)."),
    since: str = typer.Option("", "--since", help='Entries from this time on: "YYYY-MM-DD" or '
                                                  '"YYYY-MM-DD HH:MM", Europe/Brussels time.'),
) -> None:
    """Write the audit log as CSV, with the personal side data joined where it remains."""
    import sys

    from tocsin.authorities.audit import export_csv
    from tocsin.campaigns.rules import parse_local_time

    start = None
    if since.strip():
        text = since.strip() + (" 00:00" if _DATE_ONLY.match(since) else "")
        try:
            start = parse_local_time(text)
        except ValueError as exc:
            raise fail("since", str(exc)) from None
    engine = open_engine()
    if str(output) == "-":
        count = export_csv(engine, sys.stdout, since=start)
    else:
        # Written beside the target and renamed: an interrupted export leaves no half file.
        directory = output.resolve().parent
        if not directory.is_dir():
            raise fail("output", f"no directory {directory}")
        fd, tmp = tempfile.mkstemp(prefix=".audit-", suffix=".csv", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                count = export_csv(engine, fh, since=start)
            os.replace(tmp, output)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    err.print(f"{count} entries written to {output}", markup=False, highlight=False)


@audit_app.command("purge-personal")
def audit_purge_personal(
    older_than: int = typer.Option(..., "--older-than", min=0,
                                   help="Retention in days: erase personal data older than this."),
) -> None:
    """Erase user names and addresses of older entries; the hash chain stays valid."""
    from tocsin.authorities.audit import purge_personal
    from tocsin.core.db import iso_utc

    try:
        report = purge_personal(open_engine(), older_than)
    except ValueError as exc:
        raise fail("older-than", str(exc).split(": ", 1)[-1]) from None
    line = (f"personal data erased from {report.entries} entries older than {older_than} days "
            f"(before {iso_utc(report.before, 'seconds')})")
    if report.legacy:
        line += f"; {report.legacy} entries from before the chain pseudonymised"
    out.print(line, markup=False, highlight=False)
