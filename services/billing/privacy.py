"""Billing's part of the GDPR rights (issue 8): the household's export, what blocks its
erasure, and the erasure (``accounts.household.erased``).

Invoices, credit notes and payments are accounting records: the commune keeps them for the
accounting retention period (10 years, Code de commerce L123-22; public accounting rules for
the communes' receipts), a legal obligation that GDPR art. 17(3)(b) puts before erasure.
Their amounts, numbers and dates never change; the identity kept is what accounting needs,
the payer's name as issued on each invoice. Children's first names on lines and credit notes
become « Enfant »; the household's read model becomes a tombstone without names, e-mails or
address; quotient familial, claim attempts and the booked days / attendance read models go.

What blocks an erasure: an invoice left to pay (the debt does not disappear with the data), a
credit note left to use or refund (money owed to the family), a payment under way, monthly days
already consumed whose month is not invoiced yet (erased, they would never be).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask import Blueprint
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.common import households
from services.common.app import current_context
from services.common.auth import Principal
from services.common.events import Event
from services.common.privacy import internal_blueprint, record_read

from . import NAME
from .domain import euros
from .models import (
    Attendance,
    BookedDay,
    ClaimAttempt,
    CreditNote,
    HouseholdQuotient,
    Invoice,
    InvoiceLine,
    InvoicingRun,
    Payment,
)
from .operations import (
    commune_by_id,
    credit_note_view,
    invoice_view,
    lines_of,
    payment_view,
    today,
)

CHILD = "Enfant"
UNPAID = ("open", "partially_paid")
UNDER_WAY = ("created", "waiting")


def export(family_id: str) -> dict[str, Any]:
    with current_context().db.sessions() as session:
        invoices = session.scalars(select(Invoice).where(Invoice.family_id == family_id)
                                   .order_by(Invoice.issue_date, Invoice.number))
        notes = session.scalars(select(CreditNote).where(CreditNote.family_id == family_id)
                                .order_by(CreditNote.issue_date))
        payments = session.scalars(select(Payment).where(Payment.family_id == family_id)
                                   .order_by(Payment.created_at))
        quotients = session.scalars(select(HouseholdQuotient).where(
            HouseholdQuotient.family_id == family_id))
        data = {
            "factures": [invoice_view(i, commune_by_id(session, i.commune_id),
                                      lines_of(session, i.id)) for i in invoices],
            "avoirs": [credit_note_view(n) for n in notes],
            "paiements": [payment_view(session, p) for p in payments],
            "quotients_familiaux": [{"commune_id": q.commune_id, "quotient": q.quotient,
                                     "mis_a_jour_le": q.updated_at} for q in quotients],
        }
    return {"data": data, "files": []}


def blockers(family_id: str) -> list[dict[str, str]]:
    with current_context().db.sessions() as session:
        unpaid = [i for i in session.scalars(select(Invoice).where(
            Invoice.family_id == family_id, Invoice.status.in_(UNPAID)))
            if i.remaining > 0]
        owed = [n for n in session.scalars(select(CreditNote).where(
            CreditNote.family_id == family_id, CreditNote.status.in_(("available",
                                                                      "to_refund"))))
            if n.remaining > 0]
        paying = session.scalar(select(Payment.id).where(
            Payment.family_id == family_id, Payment.status.in_(UNDER_WAY)).limit(1))
        # Monthly days already consumed whose month is not invoiced yet: erased, they would
        # never be (the commune's revenue); the month's run comes first.
        consumed = session.execute(select(BookedDay.commune_id, BookedDay.date).where(
            BookedDay.family_id == family_id, BookedDay.status == "confirmed",
            BookedDay.payment_mode == "monthly", BookedDay.date < today())).all()
        invoiced = {(r.commune_id, r.period) for r in session.scalars(
            select(InvoicingRun).where(InvoicingRun.status == "finalised"))}
        uninvoiced = sorted({d.strftime("%Y-%m") for c, d in consumed
                             if (c, d.strftime("%Y-%m")) not in invoiced})
    found = []
    if unpaid:
        total = sum((i.remaining for i in unpaid), Decimal("0.00"))
        numbers = ", ".join(i.number for i in unpaid[:5])
        found.append({"code": "unpaid_invoices",
                      "message": f"{len(unpaid)} facture(s) restent à payer ({numbers}, "
                                 f"{euros(total)} au total) : réglez-les depuis « Mes "
                                 "factures » ou contactez la mairie."})
    if owed:
        total = sum((n.remaining for n in owed), Decimal("0.00"))
        found.append({"code": "credit_left",
                      "message": f"Un avoir de {euros(total)} reste à utiliser ou à vous "
                                 "rembourser : la mairie doit le solder avant la "
                                 "suppression."})
    if uninvoiced:
        months = ", ".join(f"{p[5:]}/{p[:4]}" for p in uninvoiced)
        found.append({"code": "uninvoiced_days",
                      "message": f"Des prestations consommées ({months}) ne sont pas encore "
                                 "facturées : la suppression sera possible une fois la "
                                 "facture du mois émise et réglée."})
    if paying:
        found.append({"code": "payment_under_way",
                      "message": "Un paiement en ligne est en cours : attendez qu'il se "
                                 "termine (au plus deux heures)."})
    return found


def _without(names: list[str], text: str | None) -> str | None:
    if not text or not names:
        return text
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
    return pattern.sub(CHILD, text)


def _scrub(value: Any, names: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: (CHILD if k in ("child_name", "child_first_name") and v else
                    _scrub(v, names)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, names) for v in value]
    if isinstance(value, str):
        return _without(names, value)
    return value


def erase(session: Session, family_id: str, version: int) -> None:
    names = sorted({n for n in [
        *(c["first_name"] for c in households.children_of(session, family_id)),
        *session.scalars(select(BookedDay.child_first_name).where(
            BookedDay.family_id == family_id)),
        *session.scalars(select(InvoiceLine.child_name).join(
            Invoice, Invoice.id == InvoiceLine.invoice_id).where(
            Invoice.family_id == family_id)),
    ] if n and n != CHILD}, key=len, reverse=True)
    invoice_ids = select(Invoice.id).where(Invoice.family_id == family_id)
    for line in session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id.in_(
            invoice_ids))):
        line.child_name = CHILD if line.child_name else None
        line.label = _without(names, line.label)
    for note in session.scalars(select(CreditNote).where(CreditNote.family_id == family_id)):
        note.reason = _without(names, note.reason)
        note.lines = _scrub(list(note.lines or []), names)
    for model in (HouseholdQuotient, ClaimAttempt, BookedDay, Attendance):
        session.execute(delete(model).where(model.family_id == family_id))
    households.forget(session, family_id, version)


def on_household_erased(session: Session, event: Event, data: dict[str, Any]) -> None:
    erase(session, data["family_id"], data["version"])


def privacy_blueprint() -> Blueprint:
    return internal_blueprint(NAME, export, blockers=blockers)


def audit_invoice(principal: Principal, invoice_id: str, action: str) -> None:
    """An agent (or platform admin) opened one invoice: the commune's audit log (issue 8).
    Called after the view answered, so only invoices the caller may see are recorded."""
    if not (principal.is_agent() or principal.platform_admin):
        return
    with current_context().db.sessions() as session:
        row = session.get(Invoice, invoice_id) if len(invoice_id) <= 36 else None
        commune = commune_by_id(session, row.commune_id) if row else None
    if row is not None and commune is not None:
        record_read(principal, service=NAME, slug=commune["slug"], family_id=row.family_id,
                    action=action, object_id=invoice_id)
