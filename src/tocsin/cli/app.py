"""The ``tocsin`` Typer application and its settings check."""

from __future__ import annotations

import typer
from rich.console import Console

from tocsin.cli.common import EXIT_INPUT
from tocsin.core.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Tocsin public-warning platform.")


@app.callback()
def _check_settings() -> None:
    """Refuse to start on an invalid TOCSIN_* variable, naming it (never a traceback)."""
    from tocsin.core.settings import SettingsError

    try:
        get_settings()
    except SettingsError as exc:
        Console(stderr=True, soft_wrap=True).print(f"configuration error: {exc}", highlight=False,
                                   markup=False)
        raise typer.Exit(EXIT_INPUT) from None


