"""CAP use cases: build a campaign's CAP 1.2 alert, serve it, list the feeds (SPEC F24).

Live campaigns are published at ``/cap/…``; simulation campaigns only at
``/simulation/cap/…``, so a simulated alert can never reach a public panel.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased

from tocsin.authorities.models import Authority
from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.cap.build import CapAlert, CapArea, CapInfo, build_alert
from tocsin.cap.feed import FeedEntry, build_atom_feed
from tocsin.cap.polygons import area_to_cap_polygons
from tocsin.core.db import read_transaction, utcnow
from tocsin.core.settings import Settings, get_settings


def build_campaign_cap(campaign: Campaign, authority: Authority, area: BaseGeometry,
                       settings: Settings | None = None) -> bytes:
    """The CAP 1.2 alert of ``campaign``: one ``info`` per language, the area as polygons.

    Each ``info`` takes ``cap_event``, ``cap_headline``, ``cap_description`` and
    ``cap_instruction`` from ``campaign.content[lang]`` (the base text for rows
    written before per-channel content existed); category, urgency, severity,
    certainty from ``cap_params``. ``status`` from ``rules.cap_status``;
    ``msgType`` and ``scope`` from the campaign (Alert / Update / Cancel; an
    Update or Cancel carries ``references``, the ``sender,identifier,sent``
    triples in ``campaign.cap_references``); ``expires`` from ``expires_at``;
    ``responseType`` from ``response_type`` (``AllClear`` for an all-clear).
    The area as hole-free ``polygon``s of at most 500 points that cover it,
    plus a ``geocode`` NIS when it is a municipality. Raises ``CapBuildError``
    if the result would not validate against the CAP 1.2 XSD.
    """
    from tocsin.cap.build import parse_references
    from tocsin.messages.content import content_of

    settings = settings or get_settings()
    params = campaign.cap_params or {}
    defaults = rules.cap_info_defaults(campaign.kind)
    polygons = area_to_cap_polygons(area)
    geocodes = [("NIS", campaign.area_nis)] if campaign.area_nis else []
    response_types = [campaign.response_type] if campaign.response_type else []
    infos = []
    for lang in campaign.texts:
        entry = (campaign.content or {}).get(lang) or {}
        infos.append(CapInfo(
            language=rules.CAP_LANGUAGE[lang],
            category=params.get("category") or defaults["category"],
            event=entry.get("cap_event") or params.get("event") or campaign.kind.capitalize(),
            response_types=response_types,
            urgency=params.get("urgency") or defaults["urgency"],
            severity=params.get("severity") or defaults["severity"],
            certainty=params.get("certainty") or defaults["certainty"],
            headline=entry.get("cap_headline")
            or rules.email_subject(campaign.kind, campaign.area_name, lang),
            description=content_of(campaign.content, campaign.texts, lang, "cap_description"),
            instruction=entry.get("cap_instruction") or None,
            sender_name=authority.name(lang),
            areas=[CapArea(area_desc=campaign.area_name, polygons=polygons,
                           geocodes=geocodes)],
        ))
    alert = CapAlert(
        identifier=campaign.cap_identifier,
        sender=settings.cap_sender,
        sent=campaign.launched_at or utcnow(),
        status=rules.cap_status(campaign.kind, campaign.environment),
        msg_type=campaign.msg_type or "Alert",
        scope=campaign.scope or "Public",
        references=parse_references(campaign.cap_references),
        expires=campaign.expires_at,
        infos=infos,
    )
    from tocsin.cap.signing import sign_if_configured

    return sign_if_configured(build_alert(alert), settings)


# ----------------------------------------------------------------------------- publishing
# Which published messages a feed lists (SPEC F24). "Published": a campaign with its
# CAP built whose sending has begun (drafts and scheduled campaigns are not out yet).
# "Active": published, Public, not expired, not superseded by a later Update/Cancel
# of the same alert, and not cancelled. A Cancel message itself stays in the active
# feed until its own expiry or, without one, for CANCEL_VISIBLE after it was sent,
# so that panels polling the feed see it and take the original down.

FEED_PAGE_SIZE = 50
CANCEL_VISIBLE = dt.timedelta(hours=24)
UNPUBLISHED_STATUSES = ("draft", "scheduled")
# Area-filtered feeds (the gateway) are filtered in Python over at most this many
# newest rows: active alerts are few, and the scan stays bounded under load.
AREA_SCAN_LIMIT = 2000


def published_clause(environment: str) -> sa.ColumnElement[bool]:
    """SQL condition: a Public CAP message of ``environment`` that has been sent out."""
    return sa.and_(
        Campaign.environment == environment,
        Campaign.cap_xml.is_not(None),
        Campaign.launched_at.is_not(None),
        Campaign.scope == "Public",
        Campaign.status.not_in(UNPUBLISHED_STATUSES),
    )


def active_clause(environment: str, now: dt.datetime) -> sa.ColumnElement[bool]:
    """SQL condition: a published message that still belongs in the active feed.

    Superseded = another published message refers to it (``references_id``) or,
    when both refer to the same original, a later one does (an Update or Cancel
    is always of its original's environment). The lookup is one ``IN`` on the
    ``references_id`` index; the rest filters from ``ix_campaign_feed``. ``now``
    is an aware datetime.
    """
    later = aliased(Campaign)
    superseded = (
        sa.select(later.id)
        .where(
            later.references_id.in_([Campaign.id, Campaign.references_id]),
            sa.or_(later.references_id == Campaign.id,
                   later.launched_at > Campaign.launched_at),
            later.cap_xml.is_not(None),
            later.status.not_in(UNPUBLISHED_STATUSES),
        )
        .exists()
    )
    not_expired = sa.or_(
        Campaign.expires_at > now,
        sa.and_(Campaign.expires_at.is_(None),
                sa.or_(Campaign.msg_type != "Cancel",
                       Campaign.launched_at > now - CANCEL_VISIBLE)),
    )
    return sa.and_(published_clause(environment), Campaign.status != "cancelled",
                   not_expired, ~superseded)


def get_cap_xml(engine: Engine, identifier: str, environment: str | None = None, *,
                public_only: bool = False) -> bytes:
    """The published CAP XML of ``identifier`` (UTF-8 bytes, as published, signed if so).

    ``environment`` restricts where it is looked up; ``public_only`` serves only
    Public messages whose sending has begun (what the public ``/cap/…`` URLs
    may show). Expired, updated and cancelled messages stay available: their URL
    is stable. Raises ``LookupError`` when no campaign published it.
    """
    with read_transaction(engine) as s:
        q = sa.select(Campaign.cap_xml).where(Campaign.cap_identifier == identifier,
                                               Campaign.cap_xml.is_not(None))
        if public_only and environment is not None:
            q = q.where(published_clause(environment))
        elif environment is not None:
            q = q.where(Campaign.environment == environment)
        xml = s.scalar(q)
    if xml is None:
        raise LookupError(f"no published CAP alert {identifier!r}")
    return xml.encode("utf-8")


@dataclass(frozen=True)
class FeedPage:
    """One page of an Atom feed: the document, its newest change, and its paging.

    ``body``: UTF-8 Atom XML; ``updated``: aware datetime; ``page``: 1-based;
    ``has_next``: a later (older) page exists.
    """

    body: bytes
    updated: dt.datetime
    page: int = 1
    has_next: bool = False


@dataclass(frozen=True)
class FeedScope:
    """Where a feed is served and what it lists.

    ``environment``: live | simulation; ``authority_id``: only that authority's
    alerts (None = national); ``archive``: every published message instead of
    the active ones; ``area``: only messages whose area intersects it (a
    gateway key's area, WGS84 shapely geometry); ``base_path``: the URL path
    prefix of the feed and its documents (``/cap``, ``/simulation/cap``,
    ``/gateway``); ``title``: feed title.
    """

    environment: str = "live"
    authority_id: str | None = None
    archive: bool = False
    area: BaseGeometry | None = None
    base_path: str = ""
    title: str = ""


def feed_base_path(environment: str) -> str:
    """URL path prefix of the public CAP documents of ``environment``."""
    return "/cap" if environment == "live" else "/simulation/cap"


def _feed_url(base: str, path: str, page: int, archive: bool) -> str:
    query = [f"page={page}"] if page > 1 else []
    if archive:
        query.insert(0, "all=1")
    return f"{base}{path}" + ("?" + "&".join(query) if query else "")


@lru_cache(maxsize=4096)
def _campaign_shape(campaign_id: str, area: str) -> BaseGeometry:
    # A published campaign's area never changes: parse each once per process.
    geom = shapely.from_geojson(area)
    shapely.prepare(geom)
    return geom


def _entry_text(row: Any) -> tuple[str, str]:
    lang = next(iter(row.texts), "fr")
    fields = (row.content or {}).get(lang) or {}
    title = fields.get("cap_headline") or rules.email_subject(row.kind, row.area_name, lang)
    summary = fields.get("cap_description") or row.texts.get(lang, "")
    return title, summary


def cap_feed(engine: Engine, environment: str = "live", settings: Settings | None = None, *,
             page: int = 1, page_size: int = FEED_PAGE_SIZE,
             scope: FeedScope | None = None, public_url: str | None = None) -> FeedPage:
    """One page of the Atom feed of CAP messages (RFC 4287, paged per RFC 5005 §3).

    Newest first, ``page_size`` entries per page (default 50). Active messages
    only (see ``active_clause``) unless ``scope.archive``. Entry titles are the
    CAP headline of the first language, summaries its description. The feed's
    ``<updated>`` is when it last changed: the newest of its entries, of the
    launches in its environment (and authority) and of the expiries already
    past (an empty active feed shows when its last alert left it); when
    nothing was ever published there, the current time rounded down to the
    minute. The body depends only on the data (and that minute), so a hash of
    it is a strong ETag, the same for identical requests.

    Raises ``LookupError`` for an unknown authority or a page after the last
    (page 1 always exists, possibly empty); ``ValueError`` for a page below 1.
    ``public_url``: the base of the feed's absolute links (the web passes the
    request's when ``TOCSIN_PUBLIC_URL`` is unset); default ``settings.public_url()``.
    """
    settings = settings or get_settings()
    base_url = (public_url or settings.public_url()).rstrip("/")
    scope = scope or FeedScope(environment=environment)
    if page < 1:
        raise ValueError("page: must be 1 or more")
    if scope.area is not None or settings.feed_cache_seconds <= 0:
        return _build_feed(engine, settings, base_url, page, page_size, scope)
    key = (engine.url.render_as_string(), base_url, scope, page, page_size)
    now = time.monotonic()
    with _feed_cache_lock:
        hit = _feed_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    built = _build_feed(engine, settings, base_url, page, page_size, scope)
    with _feed_cache_lock:
        if len(_feed_cache) >= _FEED_CACHE_ENTRIES:
            _feed_cache.clear()
        _feed_cache[key] = (now + settings.feed_cache_seconds, built)
    return built


# Micro-cache of built feed pages (SPEC F36: the spike after an alert). Each
# process builds a page at most once per ``feed_cache_seconds``; a new alert
# shows up at most that late (panels poll every few seconds, and webhooks push
# at once). Area-filtered (gateway) feeds are not cached.
_FEED_CACHE_ENTRIES = 512
_feed_cache: dict[tuple[Any, ...], tuple[float, FeedPage]] = {}
_feed_cache_lock = threading.Lock()


def _change_columns(scope: FeedScope, now: dt.datetime) -> list[sa.ScalarSelect[Any]]:
    """Scalar subqueries giving when the feed of ``scope`` last changed (see
    :func:`_last_change`): the newest launch, the newest expiry already past, and the
    newest Cancel launch whose 24 hours in the feed are over (add ``CANCEL_VISIBLE``).
    Over the environment (and authority), not over the area of a gateway key."""
    where = published_clause(scope.environment)
    if scope.authority_id is not None:
        where = sa.and_(where, Campaign.authority_id == scope.authority_id)
    cancel_left = sa.and_(Campaign.msg_type == "Cancel", Campaign.expires_at.is_(None),
                          Campaign.launched_at <= now - CANCEL_VISIBLE)
    return [
        sa.select(sa.func.max(Campaign.launched_at)).where(where).scalar_subquery(),
        sa.select(sa.func.max(Campaign.expires_at))
        .where(where, Campaign.expires_at <= now).scalar_subquery(),
        sa.select(sa.func.max(Campaign.launched_at)).where(where, cancel_left)
        .scalar_subquery(),
    ]


def _last_change(values: Any) -> dt.datetime | None:
    """The newest of the three :func:`_change_columns` values; None when nothing was ever
    published in the feed's environment (and authority)."""
    launched, expired, cancelled = (_aware(v) for v in values)
    if cancelled is not None:
        cancelled += CANCEL_VISIBLE
    return max((t for t in (launched, expired, cancelled) if t is not None), default=None)


def _aware(value: Any) -> dt.datetime | None:
    """A UTC datetime from an aggregate over a ``UTCDateTime`` column (bare on SQLite)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _build_feed(engine: Engine, settings: Settings, base_url: str, page: int, page_size: int,
                scope: FeedScope) -> FeedPage:
    environment = scope.environment
    now = utcnow()
    base_path = scope.base_path or feed_base_path(environment)
    doc_base = f"{base_url}{base_path}"
    path = (f"/authorities/{scope.authority_id}/feed.atom" if scope.authority_id
            else "/feed.atom")
    where = published_clause(environment) if scope.archive else active_clause(environment, now)
    columns: tuple[Any, ...] = (
        Campaign.id, Campaign.cap_identifier, Campaign.area_name, Campaign.kind,
        Campaign.launched_at, Campaign.texts, Campaign.content, Campaign.msg_type)
    with read_transaction(engine) as s:
        if scope.authority_id is not None:
            if s.get(Authority, scope.authority_id) is None:
                raise LookupError(f"unknown authority {scope.authority_id!r}")
            where = sa.and_(where, Campaign.authority_id == scope.authority_id)
        order = (Campaign.launched_at.desc(), Campaign.id.desc())
        # When the feed last changed rides along with the rows: no extra round trip.
        change_columns = [] if scope.archive else [
            c.label(f"change_{i}") for i, c in enumerate(_change_columns(scope, now))]
        rows: list[Any]
        if scope.area is None:
            rows = list(s.execute(
                sa.select(*columns, *change_columns).where(where).order_by(*order)
                .offset((page - 1) * page_size).limit(page_size + 1)
            ).all())
        else:
            shapely.prepare(scope.area)
            candidates = s.execute(
                sa.select(*columns, Campaign.area, *change_columns).where(where).order_by(*order)
                .limit(AREA_SCAN_LIMIT)
            ).all()
            inside = [r for r in candidates
                      if scope.area.intersects(_campaign_shape(r.id, r.area))]
            rows = inside[(page - 1) * page_size:page * page_size + 1]
    changes = None if scope.archive or not rows else tuple(rows[0])[-3:]
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    if page > 1 and not rows:
        raise LookupError(f"page {page}: there are fewer pages")
    entries = []
    for r in rows:
        title, summary = _entry_text(r)
        entries.append(FeedEntry(identifier=r.cap_identifier, title=title,
                                 updated=r.launched_at, summary=summary,
                                 cap_url=f"{doc_base}/{r.cap_identifier}.xml",
                                 sender=settings.cap_sender, msg_type=r.msg_type or "Alert"))
    # <updated> (RFC 4287 §4.2.15): when the feed last changed. The active feed also
    # changes when an alert expires or leaves it, so the newest of those moments counts
    # too; a feed of an environment where nothing was ever published shows the current
    # minute (the strong ETag of such an empty feed changes once a minute).
    updated = max((e.updated for e in entries), default=None)
    if not scope.archive or updated is None:
        if changes is None:
            with read_transaction(engine) as s:
                changes = s.execute(sa.select(*_change_columns(scope, now))).one()
        last = _last_change(changes)
        updated = max((t for t in (updated, last) if t is not None),
                      default=now.replace(second=0, microsecond=0))
    links = {"first": _feed_url(doc_base, path, 1, scope.archive)}
    if page > 1:
        links["previous"] = links["prev"] = _feed_url(doc_base, path, page - 1, scope.archive)
    if has_next:
        links["next"] = _feed_url(doc_base, path, page + 1, scope.archive)
    title = scope.title or (
        "Tocsin CAP alerts" + (f" of authority {scope.authority_id}" if scope.authority_id else "")
        + (" (archive)" if scope.archive else "")
        + (" (SIMULATION)" if environment != "live" else ""))
    body = build_atom_feed(_feed_url(doc_base, path, 1, scope.archive), title,
                           _feed_url(doc_base, path, page, scope.archive), updated, entries,
                           links)
    return FeedPage(body, updated, page, has_next)
