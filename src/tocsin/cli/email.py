"""E-mail channel operations: ``tocsin email bounce``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from tocsin.cli.common import fail, open_engine, out

email_app = typer.Typer(no_args_is_help=True, help="E-mail channel operations.")


@email_app.command("bounce")
def email_bounce(
    files: list[Path] = typer.Argument(..., help="DSN messages (RFC 3464); - reads stdin."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Apply bounces (delivery status notifications) to the deliveries they name (F26).

    Point the no-reply mailbox's bounces here, e.g. a Postfix alias
    ``no-reply: "|tocsin email bounce -"``. A permanent failure fails the delivery
    with its status; a bad address (RFC 3463 5.1.x, 5.2.1) is marked invalid.
    """
    from tocsin.channels.email import parse_dsn
    from tocsin.dispatch.queue import apply_dsn

    engine = open_engine()
    failed: list[int] = []
    for file in files:
        try:
            data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        except OSError as exc:
            raise fail("file", f"cannot read {file}: {exc.strerror}") from None
        try:
            failed += apply_dsn(engine, parse_dsn(data))
        except ValueError as exc:
            raise fail("file", f"{file}: {exc}") from None
    if as_json:
        print(json.dumps({"failed_deliveries": failed}))
    else:
        out.print(f"{len(failed)} delivery(ies) failed by bounce", highlight=False)


