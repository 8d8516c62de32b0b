"""Cell-model use cases: import an operator's real cells, describe and use the model in
force (SPEC F17, F18; ``tocsin.geo.cellmodel``)."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.audit import record_audit
from tocsin.core.db import read_transaction, transaction
from tocsin.geo import cellmodel as cm
from tocsin.geo.models import Cell, CellImport

_BATCH = 5_000
_OPERATORS = {o.key: o for o in cm.SYNTHETIC_OPERATORS}


def import_cells(engine: Engine, data: bytes, operator: str, source: str,
                 imported_by: str = "cli") -> dict[str, Any]:
    """Import an operator's cell CSV (``cellmodel.parse_cells_csv``) as the cells of
    ``operator`` (``op1``, ``op2``, ``op3``); later estimates use them instead of that
    operator's synthetic cells. Audited (``cells.import``).

    Returns ``{"import_id", "operator", "cells", "source", "sha256", "model"}``.
    Raises ``cellmodel.CellImportError`` (line, column, reason) for a bad file, or for an
    unknown operator (line 0, column ``operator``); nothing is written then.
    """
    if operator not in _OPERATORS:
        raise cm.CellImportError(0, "operator", f"{operator!r} is not one of "
                                                f"{', '.join(_OPERATORS)}")
    cells = cm.parse_cells_csv(data)
    digest = hashlib.sha256(data).hexdigest()
    with transaction(engine) as s:
        row = CellImport(operator=operator, source=source[:300], cells=len(cells),
                         sha256=digest, imported_by=imported_by)
        s.add(row)
        s.flush()
        for start in range(0, len(cells), _BATCH):
            s.execute(sa.insert(Cell), [
                {"import_id": row.id, "cell_id": c.cell_id, "lat": c.lat, "lon": c.lon,
                 "azimuth": c.azimuth, "beamwidth": c.beamwidth, "range_m": c.range_m,
                 "tech": c.tech} for c in cells[start:start + _BATCH]])
        record_audit(s, imported_by, "cells.import", target=operator, source="cli",
                     detail={"cells": len(cells), "source": source, "sha256": digest})
        import_id = row.id
    return {"import_id": import_id, "operator": operator, "cells": len(cells),
            "source": source, "sha256": digest,
            "model": "imported cell model for " + _OPERATORS[operator].name}


def _latest_imports(s: Session) -> list[CellImport]:
    latest = (sa.select(CellImport.operator, sa.func.max(CellImport.id).label("id"))
              .group_by(CellImport.operator).subquery())
    return list(s.scalars(sa.select(CellImport).join(latest, latest.c.id == CellImport.id)
                          .order_by(CellImport.operator)))


_LOADED: dict[tuple[tuple[int, str], ...], cm.CellModel] = {}


def cell_model(s: Session) -> cm.CellModel:
    """The cell model in force: the synthetic one, with each operator whose cells were
    imported replaced by its latest import. Imported rows are read once per process
    and import (cached by import ids)."""
    imports = [i for i in _latest_imports(s) if i.operator in _OPERATORS]
    if not imports:
        return cm.synthetic_model()
    key = tuple((i.id, i.sha256) for i in imports)
    if key not in _LOADED:
        loaded: dict[str, tuple[list[cm.ImportedCell], str]] = {}
        for i in imports:
            rows = s.execute(sa.select(Cell.cell_id, Cell.lat, Cell.lon, Cell.azimuth,
                                       Cell.beamwidth, Cell.range_m, Cell.tech)
                             .where(Cell.import_id == i.id).order_by(Cell.id)).all()
            loaded[i.operator] = ([cm.ImportedCell(*r) for r in rows], i.source)
        _LOADED.clear()
        _LOADED[key] = cm.model_with_imports(loaded)
    return _LOADED[key]


def describe_cell_model(engine: Engine) -> dict[str, Any]:
    """What the model in force is: ``{"kind": "synthetic"|"imported"|"mixed", "label",
    "operators": [{"key", "name", "mcc", "mnc", "share", "model", "cells", "source",
    "imported_at"}], "info": the synthetic model's label block}``."""
    with read_transaction(engine) as s:
        imports = {i.operator: i for i in _latest_imports(s)}
        model = cell_model(s)
    ops = []
    for o in model.operators:
        i = imports.get(o.operator.key)
        ops.append({"key": o.operator.key, "name": o.operator.name, "mcc": o.operator.mcc,
                    "mnc": o.operator.mnc, "share": o.operator.share,
                    "model": "synthetic" if o.synthetic else "imported", "cells": o.cells,
                    "source": o.source,
                    "imported_at": i.imported_at.isoformat() if i is not None else None})
    return {"kind": model.kind, "label": model.label, "operators": ops, "info": model.info}
