"""The ``tocsin`` command: database, subscribers, campaigns, CAP, worker, web server.

Commands parse input, call one service and render its result. Input errors
exit 1 with a message naming the field and the reason, and never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
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


@app.callback()
def _check_settings() -> None:
    """Refuse to start on an invalid TOCSIN_* variable, naming it (never a traceback)."""
    from tocsin.core.settings import SettingsError

    try:
        get_settings()
    except SettingsError as exc:
        Console(stderr=True).print(f"configuration error: {exc}", highlight=False,
                                   markup=False)
        raise typer.Exit(EXIT_INPUT) from None


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


def _parse_content(values: list[str]) -> dict[str, dict[str, str]]:
    """``LANG.FIELD=text`` options -> ``{lang: {field: text}}``."""
    out: dict[str, dict[str, str]] = {}
    for v in values:
        key, sep, text = v.partition("=")
        lang, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise _fail("content", f"{v!r} is not LANG.FIELD=TEXT "
                                   "(e.g. fr.email_subject=\"Coupure d'eau\")")
        entry = out.setdefault(lang.lower(), {})
        if name in entry:
            raise _fail(f"content.{lang}.{name}", "given twice")
        entry[name] = text
    return out


def _parse_fields(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep:
            raise _fail("fields", f"{v!r} is not NAME=VALUE (e.g. street=\"Rue Haute\")")
        out[name.strip()] = value
    return out


def _parse_time(option: str, text: str) -> Any:
    """A ``--at`` / ``--expires`` value read in Europe/Brussels time, as aware UTC, or None."""
    from tocsin.campaigns.rules import parse_local_time

    if not text.strip():
        return None
    try:
        return parse_local_time(text)
    except ValueError as exc:
        field = {"at": "scheduled_for", "expires": "expires_at"}[option]
        raise _fail(field, str(exc)) from None


@campaign_app.command("send")
def campaign_send(
    authority: str = typer.Option(..., "--authority", help="Authority id: BE or a NIS code."),
    area: Path | None = typer.Option(None, "--area", help="GeoJSON Polygon/MultiPolygon file."),
    municipality: str | None = typer.Option(None, "--municipality", help="NIS code."),
    text: list[str] = typer.Option([], "--text", help='LANG="text", once per language.'),
    channels: str = typer.Option("sms,email,cap", "--channels", help="sms,email,cap"),
    kind: str = typer.Option("alert", "--kind",
                             help="alert|warning|information|test|exercise|group"),
    environment: str = typer.Option("simulation", "--environment", help="simulation|live"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to confirm a live campaign."),
    at: str = typer.Option("", "--at", help='Send later: "YYYY-MM-DD HH:MM", Europe/Brussels '
                                            "time (a running `tocsin worker` sends it)."),
    expires: str = typer.Option("", "--expires", help='CAP expires: "YYYY-MM-DD HH:MM", '
                                                      "Europe/Brussels time (default by "
                                                      "kind: alert, warning, group +24 h; "
                                                      "information +7 days; test, exercise "
                                                      "+1 h)."),
    content: list[str] = typer.Option([], "--content", help='LANG.FIELD="text" overriding one '
                                      "field (sms, voice, email_subject, email_text, "
                                      "email_html, cap_event, cap_headline, cap_description, "
                                      "cap_instruction)."),
    fields: list[str] = typer.Option([], "--field", help='NAME="value" for a {NAME} '
                                                         "placeholder."),
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
    overrides, values = _parse_content(content), _parse_fields(fields)
    scheduled_for, expires_at = _parse_time("at", at), _parse_time("expires", expires)
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
        content=overrides, fields=values, scheduled_for=scheduled_for, expires_at=expires_at,
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
    if scheduled_for is not None:
        err.print(f"campaign {campaign_id} scheduled for {at} Europe/Brussels "
                  f"({environment}); a running `tocsin worker` sends it then")
        if as_json:
            print(json.dumps({"campaign_id": campaign_id, "status": "scheduled",
                              "scheduled_for": scheduled_for.isoformat()}))
        return
    _send_follow_up(engine, campaign_id, receipt_timeout, send_timeout, as_json,
                    f" ({environment})")


def _follow_up_request(authority: str, text: list[str], channels: str, kind: str,
                       area: Path | None, municipality: str | None, content: list[str],
                       fields: list[str], expires: str, category: str, event: str,
                       urgency: str, severity: str, certainty: str) -> Any:
    from tocsin.campaigns.services import CampaignRequest

    area_data: bytes | None = None
    if area is not None:
        try:
            area_data = area.read_bytes()
        except OSError as exc:
            raise _fail("area", f"cannot read {area}: {exc.strerror}") from None
    return CampaignRequest(
        authority_id=authority, texts=_parse_texts(text),
        channels=[c for c in channels.split(",") if c.strip()], area_geojson=area_data,
        municipality_nis=municipality, kind=kind, environment="", created_by="cli",
        source="cli", content=_parse_content(content), fields=_parse_fields(fields),
        expires_at=_parse_time("expires", expires),
        cap={"category": category, "event": event, "urgency": urgency, "severity": severity,
             "certainty": certainty},
    )


def _run_follow_up(service: Callable[..., str], campaign_id: str, req: Any,
                   receipt_timeout: float, send_timeout: float, as_json: bool) -> None:
    """Write an update or all-clear with ``service`` (nothing on an input error), then send it."""
    from tocsin.campaigns.services import CampaignInputError

    engine = _ensure_schema()
    try:
        new_id = service(engine, campaign_id, req)
    except CampaignInputError as exc:
        raise _fail(exc.field, exc.reason) from None
    _send_follow_up(engine, new_id, receipt_timeout, send_timeout, as_json)


def _send_follow_up(engine: Any, campaign_id: str, receipt_timeout: float,
                    send_timeout: float, as_json: bool, note: str = "") -> None:
    """Send an accepted campaign here until done, print its report; exit 3 if a channel
    could not send (its deliveries stay queued for a running worker)."""
    from tocsin.campaigns.services import campaign_report

    err.print(f"campaign {campaign_id} accepted{note}")
    unfinished = asyncio.run(_send_until_done(engine, campaign_id, receipt_timeout,
                                              send_timeout))
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


@campaign_app.command("update")
def campaign_update(
    campaign_id: str = typer.Argument(..., help="The campaign to update: its id or CAP "
                                                  "identifier (BE-TOCSIN-…)."),
    text: list[str] = typer.Option([], "--text", help='LANG="new text", once per language.'),
    area: Path | None = typer.Option(None, "--area", help="A new (bigger) area, GeoJSON."),
    municipality: str | None = typer.Option(None, "--municipality", help="New area: NIS code."),
    channels: str = typer.Option("", "--channels", help="sms,email,cap (default: the "
                                                        "original's)."),
    kind: str = typer.Option("", "--kind", help="Default: the original's kind."),
    authority: str = typer.Option("", "--authority", help="Refuse unless it owns the "
                                                          "campaign."),
    content: list[str] = typer.Option([], "--content", help='LANG.FIELD="text".'),
    fields: list[str] = typer.Option([], "--field", help='NAME="value".'),
    expires: str = typer.Option("", "--expires", help='"YYYY-MM-DD HH:MM" Europe/Brussels.'),
    category: str = typer.Option("", "--category"),
    event: str = typer.Option("", "--event"),
    urgency: str = typer.Option("", "--urgency"),
    severity: str = typer.Option("", "--severity"),
    certainty: str = typer.Option("", "--certainty"),
    receipt_timeout: float = typer.Option(30.0, "--receipt-timeout", min=0),
    send_timeout: float = typer.Option(120.0, "--send-timeout", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print the final report as JSON."),
) -> None:
    """Send an update (CAP Update) to the original recipients and everyone in the new area."""
    from tocsin.campaigns.services import update_campaign

    req = _follow_up_request(authority, text, channels, kind, area, municipality, content,
                             fields, expires, category, event, urgency, severity, certainty)
    _run_follow_up(update_campaign, campaign_id, req, receipt_timeout, send_timeout, as_json)


@campaign_app.command("all-clear")
def campaign_all_clear(
    campaign_id: str = typer.Argument(..., help="The campaign whose danger is over: its "
                                                  "id or CAP identifier."),
    text: list[str] = typer.Option([], "--text", help='LANG="text" (default: a standard '
                                                      "end-of-alert text per language)."),
    channels: str = typer.Option("", "--channels", help="Default: the original's."),
    authority: str = typer.Option("", "--authority", help="Refuse unless it owns the "
                                                          "campaign."),
    receipt_timeout: float = typer.Option(30.0, "--receipt-timeout", min=0),
    send_timeout: float = typer.Option(120.0, "--send-timeout", min=0),
    as_json: bool = typer.Option(False, "--json", help="Print the final report as JSON."),
) -> None:
    """Send the all-clear (CAP Update, responseType AllClear) to the original recipients."""
    from tocsin.campaigns.services import all_clear

    req = _follow_up_request(authority, text, channels, "", None, None, [], [], "", "", "",
                             "", "", "")
    _run_follow_up(all_clear, campaign_id, req, receipt_timeout, send_timeout, as_json)


@campaign_app.command("cancel")
def campaign_cancel(
    campaign_id: str = typer.Argument(..., help="The campaign to cancel (with every "
                                                  "update of it): its id or CAP "
                                                  "identifier."),
    authority: str = typer.Option("", "--authority", help="Refuse unless it owns the "
                                                          "campaign."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Cancel a campaign: unsent deliveries stop, a CAP Cancel is published (if it had CAP)."""
    from tocsin.campaigns.services import CampaignInputError, cancel_campaign

    engine = _ensure_schema()
    try:
        result = cancel_campaign(engine, campaign_id, "cli", authority_id=authority or None)
    except CampaignInputError as exc:
        raise _fail(exc.field, exc.reason) from None
    if as_json:
        print(json.dumps(result))
        return
    err.print(f"campaign {campaign_id} cancelled: {result['stopped']} unsent message(s) "
              f"stopped" + (f"; CAP Cancel {result['cap_identifier']} published"
                            if result["cap_identifier"] else ""), highlight=False)


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
    label = report.get("label", "Alert")
    out.print(f"[bold]{report['kind'].upper()}[/]"
              + (f" ({label})" if label != "Alert" else "")
              + f" {report['area_name']} — {report['environment']} — campaign "
              f"{report['campaign_id']} ({report['cap_identifier']})")
    for ch, c in report["channels"].items():
        if ch == "cap":
            out.print(f"  cap: published={c['published']} {c['url']}")
            continue
        cost = (f"cost {c['cost_eur']:.3f} EUR" if report["environment"] == "live"
                else f"cost estimate {c['cost_eur']:.3f} EUR, not billed (simulation)")
        out.print(f"  {ch}: {c['recipients']} recipients {c['by_status']} "
                  f"languages {c['by_language']} {cost} "
                  f"{c['throughput_per_s']}/s", highlight=False)


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


EXIT_UNREADABLE = 2


def _read_cap_file(file: Path | None) -> bytes | str:
    """The file's bytes, or the reason it is over the CAP size limit.

    Raises OSError (with ``strerror``) when there is no file or it cannot be read.
    """
    from tocsin.cap.xml import CapParseError, read_cap_file

    if file is None:
        raise OSError(0, "missing argument FILE: the CAP file to read")
    try:
        return read_cap_file(file)
    except CapParseError as exc:
        return str(exc).removeprefix("document: ")


def _unreadable(file: Path | None, exc: OSError) -> str:
    if file is None:
        return str(exc.strerror)
    return f"cannot read {file}: {exc.strerror or exc}"


@cap_app.command("validate")
def cap_validate(
    file: Path | None = typer.Argument(None, help="CAP 1.2 (or CAP 1.1) XML file.",
                                       show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON on stdout, "
                                                       "whatever it is."),
) -> None:
    """Check a CAP alert: the OASIS CAP 1.2 schema plus the rules it cannot express.

    Exit codes: 0 valid (warnings printed); 1 invalid (every error printed,
    each naming the element); 2 the file cannot be read (or none was given).
    With --json every outcome is one JSON object on stdout: {"valid",
    "cap_version", "errors": [{"element", "message"}], "warnings": [...]};
    an unreadable file is an error on the element "file".
    """
    from tocsin.cap.validate import Issue, ValidationReport, validate_cap

    try:
        data = _read_cap_file(file)
    except OSError as exc:
        report = ValidationReport(None, [Issue("file", _unreadable(file, exc))])
        if as_json:
            print(json.dumps(report.to_json(), ensure_ascii=False))
        else:
            print(f"error: file: {report.errors[0].message}", file=sys.stderr)
        raise typer.Exit(EXIT_UNREADABLE) from None
    report = (validate_cap(data) if isinstance(data, bytes)
              else ValidationReport(None, [Issue("document", data)]))
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        # Plain print: element paths and document text must not be read as Rich markup.
        for issue in report.errors:
            print(f"error: {issue}")
        for issue in report.warnings:
            print(f"warning: {issue}")
        version = f"CAP {report.cap_version}" if report.cap_version else "CAP"
        verdict = "valid" if report.valid else f"invalid ({len(report.errors)} error(s))"
        print(f"{file}: {verdict} {version}, {len(report.warnings)} warning(s)", file=sys.stderr)
    if not report.valid:
        raise typer.Exit(EXIT_INPUT)


def _import_failed(as_json: bool, element: str, message: str, code: int,
                   warnings: list[dict[str, str]] | None = None) -> typer.Exit:
    """Report a CAP import that saved nothing; returns the Exit to raise."""
    if as_json:
        print(json.dumps({"imported": False, "campaign_id": None,
                          "errors": [{"element": element, "message": message}],
                          "warnings": warnings or []}, ensure_ascii=False))
    else:
        print(f"error: {element}: {message}", file=sys.stderr)
    return typer.Exit(code)


@cap_app.command("import")
def cap_import(
    file: Path | None = typer.Argument(None, help="Upstream CAP 1.2 (or CAP 1.1) alert.",
                                       show_default=False),
    authority: str | None = typer.Option(None, "--authority", show_default=False,
                                         help="Authority id: BE or a NIS code (required)."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON on stdout, "
                                                       "whatever it is."),
) -> None:
    """Turn an upstream CAP alert (e.g. from a weather service) into a draft campaign.

    Exit codes: 0 draft saved (warnings printed, nothing sent); 1 not
    imported, the error names the element (nothing saved); 2 the file cannot
    be read, or FILE or --authority is missing. With --json every outcome is
    one JSON object on stdout: the draft with "imported": true, or
    {"imported": false, "campaign_id": null, "errors": [{"element",
    "message"}], "warnings": [...]}.
    """
    from tocsin.campaigns.drafts import get_draft, save_draft
    from tocsin.campaigns.services import CampaignInputError
    from tocsin.cap.importer import CapImportError, import_cap

    try:
        data = _read_cap_file(file)
    except OSError as exc:
        raise _import_failed(as_json, "file", _unreadable(file, exc), EXIT_UNREADABLE) from None
    if authority is None or not authority.strip():
        raise _import_failed(as_json, "authority", "missing option --authority: the "
                             "authority the draft is for (BE or a NIS code)", EXIT_UNREADABLE)
    if isinstance(data, str):
        raise _import_failed(as_json, "document", data, EXIT_INPUT)
    try:
        imported = import_cap(data)
    except CapImportError as exc:
        raise _import_failed(as_json, exc.element, exc.reason, EXIT_INPUT) from None
    engine = _ensure_schema()
    try:
        campaign_id = save_draft(engine, authority, imported, "cli", source="cli")
    except CampaignInputError as exc:
        raise _import_failed(as_json, exc.field, exc.reason, EXIT_INPUT,
                             [w.to_json() for w in imported.warnings]) from None
    draft = get_draft(engine, campaign_id, None)
    if as_json:
        print(json.dumps({"imported": True, **draft}, ensure_ascii=False))
    for w in draft["warnings"]:
        print(f"warning: {w['element']}: {w['message']}", file=sys.stderr)
    print(f"draft campaign {campaign_id}: {draft['kind']} for {draft['area_name']} in "
          f"{', '.join(draft['texts'])} (nothing sent; check and launch it)", file=sys.stderr)


# ----------------------------------------------------------------------------- cap key

cap_key_app = typer.Typer(no_args_is_help=True,
                          help="CAP gateway keys of integrators (panels, alert maps).")
cap_app.add_typer(cap_key_app, name="key")


def _key_json(key: Any) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "prefix": key.key_prefix,
            "webhook_url": key.webhook_url, "area": key.area is not None,
            "created_by": key.created_by, "created_at": key.created_at.isoformat(),
            "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
            "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None}


@cap_key_app.command("create")
def cap_key_create(
    name: str = typer.Option(..., "--name", help="The integrator's name."),
    area: Path | None = typer.Option(None, "--area",
                                     help="GeoJSON file: only alerts intersecting it."),
    webhook: str | None = typer.Option(None, "--webhook",
                                       help="https:// URL to push new alerts to."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Create a key; prints the key (and the webhook secret) once: only a hash is kept."""
    from tocsin.cap.gateway import GatewayKeyError, create_key

    area_data: bytes | None = None
    if area is not None:
        try:
            area_data = area.read_bytes()
        except OSError as exc:
            raise _fail("area", f"cannot read {area}: {exc.strerror}") from None
    try:
        created = create_key(_ensure_schema(), name, "cli", area=area_data, webhook_url=webhook)
    except GatewayKeyError as exc:
        raise _fail(exc.field, exc.reason) from None
    if as_json:
        print(json.dumps({**_key_json(created.info), "key": created.key,
                          "webhook_secret": created.webhook_secret}))
        return
    print(f"key {created.info.id} for {created.info.name}")
    print(f"  key:            {created.key}")
    if created.webhook_secret:
        print(f"  webhook secret: {created.webhook_secret}")
    err.print("Store these now: they are shown only once.")


def _brussels(value: Any) -> str:
    from tocsin.cap.build import BRUSSELS

    return value.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M") if value else "never"


@cap_key_app.command("list")
def cap_key_list(as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON "
                                              "(times RFC 3339, UTC).")) -> None:
    """List the keys, newest first (never the keys themselves: their prefix only).

    Times are Europe/Brussels local time, as on the web page.
    """
    from tocsin.cap.gateway import list_keys

    keys = list_keys(_ensure_schema())
    if as_json:
        print(json.dumps([_key_json(k) for k in keys]))
        return
    print(f"{'ID':>4}  {'PREFIX':<14}  {'STATE':<24}  {'CREATED':<16}  {'LAST USED':<16}  "
          f"NAME / AREA / WEBHOOK")
    for k in keys:
        state = f"revoked {_brussels(k.revoked_at)}" if k.revoked_at else "active"
        extra = ("  area" if k.area else "") + (f"  webhook {k.webhook_url}" if k.webhook_url
                                                 else "")
        print(f"{k.id:>4}  {k.key_prefix:<14}  {state:<24}  {_brussels(k.created_at):<16}  "
              f"{_brussels(k.last_used_at):<16}  {k.name}{extra}")
    err.print(f"{len(keys)} key(s); times are Europe/Brussels local time.", highlight=False)


@cap_key_app.command("revoke")
def cap_key_revoke(key_id: str = typer.Argument(..., help="The key id (see `cap key list`).")
                   ) -> None:
    """Revoke a key: it reads nothing and receives nothing from now on.

    Exit codes: 0 revoked (or already revoked: nothing changed, says since
    when); 1 no key has that id.
    """
    from tocsin.cap.gateway import AlreadyRevoked, GatewayKeyError, revoke_key

    try:
        key = revoke_key(_ensure_schema(), key_id, "cli")
    except AlreadyRevoked as exc:
        print(exc.reason)
        return
    except GatewayKeyError as exc:
        raise _fail(exc.field, exc.reason) from None
    print(f"key {key.id} ({key.name}) revoked")


# ----------------------------------------------------------------------------- message


@message_app.command("preview")
def message_preview(
    text: str = typer.Option(..., "--text", help="The SMS text."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """SMS encoding, length, segments and cost of a text (3GPP TS 23.038 / 23.040)."""
    from decimal import Decimal

    from tocsin.messages.sms import analyse, gsm7_rewrite, preview

    try:
        p = preview(text, Decimal(get_settings().sms_segment_price_eur))
    except (ValueError, TypeError) as exc:
        raise _fail("text", str(exc).removeprefix("text: ")) from None
    if as_json:
        print(json.dumps(p, ensure_ascii=False))
        return
    Console().print(f"{p['encoding']}: {p['units']} units, {p['segments']} segment(s) "
                    f"{p['part_units']}, {p['cost_eur']:.3f} EUR"
                    + (f"; forces UCS-2: {', '.join(map(_visible, p['non_gsm_chars']))}"
                       if p["non_gsm_chars"] else ""), highlight=False)
    rewrite = gsm7_rewrite(text)
    if p["encoding"] == "UCS-2" and analyse(rewrite).encoding == "GSM-7":
        Console().print(f"GSM-7 rewrite ({analyse(rewrite).segments} segment(s)): {rewrite}",
                        highlight=False, markup=False)


def _visible(char: str) -> str:
    """A character as an operator can read it: invisible ones by name and code point."""
    import unicodedata

    if char.isprintable() and not char.isspace():
        return char
    return f"{unicodedata.name(char, 'unnamed').lower()} (U+{ord(char):04X})"


@message_app.command("voice")
def message_voice(
    script: str = typer.Option(..., "--script", help="The voice script read to the recipient."),
    language: str = typer.Option(..., "--language", help="fr, nl, de or en."),
    as_json: bool = typer.Option(False, "--json"),
    wav: Path | None = typer.Option(None, "--wav", help="Also write the espeak-ng audio here."),
) -> None:
    """Spoken duration, billed minutes and cost of a voice script; optional WAV preview (F22)."""
    from tocsin.messages import voice

    try:
        est = voice.estimate_voice(script, language, get_settings().voice_minute_price_eur)
        audio = voice.render_voice_preview(script, language) if wav is not None else None
    except voice.MessageInputError as exc:
        raise _fail(exc.field, exc.reason) from None
    except (voice.VoiceEngineUnavailable, voice.VoiceEngineError) as exc:
        raise _fail("wav", str(exc)) from None
    if audio is not None and wav is not None:
        try:
            wav.write_bytes(audio)
        except OSError as exc:
            raise _fail("wav", f"cannot write {wav}: {exc.strerror}") from None
    if as_json:
        print(json.dumps(est.as_dict()))
        return
    Console().print(f"{est.words} words, about {est.seconds} s: {est.billed_minutes} started "
                    f"minute(s), {est.cost_eur:.3f} EUR per answered call"
                    + (f"; audio in {wav}" if wav is not None else ""),
                    highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- email

email_app = typer.Typer(no_args_is_help=True, help="E-mail channel operations.")
app.add_typer(email_app, name="email")


@email_app.command("bounce")
def email_bounce(
    files: list[Path] = typer.Argument(..., help="DSN messages (RFC 3464); - reads stdin."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Apply bounces (delivery status notifications) to the deliveries they name (F26).

    Point the no-reply mailbox's bounces here, e.g. a Postfix alias
    ``no-reply: "|tocsin email bounce -"``. A permanent failure fails the delivery
    with its status; a bad address (RFC 3463 5.1.x, 5.2.1) is marked invalid.
    """
    from tocsin.channels.email import parse_dsn
    from tocsin.dispatch.queue import apply_dsn

    engine = _engine()
    failed: list[int] = []
    for file in files:
        try:
            data = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
        except OSError as exc:
            raise _fail("file", f"cannot read {file}: {exc.strerror}") from None
        try:
            failed += apply_dsn(engine, parse_dsn(data))
        except ValueError as exc:
            raise _fail("file", f"{file}: {exc}") from None
    if as_json:
        print(json.dumps({"failed_deliveries": failed}))
    else:
        Console().print(f"{len(failed)} delivery(ies) failed by bounce", highlight=False)


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
    from tocsin.messages.templates import seed_demo_templates

    made = seed_demo_templates(engine, dict.fromkeys(a for _, _, a, _ in DEMO_ACCOUNTS))
    if made:
        err.print(f"added {made} demo templates")
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
