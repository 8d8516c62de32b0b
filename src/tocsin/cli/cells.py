"""The cell model of location-based channels: ``tocsin cells show|import``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tocsin.cli.common import fail, open_engine, out

cells_app = typer.Typer(no_args_is_help=True,
                        help="Cell model for location-based SMS and cell broadcast "
                             "(synthetic unless an operator's cells are imported).")


@cells_app.command("show")
def cells_show(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Which cell model estimates use: per operator, synthetic or imported, and how many
    cells (generating the synthetic model takes a few seconds)."""
    from tocsin.geo.services import describe_cell_model

    model = describe_cell_model(open_engine())
    if as_json:
        print(json.dumps(model, ensure_ascii=False, default=str))
        return
    out.print(model["label"].upper() if model["kind"] == "synthetic" else model["label"],
              highlight=False, markup=False)
    if model["kind"] != "imported":
        out.print(model["info"]["disclaimer"], highlight=False, markup=False)
    for o in model["operators"]:
        out.print(f"{o['key']} {o['name']} ({o['mcc']}-{o['mnc']}, share {o['share']:.0%}): "
                  f"{o['cells']} cells, {o['model']} ({o['source']})",
                  highlight=False, markup=False)


@cells_app.command("import")
def cells_import(
    file: Path = typer.Argument(..., help="Operator CSV: cell_id, lat, lon, azimuth, "
                                "beamwidth, range (metres), technology (2G..5G)."),
    operator: str = typer.Option(..., "--operator", help="Whose cells: op1, op2 or op3."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Import an operator's real cells; estimates then use them instead of that
    operator's synthetic cells. Exit 1 naming the line and column of a bad row
    (nothing imported)."""
    from tocsin.geo.cellmodel import CellImportError
    from tocsin.geo.services import import_cells

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise fail("file", f"cannot read {file}: {exc.strerror}") from None
    try:
        result = import_cells(open_engine(), data, operator, file.name)
    except CellImportError as exc:
        where = f"line {exc.line}: " if exc.line else ""
        raise fail(exc.field, f"{where}{exc.reason}") from None
    except UnicodeDecodeError as exc:
        raise fail("file", f"is not UTF-8 text (byte {exc.start})") from None
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    out.print(f"{result['cells']} cells imported for {operator} from {result['source']}",
              highlight=False, markup=False)
