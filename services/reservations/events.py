"""What reservations publishes, and what it does with the events it consumes.

Published (always into the outbox, in the transaction of the change they report):

| event | when |
| --- | --- |
| reservations.booking.confirmed | monthly lines at checkout; prepaid holds once paid (``basket_id``); a child promoted from the waiting list; an offer accepted (monthly); an unexpected child added to the attendance |
| reservations.basket.checked_out | a basket is validated: one event per payment mode present in it (``amount`` to pay now, or to invoice) |
| reservations.basket.expired | a basket's holds expired before payment; its places are free |
| reservations.booking.cancelled | a cancellation within the deadline, an agent accepting a late one, a justified absence (prepaid: refund), a payment arriving after the places went to someone else (refund of everything paid) |
| reservations.attendance.recorded | each mark of the pointage that changes a child's status; a justified absence (excused) |

Consumed: the communes and households read models (``accounts.*``), ``billing.payment.
succeeded`` / ``.failed`` (confirm or release a basket's holds), ``requests.request.
status_changed`` (an accepted absence justification excuses the days). Every handler is safe to
run twice and in any order: it looks at the bookings' statuses, never at what it expects.
"""  # noqa: E501

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import outbox
from services.common.bus import Handler, PermanentError
from services.common.events import Event
from services.common.households import HOUSEHOLD_HANDLERS
from services.common.logging import get_logger
from services.common.tenancy import COMMUNE_HANDLERS

from . import NAME, domain, store
from .domain.text import euros
from .models import Activity, Basket, Booking, Cancellation

log = get_logger(__name__)

PUBLISHES = (
    "reservations.booking.confirmed",
    "reservations.basket.checked_out",
    "reservations.basket.expired",
    "reservations.booking.cancelled",
    "reservations.attendance.recorded",
    "reservations.access.recorded",  # issue 8: agents' reads, for the audit log
)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


# --- builders -----------------------------------------------------------------------------------

def group_bookings(bookings: list[Booking]) -> list[list[Booking]]:
    """Bookings by child, activity, price and mode, each group sorted by date."""
    groups: dict[tuple, list[Booking]] = defaultdict(list)
    for booking in bookings:
        groups[(booking.family_id, booking.child_id, booking.activity_id,
                booking.unit_price_cents, booking.payment_mode)].append(booking)
    return [sorted(g, key=lambda b: b.date) for _, g in sorted(groups.items())]


def booking_confirmed(session: Session, bookings: list[Booking],
                      activities: dict[str, Activity], basket_id: str | None = None) -> None:
    for group in group_bookings(bookings):
        first = group[0]
        outbox.add(session, Event.new("reservations.booking.confirmed", {
            "booking_ids": [b.id for b in group],
            "family_id": first.family_id,
            "child_id": first.child_id,
            "activity_id": first.activity_id,
            "dates": [b.date.isoformat() for b in group],
            "unit_price": euros(first.unit_price_cents),
            "payment_mode": first.payment_mode,
            "child_first_name": first.child_first_name,
            "activity_name": activities[first.activity_id].label,
            "recipients": store.family_recipients(session, first.family_id),
            "basket_id": basket_id,
        }, producer=NAME, commune_id=first.commune_id))


def booking_cancelled(session: Session, bookings: list[Booking],
                      activities: dict[str, Activity], *, within_deadline: bool,
                      cancellation_id: str | None = None, reason: str | None = None,
                      agent_message: str | None = None) -> None:
    """One event per child and activity; ``refund_cents`` of each booking is what is due."""
    for group in group_bookings(bookings):
        first = group[0]
        refund = sum(b.refund_cents for b in group)
        lines = ([{"booking_id": b.id, "date": b.date.isoformat(),
                   "amount": euros(b.refund_cents)} for b in group if b.refund_cents]
                 if refund else None)
        outbox.add(session, Event.new("reservations.booking.cancelled", {
            "booking_ids": [b.id for b in group],
            "family_id": first.family_id,
            "child_id": first.child_id,
            "activity_id": first.activity_id,
            "dates": [b.date.isoformat() for b in group],
            "payment_mode": first.payment_mode,
            "within_deadline": within_deadline,
            "refund_due": euros(refund),
            "child_first_name": first.child_first_name,
            "activity_name": activities[first.activity_id].label,
            "recipients": store.family_recipients(session, first.family_id),
            "refund_lines": lines,
            "cancellation_id": cancellation_id,
            "reason": reason,
            "agent_message": agent_message,
        }, producer=NAME, commune_id=first.commune_id))


def basket_checked_out(session: Session, basket: Basket, bookings: list[Booking],
                       activities: dict[str, Activity]) -> None:
    by_mode: dict[str, list[Booking]] = defaultdict(list)
    for booking in bookings:
        by_mode[booking.payment_mode].append(booking)
    for mode in sorted(by_mode):
        lines = []
        for group in group_bookings(by_mode[mode]):
            first = group[0]
            lines.append({
                "child_id": first.child_id, "activity_id": first.activity_id,
                "dates": [b.date.isoformat() for b in group],
                "unit_price": euros(first.unit_price_cents),
                "amount": euros(first.unit_price_cents * len(group)),
                "booking_ids": [b.id for b in group],
                "activity_name": activities[first.activity_id].label,
            })
        amount = sum(b.unit_price_cents for b in by_mode[mode])
        outbox.add(session, Event.new("reservations.basket.checked_out", {
            "basket_id": basket.id, "family_id": basket.family_id, "lines": lines,
            "amount": euros(amount), "payment_mode": mode, "payment_id": None,
        }, producer=NAME, commune_id=basket.commune_id))


def basket_expired(session: Session, basket: Basket, booking_ids: list[str]) -> None:
    outbox.add(session, Event.new("reservations.basket.expired", {
        "basket_id": basket.id, "family_id": basket.family_id,
        "payment_id": basket.payment_id, "booking_ids": sorted(set(booking_ids)),
    }, producer=NAME, commune_id=basket.commune_id))


def attendance_recorded(session: Session, booking: Booking, recorded_at: datetime) -> None:
    outbox.add(session, Event.new("reservations.attendance.recorded", {
        "child_id": booking.child_id, "activity_id": booking.activity_id,
        "date": booking.date.isoformat(), "status": booking.attendance,
        "family_id": booking.family_id, "booking_id": booking.id,
        "recorded_at": recorded_at.astimezone(UTC).isoformat(),
    }, producer=NAME, commune_id=booking.commune_id))


# --- flows shared by the use cases and the handlers ---------------------------------------------

def places_freed(session: Session, pairs: list[tuple[str, date]], now: datetime) -> None:
    """After places of ``pairs`` (locked) were given back: recount, then the waiting list."""
    store.recount(session, pairs)
    activities = store.activities_by_id(session, [a for a, _ in pairs])
    promotion = store.fill_from_waiting_list(session, activities, pairs, now)
    if promotion.bookings:
        booking_confirmed(session, promotion.bookings, activities)
        log.info("waiting_list_promoted", bookings=len(promotion.bookings))
    if promotion.offers:
        log.info("waiting_list_offered", offers=len(promotion.offers))


def release_holds(session: Session, basket: Basket, reason: str, now: datetime) -> list[Booking]:
    """Give back the places a basket still holds unpaid (its row locked by the caller)."""
    held = list(session.scalars(select(Booking).where(
        Booking.basket_id == basket.id, Booking.status == domain.PENDING_PAYMENT)))
    if not held:
        return []
    pairs = sorted({(b.activity_id, b.date) for b in held})
    store.lock(session, pairs)
    for booking in held:
        booking.status, booking.ended_at, booking.end_reason = domain.RELEASED, now, reason
        booking.hold_expires_at = None
    places_freed(session, pairs, now)
    return held


def lock_basket(session: Session, basket_id: str) -> Basket | None:
    return session.scalar(select(Basket).where(Basket.id == basket_id).with_for_update())


# --- consumed events ----------------------------------------------------------------------------

def on_payment_succeeded(session: Session, event: Event, data: dict[str, Any],
                         now: datetime) -> None:
    """Confirm the basket's held bookings; a hold that expired first is taken again if its
    place is free, otherwise cancelled with the amount paid to refund."""
    basket_id = data.get("basket_id")
    if not basket_id:
        return  # an invoice payment: nothing booked here
    basket = lock_basket(session, basket_id)
    if basket is None:
        log.info("payment_for_unknown_basket", basket_id=basket_id)
        return
    if basket.payment_id is None:
        basket.payment_id = data["payment_id"]
    bookings = list(session.scalars(select(Booking).where(
        Booking.basket_id == basket.id, Booking.payment_mode == "prepaid")
        .order_by(Booking.activity_id, Booking.date, Booking.id)))
    # A booking released after checkout, that no later booking of the same basket replaced.
    lost = [b for b in bookings if b.status == domain.RELEASED]
    held = [b for b in bookings if b.status == domain.PENDING_PAYMENT]
    pairs = sorted({(b.activity_id, b.date) for b in lost + held})
    store.lock(session, pairs)
    confirmed: list[Booking] = []
    refunded: list[Booking] = []
    for booking in held:
        booking.status, booking.confirmed_at, booking.hold_expires_at = (
            domain.CONFIRMED, now, None)
        confirmed.append(booking)
    if lost:
        activities = store.activities_by_id(session, [b.activity_id for b in lost])
        found = store.counts(session, pairs)
        taken = {p: v[0] for p, v in found.items()}
        live = store.live_keys(session, [(b.child_id, b.activity_id, b.date) for b in lost])
        for booking in lost:
            activity = activities[booking.activity_id]
            pair = (booking.activity_id, booking.date)
            free = activity.capacity is None or taken[pair] < activity.capacity
            key = (booking.child_id, booking.activity_id, booking.date)
            if free and key not in live:
                booking.status, booking.confirmed_at = domain.CONFIRMED, now
                booking.ended_at = booking.end_reason = None
                taken[pair] += 1
                live.add(key)
                confirmed.append(booking)
            else:
                booking.status, booking.ended_at = domain.CANCELLED, now
                booking.end_reason = "no_place_after_payment"
                booking.refund_cents = booking.unit_price_cents
                refunded.append(booking)
    if basket.status in ("checked_out", "expired", "failed"):
        basket.status, basket.closed_at = "paid", now
    store.recount(session, pairs)
    activities = store.activities_by_id(session, [b.activity_id for b in confirmed + refunded])
    if confirmed:
        booking_confirmed(session, confirmed, activities, basket_id=basket.id)
    if refunded:
        booking_cancelled(session, refunded, activities, within_deadline=True,
                          reason="Paiement reçu après l'expiration de la réservation : la "
                                 "place n'était plus disponible, le montant sera remboursé.")
    log.info("basket_paid", basket_id=basket.id, confirmed=len(confirmed),
             refunded=len(refunded))


def on_payment_failed(session: Session, event: Event, data: dict[str, Any],
                      now: datetime) -> None:
    """Release what the basket still holds unpaid (confirmed bookings are never touched)."""
    basket_id = data.get("basket_id")
    if not basket_id:
        return
    basket = lock_basket(session, basket_id)
    if basket is None:
        return
    if basket.payment_id not in (None, data["payment_id"]):
        log.info("payment_failed_for_another_payment", basket_id=basket.id)
        return
    released = release_holds(session, basket, "payment_failed", now)
    if basket.status == "checked_out":
        basket.status, basket.closed_at = "failed", now
    log.info("basket_payment_failed", basket_id=basket.id, released=len(released))


def on_request_status_changed(session: Session, event: Event, data: dict[str, Any],
                              now: datetime) -> None:
    """An accepted absence justification: the days are excused (attendance), and prepaid
    bookings are cancelled with their refund."""
    if data["new_status"] != "accepted" or data.get("category_kind") != "absence_justification":
        return
    payload = data.get("payload") or {}
    child_id = payload.get("child_id")
    raw_dates = payload.get("dates") or []
    activity_ids = list(payload.get("activity_ids") or [])
    if payload.get("activity_id"):
        activity_ids.append(payload["activity_id"])
    try:
        days = sorted({date.fromisoformat(str(d)) for d in raw_dates})
    except ValueError as exc:
        raise PermanentError(f"dates invalides dans la demande {data['request_id']}") from exc
    if not child_id or not days:
        raise PermanentError(f"la demande {data['request_id']} ne dit pas quel enfant ni quels "
                             "jours excuser")
    query = select(Booking).where(
        Booking.family_id == data["family_id"], Booking.child_id == child_id,
        Booking.date.in_(days), Booking.status == domain.CONFIRMED)
    if activity_ids:
        query = query.where(Booking.activity_id.in_(activity_ids))
    if event.commune_id:
        query = query.where(Booking.commune_id == event.commune_id)
    bookings = list(session.scalars(query.order_by(Booking.activity_id, Booking.date)))
    if not bookings:
        log.info("absence_without_booking", request_id=data["request_id"])
        return
    pairs = sorted({(b.activity_id, b.date) for b in bookings})
    store.lock(session, pairs)
    refunded: list[Booking] = []
    for booking in bookings:
        if booking.attendance != "excused":
            booking.attendance, booking.attendance_recorded_at = "excused", now
            booking.attendance_by = f"request:{data['request_id']}"
            attendance_recorded(session, booking, now)
        if booking.payment_mode == "prepaid":
            booking.status, booking.ended_at, booking.end_reason = (
                domain.CANCELLED, now, "absence_justified")
            booking.refund_cents = booking.unit_price_cents
            refunded.append(booking)
    if refunded:
        activities = store.activities_by_id(session, [b.activity_id for b in refunded])
        for group in group_bookings(refunded):
            first = group[0]
            cancellation = Cancellation(
                commune_id=first.commune_id, family_id=first.family_id,
                child_id=first.child_id, child_first_name=first.child_first_name,
                activity_id=first.activity_id, booking_ids=[b.id for b in group],
                dates=[b.date.isoformat() for b in group], reason="Absence justifiée",
                status="accepted", within_deadline=False,
                refund_cents=sum(b.refund_cents for b in group),
                requested_by=f"request:{data['request_id']}", created_at=now, decided_at=now,
                agent_message=data.get("agent_message"))
            session.add(cancellation)
            session.flush()
            for booking in group:
                booking.cancellation_id = cancellation.id
            booking_cancelled(session, group, activities, within_deadline=False,
                              cancellation_id=cancellation.id, reason="Absence justifiée",
                              agent_message=data.get("agent_message"))
        places_freed(session, sorted({(b.activity_id, b.date) for b in refunded}), now)


def build_handlers(clock: Clock | None = None) -> dict[str, Handler]:
    """The consumers' handlers, reading the time from ``clock`` (tests travel in time)."""
    def now() -> datetime:
        return (clock or system_clock)()

    def payment_succeeded(session, event, data):
        on_payment_succeeded(session, event, data, now())

    def payment_failed(session, event, data):
        on_payment_failed(session, event, data, now())

    def request_status_changed(session, event, data):
        on_request_status_changed(session, event, data, now())

    from .privacy import erased_handler  # issue 8: the household's erasure

    return {
        **COMMUNE_HANDLERS,
        **HOUSEHOLD_HANDLERS,
        "billing.payment.succeeded": payment_succeeded,
        "billing.payment.failed": payment_failed,
        "requests.request.status_changed": request_status_changed,
        "accounts.household.erased": erased_handler(now),
    }


HANDLERS: dict[str, Handler] = build_handlers()
