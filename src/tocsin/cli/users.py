"""Users: ``tocsin user`` and ``tocsin users …`` (create, invite, totp-reset, revoke-sessions)."""

from __future__ import annotations

import typer

from tocsin.cli.app import app
from tocsin.cli.common import err, fail, open_engine, out
from tocsin.core.settings import get_settings


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
        raise fail("user", str(exc).strip("'\"")) from None
    err.print(f"user {info.username} ({info.role}) of {info.authority_name}")


users_app = typer.Typer(no_args_is_help=True, help="Users: create, invite, sessions, TOTP.")


@users_app.command("create")
def users_create(
    username: str = typer.Argument(...),
    authority: str = typer.Option("", "--authority", help="Authority id (BE, NIS code); "
                                  "BE for the federal role."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True),
    role: str = typer.Option("operator", help="federal (the federal operator), admin, "
                             "operator or viewer"),
    email: str = typer.Option("", help="E-mail address (optional)."),
) -> None:
    """Create a user (or reset the password of an existing one); the password policy applies.
    On a fresh install, bootstrap the first federal operator with ``--role federal``."""
    from tocsin.authorities.services import create_user

    role = {"federal": "federal_operator"}.get(role, role)
    if not authority:
        if role != "federal_operator":
            raise fail("authority", "give the user's authority (--authority NIS)")
        authority = "BE"
    try:
        info = create_user(open_engine(), username, password, authority, role=role,
                           email=email or None)
    except (LookupError, ValueError) as exc:
        raise fail("user", str(exc).strip("'\"")) from None
    err.print(f"user {info.username} ({info.role}) of {info.authority_name}")


@users_app.command("invite")
def users_invite(
    email: str = typer.Argument(..., help="The invitee's e-mail address."),
    authority: str = typer.Option(..., "--authority", help="Authority id (BE, NIS code)."),
    role: str = typer.Option("operator", help="federal_operator, admin, operator or viewer"),
    print_link: bool = typer.Option(False, "--print-link",
                                    help="Print the single-use link instead of e-mailing it."),
) -> None:
    """Invite a user by e-mail: a single-use link (72 h) to set a password and TOTP."""
    from tocsin.authorities import accounts

    settings = get_settings()
    engine = open_engine()
    try:
        if print_link:
            invitation = accounts.invite_user(engine, accounts.CLI_ACTOR, email, role, authority,
                                              settings.public_url(), source="cli")
        else:
            invitation = accounts.invite_and_send(engine, accounts.CLI_ACTOR, email, role,
                                                  authority, settings, source="cli")
    except accounts.Denied as exc:
        raise fail("permission", exc.reason) from None
    except (LookupError, ValueError) as exc:
        raise fail("invite", str(exc).strip("'\"")) from None
    if print_link or not invitation.emailed:
        if not print_link:
            err.print("no SMTP relay configured (TOCSIN_SMTP_URL): hand over this link yourself")
        out.print(invitation.link, highlight=False)
    else:
        err.print(f"invitation e-mailed to {invitation.email}")


@users_app.command("totp-reset")
def users_totp_reset(username: str = typer.Argument(...)) -> None:
    """Forget a user's TOTP (lost phone) and end its sessions; it enrols again at login."""
    from tocsin.authorities import accounts

    try:
        accounts.reset_totp(open_engine(), accounts.CLI_ACTOR, username, source="cli")
    except accounts.Denied as exc:
        raise fail("permission", exc.reason) from None
    except LookupError as exc:
        raise fail("username", str(exc).removeprefix("username: ")) from None
    err.print(f"TOTP of {username} reset; its sessions are ended")


@users_app.command("revoke-sessions")
def users_revoke_sessions(username: str = typer.Argument(...)) -> None:
    """End every web session of a user at once."""
    from tocsin.authorities import accounts

    try:
        count = accounts.revoke_user_sessions(open_engine(), accounts.CLI_ACTOR, username,
                                              source="cli")
    except accounts.Denied as exc:
        raise fail("permission", exc.reason) from None
    except LookupError as exc:
        raise fail("username", str(exc).removeprefix("username: ")) from None
    err.print(f"{count} session(s) of {username} ended")
