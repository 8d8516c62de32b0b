"""Use cases of the authorities area: users, login, territories (F1, F5).

The audit log (F6) lives in ``authorities.audit``; ``record_audit`` is re-exported
here for the services that import it from this module.

Passwords are hashed with Argon2id (argon2-cffi defaults, RFC 9106). Territories
are stored as GeoJSON geometries in WGS84 and returned here as GeoJSON
Features / FeatureCollections (RFC 7946) for the operator map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.audit import record_audit as record_audit  # re-exported
from tocsin.authorities.models import Authority, User
from tocsin.authorities.policy import ROLES, Actor
from tocsin.core.db import transaction, utcnow
from tocsin.core.i18n import N_
from tocsin.core.text import check_name

MAX_USERNAME = 120  # characters; User.username is String(120)
MAX_DISPLAY_NAME = 200  # characters; User.display_name is String(200)
MAX_PASSWORD = 1_024  # characters: a passphrase, never a file (Argon2 reads all of it)

_hasher = PasswordHasher()
# Verified when the username is unknown, so that a failed login takes the same
# time whether or not the user exists (no username enumeration by timing).
_DUMMY_HASH = _hasher.hash("tocsin-dummy-password")


@dataclass(frozen=True)
class UserInfo:
    """A logged-in (or just created) platform user, detached from the database."""

    id: int
    username: str
    display_name: str
    authority_id: str
    authority_name: str
    role: str


@dataclass(frozen=True)
class AuthorityInfo:
    """An authority as the web and CLI layers see it.

    ``languages`` is the official language order (e.g. ``["fr", "nl"]``);
    ``bbox`` is ``(min_lon, min_lat, max_lon, max_lat)`` in WGS84 degrees.
    """

    id: str
    kind: str
    name: str
    languages: list[str]
    parent_id: str | None
    agreement_type: int
    population: int | None
    bbox: tuple[float, float, float, float]


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (PHC string format)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches the Argon2 ``password_hash`` (never raises)."""
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _authority_name(authority: Authority) -> str:
    langs = authority.language_list
    return authority.name(langs[0] if langs else "fr")


def _user_info(user: User, authority: Authority) -> UserInfo:
    return UserInfo(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        authority_id=user.authority_id,
        authority_name=_authority_name(authority),
        role=user.role,
    )


def log_action(
    engine: Engine,
    actor: str,
    action: str,
    target: str | None = None,
    source: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    on_behalf_of: str | None = None,
) -> None:
    """Append one audit entry (F6) in its own transaction (e.g. a logout).

    Same arguments as ``authorities.audit.record_audit``.
    """
    with transaction(engine) as session:
        record_audit(session, actor, action, target=target, source=source, detail=detail,
                     on_behalf_of=on_behalf_of)


def authenticate(
    engine: Engine, username: str, password: str, source: str | None = None
) -> UserInfo | None:
    """The user whose ``username`` and ``password`` match, or None.

    Every attempt is written to the audit log (``login`` / ``login_failed``)
    with ``source`` (the client IP address). A disabled user never matches. A
    hash made with older Argon2 parameters is upgraded on a successful login.
    """
    username = username.strip()
    with transaction(engine) as session:
        user = session.scalar(sa.select(User).where(User.username == username))
        ok = False
        try:
            ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if user is None or not ok or user.disabled_at is not None:
            record_audit(session, username[:120] or "?", "login_failed", source=source)
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        authority = session.get(Authority, user.authority_id)
        assert authority is not None  # foreign key
        record_audit(session, user.username, "login", target=user.authority_id, source=source)
        return _user_info(user, authority)


def create_user(
    engine: Engine,
    username: str,
    password: str,
    authority_id: str,
    role: str = "operator",
    display_name: str | None = None,
    actor: Actor | None = None,
    email: str | None = None,
) -> UserInfo:
    """Create the user, or update its password, authority, role and name if it exists.

    ``actor``: who does it (``policy``: USERS_MANAGE on the authority, and on the
    user's current one when it moves); ``None`` is the command line on the server,
    which bootstraps the first federal operator. ``username`` (at most
    ``MAX_USERNAME`` characters) and ``display_name`` (at most
    ``MAX_DISPLAY_NAME``, shown in every page header; default the username) are
    one line each, stored normalised (``tocsin.core.text.check_name``). The
    password follows :func:`tocsin.authorities.passwords.check_password`;
    changing an existing user's password ends its web sessions. Raises ValueError
    ``"<field>: <reason>"`` for any of them or an unknown ``role``, LookupError
    when the authority does not exist, ``access.Denied`` (audited); nothing is
    written then.
    """
    from tocsin.authorities.access import audited_denials, authority_facts, require
    from tocsin.authorities.passwords import check_password
    from tocsin.authorities.policy import Action, Target
    from tocsin.authorities.sessions import revoke_sessions

    # a TextInputError (a ValueError "<field>: <reason>") translated where it is shown
    username = check_name(username, "username", limit=MAX_USERNAME,
                          empty=N_("must not be empty"))
    display_name = check_name(display_name, "display_name", limit=MAX_DISPLAY_NAME,
                              required=False) or None
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password: {len(password):,} characters; at most {MAX_PASSWORD:,}")
    check_password(password, username)
    if role not in ROLES:
        raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    with audited_denials(engine), transaction(engine) as session:
        authority = session.get(Authority, authority_id)
        if authority is None:
            raise LookupError(f"authority_id: no authority {authority_id!r}")
        if role == "federal_operator" and authority.kind != "federal":
            raise ValueError("role: the federal operator belongs to the federal authority "
                             "(BE), not to " + authority.name(authority.language_list[0]))
        user = session.scalar(sa.select(User).where(User.username == username))
        if actor is not None:
            require(actor, Action.USERS_MANAGE, Target(authority=authority_facts(authority),
                                                       target_role=role), authority_id)
            if user is not None and user.authority_id != authority_id:
                current = session.get(Authority, user.authority_id)
                assert current is not None  # foreign key
                require(actor, Action.USERS_MANAGE,
                        Target(authority=authority_facts(current), target_role=user.role),
                        user.authority_id)
        action = "user.update"
        if user is None:
            user = User(username=username, display_name=display_name or username)
            session.add(user)
            action = "user.create"
        else:
            if display_name:
                user.display_name = display_name
            if not verify_password(user.password_hash, password):
                revoke_sessions(session, user.id)
        user.password_hash = hash_password(password)
        user.password_changed_at = utcnow()
        if email:
            user.email = email
        user.authority_id = authority_id
        user.role = role
        session.flush()
        record_audit(session, actor.username if actor else "cli", action,
                     target=f"user:{user.id}", source="cli" if actor is None else None,
                     detail={"authority_id": authority_id, "role": role},
                     personal={"username": username})
        return _user_info(user, authority)


def _load_authority(session: Session, authority_id: str) -> Authority:
    authority = session.get(Authority, authority_id)
    if authority is None:
        raise LookupError(f"authority_id: no authority {authority_id!r}")
    return authority


def sms_max_segments(engine: Engine, authority_id: str) -> int | None:
    """The authority's own maximum of SMS segments per message (F14), or None when it uses
    the deployment's default. Raises LookupError for an unknown authority."""
    with transaction(engine) as session:
        authority = session.get(Authority, authority_id)
        if authority is None:
            raise LookupError(f"authority_id: no authority {authority_id!r}")
        return authority.sms_max_segments


def get_authority(engine: Engine, authority_id: str) -> AuthorityInfo:
    """The authority ``authority_id``; raises LookupError if there is none."""
    with transaction(engine) as session:
        a = _load_authority(session, authority_id)
        return AuthorityInfo(
            id=a.id,
            kind=a.kind,
            name=_authority_name(a),
            languages=a.language_list,
            parent_id=a.parent_id,
            agreement_type=a.agreement_type,
            population=a.population,
            bbox=(a.min_lon, a.min_lat, a.max_lon, a.max_lat),
        )


def authority_feature(engine: Engine, authority_id: str) -> dict[str, Any]:
    """The authority's territory as a GeoJSON Feature (WGS84).

    Properties: ``id``, ``name`` (in its first official language),
    ``languages`` (list of ISO 639-1 codes). Raises LookupError.
    """
    with transaction(engine) as session:
        a = _load_authority(session, authority_id)
        return {
            "type": "Feature",
            "geometry": json.loads(a.territory),
            "properties": {"id": a.id, "name": _authority_name(a), "languages": a.language_list},
        }


def municipalities_geojson(engine: Engine, authority_id: str) -> dict[str, Any]:
    """The municipalities within the authority, as a GeoJSON FeatureCollection.

    A municipality gets itself; a province (or region) its children; the
    federal authority its grandchildren (provinces' municipalities) as well.
    Properties: ``nis``, ``name``. Features are sorted by name. Raises LookupError.
    """
    with transaction(engine) as session:
        a = _load_authority(session, authority_id)
        if a.kind == "municipality":
            rows = [a]
        else:
            child_ids = sa.select(Authority.id).where(Authority.parent_id == a.id)
            rows = list(
                session.scalars(
                    sa.select(Authority).where(
                        Authority.kind == "municipality",
                        sa.or_(
                            Authority.parent_id == a.id,
                            Authority.parent_id.in_(child_ids),
                        ),
                    )
                )
            )
        features = [
            {
                "type": "Feature",
                "geometry": json.loads(m.territory),
                "properties": {"nis": m.id, "name": _authority_name(m),
                           # every official name, for choosing by name (issue 9.2)
                           "names": sorted({n for n in (m.name_fr, m.name_nl, m.name_de) if n})},
            }
            for m in rows
        ]
    features.sort(key=lambda f: f["properties"]["name"])
    return {"type": "FeatureCollection", "features": features}
