"""What every ``tocsin`` command shares: the error console, exit codes, the engine."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

#: Lines are never wrapped at the terminal width: error messages and
#: machine-readable lines must survive ``grep`` and 40-column terminals.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_OK, EXIT_INPUT, EXIT_UNFINISHED = 0, 1, 3


def fail(field: str, reason: str) -> typer.Exit:
    err.print(f"[bold red]error[/]: {field}: {reason}", highlight=False)
    return typer.Exit(EXIT_INPUT)


def refused(exc: Exception) -> typer.Exit:
    """An ``access.Denied`` as the CLI says it: exit 1 with the policy's words and rule
    (or "no such …" when the object is not even visible)."""
    if getattr(exc, "hidden", False):
        return fail("campaign_id", f"no campaign {getattr(exc, 'target_id', '')!r} "
                                   "of this authority")
    return fail(getattr(exc, "field", None) or "permission",
                f"not allowed: {getattr(exc, 'reason', exc)} (rule {getattr(exc, 'rule', '?')})")


def open_engine(announce: bool = False) -> Any:
    """The engine of the initialised database the settings name; never creates one.

    Exits 1 with ``error: database: <file>: <reason and fix>`` when the database is
    missing, uninitialised or on an older schema. ``announce``: also print
    ``database: <file>`` on stderr (commands that write say where they wrote).
    """
    from tocsin.core.migrate import DatabaseNotReady, database_location, open_database

    try:
        engine = open_database()
    except DatabaseNotReady as exc:
        raise fail("database", str(exc)) from None
    if announce:
        err.print(f"database: {database_location()}", highlight=False, markup=False)
    return engine


