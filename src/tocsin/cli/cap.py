"""CAP 1.2: ``tocsin cap show|validate|import`` and gateway keys ``tocsin cap key …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from tocsin.authorities.access import Denied
from tocsin.cli.common import EXIT_INPUT, err, fail, open_engine, refused

cap_app = typer.Typer(no_args_is_help=True, help="CAP 1.2 alerts.")

@cap_app.command("show")
def cap_show(
    identifier: str = typer.Argument(...),
    simulation: bool = typer.Option(False, "--simulation", help="Only simulation alerts."),
) -> None:
    """Print the CAP 1.2 XML of a published alert."""
    from tocsin.cap.services import get_cap_xml

    try:
        xml = get_cap_xml(open_engine(), identifier,
                          "simulation" if simulation else None)
    except LookupError as exc:
        raise fail("identifier", str(exc)) from None
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
                   warnings: list[dict[str, str]] | None = None,
                   errors: list[dict[str, str]] | None = None) -> typer.Exit:
    """Report a CAP import that saved nothing (every problem, one line each); returns
    the Exit to raise."""
    errors = errors or [{"element": element, "message": message}]
    if as_json:
        print(json.dumps({"imported": False, "campaign_id": None, "errors": errors,
                          "warnings": warnings or []}, ensure_ascii=False))
    else:
        for e in errors:
            print(f"error: {e['element']}: {e['message']}", file=sys.stderr)
        if len(errors) > 1:
            print(f"{len(errors)} problems: not imported, nothing saved", file=sys.stderr)
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

    Exit codes: 0 draft saved (warnings printed, nothing sent; a value the
    upstream alert lacks, e.g. urgency, is printed as "blocked": the draft cannot
    be launched until it is chosen); 1 not imported (invalid identifier or sender,
    missing scope…, not Public, already expired): every problem printed, each
    naming the element, nothing saved; 2 the file cannot
    be read, or FILE or --authority is missing. With --json every outcome is
    one JSON object on stdout: the draft with "imported": true, or
    {"imported": false, "campaign_id": null, "errors": [{"element",
    "message"}], "warnings": [...]}.
    """
    from tocsin.campaigns.drafts import import_cap_draft
    from tocsin.campaigns.services import CampaignInputError
    from tocsin.cap.importer import CapImportError

    try:
        data = _read_cap_file(file)
    except OSError as exc:
        raise _import_failed(as_json, "file", _unreadable(file, exc), EXIT_UNREADABLE) from None
    if authority is None or not authority.strip():
        raise _import_failed(as_json, "authority", "missing option --authority: the "
                             "authority the draft is for (BE or a NIS code)", EXIT_UNREADABLE)
    if isinstance(data, str):
        raise _import_failed(as_json, "document", data, EXIT_INPUT)
    engine = open_engine(announce=True)
    try:
        draft = import_cap_draft(engine, authority, data, "cli", source="cli")
    except CapImportError as exc:
        raise _import_failed(as_json, exc.element, exc.reason, EXIT_INPUT,
                             errors=[p.to_json() for p in exc.problems]) from None
    except Denied as exc:
        raise refused(exc) from None
    except CampaignInputError as exc:
        raise _import_failed(as_json, exc.field, exc.reason, EXIT_INPUT,
                             getattr(exc, "warnings", None)) from None
    if as_json:
        print(json.dumps({"imported": True, **draft}, ensure_ascii=False))
    for w in draft["warnings"]:
        print(f"warning: {w['element']}: {w['message']}", file=sys.stderr)
    for b in draft["blocking"]:
        print(f"blocked: {b['element']}: {b['message']}", file=sys.stderr)
    campaign_id = draft["campaign_id"]
    print(f"draft campaign {campaign_id}: {draft['kind']} for {draft['area_name']} in "
          f"{', '.join(draft['texts'])} (nothing sent; check and launch it"
          + (f"; {len(draft['blocking'])} value(s) to choose first" if draft["blocking"]
             else "") + ")", file=sys.stderr)



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
            raise fail("area", f"cannot read {area}: {exc.strerror}") from None
    try:
        created = create_key(open_engine(announce=True), name, "cli", area=area_data,
                             webhook_url=webhook)
    except GatewayKeyError as exc:
        raise fail(exc.field, exc.reason) from None
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

    keys = list_keys(open_engine())
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
        key = revoke_key(open_engine(announce=True), key_id, "cli")
    except AlreadyRevoked as exc:
        print(exc.reason)
        return
    except GatewayKeyError as exc:
        raise fail(exc.field, exc.reason) from None
    print(f"key {key.id} ({key.name}) revoked")


