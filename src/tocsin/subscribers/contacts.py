"""Use cases: import a contact list of an authority, all or nothing (SPEC F10).

An import replaces the list's contents: every row of the file is checked first
(``contact_rules``); the preview says how many contacts are new, updated (same
mobile number, else e-mail address, other name, language or e-mail), removed (in
the list, not in the file) and unchanged; then everything is written in one
transaction, or nothing when any row is bad.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import Denied, audited_denials, cli_actor, facts_of, require
from tocsin.authorities.policy import Action, Actor, Target
from tocsin.authorities.services import record_audit
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.core.text import TextInputError, check_name
from tocsin.subscribers.contact_models import (
    Contact,
    ContactColumnMapping,
    ContactGroupMember,
    ContactList,
)
from tocsin.subscribers.contact_rules import (
    FIELDS,
    IGNORE,
    ContactError,
    ContactRecord,
    check_rows,
    error,
    header_key,
    map_columns,
)
from tocsin.subscribers.spreadsheets import SpreadsheetError, escape_formula, read_table

LIST_NAME_MAX = 100


class ContactInputError(InputError):
    """Bad input that is not a row of the file: ``field`` (``authority``, ``list``,
    ``map``, ``group``…), ``reason`` (English) and, as every
    :class:`~tocsin.core.errors.InputError`, ``code``, ``template`` and ``params`` that
    the web layer shows in the reader's language (``web.i18n.error_text``)."""


@dataclass
class ImportResult:
    """What an import found and wrote (or would write, on a dry run).

    ``imported`` new contacts, ``updated``, ``removed`` and ``unchanged`` ones;
    ``rows`` data rows read; ``repaired``: ``[{"row", "field", "value", "to"}]``
    values changed on the way (a lost leading 0…); ``columns``: header -> field;
    ``headers``: every column title of the file, in order;
    ``errors``: every bad row (:class:`contact_rules.ContactError`), then nothing
    was written; ``written``: the list was changed.
    """

    authority_id: str
    list_name: str
    rows: int = 0
    imported: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    repaired: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    headers: list[str] = field(default_factory=list)
    errors: list[ContactError] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False
    format: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def contacts(self) -> int:
        """Contacts in the list after the import."""
        return self.imported + self.updated + self.unchanged

    def summary(self) -> str:
        """"N contacts: X new, Y updated, Z removed" (English; the web translates)."""
        return (f"{self.contacts} contacts: {self.imported} new, {self.updated} updated, "
                f"{self.removed} removed")

    def to_json(self) -> dict[str, Any]:
        """``{"imported", "updated", "removed", "unchanged", "rows", "dry_run",
        "repaired", "columns", "errors": [{"row", "field", "column", "value", "reason",
        "code"}]}``."""
        return {"imported": self.imported, "updated": self.updated, "removed": self.removed,
                "unchanged": self.unchanged, "rows": self.rows, "dry_run": self.dry_run,
                "list": self.list_name, "authority": self.authority_id,
                "repaired": self.repaired, "columns": self.columns,
                "errors": [dict(e) for e in self.errors]}


def check_list_name(name: str) -> str:
    """The list or group name normalised; raises ContactInputError (field ``list``)."""
    try:
        return check_name(name, "list", limit=LIST_NAME_MAX,
                          empty=N_("give the list a name"))
    except TextInputError as exc:
        raise ContactInputError("list", exc.template, code=exc.code, **exc.params) from None


def parse_mapping(pairs: list[str] | dict[str, str]) -> dict[str, str]:
    """``["Functie=ignore", "Nummer=mobile"]`` (or a dict) as folded header -> field.
    Raises ContactInputError (field ``map``) for a pair without ``=`` or an unknown
    field."""
    items = pairs.items() if isinstance(pairs, dict) else [
        tuple(p.split("=", 1)) if "=" in p else (p, "") for p in pairs]
    out: dict[str, str] = {}
    for column, target in items:
        target = target.strip().lower()
        if not header_key(column):
            raise ContactInputError("map", N_("%(column)r: give COLUMN=FIELD"),
                                    code="map_pair", column=column)
        if target not in (*FIELDS, IGNORE):
            raise ContactInputError("map", N_("%(column)s=%(target)s: the field must be "
                                              "one of %(fields)s or %(ignore)s"),
                                    code="map_field", column=column, target=target,
                                    fields=", ".join(FIELDS), ignore=IGNORE)
        out[header_key(column)] = target
    return out


def _actor(session: Session, actor: Actor | None, authority_id: str) -> Actor:
    try:
        return actor if actor is not None else cli_actor(session, authority_id)
    except LookupError:
        raise ContactInputError("authority", N_("no authority %(authority)r"),
                                code="unknown_authority", authority=authority_id) from None


def _require(session: Session, actor: Actor | None, authority_id: str,
             action: Action) -> Actor:
    who = _actor(session, actor, authority_id)
    try:
        facts = facts_of(session, authority_id)
    except LookupError:
        raise ContactInputError("authority", N_("no authority %(authority)r"),
                                code="unknown_authority", authority=authority_id) from None
    require(who, action, Target(authority=facts), authority_id)
    return who


def import_contacts(engine: Engine, data: bytes, authority_id: str, list_name: str, *,
                    mapping: list[str] | dict[str, str] | None = None, dry_run: bool = False,
                    actor: Actor | None = None, source: str = "cli") -> ImportResult:
    """Check ``data`` (CSV, TSV, XLSX or ODS: ``spreadsheets.read_table``) as the new
    contents of list ``list_name`` of ``authority_id``, and write it unless ``dry_run``.

    ``mapping``: extra header mappings (``parse_mapping``), remembered for the
    authority once the import is written. ``actor`` needs CONTACTS_MANAGE on the
    authority (``None``: the command line, ``access.cli_actor``). All or nothing:
    with any error the result lists every one and nothing is written. Raises
    ContactInputError (unknown authority, bad list name or mapping) and
    ``access.Denied`` (audited).
    """
    given = parse_mapping(mapping or {})
    name = check_list_name(list_name)
    result = ImportResult(authority_id=authority_id, list_name=name, dry_run=dry_run)
    with audited_denials(engine, source), transaction(engine) as s:
        who = _require(s, actor, authority_id, Action.CONTACTS_MANAGE)
        try:
            table = read_table(data)
        except SpreadsheetError as exc:
            result.errors = [error(0, exc.field, "", "", exc.reason, "file")]
            return result
        result.format, result.rows = table.format, len(table.rows)
        result.headers = [h for h in table.header if h.strip()]
        remembered = dict(s.execute(sa.select(ContactColumnMapping.header,
                                              ContactColumnMapping.field).where(
            ContactColumnMapping.authority_id == authority_id)).all())
        columns, header_errors = map_columns(table.header, {**remembered, **given},
                                             table.header_row)
        result.columns = {table.header[i]: f for i, f in columns.items()}
        if header_errors:
            result.errors = header_errors
            return result
        plan = check_rows(table.rows, columns, table.header, table.numeric)
        if plan.errors:
            result.errors = plan.errors
            return result
        contact_list = s.scalar(sa.select(ContactList).where(
            ContactList.authority_id == authority_id, ContactList.name == name))
        existing: dict[str, Contact] = {}
        if contact_list is not None:
            existing = {c.key: c for c in s.scalars(sa.select(Contact).where(
                Contact.list_id == contact_list.id))}
        raw_of = {(n, i): cells[i] if i < len(cells) else "" for n, cells in table.rows
                  for i in columns}
        mobile_column = next((i for i, f in columns.items() if f == "mobile"), None)
        for r in plan.records:
            if "mobile" in r.repaired and mobile_column is not None:
                result.repaired.append({"row": r.row, "field": "mobile",
                                        "value": raw_of[(r.row, mobile_column)],
                                        "to": r.mobile})
        changes = _diff(existing, plan.records)
        new, updated, gone = changes
        result.imported, result.updated, result.removed = len(new), len(updated), len(gone)
        result.unchanged = len(plan.records) - len(new) - len(updated)
        if dry_run:
            return result
        now = utcnow()
        if contact_list is None:
            contact_list = ContactList(authority_id=authority_id, name=name, created_at=now,
                                       updated_at=now)
            s.add(contact_list)
            s.flush()
        contact_list.updated_at = now
        if gone:
            ids = [existing[k].id for k in gone]
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                s.execute(sa.delete(ContactGroupMember).where(
                    ContactGroupMember.contact_id.in_(chunk)))
                s.execute(sa.delete(Contact).where(Contact.id.in_(chunk)))
        for r in updated:
            c = existing[r.key]
            c.name, c.mobile, c.email, c.language = r.name, r.mobile, r.email, r.language
            c.source_row, c.updated_at = r.row, now
        rows = [{"list_id": contact_list.id, "key": r.key, "name": r.name, "mobile": r.mobile,
                 "email": r.email, "language": r.language, "source_row": r.row,
                 "updated_at": now} for r in new]
        for start in range(0, len(rows), 5_000):
            s.execute(sa.insert(Contact), rows[start:start + 5_000])
        _remember(s, authority_id, given)
        record_audit(s, who.username, "contacts.import", target=str(contact_list.id),
                     source=source, detail={"authority": authority_id, "list": name,
                                            "imported": result.imported,
                                            "updated": result.updated,
                                            "removed": result.removed})
        result.written = True
    return result


def _diff(existing: dict[str, Contact], records: list[ContactRecord]
          ) -> tuple[list[ContactRecord], list[ContactRecord], list[str]]:
    """(new records, changed records, keys of contacts no longer in the file)."""
    new, changed = [], []
    for r in records:
        c = existing.get(r.key)
        if c is None:
            new.append(r)
        elif (c.name, c.mobile, c.email, c.language) != (r.name, r.mobile, r.email,
                                                         r.language):
            changed.append(r)
    keys = {r.key for r in records}
    return new, changed, [k for k in existing if k not in keys]


def _remember(session: Session, authority_id: str, given: dict[str, str]) -> None:
    for header, target in given.items():
        row = session.get(ContactColumnMapping, (authority_id, header))
        if row is None:
            session.add(ContactColumnMapping(authority_id=authority_id, header=header,
                                             field=target))
        else:
            row.field = target


def error_report_csv(errors: list[ContactError],
                     headers: list[str] | None = None) -> str:
    """The downloadable error report: ``row,column,field,value,reason`` (RFC 4180, UTF-8;
    ``headers`` replaces those five titles, e.g. in the reader's language), every cell
    escaped against formula evaluation (``spreadsheets.escape_formula``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([escape_formula(h) for h in
                     headers or ["row", "column", "field", "value", "reason"]])
    for e in errors:
        writer.writerow([escape_formula(str(v)) for v in (
            e["row"], e.get("column", ""), e["field"], e["value"], e["reason"])])
    return buffer.getvalue()


def contact_lists(engine: Engine, authority_id: str, actor: Actor | None = None
                  ) -> list[dict[str, Any]]:
    """The contact lists the authority may use: its own and its cooperation members',
    as ``[{"name", "authority", "contacts", "updated_at"}]`` sorted by authority, name.
    Needs CONTACTS_READ. Raises ContactInputError, ``access.Denied``."""
    from tocsin.authorities.access import cooperation_of

    with audited_denials(engine), read_transaction(engine) as s:
        _require(s, actor, authority_id, Action.CONTACTS_READ)
        owners = [authority_id, *sorted(cooperation_of(s, authority_id))]
        count = sa.select(sa.func.count()).where(Contact.list_id == ContactList.id
                                                 ).scalar_subquery()
        rows = s.execute(sa.select(ContactList, count).where(
            ContactList.authority_id.in_(owners)).order_by(ContactList.authority_id,
                                                           ContactList.name)).all()
        return [{"name": c.name, "authority": c.authority_id, "contacts": n,
                 "updated_at": c.updated_at.isoformat()} for c, n in rows]


UPLOAD_TTL = dt.timedelta(hours=2)


@dataclass(frozen=True)
class Upload:
    """A stored upload of the import page: ``token``, ``list_name``, ``filename``."""

    token: str
    authority_id: str
    list_name: str
    filename: str


def store_upload(engine: Engine, data: bytes, authority_id: str, list_name: str,
                 filename: str, actor: Actor) -> Upload:
    """Keep an uploaded file for the next steps of the import page (any web process).

    Checks the permission (CONTACTS_MANAGE), the list name and the size
    (``spreadsheets.MAX_FILE_BYTES``) first; forgets uploads older than
    :data:`UPLOAD_TTL`. Raises ContactInputError (``list``, ``file``), Denied."""
    from tocsin.subscribers.contact_models import ContactUpload
    from tocsin.subscribers.spreadsheets import MAX_FILE_BYTES

    name = check_list_name(list_name)
    if not data:
        raise ContactInputError("file", N_("choose a file (CSV, TSV, XLSX or ODS)"),
                                code="file_missing")
    if len(data) > MAX_FILE_BYTES:
        raise ContactInputError("file", N_("%(size)s bytes; at most %(max)s (%(mib)s MiB)"),
                                code="file_too_large", size=f"{len(data):,}",
                                max=f"{MAX_FILE_BYTES:,}", mib=MAX_FILE_BYTES // (1024 * 1024))
    token = secrets.token_urlsafe(24)
    with audited_denials(engine, "web"), transaction(engine) as s:
        _require(s, actor, authority_id, Action.CONTACTS_MANAGE)
        s.execute(sa.delete(ContactUpload).where(ContactUpload.created_at
                                                 < utcnow() - UPLOAD_TTL))
        s.add(ContactUpload(token=token, authority_id=authority_id, username=actor.username,
                            list_name=name, filename=(filename or "upload")[:200], data=data,
                            created_at=utcnow()))
    return Upload(token, authority_id, name, filename)


def load_upload(engine: Engine, token: str, actor: Actor) -> tuple[Upload, bytes]:
    """The upload ``token`` of ``actor`` (nobody else's) and its bytes. Raises
    ContactInputError(``file``) when it is unknown, someone else's or expired."""
    from tocsin.subscribers.contact_models import ContactUpload

    with read_transaction(engine) as s:
        u = s.get(ContactUpload, str(token)[:64])
        if (u is None or u.username != actor.username
                or u.created_at < utcnow() - UPLOAD_TTL):
            raise ContactInputError("file", N_("this upload is no longer available: upload "
                                               "the file again"), code="upload_gone")
        return Upload(u.token, u.authority_id, u.list_name, u.filename), bytes(u.data)


def forget_upload(engine: Engine, token: str) -> None:
    """Remove a stored upload (after its import)."""
    from tocsin.subscribers.contact_models import ContactUpload

    with transaction(engine) as s:
        s.execute(sa.delete(ContactUpload).where(ContactUpload.token == str(token)[:64]))


__all__ = ["ContactInputError", "Denied", "ImportResult", "Upload", "contact_lists",
           "error_report_csv", "forget_upload", "import_contacts", "load_upload",
           "parse_mapping", "store_upload"]
