"""The CAP gateway: integrators' access keys, their feed and their webhook pushes (SPEC F24).

The federal operator gives display-panel and alert-map vendors a key
(``create_key``), optionally limited to an area and with an HTTPS webhook.
The key is a random token shown once; only its SHA-256 is stored (a 256-bit
random secret needs no slow password hash). Integrators read
``/gateway/feed.atom`` with ``Authorization: Bearer <key>`` (or ``X-Api-Key``)
and get the live, Public alerts intersecting their area.

Pushes: at launch, a live Public campaign with a published CAP alert gets one
``delivery`` row (channel ``webhook``, address = the key id, language "") per
key that is not revoked, has a webhook, and whose area intersects the
campaign's. The dispatch worker sends them with ``channels.webhook``.
Simulation campaigns push to nobody: integrators' systems are real systems,
and a simulated alert must never reach a real panel (SPEC F27).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import shapely
import sqlalchemy as sa
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials, require
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor
from tocsin.authorities.reference_rules import FEDERAL_ID
from tocsin.authorities.services import record_audit
from tocsin.campaigns.models import Campaign
from tocsin.cap.build import BRUSSELS
from tocsin.cap.models import CapGatewayKey
from tocsin.cap.services import FeedPage, FeedScope, cap_feed, published_clause
from tocsin.channels.webhook import WebhookTarget, WebhookUrlError, check_webhook_url
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.core.errors import InputError, phrase
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings, get_settings
from tocsin.core.text import TextInputError, check_name
from tocsin.dispatch.models import QUEUED

WEBHOOK_CHANNEL = "webhook"
GATEWAY_PATH = "/gateway"
KEY_PREFIX = "tcg_"
_TOKEN = re.compile(r"^(tcg_[0-9a-f]{10})_([A-Za-z0-9_-]{43})$")
# Polling integrators would otherwise write a row per request: record use at most once a minute.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


class GatewayKeyError(InputError):
    """Bad key input: ``field`` (``name``, ``area``, ``webhook_url``, ``id``) and ``reason``
    (an ``N_`` template and its params, docs/decisions/0018)."""


class AlreadyRevoked(GatewayKeyError):
    """Revoking a key that is already revoked; ``key`` is that key (nothing was changed)."""

    def __init__(self, key: GatewayKey) -> None:
        revoked_at = key.revoked_at or utcnow()
        when = revoked_at.astimezone(BRUSSELS).strftime("%Y-%m-%d %H:%M")
        super().__init__("id", N_("key %(id)s (%(name)s) is already revoked (at %(when)s "
                                  "Europe/Brussels); nothing changed"),
                         code="already_revoked", id=key.id, name=key.name, when=when)
        self.key = key


#: Largest key id: the ``id`` column is a 32-bit integer on PostgreSQL.
MAX_KEY_ID = 2**31 - 1
#: Longest integrator name, in characters (``CapGatewayKey.name`` is String(200)).
MAX_NAME = 200


@dataclass(frozen=True)
class GatewayKey:
    """A gateway key as shown to the federal operator (never the key itself).

    ``area``: GeoJSON geometry text (WGS84) or None for the whole country;
    times are aware UTC datetimes.
    """

    id: int
    name: str
    key_prefix: str
    area: str | None
    webhook_url: str | None
    created_by: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def area_shape(self) -> BaseGeometry | None:
        """The key's area as a prepared shapely geometry (None = everywhere)."""
        return _shape(self.area) if self.area else None


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``key`` (the bearer token) and ``webhook_secret`` are shown once only."""

    info: GatewayKey
    key: str
    webhook_secret: str | None


@lru_cache(maxsize=256)
def _shape(geojson: str) -> BaseGeometry:
    geom = shapely.from_geojson(geojson)
    shapely.prepare(geom)
    return geom


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: CapGatewayKey) -> GatewayKey:
    return GatewayKey(row.id, row.name, row.key_prefix, row.area, row.webhook_url,
                      row.created_by, row.created_at, row.revoked_at, row.last_used_at)


def _readable(reason: str) -> str:
    """A webhook URL refusal for people: no errno, no Python quoting."""
    m = re.match(r"host '?([^' ]+)'? does not resolve", reason)
    if m:
        return f"the host {m.group(1)} could not be found (DNS)"
    return re.sub(r"\s*\(\[Errno [^)]*\)", "", reason).replace("'", "")


def create_key(engine: Engine, name: str, created_by: str | Actor, *,
               area: str | bytes | None = None, webhook_url: str | None = None,
               source: str = "cli", settings: Settings | None = None) -> CreatedKey:
    """Create an integrator's key; returns it with the token and webhook secret (shown once).

    ``name``: the integrator, one line of at most ``MAX_NAME`` characters,
    stored normalised (``tocsin.core.text.check_name``). ``area``: GeoJSON
    (Polygon, MultiPolygon, Feature or FeatureCollection, RFC 7946) limiting
    what the key sees and receives; None = all of the country; an area with
    no part in Belgium (the federal authority's territory) is refused, since
    the key would never see an alert. ``webhook_url``: where new alerts are
    pushed (checked now against the SSRF rules of ``channels.webhook``, host
    resolved). Audited as ``cap.key.create``.

    ``created_by``: the user (``policy``: GATEWAY_KEYS_MANAGE, the federal
    operator only; ``access.Denied`` otherwise, audited) or a name (the CLI).

    Raises ``GatewayKeyError`` naming ``name``, ``area`` or ``webhook_url``;
    nothing is written then.
    """
    from tocsin.geo.areas import AreaError, parse_area_geojson

    if isinstance(created_by, Actor):
        with audited_denials(engine, source):
            require(created_by, Action.GATEWAY_KEYS_MANAGE)
        created_by = created_by.username

    settings = settings or get_settings()
    try:
        name = check_name(name, "name", limit=MAX_NAME,
                          empty=N_("required: the integrator's name"))
    except TextInputError as exc:
        raise GatewayKeyError(exc.field, exc.template, code=exc.code, **exc.params) from None
    area_text = None
    if area is not None and area.strip():
        text = area.decode("utf-8", "replace") if isinstance(area, bytes) else area
        try:
            geom = parse_area_geojson(text, "area")
        except AreaError as exc:
            raise GatewayKeyError("area", exc.reason) from None
        _check_in_belgium(engine, geom)
        area_text = json.dumps(mapping(geom))
    url = None
    if webhook_url is not None and webhook_url.strip():
        try:
            url = check_webhook_url(webhook_url, settings.webhook_allow_insecure)
        except WebhookUrlError as exc:
            raise GatewayKeyError("webhook_url", _readable(exc.reason)) from None
    prefix = KEY_PREFIX + secrets.token_hex(5)
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    webhook_secret = secrets.token_urlsafe(32) if url else None
    with transaction(engine) as s:
        row = CapGatewayKey(name=name, key_prefix=prefix, key_hash=_hash(token), area=area_text,
                            webhook_url=url, webhook_secret=webhook_secret,
                            created_by=created_by, created_at=utcnow())
        s.add(row)
        s.flush()
        record_audit(s, created_by, "cap.key.create", target=str(row.id), source=source,
                     detail={"name": name, "prefix": prefix, "webhook_url": url,
                             "area": area_text is not None})
        info = _info(row)
    return CreatedKey(info, token, webhook_secret)


def _check_in_belgium(engine: Engine, area: BaseGeometry) -> None:
    """Refuse a key area with no part in Belgium (the federal authority's territory).

    Without the reference authorities loaded there is no territory to compare
    with, and no alert either: the area is then accepted as given.
    """
    from tocsin.geo.areas import territory_of

    with read_transaction(engine) as s:
        federal = s.get(Authority, FEDERAL_ID)
        belgium = territory_of(federal) if federal is not None else None
    if belgium is None or shapely.intersects(area, belgium):
        return
    swapped = shapely.transform(area, lambda xy: xy[:, ::-1])
    hint = (phrase(N_(" (its coordinates look like lat,lon: GeoJSON positions are lon,lat)"))
            if shapely.intersects(swapped, belgium) else "")
    point = area.representative_point()
    raise GatewayKeyError("area", N_(
                  "wholly outside Belgium (around %(y)s,%(x)s lat,lon)%(hint)s: a key "
                  "limited to it would never see an alert"), y=f"{point.y:.3f}", x=f"{point.x:.3f}",
                          hint=hint)


def list_keys(engine: Engine) -> list[GatewayKey]:
    """Every key, newest first (revoked ones included)."""
    with transaction(engine) as s:
        rows = s.scalars(sa.select(CapGatewayKey).order_by(CapGatewayKey.id.desc())).all()
        return [_info(r) for r in rows]


def revoke_key(engine: Engine, key_id: int | str, revoked_by: str,
               source: str = "cli") -> GatewayKey:
    """Revoke a key: it reads nothing and receives nothing from now on (queued pushes fail).

    Audited as ``cap.key.revoke``.

    Raises:
        GatewayKeyError: ``id`` malformed, or no key has it (any integer,
            however large: "no gateway key N").
        AlreadyRevoked: the key was revoked before (a ``GatewayKeyError`` on
            ``id`` saying when, Europe/Brussels time); nothing is changed or audited.
    """
    try:
        kid = int(str(key_id).strip())
    except (TypeError, ValueError):
        raise GatewayKeyError("id", N_(
                      "%(key_id)s is not a key id (a whole number, see `tocsin cap key "
                      "list`)"), key_id=f"{key_id!r}") from None
    if not 1 <= kid <= MAX_KEY_ID:  # no such row, and the database could not compare it
        raise GatewayKeyError("id", N_("no gateway key %(kid)s"), kid=kid)
    with transaction(engine) as s:
        row = s.get(CapGatewayKey, kid)
        if row is None:
            raise GatewayKeyError("id", N_("no gateway key %(kid)s"), kid=kid)
        if row.revoked_at is not None:
            raise AlreadyRevoked(_info(row))
        row.revoked_at = utcnow()
        record_audit(s, revoked_by, "cap.key.revoke", target=str(kid), source=source,
                     detail={"name": row.name, "prefix": row.key_prefix})
        return _info(row)


def authenticate(engine: Engine, token: str | None) -> GatewayKey | None:
    """The active key whose token is ``token``, or None (unknown, malformed or revoked).

    Looks the key up by its prefix and compares SHA-256 digests in constant time.
    """
    match = _TOKEN.match((token or "").strip())
    if match is None:
        return None
    with transaction(engine) as s:
        row = s.scalar(sa.select(CapGatewayKey).where(CapGatewayKey.key_prefix == match[1]))
        if row is None or not hmac.compare_digest(row.key_hash, _hash(match[0])):
            return None
        if row.revoked_at is not None:
            return None
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return _info(row)


def gateway_feed(engine: Engine, key: GatewayKey, *, page: int = 1, archive: bool = False,
                 settings: Settings | None = None, public_url: str | None = None
                 ) -> FeedPage:
    """The Atom feed of live Public alerts whose area intersects ``key``'s area.

    Entries link to ``<public_url>/gateway/{identifier}.xml`` (see ``cap_feed``).
    Raises ``LookupError`` for a page after the last.
    """
    return cap_feed(engine, "live", settings, page=page, public_url=public_url,
                    scope=FeedScope(
        environment="live", archive=archive, area=key.area_shape, base_path=GATEWAY_PATH,
        title=f"Tocsin CAP gateway — {key.name}"))


def gateway_cap_xml(engine: Engine, key: GatewayKey, identifier: str) -> bytes:
    """A live Public CAP alert for ``key``: raises ``LookupError`` unless it is published
    and its area intersects the key's."""
    with transaction(engine) as s:
        row = s.execute(sa.select(Campaign.cap_xml, Campaign.area).where(
            Campaign.cap_identifier == identifier, published_clause("live"))).first()
    shape = key.area_shape
    if row is None or (shape is not None and not shape.intersects(_shape(row.area))):
        raise LookupError(f"no published CAP alert {identifier!r} for this key")
    return str(row.cap_xml).encode("utf-8")


def webhook_delivery_rows(session: Session, campaign: Campaign,
                          area: BaseGeometry) -> list[dict[str, Any]]:
    """The webhook pushes of a campaign being launched, as ``delivery`` rows to insert.

    One row per key that is not revoked, has a webhook, and whose area is
    empty or intersects ``area`` (the campaign's WGS84 area): channel
    ``webhook``, address = the key id, language "", the campaign's priority.
    Only live campaigns with a published (``cap_xml`` set) Public CAP alert
    push; anything else returns ``[]``. Call inside the launch transaction.
    """
    if (campaign.environment != "live" or not campaign.cap_xml
            or (campaign.scope or "Public") != "Public"):
        return []
    keys = session.execute(sa.select(CapGatewayKey.id, CapGatewayKey.area).where(
        CapGatewayKey.revoked_at.is_(None), CapGatewayKey.webhook_url.is_not(None))).all()
    return [
        {"campaign_id": campaign.id, "channel": WEBHOOK_CHANNEL, "address": str(k.id),
         "language": "", "state": QUEUED, "priority": campaign.priority,
         "environment": campaign.environment, "attempts": 0, "segments": 0,
         "cost_eur": Decimal(0)}
        for k in keys if not k.area or _shape(k.area).intersects(area)
    ]


class GatewayWebhookTargets:
    """``channels.webhook.WebhookTargets`` over the database: key and CAP of a delivery."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._bodies: dict[str, bytes | None] = {}

    def load(self, key_id: str, campaign_id: str) -> WebhookTarget:
        with transaction(self.engine) as s:
            key = (s.get(CapGatewayKey, int(key_id))
                   if key_id.isdigit() and int(key_id) <= MAX_KEY_ID else None)
            if key is None:
                raise LookupError(f"gateway key {key_id} no longer exists")
            if campaign_id not in self._bodies:
                if len(self._bodies) > 256:
                    self._bodies.clear()
                xml = s.scalar(sa.select(Campaign.cap_xml).where(Campaign.id == campaign_id))
                # A published CAP document never changes: keep it for the other keys.
                self._bodies[campaign_id] = xml.encode("utf-8") if xml else None
            return WebhookTarget(str(key.id), key.webhook_url, key.webhook_secret,
                                 key.revoked_at is not None, self._bodies[campaign_id])
