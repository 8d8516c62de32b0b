"""Campaigns: ``tocsin campaign send|update|all-clear|cancel|pause|resume|stop|progress``
and ``delete-draft``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tocsin.authorities.access import Denied
from tocsin.cli.common import EXIT_UNFINISHED, err, fail, open_engine, out, refused
from tocsin.core.settings import get_settings

campaign_app = typer.Typer(no_args_is_help=True, help="Campaigns (alerts and other messages).")

def _parse_texts(values: list[str]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for v in values:
        lang, sep, text = v.partition("=")
        if not sep:
            raise fail("text", f"{v!r} is not LANG=TEXT (e.g. fr=\"Restez à l'intérieur\")")
        lang = lang.strip().lower()
        if lang in texts:
            raise fail(f"text.{lang}", "given twice")
        texts[lang] = text
    return texts


def _parse_content(values: list[str]) -> dict[str, dict[str, str]]:
    """``LANG.FIELD=text`` options -> ``{lang: {field: text}}``."""
    out: dict[str, dict[str, str]] = {}
    for v in values:
        key, sep, text = v.partition("=")
        lang, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise fail("content", f"{v!r} is not LANG.FIELD=TEXT "
                                   "(e.g. fr.email_subject=\"Coupure d'eau\")")
        entry = out.setdefault(lang.lower(), {})
        if name in entry:
            raise fail(f"content.{lang}.{name}", "given twice")
        entry[name] = text
    return out


def _parse_fields(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep:
            raise fail("fields", f"{v!r} is not NAME=VALUE (e.g. street=\"Rue Haute\")")
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
        raise fail(field, str(exc)) from None


def _read_area(area: Path | None) -> bytes | None:
    """The ``--area`` file's bytes (``None`` without one); exit 1 naming it when unreadable."""
    if area is None:
        return None
    try:
        return area.read_bytes()
    except OSError as exc:
        raise fail("area", f"cannot read {area}: {exc.strerror}") from None


def _acting_as(authority: str) -> Any:
    """The command line acting as ``authority``'s admin (the federal operator for BE)."""
    from tocsin.authorities.access import command_line_actor

    try:
        return command_line_actor(open_engine(), authority)
    except LookupError as exc:
        raise fail("as", str(exc).split(": ", 1)[-1]) from None


@campaign_app.command("estimate")
def campaign_estimate(
    authority: str = typer.Option(..., "--authority", help="Authority id: BE or a NIS code."),
    area: Path | None = typer.Option(None, "--area", help="GeoJSON Polygon/MultiPolygon file."),
    municipality: str | None = typer.Option(None, "--municipality", help="NIS code."),
    circle: str | None = typer.Option(None, "--circle", help="LAT,LON,RADIUS_KM: a circle "
                                      "(e.g. 50.7346,4.2406,2)."),
    group: list[str] = typer.Option([], "--group", help="A group of the authority (repeat); "
                                    "beside or instead of an area."),
    list_: list[str] = typer.Option([], "--list", help="A contact list of the authority "
                                    "(repeat); beside or instead of an area."),
    text: list[str] = typer.Option([], "--text", help='LANG="text", once per language.'),
    channels: str = typer.Option("sms,email,cap", "--channels",
                                 help="sms,email,cap,voice and the location-based lbsms,cb "
                                      "(reach and bleed from the cell model)"),
    kind: str = typer.Option("alert", "--kind",
                             help="alert|warning|information|test|exercise|group"),
    environment: str = typer.Option("simulation", "--environment", help="simulation|live"),
    as_json: bool = typer.Option(False, "--json", help="Print the estimate as JSON."),
    cells_geojson: Path | None = typer.Option(
        None, "--cells-geojson", help="Also write the map layer of the cells used and the "
                                      "bleed (GeoJSON, labelled with the cell model)."),
) -> None:
    """Who a campaign would reach, per channel and language, and its warnings; sends
    nothing. Texts are optional (a placeholder is estimated when none is given).
    With lbsms or cb: phones inside and outside the area from the cell model (the
    synthetic cell model unless an operator's cells were imported)."""
    from tocsin.campaigns.services import (
        CampaignInputError,
        CampaignRequest,
        estimate_campaign,
        estimate_cells_layer,
    )

    area_data = _area_or_circle(area, circle)
    texts = _parse_texts(text) or {}
    req = CampaignRequest(authority_id=authority, texts=texts, channels=channels.split(","),
                          area_geojson=area_data, municipality_nis=municipality, kind=kind,
                          environment=environment, created_by="cli", source="cli",
                          groups=group, lists=list_)
    engine = open_engine()
    try:
        estimate = estimate_campaign(engine, req, texts_optional=True)
        if cells_geojson is not None:
            layer = estimate_cells_layer(engine, req)
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    if cells_geojson is not None:
        try:
            cells_geojson.write_text(json.dumps(layer, ensure_ascii=False), encoding="utf-8")
        except OSError as exc:
            raise fail("cells-geojson", f"cannot write {cells_geojson}: {exc.strerror}") \
                from None
    total = sum(estimate["recipients"].values())
    if as_json:
        print(json.dumps({**estimate, "deliveries": total}, ensure_ascii=False, default=str))
        return
    _print_warnings(estimate["warnings"])
    out.print(f"{estimate['area_name']}: {total} deliveries "
              + " · ".join(f"{ch} {n}" for ch, n in estimate["recipients"].items()),
              highlight=False, markup=False)
    for ch, e in estimate.get("channels", {}).items():
        if "phones_inside" in e:
            out.print(f"{ch}: {e['phones_inside'][0]}–{e['phones_inside'][1]} phones inside, "
                      f"{e['phones_outside'][0]}–{e['phones_outside'][1]} outside "
                      f"(bleed {e['bleed_km2']} km², up to {e['max_bleed_km']} km), "
                      f"{e['cells']} cells — {e['model_label']}",
                      highlight=False, markup=False)
    for ch, eta in estimate.get("send_time", {}).items():
        out.print(f"{_CHANNEL_NAME.get(ch, ch)}: {eta['text']}", highlight=False, markup=False)

    if "voice" in estimate:
        v = estimate["voice"]
        out.print(f"voice: {v['calls']} calls, {v['minutes']} minutes, at most "
                  f"{v['cost_eur']:.3f} EUR if every call is answered; about "
                  f"{v['duration_s'] / 60:.1f} min at {v['calls_per_minute']} calls/min "
                  f"(trunk {v['trunk']})", highlight=False, markup=False)


_CHANNEL_NAME = {"sms": "SMS", "email": "E-mail"}


def _area_or_circle(area: Path | None, circle: str | None) -> bytes | None:
    """The ``--area`` file's bytes, or the ``--circle`` as GeoJSON; exit 1 when both are
    given or the circle is bad."""
    if circle is None:
        return _read_area(area)
    from tocsin.campaigns.services import CampaignInputError, circle_area_geojson

    if area is not None:
        raise fail("circle", "give one of --area, --municipality or --circle")
    try:
        return json.dumps(circle_area_geojson(circle)).encode()
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None


def _answer_setup(options: list[str], quota: int | None, timeout: int) -> Any:
    """The answer options and quota of ``--answer`` / ``--quota`` (issue 10), or None."""
    if not options and quota is None:
        return None
    from tocsin.campaigns.answer_service import AnswerSetup

    return AnswerSetup(list(options), quota, timeout, max(1, timeout // 3))


@campaign_app.command("send")
def campaign_send(
    authority: str = typer.Option(..., "--authority", help="Authority id: BE or a NIS code."),
    area: Path | None = typer.Option(None, "--area", help="GeoJSON Polygon/MultiPolygon file."),
    municipality: str | None = typer.Option(None, "--municipality", help="NIS code."),
    circle: str | None = typer.Option(None, "--circle", help="LAT,LON,RADIUS_KM: a circle "
                                      "(e.g. 50.7346,4.2406,2)."),
    group: list[str] = typer.Option([], "--group", help="A group of the authority (repeat); "
                                    "beside or instead of an area."),
    list_: list[str] = typer.Option([], "--list", help="A contact list of the authority "
                                    "(repeat); beside or instead of an area."),
    text: list[str] = typer.Option([], "--text", help='LANG="text", once per language.'),
    channels: str = typer.Option("sms,email,cap", "--channels",
                                 help="sms,email,cap,voice and the location-based lbsms "
                                      "(through the mobile operators) and cb (cell "
                                      "broadcast)"),
    justification: str = typer.Option("", "--justification",
                                      help="With lbsms: the imminent danger, as the mobile "
                                           "operators must record it (required)."),
    kind: str = typer.Option("alert", "--kind",
                             help="alert|warning|information|test|exercise|group"),
    environment: str = typer.Option("simulation", "--environment", help="simulation|live"),
    yes: bool = typer.Option(False, "--yes", help="Do not ask to confirm a live campaign: "
                             "then give --confirm-area and --confirm-count."),
    confirm_area: str = typer.Option("", "--confirm-area", help="Live with --yes: the area "
                                     "name, as the estimate gives it."),
    confirm_count: str = typer.Option("", "--confirm-count", help="Live with --yes: the "
                                      "number of deliveries, as the estimate gives it (with "
                                      "lbsms/cb: its location_reach, the expected phones)."),
    as_: str = typer.Option("", "--as", help="Act as this authority's operator (BE: the "
                            "federal operator on duty, acting on behalf of --authority)."),
    requested_by: str = typer.Option("", "--requested-by", help="Acting on behalf: who "
                                     "asked for it, and how (e.g. \"Mayor of Halle, by "
                                     "phone 03:12\")."),
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
    answer: list[str] = typer.Option([], "--answer", help="An answer option of a group "
                                     "message (repeat, 2 to 9: --answer Ja --answer Nee)."),
    quota: int | None = typer.Option(None, "--quota", help="People needed: ask the first N "
                                     "of the lists in order (a running `tocsin worker` "
                                     "goes on asking)."),
    answer_timeout: int = typer.Option(15, "--answer-timeout", help="A quota's time to "
                                       "answer, minutes."),
) -> None:
    """Launch a campaign and send it until every delivery is final.

    Exit 0: every channel finished; 1: input error (nothing written); 3: some
    channel could not finish (its deliveries stay queued for a running worker).
    """
    from tocsin.campaigns.services import (
        CampaignInputError,
        CampaignRequest,
        estimate_campaign,
    )

    texts = _parse_texts(text)
    overrides, values = _parse_content(content), _parse_fields(fields)
    scheduled_for, expires_at = _parse_time("at", at), _parse_time("expires", expires)
    area_data = _area_or_circle(area, circle)
    req = CampaignRequest(
        authority_id=authority, texts=texts, channels=channels.split(","),
        area_geojson=area_data, municipality_nis=municipality, kind=kind,
        environment=environment, created_by="cli", source="cli",
        cap={"category": category, "event": event, "urgency": urgency, "severity": severity,
             "certainty": certainty},
        content=overrides, fields=values, scheduled_for=scheduled_for, expires_at=expires_at,
        actor=_acting_as(as_) if as_ else None,
        on_behalf_request={"requested_by": requested_by, "channel": "cli"}
        if requested_by else None,
        confirmation_required=True, confirm_area_name=confirm_area or None,
        confirm_recipients=confirm_count or None, groups=group, lists=list_,
        justification=justification or None,
        answers=_answer_setup(answer, quota, answer_timeout),
    )
    engine = open_engine(announce=True)
    shown = False
    if environment == "live" and not yes:
        if not sys.stdin.isatty():
            raise fail("environment", "a live campaign needs --yes when not run interactively")
        # The confirmation repeats what the estimate warns about, as the web dialog does.
        try:
            estimate = estimate_campaign(engine, req)
        except CampaignInputError as exc:
            raise fail(exc.field, exc.reason) from None
        except Denied as exc:
            raise refused(exc) from None
        _print_warnings(estimate["warnings"])
        shown = True
        total = sum(estimate["recipients"].values())
        reach = estimate.get("location_reach")
        err.print(f"[bold red]LIVE {escape(kind)}[/]: {total} deliveries in "
                  f"{escape(str(estimate['area_name']))}; real people will receive it.")
        if reach is not None:
            # F34: a location-based alert reaches every phone in and around the area.
            err.print(f"[bold red]LIVE LOCATION-BASED[/]: about {reach} phones in and around "
                      f"the area, registered or not ({estimate.get('cell_model')}).")
        req.confirm_area_name = typer.prompt("To confirm, type the area name")
        req.confirm_recipients = typer.prompt(
            "and the expected reach (phones)" if reach is not None
            else "and the number of deliveries")
    try:
        run = _run(engine, "launch", req, None, receipt_timeout, send_timeout,
                   f" ({environment})", show_warnings=not shown)
    except CampaignInputError as exc:
        flag = {"confirm_area_name": "--confirm-area",
                "confirm_recipients": "--confirm-count"}.get(exc.field, exc.field)
        raise fail(flag, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    if run.scheduled and scheduled_for is not None:
        err.print(f"campaign {run.campaign_id} scheduled for {at} Europe/Brussels "
                  f"({environment}); a running `tocsin worker` sends it then")
        if as_json:
            print(json.dumps({"campaign_id": run.campaign_id, "status": "scheduled",
                              "scheduled_for": scheduled_for.isoformat(),
                              "warnings": run.warnings}, ensure_ascii=False))
        return
    _show_run(run, as_json)


def _print_warnings(warnings: list[dict[str, str]]) -> None:
    """Each warning of the estimate on its own stderr line, before anything is sent:
    ``warning: <field>: <message>`` (every code, e.g. wrong_language, no_recipients)."""
    for w in warnings:
        field = w.get("field") or w.get("code") or "campaign"
        err.print(f"[bold yellow]warning[/]: {escape(field)}: {escape(w.get('message', ''))}",
                  highlight=False)


def _follow_up_request(authority: str, text: list[str], channels: str, kind: str,
                       area: Path | None, municipality: str | None, content: list[str],
                       fields: list[str], expires: str, category: str, event: str,
                       urgency: str, severity: str, certainty: str) -> Any:
    from tocsin.campaigns.services import CampaignRequest

    area_data = _read_area(area)
    return CampaignRequest(
        authority_id=authority, texts=_parse_texts(text),
        channels=[c for c in channels.split(",") if c.strip()], area_geojson=area_data,
        municipality_nis=municipality, kind=kind, environment="", created_by="cli",
        source="cli", content=_parse_content(content), fields=_parse_fields(fields),
        expires_at=_parse_time("expires", expires),
        cap={"category": category, "event": event, "urgency": urgency, "severity": severity,
             "certainty": certainty},
    )


def _run_follow_up(action: str, campaign_id: str, req: Any, receipt_timeout: float,
                   send_timeout: float, as_json: bool) -> None:
    """Write an update or all-clear (nothing on an input error), then send it."""
    from tocsin.campaigns.services import CampaignInputError

    engine = open_engine(announce=True)
    try:
        run = _run(engine, action, req, campaign_id, receipt_timeout, send_timeout)
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    _show_run(run, as_json)


def _run(engine: Any, action: str, req: Any, campaign_id: str | None,
         receipt_timeout: float, send_timeout: float, note: str = "",
         show_warnings: bool = True) -> Any:
    """``dispatch.services.run_campaign`` with a progress bar per channel on stderr; the
    estimate's warnings are printed once the campaign is accepted, before sending."""
    from tocsin.dispatch.services import run_campaign

    with Progress(TextColumn("{task.description:6}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err) as bar:
        bars: dict[str, Any] = {}

        def show(progress: dict[str, tuple[int, int]]) -> None:
            for ch, (done, total) in progress.items():
                if ch not in bars:
                    bars[ch] = bar.add_task(ch, total=total)
                bar.update(bars[ch], completed=done)

        return run_campaign(
            engine, action, req, campaign_id=campaign_id, settings=get_settings(),
            receipt_timeout=receipt_timeout, send_timeout=send_timeout,
            on_accepted=lambda cid, warnings: _accepted(cid, note, warnings, show_warnings),
            on_progress=show)


def _accepted(campaign_id: str, note: str, warnings: list[dict[str, str]],
              show_warnings: bool) -> None:
    if show_warnings:
        _print_warnings(warnings)
    err.print(f"campaign {campaign_id} accepted{note}")


def _show_run(run: Any, as_json: bool) -> None:
    """Print a sent campaign's report; exit 3 if a channel could not send (its
    deliveries stay queued for a running worker)."""
    run.report["warnings"] = list(run.warnings)
    if as_json:
        print(json.dumps(run.report, ensure_ascii=False))
    else:
        _print_report(run.report)
    if run.unfinished:
        err.print(f"[yellow]channel(s) {', '.join(run.unfinished)} could not send; their "
                  f"deliveries stay queued for a running `tocsin worker`[/]")
        raise typer.Exit(EXIT_UNFINISHED)


@campaign_app.command("update")
def campaign_update(
    campaign_id: str = typer.Argument(..., help="The campaign to update: its id or CAP "
                                                  "identifier (BE-TOCSIN-…)."),
    text: list[str] = typer.Option([], "--text", help='LANG="new text", once per language.'),
    area: Path | None = typer.Option(None, "--area", help="A new (bigger) area, GeoJSON."),
    municipality: str | None = typer.Option(None, "--municipality", help="New area: NIS code."),
    channels: str = typer.Option("", "--channels", help="sms,email,cap,voice (default: the "
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
    req = _follow_up_request(authority, text, channels, kind, area, municipality, content,
                             fields, expires, category, event, urgency, severity, certainty)
    _run_follow_up("update", campaign_id, req, receipt_timeout, send_timeout, as_json)


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
    req = _follow_up_request(authority, text, channels, "", None, None, [], [], "", "", "",
                             "", "", "")
    _run_follow_up("all_clear", campaign_id, req, receipt_timeout, send_timeout, as_json)


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

    engine = open_engine(announce=True)
    try:
        result = cancel_campaign(engine, campaign_id, "cli", authority_id=authority or None)
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    if as_json:
        print(json.dumps(result))
        return
    err.print(f"campaign {campaign_id} cancelled. {result['summary']}"
              + (f" (CAP Cancel {result['cap_identifier']})" if result["cap_identifier"]
                 else ""), highlight=False, markup=False)


def _control(action: str, campaign_id: str, authority: str, as_json: bool) -> None:
    from tocsin.campaigns.services import CampaignInputError, control_campaign

    engine = open_engine(announce=True)
    try:
        result = control_campaign(engine, campaign_id, action, "cli",
                                  authority_id=authority or None)
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    if as_json:
        print(json.dumps(result))
        return
    err.print(f"campaign {result['campaign_id']} {result['status']}"
              + (f": {result['stopped']} unsent deliveries stopped" if action == "stop"
                 else ""), highlight=False, markup=False)


_ID_HELP = "The running campaign's id."
_AUTHORITY_HELP = "Refuse unless it owns the campaign."


@campaign_app.command("pause")
def campaign_pause(
    campaign_id: str = typer.Argument(..., help=_ID_HELP),
    authority: str = typer.Option("", "--authority", help=_AUTHORITY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Pause a sending campaign: nothing more leaves until it is resumed."""
    _control("pause", campaign_id, authority, as_json)


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: str = typer.Argument(..., help=_ID_HELP),
    authority: str = typer.Option("", "--authority", help=_AUTHORITY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Resume a paused campaign."""
    _control("resume", campaign_id, authority, as_json)


@campaign_app.command("stop")
def campaign_stop(
    campaign_id: str = typer.Argument(..., help=_ID_HELP),
    authority: str = typer.Option("", "--authority", help=_AUTHORITY_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Stop a sending or paused campaign for good: its unsent deliveries are stopped."""
    _control("stop", campaign_id, authority, as_json)


@campaign_app.command("reply")
def campaign_reply(
    sender: str = typer.Option(..., "--from", help="The replying phone number "
                               "(E.164 or Belgian national form, e.g. 0470 00 00 01)."),
    text: str = typer.Option(..., "--text", help="The SMS text, e.g. 1, B2, oui, STOP."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Simulate an SMS answer arriving, as the provider's webhook (POST /inbound/sms) or
    SMPP would hand it in: it goes through the same reading (answer, STOP/START, or kept
    with its reason) and shows on the response board. For demos and tests."""
    from tocsin.campaigns.answer_service import record_inbound
    from tocsin.subscribers.rules import InvalidValue, normalise_mobile

    try:
        number = normalise_mobile(sender)
    except InvalidValue as exc:
        raise fail("from", exc.reason) from None
    if not text.strip():
        raise fail("text", "empty: give the SMS text")
    engine = open_engine(announce=True)
    result = record_inbound(engine, number, text[:1600], via="simulator")
    if as_json:
        print(json.dumps({"id": result.id, "campaign_id": result.campaign_id,
                          "option": result.option, "reason": result.reason}))
        return
    if result.option is not None:
        err.print(f"answer recorded: campaign {result.campaign_id}, option {result.option}",
                  highlight=False, markup=False)
    else:
        err.print(f"SMS stored, not an answer: {result.reason}", highlight=False,
                  markup=False)


@campaign_app.command("progress")
def campaign_progress_cmd(
    campaign_id: str = typer.Argument(..., help="The campaign's id."),
    authority: str = typer.Option("", "--authority", help=_AUTHORITY_HELP),
) -> None:
    """Print the campaign's live counters per channel and state as JSON."""
    from tocsin.campaigns.services import CampaignInputError, campaign_progress

    engine = open_engine()
    try:
        result = campaign_progress(engine, campaign_id, authority_id=authority or None,
                                   source="cli")
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    print(json.dumps(result))


@campaign_app.command("delete-draft")
def campaign_delete_draft(
    campaign_id: str = typer.Argument(..., help="The draft to delete (e.g. an imported CAP "
                                                  "alert): its campaign id."),
    authority: str = typer.Option("", "--authority", help="Refuse unless it owns the draft."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Delete a draft that was never launched. Anything else (sent, scheduled,
    cancelled) is refused: it is part of the record; cancel a message to stop it."""
    from tocsin.campaigns.drafts import delete_draft
    from tocsin.campaigns.services import CampaignInputError

    engine = open_engine(announce=True)
    try:
        gone = delete_draft(engine, campaign_id, authority or None, "cli", source="cli")
    except CampaignInputError as exc:
        raise fail(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    if as_json:
        print(json.dumps({"deleted": True, **gone}, ensure_ascii=False))
        return
    err.print(f"draft {gone['campaign_id']} ({gone['kind']}, {gone['area_name']}) deleted",
              highlight=False, markup=False)


def _print_report(report: dict[str, Any]) -> None:
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
        if c.get("duplicates") or c.get("unconfirmed_submissions"):
            # Every submission is billed; some may have been sent twice (issue 13).
            out.print(f"    submissions {c['submissions']} (resent {c['duplicates']}, "
                      f"{c['unconfirmed_submissions']} unconfirmed: at most "
                      f"{c['cost_max_eur']:.3f} EUR)", highlight=False)
        if ch == "voice" and "outcomes" in c:
            out.print(f"    calls {c['calls']} outcomes {c['outcomes']} attempts "
                      f"{c['attempts_by_delivery']} acknowledged {c['acknowledged']} "
                      f"billed minutes {c['billed_minutes']}", highlight=False, markup=False)
    for ch, loc in (report.get("location") or {}).items():
        out.print(f"  {ch} ({loc.get('model', 'operators')}): phones targeted "
                  f"{loc['phones_targeted']}, submitted {loc['submitted']}, delivered "
                  f"{loc['delivered']}, failed {loc['failed']}", highlight=False, markup=False)
        for op, o in loc["operators"].items():
            out.print(f"    {op}: {o['state']} targeted {o['phones_targeted']} delivered "
                      f"{o['delivered']} failed {o['failed']} cells {o['cells_resolved']}"
                      + (f" error {o['error']}" if o.get("error") else ""),
                      highlight=False, markup=False)
    for w in report.get("warnings") or []:
        out.print(f"  warning: {w['message']}", highlight=False, markup=False)




@campaign_app.command("report")
def campaign_report_file(
    campaign_id: str = typer.Argument(..., help="The campaign: its id."),
    fmt: str = typer.Option("json", "--format", help="pdf | csv | json"),
    lang: str = typer.Option("en", "--lang", help="Language of the labels: fr | nl | de | en."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write to this file "
                                        "(needed for pdf); else csv/json go to stdout."),
) -> None:
    """A campaign's report (SPEC F26): JSON, CSV (one row per channel × state × failure
    reason) or a printable A4 PDF (area map, chart over time, timings, costs, who
    launched and approved it), labels in ``--lang``, times in Brussels time."""
    from tocsin.campaigns.report_export import FORMATS, REPORT_LANGUAGES, export_report

    fmt, lang = fmt.strip().lower(), lang.strip().lower()
    if fmt not in FORMATS:
        raise fail("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    if lang not in REPORT_LANGUAGES:
        raise fail("lang", f"{lang!r} is not one of {', '.join(REPORT_LANGUAGES)}")
    if fmt == "pdf" and output is None:
        raise fail("output", "a PDF is written to a file: give -o FILE")
    engine = open_engine()
    try:
        report = export_report(engine, campaign_id, fmt, lang=lang)
    except LookupError:
        raise fail("campaign_id", f"no campaign {campaign_id!r}") from None
    if output is None:
        sys.stdout.buffer.write(report.content)
        sys.stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_bytes(report.content)
        tmp.replace(output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise fail("output", f"cannot write {output}: {exc.strerror}") from None
    err.print(f"report written to {output} ({len(report.content)} bytes)",
              highlight=False, markup=False)
