"""The booking rules: who may book what and when, and what the calendar shows.

Pure functions over small dataclasses; ``operations`` loads the rows and calls them. Every
refusal carries its rule (``closed``, ``not_enrolled``, ``not_eligible``, ``deadline``,
``full``, ``already_booked``...) and a French sentence naming the child, the date and the rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .deadlines import DeadlineRule, deadline_for, label_for
from .opening import ActivityPlace, CommuneCalendar, Opening, SchoolYear
from .text import fr_date, fr_datetime

PAYMENT_MODES = ("prepaid", "monthly")
LATE_CANCELLATION = ("refuse", "request")
WAITING_LIST_MODES = ("automatic", "offer")
ENROLMENT_MODES = ("automatic", "validated")
ATTENDANCE = ("present", "absent", "excused")

# Booking statuses; those that hold a place are counted against the capacity.
PENDING_PAYMENT = "pending_payment"
CONFIRMED = "confirmed"
CANCELLED = "cancelled"  # cancelled by the family (or an agent's decision)
RELEASED = "released"  # an unpaid hold given back (payment failed or hold expired)
HOLDING = (PENDING_PAYMENT, CONFIRMED)

# Waiting-list entries: an offer holds its place until it is accepted or lapses.
WAITING = "waiting"
OFFERED = "offered"
PROMOTED = "promoted"
LAPSED = "lapsed"
WITHDRAWN = "withdrawn"
IN_LINE = (WAITING, OFFERED)

STATES = ("closed", "available", "full", "booked", "pending_payment", "cancelled", "present",
          "absent", "excused")

# French school classes, youngest first ("du CP au CM2").
CLASSES = ("TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2", "6E", "5E", "4E", "3E")


def normalise_class(name: str | None) -> str | None:
    if not name:
        return None
    token = name.strip().upper().replace(" ", "")
    for separator in ("-", "/", "+"):
        token = token.split(separator)[0]
    token = token.replace("ÈME", "E").replace("EME", "E")
    return token if token in CLASSES else None


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


@dataclass(frozen=True)
class Child:
    id: str
    first_name: str
    last_name: str = ""
    birth_date: date | None = None
    class_name: str | None = None
    allergies: bool = False
    family_id: str | None = None


@dataclass(frozen=True)
class Eligibility:
    min_age: int | None = None
    max_age: int | None = None
    min_class: str | None = None
    max_class: str | None = None

    def label(self) -> str | None:
        parts = []
        if self.min_age is not None and self.max_age is not None:
            parts.append(f"de {self.min_age} à {self.max_age} ans")
        elif self.min_age is not None:
            parts.append(f"d'au moins {self.min_age} ans")
        elif self.max_age is not None:
            parts.append(f"d'au plus {self.max_age} ans")
        if self.min_class and self.max_class:
            parts.append(f"du {self.min_class} au {self.max_class}")
        elif self.min_class:
            parts.append(f"à partir du {self.min_class}")
        elif self.max_class:
            parts.append(f"jusqu'au {self.max_class}")
        return ", ".join(parts) or None

    def refusal(self, child: Child, day: date) -> str | None:
        """What in the child does not fit (French), or None."""
        if self.min_age is not None or self.max_age is not None:
            if child.birth_date is None:
                return "date de naissance inconnue"
            age = age_on(child.birth_date, day)
            if (self.min_age is not None and age < self.min_age) or (
                    self.max_age is not None and age > self.max_age):
                return f"{child.first_name} a {age} an{'s' if age > 1 else ''}"
        if self.min_class or self.max_class:
            current = normalise_class(child.class_name)
            if current is None:
                return (f"classe de {child.first_name} non renseignée"
                        if not child.class_name else
                        f"classe de {child.first_name} non reconnue : {child.class_name}")
            rank = CLASSES.index(current)
            if (self.min_class and rank < CLASSES.index(self.min_class)) or (
                    self.max_class and rank > CLASSES.index(self.max_class)):
                return f"{child.first_name} est en {current}"
        return None


@dataclass(frozen=True)
class Activity:
    id: str
    label: str
    place: ActivityPlace
    payment_mode: str
    unit_price_cents: int
    opening: Opening
    service_name: str = ""
    code: str = ""
    capacity: int | None = None
    waiting_list_size: int = 0
    waiting_list_mode: str = "automatic"
    offer_hours: int = 24
    eligibility: Eligibility = field(default_factory=Eligibility)
    booking_deadline: DeadlineRule | None = None
    cancellation_deadline: DeadlineRule | None = None
    late_cancellation: str = "refuse"

    @property
    def has_waiting_list(self) -> bool:
        return self.capacity is not None and self.waiting_list_size > 0


@dataclass(frozen=True)
class Refusal:
    rule: str
    message: str
    short: str
    day: date
    child_id: str
    activity_id: str
    deadline: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"child_id": self.child_id, "activity_id": self.activity_id,
               "date": self.day.isoformat(), "rule": self.rule, "message": self.message}
        if self.deadline is not None:
            out["deadline"] = self.deadline.isoformat()
        return out


def booking_deadline(activity: Activity, day: date, calendar: CommuneCalendar) -> datetime:
    return deadline_for(activity.booking_deadline, day, calendar.is_working_day)


def cancellation_deadline(activity: Activity, day: date, calendar: CommuneCalendar) -> datetime:
    return deadline_for(activity.cancellation_deadline, day, calendar.is_working_day)


def _refusal(rule: str, short: str, message: str, child: Child, activity: Activity, day: date,
             deadline: datetime | None = None) -> Refusal:
    return Refusal(rule, message, short, day, child.id, activity.id, deadline)


def closed_refusal(child: Child, activity: Activity, day: date, reason: str) -> Refusal:
    return _refusal(
        "closed", f"Fermé ({reason})",
        f"Réservation impossible pour {child.first_name} le {fr_date(day)} : l'activité "
        f"« {activity.label} » est fermée ce jour-là ({reason}).", child, activity, day)


def enrolment_refusal(child: Child, activity: Activity, day: date,
                      year: SchoolYear | None, status: str | None) -> Refusal:
    if year is None:
        detail = "aucune année scolaire n'est ouverte à cette date"
    elif status == "pending":
        detail = (f"l'inscription de {child.first_name} au service « {activity.service_name} » "
                  f"pour l'année scolaire {year.label} attend la validation de la mairie")
    elif status == "refused":
        detail = (f"l'inscription de {child.first_name} au service « {activity.service_name} » "
                  f"pour l'année scolaire {year.label} a été refusée")
    else:
        detail = (f"{child.first_name} n'est pas inscrit(e) au service "
                  f"« {activity.service_name} » pour l'année scolaire {year.label} ; "
                  "l'inscription est nécessaire avant de réserver")
    return _refusal("not_enrolled", "Inscription requise",
                    f"Réservation impossible pour {child.first_name} le {fr_date(day)} à "
                    f"l'activité « {activity.label} » : {detail}.", child, activity, day)


def eligibility_refusal(child: Child, activity: Activity, day: date) -> Refusal | None:
    detail = activity.eligibility.refusal(child, day)
    if detail is None:
        return None
    return _refusal("not_eligible", "Non accessible à cet enfant",
                    f"Réservation impossible pour {child.first_name} le {fr_date(day)} : "
                    f"l'activité « {activity.label} » est réservée aux enfants "
                    f"{activity.eligibility.label()} ({detail}).", child, activity, day)


def deadline_refusal(child: Child, activity: Activity, day: date,
                     deadline: datetime) -> Refusal:
    return _refusal(
        "deadline", "Date limite dépassée",
        f"Réservation impossible pour {child.first_name} le {fr_date(day)} à l'activité "
        f"« {activity.label} » : la date limite de réservation "
        f"({label_for(activity.booking_deadline)}) était le {fr_datetime(deadline)}.",
        child, activity, day, deadline)


def full_refusal(child: Child, activity: Activity, day: date, waiting_full: bool) -> Refusal:
    tail = " et sa liste d'attente aussi" if waiting_full else ""
    return _refusal(
        "full", "Complet",
        f"Réservation impossible pour {child.first_name} le {fr_date(day)} : l'activité "
        f"« {activity.label} » est complète ({activity.capacity} places){tail}.",
        child, activity, day)


def already_booked_refusal(child: Child, activity: Activity, day: date) -> Refusal:
    return _refusal("already_booked", "Déjà réservé",
                    f"{child.first_name} a déjà une réservation le {fr_date(day)} pour "
                    f"l'activité « {activity.label} ».", child, activity, day)


def booking_refusal(child: Child, activity: Activity, day: date, now: datetime,
                    calendar: CommuneCalendar,
                    enrolment_status: dict[str, str]) -> Refusal | None:
    """Why ``child`` may not book ``activity`` on ``day`` (capacity aside), or None.

    ``enrolment_status`` maps a school year id to the child's enrolment status in the
    activity's service (``validated``, ``pending``, ``refused``).
    """
    reason = calendar.closed_reason(day, activity.place, activity.opening)
    if reason is not None:
        return closed_refusal(child, activity, day, reason)
    refused = eligibility_refusal(child, activity, day)
    if refused is not None:
        return refused
    year = calendar.school_year_of(day)
    status = enrolment_status.get(year.id) if year else None
    if status != "validated":
        return enrolment_refusal(child, activity, day, year, status)
    deadline = booking_deadline(activity, day, calendar)
    if now > deadline:
        return deadline_refusal(child, activity, day, deadline)
    return None


@dataclass(frozen=True)
class CancellationCheck:
    mode: str  # immediate | request | refused
    deadline: datetime
    message: str | None = None


def cancellation_check(child: Child, activity: Activity, day: date, now: datetime,
                       calendar: CommuneCalendar) -> CancellationCheck:
    """Whether a booking can be cancelled now: at once, as a request to an agent, or not."""
    deadline = cancellation_deadline(activity, day, calendar)
    if now <= deadline:
        return CancellationCheck("immediate", deadline)
    day_started = deadline_for(None, day)
    if activity.late_cancellation == "request" and now < day_started:
        return CancellationCheck("request", deadline)
    if now >= day_started:
        message = (f"Annulation impossible pour {child.first_name} le {fr_date(day)} "
                   f"(« {activity.label} ») : ce jour est commencé ou passé.")
    else:
        message = (f"Annulation impossible pour {child.first_name} le {fr_date(day)} "
                   f"(« {activity.label} ») : la date limite d'annulation "
                   f"({label_for(activity.cancellation_deadline)}) était le "
                   f"{fr_datetime(deadline)}.")
    return CancellationCheck("refused", deadline, message)


@dataclass(frozen=True)
class Slot:
    """What the database holds for one child, activity and day."""

    booking_id: str | None = None
    status: str | None = None  # of the booking shown (active, else the latest)
    attendance: str | None = None
    hold_expires_at: datetime | None = None
    cancellation_pending: bool = False
    taken: int = 0
    waiting_count: int = 0  # entries in line for that activity and day
    waiting: dict[str, Any] | None = None  # this child's entry: {id, position, status, ...}


def cell(child: Child, activity: Activity, day: date, now: datetime,
         calendar: CommuneCalendar, enrolment_status: dict[str, str],
         slot: Slot) -> dict[str, Any]:
    """One cell of the calendar (DESIGN section 6), with ``reason`` and ``cancel_mode``."""
    out: dict[str, Any] = {"activity_id": activity.id, "state": "available", "can_book": False,
                           "can_cancel": False, "deadline": None, "booking_id": slot.booking_id,
                           "reason": None, "cancel_mode": None, "can_wait": False,
                           "waiting_list": slot.waiting}
    if slot.attendance and slot.status in (*HOLDING, CANCELLED):
        out["state"] = slot.attendance
        return out
    if slot.status == CONFIRMED:
        out["state"] = "booked"
        check = cancellation_check(child, activity, day, now, calendar)
        out["deadline"] = check.deadline
        if slot.cancellation_pending:
            out["reason"] = "Demande d'annulation en cours"
        elif check.mode != "refused":
            out["can_cancel"] = True
            out["cancel_mode"] = check.mode
        else:
            out["reason"] = "Date limite d'annulation dépassée"
        return out
    if slot.status == PENDING_PAYMENT:
        out["state"] = "pending_payment"
        out["deadline"] = slot.hold_expires_at
        out["reason"] = "En attente de paiement"
        return out
    reason = calendar.closed_reason(day, activity.place, activity.opening)
    if reason is not None:
        out.update(state="closed", reason=f"Fermé ({reason})", booking_id=None)
        return out
    if slot.status != CANCELLED:
        out["booking_id"] = None
    out["deadline"] = booking_deadline(activity, day, calendar)
    full = activity.capacity is not None and slot.taken >= activity.capacity
    if slot.waiting is not None:
        out["state"] = "full"
        out["reason"] = ("Place proposée : à accepter" if slot.waiting.get("status") == OFFERED
                         else f"Liste d'attente (rang {slot.waiting.get('position')})")
        return out
    # A cancelled booking stays the child's state; fullness is the reason it cannot return.
    out["state"] = "cancelled" if slot.status == CANCELLED else ("full" if full
                                                                 else "available")
    refused = booking_refusal(child, activity, day, now, calendar, enrolment_status)
    if full:
        out["reason"] = "Complet"
        out["can_wait"] = (activity.has_waiting_list and refused is None
                           and slot.waiting_count < activity.waiting_list_size)
    elif refused is None:
        out["can_book"] = True
    else:
        out["reason"] = refused.short
    return out
