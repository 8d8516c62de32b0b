"""Opting out of general-interest information by e-mail link (SPEC F8, F12; RFC 8058).

Each information e-mail carries a link ``<TOCSIN_PUBLIC_URL>/unsubscribe/<token>``
where ``token`` is the recipient's address signed with HMAC-SHA256 under a key
derived from the deployment secret (``web.security.resolve_secret_key``) and a
purpose salt, so a link cannot be forged for another address, and building one
needs no database lookup (thousands of e-mails per second). The token carries
the address in clear (URL-safe base64), which is no secret to its reader: the
link was sent to that address. It does not expire: an old e-mail's link keeps
working, as RFC 8058 one-click unsubscription expects. The web process and every
worker must share the key: set ``TOCSIN_SECRET_KEY`` when they do not share a
``var_dir`` (else each keeps its own key and the links a worker signs are refused).

Opting out concerns general-interest information only: alerts still reach the
address (F8 "opt-in to general-interest messages is separate from alerts").
"""

from __future__ import annotations

import hashlib
import unicodedata
from urllib.parse import quote

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.services import record_audit
from tocsin.core.db import transaction
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings
from tocsin.subscribers.models import ContactPoint

# Changing the salt invalidates every link already sent: keep it.
_SALT = "tocsin.unsubscribe.info.v1"


class BadUnsubscribeToken(InputError):
    """An unsubscribe token that is malformed or not signed by this deployment.

    ``reason`` says which, in words a citizen understands (an ``N_`` template, shown
    translated by the web layer: docs/decisions/0018); ``field`` is ``token``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("token", reason)


def _serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValueError("secret_key: an empty key cannot sign unsubscribe links")
    return URLSafeSerializer(secret, salt=_SALT,
                             signer_kwargs={"digest_method": hashlib.sha256})


def unsubscribe_secret(settings: Settings) -> str:
    """The deployment secret unsubscribe links are signed with (same as the web's key)."""
    from tocsin.web.security import resolve_secret_key

    return resolve_secret_key(settings)


def unsubscribe_token(secret: str, address: str) -> str:
    """The signed token of e-mail ``address`` (URL-safe: ``[A-Za-z0-9_.-]``)."""
    return str(_serializer(secret).dumps(address))


def read_unsubscribe_token(secret: str, token: str) -> str:
    """The e-mail address a token was issued for.

    Raises ``BadUnsubscribeToken`` when the token is malformed or its signature does
    not match (altered, truncated, or signed by another deployment).
    """
    if not token or len(token) > 1000:
        raise BadUnsubscribeToken(N_("the link is incomplete or too long"))
    try:
        address = _serializer(secret).loads(token)
    except BadSignature:
        raise BadUnsubscribeToken(N_(
            "the link's signature does not match: it was altered, cut short, "
            "or does not come from this service")) from None
    if not isinstance(address, str) or "@" not in address:
        raise BadUnsubscribeToken(N_("the link does not name an e-mail address"))
    return address


def unsubscribe_url(base_url: str, secret: str, address: str, language: str = "") -> str:
    """``<base_url>/unsubscribe/<token>[?lang=xx]``: the one-click link of ``address``.

    ``language`` (fr, nl, de, en) only chooses the language of the confirmation page.
    """
    url = f"{base_url.rstrip('/')}/unsubscribe/{unsubscribe_token(secret, address)}"
    return f"{url}?lang={quote(language)}" if language else url


def do_info_opt_out(engine: Engine, address: str, source: str | None = None) -> list[int]:
    """Stop general-interest information to e-mail ``address``; returns the contact point ids.

    Every e-mail contact point with exactly this (normalised) address gets
    ``info_opt_in = False`` and one audit row names them (by id: the append-only
    audit log must not keep the address after a GDPR deletion, F9). Idempotent:
    an address already opted out, or no longer registered, changes nothing and
    returns its ids (possibly none). Alerts are not affected.
    """
    with transaction(engine) as s:
        ids = list(s.scalars(
            sa.select(ContactPoint.id).where(ContactPoint.kind == "email",
                                             ContactPoint.value == address)
            .order_by(ContactPoint.id)))
        changed = list(s.scalars(
            sa.select(ContactPoint.id).where(ContactPoint.id.in_(ids),
                                             ContactPoint.info_opt_in.is_(True))))
        if changed:
            s.execute(sa.update(ContactPoint).where(ContactPoint.id.in_(changed))
                      .values(info_opt_in=False))
        record_audit(s, "citizen", "contact_point.info_opt_out", source=source,
                     detail={"contact_points": ids, "changed": changed,
                             "via": "unsubscribe link (RFC 8058)"})
    return ids


#: SMS keywords (F9), compared upper-case without accents: the international STOP/START
#: and their French (ARRET) and German (STOPP, STARTEN) forms; Dutch uses STOP/START.
STOP_KEYWORDS = frozenset({"STOP", "STOPP", "ARRET", "UNSUBSCRIBE"})
START_KEYWORDS = frozenset({"START", "STARTEN", "SUBSCRIBE"})


def sms_keyword(text: str) -> str | None:
    """``"stop"``, ``"start"`` or ``None``: whether an SMS received is exactly one of the
    keywords (case, accents and surrounding spaces ignored; anything more is not one)."""

    folded = "".join(c for c in unicodedata.normalize("NFKD", text.strip().upper())
                     if not unicodedata.combining(c))
    if folded in STOP_KEYWORDS:
        return "stop"
    if folded in START_KEYWORDS:
        return "start"
    return None


def set_sms_info_opt_in(s: Session, number: str, opt_in: bool,
                        source: str | None = None) -> list[int]:
    """STOP (``opt_in`` False) or START (True) by SMS from ``number`` (E.164), in the
    caller's transaction: every mobile contact point with that number gets
    ``info_opt_in = opt_in`` (general-interest information only; alerts are not
    affected, F9) and one audit row names them by id, never by number. Returns the
    contact point ids (none when the number is not registered)."""
    ids = list(s.scalars(sa.select(ContactPoint.id).where(
        ContactPoint.kind == "mobile", ContactPoint.value == number).order_by(ContactPoint.id)))
    if ids:
        s.execute(sa.update(ContactPoint).where(ContactPoint.id.in_(ids))
                  .values(info_opt_in=opt_in))
    record_audit(s, "citizen", "contact_point.info_opt_in" if opt_in
                 else "contact_point.info_opt_out", source=source,
                 detail={"contact_points": ids, "via": "SMS keyword"})
    return ids

