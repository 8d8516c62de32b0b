"""Contact lists and groups of an authority: ``tocsin contacts …``, ``tocsin groups …``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from tocsin.authorities.access import Denied
from tocsin.cli.common import EXIT_INPUT, err, fail, open_engine, out, refused

contacts_app = typer.Typer(no_args_is_help=True,
                           help="Contact lists of an authority (import, list).")
groups_app = typer.Typer(no_args_is_help=True,
                         help="Groups of contacts: static, or geographic (an area).")

_AUTHORITY = typer.Option(..., "--authority", help="Authority id (NIS code, or BE).")


def _input_error(exc: Exception) -> typer.Exit:
    return fail(getattr(exc, "field", "input"), getattr(exc, "reason", str(exc)))


@contacts_app.command("import")
def contacts_import(
    file: Path = typer.Argument(..., help="CSV, TSV, XLSX or ODS; the first row names "
                                "the columns (GSM, e-mail, naam, langue…)."),
    authority: str = _AUTHORITY,
    list_name: str = typer.Option(..., "--list", help="The list to replace (created if new)."),
    mapping: list[str] = typer.Option([], "--map", help="COLUMN=FIELD for a column whose "
                                      "name is not recognised (FIELD: name, first_name, "
                                      "last_name, mobile, email, language or ignore); "
                                      "remembered for the authority."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and preview; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
    errors_csv: Path | None = typer.Option(None, "--errors-csv", help="Also write the bad "
                                           "rows to this CSV file (formulas escaped)."),
) -> None:
    """Replace a contact list with a file: all rows or none (every bad row is listed).

    Exit 0: imported (or, with --dry-run, would be); exit 1: nothing written."""
    from tocsin.subscribers.contacts import (
        ContactInputError,
        error_report_csv,
        import_contacts,
    )

    def refuse(field: str, reason: str) -> typer.Exit:
        if as_json:
            print(json.dumps({"imported": 0, "updated": 0, "removed": 0, "errors": [
                {"row": 0, "field": field, "value": "", "reason": reason}]}))
        return fail(field, reason)

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise refuse("file", f"cannot read {file}: {exc.strerror}") from None
    engine = open_engine(announce=not as_json)
    try:
        result = import_contacts(engine, data, authority, list_name, mapping=mapping,
                                 dry_run=dry_run)
    except ContactInputError as exc:
        raise refuse(exc.field, exc.reason) from None
    except Denied as exc:
        raise refused(exc) from None
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    if result.errors:
        rows = len({e["row"] for e in result.errors})
        err.print(f"[red]{len(result.errors)} error(s) on {rows} row(s): nothing imported[/]",
                  highlight=False)
        for e in result.errors:
            if not e["row"]:
                err.print(escape(f"{e['field']}: {e['reason']}"), highlight=False)
                continue
            column = f" ({e['column']})" if e["column"] and e["column"] != e["field"] else ""
            err.print(escape(f"row {e['row']}: {e['field']}{column} {e['value']!r}: "
                             f"{e['reason']}"), highlight=False)
        if errors_csv is not None:
            errors_csv.write_text(error_report_csv(result.errors), encoding="utf-8")
            err.print(escape(f"error report: {errors_csv}"), highlight=False)
        raise typer.Exit(EXIT_INPUT)
    for r in result.repaired:
        err.print(escape(f"row {r['row']}: {r['field']} {r['value']!r} read as {r['to']}"),
                  highlight=False)
    verb = "would be" if dry_run else "now"
    err.print(escape(f"list {result.list_name!r} of {authority} {verb}: {result.summary()}"
                     f" ({result.unchanged} unchanged, {len(result.repaired)} repaired)"),
              highlight=False)


@contacts_app.command("lists")
def contacts_lists(authority: str = _AUTHORITY,
                   as_json: bool = typer.Option(False, "--json")) -> None:
    """The contact lists the authority may use (its own and its cooperation's)."""
    from tocsin.subscribers.contacts import ContactInputError, contact_lists

    try:
        lists = contact_lists(open_engine(), authority)
    except ContactInputError as exc:
        raise _input_error(exc) from None
    except Denied as exc:
        raise refused(exc) from None
    if as_json:
        print(json.dumps(lists))
        return
    for item in lists:
        out.print(escape(f"{item['name']}\t{item['authority']}\t{item['contacts']} contacts"),
                  highlight=False)


def _run(call: Any) -> Any:
    from tocsin.subscribers.contacts import ContactInputError

    try:
        return call()
    except ContactInputError as exc:
        raise _input_error(exc) from None
    except Denied as exc:
        raise refused(exc) from None


@groups_app.command("create")
def groups_create(
    name: str = typer.Argument(...),
    authority: str = _AUTHORITY,
    area: Path | None = typer.Option(None, "--area", help="GeoJSON Polygon/MultiPolygon "
                                     "file: a geographic group (everyone registered in it)."),
) -> None:
    """Create a group: static (add contacts with ``groups add``) or geographic (--area)."""
    from tocsin.subscribers.groups import create_group

    area_data = None
    if area is not None:
        try:
            area_data = area.read_bytes()
        except OSError as exc:
            raise fail("area", f"cannot read {area}: {exc.strerror}") from None
    g = _run(lambda: create_group(open_engine(), authority, name, area_geojson=area_data))
    err.print(escape(f"group {g['name']!r} ({g['kind']}) of {g['authority']} created"),
              highlight=False)


@groups_app.command("add")
def groups_add(
    name: str = typer.Argument(...),
    authority: str = _AUTHORITY,
    list_name: str = typer.Option(..., "--list", help="The contact list they come from."),
    contact: list[str] = typer.Option([], "--contact", help="A mobile number or e-mail "
                                      "address of the list (repeat); none: the whole list."),
) -> None:
    """Add contacts of a list to a static group."""
    from tocsin.subscribers.groups import change_members

    r = _run(lambda: change_members(open_engine(), authority, name, list_name, contact))
    err.print(escape(f"group {r['group']!r}: {r['changed']} added, {r['members']} members"),
              highlight=False)


@groups_app.command("remove")
def groups_remove(
    name: str = typer.Argument(...),
    authority: str = _AUTHORITY,
    list_name: str = typer.Option(..., "--list", help="The contact list they come from."),
    contact: list[str] = typer.Option([], "--contact", help="A mobile number or e-mail "
                                      "address (repeat); none: every contact of the list."),
) -> None:
    """Take contacts out of a static group (they stay in their list)."""
    from tocsin.subscribers.groups import change_members

    r = _run(lambda: change_members(open_engine(), authority, name, list_name, contact,
                                    remove=True))
    err.print(escape(f"group {r['group']!r}: {r['changed']} removed, {r['members']} members"),
              highlight=False)


@groups_app.command("list")
def groups_list(authority: str = _AUTHORITY,
                as_json: bool = typer.Option(False, "--json")) -> None:
    """The groups the authority may use (its own and its cooperation's)."""
    from tocsin.subscribers.groups import list_groups

    groups = _run(lambda: list_groups(open_engine(), authority))
    if as_json:
        print(json.dumps(groups))
        return
    for g in groups:
        members = "area" if g["members"] is None else f"{g['members']} members"
        out.print(escape(f"{g['name']}\t{g['authority']}\t{g['kind']}\t{members}"),
                  highlight=False)


@groups_app.command("show")
def groups_show(name: str = typer.Argument(...), authority: str = _AUTHORITY,
                as_json: bool = typer.Option(False, "--json")) -> None:
    """A group and its members."""
    from tocsin.subscribers.groups import group_members

    g = _run(lambda: group_members(open_engine(), authority, name))
    if as_json:
        print(json.dumps(g, ensure_ascii=False))
        return
    out.print(escape(f"{g['name']} ({g['kind']}, {g['authority']}): "
                     f"{len(g['members'])} members"), highlight=False)
    for m in g["members"]:
        out.print(escape("\t".join(str(m[k] or "") for k in ("list", "name", "mobile",
                                                             "email", "language"))),
                  highlight=False)


@groups_app.command("delete")
def groups_delete(name: str = typer.Argument(...), authority: str = _AUTHORITY) -> None:
    """Delete a group (its contacts stay in their lists)."""
    from tocsin.subscribers.groups import delete_group

    g = _run(lambda: delete_group(open_engine(), authority, name))
    err.print(escape(f"group {g['name']!r} of {g['authority']} deleted"), highlight=False)
