"""A citizen's profile on the public portal (issue 10 point 1; SPEC F7, F8).

:func:`parse_profile` (pure) reads the profile form: language, channels (sms, voice,
email), accessibility (``deaf``: never called; ``blind``: voice preferred), up to 5
labelled addresses (home, work, school, family, other; one primary) typed as
municipality + street + number, and two separate consents (alerts; general-interest
information), each recorded with the version of the text shown and the time.
It returns every problem at once, each naming its form field.

:func:`create_profile` writes a new subscriber for a session whose contact was verified;
:func:`update_profile` replaces the profile of a logged-in citizen; :func:`profile_of`
reads it back (the ``/me`` page and the exports).

Addresses are placed with the official address register (issue 10 point 4,
``geo.addresses``; docs/decisions/0022-address-register.md): an address found there takes
the register's point (``geocoded="register"``, its BeST id, the register's spelling); an
address of a municipality the register covers but not found there is refused, naming the
part not found and the nearest values, unless the citizen placed it on the map
(``addr-i-lat``/``addr-i-lon``: ``geocoded="pin"``); in a municipality the register has
no address for (not imported), the address takes the municipality's representative point
(``geocoded="municipality"``, ``geo.places``) and the street and number stay text.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.audit import record_audit
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.subscribers.models import MAX_ADDRESSES, Address, ContactPoint, Subscriber
from tocsin.subscribers.portal_models import (
    AddressDetail,
    CitizenSession,
    SubscriberConsent,
    SubscriberProfile,
)
from tocsin.subscribers.rules import LANGUAGES
from tocsin.subscribers.verification import check_text, token_hash

CHANNELS = ("sms", "voice", "email")
ACCESSIBILITY = ("none", "deaf", "blind")
ADDRESS_KINDS = ("home", "work", "school", "family", "other")
#: Versions of the consent texts shown on the form (change when the wording changes).
CONSENT_VERSIONS = {"alerts": "alerts-v1", "info": "info-v1"}
LIMITS = {"municipality": 100, "street": 150, "number": 20, "box": 40}
#: The map pin's fields (WGS84 decimal degrees), read only with a register miss.
PIN_LIMIT = 20


class ProfileErrors(InputError):
    """Several form problems at once; ``errors`` lists them (each names its field)."""

    def __init__(self, errors: list[InputError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.template, code=first.code, **first.params)
        self.errors = errors


@dataclass(frozen=True)
class AddressInput:
    """One address as typed: ``kind`` among :data:`ADDRESS_KINDS`; ``pin``: the
    (lat, lon) the citizen placed on the map (WGS84 degrees, in Belgium), or None."""

    kind: str
    municipality: str
    street: str
    number: str
    box: str = ""
    pin: tuple[float, float] | None = None


@dataclass(frozen=True)
class ProfileInput:
    """A checked profile form; ``addresses[0]`` is the primary address."""

    language: str
    channels: tuple[str, ...]
    accessibility: str
    addresses: tuple[AddressInput, ...]
    consent_alerts: bool
    consent_info: bool


@dataclass
class ProfileView:
    """A citizen's whole profile (``/me``, exports). ``contacts``: dicts with ``id``,
    ``kind``, ``value``, ``verified_at``; ``addresses``: ``position``, ``kind``,
    ``municipality``, ``street``, ``number``, ``box``, ``lat``, ``lon``, ``nis``,
    ``primary``, ``geocoded`` (``register``, ``pin`` or ``municipality``), ``best_id``
    and ``text`` (the address as shown: the register's label for a register address);
    ``consents``: every decision, oldest first."""

    subscriber_id: int
    language: str
    created_at: dt.datetime
    channels: list[str]
    accessibility: str
    contacts: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    info_opt_in: bool = False

    @property
    def consent_alerts(self) -> bool:
        """The latest alerts consent."""
        given = [c["given"] for c in self.consents if c["kind"] == "alerts"]
        return bool(given and given[-1])


def _values(form: Mapping[str, Any], name: str) -> list[str]:
    getlist = getattr(form, "getlist", None)
    values = getlist(name) if getlist else [form[name]] if name in form else []
    return [v if isinstance(v, str) else "" for v in values]


def _one(form: Mapping[str, Any], name: str) -> str:
    values = _values(form, name)
    return values[0] if values else ""


def _pin(form: Mapping[str, Any], i: int, errors: list[InputError]) -> tuple[float, float] | None:
    """The map pin of row ``i``: None when both fields are empty; an error on
    ``addr-i-lat`` when one is missing, not a number, or outside Belgium."""
    from tocsin.geo.address_rules import in_belgium

    lat_text = _one(form, f"addr-{i}-lat").strip()[:PIN_LIMIT].replace(",", ".")
    lon_text = _one(form, f"addr-{i}-lon").strip()[:PIN_LIMIT].replace(",", ".")
    if not lat_text and not lon_text:
        return None
    try:
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        errors.append(InputError(f"addr-{i}-lat", N_("give the latitude and the longitude as "
                                                   "numbers, e.g. 50.8466 and 4.3528"),
                                 code="pin"))
        return None
    if not in_belgium(lat, lon):
        errors.append(InputError(f"addr-{i}-lat", N_("this point is not in Belgium"),
                                 code="pin_outside"))
        return None
    return round(lat, 6), round(lon, 6)


def parse_profile(form: Mapping[str, Any]) -> ProfileInput:
    """Read the profile form (a mapping, or a multi-dict for the ``channels`` boxes).

    Fields: ``language``; ``channels`` (repeated); ``accessibility``; for i in 0..4
    ``addr-i-kind``, ``addr-i-municipality``, ``addr-i-street``, ``addr-i-number``,
    ``addr-i-box`` (a row with nothing typed is skipped), ``addr-i-lat`` and
    ``addr-i-lon`` (a map pin: both or neither, decimal degrees in Belgium); ``primary``
    (the row index of the primary address, default the first filled one);
    ``consent_alerts``, ``consent_info`` (``yes`` when ticked). Raises
    :class:`ProfileErrors` listing every problem.
    """
    errors: list[InputError] = []
    language = _one(form, "language")
    if language not in LANGUAGES:
        errors.append(InputError("language", N_("choose French, Dutch, German or English"),
                                 code="language"))
    channels = tuple(c for c in CHANNELS if c in _values(form, "channels"))
    unknown = [c for c in _values(form, "channels") if c not in CHANNELS]
    if unknown:
        errors.append(InputError("channels", N_("unknown channel"), code="channel"))
    accessibility = _one(form, "accessibility") or "none"
    if accessibility not in ACCESSIBILITY:
        errors.append(InputError("accessibility", N_("unknown choice"), code="accessibility"))
        accessibility = "none"
    if accessibility == "deaf" and "voice" in channels:
        errors.append(InputError("channels", N_("voice calls are never made to deaf or hard of "
                                                "hearing people; untick “voice call”"),
                                 code="deaf_voice"))
    if accessibility == "blind" and "voice" not in channels:
        channels = tuple(c for c in CHANNELS if c in (*channels, "voice"))
    if not channels:
        errors.append(InputError("channels", N_("choose at least one way to be alerted"),
                                 code="no_channel"))
    rows: list[tuple[int, AddressInput]] = []
    for i in range(MAX_ADDRESSES):
        typed: dict[str, str] = {}
        refused = False
        for part, limit in LIMITS.items():
            name = f"addr-{i}-{part}"
            try:
                typed[part] = check_text(name, _one(form, name), limit)
            except InputError as exc:
                errors.append(exc)
                typed[part], refused = "", True
        kind = _one(form, f"addr-{i}-kind") or "home"
        if not any(typed.values()) and not refused:
            continue
        if kind not in ADDRESS_KINDS:
            errors.append(InputError(f"addr-{i}-kind", N_("unknown choice"), code="address_kind"))
        if not typed["municipality"] and f"addr-{i}-municipality" not in {e.field for e in errors}:
            errors.append(InputError(f"addr-{i}-municipality", N_("give the municipality"),
                                     code="missing"))
        if not typed["street"] and f"addr-{i}-street" not in {e.field for e in errors}:
            errors.append(InputError(f"addr-{i}-street", N_("give the street"), code="missing"))
        pin = _pin(form, i, errors)
        rows.append((i, AddressInput(kind, typed["municipality"], typed["street"],
                                     typed["number"], typed["box"], pin)))
    beyond = [k for k in map(str, form) if k.startswith("addr-") and len(k.split("-")) == 3
              and k.split("-")[1].isdigit() and int(k.split("-")[1]) >= MAX_ADDRESSES
              and not k.endswith("-kind") and _one(form, k).strip()]
    if beyond:
        errors.append(InputError("addresses", N_("at most %(n)s addresses"), code="too_many",
                                 n=MAX_ADDRESSES))
    if not rows:
        errors.append(InputError("addr-0-municipality", N_("give at least one address"),
                                 code="no_address"))
    primary = _one(form, "primary")
    ordered = [a for _, a in rows]
    if primary.isdigit() and rows:
        index = next((n for n, (i, _) in enumerate(rows) if i == int(primary)), None)
        if index is None:
            errors.append(InputError("primary", N_("the primary address is empty"),
                                     code="primary"))
        else:
            ordered.insert(0, ordered.pop(index))
    consent_alerts = _one(form, "consent_alerts") == "yes"
    if not consent_alerts:
        errors.append(InputError("consent_alerts", N_("tick this box to receive alerts"),
                                 code="consent_required"))
    if errors:
        raise ProfileErrors(errors)
    return ProfileInput(language, channels, accessibility, tuple(ordered), consent_alerts,
                        _one(form, "consent_info") == "yes")


def check_profile(engine: Engine, form: Mapping[str, Any], has_email: bool) -> ProfileInput:
    """:func:`parse_profile`, plus the checks that read the database, with every problem
    reported at once (WCAG 3.3.1; issue 10 trial: they came one round at a time).

    ``has_email``: the citizen has (or is registering with) an e-mail address; without
    one the e-mail channel is refused (field ``channels``, code ``email_without_address``).
    Each typed municipality is looked up even when other fields are wrong (field
    ``addr-i-municipality``, ``i`` the form's row). Raises :class:`ProfileErrors`.
    """
    errors: list[InputError] = []
    profile: ProfileInput | None = None
    try:
        profile = parse_profile(form)
    except ProfileErrors as exc:
        errors = list(exc.errors)
    if "email" in _values(form, "channels") and not has_email:
        errors.append(InputError("channels", N_("choose e-mail only with an e-mail address: "
                                                "add one to your contacts first"),
                                 code="email_without_address"))
    if profile is not None:
        for i, address in enumerate(profile.addresses):
            try:
                _geocode(engine, i, address, profile.language)
            except InputError as exc:
                errors.append(exc)
    else:
        refused = {e.field for e in errors}
        for i in range(MAX_ADDRESSES):
            name = _one(form, f"addr-{i}-municipality").strip()
            if name and f"addr-{i}-municipality" not in refused:
                try:
                    _check_municipality(engine, i, name)
                except InputError as exc:
                    errors.append(exc)
    if errors:
        raise ProfileErrors(errors)
    assert profile is not None
    return profile


# --- storage ------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """Where one address was placed: ``geocoded`` ``register``, ``pin`` or
    ``municipality``; ``lat``/``lon`` WGS84 degrees; ``nis`` the municipality; for a
    register address the BeST ``best_id`` and the register's spelling (``municipality``,
    ``street``, ``number``, ``box``, ``label``); otherwise the text as typed."""

    nis: str
    lat: float
    lon: float
    geocoded: str
    municipality: str
    street: str
    number: str
    box: str
    label: str
    best_id: str | None = None


def _register_error(index: int, address: AddressInput, field: str,
                    suggestions: tuple[str, ...]) -> InputError:
    near = ", ".join(suggestions)
    name = f"addr-{index}-{field}"
    if field == "street":
        if near:
            return InputError(name, N_("this street is not in the address register of "
                                       "“%(municipality)s”; did you mean: %(near)s?"),
                              code="register_street", municipality=address.municipality,
                              near=near)
        return InputError(name, N_("this street is not in the address register of "
                                   "“%(municipality)s”"), code="register_street",
                          municipality=address.municipality)
    if field == "number":
        if not address.number:
            return InputError(name, N_("give the house number; this street has for example: "
                                       "%(near)s"), code="register_number", near=near)
        return InputError(name, N_("no house number %(number)s in this street in the address "
                                   "register; nearest: %(near)s"), code="register_number",
                          number=address.number, near=near)
    if field == "box":
        return InputError(name, N_("no box %(box)s at this number in the address register; "
                                   "boxes: %(near)s"), code="register_box", box=address.box,
                          near=near)
    return InputError(name, N_("this street is in several parts of the municipality; give "
                               "the postcode: %(near)s"), code="register_postcode", near=near)


def _text_label(address: AddressInput) -> str:
    number = f"{address.number} {address.box}".strip()
    return f"{address.street} {number}, {address.municipality}".replace(" ,", ",")


def _municipality(engine: Engine, index: int, name: str) -> tuple[str, float, float]:
    """(NIS code, lat, lon of the centre) of the municipality typed in address row
    ``index``; :class:`InputError` on ``addr-<index>-municipality`` when none is called
    so."""
    from tocsin.geo.places import find_municipality

    try:
        nis, _, lat, lon = find_municipality(engine, name, field=f"addr-{index}-municipality")
    except InputError:
        raise InputError(f"addr-{index}-municipality",
                         N_("no Belgian municipality is called “%(value)s”"),
                         code="municipality", value=name) from None
    return nis, lat, lon


def _check_municipality(engine: Engine, index: int, name: str) -> None:
    """Check the municipality typed in row ``index`` as :func:`_geocode` would take it:
    a name or postcode the address register knows ("1130 Bruxelles", "1502", "Haren",
    ``geo.addresses.match_place``), else a municipality name (``geo.places``).
    Raises :class:`InputError` on ``addr-<index>-municipality`` when neither knows it."""
    from tocsin.geo.addresses import match_place

    if match_place(engine, name) is None:
        _municipality(engine, index, name)


def _geocode(engine: Engine, index: int, address: AddressInput, language: str) -> Placed:
    from tocsin.geo.addresses import pin_in_municipality, resolve

    found = resolve(engine, address.municipality, address.street, address.number,
                    address.box, language)
    if found.status == "found" and found.point is not None:
        p = found.point
        # "1130 Bruxelles": with its postcode, the address is found again when saved from
        # /me/edit even where a street name recurs in several parts of a municipality.
        return Placed(p["nis"], p["lat"], p["lon"], "register",
                      f"{p['postcode']} {p['municipality']}", p["street"], p["number"],
                      p["box"], p["label"], p["best_id"])
    if found.status == "missing":
        if address.pin is not None and found.nis is not None:
            if not pin_in_municipality(engine, found.nis, *address.pin):
                raise InputError(f"addr-{index}-lat", N_("this point is not in "
                                                         "“%(municipality)s”; place the pin "
                                                         "at the address"),
                                 code="pin_elsewhere", municipality=address.municipality)
            return Placed(found.nis, address.pin[0], address.pin[1], "pin",
                          address.municipality, address.street, address.number, address.box,
                          _text_label(address))
        raise _register_error(index, address, found.field, found.suggestions)
    nis, lat, lon = _municipality(engine, index, address.municipality)
    return Placed(nis, lat, lon, "municipality", address.municipality, address.street,
                  address.number, address.box, _text_label(address))


def _geocode_all(engine: Engine, profile: ProfileInput) -> list[Placed]:
    out, errors = [], []
    for i, address in enumerate(profile.addresses):
        try:
            out.append(_geocode(engine, i, address, profile.language))
        except InputError as exc:
            errors.append(exc)
    if errors:
        raise ProfileErrors(errors)
    return out


def _write(s: Session, subscriber: Subscriber, profile: ProfileInput,
           places: list[Placed], now: dt.datetime) -> None:
    subscriber.language = profile.language
    s.execute(sa.delete(Address).where(Address.subscriber_id == subscriber.id))
    s.flush()
    for position, (address, p) in enumerate(zip(profile.addresses, places, strict=True)):
        row = Address(subscriber_id=subscriber.id, position=position, lat=p.lat, lon=p.lon,
                      label=p.label[:300], nis=p.nis)
        s.add(row)
        s.flush()
        s.add(AddressDetail(address_id=row.id, kind=address.kind,
                            municipality=p.municipality[:100], street=p.street[:150],
                            number=p.number[:20], box=p.box[:40], geocoded=p.geocoded,
                            best_id=p.best_id))
    row_profile = s.get(SubscriberProfile, subscriber.id)
    if row_profile is None:
        row_profile = SubscriberProfile(subscriber_id=subscriber.id)
        s.add(row_profile)
    row_profile.channels = ",".join(profile.channels)
    row_profile.accessibility = profile.accessibility
    row_profile.updated_at = now
    voice = "voice" in profile.channels and profile.accessibility != "deaf"
    s.execute(sa.update(ContactPoint).where(ContactPoint.subscriber_id == subscriber.id)
              .values(info_opt_in=profile.consent_info))
    s.execute(sa.update(ContactPoint).where(ContactPoint.subscriber_id == subscriber.id,
                                            ContactPoint.kind == "mobile").values(voice=voice))
    for kind, given in (("alerts", profile.consent_alerts), ("info", profile.consent_info)):
        last = s.scalars(sa.select(SubscriberConsent).where(
            SubscriberConsent.subscriber_id == subscriber.id, SubscriberConsent.kind == kind)
            .order_by(SubscriberConsent.id.desc()).limit(1)).first()
        if last is None or last.given != given or last.text_version != CONSENT_VERSIONS[kind]:
            s.add(SubscriberConsent(subscriber_id=subscriber.id, kind=kind, given=given,
                                    text_version=CONSENT_VERSIONS[kind],
                                    language=profile.language, at=now))


def create_profile(engine: Engine, token: str | None, profile: ProfileInput, ip: str,
                   now: dt.datetime | None = None) -> int:
    """Create the subscriber of session ``token`` (its contact verified); returns its id.

    Raises InputError(``code``) when the session has no verified contact (start again),
    ProfileErrors naming ``addr-i-municipality`` for a municipality not found, and
    ``addr-i-street``/``-number``/``-box`` (code ``register_…``, with the nearest values)
    for an address the register does not have in a municipality it covers.
    """
    now = now or utcnow()
    places = _geocode_all(engine, profile)
    with transaction(engine) as s:
        row = s.get(CitizenSession, token_hash(token)) if token and len(token) < 100 else None
        if (row is None or row.expires_at <= now or row.verified_at is None
                or row.pending_value is None or row.subscriber_id is not None):
            raise InputError("contact", N_("your session has expired; start again"),
                             code="session")
        subscriber = Subscriber(external_id=f"portal-{secrets.token_hex(12)}",
                                language=profile.language, created_at=now)
        s.add(subscriber)
        s.flush()
        s.add(ContactPoint(subscriber_id=subscriber.id, kind=row.pending_kind or "email",
                           value=row.pending_value, verified_at=row.verified_at,
                           info_opt_in=profile.consent_info))
        s.flush()
        _write(s, subscriber, profile, places, now)
        row.subscriber_id, row.pending_kind, row.pending_value = subscriber.id, None, None
        record_audit(s, "citizen", "citizen.register", target=f"subscriber:{subscriber.id}",
                     source=ip, detail={"addresses": len(profile.addresses),
                                        "channels": list(profile.channels)})
        return int(subscriber.id)


def update_profile(engine: Engine, subscriber_id: int, profile: ProfileInput, ip: str,
                   now: dt.datetime | None = None) -> None:
    """Replace the profile of ``subscriber_id`` (addresses, channels, consents).

    Raises LookupError when it no longer exists, ProfileErrors for unknown
    municipalities."""
    now = now or utcnow()
    places = _geocode_all(engine, profile)
    with transaction(engine) as s:
        subscriber = s.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.external_id.startswith("erased:"):
            raise LookupError(f"subscriber {subscriber_id}")
        _write(s, subscriber, profile, places, now)
        record_audit(s, "citizen", "citizen.update", target=f"subscriber:{subscriber_id}",
                     source=ip, detail={"addresses": len(profile.addresses),
                                        "channels": list(profile.channels)})


def remove_contact(engine: Engine, subscriber_id: int, contact_id: int, ip: str) -> None:
    """Remove one contact point of the citizen; the last one cannot be removed (delete
    the profile instead): InputError(``contact``)."""
    with transaction(engine) as s:
        rows = list(s.scalars(sa.select(ContactPoint).where(
            ContactPoint.subscriber_id == subscriber_id)))
        target = next((r for r in rows if r.id == contact_id), None)
        if target is None:
            raise InputError("contact", N_("this contact is not in your profile"),
                             code="unknown_contact")
        if len(rows) == 1:
            raise InputError("contact", N_("this is your only contact; delete the profile "
                                           "instead"), code="last_contact")
        s.delete(target)
        record_audit(s, "citizen", "citizen.contact_removed",
                     target=f"subscriber:{subscriber_id}", source=ip)


def profile_of(engine: Engine, subscriber_id: int) -> ProfileView:
    """The whole profile of ``subscriber_id``; LookupError when it does not exist."""
    with read_transaction(engine) as s:
        subscriber = s.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.external_id.startswith("erased:"):
            raise LookupError(f"subscriber {subscriber_id}")
        prof = s.get(SubscriberProfile, subscriber_id)
        view = ProfileView(subscriber_id, subscriber.language, subscriber.created_at,
                           prof.channels.split(",") if prof and prof.channels else [],
                           prof.accessibility if prof else "none")
        for cp in s.scalars(sa.select(ContactPoint).where(
                ContactPoint.subscriber_id == subscriber_id).order_by(ContactPoint.id)):
            view.contacts.append({"id": cp.id, "kind": cp.kind, "value": cp.value,
                                  "verified_at": cp.verified_at, "voice": cp.voice})
            view.info_opt_in = view.info_opt_in or cp.info_opt_in
        rows = s.execute(sa.select(Address, AddressDetail)
                         .outerjoin(AddressDetail, AddressDetail.address_id == Address.id)
                         .where(Address.subscriber_id == subscriber_id)
                         .order_by(Address.position)).all()
        for address, detail in rows:
            view.addresses.append({
                "position": address.position, "primary": address.position == 0,
                "kind": detail.kind if detail else "home",
                "municipality": detail.municipality if detail else "",
                "street": detail.street if detail else (address.label or ""),
                "number": detail.number if detail else "",
                "box": detail.box if detail else "",
                "geocoded": detail.geocoded if detail else "municipality",
                "best_id": detail.best_id if detail else None,
                "text": address.label or "",
                "lat": round(address.lat, 6), "lon": round(address.lon, 6), "nis": address.nis})
        for c in s.scalars(sa.select(SubscriberConsent).where(
                SubscriberConsent.subscriber_id == subscriber_id)
                .order_by(SubscriberConsent.id)):
            view.consents.append({"kind": c.kind, "given": c.given,
                                  "text_version": c.text_version, "language": c.language,
                                  "at": c.at})
    return view
