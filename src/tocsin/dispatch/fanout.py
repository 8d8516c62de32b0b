"""Streaming, resumable fan-out: an area's subscribers become queued deliveries in batches.

A launch first commits the campaign (accepted: ``begin``), then ``run`` writes its
deliveries batch by batch, each batch in its own transaction, so a running worker
sends the first batch while later ones are still being resolved (ARCHITECTURE
"Dispatch", decision 0014). Memory stays flat in the number of recipients:

- subscriber ids in the area are read in ascending order from a server-side
  cursor (PostgreSQL: PostGIS ``ST_Intersects``; SQLite: the ``address_rtree``
  bounding-box prefilter, then shapely's exact test on each fetched chunk);
- each batch of ids becomes deliveries with one ``INSERT … SELECT`` per batch
  (no row passes through Python): the language each recipient gets, its SMS
  segments and cost are SQL ``CASE`` expressions, duplicates (a number shared
  by several subscribers) are skipped by ``ON CONFLICT DO NOTHING`` on the
  ``(campaign, channel, address)`` key, and rows are inserted in (subscriber,
  contact point) order, so the subscriber with the lowest id keeps the number
  as before;
- the batch's ids travel as one parameter (a PostgreSQL array, a JSON array
  read with SQLite's ``json_each``), never as a long ``IN (…)`` list.

Resumable: ``campaign.fanout_cursor`` (the last subscriber id written) is
committed with each batch, and the fan-out is held under a lease
(``fanout_owner``, ``fanout_lease_until``). A fan-out whose process died is
continued by any worker (``resume_pending``) from the cursor; a batch written
twice writes nothing the second time (the unique key).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from tocsin.core.db import READ_ONLY_OPTION, table, transaction, utcnow
from tocsin.core.settings import Settings, get_settings
from tocsin.dispatch.models import QUEUED, Delivery

#: Subscribers per committed batch (each batch: one INSERT … SELECT per database).
BATCH_SUBSCRIBERS = 5_000
#: Seconds a fan-out is held by its process; renewed with every batch.
LEASE_SECONDS = 30.0
_FETCH_ROWS = 20_000

_RTREE_SQL = (
    "SELECT a.subscriber_id, a.lon, a.lat FROM address_rtree r JOIN address a ON a.id = r.id "
    "WHERE r.max_lon >= :minx{i} AND r.min_lon <= :maxx{i} "
    "AND r.max_lat >= :miny{i} AND r.min_lat <= :maxy{i} AND a.subscriber_id > :after"
)
_POSTGIS_SQL = sa.text(
    "SELECT DISTINCT a.subscriber_id FROM address a "
    "WHERE ST_Intersects(a.geom, ST_GeomFromWKB(:wkb, 4326)) AND a.subscriber_id > :after "
    "ORDER BY 1"
)
# The id range is read first (B-tree), then tested against the area: materialised so
# the planner cannot AND in a GiST scan, which over a national area reads every address
# at each range (measured: 183 s instead of 116 s for 1M subscribers).
_POSTGIS_RANGE_SQL = sa.text(
    "WITH r AS MATERIALIZED (SELECT subscriber_id, geom FROM address "
    "WHERE subscriber_id > :lo AND subscriber_id <= :hi) "
    "SELECT DISTINCT r.subscriber_id FROM r "
    "WHERE ST_Intersects(r.geom, ST_GeomFromWKB(:wkb, 4326)) ORDER BY 1"
)
_SQLITE_RANGE_SQL = sa.text(
    "SELECT subscriber_id, lon, lat FROM address "
    "WHERE subscriber_id > :lo AND subscriber_id <= :hi ORDER BY subscriber_id"
)
_MAX_PART_QUERIES = 16
#: km²: above this an area is read by subscriber id ranges (a region or the
#: whole country: most addresses match, and sorting them all delays the first batch).
RANGE_WALK_KM2 = 8_000.0
#: Subscriber ids per range query of the range walk.
RANGE_SPAN = 50_000


def subscriber_batches(conn: Connection, area: BaseGeometry, after: int = 0,
                       size: int = BATCH_SUBSCRIBERS,
                       range_walk: bool | None = None) -> Iterator[list[int]]:
    """Ids of subscribers with an address in ``area`` (boundary included), ascending,
    greater than ``after``, in lists of at most ``size``. Reads with a server-side
    cursor on ``conn`` (keep it for this generator alone): memory is bounded by
    ``size`` and one fetched chunk, whatever the number of subscribers. ``range_walk``:
    see :func:`_matching_ids` (``None`` chooses by the area's size)."""
    if area.is_empty:
        return
    pending: list[int] = []
    last = after
    for chunk in _matching_ids(conn, area, after, range_walk):
        for sid in chunk:
            if sid <= last:  # the same subscriber's other address (rows come sorted)
                continue
            last = sid
            pending.append(sid)
            if len(pending) >= size:
                yield pending
                pending = []
    if pending:
        yield pending


def approx_km2(area: BaseGeometry) -> float:
    """The area of a WGS84 geometry in km², from degrees scaled at its mean latitude
    (within a few percent over Belgium: enough to choose a query plan)."""
    lat = (area.bounds[1] + area.bounds[3]) / 2
    return float(area.area) * 111.32 * 111.32 * math.cos(math.radians(lat))


def _matching_ids(conn: Connection, area: BaseGeometry, after: int,
                  range_walk: bool | None = None) -> Iterator[list[int]]:
    """Matching subscriber ids greater than ``after``, ascending, in chunks (a
    subscriber may repeat across addresses). A large area (``range_walk``; default:
    over :data:`RANGE_WALK_KM2`) is read by ranges of :data:`RANGE_SPAN` subscriber
    ids through the ``address.subscriber_id`` index, so the first chunk arrives at
    once instead of after every match was sorted; a smaller one through the spatial
    index (GiST on PostgreSQL, the R*Tree on SQLite), sorted."""
    if range_walk is None:
        range_walk = approx_km2(area) > RANGE_WALK_KM2
    postgres = conn.dialect.name == "postgresql"
    if range_walk:
        top = conn.execute(sa.text("SELECT max(subscriber_id) FROM address")).scalar()
        wkb = shapely.to_wkb(area) if postgres else b""
        if not postgres:
            shapely.prepare(area)
        lo = after
        while top is not None and lo < top:
            bounds = {"lo": lo, "hi": lo + RANGE_SPAN}
            if postgres:
                rows = conn.execute(_POSTGIS_RANGE_SQL, {"wkb": wkb, **bounds})
                yield [int(r[0]) for r in rows]
            else:
                yield _inside(area, conn.execute(_SQLITE_RANGE_SQL, bounds).fetchall())
            lo += RANGE_SPAN
        return
    if postgres:
        result = conn.execution_options(stream_results=True, yield_per=_FETCH_ROWS).execute(
            _POSTGIS_SQL, {"wkb": shapely.to_wkb(area), "after": after})
        for part in result.partitions(_FETCH_ROWS):
            yield [int(r[0]) for r in part]
        return
    parts = list(shapely.get_parts(area))
    # A MultiPolygon of distant parts (Baarle-Hertog's enclaves) is read per part's
    # bounding box, not through one box around all of them.
    pieces = parts if 1 < len(parts) <= _MAX_PART_QUERIES else [area]
    params: dict[str, Any] = {"after": after}
    selects = []
    for i, piece in enumerate(pieces):
        minx, miny, maxx, maxy = piece.bounds
        params.update({f"minx{i}": minx, f"miny{i}": miny, f"maxx{i}": maxx,
                       f"maxy{i}": maxy})
        selects.append(_RTREE_SQL.format(i=i))
    sql = sa.text(" UNION ALL ".join(selects) + " ORDER BY 1")
    shapely.prepare(area)
    result = conn.execute(sql, params)
    while chunk := result.fetchmany(_FETCH_ROWS):
        yield _inside(area, chunk)


def _inside(area: BaseGeometry, rows: Sequence[Any]) -> list[int]:
    """The ids of ``(subscriber_id, lon, lat)`` rows whose point is in the (prepared)
    ``area``, boundary included, in the rows' order."""
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    lons = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    lats = np.fromiter((r[2] for r in rows), dtype=np.float64, count=len(rows))
    return ids[shapely.intersects_xy(area, lons, lats)].tolist()


# ----------------------------------------------------------------------------- the plan


@dataclass
class Plan:
    """What a campaign's deliveries are made of (fixed at launch)."""

    campaign_id: str
    environment: str
    priority: int
    kinds: list[str]  # contact point kinds wanted: mobile, email, landline
    kind: str  # the campaign's kind (information: opted-in contact points only)
    language_of: dict[str | None, str]  # subscriber language -> text language
    sms_facts: dict[str, dict[str, Any]]  # text language -> {"segments", "cost_eur"}
    area: BaseGeometry
    cursor: int = 0
    count: int = 0
    channels: list[str] = field(default_factory=list)  # the campaign's channels


@dataclass
class FanOutResult:
    """What ``run`` wrote: ``count`` deliveries to recipients, ``by_channel`` counts,
    ``people_by_language`` (subscriber language -> subscribers with at least one
    reachable contact point; for the launch's language warnings) and ``done``
    (False when another process holds the fan-out)."""

    count: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    people_by_language: Counter[str] = field(default_factory=Counter)
    done: bool = False


def _plan(s: Session, campaign_id: str, settings: Settings) -> Plan:
    from tocsin.authorities.models import Authority
    from tocsin.campaigns import rules
    from tocsin.campaigns.models import Campaign
    from tocsin.campaigns.targeting import _sms_facts, _sms_texts

    c = s.get(Campaign, campaign_id)
    if c is None:
        raise LookupError(f"campaign {campaign_id} not found")
    authority = s.get(Authority, c.authority_id)
    assert authority is not None  # foreign key
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)
    languages = list(c.texts)
    language_of: dict[str | None, str] = {
        lang: rules.choose_language(lang, fallback, languages) for lang in rules.LANGUAGES}
    language_of[None] = rules.choose_language(None, fallback, languages)
    price = Decimal(settings.sms_segment_price_eur)
    facts = _sms_facts(_sms_texts(c.content) if c.content else dict(c.texts), price)
    channels = list(c.channel_list)
    if "lbsms" in channels and "sms" not in channels:
        # F18: every registered subscriber with an address in the area also gets the SMS.
        channels.append("sms")
    kinds = [k for k, ch in (("mobile", "sms"), ("email", "email")) if ch in channels]
    if "voice" in channels:  # landlines, and mobiles whose subscriber chose calls
        kinds += [k for k in ("landline", "mobile") if k not in kinds]
    return Plan(c.id, c.environment, c.priority, kinds, c.kind, language_of, facts,
                shape(json.loads(c.area)), int(c.fanout_cursor or 0), int(c.fanout_count or 0),
                channels)


def _in_batch(s: Session, column: Any, ids: list[int]) -> sa.ColumnElement[bool]:
    """``column`` is one of ``ids``, as one parameter: a PostgreSQL array, or a JSON array
    read with SQLite's ``json_each`` (never a long ``IN (…)`` list)."""
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam("ids", ids, type_=ARRAY(sa.BigInteger)))
    return column.in_(sa.select(sa.column("value", sa.Integer))
                      .select_from(sa.func.json_each(sa.bindparam("ids", json.dumps(ids)))))


def _insert_batch(s: Session, plan: Plan, ids: list[int]) -> dict[str, int]:
    """Write the deliveries of the subscribers ``ids``; returns how many per channel."""
    from tocsin.subscribers.models import ContactPoint, Subscriber
    from tocsin.subscribers.portal_models import takes_channel

    cp, sub, d = table(ContactPoint), table(Subscriber), table(Delivery)
    postgres = s.get_bind().dialect.name == "postgresql"
    in_batch = _in_batch(s, cp.c.subscriber_id, ids)
    known = {k: v for k, v in plan.language_of.items() if k is not None}
    language = sa.case(known, value=sub.c.language, else_=plan.language_of[None])
    where: list[sa.ColumnElement[bool]] = [in_batch, cp.c.verified_at.is_not(None),
                                           cp.c.invalid_at.is_(None)]
    if plan.kind == "information":
        where.append(cp.c.info_opt_in.is_(True))
    counts: dict[str, int] = {}
    reaches = {"sms": cp.c.kind == "mobile", "email": cp.c.kind == "email",
               "voice": sa.or_(cp.c.kind == "landline",
                               sa.and_(cp.c.kind == "mobile", cp.c.voice.is_(True)))}
    channels = [ch for ch in ("sms", "email", "voice") if ch in plan.channels]
    for channel in channels:
        if channel == "sms":
            segments: Any = sa.case(
                {lang: plan.sms_facts[t]["segments"] for lang, t in known.items()},
                value=sub.c.language, else_=plan.sms_facts[plan.language_of[None]]["segments"])
            cost: Any = sa.case(
                {lang: plan.sms_facts[t]["cost_eur"] for lang, t in known.items()},
                value=sub.c.language, else_=plan.sms_facts[plan.language_of[None]]["cost_eur"])
        else:
            segments, cost = sa.literal(0), sa.literal(Decimal(0), sa.Numeric(10, 3))
        rows = (
            sa.select(sa.literal(plan.campaign_id), sa.literal(channel), cp.c.value, language,
                      sa.literal(QUEUED), sa.literal(plan.priority),
                      sa.literal(plan.environment), sa.literal(0), segments, cost)
            .join_from(cp, sub, sub.c.id == cp.c.subscriber_id)
            .where(reaches[channel], takes_channel(cp.c.subscriber_id, channel), *where)
            .order_by(cp.c.subscriber_id, cp.c.id)
        )
        columns = ["campaign_id", "channel", "address", "language", "state", "priority",
                   "environment", "attempts", "segments", "cost_eur"]
        if postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(d).from_select(columns, rows).on_conflict_do_nothing(
                index_elements=["campaign_id", "channel", "address"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(d).from_select(columns, rows).on_conflict_do_nothing()
        if postgres:
            # psycopg reports no rowcount for this INSERT … SELECT: count its RETURNING
            # rows in the server (``WITH ins AS (INSERT … RETURNING id) SELECT count(*)``).
            ins = stmt.returning(d.c.id).cte("ins")
            counts[channel] = int(s.scalar(sa.select(sa.func.count()).select_from(ins)) or 0)
        else:
            counts[channel] = int(getattr(s.execute(stmt), "rowcount", 0) or 0)
    return counts


def _people_by_language(s: Session, plan: Plan, ids: list[int]) -> Counter[str]:
    """Subscribers of ``ids`` with a reachable contact point of a wanted kind, by their
    own language (``""`` when unknown)."""
    from tocsin.subscribers.models import ContactPoint, Subscriber

    cp, sub = table(ContactPoint), table(Subscriber)
    where: list[sa.ColumnElement[bool]] = [
        _in_batch(s, cp.c.subscriber_id, ids), cp.c.kind.in_(plan.kinds),
        cp.c.verified_at.is_not(None), cp.c.invalid_at.is_(None)]
    if plan.kind == "information":
        where.append(cp.c.info_opt_in.is_(True))
    rows = s.execute(sa.select(sub.c.language, sa.func.count(sa.distinct(sub.c.id)))
                     .join_from(sub, cp, cp.c.subscriber_id == sub.c.id)
                     .where(*where).group_by(sub.c.language)).all()
    return Counter({(lang or ""): int(n) for lang, n in rows})


# ----------------------------------------------------------------------------- lifecycle


def begin(campaign: Any) -> None:
    """Mark ``campaign`` (being accepted, in the caller's transaction) as having a
    fan-out to run: nothing written yet, nobody holds it."""
    campaign.fanout_cursor, campaign.fanout_count = 0, 0
    campaign.fanout_owner, campaign.fanout_lease_until, campaign.fanout_done_at = None, None, None


def _take(engine: Engine, campaign_id: str, owner: str, now: dt.datetime) -> bool:
    from tocsin.campaigns.models import Campaign

    with transaction(engine) as s:
        result = s.execute(
            sa.update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.fanout_done_at.is_(None),
                   Campaign.launched_at.is_not(None), Campaign.fanout_cursor.is_not(None),
                   sa.or_(Campaign.fanout_lease_until.is_(None),
                          Campaign.fanout_lease_until < now, Campaign.fanout_owner == owner))
            .values(fanout_owner=owner,
                    fanout_lease_until=now + dt.timedelta(seconds=LEASE_SECONDS))
            .execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))


def run(engine: Engine, campaign_id: str, owner: str, settings: Settings | None = None,
        *, batch: int | None = None, want_languages: bool = False) -> FanOutResult:
    """Write the campaign's remaining deliveries, batch by batch, then mark it fanned out.

    Takes the fan-out's lease for ``owner`` first; returns ``FanOutResult(done=False)``
    at once when another live process holds it or it is already done. Each batch is
    one transaction: its deliveries, ``fanout_cursor``, ``fanout_count`` and the
    lease's renewal (a batch whose lease was taken over meanwhile is rolled back and
    the run ends). A campaign stopped meanwhile (``campaigns.control``) ends its
    fan-out. ``want_languages``: also count people per language (launch warnings).
    Raises ``LookupError`` for an unknown campaign.
    """
    from tocsin.campaigns.models import Campaign

    settings = settings or get_settings()
    out = FanOutResult()
    if not _take(engine, campaign_id, owner, utcnow()):
        return out
    with transaction(engine) as s:
        plan = _plan(s, campaign_id, settings)
    out.count = plan.count
    reader = engine.execution_options(**{READ_ONLY_OPTION: True})
    stopped = False
    with reader.connect() as conn:
        batches = (subscriber_batches(conn, plan.area, plan.cursor, batch or BATCH_SUBSCRIBERS)
                   if plan.kinds else iter(()))  # CAP only: nobody to write
        for ids in batches:
            with transaction(engine) as s:
                row = s.execute(sa.select(Campaign.status, Campaign.fanout_owner)
                                .where(Campaign.id == campaign_id)).one()
                if row.fanout_owner != owner:
                    return out  # taken over (our lease expired): the new owner goes on
                if row.status in ("stopped", "cancelled"):
                    stopped = True
                    break
                counts = _insert_batch(s, plan, ids)
                if want_languages:
                    out.people_by_language.update(_people_by_language(s, plan, ids))
                _member_reach(s, campaign_id, ids)
                written = sum(counts.values())
                plan.count += written
                s.execute(sa.update(Campaign).where(Campaign.id == campaign_id).values(
                    fanout_cursor=ids[-1], fanout_count=plan.count,
                    fanout_lease_until=utcnow() + dt.timedelta(seconds=LEASE_SECONDS))
                    .execution_options(synchronize_session=False))
            out.count = plan.count
            for ch, n in counts.items():
                out.by_channel[ch] = out.by_channel.get(ch, 0) + n
    if not stopped and plan.kinds:
        with transaction(engine) as s:
            if s.scalar(sa.select(Campaign.fanout_owner)
                        .where(Campaign.id == campaign_id)) != owner:
                return out
            counts = _insert_targets(s, plan)
            plan.count += sum(counts.values())
            s.execute(sa.update(Campaign).where(Campaign.id == campaign_id)
                      .values(fanout_count=plan.count)
                      .execution_options(synchronize_session=False))
        out.count = plan.count
        for ch, n in counts.items():
            out.by_channel[ch] = out.by_channel.get(ch, 0) + n
    _finish(engine, campaign_id, owner, stopped)
    out.done = True
    return out


def _insert_targets(s: Session, plan: Plan) -> dict[str, int]:
    """Write the deliveries of the campaign's groups and contact lists (issue 10), after
    its area's subscribers; a contact point already written (from the area, or by an
    earlier run of a resumed fan-out) is skipped by the unique key. Returns how many
    were written per channel."""
    from tocsin.authorities.models import Authority
    from tocsin.campaigns.group_targets import target_recipients
    from tocsin.campaigns.models import Campaign

    c = s.get(Campaign, plan.campaign_id)
    if c is None or not c.targets:
        return {}
    from tocsin.campaigns.answer_service import holds_targets

    if holds_targets(s, c.id):
        return {}  # a quota call asks its people one by one (``answer_service.run_quotas``)
    authority = s.get(Authority, c.authority_id)
    assert authority is not None  # foreign key
    recipients = target_recipients(s, c.targets, authority, c.channel_list, list(c.texts),
                                   c.kind)
    d = table(Delivery)
    counts: dict[str, int] = {}
    for r in recipients:
        sms = r.channel == "sms"
        values = {"campaign_id": plan.campaign_id, "channel": r.channel, "address": r.address,
                  "language": r.language, "state": QUEUED, "priority": plan.priority,
                  "environment": plan.environment, "attempts": 0,
                  "segments": plan.sms_facts[r.language]["segments"] if sms else 0,
                  "cost_eur": plan.sms_facts[r.language]["cost_eur"] if sms else Decimal(0)}
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt: Any = pg_insert(d).values(values).on_conflict_do_nothing(
                index_elements=["campaign_id", "channel", "address"])
        else:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt = sqlite_insert(d).values(values).on_conflict_do_nothing()
        written = s.execute(stmt.returning(d.c.id)).first() is not None
        counts[r.channel] = counts.get(r.channel, 0) + int(written)
    return counts


def _finish(engine: Engine, campaign_id: str, owner: str, stopped: bool) -> None:
    from tocsin.campaigns.models import Campaign
    from tocsin.dispatch.queue import finish_done

    now = utcnow()
    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None or c.fanout_owner != owner or c.fanout_done_at is not None:
            return
        c.fanout_done_at, c.fanout_lease_until = now, None
        s.flush()
        if not stopped:
            # Nothing to deliver, or everything already sent: finished now.
            finish_done(s, [campaign_id], now)


def _member_reach(s: Session, campaign_id: str, ids: list[int]) -> None:
    """Add this batch's subscribers to each cooperation member's reach (F4), by primary
    residence (address position 0); nothing for an authority outside a cooperation."""
    from tocsin.authorities.access import cooperation_of
    from tocsin.authorities.models import Authority
    from tocsin.campaigns.models import Campaign, CampaignMemberReach
    from tocsin.geo.areas import territory_of
    from tocsin.subscribers.models import Address

    authority_id = s.scalar(sa.select(Campaign.authority_id).where(Campaign.id == campaign_id))
    members = cooperation_of(s, str(authority_id))
    if not members:
        return
    points = s.execute(sa.select(Address.lon, Address.lat).where(
        Address.subscriber_id.in_(ids), Address.position == 0)).all()
    lons = [p[0] for p in points]
    lats = [p[1] for p in points]
    rows = s.scalars(sa.select(Authority).where(Authority.id.in_([authority_id, *members])))
    for a in rows:
        n = int(shapely.contains_xy(territory_of(a), lons, lats).sum()) if points else 0
        existing = s.get(CampaignMemberReach, (campaign_id, a.id))
        if existing is None:
            s.add(CampaignMemberReach(campaign_id=campaign_id, authority_id=a.id, recipients=n))
        else:
            existing.recipients += n
    s.flush()


def pending(engine: Engine, now: dt.datetime | None = None, limit: int = 20) -> list[str]:
    """Campaigns whose fan-out is not done and nobody holds (its process died or has
    not started it): any worker may continue them (``resume_pending``)."""
    from tocsin.campaigns.models import Campaign

    now = now or utcnow()
    with transaction(engine) as s:
        return list(s.scalars(
            sa.select(Campaign.id).where(
                Campaign.fanout_done_at.is_(None), Campaign.launched_at.is_not(None),
                Campaign.fanout_cursor.is_not(None),
                Campaign.status.in_(("sending", "paused", "stopped")),
                sa.or_(Campaign.fanout_lease_until.is_(None),
                       Campaign.fanout_lease_until < now))
            .order_by(Campaign.priority, Campaign.launched_at).limit(limit)))


def resume_pending(engine: Engine, owner: str, settings: Settings | None = None) -> int:
    """Continue every fan-out left unfinished (``pending``); returns how many were run
    to the end by ``owner``."""
    done = 0
    for campaign_id in pending(engine):
        if run(engine, campaign_id, owner, settings).done:
            done += 1
    return done

