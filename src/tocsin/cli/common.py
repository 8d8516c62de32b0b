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


def open_engine():  # type: ignore[no-untyped-def]
    from tocsin.core.db import get_engine

    return get_engine()


def ensure_schema() -> Any:
    from tocsin.core.migrate import upgrade

    engine = open_engine()
    upgrade(engine)
    return engine


