"""Database schema and reference data: ``tocsin db init|upgrade``.

These two commands and ``tocsin demo`` are the only ones that create the database;
each prints which one it used.
"""

from __future__ import annotations

import json

import typer

from tocsin.cli.common import err, fail

db_app = typer.Typer(no_args_is_help=True, help="Database schema and reference data.")

@db_app.command("init")
def db_init(
    demo_subscribers: int = typer.Option(
        0, "--demo-subscribers", min=0, help="Generate N reproducible demo subscribers."),
    seed: int = typer.Option(1789, help="Seed of the demo population."),
) -> None:
    """Create or upgrade the schema and load the Belgian authorities with their territories."""
    from tocsin.authorities.setup import initialise_database

    try:
        report = initialise_database(demo_subscribers, seed)
    except ValueError as exc:
        raise fail("demo_subscribers", str(exc)) from None
    loaded = report.authorities
    err.print(f"database: {report.location}", highlight=False, markup=False)
    err.print(f"authorities: {loaded.created} created, {loaded.updated} updated, "
              f"{loaded.unchanged} unchanged ({loaded.seconds:.1f} s)")
    for aid, name, reason in loaded.repaired:
        err.print(f"  repaired territory of {aid} {name}: {reason}", highlight=False)
    if report.demo is not None:
        err.print(f"demo subscribers: {json.dumps(report.demo)}", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations only (creates the schema if there is none)."""
    from tocsin.core.migrate import create_database, database_location

    create_database()
    err.print(f"database: {database_location()}: schema up to date", highlight=False,
              markup=False)
