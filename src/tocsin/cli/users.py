"""Users: ``tocsin user``."""

from __future__ import annotations

import typer

from tocsin.cli.app import app
from tocsin.cli.common import err, fail, open_engine


@app.command("user")
def user_add(
    username: str = typer.Argument(...),
    authority: str = typer.Option(..., "--authority", help="Authority id (BE, NIS code)."),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    role: str = typer.Option("operator", help="federal_operator, admin, operator or viewer"),
    display_name: str = typer.Option("", "--display-name",
                                     help="Shown in the page header (default: the username)."),
) -> None:
    """Create a user (or reset the password of an existing one)."""
    from tocsin.authorities.services import create_user

    try:
        info = create_user(open_engine(announce=True), username, password, authority,
                           role=role, display_name=display_name or None)
    except (LookupError, ValueError) as exc:
        raise fail("user", str(exc)) from None
    err.print(f"user {info.username} ({info.role}) of {info.authority_name}")


