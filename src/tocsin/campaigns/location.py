"""Sending location-based SMS and cell broadcast (SPEC F18, F31; issue 11).

A campaign with channel ``lbsms`` gets one queued delivery per mobile operator (address
= the operator's key, ``op1``…) and ``cb`` one per Cell Broadcast Centre (``cbc``),
written with the campaign when it is accepted (:func:`add_sends`); a worker claims
them like any delivery and its location senders (``dispatch.location_wiring``) send
one request per operator with the area, the text in every official language, sender
1789, priority, not-after time and the stated justification. Beside each delivery a
:class:`~tocsin.campaigns.location_models.LocationSend` row keeps what the operator
reports: its signed callbacks are applied here once each and in ``seq`` order
(:func:`apply_callback`), with counts per cell; the delivery becomes final when the
operator's broadcast is (``completed`` -> delivered, ``stopped``, ``failed``).
Registered subscribers with a mobile in the area also get the ordinary SMS
(``dispatch.fanout``: ``lbsms`` implies ``sms`` for subscribers).

Simulation campaigns reach only the simulators by construction: the worker's
``("lbsms", "simulation")`` sender is built on the simulators' addresses, the live one
on ``TOCSIN_LBSMS_OPERATORS`` / ``TOCSIN_CBC_URL`` and serves only live campaigns.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.campaigns import rules
from tocsin.campaigns.location_models import LocationSend
from tocsin.campaigns.models import Campaign
from tocsin.core.db import table, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings
from tocsin.dispatch.models import DELIVERED, FAILED, IN_FLIGHT, QUEUED, SENT, STOPPED, Delivery

#: The key of the one Cell Broadcast Centre (cell broadcast's delivery address).
CBC_KEY = "cbc"
#: LB-SMS priority per campaign kind; other kinds (information, group) are refused:
#: location-based SMS is only for imminent danger (F18).
LBSMS_PRIORITY = {"alert": "alert", "warning": "warning", "test": "test", "exercise": "test"}
#: Between the languages of the one location-based text.
TEXT_JOINER = "\n"
#: The operator's terminal events and the delivery state each gives.
FINAL_EVENTS = {"completed": DELIVERED, "stopped": STOPPED, "failed": FAILED}


def operator_keys(channel: str, environment: str, settings: Settings) -> list[str]:
    """The operators one ``channel`` (``lbsms`` | ``cb``) goes to: the synthetic
    operators' keys in simulation (one simulator each), the configured ones live
    (``TOCSIN_LBSMS_OPERATORS``); cell broadcast: one CBC (``cbc``), live only when
    ``TOCSIN_CBC_URL`` is set. Empty when nothing is configured."""
    if channel == "cb":
        return [CBC_KEY] if environment != "live" or settings.cbc_url.strip() else []
    if environment != "live":
        from tocsin.geo.cellmodel import SYNTHETIC_OPERATORS

        return [o.key for o in SYNTHETIC_OPERATORS]
    return list(live_operators(settings))


def live_operators(settings: Settings) -> dict[str, str]:
    """``TOCSIN_LBSMS_OPERATORS`` (``op1=https://…,op2=https://…``) as key -> base URL.
    Raises ValueError naming a malformed entry."""
    out: dict[str, str] = {}
    for part in settings.lbsms_operators.replace(" ", ",").split(","):
        if not part.strip():
            continue
        key, sep, url = part.partition("=")
        if not sep or not key.strip() or not url.strip().startswith(("https://", "http://")):
            raise ValueError(f"TOCSIN_LBSMS_OPERATORS: {part!r} is not KEY=https://…")
        out[key.strip()] = url.strip().rstrip("/")
    return out


def location_texts(content: dict[str, dict[str, str]], texts: dict[str, str]
                   ) -> dict[str, str]:
    """Language -> the SMS text, in the campaign's language order (the area's official
    languages first)."""
    out = {lang: entry.get("sms") or texts.get(lang, "") for lang, entry in content.items()}
    return {lang: t for lang, t in (out or texts).items() if t}


def lbsms_text(texts: dict[str, str]) -> str:
    """The one location-based SMS: every language, one after another (F18: nobody
    knows a located phone's language)."""
    return TEXT_JOINER.join(texts.values())


def check_location(channels: list[str], kind: str, environment: str,
                   content: dict[str, dict[str, str]], texts: dict[str, str],
                   justification: str | None, settings: Settings) -> None:
    """Whether the location-based ``channels`` can go out: the kind (LB-SMS is for
    imminent danger: alert, warning, test, exercise), the stated justification
    (LB-SMS, at most 500 characters), the text's length (one LB-SMS of every language
    at most 1,530 characters; cell broadcast at most 15 pages per language) and, live,
    a configured operator. Raises ``InputError`` naming the field (nothing written)."""
    from tocsin.channels.cell_broadcast import CbError, pages
    from tocsin.channels.lbsms import MAX_JUSTIFICATION, MAX_TEXT

    wanted = [c for c in channels if c in rules.LOCATION_CHANNELS]
    by_language = location_texts(content, texts)
    for channel in wanted:
        if not operator_keys(channel, environment, settings):
            raise InputError("channels", N_(
                "%(channel)s: no operator is configured for live alerts (TOCSIN_LBSMS_OPERATORS, "
                "TOCSIN_CBC_URL); simulation campaigns use the simulators"),
                code="location_not_configured", channel=channel)
    if "lbsms" in wanted:
        if kind not in LBSMS_PRIORITY:
            raise InputError("channels", N_(
                "location-based SMS is only for imminent danger: an alert, a warning, a test "
                "or an exercise, not %(kind)s"), code="lbsms_kind", kind=kind)
        why = (justification or "").strip()
        if not why:
            raise InputError("justification", N_(
                "location-based SMS: state the imminent danger; the mobile operators record "
                "it as their legal basis"), code="lbsms_justification")
        if len(why) > MAX_JUSTIFICATION:
            raise InputError("justification", N_(
                "the justification has %(n)s characters; at most %(max)s"),
                code="lbsms_justification_long", n=len(why), max=MAX_JUSTIFICATION)
        text = lbsms_text(by_language)
        if len(text) > MAX_TEXT:
            raise InputError("text", N_(
                "location-based SMS carries every language in one message: %(n)s characters, "
                "at most %(max)s; shorten the texts"), code="lbsms_text_long", n=len(text),
                max=MAX_TEXT)
    if "cb" in wanted:
        for lang, text in by_language.items():
            try:
                pages(text)
            except CbError:
                raise InputError(f"text.{lang}", N_(
                    "cell broadcast: the %(lang)s text is longer than 15 pages (1,395 GSM-7 "
                    "or 615 other characters)"), code="cb_text_long", lang=lang) from None


def _reference(campaign_id: str, channel: str, operator: str) -> str:
    return f"tocsin:{campaign_id}:{channel}:{operator}"


def add_sends(s: Session, campaign: Campaign, settings: Settings) -> int:
    """Queue the location-based sends of ``campaign`` (being accepted, in the caller's
    transaction): one delivery and one ``location_send`` row per operator of each of
    its location-based channels. Returns how many deliveries were written."""
    d = table(Delivery)
    lang = next(iter(campaign.texts), "fr")
    n = 0
    for channel in campaign.channel_list:
        if channel not in rules.LOCATION_CHANNELS:
            continue
        for op in operator_keys(channel, campaign.environment, settings):
            s.execute(sa.insert(d).values(
                campaign_id=campaign.id, channel=channel, address=op, language=lang,
                state=QUEUED, priority=campaign.priority, environment=campaign.environment,
                attempts=0, segments=0, cost_eur=0))
            s.add(LocationSend(campaign_id=campaign.id, channel=channel, operator=op,
                               reference=_reference(campaign.id, channel, op), state="queued",
                               phones_targeted=0, cells_resolved=0, submitted=0, delivered=0,
                               failed=0, expired=0, last_seq=0, duplicates=0))
            n += 1
    s.flush()
    return n


# ----------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class LocationJob:
    """What one operator is sent for one delivery (built by :func:`load_job`).

    ``area``: GeoJSON MultiPolygon (WGS84) fitted to the channel's 250 points per ring,
    outward only (``geo.shapes.channel_polygons``); ``texts``: language -> text, the
    area's official languages first; ``text``: the one LB-SMS of every language;
    ``not_after``: aware UTC; ``follow_up_of``: the operator's ref of the original
    broadcast (an update, an all-clear); ``previous``: the original's cell-broadcast
    messages (``{"messages": [...]}``) an update replaces; ``national``: the area is
    (nearly) all of Belgium."""

    delivery_id: int
    campaign_id: str
    channel: str
    operator: str
    environment: str
    reference: str
    kind: str
    msg_type: str
    area: dict[str, Any]
    texts: dict[str, str]
    text: str
    justification: str
    not_after: dt.datetime
    priority: str
    severity: str = "Severe"
    urgency: str = "Immediate"
    certainty: str = "Likely"
    follow_up_of: str | None = None
    previous: dict[str, Any] | None = None
    national: bool = False
    msg_code: int = 0
    original_id: str | None = None
    #: For a CBC taking CAP (``TOCSIN_CBC_PROTOCOL=cap``): the campaign's CAP identifier,
    #: area name, event, CAP status, expiry and launch time.
    cap_identifier: str = ""
    area_name: str = ""
    event: str = ""
    cap_status: str = "Exercise"
    expires: dt.datetime | None = None
    sent: dt.datetime | None = None


def _fitted_area(area_json: str, channel: str) -> tuple[dict[str, Any], bool]:
    from shapely.geometry import mapping

    from tocsin.cap.validate import country_territory
    from tocsin.geo.shapes import channel_outline

    area = shape(json.loads(area_json))
    outline = channel_outline(area, "lbsms" if channel == "lbsms" else "cb")
    geo = mapping(outline)
    if geo["type"] == "Polygon":
        geo = {"type": "MultiPolygon", "coordinates": [geo["coordinates"]]}
    country = country_territory("BE")
    national = area.area >= 0.95 * country.area
    return json.loads(json.dumps(geo)), national


def load_job(engine: Engine, delivery_id: int, settings: Settings) -> LocationJob:
    """The :class:`LocationJob` of a claimed location-based delivery. Raises LookupError
    when the delivery or its ``location_send`` row is gone."""
    with transaction(engine) as s:
        d = s.get(Delivery, delivery_id)
        if d is None:
            raise LookupError(f"delivery {delivery_id} not found")
        c = s.get(Campaign, d.campaign_id)
        row = s.scalar(sa.select(LocationSend).where(
            LocationSend.campaign_id == d.campaign_id, LocationSend.channel == d.channel,
            LocationSend.operator == d.address))
        if c is None or row is None:
            raise LookupError(f"delivery {delivery_id}: no location send")
        texts = location_texts(c.content or {}, dict(c.texts))
        cap = c.cap_params or {}
        follow_up_of = previous = None
        if c.references_id:
            original = s.scalar(sa.select(LocationSend).where(
                LocationSend.campaign_id == c.references_id, LocationSend.channel == d.channel,
                LocationSend.operator == d.address))
            if original is not None:
                follow_up_of = original.operator_ref
                previous = original.detail
        msg_code = _msg_code(s, c, row, previous)
        base = c.launched_at or utcnow()
        not_after = base + dt.timedelta(minutes=settings.location_not_after_minutes)
        if c.expires_at is not None and c.expires_at < not_after:
            not_after = c.expires_at
        area, national = _fitted_area(c.area, d.channel)
        return LocationJob(
            delivery_id=d.id, campaign_id=c.id, channel=d.channel, operator=d.address,
            environment=c.environment, reference=row.reference, kind=c.kind,
            msg_type=c.msg_type or "Alert", area=area, texts=texts, text=lbsms_text(texts),
            justification=(c.location_justification or "").strip(),
            not_after=not_after.astimezone(dt.UTC),
            priority=LBSMS_PRIORITY.get(c.kind, "warning"),
            severity=cap.get("severity") or "Severe",
            urgency=cap.get("urgency") or "Immediate",
            certainty=cap.get("certainty") or "Likely",
            follow_up_of=follow_up_of, previous=previous, national=national,
            msg_code=msg_code, original_id=c.references_id,
            cap_identifier=c.cap_identifier, area_name=c.area_name or "",
            event=_cap_event(c), cap_status=rules.cap_status(c.kind, c.environment),
            expires=_aware(c.expires_at), sent=_aware(c.launched_at))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as aware UTC (SQLite gives it back naive)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _cap_event(c: Campaign) -> str:
    """The CAP ``event`` of a campaign: its first language's, its CAP parameters', or
    its kind."""
    first = next(iter((c.content or {}).values()), {}) or {}
    return str(first.get("cap_event") or (c.cap_params or {}).get("event")
               or c.kind.capitalize())


def cap_cbc_message(job: LocationJob, sender: str, repetition_period: int
                    ) -> tuple[bytes, dict[str, Any]]:
    """The CAP 1.2 document a CBC taking CAP gets for ``job`` and the detail to keep
    (``{"protocol": "cap", "msg_code", "cap": [{"sender", "identifier", "sent"}…],
    "messages": []}``: every CAP message of the alert so far, oldest first, so that the
    next Update or Cancel references them all). An Alert for a new alert; an Update
    (``references``: the original's messages) when ``job.previous`` came from a CAP
    CBC; a Cancel when the campaign is one. Identifier: the campaign's CAP identifier
    + ``-CB``. Raises ``cell_broadcast.CbError``, ``geo.areas.AreaError``,
    ``cap.build.CapBuildError``."""
    from tocsin.channels.cbc import cap_for_cbc, cap_reference

    chain = list((job.previous or {}).get("cap") or [])
    msg_type = "Cancel" if job.msg_type == "Cancel" else ("Update" if chain else "Alert")
    xml = cap_for_cbc(
        identifier=f"{job.cap_identifier}-CB", sender=sender, sent=job.sent or utcnow(),
        status=job.cap_status, kind=job.kind, texts=job.texts, area=shape(job.area),
        area_desc=job.area_name or job.reference, event=job.event, severity=job.severity,
        urgency=job.urgency, certainty=job.certainty, expires=job.expires,
        msg_type=msg_type,
        references=tuple((r["sender"], r["identifier"], r["sent"]) for r in chain),
        repetition_period=repetition_period)
    detail = {"protocol": "cap", "msg_code": job.msg_code, "messages": [],
              "cap": [*chain, cap_reference(xml)], "msg_type": msg_type}
    return xml, detail


def cap_cbc_cancel(engine: Engine, campaign_id: str, detail: dict[str, Any],
                   settings: Settings) -> bytes:
    """The CAP ``Cancel`` of a campaign's cell broadcast at a CBC taking CAP, sent when
    the campaign is stopped or cancelled: ``references`` every CAP message of the alert
    (``detail["cap"]``), identifier = the last one's + ``-CANCEL``, one ``info`` per
    language saying it is over (``followups`` cancel texts). Raises LookupError when
    the campaign is gone, ``CapBuildError`` and the like as :func:`cap_cbc_message`."""
    from tocsin.campaigns.followups import _CANCEL_TEXT
    from tocsin.channels.cbc import cap_for_cbc

    with transaction(engine) as s:
        c = s.get(Campaign, campaign_id)
        if c is None:
            raise LookupError(f"campaign {campaign_id} not found")
        chain = list(detail.get("cap") or [])
        texts = {lang: _CANCEL_TEXT.get(lang, _CANCEL_TEXT["en"]) for lang in c.texts}
        cap = c.cap_params or {}
        area, _national = _fitted_area(c.area, "cb")
        return cap_for_cbc(
            identifier=f"{chain[-1]['identifier']}-CANCEL" if chain
            else f"{c.cap_identifier}-CB-CANCEL",
            sender=settings.cap_sender, sent=utcnow(),
            status=rules.cap_status(c.kind, c.environment), kind=c.kind, texts=texts,
            area=shape(area), area_desc=c.area_name or c.id, event=_cap_event(c),
            severity=cap.get("severity") or "Severe",
            urgency=cap.get("urgency") or "Immediate",
            certainty=cap.get("certainty") or "Likely", msg_type="Cancel",
            references=tuple((r["sender"], r["identifier"], r["sent"]) for r in chain),
            repetition_period=settings.cb_repetition_period)


def _msg_code(s: Session, c: Campaign, row: LocationSend, previous: dict[str, Any] | None
              ) -> int:
    """Cell broadcast's message code: the original's for an update (same alert), else
    a code no active cell-broadcast message uses (``cell_broadcast.allocate_msg_code``)."""
    from tocsin.channels.cell_broadcast import allocate_msg_code

    if previous and "msg_code" in previous:
        return int(previous["msg_code"])
    if row.detail and "msg_code" in row.detail:
        return int(row.detail["msg_code"])
    active = [int(r.get("msg_code", -1)) for r in s.scalars(sa.select(LocationSend.detail).where(
        LocationSend.channel == "cb", LocationSend.state == "broadcasting")) if r]
    last = s.scalar(sa.select(sa.func.count()).select_from(LocationSend)
                    .where(LocationSend.channel == "cb")) or 0
    return allocate_msg_code(active, int(last) % 1024 - 1)


def record_sent(engine: Engine, delivery_id: int, *, endpoint: str, state: str,
                operator_ref: str | None = None, detail: dict[str, Any] | None = None,
                replaces: str | None = None) -> None:
    """Write what the operator answered to a send: its ``operator_ref`` (LB-SMS), the
    planned messages (cell broadcast), the endpoint (stop and cancel go there).
    ``replaces``: the campaign whose cell-broadcast messages this update replaced (its
    row becomes ``replaced``: a later cancel deletes only the new ones)."""
    now = utcnow()
    with transaction(engine) as s:
        if replaces:
            d = s.get(Delivery, delivery_id)
            if d is not None:
                s.execute(sa.update(LocationSend).where(
                    LocationSend.campaign_id == replaces, LocationSend.channel == d.channel,
                    LocationSend.operator == d.address).values(state="replaced",
                                                                updated_at=now))
        row = _row_of_delivery(s, delivery_id)
        if row is None:
            return
        row.endpoint, row.sent_at, row.updated_at = endpoint, now, now
        if operator_ref:
            row.operator_ref = operator_ref
        if row.state in ("queued", "failed"):
            row.state = state
        if detail is not None:
            row.detail = detail
        row.error = None


def record_error(engine: Engine, delivery_id: int, error: str, final: bool) -> None:
    """Note an operator's refusal (``final``: the delivery failed) or a passing fault."""
    with transaction(engine) as s:
        row = _row_of_delivery(s, delivery_id)
        if row is not None:
            row.error = error[:500]
            row.updated_at = utcnow()
            if final:
                row.state = "failed"


def _row_of_delivery(s: Session, delivery_id: int) -> LocationSend | None:
    d = s.get(Delivery, delivery_id)
    if d is None:
        return None
    return s.scalar(sa.select(LocationSend).where(
        LocationSend.campaign_id == d.campaign_id, LocationSend.channel == d.channel,
        LocationSend.operator == d.address))


# ----------------------------------------------------------------------------- callbacks


@dataclass(frozen=True)
class CallbackResult:
    """What :func:`apply_callback` did: ``applied`` events (seqs), ``duplicate`` (seen
    before), ``waiting`` (held for an earlier seq), ``state`` after it."""

    applied: list[int]
    duplicate: bool
    waiting: bool
    state: str


class UnknownBroadcast(LookupError):
    """A callback for no broadcast Tocsin sent (wrong operator or reference)."""


def apply_callback(engine: Engine, operator: str, event: dict[str, Any]) -> CallbackResult:
    """Apply one (signature-checked) operator callback, exactly once and in ``seq``
    order: a seq already applied or waiting is a duplicate; a later one waits for the
    missing ones. Applied events set the state and counts (``counts``,
    ``phones_targeted``, ``cells_resolved``, ``per_cell``); a terminal one
    (``completed``, ``stopped``, ``failed``) makes the delivery final and may finish
    the campaign. Raises UnknownBroadcast, ValueError for a malformed event."""
    from tocsin.dispatch.queue import finish_done

    reference = str(event.get("reference") or "")
    seq = event.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"seq: {seq!r} is not a positive integer")
    from tocsin.channels.lbsms import EVENTS

    if event.get("event") not in EVENTS:
        raise ValueError(f"event: {event.get('event')!r} is not one of {', '.join(EVENTS)}")
    now = utcnow()
    with transaction(engine) as s:
        q = sa.select(LocationSend).where(LocationSend.reference == reference,
                                          LocationSend.operator == operator,
                                          LocationSend.channel == "lbsms")
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        row = s.scalar(q)
        if row is None:
            raise UnknownBroadcast(f"no broadcast {reference!r} at {operator}")
        if row.operator_ref and event.get("operator_ref") not in (None, row.operator_ref):
            raise UnknownBroadcast(f"{event.get('operator_ref')!r} is not {row.operator_ref!r}")
        pending = dict(row.pending or {})
        if seq <= row.last_seq or str(seq) in pending:
            row.duplicates += 1
            return CallbackResult([], True, False, row.state)
        pending[str(seq)] = event
        applied: list[int] = []
        while str(row.last_seq + 1) in pending and row.state not in FINAL_EVENTS:
            e = pending.pop(str(row.last_seq + 1))
            _apply(row, e)
            row.last_seq += 1
            applied.append(row.last_seq)
        row.pending = pending or None
        row.updated_at = now
        if row.state in FINAL_EVENTS:
            d = table(Delivery)
            s.execute(sa.update(d).where(
                d.c.campaign_id == row.campaign_id, d.c.channel == "lbsms",
                d.c.address == row.operator, d.c.state.in_((QUEUED, IN_FLIGHT, SENT)))
                .values(state=FINAL_EVENTS[row.state], final_at=now, lease_until=None,
                        error=(event.get("reason") or None) if row.state == "failed"
                        else None))
            s.flush()
            finish_done(s, [row.campaign_id], now)
        return CallbackResult(applied, False, not applied, row.state)


def _apply(row: LocationSend, e: dict[str, Any]) -> None:
    event = e["event"]
    row.state = "sending" if event == "progress" else event
    if e.get("operator_ref") and not row.operator_ref:
        row.operator_ref = str(e["operator_ref"])[:120]
    counts = e.get("counts") or {}
    for name in ("submitted", "delivered", "failed", "expired"):
        if name in counts:
            setattr(row, name, int(counts[name]))
    if "phones_targeted" in e:
        row.phones_targeted = int(e["phones_targeted"])
    if "cells_resolved" in e:
        row.cells_resolved = int(e["cells_resolved"])
    cells = e.get("per_cell")
    if cells:
        merged = dict(row.per_cell or {})
        for c in cells:
            merged[str(c["cell_id"])] = {k: v for k, v in c.items() if k != "cell_id"}
        row.per_cell = merged
    if event == "failed" and e.get("reason"):
        row.error = str(e["reason"])[:500]


def refresh_status(engine: Engine, campaign_id: str, timeout_s: float = 5.0) -> int:
    """Poll the operators for the campaign's unfinished LB-SMS broadcasts (``GET``; for
    when callbacks cannot reach Tocsin) and apply each answer as the next callback
    would. Returns how many answered."""
    from tocsin.channels.lbsms import LbsmsError, LbsmsOperatorClient

    with transaction(engine) as s:
        rows = [(r.reference, r.endpoint, r.operator_ref) for r in s.scalars(
            sa.select(LocationSend).where(LocationSend.campaign_id == campaign_id,
                                          LocationSend.channel == "lbsms",
                                          LocationSend.operator_ref.is_not(None),
                                          LocationSend.state.not_in(tuple(FINAL_EVENTS))))]
    answered = 0
    for reference, endpoint, ref in rows:
        if not endpoint or not ref:
            continue
        client = LbsmsOperatorClient(endpoint, timeout_s=timeout_s, retries=0)
        try:
            agg = client.status(ref)
        except LbsmsError:
            continue
        finally:
            client.close()
        answered += 1
        with transaction(engine) as s:
            row = s.scalar(sa.select(LocationSend).where(LocationSend.reference == reference))
            if row is None or row.state in FINAL_EVENTS:
                continue
            for name in ("submitted", "delivered", "failed", "expired"):
                value = (agg.get("counts") or {}).get(name)
                if value is not None:
                    setattr(row, name, max(int(value), getattr(row, name)))
            row.phones_targeted = int(agg.get("phones_targeted") or row.phones_targeted)
            row.cells_resolved = int(agg.get("cells_resolved") or row.cells_resolved)
            row.updated_at = utcnow()
    return answered


# ----------------------------------------------------------------------------- stop


def stop_sends(engine: Engine, campaign_id: str, timeout_s: float = 10.0,
               settings: Settings | None = None) -> dict[str, str]:
    """Stop the campaign's location-based sends at the operators: ``DELETE`` of each
    LB-SMS broadcast not final (its ``stopped`` callback then makes it final) and the
    cancel of its cell-broadcast messages (ECBE: ``DELETE`` of each message id, in
    order; a CBC taking CAP: one CAP ``Cancel`` referencing every CAP message of the
    alert, with ``settings``' credentials). Called after a stop or a cancel is
    committed. Returns ``{"<channel>:<operator>": outcome}`` (``stopping``,
    ``stopped``, ``unknown``, or the error)."""
    from tocsin.cap.build import CapBuildError
    from tocsin.channels.cbc import CbcError, EcbeClient, PlannedMessage
    from tocsin.channels.lbsms import LbsmsError, LbsmsOperatorClient

    with transaction(engine) as s:
        rows = [(r.id, r.channel, r.operator, r.endpoint, r.operator_ref, r.detail, r.state)
                for r in s.scalars(sa.select(LocationSend).where(
                    LocationSend.campaign_id == campaign_id,
                    LocationSend.state.not_in((*FINAL_EVENTS, "queued", "replaced")))
                    .order_by(LocationSend.id))]
        queued = s.scalars(sa.select(LocationSend).where(
            LocationSend.campaign_id == campaign_id, LocationSend.state == "queued")).all()
        for r in queued:
            r.state, r.stop_requested_at = "stopped", utcnow()
    out: dict[str, str] = {}
    for row_id, channel, operator, endpoint, ref, detail, _state in rows:
        key = f"{channel}:{operator}"
        state = "stopping"
        try:
            if not endpoint:
                state = "unknown"
            elif channel == "lbsms" and ref:
                client = LbsmsOperatorClient(endpoint, timeout_s=timeout_s, retries=1)
                try:
                    client.stop(ref)
                finally:
                    client.close()
            elif channel == "cb" and (detail or {}).get("protocol") == "cap":
                state = _cancel_cap(engine, campaign_id, endpoint, detail or {},
                                    settings, timeout_s)
            elif channel == "cb":
                cbc = EcbeClient(endpoint, timeout_s=timeout_s)
                try:
                    planned = [PlannedMessage(tuple(m["languages"]), m["body"])
                               for m in (detail or {}).get("messages", [])]
                    states = cbc.cancel_alert(planned)
                finally:
                    cbc.close()
                state = "stopped" if states else "unknown"
        except (LbsmsError, CbcError, CapBuildError, LookupError) as exc:
            state = f"error: {exc}"
        out[key] = state
        with transaction(engine) as s:
            row = s.get(LocationSend, row_id)
            if row is not None:
                row.stop_requested_at = utcnow()
                if state == "stopped":
                    row.state = "stopped"
                elif state.startswith("error"):
                    row.error = state[:500]
    return out


def _cancel_cap(engine: Engine, campaign_id: str, endpoint: str, detail: dict[str, Any],
                settings: Settings | None, timeout_s: float) -> str:
    """Send the CAP Cancel of a cell broadcast to a CBC taking CAP; ``stopped``, or
    ``unknown`` when no CAP message of it was sent. Raises CbcError and the like."""
    from tocsin.channels.cbc import CapCbcClient, cap_reference
    from tocsin.core.settings import get_settings

    if not detail.get("cap"):
        return "unknown"
    settings = settings or get_settings()
    xml = cap_cbc_cancel(engine, campaign_id, detail, settings)
    client = CapCbcClient(endpoint, username=settings.cbc_username,
                          password=settings.cbc_password, token=settings.cbc_token,
                          timeout_s=timeout_s)
    try:
        client.cancel_alert(xml)
    finally:
        client.close()
    with transaction(engine) as s:
        row = s.scalar(sa.select(LocationSend).where(
            LocationSend.campaign_id == campaign_id, LocationSend.channel == "cb",
            LocationSend.endpoint == endpoint))
        if row is not None:
            row.detail = {**detail, "cap": [*detail["cap"], cap_reference(xml)],
                          "msg_type": "Cancel"}
    return "stopped"


# ----------------------------------------------------------------------------- reports


def location_summary(s: Session, campaign_id: str) -> dict[str, Any]:
    """Per location-based channel of the campaign: ``{"operators": {key: {"state",
    "phones_targeted", "cells_resolved", "submitted", "delivered", "failed",
    "expired", "cells_reported", "duplicates", "error", "operator_ref"; cell broadcast:
    "messages", "msg_code", and "cap_messages" (identifiers sent to a CAP CBC)}},
    "phones_targeted",
    "submitted", "delivered", "failed", "model": "synthetic cell model" (simulation)}``;
    ``{}`` for a campaign without one."""
    rows = s.scalars(sa.select(LocationSend).where(LocationSend.campaign_id == campaign_id)
                     .order_by(LocationSend.channel, LocationSend.operator)).all()
    environment = s.scalar(sa.select(Campaign.environment).where(Campaign.id == campaign_id))
    out: dict[str, Any] = {}
    for r in rows:
        ch = out.setdefault(r.channel, {"operators": {}, "phones_targeted": 0, "submitted": 0,
                                        "delivered": 0, "failed": 0})
        ch["operators"][r.operator] = {
            "state": r.state, "phones_targeted": r.phones_targeted,
            "cells_resolved": r.cells_resolved, "submitted": r.submitted,
            "delivered": r.delivered, "failed": r.failed, "expired": r.expired,
            "cells_reported": len(r.per_cell or {}), "duplicates": r.duplicates,
            "error": r.error, "operator_ref": r.operator_ref,
            **({"messages": [m["body"]["smscb_message"]["message_id"]
                             for m in (r.detail or {}).get("messages", [])],
                "msg_code": (r.detail or {}).get("msg_code"),
                **({"cap_messages": [m["identifier"] for m in (r.detail or {})["cap"]]}
                   if (r.detail or {}).get("cap") else {})} if r.channel == "cb" else {})}
        for k in ("phones_targeted", "submitted", "delivered", "failed"):
            ch[k] += getattr(r, k)
        if environment != "live":
            from tocsin.geo.cellmodel import SYNTHETIC_LABEL

            ch["model"] = SYNTHETIC_LABEL
    return out


def campaign_location(engine: Engine, campaign_id: str) -> dict[str, Any]:
    """:func:`location_summary` in its own transaction."""
    with transaction(engine) as s:
        return location_summary(s, campaign_id)
