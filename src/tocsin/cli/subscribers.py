"""Subscriber registrations: ``tocsin subscribers import``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tocsin.cli.common import EXIT_INPUT, err, fail, open_engine

subscribers_app = typer.Typer(no_args_is_help=True, help="Subscriber registrations.")

@subscribers_app.command("import")
def subscribers_import(
    file: Path = typer.Argument(
        ..., help="CSV: subscriber_id,language,mobile,email,lat,lon[,general_interest]"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check only; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Import subscribers from CSV: all rows or none (every bad row is reported)."""
    from tocsin.subscribers.importer import import_subscribers

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail("file", f"cannot read {file}: {exc.strerror}") from None
    engine = open_engine(announce=True)
    report = import_subscribers(engine, data, dry_run=dry_run)
    out = report.to_json()
    if as_json:
        print(json.dumps(out))
    for e in out["errors"]:
        err.print(f"line {e['line']}: {e['field']} {e['value']!r}: {e['reason']}",
                  highlight=False)
    if out["errors"]:
        lines = len({e["line"] for e in out["errors"]})
        err.print(f"[red]{len(out['errors'])} error(s) on {lines} line(s): nothing imported[/]")
        raise typer.Exit(EXIT_INPUT)
    verb = "would import" if dry_run else "imported"
    err.print(f"{verb} {out['subscribers']} subscribers, {out['addresses']} addresses "
              f"from {out['rows']} rows")




@subscribers_app.command("remind")
def subscribers_remind(
    dry_run: bool = typer.Option(False, "--dry-run", help="List who is due; send nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Send the yearly "is this still correct?" e-mail to the registered citizens it is
    due to (at most TOCSIN_REMINDER_MAX_PER_RUN), through TOCSIN_SMTP_URL."""
    from tocsin.core.settings import get_settings
    from tocsin.dispatch.transactional import ChannelCodeSender
    from tocsin.subscribers.reminders import portal_address, send_reminders

    settings = get_settings()
    if not dry_run and not settings.smtp_url.strip():
        raise fail("smtp_url", "no e-mail provider: set TOCSIN_SMTP_URL (or use --dry-run)")
    engine = open_engine(announce=True)
    report = send_reminders(engine, ChannelCodeSender(settings),
                            portal=portal_address(settings.public_url()),
                            limit=settings.reminder_max_per_run, dry_run=dry_run, actor="cli")
    if as_json:
        print(json.dumps(report.to_json()))
        return
    if dry_run:
        err.print(f"{report.due} reminder(s) due (nothing sent)", highlight=False)
    else:
        err.print(f"{report.sent} reminder(s) sent, {report.failed} refused (tried again "
                  f"next run), {report.skipped} taken by another worker", highlight=False)
