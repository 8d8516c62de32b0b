"""Campaigns to groups and contact lists, beside or instead of an area (SPEC F11, F16).

A campaign may name contact lists and groups of its authority (or of its
cooperation, ``subscribers.groups.find_owned``). They are checked when it is
prepared and kept on the campaign (``campaign.targets``: ids and names), and
resolved whenever recipients are: at launch, or when a scheduled or held campaign
goes out. Recipients are the mobile numbers (SMS) and e-mail addresses of the
list's or static group's contacts, and, for a geographic group, every subscriber
registered in its area (clipped to what the authority may target). Everyone is
reached once per channel and address (SPEC F16): subscribers of the area first,
then the contacts, in the order named.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from shapely.geometry import shape
from sqlalchemy.orm import Session

from tocsin.authorities.models import Authority
from tocsin.campaigns import rules
from tocsin.campaigns.checks import CampaignInputError
from tocsin.campaigns.targeting import Recipient, _recipients_in_area
from tocsin.subscribers.contact_models import (
    Contact,
    ContactGroup,
    ContactGroupMember,
    ContactList,
)


def check_targets(session: Session, authority: Authority, lists: Sequence[str],
                  groups: Sequence[str]) -> dict[str, list[dict[str, Any]]] | None:
    """The named lists and groups as ``{"lists": [{"id", "name", "authority"}],
    "groups": [{"id", "name", "authority", "kind"}]}`` (``None`` when none is named).
    Raises CampaignInputError (field ``list`` / ``group``) for a name the authority
    and its cooperation do not have."""
    from tocsin.subscribers.contacts import ContactInputError
    from tocsin.subscribers.groups import find_owned

    names_l = list(dict.fromkeys(n.strip() for n in lists if n.strip()))
    names_g = list(dict.fromkeys(n.strip() for n in groups if n.strip()))
    if not names_l and not names_g:
        return None
    out: dict[str, list[dict[str, Any]]] = {"lists": [], "groups": []}
    try:
        for name in names_l:
            c = find_owned(session, ContactList, authority.id, name, "list")
            out["lists"].append({"id": c.id, "name": c.name, "authority": c.authority_id})
        for name in names_g:
            g = find_owned(session, ContactGroup, authority.id, name, "group")
            out["groups"].append({"id": g.id, "name": g.name, "authority": g.authority_id,
                                  "kind": g.kind})
    except ContactInputError as exc:
        raise CampaignInputError(exc.field, exc.reason) from None
    return out


def targets_label(targets: dict[str, list[dict[str, Any]]]) -> str:
    """The names of the groups and lists, as the campaign's area name when it has no
    area ("Volunteers, School heads")."""
    return ", ".join(t["name"] for t in (*targets.get("groups", ()), *targets.get("lists", ())))


def target_sizes(session: Session, targets: dict[str, list[dict[str, Any]]] | None
                 ) -> list[dict[str, Any]]:
    """What the confirmation names for each group and list: ``[{"type": "group" |
    "list", "name", "kind" (groups: static | geographic), "contacts"}]``, groups first.
    ``contacts``: the contacts of a list or static group; ``None`` for a geographic
    group (everyone registered in its area, found when sent)."""
    out: list[dict[str, Any]] = []
    for group in (targets or {}).get("groups", []):
        n = None if group.get("kind") == "geographic" else int(session.scalar(
            sa.select(sa.func.count()).select_from(ContactGroupMember)
            .where(ContactGroupMember.group_id == group["id"])) or 0)
        out.append({"type": "group", "name": group["name"], "kind": group.get("kind"),
                    "contacts": n})
    for item in (targets or {}).get("lists", []):
        n = int(session.scalar(sa.select(sa.func.count()).select_from(Contact)
                               .where(Contact.list_id == item["id"])) or 0)
        out.append({"type": "list", "name": item["name"], "kind": None, "contacts": n})
    return out


def target_recipients(session: Session, targets: dict[str, list[dict[str, Any]]] | None,
                      authority: Authority, channels: list[str], languages: list[str],
                      kind: str, already: Sequence[Recipient] = ()) -> list[Recipient]:
    """``already`` (the area's recipients) followed by the recipients of ``targets`` not
    yet in it: one per (channel, address). A contact gets their language if a text
    exists in it, else the authority's fallback order (``rules.choose_language``).
    Lists and groups deleted since the campaign was prepared are skipped."""
    out = list(already)
    if not targets:
        return out
    seen = {(r.channel, r.address) for r in out}
    fallback = rules.fallback_order(authority.language_fallback, authority.language_list)

    def add(rows: Sequence[Any]) -> None:
        for _name, mobile, email, language in rows:
            for channel, address in (("sms", mobile), ("email", email)):
                if address and channel in channels and (channel, address) not in seen:
                    seen.add((channel, address))
                    out.append(Recipient(channel, address,
                                         rules.choose_language(language, fallback, languages),
                                         language, None))

    columns = (Contact.name, Contact.mobile, Contact.email, Contact.language)
    for group in targets.get("groups", []):
        g = session.get(ContactGroup, group["id"])
        if g is None:
            continue
        if g.kind == "geographic" and g.area:
            area = _clipped(session, authority, g)
            for r in _recipients_in_area(session, area, authority, channels, languages, kind):
                if (r.channel, r.address) not in seen:
                    seen.add((r.channel, r.address))
                    out.append(r)
            continue
        add(session.execute(
            sa.select(*columns).join(ContactGroupMember,
                                     ContactGroupMember.contact_id == Contact.id)
            .where(ContactGroupMember.group_id == g.id)
            .order_by(Contact.list_id, Contact.source_row, Contact.id)).all())
    for item in targets.get("lists", []):
        add(session.execute(sa.select(*columns).where(Contact.list_id == item["id"])
                            .order_by(Contact.source_row, Contact.id)).all())
    return out


def _clipped(session: Session, authority: Authority, group: ContactGroup) -> Any:
    """A geographic group's area clipped to what ``authority`` may target (SPEC F3)."""
    from tocsin.campaigns.checks import _territory
    from tocsin.geo.areas import AreaError, clip_to_territory

    territory, label = _territory(session, authority)
    try:
        return clip_to_territory(shape(json.loads(group.area or "{}")), territory, label,
                                 field="group")
    except AreaError as exc:
        raise CampaignInputError("group", f"{group.name!r}: {exc.reason}") from None
