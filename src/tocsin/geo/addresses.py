"""The official address register: import (``tocsin addresses import``), the lookups of
the portal's autocomplete, and :func:`resolve` (issue 10 point 4;
docs/decisions/0022-address-register.md).

Import: the file is read as a stream; checked rows go to ``address_stage`` in batches of
:data:`BATCH` rows (memory stays flat for a 6-million-row national export), then ONE
transaction merges the run into ``address_point`` (by ``best_id``: new rows inserted,
changed rows updated, the others left as they are), rebuilds the street and place names
of the municipalities the file touches, and marks the run ``done``. A run that fails or is
interrupted before that transaction leaves ``address_point`` as it was (its staged rows
are deleted, the run marked ``failed``); a retired address stays, with
``status='retired'``, and is never offered again.

Lookups are on folded keys (``address_rules.fold``: case, accents and punctuation
ignored) and return at most :data:`MAX_RESULTS` items, names in the reader's language
first.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from pyproj import Geod
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.geo.address_models import (
    AddressImport,
    AddressPlace,
    AddressPoint,
    AddressStage,
    AddressStreet,
)
from tocsin.geo.address_rules import (
    BOX_WORD,
    LANGS,
    REQUIRED_COLUMNS,
    RowRefused,
    box_key,
    check_row,
    fold,
    nearest_numbers,
    number_key,
    number_order,
    parse_named_code,
    prefix_range,
)

_GEOD = Geod(ellps="WGS84")
BATCH = 5_000
MAX_RESULTS = 20
#: Refused rows listed one by one in a report (all are counted).
MAX_LISTED = 10_000
_FIELDS = [c for c in AddressStage.__table__.columns.keys() if c not in ("run_id", "row")]


class AddressImportError(ValueError):
    """The file cannot be imported at all (nothing written): ``field``, English ``reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass
class ImportReport:
    """What a run did. ``rows``: data rows read; ``imported`` new addresses; ``updated``
    changed ones; ``unchanged``; ``retired``: rows with status retired; ``refused``:
    rows not imported, listed (the first :data:`MAX_LISTED`) in ``refusals`` as
    ``{"row", "field", "value", "reason"}`` (``row``: the line in the file, the header
    being line 1); ``municipalities``: NIS codes the file touched."""

    run_id: int = 0
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    retired: int = 0
    refused: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)
    municipalities: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (the CLI's ``--json``)."""
        return {"run": self.run_id, "rows": self.rows, "imported": self.imported,
                "updated": self.updated, "unchanged": self.unchanged, "retired": self.retired,
                "refused": self.refused, "refusals": self.refusals,
                "municipalities": self.municipalities}


# --- import -------------------------------------------------------------------------


def _named(lines: Iterable[str] | None, digits: int, what: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for n, line in enumerate(lines or (), start=1):
        try:
            item = parse_named_code(line, digits)
        except RowRefused as exc:
            raise AddressImportError(what, f"line {n}: {exc.field} {exc.value!r} "
                                     f"{exc.reason}") from None
        if item is not None:
            out[item.code] = item.names
    return out


def import_addresses(engine: Engine, lines: Iterable[str], source: str, *,
                     municipalities: Iterable[str] | None = None,
                     postal: Iterable[str] | None = None) -> ImportReport:
    """Import a BeST address CSV (``lines``: its text lines, read lazily) into the register.

    ``municipalities`` / ``postal``: the lines of the BeST municipality and postal-name
    files (``id;code;name_nl;name_fr;name_de``), optional: they add names (a postcode's
    own name, "Laeken", is found only with the postal file). Idempotent: the same file
    twice changes nothing the second time (all its rows ``unchanged``).

    One import at a time: a run still marked ``running`` when another starts was killed
    (a failed run marks itself ``failed``); it is marked ``failed`` and its stage dropped.

    Raises :class:`AddressImportError` (``file`` for a missing column or an unreadable
    header, ``municipalities``/``postal`` for a bad line of those files) before writing
    anything. Refused rows are reported, not raised.
    """
    muni_names = _named(municipalities, 5, "municipalities")
    postal_names = _named(postal, 4, "postal")
    reader = csv.DictReader(iter(lines))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise AddressImportError("file", "not a BeST address file: missing column(s) "
                                 + ", ".join(missing))
    report = ImportReport()
    with transaction(engine) as s:
        # One import at a time: a run still "running" was killed (no "failed" written).
        s.execute(sa.update(AddressImport).where(AddressImport.status == "running")
                  .values(status="failed", finished_at=utcnow()))
        s.execute(sa.delete(AddressStage))
        run = AddressImport(source=source[:300], status="running", started_at=utcnow())
        s.add(run)
        s.flush()
        report.run_id = run_id = run.id
    try:
        _stage(engine, reader, run_id, report)
        _merge(engine, run_id, report, muni_names, postal_names)
    except BaseException:
        with transaction(engine) as s:
            s.execute(sa.delete(AddressStage).where(AddressStage.run_id == run_id))
            s.execute(sa.update(AddressImport).where(AddressImport.id == run_id)
                      .values(status="failed", finished_at=utcnow(), rows=report.rows,
                              refused=report.refused))
        raise
    return report


def _refuse(report: ImportReport, line: int, fld: str, value: str, reason: str) -> None:
    report.refused += 1
    if len(report.refusals) < MAX_LISTED:
        report.refusals.append({"row": line, "field": fld, "value": value, "reason": reason})


def _stage(engine: Engine, reader: csv.DictReader[str], run_id: int,
           report: ImportReport) -> None:
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            with transaction(engine) as s:
                s.execute(sa.insert(AddressStage), batch)
            batch.clear()

    for row in reader:
        report.rows += 1
        line = reader.line_num
        try:
            values = check_row(row)
        except RowRefused as exc:
            _refuse(report, line, exc.field, exc.value, exc.reason)
            continue
        batch.append({"run_id": run_id, "row": line, **values})
        if len(batch) >= BATCH:
            flush()
    flush()


def _merge(engine: Engine, run_id: int, report: ImportReport,
           muni_names: dict[str, dict[str, str]],
           postal_names: dict[str, dict[str, str]]) -> None:
    st, pt = cast(sa.Table, AddressStage.__table__), cast(sa.Table, AddressPoint.__table__)
    with transaction(engine) as s:
        mine = st.c.run_id == run_id
        # The same best_id twice in one file: the later row wins, the earlier is refused.
        repeated = list(s.scalars(sa.select(st.c.best_id).where(mine).group_by(st.c.best_id)
                                  .having(sa.func.count() > 1)))
        dropped: list[int] = []
        for start in range(0, len(repeated), 500):
            seen = s.execute(sa.select(st.c.row, st.c.best_id).where(
                mine, st.c.best_id.in_(repeated[start:start + 500]))
                .order_by(st.c.best_id, st.c.row.desc())).all()
            last: dict[str, int] = {}
            for d in seen:
                if d.best_id in last:
                    _refuse(report, d.row, "best_id", d.best_id,
                            f"repeated on row {last[d.best_id]}")
                    dropped.append(d.row)
                else:
                    last[d.best_id] = d.row
        for start in range(0, len(dropped), 500):
            s.execute(sa.delete(st).where(mine, st.c.row.in_(dropped[start:start + 500])))
        report.refusals.sort(key=lambda r: r["row"])
        same = sa.and_(*[pt.c[c] == st.c[c] for c in _FIELDS if c != "best_id"])
        matched = sa.and_(mine, pt.c.best_id == st.c.best_id)
        report.unchanged = s.scalar(sa.select(sa.func.count()).select_from(st).join(
            pt, pt.c.best_id == st.c.best_id).where(mine, same)) or 0
        report.updated = s.scalar(sa.select(sa.func.count()).select_from(st).join(
            pt, pt.c.best_id == st.c.best_id).where(mine, ~same)) or 0
        staged = s.scalar(sa.select(sa.func.count()).select_from(st).where(mine)) or 0
        report.retired = s.scalar(sa.select(sa.func.count()).select_from(st).where(
            mine, st.c.status == "retired")) or 0
        report.imported = staged - report.unchanged - report.updated
        if report.updated:
            s.execute(pt.update().where(matched, ~same).values(
                {**{c: st.c[c] for c in _FIELDS if c != "best_id"}, "run_id": run_id}))
        if report.imported:
            s.execute(pt.insert().from_select(
                [*_FIELDS, "run_id"],
                sa.select(*[st.c[c] for c in _FIELDS], sa.literal(run_id))
                .where(mine, ~sa.exists().where(pt.c.best_id == st.c.best_id))))
        touched = sorted(s.scalars(sa.select(st.c.nis).where(mine).distinct()))
        for nis in touched:
            _rebuild_names(s, nis, muni_names.get(nis, {}), postal_names)
        for nis, names in muni_names.items():
            if nis not in touched:
                _set_place(s, "municipality", nis, "", names)
        s.execute(sa.delete(st).where(mine))
        s.execute(sa.update(AddressImport).where(AddressImport.id == run_id).values(
            status="done", finished_at=utcnow(), rows=report.rows, imported=report.imported,
            updated=report.updated, unchanged=report.unchanged, retired=report.retired,
            refused=report.refused))
    report.municipalities = touched


def _set_place(s: Session, kind: str, nis: str, postcode: str, names: dict[str, str]) -> None:
    s.execute(sa.delete(AddressPlace).where(AddressPlace.kind == kind, AddressPlace.nis == nis,
                                            AddressPlace.postcode == postcode))
    rows = [{"kind": kind, "nis": nis, "postcode": postcode, "lang": lang, "name": name,
             "name_key": fold(name)[:100]} for lang, name in names.items() if fold(name)]
    if rows:
        s.execute(sa.insert(AddressPlace), rows)


def _rebuild_names(s: Session, nis: str, file_names: dict[str, str],
                   postal_names: dict[str, dict[str, str]]) -> None:
    """The street and place names of municipality ``nis`` from its current addresses."""
    p = AddressPoint
    current = sa.and_(p.nis == nis, p.status == "current")
    s.execute(sa.delete(AddressStreet).where(AddressStreet.nis == nis))
    batch: list[dict[str, Any]] = []
    for r in s.execute(sa.select(p.postcode, p.street_key, p.street_nl, p.street_fr,
                                 p.street_de).where(current).distinct()):
        for lang, name in zip(LANGS, (r.street_nl, r.street_fr, r.street_de), strict=True):
            if name and fold(name):
                batch.append({"nis": nis, "postcode": r.postcode, "street_key": r.street_key,
                              "lang": lang, "name": name, "name_key": fold(name)[:150]})
    unique = {(b["postcode"], b["street_key"], b["lang"]): b for b in batch}
    rows = list(unique.values())
    for start in range(0, len(rows), BATCH):
        s.execute(sa.insert(AddressStreet), rows[start:start + BATCH])
    names = dict(file_names)
    postcodes: list[str] = []
    for m in s.execute(sa.select(p.postcode, p.municipality_nl, p.municipality_fr,
                                 p.municipality_de).where(p.nis == nis).distinct()):
        for lang, name in zip(LANGS, (m.municipality_nl, m.municipality_fr,
                                      m.municipality_de), strict=True):
            if name and lang not in names:
                names[lang] = name
        if m.postcode not in postcodes:
            postcodes.append(m.postcode)
    s.execute(sa.delete(AddressPlace).where(AddressPlace.nis == nis))
    _set_place(s, "municipality", nis, "", names)
    for postcode in postcodes:
        _set_place(s, "postal", nis, postcode, postal_names.get(postcode) or names)


# --- lookups ------------------------------------------------------------------------


def _limit(limit: int) -> int:
    return max(1, min(MAX_RESULTS, limit))


def _pick(names: dict[str, str], lang: str) -> str:
    """The name in ``lang``, else French, Dutch, German (the first there is)."""
    for choice in (lang, "fr", "nl", "de"):
        if names.get(choice):
            return names[choice]
    return ""


def has_register(engine: Engine) -> bool:
    """True once some address was imported (the portal then offers the autocomplete)."""
    with read_transaction(engine) as s:
        return s.scalar(sa.select(AddressPoint.id).limit(1)) is not None


def municipalities(engine: Engine, q: str, lang: str = "fr", limit: int = 10
                   ) -> list[dict[str, Any]]:
    """Municipalities and postal names starting with ``q`` (any language; digits: a
    postcode prefix). Items: ``{"nis", "postcode"}`` ("" for the whole municipality),
    ``"name"`` (in ``lang`` when the register has it), ``"label"`` (what the field
    takes: "Bruxelles", "1130 Haren"), ``"addresses"`` (the register has addresses
    there). The names matched in ``lang`` come first; at most ``limit`` (≤ 20) items."""
    key = fold(q)
    if not key:
        return []
    a = AddressPlace
    if key.isdigit():
        where = sa.and_(a.kind == "postal", a.postcode >= key, a.postcode < key + "~")
    else:
        lo, hi = prefix_range(key)
        where = sa.and_(a.name_key >= lo, a.name_key < hi)
    with read_transaction(engine) as s:
        hits = s.execute(sa.select(a.kind, a.nis, a.postcode, a.lang).where(where)
                         .order_by(a.name_key).limit(200)).all()
        groups = {(h.kind, h.nis, h.postcode) for h in hits}
        names: dict[tuple[str, str, str], dict[str, str]] = {}
        if groups:
            nises = {g[1] for g in groups}
            for r in s.execute(sa.select(a.kind, a.nis, a.postcode, a.lang, a.name)
                               .where(a.nis.in_(nises))):
                names.setdefault((r.kind, r.nis, r.postcode), {})[r.lang] = r.name
            with_data = set(s.scalars(sa.select(AddressPoint.nis).where(
                AddressPoint.nis.in_(nises)).distinct()))
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for h in hits:
        g = (h.kind, h.nis, h.postcode)
        if g in out:
            out[g]["own"] = out[g]["own"] or h.lang == lang
            continue
        name = _pick(names.get(g, {}), lang)
        out[g] = {"nis": h.nis, "postcode": h.postcode, "name": name,
                  "label": f"{h.postcode} {name}" if h.postcode else name,
                  "addresses": h.nis in with_data, "own": h.lang == lang}
    items = sorted(out.values(), key=lambda i: (not i["own"], i["postcode"] != "",
                                                fold(i["name"]), i["postcode"]))
    for i in items:
        del i["own"]
    return items[:_limit(limit)]


@dataclass(frozen=True)
class PlaceMatch:
    """What a municipality field names: ``nis`` codes (several only for a name shared by
    municipalities) and the ``postcode`` when one was named (typed, or a postal name)."""

    nis: tuple[str, ...]
    postcode: str | None = None


def match_place(engine: Engine, text: str) -> PlaceMatch | None:
    """The municipality a field names: "Bruxelles", "brussel", "1130", "1130 Haren",
    "Haren" (folded equality, any language); None when the register knows no such name.
    """
    key = fold(text)
    if not key:
        return None
    head, _, rest = key.partition(" ")
    postcode = head if len(head) == 4 and head.isdigit() else None
    a = AddressPlace
    with read_transaction(engine) as s:
        if postcode and not rest:
            rows = s.execute(sa.select(a.kind, a.nis, a.postcode).where(
                a.kind == "postal", a.postcode == postcode)).all()
        else:
            rows = s.execute(sa.select(a.kind, a.nis, a.postcode).where(
                a.name_key == (rest if postcode else key)[:100])).all()
            if postcode:
                rows = [r for r in rows if r.kind == "municipality" or r.postcode == postcode]
                if rows and not any(r.postcode == postcode for r in rows):
                    nises = {r.nis for r in rows}
                    if not s.scalar(sa.select(sa.func.count()).select_from(a).where(
                            a.kind == "postal", a.postcode == postcode, a.nis.in_(nises))):
                        rows = []
    if not rows:
        return None
    nis = tuple(sorted({r.nis for r in rows}))
    if postcode is None:
        postal = {r.postcode for r in rows if r.kind == "postal"}
        municipal = any(r.kind == "municipality" for r in rows)
        postcode = postal.pop() if len(postal) == 1 and not municipal else None
    return PlaceMatch(nis, postcode)


def _street_rows(s: Session, place: PlaceMatch) -> list[Any]:
    t = AddressStreet
    where: list[sa.ColumnElement[bool]] = [t.nis.in_(place.nis)]
    if place.postcode:
        where.append(t.postcode == place.postcode)
    return list(s.execute(sa.select(t.postcode, t.street_key, t.lang, t.name, t.name_key)
                          .where(*where)))


def streets(engine: Engine, place: PlaceMatch, q: str, lang: str = "fr", limit: int = 10
            ) -> list[dict[str, Any]]:
    """Streets of ``place`` whose name (any language) starts with ``q``, or has a word
    starting with it ("haecht" finds "Chaussée de Haecht"). Items: ``{"name"`` (in
    ``lang`` when it has one), ``"names"`` (by language), ``"postcodes"``}; prefix
    matches first, at most ``limit`` (≤ 20)."""
    key = fold(q)
    t = AddressStreet
    where: list[sa.ColumnElement[bool]] = [t.nis.in_(place.nis)]
    if place.postcode:
        where.append(t.postcode == place.postcode)
    if key:
        lo, hi = prefix_range(key)
        where.append(sa.or_(sa.and_(t.name_key >= lo, t.name_key < hi),
                            t.name_key.like(f"% {key}%")))
    with read_transaction(engine) as s:
        hits = s.execute(sa.select(t.street_key, t.postcode, t.name_key).where(*where)
                         .limit(2000)).all()
        keys = {h.street_key for h in hits}
        names: dict[str, dict[str, str]] = {}
        postcodes: dict[str, set[str]] = {}
        if keys:
            for r in s.execute(sa.select(t.street_key, t.postcode, t.lang, t.name)
                               .where(t.nis.in_(place.nis), t.street_key.in_(keys))):
                names.setdefault(r.street_key, {})[r.lang] = r.name
                postcodes.setdefault(r.street_key, set()).add(r.postcode)
    rank: dict[str, int] = {}
    for h in hits:
        rank[h.street_key] = min(rank.get(h.street_key, 1), 0 if h.name_key.startswith(key)
                                 else 1)
    ordered = sorted(rank, key=lambda k: (rank[k], fold(_pick(names[k], lang))))
    return [{"name": _pick(names[k], lang), "names": names[k],
             "postcodes": sorted(postcodes[k] if not place.postcode else {place.postcode})}
            for k in ordered][:_limit(limit)]


def _street_keys(s: Session, place: PlaceMatch, street: str) -> list[Any]:
    key = fold(street)
    t = AddressStreet
    where: list[sa.ColumnElement[bool]] = [t.nis.in_(place.nis), t.name_key == key[:150]]
    if place.postcode:
        where.append(t.postcode == place.postcode)
    return list(s.execute(sa.select(t.street_key, t.lang).where(*where).distinct()))


def _points(s: Session, place: PlaceMatch, keys: Iterable[str]) -> list[AddressPoint]:
    p = AddressPoint
    where: list[sa.ColumnElement[bool]] = [p.nis.in_(place.nis), p.street_key.in_(set(keys)),
                                          p.status == "current"]
    if place.postcode:
        where.append(p.postcode == place.postcode)
    return list(s.scalars(sa.select(p).where(*where)))


def numbers(engine: Engine, place: PlaceMatch, street: str, q: str = "",
            limit: int = 10) -> list[str]:
    """House numbers of ``street`` (any language, folded equality) in ``place`` that
    start with ``q``, in natural order ("2", "10", "10A"); at most ``limit`` (≤ 20)."""
    key = number_key(q)
    with read_transaction(engine) as s:
        keys = [r.street_key for r in _street_keys(s, place, street)]
        points = _points(s, place, keys) if keys else []
    found = {p.number_key: p.number for p in points if p.number_key.startswith(key)}
    return sorted(found.values(), key=number_order)[:_limit(limit)]


def boxes(engine: Engine, place: PlaceMatch, street: str, number: str,
          limit: int = 20) -> list[str]:
    """The boxes of ``number`` in ``street`` (empty list: the number has none)."""
    with read_transaction(engine) as s:
        keys = [r.street_key for r in _street_keys(s, place, street)]
        points = _points(s, place, keys) if keys else []
    found = {p.box_key: p.box for p in points
             if p.number_key == number_key(number) and p.box_key}
    return sorted(found.values(), key=number_order)[:_limit(limit)]


@dataclass(frozen=True)
class Resolution:
    """The answer of :func:`resolve`. ``status``: ``found`` (``point``), ``missing``
    (the register has the municipality but not this address: ``field`` is the part not
    found, ``municipality``, ``street``, ``number`` or ``box``, and ``suggestions`` the
    nearest values), or ``no_data`` (the register has no address in that municipality:
    the caller falls back to the municipality's centre). ``nis``: the municipality when
    known (``missing`` with one municipality).

    ``point``: ``{"best_id", "lat", "lon", "nis", "postcode", "municipality",
    "street", "number", "box", "label"}``, names in the language the street was typed
    in ("Chaussée de Haecht 1840 bte b007, 1130 Bruxelles")."""

    status: str
    point: dict[str, Any] | None = None
    field: str = ""
    suggestions: tuple[str, ...] = ()
    nis: str | None = None


def _label(street: str, number: str, box: str, postcode: str, town: str, lang: str) -> str:
    box_text = f" {BOX_WORD.get(lang, 'bte')} {box}" if box else ""
    return f"{street} {number}{box_text}, {postcode} {town}"


def resolve(engine: Engine, municipality: str, street: str, number: str, box: str = "",
            lang: str = "fr") -> Resolution:
    """Find the address typed (municipality: name in any language or postcode, see
    :func:`match_place`; street: any language; case, accents, hyphens ignored) in the
    register. A box is checked only when the number has boxes in the register (a box
    the register does not list at a house without boxes is kept as text only); no box
    typed at a number with boxes takes the number's point without box, else its first
    box (the same building). See :class:`Resolution`."""
    place = match_place(engine, municipality)
    if place is None:
        return Resolution("no_data")
    with read_transaction(engine) as s:
        if s.scalar(sa.select(AddressPoint.id).where(
                AddressPoint.nis.in_(place.nis), AddressPoint.status == "current")
                .limit(1)) is None:
            return Resolution("no_data")
        nis = place.nis[0] if len(place.nis) == 1 else None
        matched = _street_keys(s, place, street)
        if not matched:
            names = sorted({r.name for r in _street_rows(s, place)
                            if r.lang == lang} or {r.name for r in _street_rows(s, place)})
            close = difflib.get_close_matches(street, names, n=3, cutoff=0.6) or \
                difflib.get_close_matches(fold(street), [fold(n) for n in names], n=3)
            by_key = {fold(n): n for n in names}
            return Resolution("missing", field="street", nis=nis, suggestions=tuple(
                by_key.get(c) or c for c in close))
        street_lang = next((r.lang for r in matched if r.lang == lang), matched[0].lang)
        points = _points(s, place, [r.street_key for r in matched])
        if not points:
            return Resolution("missing", field="street", nis=nis)
        at_number = [p for p in points if p.number_key == number_key(number)]
        if not at_number:
            all_numbers = sorted({p.number for p in points}, key=number_order)
            return Resolution("missing", field="number", nis=nis,
                              suggestions=tuple(nearest_numbers(number, all_numbers)))
        if len({p.postcode for p in at_number}) > 1:
            return Resolution("missing", field="municipality", nis=nis, suggestions=tuple(
                sorted({p.postcode for p in at_number})))
        boxed = [p for p in at_number if p.box_key]
        wanted = box_key(box)
        if wanted and boxed:
            hit = next((p for p in boxed if p.box_key == wanted), None)
            if hit is None:
                return Resolution("missing", field="box", nis=nis, suggestions=tuple(
                    sorted({p.box for p in boxed}, key=number_order)[:8]))
        else:
            hit = next((p for p in at_number if not p.box_key), at_number[0])
        town_names = {"nl": hit.municipality_nl, "fr": hit.municipality_fr,
                      "de": hit.municipality_de}
        street_names = {"nl": hit.street_nl, "fr": hit.street_fr, "de": hit.street_de}
        town, street_name = _pick(town_names, street_lang), _pick(street_names, street_lang)
        box_text = hit.box if hit.box_key else box.strip()
        point = {"best_id": hit.best_id, "lat": hit.lat, "lon": hit.lon, "nis": hit.nis,
                 "postcode": hit.postcode, "municipality": town, "street": street_name,
                 "number": hit.number, "box": box_text,
                 "label": _label(street_name, hit.number, box_text, hit.postcode, town,
                                 street_lang)}
    return Resolution("found", point=point, nis=hit.nis)


def iter_lines(path: str) -> Iterator[str]:
    """The text lines of a UTF-8 file (a BOM dropped), read lazily."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        yield from handle


#: How far outside its municipality's boundary a map pin may fall, metres (an address on
#: a border street; the boundaries shipped are generalised, issue 10 trial).
PIN_TOLERANCE_M = 200.0


def near_territory(territory: BaseGeometry, lat: float, lon: float,
                   tolerance_m: float = PIN_TOLERANCE_M) -> bool:
    """True when (``lat``, ``lon``) (WGS84 degrees) is inside ``territory`` (a WGS84
    lon/lat (Multi)Polygon) or at most ``tolerance_m`` metres (on the ellipsoid) from it."""
    point = Point(lon, lat)
    if territory.covers(point):
        return True
    nearest = nearest_points(territory, point)[0]
    _, _, metres = _GEOD.inv(lon, lat, nearest.x, nearest.y)
    return bool(metres <= tolerance_m)


def pin_in_municipality(engine: Engine, nis: str, lat: float, lon: float) -> bool:
    """True when a map pin (WGS84 degrees) lies in municipality ``nis`` (its reference
    boundary, ``geo.reference``), with :data:`PIN_TOLERANCE_M` of tolerance; True too
    when the boundary is not loaded (nothing to check against)."""
    from tocsin.authorities.models import Authority
    from tocsin.geo.areas import territory_of

    with read_transaction(engine) as s:
        authority = s.get(Authority, nis)
        if authority is None or not authority.territory:
            return True
        return near_territory(territory_of(authority), lat, lon)


def centre_of(engine: Engine, municipality: str) -> tuple[float, float] | None:
    """``(lat, lon)``: the mean position of the current register addresses of the
    municipality named (where the map to place a pin opens), or None."""
    place = match_place(engine, municipality)
    if place is None:
        return None
    p = AddressPoint
    where: list[sa.ColumnElement[bool]] = [p.nis.in_(place.nis), p.status == "current"]
    if place.postcode:
        where.append(p.postcode == place.postcode)
    with read_transaction(engine) as s:
        lat, lon = s.execute(sa.select(sa.func.avg(p.lat), sa.func.avg(p.lon))
                             .where(*where)).one()
    return (round(float(lat), 6), round(float(lon), 6)) if lat is not None else None
