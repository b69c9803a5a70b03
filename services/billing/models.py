"""Billing's own tables.

Amounts are stored as integer cents (``Money``), exact on SQLite and PostgreSQL alike, and read
back as ``Decimal`` with two places. Times are UTC (``UTCDateTime``). Ids are UUID strings.

Read models fed by events: ``communes`` (tenancy), ``households`` / ``household_communes`` /
``children`` (households), ``booked_days`` (reservations.booking.*), ``attendance``
(reservations.attendance.recorded). Billing's own data: settings, tariffs, quotients, runs,
counters, invoices and their lines, credit notes, payments, callbacks, allocations.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.common.households import household_tables
from services.common.outbox import messaging_tables
from services.common.tenancy import communes_table

CENT = Decimal("0.01")


class Base(DeclarativeBase):
    metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A point in time stored in UTC, always read back aware (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Money(TypeDecorator):
    """Euros as ``Decimal`` with two places, stored as integer cents."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        cents = Decimal(value) * 100
        if cents != cents.to_integral_value():
            raise ValueError(f"montant non arrondi au centime : {value}")
        return int(cents)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(CENT)


# --- configuration by agents ------------------------------------------------------------------


class BillingSettings(Base):
    """A commune's invoicing rules (defaults apply until an agent changes them)."""

    __tablename__ = "billing_settings"

    commune_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    bill_unjustified_absence: Mapped[bool] = mapped_column(Boolean, default=True)
    bill_unrecorded_bookings: Mapped[bool] = mapped_column(Boolean, default=True)
    due_days: Mapped[int] = mapped_column(Integer, default=30)
    online_payment_days: Mapped[int] = mapped_column(Integer, default=45)
    payment_instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Tariff(Base):
    """The price of one activity in one commune: a unit price, or brackets by quotient familial
    (``brackets``: ``[{"max_quotient": 600, "price": "2.10"}, ..., {"max_quotient": null,
    "price": "4.10"}]``), a reduced rate from the n-th child, a surcharge for unbooked days."""

    __tablename__ = "tariffs"
    __table_args__ = (
        UniqueConstraint("commune_id", "activity_code", name="uq_tariffs_commune_code"),
        Index("ix_tariffs_commune_activity", "commune_id", "activity_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36))
    activity_code: Mapped[str] = mapped_column(String(40))
    activity_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    label: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    brackets: Mapped[list] = mapped_column(JSON, default=list)
    reduced_from_child: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Percentage off, in hundredths of a percent (2000 = 20 %).
    reduced_rate_bp: Mapped[int] = mapped_column(Integer, default=0)
    unbooked_surcharge: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HouseholdQuotient(Base):
    """The quotient familial a household declared to a commune (null: none given)."""

    __tablename__ = "household_quotients"

    commune_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    quotient: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- read models fed by reservations -------------------------------------------------------------


class BookedDay(Base):
    """One booking (one child, activity and day), as reservations confirmed or cancelled it.

    ``status``: ``confirmed`` or ``cancelled`` (final: a late confirmation never revives it).
    """

    __tablename__ = "booked_days"
    __table_args__ = (
        Index("ix_booked_days_commune_date", "commune_id", "date"),
        Index("ix_booked_days_child_activity_date", "child_id", "activity_id", "date"),
    )

    booking_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    commune_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str] = mapped_column(String(36))
    child_id: Mapped[str] = mapped_column(String(36))
    activity_id: Mapped[str] = mapped_column(String(36))
    date: Mapped[date] = mapped_column(Date)
    payment_mode: Mapped[str] = mapped_column(String(16))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    child_first_name: Mapped[str] = mapped_column(String(100))
    activity_name: Mapped[str] = mapped_column(String(200))
    basket_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attendance(Base):
    """The latest pointage of one child, activity and day (the latest ``recorded_at`` wins)."""

    __tablename__ = "attendance"
    __table_args__ = (Index("ix_attendance_commune_date", "commune_id", "date"),)

    child_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    activity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    commune_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str] = mapped_column(String(36))
    booking_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


# --- invoicing ---------------------------------------------------------------------------------


class InvoicingRun(Base):
    """A commune's monthly invoicing ("campagne"): a draft agents review, then finalised.

    One per commune and period: asking again for a period refreshes its draft, or answers the
    finalised run unchanged.
    """

    __tablename__ = "invoicing_runs"
    __table_args__ = (UniqueConstraint("commune_id", "period", name="uq_runs_commune_period"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36))
    period: Mapped[str] = mapped_column(String(7))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    draft: Mapped[dict] = mapped_column(JSON, default=dict)
    total: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    invoice_count: Mapped[int] = mapped_column(Integer, default=0)
    anomaly_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    finalised_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RunDraft(Base):
    """One household of a run's draft: its invoice-to-be (lines as shown to the agent) and its
    anomalies. One row per household, written chunk by chunk, so that neither the draft nor the
    finalisation ever holds a whole commune's month in memory."""

    __tablename__ = "run_drafts"
    # Finalisation numbers the invoices in this order (family name, then id).
    __table_args__ = (Index("ix_run_drafts_run_name", "run_id", "family_name", "family_id"),)

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_name: Mapped[str] = mapped_column(String(200))
    total: Mapped[Decimal] = mapped_column(Money)
    line_count: Mapped[int] = mapped_column(Integer)  # 0: anomalies only, no invoice
    lines: Mapped[list] = mapped_column(JSON, default=list)
    anomalies: Mapped[list] = mapped_column(JSON, default=list)


class Counter(Base):
    """The last number given, per commune, year and kind (``invoice``, ``credit_note``).

    Locked ``FOR UPDATE`` by whoever numbers: numbers are given in the transaction that uses
    them, so there is neither a gap (a rollback gives them back) nor a duplicate.
    """

    __tablename__ = "counters"

    commune_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("commune_id", "number", name="uq_invoices_commune_number"),
        UniqueConstraint("run_id", "family_id", name="uq_invoices_run_family"),
        UniqueConstraint("basket_id", name="uq_invoices_basket"),
        Index("ix_invoices_family_commune", "family_id", "commune_id", "issue_date"),
        Index("ix_invoices_commune_period", "commune_id", "period"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    payer_name: Mapped[str] = mapped_column(String(200))
    number: Mapped[str] = mapped_column(String(32))
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # monthly | basket | manual
    label: Mapped[str] = mapped_column(String(200))
    period: Mapped[str | None] = mapped_column(String(7), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    basket_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    payment_deadline: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="open")
    total: Mapped[Decimal] = mapped_column(Money)
    paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    credited: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def remaining(self) -> Decimal:
        if self.status == "cancelled":
            return Decimal("0.00")
        return max(self.total - self.paid - self.credited, Decimal("0.00"))


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"
    __table_args__ = (Index("ix_invoice_lines_invoice", "invoice_id", "position"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(String(36))
    position: Mapped[int] = mapped_column(Integer)
    child_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    child_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    activity_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    activity_name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(20), default="jours")
    unit_price: Mapped[Decimal] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)
    settled: Mapped[Decimal] = mapped_column(Money, default=Decimal("0.00"))
    dates: Mapped[list] = mapped_column(JSON, default=list)
    booking_ids: Mapped[list] = mapped_column(JSON, default=list)


class CreditNote(Base):
    """An avoir: money the commune owes the household, used on its invoices or refunded."""

    __tablename__ = "credit_notes"
    __table_args__ = (
        UniqueConstraint("commune_id", "number", name="uq_credit_notes_commune_number"),
        Index("ix_credit_notes_family_commune", "family_id", "commune_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str] = mapped_column(String(36))
    number: Mapped[str] = mapped_column(String(32))
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(32))
    origin_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    invoice_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str] = mapped_column(String(500))
    amount: Mapped[Decimal] = mapped_column(Money)
    remaining: Mapped[Decimal] = mapped_column(Money)
    # available (credit left to use), used (all of it used), to_refund (to pay back)
    status: Mapped[str] = mapped_column(String(16), default="available")
    issue_date: Mapped[date] = mapped_column(Date)
    lines: Mapped[list] = mapped_column(JSON, default=list)
    booking_ids: Mapped[list] = mapped_column(JSON, default=list)
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefundedBooking(Base):
    """A booking already refunded by a credit note: never refunded twice."""

    __tablename__ = "refunded_bookings"

    booking_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    credit_note_id: Mapped[str] = mapped_column(String(36))


# --- payments ------------------------------------------------------------------------------------


class Payment(Base):
    """Money asked from a household for one or several invoices (or a basket).

    ``status``: created, waiting (the provider's page was opened), paid, denied, cancelled,
    expired, error. ``paid`` is final; a failed payment may still become paid when the provider
    reports the money late (it is never lost).
    """

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("basket_id", name="uq_payments_basket"),
        Index("ix_payments_status_created", "status", "created_at"),
        Index("ix_payments_commune_created", "commune_id", "created_at"),
        Index("ix_payments_family", "family_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    provider: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(16), default="online")
    status: Mapped[str] = mapped_column(String(16), default="created")
    amount: Mapped[Decimal] = mapped_column(Money)
    return_url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    basket_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    provider_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    recorded_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PaymentInvoice(Base):
    """What a payment was asked for, invoice by invoice (their remaining amounts then)."""

    __tablename__ = "payment_invoices"

    payment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[Decimal] = mapped_column(Money)


class PaymentCallback(Base):
    """Every notification received from a provider, raw, verified or not (audit)."""

    __tablename__ = "payment_callbacks"
    __table_args__ = (Index("ix_payment_callbacks_payment", "payment_id", "received_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(32))
    payment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(100), nullable=True)


class SimulatorDecision(Base):
    """The payment simulator's own record of what its "bank" decided, written before the
    notification is sent: what a real provider answers when asked about a payment, so that
    reconciliation recovers a notification that never arrived."""

    __tablename__ = "simulator_decisions"

    payment_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    body: Mapped[str] = mapped_column(Text)  # the signed notification, as sent (or not)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Allocation(Base):
    """Money (a payment) or credit (a credit note) settling one invoice line."""

    __tablename__ = "allocations"
    __table_args__ = (
        Index("ix_allocations_invoice", "invoice_id"),
        Index("ix_allocations_payment", "payment_id"),
        Index("ix_allocations_credit_note", "credit_note_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(String(36))
    line_id: Mapped[str] = mapped_column(String(36))
    payment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    credit_note_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClaimAttempt(Base):
    """A "je ne trouve pas ma facture" attempt, for the per-household rate limit."""

    __tablename__ = "claim_attempts"
    __table_args__ = (Index("ix_claim_attempts_family_at", "family_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)


communes = communes_table(Base.metadata)
households, household_communes, children = household_tables(Base.metadata)
outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
