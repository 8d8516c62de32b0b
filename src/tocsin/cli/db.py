"""Database schema and reference data: ``tocsin db init|upgrade``."""

from __future__ import annotations

import json

import typer

from tocsin.cli.common import ensure_schema, err

db_app = typer.Typer(no_args_is_help=True, help="Database schema and reference data.")

@db_app.command("init")
def db_init(
    demo_subscribers: int = typer.Option(
        0, "--demo-subscribers", min=0, help="Generate N reproducible demo subscribers."),
    seed: int = typer.Option(1789, help="Seed of the demo population."),
) -> None:
    """Create or upgrade the schema and load the Belgian authorities with their territories."""
    from tocsin.core.db import transaction
    from tocsin.geo.reference import load_authorities

    engine = ensure_schema()
    with transaction(engine) as s:
        report = load_authorities(s)
    err.print(f"authorities: {report.created} created, {report.updated} updated, "
              f"{report.unchanged} unchanged ({report.seconds:.1f} s)")
    for aid, name, reason in report.repaired:
        err.print(f"  repaired territory of {aid} {name}: {reason}", highlight=False)
    if demo_subscribers:
        from tocsin.subscribers.demo import generate_demo_population

        demo = generate_demo_population(engine, demo_subscribers, seed=seed)
        err.print(f"demo subscribers: {json.dumps(demo.to_json())}", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations only."""
    ensure_schema()
    err.print("schema up to date")


