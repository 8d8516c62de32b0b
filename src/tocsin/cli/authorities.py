"""Authorities: agreements, training records, cooperations, partnerships and the
two-person rule: ``tocsin authorities …``.

The command line acts with the rights of the authority given by ``--as`` (its
admin; the federal operator for ``BE``, the default), so that the policy holds
exactly as on the web (``authorities.access.cli_actor``).
"""

from __future__ import annotations

import datetime as dt
import json

import typer

from tocsin.cli.common import err, fail, open_engine, out

authorities_app = typer.Typer(no_args_is_help=True,
                              help="Agreements, training, cooperations, partnerships.")
partnership_app = typer.Typer(no_args_is_help=True,
                              help="Ad-hoc partnerships of neighbouring municipalities.")
authorities_app.add_typer(partnership_app, name="partnership")

AS_HELP = "Act as this authority's admin (BE: the federal operator)."


def _actor(authority: str):  # type: ignore[no-untyped-def]
    from tocsin.authorities.access import command_line_actor

    try:
        return command_line_actor(open_engine(), authority)
    except LookupError as exc:
        raise fail("as", str(exc).split(": ", 1)[-1]) from None


def _run(call):  # type: ignore[no-untyped-def]
    """Run a governance use case; denials and bad input exit 1 naming the reason."""
    from tocsin.authorities.access import Denied
    from tocsin.authorities.governance import GovernanceError

    try:
        return call()
    except GovernanceError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise fail("permission", f"{exc.reason} (rule {exc.rule})") from None


@authorities_app.command("agreement")
def agreement(
    authority: str = typer.Argument(..., help="Authority id (NIS code)."),
    agreement_type: int = typer.Argument(..., help="0 none, 1 population and groups, "
                                         "2 groups only."),
    as_: str = typer.Option("BE", "--as", help=AS_HELP),
) -> None:
    """Set an authority's agreement type (F2)."""
    from tocsin.authorities.governance import set_agreement

    _run(lambda: set_agreement(open_engine(), _actor(as_), authority, agreement_type, "cli"))
    err.print(f"authority {authority}: agreement type {agreement_type}")


@authorities_app.command("two-person")
def two_person(
    authority: str = typer.Argument(..., help="Authority id."),
    state: str = typer.Argument(..., help="on or off"),
    as_: str = typer.Option("", "--as", help=AS_HELP + " Default: the authority itself."),
) -> None:
    """Require (on) or not (off) a second user's approval of live alerts."""
    from tocsin.authorities.governance import set_two_person_rule

    if state not in ("on", "off"):
        raise fail("state", f"{state!r} is not on or off")
    _run(lambda: set_two_person_rule(open_engine(), _actor(as_ or authority), authority,
                                     state == "on", "cli"))
    err.print(f"authority {authority}: two-person rule {state}")


@authorities_app.command("training")
def training(
    username: str = typer.Argument(...),
    trained_on: str = typer.Option(..., "--date", help="YYYY-MM-DD"),
    trainer: str = typer.Option(..., "--trainer", help="Who gave the training."),
    topic: str = typer.Option("lbsms", help="lbsms (location-based SMS)"),
    as_: str = typer.Option("BE", "--as", help=AS_HELP),
) -> None:
    """Record a user's training (F5: location-based SMS needs one)."""
    from tocsin.authorities.governance import record_training

    try:
        day = dt.date.fromisoformat(trained_on)
    except ValueError:
        raise fail("date", f"{trained_on!r} is not YYYY-MM-DD") from None
    rid = _run(lambda: record_training(open_engine(), _actor(as_), username, day, trainer,
                                       topic, "cli"))
    err.print(f"training {rid}: {username} trained on {topic} on {day} by {trainer}")


@authorities_app.command("cooperation")
def cooperation(
    name: str = typer.Argument(...),
    members: str = typer.Option(..., "--members", help="Comma-separated NIS codes."),
    as_: str = typer.Option("BE", "--as", help=AS_HELP),
) -> None:
    """Create a structural cooperation of municipalities (F4)."""
    from tocsin.authorities.governance import create_cooperation

    ids = [m.strip() for m in members.split(",") if m.strip()]
    cid = _run(lambda: create_cooperation(open_engine(), _actor(as_), name, ids, "cli"))
    err.print(f"cooperation {cid}: {name} ({', '.join(ids)})")


@partnership_app.command("propose")
def partnership_propose(
    partner: str = typer.Argument(..., help="The neighbouring municipality (NIS code)."),
    as_: str = typer.Option(..., "--as", help="The proposing municipality (NIS code)."),
    until: str = typer.Option(..., "--until", help="End, Belgian time: YYYY-MM-DD [HH:MM]"),
    reason: str = typer.Option("", "--reason"),
) -> None:
    """Propose an ad-hoc partnership to a neighbouring municipality (F3)."""
    from tocsin.authorities.governance import propose_partnership
    from tocsin.campaigns.rules import parse_local_time

    text = until.strip() if " " in until.strip() else f"{until.strip()} 23:59"
    try:
        ends_at = parse_local_time(text)
    except ValueError as exc:
        raise fail("until", str(exc)) from None
    pid = _run(lambda: propose_partnership(open_engine(), _actor(as_), partner, ends_at,
                                           reason, "cli"))
    err.print(f"partnership {pid} proposed to {partner}; its admin accepts it with "
              f"`tocsin authorities partnership accept {pid} --as {partner}`")


@partnership_app.command("accept")
def partnership_accept(
    partnership_id: int = typer.Argument(...),
    as_: str = typer.Option(..., "--as", help="The partner municipality (NIS code)."),
) -> None:
    """Accept a proposed partnership."""
    from tocsin.authorities.governance import accept_partnership

    _run(lambda: accept_partnership(open_engine(), _actor(as_), partnership_id, "cli"))
    err.print(f"partnership {partnership_id} accepted")


@partnership_app.command("end")
def partnership_end(
    partnership_id: int = typer.Argument(...),
    as_: str = typer.Option(..., "--as", help="Either municipality (NIS code)."),
) -> None:
    """End a partnership now (or withdraw a proposal)."""
    from tocsin.authorities.governance import end_partnership

    _run(lambda: end_partnership(open_engine(), _actor(as_), partnership_id, "cli"))
    err.print(f"partnership {partnership_id} ended")


@partnership_app.command("list")
def partnership_list(
    as_: str = typer.Option("BE", "--as", help=AS_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
) -> None:
    """List partnerships (of one municipality, or all for BE)."""
    from tocsin.authorities.governance import list_partnerships

    rows = list_partnerships(open_engine(), _actor(as_))
    if as_json:
        print(json.dumps([{**r.__dict__, "ends_at": r.ends_at.isoformat()} for r in rows]))
        return
    if not rows:
        err.print("no partnership")
    from tocsin.campaigns.rules import BRUSSELS

    for r in rows:
        out.print(f"{r.id}\t{r.state}\t{r.proposer_id} {r.proposer_name} ↔ {r.partner_id} "
                  f"{r.partner_name}\tuntil {r.ends_at.astimezone(BRUSSELS):%Y-%m-%d %H:%M} "
                  "(Brussels)", highlight=False)
