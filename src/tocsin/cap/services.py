"""CAP use cases: build a campaign's CAP 1.2 alert, serve it, list the feeds (SPEC F24).

Live campaigns are published at ``/cap/…``; simulation campaigns only at
``/simulation/cap/…``, so a simulated alert can never reach a public panel.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from tocsin.authorities.models import Authority
from tocsin.campaigns import rules
from tocsin.campaigns.models import Campaign
from tocsin.cap.build import CapAlert, CapArea, CapInfo, build_alert
from tocsin.cap.feed import FeedEntry, build_atom_feed
from tocsin.cap.polygons import area_to_cap_polygons
from tocsin.core.db import transaction, utcnow
from tocsin.core.settings import Settings, get_settings


def build_campaign_cap(campaign: Campaign, authority: Authority, area: BaseGeometry,
                       settings: Settings | None = None) -> bytes:
    """The CAP 1.2 alert of ``campaign``: one ``info`` per language, the area as polygons.

    ``status`` from ``rules.cap_status``; the area as hole-free ``polygon``s of at
    most 500 points that cover it, plus a ``geocode`` NIS when it is a
    municipality. Raises ``CapBuildError`` if the result would not validate.
    """
    settings = settings or get_settings()
    params = campaign.cap_params or {}
    polygons = area_to_cap_polygons(area)
    geocodes = [("NIS", campaign.area_nis)] if campaign.area_nis else []
    infos = []
    for lang, text in campaign.texts.items():
        infos.append(CapInfo(
            language=rules.CAP_LANGUAGE[lang],
            category=params.get("category", rules.CAP_DEFAULTS["category"]),
            event=params.get("event") or campaign.kind.capitalize(),
            urgency=params.get("urgency", rules.CAP_DEFAULTS["urgency"]),
            severity=params.get("severity", rules.CAP_DEFAULTS["severity"]),
            certainty=params.get("certainty", rules.CAP_DEFAULTS["certainty"]),
            headline=rules.email_subject(campaign.kind, campaign.area_name, lang),
            description=text,
            sender_name=authority.name(lang),
            areas=[CapArea(area_desc=campaign.area_name, polygons=polygons,
                           geocodes=geocodes)],
        ))
    alert = CapAlert(
        identifier=campaign.cap_identifier,
        sender=settings.cap_sender,
        sent=campaign.launched_at or utcnow(),
        status=rules.cap_status(campaign.kind, campaign.environment),
        msg_type="Alert",
        scope="Public",
        infos=infos,
    )
    return build_alert(alert)


def get_cap_xml(engine: Engine, identifier: str, environment: str | None = None) -> bytes:
    """The published CAP XML of ``identifier``; ``environment`` restricts where it is looked up.

    Raises ``LookupError`` when no campaign published it (in that environment).
    """
    with transaction(engine) as s:
        q = sa.select(Campaign.cap_xml).where(Campaign.cap_identifier == identifier,
                                               Campaign.cap_xml.is_not(None))
        if environment is not None:
            q = q.where(Campaign.environment == environment)
        xml = s.scalar(q)
    if xml is None:
        raise LookupError(f"no published CAP alert {identifier!r}")
    return xml.encode("utf-8")


@dataclass(frozen=True)
class FeedPage:
    body: bytes
    updated: dt.datetime


def cap_feed(engine: Engine, environment: str, settings: Settings | None = None,
             limit: int = 100) -> FeedPage:
    """The Atom feed of the latest CAP alerts of one environment (newest first)."""
    settings = settings or get_settings()
    prefix = "" if environment == "live" else "/simulation"
    base = f"{settings.public_base_url}{prefix}/cap"
    with transaction(engine) as s:
        rows = s.execute(
            sa.select(Campaign.cap_identifier, Campaign.area_name, Campaign.kind,
                      Campaign.launched_at, Campaign.texts)
            .where(Campaign.environment == environment, Campaign.cap_xml.is_not(None))
            .order_by(Campaign.launched_at.desc()).limit(limit)
        ).all()
    entries = [
        FeedEntry(identifier=r.cap_identifier,
                  title=rules.email_subject(r.kind, r.area_name, next(iter(r.texts), "fr")),
                  updated=r.launched_at, summary=next(iter(r.texts.values()), ""),
                  cap_url=f"{base}/{r.cap_identifier}.xml", sender=settings.cap_sender)
        for r in rows
    ]
    updated = max((e.updated for e in entries), default=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    title = "Tocsin CAP alerts" + (" (SIMULATION)" if environment != "live" else "")
    body = build_atom_feed(f"{base}/feed.atom", title, f"{base}/feed.atom", updated, entries)
    return FeedPage(body, updated)
