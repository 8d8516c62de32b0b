"""Processes: ``tocsin worker``, ``tocsin serve``, ``tocsin demo``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import typer

from tocsin.cli.app import app
from tocsin.cli.common import err, open_engine
from tocsin.core.settings import get_settings


@app.command("worker")
def worker_cmd() -> None:
    """Send queued deliveries of every campaign until stopped (Ctrl-C / SIGTERM)."""
    import signal

    from tocsin.dispatch.worker import Worker, sender_factories, start_simulators, stop_simulators

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = open_engine(announce=True)

    async def main() -> None:
        sims = await start_simulators(engine=engine, settings=get_settings())
        from tocsin.dispatch.transactional import ChannelCodeSender

        # The yearly reminders leave through TOCSIN_SMTP_URL, else the SMTP simulator.
        worker = Worker(engine, sender_factories(get_settings(), sims),
                        reminder_sender=ChannelCodeSender(get_settings(), lambda: sims))
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
    # An admin (users, partnerships, the two-person rule) and an authority with a
    # type-2 agreement (groups only: it can never alert an area), to see the difference.
    ("halle-admin", "senne-bridge-3150", "23027", "admin"),
    ("lennik", "pajot-field-1750", "23104", "operator"),
)
#: Agreements the demo sets (authority -> type): the others keep type 1.
DEMO_AGREEMENTS = {"23104": 2}


def register_summary(imported: int, refused: int) -> str:
    """The demo's one line on the BeST sample's import into the address register."""
    return (f"address register: imported {imported} addresses of the BeST sample (Brussels "
            f"1130, Halle, Malmedy), refused {refused} (rows without a position, "
            "outside Belgium or without a street)")


@app.command("demo")
def demo(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    subscribers: int = typer.Option(20_000, min=0, help="Demo population size (first run)."),
) -> None:
    """Prepare the embedded database (reference data, demo population, demo users) and serve."""
    import os

    from tocsin.authorities.setup import prepare_demo

    if not (os.environ.get("TOCSIN_PUBLIC_URL") or os.environ.get("TOCSIN_PUBLIC_BASE_URL")):
        # Links printed by the demo's worker (unsubscribe links) point at this server.
        os.environ["TOCSIN_PUBLIC_URL"] = f"http://{host}:{port}"
        get_settings.cache_clear()
    setup = prepare_demo(subscribers, DEMO_ACCOUNTS, agreements=DEMO_AGREEMENTS)
    if setup.generated:
        err.print(f"generated {setup.generated} demo subscribers "
                  f"({setup.opted_in} opted in to information)")
    if setup.templates:
        err.print(f"added {setup.templates} demo templates")
    if setup.register:
        err.print(register_summary(setup.register, setup.register_refused), highlight=False)
    err.print(f"\n[bold]Tocsin demo[/] on http://{host}:{port}/  (database: "
              f"{setup.location}; SMS and e-mail go to built-in simulators)")
    err.print("Demo accounts (username / password — authority):")
    for username, password, authority, role in DEMO_ACCOUNTS:
        agreement = DEMO_AGREEMENTS.get(authority)
        note = " — type-2 agreement: groups only, never an area" if agreement == 2 else ""
        err.print(f"  {username:11} / {password:18} — {authority} ({role}){note}",
                  highlight=False)
    err.print("Simulation needs no second factor; the first Live login asks to set up an "
              "authenticator app (TOTP, QR code).")
    err.print("To see an answer arrive on a group message's response board: "
              "tocsin campaign reply --from NUMBER --text 1 (in another terminal).",
              highlight=False)
    _serve(setup.engine, host, port, worker=True)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    worker: bool = typer.Option(True, help="Run a dispatch worker in the same process."),
) -> None:
    """Run the web platform (and, by default, a dispatch worker with the simulators)."""
    _serve(open_engine(announce=True), host, port, worker=worker)


def _serve(engine: Any, host: str, port: int, worker: bool) -> None:
    import uvicorn

    from tocsin.web.app import create_app

    # Forwarded headers are read by the app, only from TOCSIN_TRUSTED_PROXIES.
    uvicorn.run(create_app(engine, start_worker=worker), host=host, port=port,
                log_level="info", proxy_headers=False)


if __name__ == "__main__":  # pragma: no cover
    app()
