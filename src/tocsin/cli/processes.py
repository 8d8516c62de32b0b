"""Processes: ``tocsin worker``, ``tocsin serve``, ``tocsin demo``."""

from __future__ import annotations

import asyncio
import logging

import typer

from tocsin.cli.app import app
from tocsin.cli.common import ensure_schema, err
from tocsin.core.settings import get_settings


@app.command("worker")
def worker_cmd() -> None:
    """Send queued deliveries of every campaign until stopped (Ctrl-C / SIGTERM)."""
    import signal

    from tocsin.dispatch.worker import Worker, sender_factories, start_simulators, stop_simulators

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = ensure_schema()

    async def main() -> None:
        sims = await start_simulators()
        worker = Worker(engine, sender_factories(get_settings(), sims))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, worker.stop)
        err.print(f"worker {worker.name} serving {sorted(worker.factories)}")
        await worker.run()
        await stop_simulators(sims)

    asyncio.run(main())


DEMO_ACCOUNTS = (
    # username, password, authority, role
    # Passwords follow the policy (12+ characters, not the username, not common).
    # No TOTP is pre-enrolled: simulation needs none; the first live login of a
    # sender shows the enrolment page (QR code) before Live opens.
    ("beersel", "dike-watch-2041", "23003", "operator"),
    ("bruxelles", "canal-storm-1302", "21004", "operator"),
    ("eupen", "hill-fog-4700-demo", "63023", "operator"),
    ("crisis", "federal-desk-1789", "BE", "federal_operator"),
)


@app.command("demo")
def demo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    subscribers: int = typer.Option(20_000, min=0, help="Demo population size (first run)."),
) -> None:
    """Prepare the embedded database (reference data, demo population, demo users) and serve."""
    import os

    import sqlalchemy as sa

    from tocsin.authorities.services import create_user
    from tocsin.core.db import transaction
    from tocsin.geo.reference import load_authorities
    from tocsin.subscribers.models import Subscriber

    if not os.environ.get("TOCSIN_PUBLIC_BASE_URL"):
        # Links in CAP feeds and reports must point at this server, whatever the port.
        os.environ["TOCSIN_PUBLIC_BASE_URL"] = f"http://{host}:{port}"
        get_settings.cache_clear()
    engine = ensure_schema()
    with transaction(engine) as s:
        load_authorities(s)
        have = s.scalar(sa.select(sa.func.count()).select_from(Subscriber))
    if not have and subscribers:
        from tocsin.subscribers.demo import generate_demo_population

        report = generate_demo_population(engine, subscribers)
        err.print(f"generated {report.subscribers} demo subscribers")
    for username, password, authority, role in DEMO_ACCOUNTS:
        create_user(engine, username, password, authority, role=role)
    from tocsin.messages.templates import seed_demo_templates

    made = seed_demo_templates(engine, dict.fromkeys(a for _, _, a, _ in DEMO_ACCOUNTS))
    if made:
        err.print(f"added {made} demo templates")
    err.print(f"\n[bold]Tocsin demo[/] on http://{host}:{port}/  (SQLite: "
              f"{engine.url.database}; SMS and e-mail go to built-in simulators)")
    err.print("Demo accounts (username / password — authority):")
    for username, password, authority, role in DEMO_ACCOUNTS:
        err.print(f"  {username:10} / {password:18} — {authority} ({role})", highlight=False)
    err.print("Simulation needs no second factor; the first Live login asks to set up an "
              "authenticator app (TOTP, QR code).")
    serve(host=host, port=port, worker=True)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    worker: bool = typer.Option(True, help="Run a dispatch worker in the same process."),
) -> None:
    """Run the web platform (and, by default, a dispatch worker with the simulators)."""
    import uvicorn

    from tocsin.web.app import create_app

    engine = ensure_schema()
    # Forwarded headers are read by the app, only from TOCSIN_TRUSTED_PROXIES.
    uvicorn.run(create_app(engine, start_worker=worker), host=host, port=port,
                log_level="info", proxy_headers=False)


if __name__ == "__main__":  # pragma: no cover
    app()
