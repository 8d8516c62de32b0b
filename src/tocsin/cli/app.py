"""The ``tocsin`` Typer application and its settings check."""

from __future__ import annotations

import typer
from rich.console import Console

from tocsin.cli.common import EXIT_INPUT
from tocsin.core.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Tocsin public-warning platform.")


@app.callback()
def _check_settings() -> None:
    """Refuse to start on an invalid TOCSIN_* variable, naming it (never a traceback)."""
    from tocsin.core.settings import SettingsError

    try:
        problem = _provider_url_problem(get_settings())
    except SettingsError as exc:
        problem = str(exc)
    if problem:
        Console(stderr=True, soft_wrap=True).print(f"configuration error: {problem}",
                                                   highlight=False, markup=False)
        raise typer.Exit(EXIT_INPUT) from None


def _provider_url_problem(settings: Settings) -> str:
    """Why ``TOCSIN_SMPP_URL`` or ``TOCSIN_SMTP_URL`` cannot be used ("" when they can),
    checked before any command starts: a worker must not start its loops, nor a
    simulated send its launch, on a provider setting it would fail on later."""
    from tocsin.channels.email import SmtpAccount
    from tocsin.channels.smpp import parse_smpp_urls

    try:
        parse_smpp_urls(settings.smpp_url)
    except ValueError as exc:
        return f"TOCSIN_SMPP_URL: {exc}"
    if settings.smtp_url.strip():
        try:
            SmtpAccount.from_url(settings.smtp_url)
        except ValueError as exc:
            return str(exc)
    return ""


