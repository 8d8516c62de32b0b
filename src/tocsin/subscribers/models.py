"""Tables of national subscriber registrations: contact points and addresses (F7, F8)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tocsin.core.db import Base, UTCDateTime, utcnow

MAX_ADDRESSES = 5  # SPEC F7: up to 5 addresses per subscriber


class Subscriber(Base):
    """A citizen's registration. ``language`` is an ISO 639-1 code (fr, nl, de, en)."""

    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    language: Mapped[str] = mapped_column(sa.String(2))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact_points: Mapped[list[ContactPoint]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )
    addresses: Mapped[list[Address]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Address.position",
    )


class ContactPoint(Base):
    """A phone number (E.164) or e-mail address of a subscriber.

    ``kind`` is ``mobile``, ``landline`` (reached by voice calls only) or ``email``;
    ``voice``: a mobile that also takes voice calls (SPEC F7, F22). Nothing is sent to
    a contact point before ``verified_at`` is set (F8), nor after ``invalid_at`` is set (a hard
    bounce, RFC 3463 5.x.x; ``invalid_reason`` says which). General-interest
    information goes only to contact points with ``info_opt_in`` (F8, F12).
    """

    __tablename__ = "contact_point"
    __table_args__ = (sa.UniqueConstraint("subscriber_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.String(320), index=True)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    info_opt_in: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                              server_default=sa.false())
    invalid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    invalid_reason: Mapped[str | None] = mapped_column(sa.String(300))
    voice: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())

    subscriber: Mapped[Subscriber] = relationship(back_populates="contact_points")


class Address(Base):
    """One of a subscriber's addresses, geocoded in WGS84 (degrees).

    ``position`` 0 is the primary residence (F7).
    """

    __tablename__ = "address"
    __table_args__ = (sa.UniqueConstraint("subscriber_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriber.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    lat: Mapped[float] = mapped_column(sa.Float)
    lon: Mapped[float] = mapped_column(sa.Float)
    label: Mapped[str | None] = mapped_column(sa.String(300))
    nis: Mapped[str | None] = mapped_column(sa.String(5))

    subscriber: Mapped[Subscriber] = relationship(back_populates="addresses")

    @property
    def is_primary(self) -> bool:
        return self.position == 0
