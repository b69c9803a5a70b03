"""What billing publishes and the events it handles.

Handled (each in the consumer's transaction, with its inbox row: a redelivery changes nothing;
out-of-order arrivals are tolerated):

- communes and households (the shared read models);
- ``reservations.booking.confirmed`` / ``.cancelled``: the days booked (monthly ones are
  invoiced by the monthly run; prepaid ones were paid at checkout). A cancellation is final: a
  confirmation arriving after it does not revive the booking. A cancellation with
  ``refund_due > 0`` issues a credit note (origin ``booking_cancellation``), never twice for a
  booking;
- ``reservations.attendance.recorded``: the latest ``recorded_at`` wins;
- ``reservations.basket.expired``: the basket's payment, still pending, is cancelled
  (``billing.payment.failed``) and its invoice with it.

Published (through the outbox, in the transaction of the change): ``billing.invoice.issued``
(finalised run, manual invoice), ``billing.payment.succeeded`` / ``.failed``,
``billing.credit_note.issued``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.bus import Handler, PermanentError
from services.common.events import Event
from services.common.households import HOUSEHOLD_COMMUNES, HOUSEHOLD_HANDLERS
from services.common.tenancy import COMMUNE_HANDLERS

from . import operations
from .domain import ZERO, money
from .models import Attendance, BookedDay, Payment, RefundedBooking
from .privacy import on_household_erased

PUBLISHES: tuple[str, ...] = (
    "billing.invoice.issued",
    "billing.payment.succeeded",
    "billing.payment.failed",
    "billing.credit_note.issued",
    "billing.access.recorded",  # issue 8: agents' reads, for the audit log
)


def commune_of(session: Session, event: Event, family_id: str) -> str:
    """The event's commune (envelope); else the household's only commune."""
    if event.commune_id:
        return event.commune_id
    rows = session.execute(select(HOUSEHOLD_COMMUNES.c.commune_id).where(
        HOUSEHOLD_COMMUNES.c.family_id == family_id)).all()
    if len(rows) == 1:
        return rows[0][0]
    raise PermanentError(f"{event.type} {event.id} sans commune")


def on_booking_confirmed(session: Session, event: Event, data: dict[str, Any]) -> None:
    commune_id = commune_of(session, event, data["family_id"])
    for booking_id, day in zip(data["booking_ids"], data["dates"], strict=True):
        row = session.get(BookedDay, booking_id)
        if row is None:
            session.add(BookedDay(
                booking_id=booking_id, commune_id=commune_id, family_id=data["family_id"],
                child_id=data["child_id"], activity_id=data["activity_id"], date=day,
                payment_mode=data["payment_mode"], unit_price=data["unit_price"],
                child_first_name=data["child_first_name"], activity_name=data["activity_name"],
                basket_id=data.get("basket_id"), status="confirmed"))
        elif row.status == "confirmed":
            row.unit_price = data["unit_price"]
            row.payment_mode = data["payment_mode"]
            row.basket_id = data.get("basket_id") or row.basket_id
        # cancelled: final, a late confirmation changes nothing


def on_booking_cancelled(session: Session, event: Event, data: dict[str, Any]) -> None:
    commune_id = commune_of(session, event, data["family_id"])
    for booking_id, day in zip(data["booking_ids"], data["dates"], strict=True):
        row = session.get(BookedDay, booking_id)
        if row is None:
            session.add(BookedDay(
                booking_id=booking_id, commune_id=commune_id, family_id=data["family_id"],
                child_id=data["child_id"], activity_id=data["activity_id"], date=day,
                payment_mode=data["payment_mode"], unit_price=ZERO,
                child_first_name=data["child_first_name"], activity_name=data["activity_name"],
                status="cancelled"))
        else:
            row.status = "cancelled"
    refund_due: Decimal = data["refund_due"]
    if refund_due <= 0:
        return
    done = {r[0] for r in session.execute(select(RefundedBooking.booking_id).where(
        RefundedBooking.booking_id.in_(data["booking_ids"])))}
    dates = dict(zip(data["booking_ids"], data["dates"], strict=True))
    label = f"{data['activity_name']} — {data['child_first_name']}"
    if data.get("refund_lines"):
        lines = [line for line in data["refund_lines"] if line["booking_id"] not in done]
        amount = sum((line["amount"] for line in lines), ZERO)
        booking_ids = [line["booking_id"] for line in lines]
        detail = [{"label": f"{label} — {line['date'].strftime('%d/%m/%Y')}", "quantity": "1",
                   "amount": str(money(line["amount"])), "booking_id": line["booking_id"]}
                  for line in lines]
    elif not done:
        amount = refund_due
        booking_ids = list(data["booking_ids"])
        detail = [{"label": f"{label} — {len(booking_ids)} jour(s)",
                   "quantity": str(len(booking_ids)), "amount": str(money(amount))}]
    else:
        return  # already refunded (or partly, without the detail to tell what is left)
    if amount <= 0:
        return
    reason = f"Annulation : {label}, " + ", ".join(
        dates[b].strftime("%d/%m/%Y") for b in booking_ids)
    operations.create_credit_note(
        session, commune_id=commune_id, family_id=data["family_id"], amount=amount,
        origin="booking_cancellation", origin_id=data.get("cancellation_id"),
        reason=reason, booking_ids=booking_ids, lines=detail)


def on_attendance_recorded(session: Session, event: Event, data: dict[str, Any]) -> None:
    commune_id = commune_of(session, event, data["family_id"])
    recorded_at = data.get("recorded_at") or datetime.fromisoformat(
        event.occurred_at.replace("Z", "+00:00"))
    row = session.get(Attendance, (data["child_id"], data["activity_id"], data["date"]))
    if row is None:
        session.add(Attendance(child_id=data["child_id"], activity_id=data["activity_id"],
                               date=data["date"], commune_id=commune_id,
                               family_id=data["family_id"], booking_id=data.get("booking_id"),
                               status=data["status"], recorded_at=recorded_at))
    elif recorded_at > row.recorded_at:
        row.status = data["status"]
        row.booking_id = data.get("booking_id") or row.booking_id
        row.recorded_at = recorded_at


def on_basket_expired(session: Session, event: Event, data: dict[str, Any],
                      providers: dict[str, Any] | None = None) -> None:
    payment = session.scalar(select(Payment).where(Payment.basket_id == data["basket_id"])
                             .with_for_update())
    if payment is None or payment.status not in ("created", "waiting"):
        return  # unknown, or already ended (a success is handled by reservations)
    # Fix: the payment was cancelled without asking the provider, so a basket paid at the bank
    # whose notification never arrived stayed cancelled for good (reconciliation only looks at
    # pending payments): the family's money was lost. The provider is asked first; when it
    # cannot be asked, the payment stays pending for the expiry loop's reconciliation.
    if operations.reconcile(session, payment, providers) != "unknown":
        return
    operations.mark_failed(session, payment, "cancelled",
                           "Panier expiré : le délai pour payer est dépassé")


HANDLERS: dict[str, Handler] = {
    **COMMUNE_HANDLERS,
    **HOUSEHOLD_HANDLERS,
    "reservations.booking.confirmed": on_booking_confirmed,
    "reservations.booking.cancelled": on_booking_cancelled,
    "reservations.attendance.recorded": on_attendance_recorded,
    "reservations.basket.expired": on_basket_expired,
    "accounts.household.erased": on_household_erased,  # issue 8
}
