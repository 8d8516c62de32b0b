"""Reading an uploaded table: CSV, TSV, XLSX or ODS, as rows of text cells (SPEC F10).

Pure input handling, no database. The format is recognised from the bytes, not
the file name: a ZIP holding ``xl/workbook.xml`` is an Office Open XML workbook
(ECMA-376, read with openpyxl, which parses through defusedxml), a ZIP whose
``mimetype`` is ``application/vnd.oasis.opendocument.spreadsheet`` is an
OpenDocument spreadsheet (ISO/IEC 26300, read with odfpy); anything else is
delimited text (RFC 4180 CSV with any of ``, ; TAB |`` as delimiter, UTF-8 with or
without BOM, UTF-16 with BOM, else Windows-1252, the Latin-1 superset that Belgian
Excel writes).

Hostile input is refused before the parsers see it: files over
:data:`MAX_FILE_BYTES`, ZIPs that inflate to more than :data:`MAX_UNZIPPED_BYTES`
or more than :data:`MAX_RATIO` times their size, and any XML part that declares a
DTD (``<!DOCTYPE``: entity expansion, "billion laughs", and external entities).
Spreadsheet rows keep their row numbers as the spreadsheet shows them (the header
is row 1); hidden rows are skipped; formulas are read as their last computed value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

from tocsin.core.csvcell import csv_cell

MAX_FILE_BYTES = 10 * 1024 * 1024  # 10 MiB: a list of 100,000 contacts is ~5 MiB of CSV
MAX_UNZIPPED_BYTES = 100 * 1024 * 1024
MAX_RATIO = 200  # ZIP bombs inflate ~1000x; real workbooks 5-30x
MAX_ROWS = 100_000
MAX_COLUMNS = 100

_ODS_MIME = b"application/vnd.oasis.opendocument.spreadsheet"


class SpreadsheetError(ValueError):
    """The file as a whole cannot be read: ``field`` is ``file``, ``reason`` says why
    ("larger than 10 MiB", "not a spreadsheet: …", "declares a DTD …")."""

    def __init__(self, reason: str, field: str = "file") -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class Table:
    """The rows read: ``header`` (row ``header_row``) and ``rows`` as
    ``(spreadsheet row number, cells)``; ``format`` is ``csv``, ``xlsx`` or ``ods``;
    ``delimiter`` and ``encoding`` for text files; ``numeric``: (row, column) of the
    cells that were numbers in the workbook (a phone number typed as a number lost
    its leading 0)."""

    format: str
    header: list[str]
    rows: list[tuple[int, list[str]]]
    header_row: int = 1
    delimiter: str = ""
    encoding: str = ""
    numeric: set[tuple[int, int]] = field(default_factory=set)


def read_table(data: bytes) -> Table:
    """Read ``data`` (the uploaded file's bytes) as a :class:`Table`.

    Empty rows are skipped; the first non-empty row is the header. Raises
    :class:`SpreadsheetError` for a file too large, a damaged or hostile archive,
    a text file that is not text, or a table with no header or more than
    :data:`MAX_ROWS` rows.
    """
    if len(data) > MAX_FILE_BYTES:
        raise SpreadsheetError(f"{len(data):,} bytes; at most {MAX_FILE_BYTES:,} "
                               f"({MAX_FILE_BYTES // (1024 * 1024)} MiB)")
    if not data.strip():
        raise SpreadsheetError("the file is empty")
    if data[:4] == b"PK\x03\x04":
        return _read_zip(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise SpreadsheetError("an old Excel 97-2003 (.xls) workbook: save it as .xlsx or CSV")
    return _read_text(data)


def _cells(values: list[str]) -> list[str]:
    while values and not values[-1]:
        values.pop()
    return values


def _finish(fmt: str, raw: list[tuple[int, list[str]]], **kw: object) -> Table:
    rows = [(n, _cells(v)) for n, v in raw]
    rows = [(n, v) for n, v in rows if any(c.strip() for c in v)]
    if not rows:
        raise SpreadsheetError("no rows: the first row must name the columns")
    (header_row, header), data = rows[0], rows[1:]
    if len(data) > MAX_ROWS:
        raise SpreadsheetError(f"{len(data):,} rows; at most {MAX_ROWS:,} per import")
    if len(header) > MAX_COLUMNS:
        raise SpreadsheetError(f"{len(header)} columns; at most {MAX_COLUMNS}")
    return Table(fmt, [h.strip() for h in header], data, header_row, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- text


def decode_text(data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: UTF-8 (BOM dropped), UTF-16 with a BOM, else Windows-1252.

    Raises :class:`SpreadsheetError` for binary data (NUL bytes in an 8-bit file)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise SpreadsheetError("not readable as UTF-16 text") from None
    if b"\x00" in data[:65536]:
        raise SpreadsheetError("not a CSV, TSV, XLSX or ODS file (binary data)")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        # Belgian Excel's "CSV (separator: semicolon)" writes Windows-1252.
        return data.decode("cp1252", errors="replace"), "windows-1252"


def _sniff_delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in ("\t", ";", ",", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_text(data: bytes) -> Table:
    text, encoding = decode_text(data)
    delimiter = _sniff_delimiter(text)
    raw: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, record in enumerate(reader, start=1):
            raw.append((number, record))
            if number > MAX_ROWS + 10:
                break
    except csv.Error as exc:
        raise SpreadsheetError(f"not valid CSV at row {len(raw) + 1} ({exc}); "
                               "nothing after it was read") from None
    return _finish("csv", raw, delimiter=delimiter, encoding=encoding)


# ----------------------------------------------------------------------------- archives


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SpreadsheetError(f"a damaged ZIP archive ({exc}): save the file again") from None
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES or total > MAX_RATIO * max(len(data), 1024):
        raise SpreadsheetError(f"the archive inflates to {total:,} bytes: refused "
                               "(a ZIP bomb, or far too large a workbook)")
    for info in infos:
        if info.filename.endswith((".xml", ".rels", ".vml")):
            with archive.open(info) as part:
                head = part.read(4096)
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                raise SpreadsheetError(f"{info.filename} declares a DTD (entity "
                                       "expansion, e.g. 'billion laughs'): refused")
    return archive


def _read_zip(data: bytes) -> Table:
    archive = _open_zip(data)
    names = set(archive.namelist())
    if "xl/workbook.xml" in names:
        return _read_xlsx(data)
    if "mimetype" in names and archive.read("mimetype").strip() == _ODS_MIME:
        return _read_ods(data)
    raise SpreadsheetError("a ZIP archive that is neither an XLSX nor an ODS spreadsheet")


def _text_of(value: object) -> tuple[str, bool]:
    """A workbook value as text, and whether it was a number."""
    if value is None:
        return "", False
    if isinstance(value, bool):
        return ("1" if value else "0"), False
    if isinstance(value, int):
        return str(value), True
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value)), True
        return repr(value), True
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat(), False
    return str(value), False


def _read_xlsx(data: bytes) -> Table:
    import openpyxl

    try:
        # data_only: a formula cell gives its last computed value, never the formula.
        workbook = openpyxl.load_workbook(io.BytesIO(data), data_only=True, read_only=False)
    except Exception as exc:  # openpyxl raises many kinds for damaged parts
        raise SpreadsheetError(f"not a readable XLSX workbook ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from None
    sheet = next((ws for ws in workbook.worksheets if ws.sheet_state == "visible"), None)
    if sheet is None:
        raise SpreadsheetError("the workbook has no visible sheet")
    raw: list[tuple[int, list[str]]] = []
    numeric: set[tuple[int, int]] = set()
    for row in sheet.iter_rows():
        if not row:
            continue
        number = row[0].row
        if sheet.row_dimensions[number].hidden:
            continue
        cells: list[str] = []
        for column, cell in enumerate(row):
            text, is_number = _text_of(cell.value)
            if is_number:
                numeric.add((number, column))
            cells.append(text)
        raw.append((number, cells))
        if len(raw) > MAX_ROWS + 10:
            break
    table = _finish("xlsx", raw)
    table.numeric = numeric
    return table


_REPEAT_CAP = 1_000  # repeated non-empty cells/rows kept; ODS pads sheets with huge repeats


def _read_ods(data: bytes) -> Table:
    from odf.namespaces import OFFICENS, TABLENS
    from odf.opendocument import load

    try:
        document = load(io.BytesIO(data))
    except Exception as exc:  # odfpy raises many kinds for damaged parts
        raise SpreadsheetError(f"not a readable ODS spreadsheet ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from None
    tables = document.spreadsheet.getElementsByType(_ods_table())
    if not tables:
        raise SpreadsheetError("the spreadsheet has no sheet")
    raw: list[tuple[int, list[str]]] = []
    numeric: set[tuple[int, int]] = set()
    number = 0
    for row in _ods_rows(tables[0]):
        repeat = int(row.getAttrNS(TABLENS, "number-rows-repeated") or 1)
        hidden = (row.getAttrNS(TABLENS, "visibility") or "visible") != "visible"
        cells: list[str] = []
        kinds: list[bool] = []
        for cell in row.childNodes:
            if cell.qname[1] not in ("table-cell", "covered-table-cell"):
                continue
            times = int(cell.getAttrNS(TABLENS, "number-columns-repeated") or 1)
            value_type = cell.getAttrNS(OFFICENS, "value-type")
            if value_type in ("float", "percentage", "currency"):
                text, is_number = _text_of(float(cell.getAttrNS(OFFICENS, "value")))
            else:
                text, is_number = _ods_text(cell), False
            if not text and len(cells) + times > MAX_COLUMNS:
                break  # trailing padding to the sheet's last column
            cells.extend([text] * min(times, MAX_COLUMNS + 1))
            kinds.extend([is_number] * min(times, MAX_COLUMNS + 1))
        empty = not any(c.strip() for c in cells)
        for _ in range(min(repeat, _REPEAT_CAP) if not empty else 1):
            number += 1
            if not hidden:
                raw.append((number, list(cells)))
                numeric.update((number, i) for i, k in enumerate(kinds) if k)
        if empty:
            number += repeat - 1
        if len(raw) > MAX_ROWS + 10:
            break
    table = _finish("ods", raw)
    table.numeric = numeric
    return table


def _ods_table() -> object:
    from odf.table import Table as OdsTable

    return OdsTable


def _ods_rows(table: Any) -> list[Any]:
    """The rows of an ODS table, including those inside row groups and header rows."""
    out: list[Any] = []

    def walk(node: Any) -> None:
        for child in node.childNodes:
            name = child.qname[1] if hasattr(child, "qname") else ""
            if name == "table-row":
                out.append(child)
            elif name in ("table-row-group", "table-header-rows", "table-rows"):
                walk(child)

    walk(table)
    return out


def _ods_text(cell: Any) -> str:
    """The text of an ODS cell: its paragraphs joined by line breaks, spaces kept."""
    from odf import teletype
    from odf.text import P

    return "\n".join(teletype.extractText(p)
                     for p in cell.getElementsByType(P))




def escape_formula(value: str) -> str:
    """``value`` safe in a CSV opened by a spreadsheet (OWASP "CSV injection"): the one
    helper of every CSV, ``core.csvcell.csv_cell``."""
    return str(csv_cell(value))
