"""Use cases: groups of contacts, static or geographic (SPEC F11), and who they reach.

A group belongs to one authority and is shared within its structural cooperation
(SPEC F4): a name is looked up among the authority's own groups first, then its
cooperation members'. A static group holds contacts of the contact lists the
authority may use; a geographic group holds an area (GeoJSON, WGS84) and reaches
every registered subscriber living in it, resolved when a campaign is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials, cooperation_of
from tocsin.authorities.policy import Action, Actor
from tocsin.authorities.services import record_audit
from tocsin.core.db import read_transaction, transaction, utcnow
from tocsin.subscribers.contact_models import (
    Contact,
    ContactGroup,
    ContactGroupMember,
    ContactList,
)
from tocsin.subscribers.contacts import ContactInputError, _require, check_list_name

_Owned = TypeVar("_Owned", ContactList, ContactGroup)


def find_owned(session: Session, model: type[_Owned], authority_id: str, name: str,
               field: str) -> _Owned:
    """The list or group ``name`` of ``authority_id``, else of its one cooperation
    member that has it. Raises ContactInputError(``field``) when none has it or
    several members do (naming them)."""
    own = session.scalar(sa.select(model).where(model.authority_id == authority_id,
                                                model.name == name))
    if own is not None:
        return own
    members = cooperation_of(session, authority_id)
    found = list(session.scalars(sa.select(model).where(
        model.authority_id.in_(members), model.name == name))) if members else []
    what = "list" if model is ContactList else "group"
    if not found:
        raise ContactInputError(field, f"no {what} {name!r} of authority {authority_id} "
                                       "or its cooperation")
    if len(found) > 1:
        owners = ", ".join(sorted(f.authority_id for f in found))
        raise ContactInputError(field, f"several members of the cooperation have a {what} "
                                       f"{name!r} ({owners}): rename one")
    return found[0]


def create_group(engine: Engine, authority_id: str, name: str, *,
                 area_geojson: str | bytes | dict[str, Any] | None = None,
                 actor: Actor | None = None, source: str = "cli") -> dict[str, Any]:
    """Create group ``name`` of ``authority_id``: static, or geographic with
    ``area_geojson`` (Polygon/MultiPolygon, WGS84; ``geo.areas.parse_area_geojson``).
    Returns ``{"name", "kind", "authority"}``. Needs CONTACTS_MANAGE. Raises
    ContactInputError (``group``: the name is taken or bad; ``area``), Denied."""
    from shapely.geometry import mapping

    from tocsin.geo.areas import AreaError, parse_area_geojson

    name = _group_name(name)
    area = None
    if area_geojson is not None:
        try:
            area = json.dumps(mapping(parse_area_geojson(area_geojson)))
        except AreaError as exc:
            raise ContactInputError(exc.field, exc.reason) from None
    with audited_denials(engine, source), transaction(engine) as s:
        who = _require(s, actor, authority_id, Action.CONTACTS_MANAGE)
        if s.scalar(sa.select(ContactGroup.id).where(ContactGroup.authority_id == authority_id,
                                                     ContactGroup.name == name)):
            raise ContactInputError("group", f"authority {authority_id} already has a group "
                                             f"{name!r}")
        kind = "geographic" if area is not None else "static"
        group = ContactGroup(authority_id=authority_id, name=name, kind=kind, area=area,
                             created_at=utcnow())
        s.add(group)
        s.flush()
        record_audit(s, who.username, "group.create", target=str(group.id), source=source,
                     detail={"authority": authority_id, "group": name, "kind": kind})
        return {"name": name, "kind": kind, "authority": authority_id}


def delete_group(engine: Engine, authority_id: str, name: str, *, actor: Actor | None = None,
                 source: str = "cli") -> dict[str, Any]:
    """Delete group ``name`` (its contacts stay in their lists). Returns ``{"name",
    "authority", "members"}``. Needs CONTACTS_MANAGE on the group's owner."""
    with audited_denials(engine, source), transaction(engine) as s:
        who = _require(s, actor, authority_id, Action.CONTACTS_MANAGE)
        group = find_owned(s, ContactGroup, authority_id, _group_name(name), "group")
        members = s.execute(sa.delete(ContactGroupMember).where(
            ContactGroupMember.group_id == group.id))
        s.delete(group)
        record_audit(s, who.username, "group.delete", target=str(group.id), source=source,
                     detail={"authority": group.authority_id, "group": group.name})
        return {"name": group.name, "authority": group.authority_id,
                "members": int(getattr(members, "rowcount", 0) or 0)}


def change_members(engine: Engine, authority_id: str, name: str, list_name: str,
                   keys: Sequence[str] = (), *, remove: bool = False,
                   actor: Actor | None = None, source: str = "cli") -> dict[str, Any]:
    """Add (or with ``remove`` take out) contacts of list ``list_name`` to static group
    ``name``: those whose mobile number or e-mail address is in ``keys`` (normalised as
    an import does), or the whole list when ``keys`` is empty. Returns ``{"group",
    "changed", "members"}``. Raises ContactInputError (``group``: geographic or
    unknown; ``list``; ``contact``: a key not in the list), Denied."""
    from tocsin.subscribers.contact_rules import repair_phone
    from tocsin.subscribers.rules import InvalidValue, normalise_email

    wanted: list[str] = []
    for key in keys:
        try:
            wanted.append(normalise_email(key) if "@" in key else repair_phone(key)[0])
        except InvalidValue as exc:
            raise ContactInputError("contact", f"{key!r}: {exc.reason}") from None
    with audited_denials(engine, source), transaction(engine) as s:
        who = _require(s, actor, authority_id, Action.CONTACTS_MANAGE)
        group = find_owned(s, ContactGroup, authority_id, _group_name(name), "group")
        if group.kind != "static":
            raise ContactInputError("group", f"{group.name!r} is a geographic group: its "
                                             "members are the people living in its area")
        contact_list = find_owned(s, ContactList, authority_id, check_list_name(list_name),
                                  "list")
        query = sa.select(Contact.id, Contact.mobile, Contact.email).where(
            Contact.list_id == contact_list.id)
        if wanted:
            query = query.where(sa.or_(Contact.mobile.in_(wanted), Contact.email.in_(wanted)))
        rows = s.execute(query).all()
        found = {r[0]: r for r in rows}
        missing = sorted(set(wanted) - {v for r in rows for v in (r[1], r[2]) if v})
        if missing:
            raise ContactInputError("contact", f"not in list {contact_list.name!r}: "
                                               + ", ".join(missing[:10]))
        current = set(s.scalars(sa.select(ContactGroupMember.contact_id).where(
            ContactGroupMember.group_id == group.id)))
        if remove:
            ids = [i for i in found if i in current]
            for start in range(0, len(ids), 500):
                s.execute(sa.delete(ContactGroupMember).where(
                    ContactGroupMember.group_id == group.id,
                    ContactGroupMember.contact_id.in_(ids[start:start + 500])))
        else:
            ids = [i for i in found if i not in current]
            if ids:
                s.execute(sa.insert(ContactGroupMember),
                          [{"group_id": group.id, "contact_id": i} for i in ids])
        record_audit(s, who.username, "group.remove" if remove else "group.add",
                     target=str(group.id), source=source,
                     detail={"authority": group.authority_id, "group": group.name,
                             "list": contact_list.name, "contacts": len(ids)})
        members = len(current) + (-len(ids) if remove else len(ids))
        return {"group": group.name, "changed": len(ids), "members": members}


def list_groups(engine: Engine, authority_id: str, actor: Actor | None = None
                ) -> list[dict[str, Any]]:
    """The groups the authority may use (its own, then its cooperation members'), as
    ``[{"name", "kind", "authority", "members"}]`` (``members``: contacts of a static
    group; ``None`` for a geographic one, resolved when sent). Needs CONTACTS_READ."""
    with audited_denials(engine), read_transaction(engine) as s:
        _require(s, actor, authority_id, Action.CONTACTS_READ)
        owners = [authority_id, *sorted(cooperation_of(s, authority_id))]
        count = sa.select(sa.func.count()).where(
            ContactGroupMember.group_id == ContactGroup.id).scalar_subquery()
        rows = list(s.execute(sa.select(ContactGroup, count).where(
            ContactGroup.authority_id.in_(owners))).all())
        order = {a: i for i, a in enumerate(owners)}
        rows.sort(key=lambda r: (order[r[0].authority_id], r[0].name))
        return [{"name": g.name, "kind": g.kind, "authority": g.authority_id,
                 "members": n if g.kind == "static" else None} for g, n in rows]


def group_members(engine: Engine, authority_id: str, name: str,
                  actor: Actor | None = None) -> dict[str, Any]:
    """Group ``name`` and its members: ``{"name", "kind", "authority", "area" (GeoJSON or
    None), "members": [{"list", "name", "mobile", "email", "language"}]}``. Needs
    CONTACTS_READ."""
    with audited_denials(engine), read_transaction(engine) as s:
        _require(s, actor, authority_id, Action.CONTACTS_READ)
        group = find_owned(s, ContactGroup, authority_id, _group_name(name), "group")
        rows = s.execute(
            sa.select(ContactList.name, Contact.name, Contact.mobile, Contact.email,
                      Contact.language)
            .join(Contact, Contact.list_id == ContactList.id)
            .join(ContactGroupMember, ContactGroupMember.contact_id == Contact.id)
            .where(ContactGroupMember.group_id == group.id)
            .order_by(ContactList.name, Contact.source_row, Contact.id)).all()
        return {"name": group.name, "kind": group.kind, "authority": group.authority_id,
                "area": json.loads(group.area) if group.area else None,
                "members": [{"list": r[0], "name": r[1], "mobile": r[2], "email": r[3],
                             "language": r[4]} for r in rows]}


def _group_name(name: str) -> str:
    try:
        return check_list_name(name)
    except ContactInputError as exc:
        raise ContactInputError("group", exc.reason.replace("list", "group")) from None
