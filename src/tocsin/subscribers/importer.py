"""Use case: import a subscriber contact list from CSV, all or nothing (SPEC F10)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials, facts_of, require
from tocsin.authorities.policy import Action, Actor, Target
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.subscribers.models import Address, ContactPoint, Subscriber
from tocsin.subscribers.rules import (
    ImportPlan,
    RowError,
    SubscriberRecord,
    parse_subscriber_csv,
)

BATCH_ROWS = 5_000  # rows per executemany; keeps memory flat on 100,000-row files
_LOOKUP_CHUNK = 500  # external ids per IN (...) query, well under SQLite's 32,766 limit


@dataclass
class ImportReport:
    """What an import read and wrote (or would write, on a dry run).

    ``rows``: data rows read; ``subscribers`` / ``addresses``: records written
    (0 when there are errors); ``errors``: every rejected value, see
    :class:`tocsin.subscribers.rules.RowError`.
    """

    rows: int = 0
    subscribers: int = 0
    addresses: int = 0
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when the file had no error (and, unless a dry run, was written)."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        """``{"rows": N, "subscribers": N, "addresses": N, "errors": [...]}``."""
        return {
            "rows": self.rows,
            "subscribers": self.subscribers,
            "addresses": self.addresses,
            "errors": list(self.errors),
        }


def import_subscribers(engine: Engine, data: bytes, dry_run: bool = False,
                       actor: Actor | None = None) -> ImportReport:
    """Validate a contact-list CSV (format: :func:`parse_subscriber_csv`) and write it.

    The subscribers are the national registry's: a user (``actor``) needs
    ``policy``: SUBSCRIBERS_MANAGE on the federal authority (``access.Denied``
    otherwise, audited); ``None`` is the command line on the server.

    All or nothing (SPEC F10): every row is checked first; if any is bad,
    nothing is written and the report lists every error. Otherwise all
    subscribers, contact points and addresses are written in one transaction,
    in bulk; subscriber ids follow the order of first appearance in the file.
    Imported contact points count as verified (``verified_at`` = now): the
    organisation importing the list vouches for them.

    A ``subscriber_id`` that is already registered is an error ("already
    registered", on the line where it first appears): an import only creates
    subscribers, it never changes existing ones. With ``dry_run`` the checks,
    including that one, run but nothing is written.
    """
    if actor is not None:
        with audited_denials(engine), read_transaction(engine) as session:
            require(actor, Action.SUBSCRIBERS_MANAGE,
                    Target(authority=facts_of(session, "BE")), "BE")
    plan = parse_subscriber_csv(data)
    report = ImportReport(rows=plan.rows, dry_run=dry_run)
    with transaction(engine) as session:
        errors = list(plan.errors)
        errors.extend(_already_registered(session, plan))
        if errors:
            errors.sort(key=lambda e: e["line"])
            report.errors = errors
            return report
        report.subscribers = len(plan.subscribers)
        report.addresses = plan.addresses
        if not dry_run:
            write_subscribers(session, plan.subscribers, verified_at=utcnow())
    return report


def _already_registered(session: Session, plan: ImportPlan) -> list[RowError]:
    line_of = {s.external_id: s.line for s in plan.subscribers}
    ids = list(line_of)
    errors: list[RowError] = []
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        found = session.scalars(
            sa.select(Subscriber.external_id).where(Subscriber.external_id.in_(chunk))
        )
        errors.extend(
            {"line": line_of[x], "field": "subscriber_id", "value": x,
             "reason": "already registered"}
            for x in found
        )
    return errors


def _batches(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH_ROWS):
        yield rows[start : start + BATCH_ROWS]


def write_subscribers(
    session: Session, records: Sequence[SubscriberRecord], verified_at: dt.datetime | None
) -> list[int]:
    """Insert ``records`` with their contact points and addresses, in bulk, in ``session``.

    No validation here: ``records`` come from :func:`parse_subscriber_csv` or
    another trusted generator. Returns the new subscriber ids, in the order of
    ``records`` (ids increase in that order). ``verified_at`` (aware UTC) is
    set on every contact point, and ``info_opt_in`` from its record. Raises
    sqlalchemy.exc.IntegrityError on a duplicate ``external_id``.
    """
    now = utcnow()
    subscriber_table = cast(sa.Table, Subscriber.__table__)
    ids: list[int] = []
    subscriber_rows = [
        {"external_id": r.external_id, "language": r.language, "created_at": now} for r in records
    ]
    insert_subscriber = sa.insert(subscriber_table).returning(
        subscriber_table.c.id, sort_by_parameter_order=True
    )
    for batch in _batches(subscriber_rows):
        ids.extend(session.execute(insert_subscriber, batch).scalars())

    contact_rows: list[dict[str, Any]] = []
    address_rows: list[dict[str, Any]] = []
    for subscriber_id, record in zip(ids, records, strict=True):
        for kind, value in (("mobile", record.mobile), ("email", record.email),
                            ("landline", record.landline)):
            if value is not None:
                contact_rows.append({
                    "subscriber_id": subscriber_id, "kind": kind, "value": value,
                    "verified_at": verified_at, "info_opt_in": record.info_opt_in,
                    "voice": kind == "landline" or (kind == "mobile" and record.voice),
                })
        for position, address in enumerate(record.addresses):
            address_rows.append({
                "subscriber_id": subscriber_id, "position": position,
                "lat": address.lat, "lon": address.lon,
                "label": address.label, "nis": address.nis,
            })
    for batch in _batches(contact_rows):
        session.execute(sa.insert(cast(sa.Table, ContactPoint.__table__)), batch)
    for batch in _batches(address_rows):
        session.execute(sa.insert(cast(sa.Table, Address.__table__)), batch)
    return ids
