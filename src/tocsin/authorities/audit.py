"""The append-only, tamper-evident audit log (SPEC F6; issue 8 point 9).

Every change made by a person or an integrator is one ``audit_log`` row: who
(``actor_id``, a pseudonymous id: ``user:42``, ``key:7``, ``cli``, ``system``,
``citizen``, ``name:<keyed hash>`` for a name that is no user), what
(``action``, ``target``, ``detail``), when (``at``, UTC, microseconds), on
behalf of which authority (``on_behalf_of``) and from where (``source``:
``cli``, ``scheduler``, … or ``addr:<keyed hash>`` of an IP address).

Hash chain: each row carries ``seq`` (1, 2, 3, … without gaps), ``prev_hash``
(the previous row's ``hash``; 64 zeros for the first) and ``hash``, the
SHA-256 (FIPS 180-4) of the canonical serialisation of its fields
(``entry_hash``). Appends take a lock first, so two concurrent appends never
read the same head: PostgreSQL ``pg_advisory_xact_lock`` held until the
caller's transaction ends; SQLite transactions already begin ``IMMEDIATE``
(``core.db``), so the appending transaction holds the database's write lock.
A unique index on ``seq`` refuses a fork even if the lock were bypassed.

Personal data (the user name behind ``user:42``, the name typed at a failed
login, the IP address) goes to ``audit_personal``, keyed by entry id and
outside the hash: GDPR erasure (``erase_personal_of``) and retention
(``purge_personal``) delete it without breaking the chain. The keyed hashes use
an HMAC-SHA-256 (RFC 2104) key derived from the deployment secret.

``verify_chain`` finds the first entry that was modified, deleted before, or
appended out of chain; an ``Anchor`` (the head's seq and hash, kept elsewhere)
also catches a truncated or fully recomputed chain. Rows written before
migration 0005 stay outside the chain (docs/decisions/0009-audit-hash-chain.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, TextIO, cast

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.models import AuditEntry, AuditPersonal, Authority, User
from tocsin.core.db import READ_ONLY_OPTION, iso_utc, read_transaction, transaction, utcnow

#: ``prev_hash`` of the first entry of the chain.
GENESIS_HASH = "0" * 64
#: Names the serialisation inside every hashed payload, so that a future format
#: can never produce the same bytes for different fields.
HASH_FORMAT = "tocsin-audit-1"
#: Key of the PostgreSQL advisory lock that serialises appends ("tocsinA1").
PG_LOCK_KEY = 0x746F6373696E4131

#: Actors that are roles of the platform, not persons.
SYSTEM_ACTORS = frozenset({"cli", "system", "citizen", "scheduler", "demo", "worker"})
_PSEUDONYM = re.compile(r"^(user|key|name|authority|addr|session):[A-Za-z0-9._-]{1,100}$")
# A source such as "cli", "scheduler", "unknown": lowercase words, no digits, no dots,
# so that no IPv4/IPv6 address or host name ever passes for one.
_SOURCE_TAG = re.compile(r"^[a-z][a-z_-]{0,39}$")

CSV_COLUMNS = ("id", "seq", "at", "actor_id", "actor", "on_behalf_of", "action", "target",
               "source", "detail", "prev_hash", "hash", "actor_name", "address",
               "personal_data")


@dataclass(frozen=True)
class Anchor:
    """The head of the chain, to keep outside the database.

    ``seq`` is the head entry's sequence number (= the number of chained entries;
    0 for an empty chain), ``hash`` its SHA-256 in lowercase hex. ``seq`` may be
    None when only a hash was kept; it is then looked up anywhere in the chain.
    """

    seq: int | None
    hash: str

    def line(self) -> str:
        """One line to keep elsewhere: ``tocsin-audit-anchor seq=N hash=HEX``."""
        seq = "" if self.seq is None else self.seq
        return f"tocsin-audit-anchor seq={seq} hash={self.hash}"


@dataclass(frozen=True)
class ChainProblem:
    """The first bad entry: its ``audit_log.id`` (None if no entry is left) and why."""

    entry_id: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """What ``verify_chain`` found.

    ``entries``: chained entries checked; ``legacy``: rows from before the chain
    (not chained); ``head_id``/``head_seq``/``head_hash``: the last chained
    entry (``None``/0/``GENESIS_HASH`` when there is none); ``problem``: the
    first bad entry or None; ``anchor``: the anchor that was checked, if any.
    """

    entries: int
    legacy: int
    head_id: int | None
    head_seq: int
    head_hash: str
    problem: ChainProblem | None
    anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        """True when the chain (and the anchor, if given) holds."""
        return self.problem is None

    @property
    def head(self) -> Anchor:
        """The anchor of the head as verified."""
        return Anchor(seq=self.head_seq, hash=self.head_hash)


@dataclass(frozen=True)
class PurgeReport:
    """What ``purge_personal`` erased: side rows of ``entries`` entries, and
    ``legacy`` rows from before the chain pseudonymised in place, all older
    than ``before`` (UTC)."""

    entries: int
    legacy: int
    before: dt.datetime


# --- serialisation ---------------------------------------------------------------------


def _canonical_time(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("at: naive datetime; audit times are aware UTC")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)


def entry_hash(*, seq: int, at: dt.datetime, actor: str, actor_id: str | None,
               on_behalf_of: str | None, action: str, target: str | None, source: str | None,
               detail: Any, prev_hash: str) -> str:
    """The SHA-256 (hex, 64 characters) of one entry chained to ``prev_hash``.

    The payload is the UTF-8 JSON array ``["tocsin-audit-1", seq, at, actor,
    actor_id, on_behalf_of, action, target, source, detail, prev_hash]`` with
    keys sorted, no whitespace, non-ASCII kept, ``at`` written
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds). Personal data in
    ``audit_personal`` is not part of it. Raises ValueError for a naive ``at``
    or a ``detail`` that is not JSON (NaN, infinity).
    """
    payload = [HASH_FORMAT, seq, _canonical_time(at), actor, actor_id, on_behalf_of, action,
               target, source, detail, prev_hash]
    return hashlib.sha256(_canonical_json(payload).encode("utf-8")).hexdigest()


def _pseudonym_key() -> bytes:
    from tocsin.core.settings import get_settings

    settings = get_settings()
    return _derived_key(settings.secret_key, str(settings.var_dir))


@functools.lru_cache(maxsize=8)
def _derived_key(secret_key: str, var_dir: str) -> bytes:
    from tocsin.core.settings import get_settings
    from tocsin.web.security import resolve_secret_key

    for _ in range(100):
        try:
            secret = resolve_secret_key(get_settings())
            break
        except FileExistsError:  # another thread or process is writing the key file now
            time.sleep(0.01)
    else:
        secret = resolve_secret_key(get_settings())
    # A key of its own, so that a pseudonym never equals any other HMAC the platform makes.
    return hmac.new(secret.encode("utf-8"), b"tocsin audit pseudonyms 1", hashlib.sha256).digest()


def pseudonym(kind: str, value: str) -> str:
    """``kind:<16 hex>``: a keyed hash (HMAC-SHA-256, RFC 2104) of ``value``.

    The same value gives the same pseudonym within a deployment (so repeated
    failed logins from one address stay visible), and it cannot be reversed
    without the deployment secret.
    """
    mac = hmac.new(_pseudonym_key(), f"{kind}\0{value}".encode(), hashlib.sha256)
    return f"{kind}:{mac.hexdigest()[:16]}"


def is_pseudonymous(actor_id: str) -> bool:
    """True for ``cli``/``system``/… and ``user:42``, ``key:7``, ``name:…`` ids."""
    return actor_id in SYSTEM_ACTORS or bool(_PSEUDONYM.match(actor_id))


def _is_address(source: str) -> bool:
    """True when ``source`` must be kept off the chain (an IP address, a host, …)."""
    if _SOURCE_TAG.match(source) or _PSEUDONYM.match(source):
        return False
    return True


def _resolve_actor(session: Session, actor: str) -> tuple[str, str | None]:
    """``(actor_id, personal name or None)`` for a legacy ``actor`` value."""
    if is_pseudonymous(actor):
        return actor, None
    user_id = session.scalar(sa.select(User.id).where(User.username == actor))
    if user_id is not None:
        return f"user:{user_id}", actor
    return pseudonym("name", actor), actor


def _json_value(field: str, value: Any) -> Any:
    """``value`` as it will come back from the JSON column (tuples → lists, keys → str)."""
    if value is None:
        return None
    try:
        return json.loads(_canonical_json(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: not storable as JSON ({exc})") from None


# --- appending -------------------------------------------------------------------------


def _lock_chain(session: Session) -> None:
    conn = session.connection()
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        raise RuntimeError("record_audit called in a read_transaction: audit rows are writes")
    if conn.dialect.name == "postgresql":
        # Held until the caller's transaction ends, so the next append reads this
        # row as the head. SQLite needs nothing: every write transaction begins
        # IMMEDIATE (core.db.make_engine) and so already holds the write lock.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})


def record_audit(
    session: Session,
    actor: str | None,
    action: str,
    target: str | None = None,
    source: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    actor_id: str | None = None,
    on_behalf_of: str | None = None,
    personal: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one chained entry to the audit log inside the caller's transaction.

    ``actor`` is the legacy "who": a username (resolved to ``user:<id>`` when the
    user exists, else ``name:<keyed hash>``; the name itself goes to
    ``audit_personal``), or a pseudonymous id / role (``cli``, ``system``,
    ``citizen``, ``key:7``) kept as is. ``actor_id`` (a pseudonymous id) says
    who directly; ``actor`` is then only a display name kept on the side.
    ``source`` is where it came from: a tag (``cli``, ``scheduler``) is kept; an
    IP address goes to the side table and the chained row carries
    ``addr:<keyed hash>``. ``on_behalf_of`` is the authority id the actor acted
    for (issue 8.6). ``detail`` (JSON) and ``target`` are chained as given, so
    they must not hold personal data; ``personal`` (JSON) is kept on the side.

    Takes the chain lock (PostgreSQL: until the caller's transaction ends), so
    call it as the transaction's last write. Returns the flushed entry.

    Raises ValueError naming the field (``action`` empty or over 64 characters,
    ``actor_id`` not pseudonymous, ``actor`` missing, ``target`` over 200
    characters, ``detail``/``personal`` not JSON) and LookupError
    (``on_behalf_of``: no such authority); nothing is written then.
    """
    if not action or len(action) > 64:
        raise ValueError(f"action: must be 1 to 64 characters, got {action!r}")
    if target is not None and len(target) > 200:
        raise ValueError("target: over 200 characters")
    if actor_id is not None and not is_pseudonymous(actor_id):
        raise ValueError(f"actor_id: {actor_id!r} is not a pseudonymous id (user:42, key:7, "
                         f"cli, system, …)")
    if actor_id is None and not actor:
        raise ValueError("actor: give a user name or a pseudonymous id (or actor_id)")
    detail = _json_value("detail", detail)
    personal = _json_value("personal", personal)
    if on_behalf_of is not None and session.get(Authority, on_behalf_of) is None:
        raise LookupError(f"on_behalf_of: no authority {on_behalf_of!r}")

    actor_name: str | None = None
    if actor_id is None:
        assert actor is not None  # checked above
        actor_id, actor_name = _resolve_actor(session, actor)
    elif actor and actor != actor_id:
        actor_name = actor
    address: str | None = None
    if source is not None and _is_address(source):
        address, source = source, pseudonym("addr", source)

    _lock_chain(session)
    head = session.execute(
        sa.select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.is_not(None))
        .order_by(AuditEntry.seq.desc()).limit(1)).first()
    seq = head.seq + 1 if head else 1
    prev_hash = head.hash if head else GENESIS_HASH
    at = utcnow()  # after the lock: times never go backwards along the chain
    entry = AuditEntry(at=at, actor=actor_id, actor_id=actor_id, on_behalf_of=on_behalf_of,
                       action=action, target=target, source=source, detail=detail,
                       seq=seq, prev_hash=prev_hash)
    entry.hash = entry_hash(seq=seq, at=at, actor=actor_id, actor_id=actor_id,
                            on_behalf_of=on_behalf_of, action=action, target=target,
                            source=source, detail=detail, prev_hash=prev_hash)
    session.add(entry)
    session.flush()
    if actor_name or address or personal:
        session.add(AuditPersonal(entry_id=entry.id, at=at,
                                  actor_name=actor_name[:200] if actor_name else None,
                                  address=address[:200] if address else None, data=personal))
        session.flush()
    return entry


# --- verifying -------------------------------------------------------------------------


_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_anchor(text: str) -> Anchor:
    """The anchor in ``text``: the line ``tocsin audit anchor`` prints, or a bare hash.

    Raises ValueError starting ``anchor:`` when no 64-hex SHA-256 is found.
    """
    text = (text or "").strip()
    found = re.search(r"hash=([0-9a-fA-F]{64})(?![0-9a-fA-F])", text)
    if found:
        seq = re.search(r"seq=(\d+)", text)
        return Anchor(seq=int(seq.group(1)) if seq else None, hash=found.group(1).lower())
    if _HEX64.match(text):
        return Anchor(seq=None, hash=text.lower())
    raise ValueError("anchor: expected the line `tocsin audit anchor` printed "
                     "(tocsin-audit-anchor seq=N hash=<64 hex>) or a 64-hex SHA-256 hash")


def current_anchor(engine: Engine) -> Anchor:
    """The head of the chain as stored (seq 0 and ``GENESIS_HASH`` when empty), unverified.

    ``tocsin audit anchor`` verifies first (``verify_chain(...).head``); this is
    the cheap read for callers that only need the head.
    """
    with read_transaction(engine) as s:
        head = s.execute(
            sa.select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.seq.is_not(None))
            .order_by(AuditEntry.seq.desc()).limit(1)).first()
    return Anchor(seq=head.seq, hash=head.hash) if head else Anchor(seq=0, hash=GENESIS_HASH)


def _short(h: str) -> str:
    return f"{h[:12]}…"


def verify_chain(engine: Engine, anchor: Anchor | None = None) -> ChainReport:
    """Check the whole chain, in id order, and the ``anchor`` if given.

    Stops at the first bad entry: ``modified`` (its fields no longer give its
    hash), ``deleted`` (``seq`` numbers missing before it), ``appended out of
    chain`` (its ``prev_hash`` is not the previous entry's hash, its ``seq``
    repeats, or it has no hash after the chain began), and with an anchor
    ``truncated`` (the anchored seq is gone) or ``recomputed`` (the anchored
    seq has another hash). Reads one snapshot; O(entries) time, O(1) memory.
    """
    legacy = entries = 0
    prev_id: int | None = None
    prev_seq = 0
    prev_hash = GENESIS_HASH
    anchor_found = anchor is None or anchor.hash == GENESIS_HASH and anchor.seq in (None, 0)

    def report(problem: ChainProblem | None) -> ChainReport:
        return ChainReport(entries=entries, legacy=legacy, head_id=prev_id, head_seq=prev_seq,
                           head_hash=prev_hash, problem=problem, anchor=anchor)

    cols = (AuditEntry.id, AuditEntry.seq, AuditEntry.at, AuditEntry.actor, AuditEntry.actor_id,
            AuditEntry.on_behalf_of, AuditEntry.action, AuditEntry.target, AuditEntry.source,
            AuditEntry.detail, AuditEntry.prev_hash, AuditEntry.hash)
    with read_transaction(engine) as s:
        rows = s.execute(sa.select(*cols).order_by(AuditEntry.id)
                         .execution_options(yield_per=2000))
        for r in rows:
            if r.seq is None and r.hash is None and r.prev_hash is None:
                if entries:
                    return report(ChainProblem(r.id, "appended out of chain: it has no hash, "
                                                     "yet the chain had begun before it"))
                legacy += 1
                continue
            if r.seq is None or r.hash is None or r.prev_hash is None:
                return report(ChainProblem(r.id, "appended out of chain: seq, prev_hash and "
                                                 "hash are not all set"))
            try:
                recomputed = entry_hash(seq=r.seq, at=r.at, actor=r.actor, actor_id=r.actor_id,
                                        on_behalf_of=r.on_behalf_of, action=r.action,
                                        target=r.target, source=r.source, detail=r.detail,
                                        prev_hash=r.prev_hash)
            except ValueError:
                recomputed = ""
            if recomputed != r.hash:
                return report(ChainProblem(r.id, "modified: its fields no longer give its hash"))
            after = f"after entry {prev_id}" if prev_id is not None else "at the start of the chain"
            if r.seq > prev_seq + 1:
                missing = (f"seq {prev_seq + 1}" if r.seq == prev_seq + 2
                           else f"seq {prev_seq + 1} to {r.seq - 1}")
                return report(ChainProblem(r.id, f"entries deleted before it: {missing} "
                                                 f"missing {after}"))
            if r.seq <= prev_seq:
                return report(ChainProblem(r.id, f"appended out of chain: seq {r.seq} where "
                                                 f"{prev_seq + 1} was expected"))
            if r.prev_hash != prev_hash:
                return report(ChainProblem(
                    r.id, f"appended out of chain: its prev_hash is not the hash of the entry "
                          f"before it ({after}; that entry was rewritten, or this one was "
                          f"inserted)"))
            if anchor is not None and not anchor_found:
                if anchor.seq is not None and r.seq == anchor.seq:
                    if r.hash != anchor.hash:
                        return report(ChainProblem(
                            r.id, f"recomputed: the anchor says seq {anchor.seq} has hash "
                                  f"{_short(anchor.hash)}, it now has {_short(r.hash)}: the "
                                  f"chain was rewritten at or before this entry"))
                    anchor_found = True
                elif anchor.seq is None and r.hash == anchor.hash:
                    anchor_found = True
            entries += 1
            prev_id, prev_seq, prev_hash = r.id, r.seq, r.hash
    if anchor is not None and not anchor_found:
        if anchor.seq is not None:
            return report(ChainProblem(prev_id, f"truncated: the chain ends at seq {prev_seq} "
                                                f"but the anchor names seq {anchor.seq} "
                                                f"({_short(anchor.hash)})"))
        return report(ChainProblem(prev_id, f"anchor {_short(anchor.hash)} is not in the chain: "
                                            f"it was truncated or recomputed"))
    return report(None)


# --- export ----------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return iso_utc(value, "microseconds") or ""
    text = value if isinstance(value, str) else (
        _canonical_json(value) if isinstance(value, dict | list) else str(value))
    # A spreadsheet would run these as formulas (OWASP "CSV injection"): the
    # typed name of a failed login is attacker-controlled.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_csv(engine: Engine, out: TextIO, since: dt.datetime | None = None) -> int:
    """Write the audit log as CSV (RFC 4180, header row) to ``out``; return the rows written.

    Columns: ``CSV_COLUMNS``; ``at`` in ISO 8601 UTC with microseconds, JSON
    columns compact with sorted keys, the personal side data joined when it is
    still there. Entries at or after ``since`` (aware) only, when given. A cell
    a spreadsheet would take for a formula is prefixed with ``'``.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("since: naive datetime; give an aware time")
    query = (sa.select(AuditEntry.id, AuditEntry.seq, AuditEntry.at, AuditEntry.actor_id,
                       AuditEntry.actor, AuditEntry.on_behalf_of, AuditEntry.action,
                       AuditEntry.target, AuditEntry.source, AuditEntry.detail,
                       AuditEntry.prev_hash, AuditEntry.hash, AuditPersonal.actor_name,
                       AuditPersonal.address, AuditPersonal.data)
             .outerjoin(AuditPersonal, AuditPersonal.entry_id == AuditEntry.id)
             .order_by(AuditEntry.id))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    with read_transaction(engine) as s:
        for row in s.execute(query.execution_options(yield_per=2000)):
            writer.writerow([_cell(v) for v in row])
            count += 1
    return count


# --- personal data ---------------------------------------------------------------------


def _pseudonymise_legacy(session: Session, where: sa.ColumnElement[bool]) -> int:
    """Replace user names / addresses in pre-chain rows (outside the hash) by pseudonyms."""
    rows = session.execute(sa.select(AuditEntry.id, AuditEntry.actor, AuditEntry.source)
                           .where(AuditEntry.hash.is_(None), AuditEntry.actor_id.is_(None),
                                  where)).all()
    for r in rows:
        actor_id, _ = _resolve_actor(session, r.actor)
        source = pseudonym("addr", r.source) if r.source and _is_address(r.source) else r.source
        session.execute(sa.update(AuditEntry).where(AuditEntry.id == r.id)
                        .values(actor=actor_id, actor_id=actor_id, source=source))
    return len(rows)


def purge_personal(engine: Engine, older_than_days: int,
                   now: dt.datetime | None = None) -> PurgeReport:
    """Erase the personal data of audit entries older than ``older_than_days`` days.

    Deletes their ``audit_personal`` rows (the chain is untouched and still
    verifies), and pseudonymises in place the rows from before the chain
    (which carry user names and addresses in ``actor``/``source`` and are not
    hashed). Retention period in days, 0 = everything before ``now``. Raises
    ValueError naming ``older_than_days`` when negative.
    """
    if older_than_days < 0:
        raise ValueError(f"older_than_days: must be 0 or more days, got {older_than_days}")
    before = (now or utcnow()) - dt.timedelta(days=older_than_days)
    with transaction(engine) as s:
        result = cast(sa.CursorResult[Any], s.execute(
            sa.delete(AuditPersonal).where(AuditPersonal.at < before)))
        legacy = _pseudonymise_legacy(s, AuditEntry.at < before)
    return PurgeReport(entries=result.rowcount, legacy=legacy, before=before)


def erase_personal_of(engine: Engine, name: str) -> int:
    """GDPR erasure of one person's name from the audit log; returns the entries cleared.

    Deletes the side rows whose ``actor_name`` is ``name`` (the chain keeps the
    pseudonymous ``user:<id>`` / ``name:<hash>``) and pseudonymises the pre-chain
    rows whose ``actor`` is ``name``. Raises ValueError for an empty name.
    """
    if not name:
        raise ValueError("name: must not be empty")
    with transaction(engine) as s:
        result = cast(sa.CursorResult[Any], s.execute(
            sa.delete(AuditPersonal).where(AuditPersonal.actor_name == name)))
        legacy = _pseudonymise_legacy(s, AuditEntry.actor == name)
    return result.rowcount + legacy
