"""Tables of an authority's own contacts: contact lists, groups and remembered
column mappings (SPEC F10, F11).

A contact list belongs to one authority and is replaced as a whole by each import
(``subscribers.contacts.import_contacts``). A group is static (chosen contacts of
the authority's lists) or geographic (an area drawn on the map: every registered
subscriber living in it, resolved when a campaign is sent). Both are shared within
the authority's structural cooperation (SPEC F4, F6).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow

GROUP_KINDS = ("static", "geographic")


class ContactList(Base):
    """A named list of contacts of ``authority_id`` (hospitals, school heads, volunteers)."""

    __tablename__ = "contact_list"
    __table_args__ = (sa.UniqueConstraint("authority_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[str] = mapped_column(
        sa.ForeignKey("authority.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    """One person of a contact list.

    ``key`` identifies the person within the list across imports: the mobile
    number (E.164) when there is one, else the e-mail address. ``mobile`` is
    E.164, ``email`` normalised (``subscribers.rules.normalise_email``),
    ``language`` ISO 639-1 (fr, nl, de, en) or ``None`` (the authority's first
    language then applies). ``source_row``: the spreadsheet row it was read from.
    """

    __tablename__ = "contact"
    __table_args__ = (sa.UniqueConstraint("list_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contact_list.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(sa.String(320))
    name: Mapped[str | None] = mapped_column(sa.String(200))
    mobile: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    language: Mapped[str | None] = mapped_column(sa.String(2))
    source_row: Mapped[int | None] = mapped_column(sa.Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactGroup(Base):
    """A group of ``authority_id``: ``kind`` ``static`` (members in
    ``contact_group_member``) or ``geographic`` (``area``: a GeoJSON
    Polygon/MultiPolygon in WGS84; every registered subscriber living in it,
    resolved at send time)."""

    __tablename__ = "contact_group"
    __table_args__ = (sa.UniqueConstraint("authority_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authority_id: Mapped[str] = mapped_column(
        sa.ForeignKey("authority.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(16), default="static")
    area: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactGroupMember(Base):
    """A contact in a static group (gone with the contact when a re-import removes it)."""

    __tablename__ = "contact_group_member"

    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contact_group.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, index=True)


class ContactUpload(Base):
    """A file uploaded on the import page, kept between its steps (mapping, preview,
    confirm) so that any web process can carry on; removed once imported, and after
    ``contacts.UPLOAD_TTL`` anyway. ``token`` is random (the page's address)."""

    __tablename__ = "contact_upload"

    token: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    authority_id: Mapped[str] = mapped_column(
        sa.ForeignKey("authority.id", ondelete="CASCADE"))
    username: Mapped[str] = mapped_column(sa.String(120))
    list_name: Mapped[str] = mapped_column(sa.String(100))
    filename: Mapped[str] = mapped_column(sa.String(200))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class ContactColumnMapping(Base):
    """A spreadsheet header an authority mapped once to a contact field
    (``header`` as ``contact_rules.header_key`` folds it), reused by later imports."""

    __tablename__ = "contact_column_mapping"

    authority_id: Mapped[str] = mapped_column(
        sa.ForeignKey("authority.id", ondelete="CASCADE"), primary_key=True)
    header: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    field: Mapped[str] = mapped_column(sa.String(32))
