"""Reservations' own tables.

Configuration (services, sites, activities, the commune's calendar, school years, closures and
openings), enrolments, baskets, bookings, the waiting list, cancellations, attendance locks,
and ``occupancy``: one row per activity and day, the row every change of places on that day
locks (``SELECT ... FOR UPDATE`` on PostgreSQL), with the count of places taken.

Amounts are integer cents. Times are UTC (SQLite gives them back naive: see ``utc``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from services.common.households import household_tables
from services.common.outbox import messaging_tables
from services.common.tenancy import communes_table


class Base(DeclarativeBase):
    metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


def now_utc() -> datetime:
    return datetime.now(UTC)


def utc(moment: datetime | None) -> datetime | None:
    """An aware UTC datetime from what the database gave back."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


Id = String(36)


class Service(Base):
    """A service of the commune: restauration scolaire, accueil périscolaire..."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("commune_id", "name", name="uq_services_commune_name"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id, index=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # automatic: an enrolment is validated at once; validated: an agent decides.
    enrolment_mode: Mapped[str] = mapped_column(String(16), default="automatic")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)


class Site(Base):
    """Where activities take place: a school, a leisure centre."""

    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("commune_id", "name", name="uq_sites_commune_name"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id, index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)


class Activity(Base):
    """What is booked for one day (a "prestation"): REPAS, garderie du matin, journée..."""

    __tablename__ = "activities"
    __table_args__ = (UniqueConstraint("site_id", "code", name="uq_activities_site_code"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id, index=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(200))
    payment_mode: Mapped[str] = mapped_column(String(10))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    waiting_list_size: Mapped[int] = mapped_column(Integer, default=0)
    waiting_list_mode: Mapped[str] = mapped_column(String(16), default="automatic")
    offer_hours: Mapped[int] = mapped_column(Integer, default=24)
    min_age: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_age: Mapped[int | None] = mapped_column(Integer, nullable=True)
    min_class: Mapped[str | None] = mapped_column(String(8), nullable=True)
    max_class: Mapped[str | None] = mapped_column(String(8), nullable=True)
    booking_deadline: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    cancellation_deadline: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    late_cancellation: Mapped[str] = mapped_column(String(10), default="refuse")
    weekdays: Mapped[list] = mapped_column(JSON, default=list)
    periods: Mapped[list] = mapped_column(JSON, default=list)
    school_holidays: Mapped[str] = mapped_column(String(8), default="closed")
    public_holidays: Mapped[str] = mapped_column(String(8), default="closed")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc,
                                                 onupdate=now_utc)

    service: Mapped[Service] = relationship(lazy="joined")
    site: Mapped[Site] = relationship(lazy="joined")


class CommuneCalendarRow(Base):
    """The commune's school-holiday zone (A, B or C)."""

    __tablename__ = "commune_calendars"

    commune_id: Mapped[str] = mapped_column(Id, primary_key=True)
    zone: Mapped[str] = mapped_column(String(1), default="C")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc,
                                                 onupdate=now_utc)


class SchoolYearRow(Base):
    __tablename__ = "school_years"
    __table_args__ = (UniqueConstraint("commune_id", "label", name="uq_school_years_label"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id, index=True)
    label: Mapped[str] = mapped_column(String(20))
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)


class CalendarExceptionRow(Base):
    """A closure or an opening the commune decided, for a span of days and a scope."""

    __tablename__ = "calendar_exceptions"

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # closure | opening
    starts_on: Mapped[dt.date] = mapped_column(Date)
    ends_on: Mapped[dt.date] = mapped_column(Date)
    label: Mapped[str] = mapped_column(String(200))
    service_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    site_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    activity_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)


class Enrolment(Base):
    """A child's enrolment (inscription) in a service for a school year."""

    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("child_id", "service_id", "school_year_id", name="uq_enrolments"),
        Index("ix_enrolments_commune_status", "commune_id", "status"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id)
    family_id: Mapped[str] = mapped_column(Id, index=True)
    child_id: Mapped[str] = mapped_column(Id, index=True)
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id"))
    school_year_id: Mapped[str] = mapped_column(ForeignKey("school_years.id"))
    status: Mapped[str] = mapped_column(String(10))  # pending | validated | refused
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


OPEN = "open"


class Basket(Base):
    """A family's basket in a commune: lines until checkout, then the checkout's record."""

    __tablename__ = "baskets"
    __table_args__ = (
        # One open basket per family and commune.
        Index("uq_baskets_open", "family_id", "commune_id", unique=True,
              postgresql_where=text("status = 'open'"), sqlite_where=text("status = 'open'")),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id)
    family_id: Mapped[str] = mapped_column(Id, index=True)
    # open | checked_out (holds waiting for payment) | paid | confirmed (nothing to pay)
    # | expired | failed
    status: Mapped[str] = mapped_column(String(12), default=OPEN)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                            nullable=True)
    amount_due_cents: Mapped[int] = mapped_column(Integer, default=0)
    payment_id: Mapped[str | None] = mapped_column(Id, nullable=True, index=True)
    payment_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    invoice_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    return_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    items: Mapped[list[BasketItem]] = relationship(
        back_populates="basket", cascade="all, delete-orphan", order_by="BasketItem.created_at")


class BasketItem(Base):
    __tablename__ = "basket_items"

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    basket_id: Mapped[str] = mapped_column(ForeignKey("baskets.id", ondelete="CASCADE"),
                                           index=True)
    child_id: Mapped[str] = mapped_column(Id)
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    dates: Mapped[list] = mapped_column(JSON)  # ISO dates, sorted
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)

    basket: Mapped[Basket] = relationship(back_populates="items")


class Booking(Base):
    """One child, one activity, one day."""

    __tablename__ = "bookings"
    __table_args__ = (
        # Never two live bookings of one child for one activity and day.
        Index("uq_bookings_live", "child_id", "activity_id", "date", unique=True,
              postgresql_where=text("status IN ('pending_payment', 'confirmed')"),
              sqlite_where=text("status IN ('pending_payment', 'confirmed')")),
        Index("ix_bookings_child_date", "child_id", "date"),
        Index("ix_bookings_activity_date_status", "activity_id", "date", "status"),
        Index("ix_bookings_status_hold", "status", "hold_expires_at"),
        Index("ix_bookings_family_date", "family_id", "date"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id)
    family_id: Mapped[str] = mapped_column(Id)
    child_id: Mapped[str] = mapped_column(Id)
    child_first_name: Mapped[str] = mapped_column(String(100))
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    # pending_payment | confirmed | cancelled | released
    status: Mapped[str] = mapped_column(String(16))
    payment_mode: Mapped[str] = mapped_column(String(10))
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    basket_id: Mapped[str | None] = mapped_column(Id, nullable=True, index=True)
    hold_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="basket")  # basket | waiting_list
    # | attendance (an unexpected child) | seed
    attendance: Mapped[str | None] = mapped_column(String(8), nullable=True)
    attendance_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                                    nullable=True)
    attendance_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    cancellation_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    refund_cents: Mapped[int] = mapped_column(Integer, default=0)


class Occupancy(Base):
    """The lock row of one activity and day, with the places taken there."""

    __tablename__ = "occupancy"

    activity_id: Mapped[str] = mapped_column(Id, primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    # Bookings pending payment or confirmed, plus waiting-list offers not yet answered.
    taken: Mapped[int] = mapped_column(Integer, default=0)
    waiting: Mapped[int] = mapped_column(Integer, default=0)
    # The rank given to the last child put in line (taken under this row's lock: exact FIFO).
    last_rank: Mapped[int] = mapped_column(Integer, default=0)


class WaitingEntry(Base):
    """A child in line for a full activity on one day."""

    __tablename__ = "waiting_list"
    __table_args__ = (
        Index("uq_waiting_in_line", "child_id", "activity_id", "date", unique=True,
              postgresql_where=text("status IN ('waiting', 'offered')"),
              sqlite_where=text("status IN ('waiting', 'offered')")),
        Index("ix_waiting_activity_date_status", "activity_id", "date", "status", "rank"),
        Index("ix_waiting_status_offer", "status", "offer_expires_at"),
    )

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id)
    family_id: Mapped[str] = mapped_column(Id, index=True)
    child_id: Mapped[str] = mapped_column(Id)
    child_first_name: Mapped[str] = mapped_column(String(100))
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # waiting | offered | promoted | lapsed
    # | withdrawn
    rank: Mapped[int] = mapped_column(Integer)  # order of arrival in this day's line
    basket_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    offered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                              nullable=True)
    booking_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Cancellation(Base):
    """A family's cancellation of bookings of one child for one activity: done at once, or a
    request an agent accepts or refuses."""

    __tablename__ = "cancellations"
    __table_args__ = (Index("ix_cancellations_commune_status", "commune_id", "status",
                            "created_at"),)

    id: Mapped[str] = mapped_column(Id, primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(Id)
    family_id: Mapped[str] = mapped_column(Id, index=True)
    child_id: Mapped[str] = mapped_column(Id)
    child_first_name: Mapped[str] = mapped_column(String(100))
    activity_id: Mapped[str] = mapped_column(ForeignKey("activities.id"))
    booking_ids: Mapped[list] = mapped_column(JSON)
    dates: Mapped[list] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # done | pending | accepted | refused
    within_deadline: Mapped[bool] = mapped_column(Boolean)
    refund_cents: Mapped[int] = mapped_column(Integer, default=0)
    requested_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_message: Mapped[str | None] = mapped_column(Text, nullable=True)


class AttendanceLock(Base):
    """A month whose attendance can no longer change (it has been invoiced)."""

    __tablename__ = "attendance_locks"

    commune_id: Mapped[str] = mapped_column(Id, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    locked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=now_utc)
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)


communes = communes_table(Base.metadata)
households, household_communes, children = household_tables(Base.metadata)
outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
