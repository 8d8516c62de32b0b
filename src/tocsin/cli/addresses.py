"""The official address register: ``tocsin addresses import`` (issue 10 point 4)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from tocsin.cli.common import EXIT_INPUT, err, fail, open_engine

addresses_app = typer.Typer(no_args_is_help=True,
                            help="The official address register (BeST-Address).")


def _read(path: Path | None, name: str) -> list[str] | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise fail(name, f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise fail(name, f"is not UTF-8 text (byte {exc.start})") from None


@addresses_app.command("import")
def addresses_import(
    file: Path = typer.Argument(..., help="BeST address CSV: best_id, status, nis, "
                                "municipality_nl/fr/de, postcode, street_nl/fr/de, "
                                "housenumber, boxnumber, lon_wgs84, lat_wgs84 "
                                "(x_lambert72, y_lambert72 optional)."),
    municipalities: Path | None = typer.Option(
        None, "--municipalities", help="BeST municipality names: id;nis;name_nl;name_fr;name_de."),
    postal: Path | None = typer.Option(
        None, "--postal", help="BeST postal names: id;postcode;name_nl;name_fr;name_de."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Import or update the address register (by BeST id; retired addresses kept, never
    offered). Refused rows are listed with their line and reason; the rest is imported.

    Exit 0: imported (even with refused rows); exit 1: nothing written (unreadable file,
    not a BeST file, bad municipality/postal line)."""
    from tocsin.geo.addresses import AddressImportError, import_addresses, iter_lines

    muni_lines, postal_lines = _read(municipalities, "municipalities"), _read(postal, "postal")
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise fail("file", f"cannot read {file}: {exc.strerror}") from None
    engine = open_engine(announce=not as_json)
    try:
        report = import_addresses(engine, iter_lines(str(file)), file.name,
                                  municipalities=muni_lines, postal=postal_lines)
    except AddressImportError as exc:
        raise fail(exc.field, exc.reason) from None
    except UnicodeDecodeError as exc:
        raise fail("file", f"is not UTF-8 text (byte {exc.start}); nothing imported") from None
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    for r in report.refusals:
        err.print(escape(f"row {r['row']}: {r['field']} {r['value']!r}: {r['reason']}"),
                  highlight=False)
    if report.refused > len(report.refusals):
        err.print(f"… and {report.refused - len(report.refusals)} more refused rows",
                  highlight=False)
    err.print(escape(f"address register: {report.imported} imported, {report.updated} "
                     f"updated, {report.unchanged} unchanged, {report.refused} refused "
                     f"({report.retired} retired) from {report.rows} rows"), highlight=False)


__all__ = ["addresses_app", "EXIT_INPUT"]
