"""The ``tocsin`` command: database, subscribers, campaigns, CAP, worker, web server.

Commands parse input, call one service and render its result. Input errors
exit 1 with a message naming the field and the reason, and never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tocsin.core.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Tocsin public-warning platform.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema and reference data.")
subscribers_app = typer.Typer(no_args_is_help=True, help="Subscriber registrations.")
campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns (alerts and other messages).")
cap_app = typer.Typer(no_args_is_help=True, help="CAP 1.2 alerts.")
message_app = typer.Typer(no_args_is_help=True, help="Message content tools.")
app.add_typer(db_app, name="db")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(campaign_app, name="campaign")
app.add_typer(cap_app, name="cap")
app.add_typer(message_app, name="message")

err = Console(stderr=True)

EXIT_OK, EXIT_INPUT, EXIT_UNFINISHED = 0, 1, 3


def _fail(field: str, reason: str) -> typer.Exit:
    err.print(f"[bold red]error[/]: {field}: {reason}", highlight=False)
    return typer.Exit(EXIT_INPUT)


def _engine():  # type: ignore[no-untyped-def]
    from tocsin.core.db import get_engine

    return get_engine()


def _ensure_schema() -> Any:
    from tocsin.core.migrate import upgrade

    engine = _engine()
    upgrade(engine)
    return engine


# ----------------------------------------------------------------------------- db


@db_app.command("init")
def db_init(
    demo_subscribers: int = typer.Option(
        0, "--demo-subscribers", min=0, help="Generate N reproducible demo subscribers."),
    seed: int = typer.Option(1789, help="Seed of the demo population."),
) -> None:
    """Create or upgrade the schema and load the Belgian authorities with their territories."""
    from tocsin.core.db import transaction
    from tocsin.geo.reference import load_authorities

    engine = _ensure_schema()
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
    _ensure_schema()
    err.print("schema up to date")


# ----------------------------------------------------------------------------- users


@app.command("user")
def user_add(
    username: str = typer.Argument(...),
    authority: str = typer.Option(..., "--authority", help="Authority id (BE, NIS code)."),
    password: str = typer.Option(..., prompt=True, hide_input=True),
    role: str = typer.Option("operator", help="federal_operator, admin, operator or viewer"),
) -> None:
    """Create a user (or reset the password of an existing one)."""
    from tocsin.authorities.services import create_user

    try:
        info = create_user(_engine(), username, password, authority, role=role)
    except (LookupError, ValueError) as exc:
        raise _fail("user", str(exc)) from None
    err.print(f"user {info.username} ({info.role}) of {info.authority_name}")


# ----------------------------------------------------------------------------- subscribers


@subscribers_app.command("import")
def subscribers_import(
    file: Path = typer.Argument(..., help="CSV: subscriber_id,language,mobile,email,lat,lon"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check only; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Import subscribers from CSV: all rows or none (every bad row is reported)."""
    from tocsin.subscribers.importer import import_subscribers

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail("file", f"cannot read {file}: {exc.strerror}") from None
    engine = _ensure_schema()
    report = import_subscribers(engine, data, dry_run=dry_run)
    out = report.to_json()
    if as_json:
        print(json.dumps(out))
    for e in out["errors"]:
        err.print(f"line {e['line']}: {e['field']} {e['value']!r}: {e['reason']}",
                  highlight=False)
    if out["errors"]:
        lines = len({e["line"] for e in out["errors"]})
        err.print(f"[red]{len(out['errors'])} error(s) on {lines} line(s): nothing imported[/]")
        raise typer.Exit(EXIT_INPUT)
    verb = "would import" if dry_run else "imported"
    err.print(f"{verb} {out['subscribers']} subscribers, {out['addresses']} addresses "
              f"from {out['rows']} rows")


# ----------------------------------------------------------------------------- campaign


def _parse_texts(values: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for v in values:
        lang, sep, text = v.partition("=")
        if not sep:
            raise _fail("text", f"{v!r} is not LANG=TEXT (e.g. fr=\"Restez à l'intérieur\")")
        lang = lang.strip().lower()
        if lang in texts:
            raise _fail(f"text.{lang}", "given twice")
        texts[lang] = text
    return texts


@campaign_app.command("send")
def campaign_send(
    authority: str = typer.Option(..., "--authority", help="Authority id: BE or a NIS code."),
    area: Path | None = typer.Option(None, "--area", help="GeoJSON Polygon/MultiPolygon file."),
    municipality: str | None = typer.Option(None, "--municipality", help="NIS code."),
    text: list[str] = typer.Option([], "--text", help='LANG="text", once per language.'),
    channels: str = typer.Option("sms,email,cap", "--channels", help="sms,email,cap"),
    kind: str = typer.Option("alert", "--kind", help="alert|warning|information|test|exercise"),
    environment: str = typer.Option("simulation", "--environment", help="simulation|live"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to confirm a live campaign."),
    receipt_timeout: float = typer.Option(30.0, "--receipt-timeout", min=0,
                                          help="Seconds to wait for SMS delivery receipts."),
    send_timeout: float = typer.Option(120.0, "--send-timeout", min=0,
                                       help="Seconds without progress before giving up on "
                                            "a channel (its deliveries stay queued)."),
    category: str = typer.Option("", "--category"),
    event: str = typer.Option("", "--event"),
    urgency: str = typer.Option("", "--urgency"),
    severity: str = typer.Option("", "--severity"),
    certainty: str = typer.Option("", "--certainty"),
    as_json: bool = typer.Option(False, "--json", help="Print the final report as JSON."),
) -> None:
    """Launch a campaign and send it until every delivery is final.

    Exit 0: every channel finished; 1: input error (nothing written); 3: some
    channel could not finish (its deliveries stay queued for a running worker).
    """
    from tocsin.campaigns.services import CampaignInputError, CampaignRequest, launch_campaign

    texts = _parse_texts(text)
    area_data: bytes | None = None
    if area is not None:
        try:
            area_data = area.read_bytes()
        except OSError as exc:
            raise _fail("area", f"cannot read {area}: {exc.strerror}") from None
    req = CampaignRequest(
        authority_id=authority, texts=texts, channels=channels.split(","),
        area_geojson=area_data, municipality_nis=municipality, kind=kind,
        environment=environment, created_by="cli", source="cli",
        cap={"category": category, "event": event, "urgency": urgency, "severity": severity,
             "certainty": certainty},
    )
    engine = _ensure_schema()
    if environment == "live" and not yes:
        if not sys.stdin.isatty():
            raise _fail("environment", "a live campaign needs --yes when not run interactively")
        if not typer.confirm(f"Send a LIVE {kind} to the real population of {authority}?"):
            raise typer.Exit(EXIT_INPUT)
    try:
        campaign_id = launch_campaign(engine, req)
    except CampaignInputError as exc:
        raise _fail(exc.field, exc.reason) from None
    err.print(f"campaign {campaign_id} accepted ({environment})")
    unfinished = asyncio.run(_send_until_done(engine, campaign_id, receipt_timeout, send_timeout))
    from tocsin.campaigns.services import campaign_report

    report = campaign_report(engine, campaign_id)
    report["unfinished_channels"] = unfinished
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        _print_report(report)
    if unfinished:
        err.print(f"[yellow]channel(s) {', '.join(unfinished)} could not send; their "
                  f"deliveries stay queued for a running `tocsin worker`[/]")
        raise typer.Exit(EXIT_UNFINISHED)


async def _send_until_done(engine: Any, campaign_id: str, receipt_timeout: float,
                           send_timeout: float) -> list[str]:
    """Send this campaign with the simulators and configured providers, showing progress."""
    from tocsin.dispatch.models import IN_FLIGHT, QUEUED
    from tocsin.dispatch.services import send_campaign
    from tocsin.dispatch.worker import sender_factories, start_simulators, stop_simulators

    sims = await start_simulators()
    try:
        with Progress(TextColumn("{task.description:6}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                      console=err) as bar:
            bars: dict[str, Any] = {}

            def show(counts: dict[str, dict[str, int]]) -> None:
                for ch, states in counts.items():
                    total = sum(states.values())
                    if ch not in bars:
                        bars[ch] = bar.add_task(ch, total=total)
                    bar.update(bars[ch], completed=total - states.get(QUEUED, 0)
                               - states.get(IN_FLIGHT, 0))

            return await send_campaign(
                engine, campaign_id, sender_factories(get_settings(), sims),
                receipt_timeout=receipt_timeout, send_timeout=send_timeout, on_progress=show)
    finally:
        await stop_simulators(sims)


def _print_report(report: dict[str, Any]) -> None:
    out = Console()
    out.print(f"[bold]{report['kind'].upper()}[/] {report['area_name']} — "
              f"{report['environment']} — campaign {report['campaign_id']}")
    for ch, c in report["channels"].items():
        if ch == "cap":
            out.print(f"  cap: published={c['published']} {c['url']}")
            continue
        out.print(f"  {ch}: {c['recipients']} recipients {c['by_status']} "
                  f"languages {c['by_language']} cost {c['cost_eur']:.3f} EUR "
                  f"{c['throughput_per_s']}/s")


# ----------------------------------------------------------------------------- cap


@cap_app.command("show")
def cap_show(
    identifier: str = typer.Argument(...),
    simulation: bool = typer.Option(False, "--simulation", help="Only simulation alerts."),
) -> None:
    """Print the CAP 1.2 XML of a published alert."""
    from tocsin.cap.services import get_cap_xml

    try:
        xml = get_cap_xml(_ensure_schema(), identifier,
                          "simulation" if simulation else None)
    except LookupError as exc:
        raise _fail("identifier", str(exc)) from None
    sys.stdout.write(xml.decode("utf-8"))
    if not xml.endswith(b"\n"):
        sys.stdout.write("\n")


# ----------------------------------------------------------------------------- message


@message_app.command("preview")
def message_preview(
    text: str = typer.Option(..., "--text", help="The SMS text."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """SMS encoding, length, segments and cost of a text (3GPP TS 23.038 / 23.040)."""
    from decimal import Decimal

    from tocsin.messages.sms import preview

    try:
        p = preview(text, Decimal(get_settings().sms_segment_price_eur))
    except (ValueError, TypeError) as exc:
        raise _fail("text", str(exc).removeprefix("text: ")) from None
    if as_json:
        print(json.dumps(p, ensure_ascii=False))
        return
    Console().print(f"{p['encoding']}: {p['units']} units, {p['segments']} segment(s) "
                    f"{p['part_units']}, {p['cost_eur']:.3f} EUR"
                    + (f"; forces UCS-2: {' '.join(p['non_gsm_chars'])}"
                       if p["non_gsm_chars"] else ""), highlight=False)


# ----------------------------------------------------------------------------- processes


@app.command("worker")
def worker_cmd() -> None:
    """Send queued deliveries of every campaign until stopped (Ctrl-C / SIGTERM)."""
    import signal

    from tocsin.dispatch.worker import Worker, sender_factories, start_simulators, stop_simulators

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    engine = _ensure_schema()

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
    ("beersel", "beersel-demo", "23003", "operator"),
    ("bruxelles", "bruxelles-demo", "21004", "operator"),
    ("eupen", "eupen-demo", "63023", "operator"),
    ("crisis", "crisis-demo", "BE", "federal_operator"),
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
    engine = _ensure_schema()
    with transaction(engine) as s:
        load_authorities(s)
        have = s.scalar(sa.select(sa.func.count()).select_from(Subscriber))
    if not have and subscribers:
        from tocsin.subscribers.demo import generate_demo_population

        report = generate_demo_population(engine, subscribers)
        err.print(f"generated {report.subscribers} demo subscribers")
    for username, password, authority, role in DEMO_ACCOUNTS:
        create_user(engine, username, password, authority, role=role)
    err.print(f"\n[bold]Tocsin demo[/] on http://{host}:{port}/  (SQLite: "
              f"{engine.url.database}; SMS and e-mail go to built-in simulators)")
    err.print("Demo accounts (username / password — authority):")
    for username, password, authority, role in DEMO_ACCOUNTS:
        err.print(f"  {username:10} / {password:16} — {authority} ({role})", highlight=False)
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

    engine = _ensure_schema()
    uvicorn.run(create_app(engine, start_worker=worker), host=host, port=port,
                log_level="info", proxy_headers=True)


if __name__ == "__main__":  # pragma: no cover
    app()
