"""Rows to rules, and the places of an activity on a day: lock, count, fill from the list.

No overbooking: every change to the places of (activity, day) happens while holding that
day's ``occupancy`` row. On PostgreSQL the rows are created on demand (``INSERT ... ON
CONFLICT DO NOTHING``) then locked with ``SELECT ... FOR UPDATE`` in one statement ordered by
(activity, date): every transaction takes them in the same order, so two checkouts sharing
days wait for each other instead of deadlocking. On SQLite (embedded mode) ``BEGIN
IMMEDIATE`` already serialises writers. Under the lock the places taken are counted from the
bookings themselves, and the row's ``taken`` is rewritten for the readers (calendar,
occupancy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from services.common.households import CHILDREN, HOUSEHOLD_COMMUNES, HOUSEHOLDS, recipients

from . import domain
from .domain.deadlines import DeadlineRule
from .models import (
    Activity,
    Booking,
    CalendarExceptionRow,
    CommuneCalendarRow,
    Enrolment,
    Occupancy,
    SchoolYearRow,
    WaitingEntry,
)

Pair = tuple[str, date]


# --- rows to rules ------------------------------------------------------------------------------

def to_activity(row: Activity) -> domain.Activity:
    return domain.Activity(
        id=row.id, label=row.label, code=row.code,
        place=domain.ActivityPlace(row.id, row.service_id, row.site_id),
        payment_mode=row.payment_mode, unit_price_cents=row.unit_price_cents,
        opening=domain.Opening.from_parts(row.weekdays or [], row.periods or [],
                                          row.school_holidays, row.public_holidays),
        service_name=row.service.name if row.service else "",
        capacity=row.capacity, waiting_list_size=row.waiting_list_size or 0,
        waiting_list_mode=row.waiting_list_mode, offer_hours=row.offer_hours or 24,
        eligibility=domain.Eligibility(row.min_age, row.max_age, row.min_class, row.max_class),
        booking_deadline=DeadlineRule.from_dict(row.booking_deadline),
        cancellation_deadline=DeadlineRule.from_dict(row.cancellation_deadline),
        late_cancellation=row.late_cancellation)


def to_child(row: Any) -> domain.Child:
    born = row["birth_date"]
    return domain.Child(
        id=row["id"], first_name=row["first_name"], last_name=row["last_name"],
        birth_date=date.fromisoformat(born) if isinstance(born, str) else born,
        class_name=row["class_name"], allergies=bool(row["allergies"]),
        family_id=row["family_id"])


def load_calendar(session: Session, commune_id: str) -> domain.CommuneCalendar:
    settings = session.get(CommuneCalendarRow, commune_id)
    years = session.scalars(select(SchoolYearRow).where(SchoolYearRow.commune_id == commune_id)
                            .order_by(SchoolYearRow.starts_on))
    exceptions = session.scalars(select(CalendarExceptionRow).where(
        CalendarExceptionRow.commune_id == commune_id).order_by(CalendarExceptionRow.starts_on))
    return domain.CommuneCalendar(
        zone=settings.zone if settings else "C",
        school_years=tuple(domain.SchoolYear(y.id, y.label, y.starts_on, y.ends_on)
                           for y in years),
        exceptions=tuple(domain.CalendarException(
            e.id, e.kind, e.starts_on, e.ends_on, e.label, e.service_id, e.site_id,
            e.activity_id) for e in exceptions))


def children_by_id(session: Session, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = list(set(ids))
    if not ids:
        return {}
    rows = session.execute(select(CHILDREN).where(CHILDREN.c.id.in_(ids))).mappings()
    return {r["id"]: dict(r) for r in rows}


def family_recipients(session: Session, family_id: str) -> list[str]:
    snapshot = session.scalar(select(HOUSEHOLDS.c.snapshot).where(
        HOUSEHOLDS.c.family_id == family_id))
    return recipients(snapshot) if snapshot else []


def family_in_commune(session: Session, family_id: str, commune_id: str) -> bool:
    return session.execute(select(HOUSEHOLD_COMMUNES.c.family_id).where(
        HOUSEHOLD_COMMUNES.c.family_id == family_id,
        HOUSEHOLD_COMMUNES.c.commune_id == commune_id)).first() is not None


def enrolment_statuses(session: Session, child_ids: Iterable[str],
                       service_ids: Iterable[str]) -> dict[tuple[str, str], dict[str, str]]:
    """``{(child_id, service_id): {school_year_id: status}}``."""
    child_ids, service_ids = list(set(child_ids)), list(set(service_ids))
    out: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    if not child_ids or not service_ids:
        return out
    rows = session.execute(select(Enrolment.child_id, Enrolment.service_id,
                                  Enrolment.school_year_id, Enrolment.status).where(
        Enrolment.child_id.in_(child_ids), Enrolment.service_id.in_(service_ids)))
    for child_id, service_id, year_id, status in rows:
        out[(child_id, service_id)][year_id] = status
    return out


# --- the places of a day --------------------------------------------------------------------

def _insert(session: Session):
    dialect = session.get_bind().dialect.name
    return pg_insert if dialect == "postgresql" else sqlite_insert


def lock(session: Session, pairs: Iterable[Pair]) -> None:
    """Hold the occupancy rows of ``pairs`` until the transaction ends (sorted: no deadlock)."""
    ordered = sorted(set(pairs))
    if not ordered:
        return
    insert = _insert(session)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        session.execute(insert(Occupancy).values(
            [{"activity_id": a, "date": d, "taken": 0, "waiting": 0, "last_rank": 0}
             for a, d in chunk]
        ).on_conflict_do_nothing(index_elements=["activity_id", "date"]))
        session.execute(
            select(Occupancy.activity_id).where(
                tuple_(Occupancy.activity_id, Occupancy.date).in_(chunk))
            .order_by(Occupancy.activity_id, Occupancy.date)
            .with_for_update())


def _pairs_filter(columns, pairs: list[Pair]):
    return tuple_(*columns).in_(pairs)


def counts(session: Session, pairs: Iterable[Pair]) -> dict[Pair, tuple[int, int]]:
    """``{(activity, day): (places taken, children in line)}`` from the bookings themselves."""
    pairs = sorted(set(pairs))
    out: dict[Pair, tuple[int, int]] = {p: (0, 0) for p in pairs}
    for start in range(0, len(pairs), 500):
        chunk = pairs[start:start + 500]
        taken: dict[Pair, int] = defaultdict(int)
        waiting: dict[Pair, int] = defaultdict(int)
        for activity_id, day, n in session.execute(
                select(Booking.activity_id, Booking.date, func.count())
                .where(_pairs_filter((Booking.activity_id, Booking.date), chunk),
                       Booking.status.in_(domain.HOLDING))
                .group_by(Booking.activity_id, Booking.date)):
            taken[(activity_id, day)] += n
        for activity_id, day, status, n in session.execute(
                select(WaitingEntry.activity_id, WaitingEntry.date, WaitingEntry.status,
                       func.count())
                .where(_pairs_filter((WaitingEntry.activity_id, WaitingEntry.date), chunk),
                       WaitingEntry.status.in_(domain.IN_LINE))
                .group_by(WaitingEntry.activity_id, WaitingEntry.date, WaitingEntry.status)):
            waiting[(activity_id, day)] += n
            if status == domain.OFFERED:  # an offer holds its place
                taken[(activity_id, day)] += n
        for pair in chunk:
            out[pair] = (taken[pair], waiting[pair])
    return out


def recount(session: Session, pairs: Iterable[Pair]) -> dict[Pair, tuple[int, int]]:
    """Rewrite the occupancy rows of ``pairs`` (held by the caller) from the bookings."""
    session.flush()
    found = counts(session, pairs)
    keys = list(found)
    rows: dict[Pair, Occupancy] = {}
    for start in range(0, len(keys), 500):
        for row in session.scalars(select(Occupancy).where(
                tuple_(Occupancy.activity_id, Occupancy.date).in_(keys[start:start + 500]))):
            rows[(row.activity_id, row.date)] = row
    for (activity_id, day), (taken, waiting) in found.items():
        row = rows.get((activity_id, day))
        if row is None:
            session.add(Occupancy(activity_id=activity_id, date=day, taken=taken,
                                  waiting=waiting))
        else:
            row.taken, row.waiting = taken, waiting
    session.flush()
    return found


def occupancy_map(session: Session, activity_ids: list[str], start: date,
                  end: date) -> dict[Pair, tuple[int, int]]:
    if not activity_ids:
        return {}
    rows = session.execute(select(Occupancy.activity_id, Occupancy.date, Occupancy.taken,
                                  Occupancy.waiting).where(
        Occupancy.activity_id.in_(activity_ids), Occupancy.date >= start,
        Occupancy.date <= end))
    return {(a, d): (t, w) for a, d, t, w in rows}


def live_booking(session: Session, child_id: str, activity_id: str, day: date) -> Booking | None:
    return session.scalar(select(Booking).where(
        Booking.child_id == child_id, Booking.activity_id == activity_id, Booking.date == day,
        Booking.status.in_(domain.HOLDING)))


def live_keys(session: Session, keys: Iterable[tuple[str, str, date]]) -> set[tuple]:
    """Which of the (child, activity, day) have a live booking already."""
    keys = list(set(keys))
    found: set[tuple] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for row in session.execute(select(Booking.child_id, Booking.activity_id, Booking.date)
                                   .where(tuple_(Booking.child_id, Booking.activity_id,
                                                 Booking.date).in_(chunk),
                                          Booking.status.in_(domain.HOLDING))):
            found.add(tuple(row))
    return found


def in_line_keys(session: Session, keys: Iterable[tuple[str, str, date]]) -> set[tuple]:
    keys = list(set(keys))
    found: set[tuple] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for row in session.execute(
                select(WaitingEntry.child_id, WaitingEntry.activity_id, WaitingEntry.date)
                .where(tuple_(WaitingEntry.child_id, WaitingEntry.activity_id,
                              WaitingEntry.date).in_(chunk),
                       WaitingEntry.status.in_(domain.IN_LINE))):
            found.add(tuple(row))
    return found


def next_rank(session: Session, pair: Pair) -> int:
    """The rank of the next child put in line that day (the caller holds the day's lock)."""
    row = session.get(Occupancy, pair)
    row.last_rank = (row.last_rank or 0) + 1
    return row.last_rank


def waiting_positions(session: Session, entries: list[WaitingEntry]) -> dict[str, int]:
    """The position (1 = next) of each entry still in line."""
    out: dict[str, int] = {}
    for entry in entries:
        if entry.status not in domain.IN_LINE:
            continue
        ahead = session.scalar(select(func.count()).select_from(WaitingEntry).where(
            WaitingEntry.activity_id == entry.activity_id, WaitingEntry.date == entry.date,
            WaitingEntry.status.in_(domain.IN_LINE), WaitingEntry.rank < entry.rank))
        out[entry.id] = int(ahead or 0) + 1
    return out


@dataclass
class Promotion:
    """What filling freed places from the waiting list did."""

    bookings: list[Booking]
    offers: list[WaitingEntry]


def fill_from_waiting_list(session: Session, activities: dict[str, Activity],
                           pairs: Iterable[Pair], now: datetime) -> Promotion:
    """Give the free places of ``pairs`` (locked by the caller) to the first in line: a
    confirmed booking (automatic mode) or an offer to answer before a deadline."""
    result = Promotion([], [])
    pairs = sorted(set(pairs))
    if not pairs:
        return result
    found = counts(session, pairs)
    changed: list[Pair] = []
    for pair in pairs:
        activity = activities.get(pair[0])
        if activity is None or activity.capacity is None or not activity.waiting_list_size:
            continue
        if pair[1] < now.astimezone(domain.PARIS).date():
            continue  # a day gone by: nobody is offered it
        free = activity.capacity - found[pair][0]
        if free <= 0:
            continue
        line = list(session.scalars(select(WaitingEntry).where(
            WaitingEntry.activity_id == pair[0], WaitingEntry.date == pair[1],
            WaitingEntry.status == domain.WAITING)
            .order_by(WaitingEntry.rank)))
        for entry in line:
            if free <= 0:
                break
            if live_booking(session, entry.child_id, entry.activity_id, entry.date):
                entry.status, entry.ended_at = domain.WITHDRAWN, now
                continue
            if activity.waiting_list_mode == "offer":
                entry.status = domain.OFFERED
                entry.offered_at = now
                entry.offer_expires_at = now + timedelta(hours=activity.offer_hours)
                result.offers.append(entry)
            else:
                booking = Booking(
                    commune_id=entry.commune_id, family_id=entry.family_id,
                    child_id=entry.child_id, child_first_name=entry.child_first_name,
                    activity_id=entry.activity_id, date=entry.date, status=domain.CONFIRMED,
                    payment_mode=activity.payment_mode,
                    unit_price_cents=activity.unit_price_cents, source="waiting_list",
                    created_at=now, confirmed_at=now)
                session.add(booking)
                session.flush()
                entry.status, entry.booking_id, entry.ended_at = (domain.PROMOTED, booking.id,
                                                                  now)
                result.bookings.append(booking)
            free -= 1
            changed.append(pair)
    if changed:
        recount(session, changed)
    return result


def waiting_entries_of_basket(session: Session, basket_id: str) -> list[WaitingEntry]:
    return list(session.scalars(select(WaitingEntry).where(WaitingEntry.basket_id == basket_id)
                                .order_by(WaitingEntry.date, WaitingEntry.rank)))


def activities_by_id(session: Session, ids: Iterable[str]) -> dict[str, Activity]:
    ids = list(set(ids))
    if not ids:
        return {}
    return {a.id: a for a in session.scalars(select(Activity).where(Activity.id.in_(ids)))}
