"""Reservations' rules, free of Flask and SQLAlchemy: opening days, deadlines, eligibility,
refusals in French, calendar cells. ``operations`` feeds them rows turned into dataclasses."""

from .deadlines import DeadlineRule, InvalidRule
from .opening import (
    ActivityPlace,
    CalendarException,
    CommuneCalendar,
    Opening,
    SchoolYear,
    days_between,
    public_holiday,
    school_holiday,
)
from .rules import (
    ATTENDANCE,
    CANCELLED,
    CONFIRMED,
    HOLDING,
    IN_LINE,
    LAPSED,
    OFFERED,
    PENDING_PAYMENT,
    PROMOTED,
    RELEASED,
    STATES,
    WAITING,
    WITHDRAWN,
    Activity,
    CancellationCheck,
    Child,
    Eligibility,
    Refusal,
    Slot,
    already_booked_refusal,
    booking_deadline,
    booking_refusal,
    cancellation_check,
    cancellation_deadline,
    cell,
    full_refusal,
)
from .text import PARIS, cents_of, euros, fr_date, fr_datetime, fr_euros, fr_month

__all__ = [
    "ATTENDANCE", "CANCELLED", "CONFIRMED", "HOLDING", "IN_LINE", "LAPSED", "OFFERED",
    "PARIS", "PENDING_PAYMENT", "PROMOTED", "RELEASED", "STATES", "WAITING", "WITHDRAWN",
    "Activity", "ActivityPlace", "CalendarException", "CancellationCheck", "Child",
    "CommuneCalendar", "DeadlineRule", "Eligibility", "InvalidRule", "Opening", "Refusal",
    "SchoolYear", "Slot", "already_booked_refusal", "booking_deadline", "booking_refusal",
    "cancellation_check", "cancellation_deadline", "cell", "cents_of", "days_between", "euros",
    "fr_date", "fr_datetime", "fr_euros", "fr_month", "full_refusal", "public_holiday",
    "school_holiday",
]
