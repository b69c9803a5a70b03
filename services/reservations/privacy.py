"""Reservations' part of the GDPR rights (issue 8): the household's export, what blocks its
erasure, and the erasure itself (``accounts.household.erased``).

Bookings to come block the erasure: cancelling them here would start refunds (credit notes)
owed to a household that no longer exists, so the family cancels them first from « Mes
réservations » (refunded as usual), or waits until they are past. Once erased, nothing of the
household stays here: bookings, attendance, cancellations, enrolments, waiting-list entries and
baskets are deleted (billing keeps what accounting needs on its invoices), and the household's
read model becomes a tombstone without names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from flask import Blueprint
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.common import households
from services.common.app import current_context
from services.common.auth import current_principal
from services.common.events import Event
from services.common.privacy import internal_blueprint, record_read
from services.common.tenancy import COMMUNES

from . import NAME
from .models import (
    Activity,
    Basket,
    Booking,
    Cancellation,
    Enrolment,
    Occupancy,
    WaitingEntry,
)

LIVE = ("pending_payment", "confirmed")


def _communes(session: Session) -> dict[str, str]:
    return dict(session.execute(select(COMMUNES.c.id, COMMUNES.c.slug)).all())


def export(family_id: str) -> dict[str, Any]:
    with current_context().db.sessions() as session:
        slugs = _communes(session)
        names = dict(session.execute(select(Activity.id, Activity.label)).all())
        bookings = session.scalars(select(Booking).where(Booking.family_id == family_id)
                                   .order_by(Booking.date))
        cancellations = session.scalars(select(Cancellation).where(
            Cancellation.family_id == family_id).order_by(Cancellation.created_at))
        enrolments = session.scalars(select(Enrolment).where(Enrolment.family_id == family_id))
        waiting = session.scalars(select(WaitingEntry).where(WaitingEntry.family_id == family_id))
        baskets = session.scalars(select(Basket).where(Basket.family_id == family_id))
        data = {
            "reservations": [{
                "commune": slugs.get(b.commune_id), "enfant": b.child_first_name,
                "child_id": b.child_id, "activite": names.get(b.activity_id),
                "date": b.date, "statut": b.status, "mode_de_paiement": b.payment_mode,
                "prix_unitaire": f"{b.unit_price_cents / 100:.2f}", "presence": b.attendance,
                "reservee_le": b.created_at} for b in bookings],
            "annulations": [{
                "commune": slugs.get(c.commune_id), "enfant": c.child_first_name,
                "activite": names.get(c.activity_id), "dates": c.dates, "motif": c.reason,
                "statut": c.status, "dans_le_delai": c.within_deadline,
                "remboursement": f"{c.refund_cents / 100:.2f}",
                "reponse_de_la_mairie": c.agent_message, "demandee_le": c.created_at}
                for c in cancellations],
            "inscriptions": [{
                "commune": slugs.get(e.commune_id), "child_id": e.child_id,
                "statut": e.status, "message": e.message, "demandee_le": e.created_at}
                for e in enrolments],
            "liste_d_attente": [{
                "commune": slugs.get(w.commune_id), "enfant": w.child_first_name,
                "activite": names.get(w.activity_id), "date": w.date, "statut": w.status,
                "inscrit_le": w.created_at} for w in waiting],
            "paniers": [{
                "commune": slugs.get(b.commune_id), "statut": b.status,
                "montant": f"{b.amount_due_cents / 100:.2f}", "cree_le": b.created_at}
                for b in baskets],
        }
    return {"data": data, "files": []}


def blockers(clock: Callable[[], datetime]) -> Callable[[str], list[dict[str, str]]]:
    def find(family_id: str) -> list[dict[str, str]]:
        today = clock().date()
        with current_context().db.sessions() as session:
            days = session.scalars(select(Booking.date).where(
                Booking.family_id == family_id, Booking.status.in_(LIVE),
                Booking.date >= today)).all()
        if not days:
            return []
        last = max(days).strftime("%d/%m/%Y")
        return [{"code": "future_bookings",
                 "message": f"{len(days)} réservation(s) à venir (jusqu'au {last}) : "
                            "annulez-les depuis « Mes réservations » ou attendez qu'elles "
                            "soient passées."}]
    return find


def erase(session: Session, family_id: str, version: int, today: date) -> None:
    """Everything of the household goes; the places its live bookings held are given back."""
    live = session.execute(select(Booking.activity_id, Booking.date).where(
        Booking.family_id == family_id, Booking.status.in_(LIVE))).all()
    for activity_id, day in live:
        session.execute(update(Occupancy).where(
            Occupancy.activity_id == activity_id, Occupancy.date == day,
            Occupancy.taken > 0).values(taken=Occupancy.taken - 1))
    for model in (Booking, Cancellation, Enrolment, WaitingEntry):
        session.execute(delete(model).where(model.family_id == family_id))
    for basket in session.scalars(select(Basket).where(Basket.family_id == family_id)):
        session.delete(basket)  # its items go with it (cascade)
    households.forget(session, family_id, version)


def erased_handler(clock: Callable[[], datetime]):
    def on_household_erased(session: Session, event: Event, data: dict[str, Any]) -> None:
        erase(session, data["family_id"], data["version"], clock().date())
    return on_household_erased


def privacy_blueprint(clock: Callable[[], datetime]) -> Blueprint:
    return internal_blueprint(NAME, export, blockers=blockers(clock))


def audit_child(slug: str, child_id: str | None, action: str) -> None:
    """An agent (or platform admin) looked at one child's bookings or calendar: the
    commune's audit log (issue 8). Called after the view answered."""
    principal = current_principal()
    if not child_id or not (principal.is_agent_of(slug) or principal.platform_admin):
        return
    with current_context().db.sessions() as session:
        found = households.child(session, child_id)
    if found is not None:
        record_read(principal, service=NAME, slug=slug, family_id=found["family_id"],
                    action=action, object_id=child_id)
