"""Retention of per-recipient data: ``tocsin retention run`` (issue 10 point 5)."""

from __future__ import annotations

import json

import typer

from tocsin.cli.common import err, fail, open_engine
from tocsin.core.settings import get_settings

retention_app = typer.Typer(no_args_is_help=True,
                            help="Retention of recipients' numbers and addresses.")


@retention_app.command("run")
def retention_run(
    days: int | None = typer.Option(
        None, "--days", help="Pseudonymise what finished more than this many days ago "
                             "(default TOCSIN_RETENTION_DAYS, 30)."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON on stdout."),
) -> None:
    """Replace the numbers and e-mail addresses of old finished campaigns by pseudonyms
    (counts, costs and reports stay); prints what was pseudonymised."""
    from tocsin.dispatch.retention import run_retention

    if days is not None and days < 1:
        raise fail("days", f"must be at least 1, got {days}")
    engine = open_engine(announce=True)
    report = run_retention(engine, get_settings(), days=days, owner=f"cli:{id(engine)}",
                           actor="cli")
    if as_json:
        print(json.dumps(report.to_json()))
        return
    err.print(f"cut-off {report.cutoff} ({report.days} days): {report.campaigns} campaign(s) "
              f"done, {report.deliveries} deliveries, {report.answers} answers, "
              f"{report.quota_people} quota people, {report.inbound} inbound SMS, "
              f"{report.voice_calls} voice calls pseudonymised; {report.sms_ids} SMS ids and "
              f"{report.receipts} receipts deleted; {report.waiting} waiting for final "
              f"states, {report.busy} held by another worker", highlight=False)
    for cid in report.campaign_ids:
        print(cid)
