"""Campaign table (F12, F13, F16, F19)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.core.db import Base, UTCDateTime, utcnow


class Campaign(Base):
    """One alert (or warning, information, test, exercise) sent by an authority.

    ``texts`` maps language -> base text (``{"fr": "...", "nl": "..."}``, in the
    order given; it is the SMS text). ``content`` maps language -> the complete
    per-channel content (``messages.content.CONTENT_FIELDS``: ``sms``, ``voice``,
    ``email_subject``, ``email_text``, ``email_html``, ``cap_event``,
    ``cap_headline``, ``cap_description``, ``cap_instruction``), every field
    filled at launch. ``area`` is the target GeoJSON geometry (WGS84) already
    clipped to the authority's territory; ``channels`` e.g. ``"sms,email,cap"``.
    ``status``: draft | pending_approval | scheduled | sending | paused | finished |
    cancelled | stopped (``campaigns.control``: a paused campaign sends nothing until
    resumed; a stopped one never sends its unsent deliveries, which become ``stopped``).
    Two-person rule: a live campaign of an authority that requires it waits in
    ``pending_approval`` until ``approved_by`` (never ``created_by``) approves it.
    Acting on behalf: ``acting_authority_id`` is the authority whose operator
    prepared it for ``authority_id`` (the federal operator on duty), and
    ``on_behalf_request`` records who asked, when and how.

    CAP 1.2 §3.2.1: ``msg_type`` Alert | Update | Cancel, ``scope`` Public |
    Restricted | Private. An Update or Cancel names the campaign it refers to in
    ``references_id`` and carries the CAP ``references`` string in
    ``cap_references``; an all-clear is an Update with ``response_type``
    ``AllClear``. ``scheduled_for`` (UTC) is when a scheduled campaign fans out;
    ``expires_at`` (UTC) is the CAP ``expires`` (the alert leaves active feeds).
    """

    __tablename__ = "campaign"
    # The CAP feeds walk one environment's campaigns newest first and filter them from
    # this index alone (F24, F36): on SQLite the columns added after ``cap_xml`` sit
    # behind its overflow pages, which a table read would have to walk for every row.
    __table_args__ = (sa.Index("ix_campaign_feed", "environment", "launched_at", "id", "scope",
                               "msg_type", "expires_at", "references_id"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    authority_id: Mapped[str] = mapped_column(sa.ForeignKey("authority.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    environment: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="draft", index=True)
    priority: Mapped[int] = mapped_column(sa.SmallInteger)
    channels: Mapped[str] = mapped_column(sa.String(64))
    texts: Mapped[dict[str, str]] = mapped_column(sa.JSON)
    content: Mapped[dict[str, dict[str, str]]] = mapped_column(
        sa.JSON, default=dict, server_default="{}")
    msg_type: Mapped[str] = mapped_column(sa.String(16), default="Alert", server_default="Alert")
    scope: Mapped[str] = mapped_column(sa.String(16), default="Public", server_default="Public")
    # No foreign key: adding one would make SQLite rebuild the campaign table (and
    # cascade its deliveries away) in the migration; services check the reference.
    references_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    cap_references: Mapped[str | None] = mapped_column(sa.Text)
    response_type: Mapped[str | None] = mapped_column(sa.String(32))
    template_id: Mapped[str | None] = mapped_column(sa.String(32))
    scheduled_for: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    voice_caller: Mapped[str | None] = mapped_column(sa.String(32))
    # Where a draft came from (an imported upstream CAP alert: its identifier, sender,
    # sent, msgType and the import warnings); None for campaigns composed in Tocsin.
    imported_from: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    area: Mapped[str] = mapped_column(sa.Text)
    area_name: Mapped[str] = mapped_column(sa.String(300))
    area_nis: Mapped[str | None] = mapped_column(sa.String(5))
    cap_params: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    cap_identifier: Mapped[str] = mapped_column(sa.String(200), unique=True)
    cap_xml: Mapped[str | None] = mapped_column(sa.Text)
    sms_source: Mapped[str] = mapped_column(sa.String(32))
    mail_from: Mapped[str] = mapped_column(sa.String(320))
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    fanout_done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Streaming fan-out (``dispatch.fanout``, decision 0014): the last subscriber id
    # whose deliveries are written (keyset), the deliveries written so far, and who
    # holds the fan-out until when (a crashed fan-out is continued by another worker).
    fanout_cursor: Mapped[int | None] = mapped_column(sa.BigInteger)
    fanout_count: Mapped[int | None] = mapped_column(sa.Integer)
    fanout_owner: Mapped[str | None] = mapped_column(sa.String(120))
    fanout_lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    approved_by: Mapped[str | None] = mapped_column(sa.String(120))
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acting_authority_id: Mapped[str | None] = mapped_column(sa.String(8))
    on_behalf_request: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Groups and contact lists reached (``campaigns.group_targets``), or None.
    targets: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    #: Location-based SMS (F18): the imminent danger as the operator states it to the
    #: mobile operators (their legal basis); None without ``lbsms``.
    location_justification: Mapped[str | None] = mapped_column(sa.Text)

    @property
    def channel_list(self) -> list[str]:
        return [c for c in self.channels.split(",") if c]


class CampaignMemberReach(Base):
    """How many recipients of a cooperation's campaign each member reached, by
    primary residence (F4: billing splits the campaign by these counts)."""

    __tablename__ = "campaign_member_reach"

    campaign_id: Mapped[str] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"),
                                             primary_key=True)
    authority_id: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    recipients: Mapped[int] = mapped_column(sa.Integer)
