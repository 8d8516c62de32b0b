"""GDPR self-service of a citizen (issue 10 point 5; SPEC F9; GDPR Art. 15, 17, 20).

:func:`export_json` and :func:`export_csv` give the whole profile (Art. 15 access,
Art. 20 portability) from ``registration.profile_of``; pure functions.

:func:`erase_subscriber` deletes at once (Art. 17) every personal datum of one
citizen: contact points, addresses and their details, profile, consents, sessions,
one-time codes; the addresses of the delivery rows sent to them are replaced by a
pseudonym (``erased:<delivery id>``) so that ids, counts, segments and costs stay for
billing and reports; the audit log's side table (``audit_personal``: the IP addresses
of the citizen's own actions) loses its rows while the hash chain is untouched (its
entries name ``subscriber:<id>`` only), so ``tocsin audit verify`` still passes.
The cost guard's log keeps keyed hashes only (no number) and expires after 2 days.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tocsin.authorities.audit import record_audit
from tocsin.authorities.models import AuditEntry, AuditPersonal
from tocsin.core.db import transaction
from tocsin.core.i18n import N_, gettext
from tocsin.dispatch.models import Delivery
from tocsin.subscribers.models import Address, ContactPoint, Subscriber
from tocsin.subscribers.portal_models import (
    AddressDetail,
    CitizenSession,
    PortalCode,
    SubscriberConsent,
    SubscriberProfile,
)
from tocsin.subscribers.registration import ProfileView
from tocsin.subscribers.verification import keyed_hash

CSV_COLUMNS = ("section", "field", "value", "detail")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def export_data(view: ProfileView) -> dict[str, Any]:
    """The profile as JSON-ready data (times ISO 8601 UTC)."""
    return {
        "subscriber_id": view.subscriber_id,
        "created_at": _iso(view.created_at),
        "language": view.language,
        "channels": view.channels,
        "accessibility": view.accessibility,
        "general_interest_information": view.info_opt_in,
        "contacts": [{k: _iso(v) for k, v in c.items() if k != "id"} for c in view.contacts],
        "addresses": view.addresses,
        "consents": [{k: _iso(v) for k, v in c.items()} for c in view.consents],
    }


def export_json(view: ProfileView) -> str:
    """The profile as a JSON document (UTF-8 text, indented)."""
    return json.dumps(export_data(view), ensure_ascii=False, indent=2)


def _cell(value: Any) -> str:
    text = "" if value is None else str(_iso(value))
    # A spreadsheet must not run what a citizen typed (CSV injection, OWASP).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


#: Words of the CSV export, translated into the reader's language (English msgids).
_CSV_WORDS = {
    "section": N_("section"), "field": N_("field"), "value": N_("value"),
    "detail": N_("detail"), "profile": N_("profile"), "contact": N_("contact"),
    "address": N_("address"), "consent": N_("consent"),
    "subscriber_id": N_("subscriber number"), "created_at": N_("registered on"),
    "language": N_("language"), "accessibility": N_("accessibility"),
    "general_interest_information": N_("general-interest information"),
    "channels": N_("channels"), "primary": N_("primary"), "yes": N_("yes"), "no": N_("no"),
}


def export_csv(view: ProfileView, language: str = "en") -> str:
    """The profile as CSV (RFC 4180, UTF-8 with a byte order mark so that a spreadsheet
    reads the accents): one row per datum, columns section, field, value, detail, their
    names and the fixed words in ``language`` (fr, nl, de, en); what the citizen typed
    and the stored codes (channel and contact kinds, ISO times) stay as they are. Cells
    that a spreadsheet would run as a formula start with ``'``."""
    def word(key: str) -> str:
        return gettext(language, _CSV_WORDS[key])

    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([word(c) for c in CSV_COLUMNS])
    data = export_data(view)
    for key in ("subscriber_id", "created_at", "language", "accessibility",
                "general_interest_information"):
        value = data[key]
        if isinstance(value, bool):
            value = word("yes" if value else "no")
        w.writerow([word("profile"), word(key), _cell(value), ""])
    w.writerow([word("profile"), word("channels"), " ".join(view.channels), ""])
    for c in data["contacts"]:
        w.writerow([word("contact"), c["kind"], _cell(c["value"]), _cell(c["verified_at"])])
    for a in view.addresses:
        kind = a["kind"] + (f" ({word('primary')})" if a["primary"] else "")
        w.writerow([word("address"), kind,
                    _cell(a["text"] or f"{a['street']} {a['number']}, {a['municipality']}"),
                    f"{a['lat']},{a['lon']}"])
    for c in data["consents"]:
        w.writerow([word("consent"), c["kind"], word("yes" if c["given"] else "no"),
                    f"{c['text_version']} {c['language']} {c['at']}"])
    return out.getvalue()


def erase_subscriber(engine: Engine, subscriber_id: int, secret: str) -> int:
    """Delete every personal datum of ``subscriber_id`` (see the module docstring);
    returns the number of delivery rows pseudonymised. The ``subscriber`` row itself
    stays, holding nothing personal (``external_id`` ``erased:<id>``), so that its id is
    never reused. LookupError when the subscriber does not exist or was erased."""
    with transaction(engine) as s:
        subscriber = s.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.external_id.startswith("erased:"):
            raise LookupError(f"subscriber {subscriber_id}")
        values = list(s.scalars(sa.select(ContactPoint.value).where(
            ContactPoint.subscriber_id == subscriber_id)))
        # The same value may be another citizen's too (a shared family e-mail): deliveries
        # to it are pseudonymised only when nobody else holds it.
        shared = set(s.scalars(sa.select(ContactPoint.value).where(
            ContactPoint.value.in_(values), ContactPoint.subscriber_id != subscriber_id)))
        own = [v for v in values if v not in shared]
        ids = list(s.scalars(sa.select(Delivery.id).where(Delivery.address.in_(own)))) \
            if own else []
        for delivery_id in ids:
            s.execute(sa.update(Delivery).where(Delivery.id == delivery_id)
                      .values(address=f"erased:{delivery_id}"))
        hashes = [keyed_hash(secret, "contact", v) for v in values]
        if hashes:
            s.execute(sa.delete(PortalCode).where(PortalCode.address_hash.in_(hashes)))
        s.execute(sa.delete(CitizenSession).where(sa.or_(
            CitizenSession.subscriber_id == subscriber_id,
            CitizenSession.pending_value.in_(values))))
        address_ids = list(s.scalars(sa.select(Address.id).where(
            Address.subscriber_id == subscriber_id)))
        if address_ids:
            s.execute(sa.delete(AddressDetail).where(AddressDetail.address_id.in_(address_ids)))
        for model in (Address, ContactPoint, SubscriberConsent, SubscriberProfile):
            s.execute(sa.delete(model).where(
                model.subscriber_id == subscriber_id))  # type: ignore[attr-defined]
        entries = sa.select(AuditEntry.id).where(
            AuditEntry.target == f"subscriber:{subscriber_id}").scalar_subquery()
        s.execute(sa.delete(AuditPersonal).where(AuditPersonal.entry_id.in_(entries)))
        # The row stays as a tombstone without personal data: its id is never given to
        # another citizen (SQLite reuses the highest rowid of a deleted row), so the audit
        # log's "subscriber:N" and the billing counts keep meaning one person.
        subscriber.external_id = f"erased:{subscriber_id}"
        s.flush()
        record_audit(s, "citizen", "citizen.erase", target=f"subscriber:{subscriber_id}",
                     detail={"deliveries_pseudonymised": len(ids),
                             "contacts": len(values), "addresses": len(address_ids)})
    return len(ids)
