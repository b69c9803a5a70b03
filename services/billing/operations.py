"""Billing's use cases: each one a unit of work (rows, rules of ``domain``, events in the outbox).

``api`` parses and authorises, then calls here; the event handlers and the worker's loops call
the functions taking a ``session``. Nothing here knows Flask requests. Errors are ``Problem``
(French, problem+json).

Money is never lost, doubled or shown wrong:

- a payment's state change, the invoices it settles and its event are one transaction; the
  payment row is locked (``FOR UPDATE``) while it changes, so a replayed or concurrent
  notification finds the new state and changes nothing;
- what a payment brings beyond what its invoices still owe (they were settled meanwhile) becomes
  a credit note for the household, never silently dropped;
- numbers come from a counter row locked in the transaction that uses them.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import outbox
from services.common.auth import Principal
from services.common.config import Settings
from services.common.db import Database
from services.common.errors import Problem
from services.common.events import Event
from services.common.households import HOUSEHOLD_COMMUNES, HOUSEHOLDS, recipients
from services.common.logging import get_logger
from services.common.tenancy import COMMUNES, commune_or_404

from . import NAME, domain, pdf, runs
from .domain import ZERO, RuleError, as_str, euros, french_date, money
from .models import (
    Allocation,
    BillingSettings,
    ClaimAttempt,
    Counter,
    CreditNote,
    HouseholdQuotient,
    Invoice,
    InvoiceLine,
    InvoicingRun,
    Payment,
    PaymentCallback,
    PaymentInvoice,
    RefundedBooking,
    SimulatorDecision,
    Tariff,
    new_id,
)
from .providers import (
    InvalidNotification,
    Notification,
    PaymentOrder,
    PaymentProviders,
    Provider,
    ProviderError,
    SimulatorProvider,
    load_providers,
)
from .providers.simulator import SIGNATURE_HEADER as SIMULATOR_SIGNATURE

log = get_logger(__name__)

PAGE = 50
CLAIM_LIMIT = 5  # failed attempts per household ...
CLAIM_WINDOW = timedelta(minutes=15)  # ... in this window
NOT_FOUND_INVOICE = "Cette facture n'existe pas."
CLAIM_FAILED = ("Aucune facture ne correspond à cette référence et à ce montant. Vérifiez-les "
                "sur la facture papier, ou contactez la mairie.")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    return now().date()


def rule_problem(error: RuleError) -> Problem:
    return Problem(error.status, error.detail, errors=error.errors or None)


# --- small helpers ---------------------------------------------------------------------------


def settings_of(session: Session, commune_id: str) -> BillingSettings:
    found = session.get(BillingSettings, commune_id)
    return found or BillingSettings(commune_id=commune_id, bill_unjustified_absence=True,
                                    bill_unrecorded_bookings=True, due_days=30,
                                    online_payment_days=45, payment_instructions=None)


def commune_by_id(session: Session, commune_id: str) -> dict[str, Any] | None:
    row = session.execute(select(COMMUNES).where(COMMUNES.c.id == commune_id)).mappings().first()
    return dict(row) if row else None


def household_row(session: Session, family_id: str | None) -> dict[str, Any] | None:
    if not family_id:
        return None
    row = session.execute(select(HOUSEHOLDS).where(HOUSEHOLDS.c.family_id == family_id)
                          ).mappings().first()
    return dict(row) if row else None


def households_by_id(session: Session, family_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    ids = sorted(set(family_ids))
    for start in range(0, len(ids), 500):
        for row in session.execute(select(HOUSEHOLDS).where(
                HOUSEHOLDS.c.family_id.in_(ids[start:start + 500]))).mappings():
            found[row["family_id"]] = dict(row)
    return found


def recipients_of(session: Session, family_id: str | None) -> list[str]:
    found = household_row(session, family_id)
    return recipients(found["snapshot"]) if found else []


def payer_name(household: dict[str, Any] | None) -> str:
    if not household:
        return "Foyer"
    guardians = household["snapshot"].get("guardians", [])
    payer = next((g for g in guardians if g.get("pays")), guardians[0] if guardians else None)
    if payer is None:
        return household["family_name"]
    return f"{payer['first_name']} {payer['last_name']}"


def _insert_ignore(session: Session, model, values: dict[str, Any]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def next_numbers(session: Session, commune_id: str, year: int, kind: str,
                 count: int = 1) -> int:
    """The first of ``count`` consecutive numbers, reserved in this transaction (the counter
    row is locked until it ends: concurrent numberings wait; a rollback gives them back)."""
    _insert_ignore(session, Counter, {"commune_id": commune_id, "year": year, "kind": kind,
                                      "last": 0})
    counter = session.execute(
        select(Counter).where(Counter.commune_id == commune_id, Counter.year == year,
                              Counter.kind == kind)
        .with_for_update().execution_options(populate_existing=True)).scalar_one()
    first = counter.last + 1
    counter.last += count
    return first


def commune_code_of(session: Session, commune_id: str) -> str:
    commune = commune_by_id(session, commune_id)
    return domain.commune_code(commune["slug"] if commune else "xxx")


def lines_of(session: Session, invoice_id: str) -> list[InvoiceLine]:
    return list(session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
                                .order_by(InvoiceLine.position)))


def locked_invoice(session: Session, invoice_id: str) -> Invoice | None:
    return session.execute(select(Invoice).where(Invoice.id == invoice_id).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def settle(session: Session, invoice: Invoice, amount: Decimal, *, payment_id: str | None = None,
           credit_note_id: str | None = None) -> Decimal:
    """Spread ``amount`` over the invoice's lines in order; returns what it used."""
    if invoice.status == "cancelled" or amount <= 0:
        return ZERO
    lines = lines_of(session, invoice.id)
    parts = domain.spread(min(amount, invoice.remaining), [ln.amount - ln.settled for ln in lines])
    used = ZERO
    for line, part in zip(lines, parts, strict=True):
        if part <= 0:
            continue
        line.settled += part
        used += part
        session.add(Allocation(invoice_id=invoice.id, line_id=line.id, payment_id=payment_id,
                               credit_note_id=credit_note_id, amount=part))
    if payment_id:
        invoice.paid += used
    else:
        invoice.credited += used
    invoice.status = domain.invoice_status(invoice.total, invoice.paid + invoice.credited)
    return used


def pending_invoice_ids(session: Session, family_id: str) -> set[str]:
    """Invoices an online payment is under way for: credit is not used on them meanwhile."""
    rows = session.execute(
        select(PaymentInvoice.invoice_id).join(Payment, Payment.id == PaymentInvoice.payment_id)
        .where(Payment.family_id == family_id, Payment.status.in_(domain.PENDING)))
    return {r[0] for r in rows}


def use_credit(session: Session, commune_id: str, family_id: str) -> Decimal:
    """Apply the household's available credit notes to its open invoices (oldest first)."""
    notes = list(session.scalars(
        select(CreditNote).where(CreditNote.commune_id == commune_id,
                                 CreditNote.family_id == family_id,
                                 CreditNote.status == "available", CreditNote.remaining > 0)
        .order_by(CreditNote.created_at, CreditNote.id).with_for_update()))
    if not notes:
        return ZERO
    busy = pending_invoice_ids(session, family_id)
    invoices = [i for i in session.scalars(
        select(Invoice).where(Invoice.commune_id == commune_id, Invoice.family_id == family_id,
                              Invoice.status.in_(("open", "partially_paid")))
        .order_by(Invoice.due_date, Invoice.number).with_for_update()) if i.id not in busy]
    used_total = ZERO
    for note in notes:
        for invoice in invoices:
            if note.remaining <= 0:
                break
            used = settle(session, invoice, note.remaining, credit_note_id=note.id)
            note.remaining -= used
            used_total += used
        if note.remaining <= 0:
            note.status = "used"
    return used_total


# --- events ------------------------------------------------------------------------------------


def publish(session: Session, event_type: str, data: dict[str, Any], commune_id: str | None
            ) -> None:
    outbox.add(session, Event.new(event_type, data, producer=NAME, commune_id=commune_id))


def publish_invoice_issued(session: Session, invoice: Invoice) -> None:
    if not invoice.family_id:
        return
    publish(session, "billing.invoice.issued", {
        "invoice_id": invoice.id, "number": invoice.number, "family_id": invoice.family_id,
        "amount": as_str(invoice.total), "due_date": invoice.due_date.isoformat(),
        "recipients": recipients_of(session, invoice.family_id),
        "issue_date": invoice.issue_date.isoformat(), "period": invoice.period,
    }, invoice.commune_id)


def publish_credit_note(session: Session, note: CreditNote) -> None:
    publish(session, "billing.credit_note.issued", {
        "credit_note_id": note.id, "family_id": note.family_id, "amount": as_str(note.amount),
        "origin": note.origin, "recipients": recipients_of(session, note.family_id),
        "number": note.number, "origin_id": note.origin_id, "invoice_id": note.invoice_id,
        "booking_ids": list(note.booking_ids or []),
    }, note.commune_id)


def create_credit_note(session: Session, *, commune_id: str, family_id: str, amount: Decimal,
                       origin: str, reason: str, origin_id: str | None = None,
                       invoice_id: str | None = None, booking_ids: list[str] | None = None,
                       lines: list[dict[str, Any]] | None = None,
                       created_by: str | None = None) -> CreditNote:
    """A credit note, numbered, published, and used at once on the household's open
    invoices (what is left stays available for the next ones)."""
    issued = today()
    sequence = next_numbers(session, commune_id, issued.year, "credit_note")
    note = CreditNote(
        id=new_id(), commune_id=commune_id, family_id=family_id,
        number=domain.credit_note_reference(issued.year, commune_code_of(session, commune_id),
                                            sequence),
        year=issued.year, sequence=sequence, origin=origin, origin_id=origin_id,
        invoice_id=invoice_id, reason=reason[:500], amount=money(amount),
        remaining=money(amount), status="available", issue_date=issued,
        lines=lines or [], booking_ids=booking_ids or [], created_by=created_by)
    session.add(note)
    for booking_id in booking_ids or []:
        session.add(RefundedBooking(booking_id=booking_id, credit_note_id=note.id))
    session.flush()
    publish_credit_note(session, note)
    use_credit(session, commune_id, family_id)
    return note


# --- payments: outcomes ------------------------------------------------------------------------


def payment_invoice_ids(session: Session, payment_id: str) -> list[str]:
    return [r[0] for r in session.execute(
        select(PaymentInvoice.invoice_id).where(PaymentInvoice.payment_id == payment_id)
        .order_by(PaymentInvoice.position))]


def locked_payment(session: Session, payment_id: str) -> Payment | None:
    return session.execute(select(Payment).where(Payment.id == payment_id).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one_or_none()


def config_ref_of(session: Session, commune_id: str) -> str | None:
    """The commune's ``payment_config_ref`` (tenancy read model): which provider account its
    payments use; the credentials themselves come from the environment."""
    commune = commune_by_id(session, commune_id)
    return ((commune or {}).get("settings") or {}).get("payment_config_ref")


def order_of(session: Session, payment: Payment, *, description: str = "",
             email: str | None = None) -> PaymentOrder:
    """The payment as its provider sees it."""
    return PaymentOrder(payment_id=payment.id, amount=payment.amount, description=description,
                        config_ref=config_ref_of(session, payment.commune_id), email=email,
                        return_url=payment.return_url, reference=payment.provider_reference,
                        created_at=payment.created_at)


def answer_problem(payment: Payment, provider: Provider, order: PaymentOrder,
                   answer: Notification) -> str | None:
    """Why a verified answer of ``provider`` cannot move ``payment`` (another payment, another
    amount, another account or operation than ours); None when it may."""
    if answer.payment_id != payment.id:
        return "unknown_payment"
    if answer.amount is None:
        if answer.status == "paid":
            return "rejected_amount"
    elif money(answer.amount) != payment.amount:
        return "rejected_amount"
    return provider.check(order, answer)


def _audit_answer(session: Session, payment: Payment, answer: Notification,
                  outcome: str) -> None:
    """A provider's answer to reconciliation, kept beside the callbacks (audit)."""
    session.add(PaymentCallback(
        provider=payment.provider, payment_id=payment.id, verified=outcome.endswith("applied"),
        outcome=outcome[:40], headers={}, remote_addr=None,
        body=json.dumps({"status": answer.status, "amount": answer.amount,
                         "reference": answer.provider_reference, "raw": answer.raw},
                        default=str)[:20000]))


def provider_problem(error: ProviderError) -> Problem:
    if error.status == 422:
        return Problem(422, str(error))
    return Problem(503, "Le service de paiement en ligne ne répond pas. Réessayez dans quelques "
                        "minutes, ou payez auprès de la mairie.")


def mark_paid(session: Session, payment: Payment, provider_reference: str) -> None:
    """The money arrived: settle the invoices, keep any excess as credit, publish."""
    payment.status = "paid"
    payment.provider_reference = provider_reference or payment.provider_reference or payment.id
    payment.paid_at = now()
    payment.updated_at = now()
    payment.reason = None
    left = payment.amount
    invoice_ids = payment_invoice_ids(session, payment.id)
    numbers = []
    for invoice_id in invoice_ids:
        invoice = locked_invoice(session, invoice_id)
        if invoice is None:
            continue
        numbers.append(invoice.number)
        if invoice.status == "cancelled" and invoice.kind == "basket" and invoice.paid == 0 \
                and invoice.credited == 0:
            # A basket paid after its expiry: the money follows the bookings (reservations
            # re-takes the places or cancels them with a refund, which a credit note pays).
            invoice.status = "open"
        left -= settle(session, invoice, left, payment_id=payment.id)
    if left > 0 and payment.family_id:
        create_credit_note(session, commune_id=payment.commune_id, family_id=payment.family_id,
                           amount=left, origin="manual", origin_id=None,
                           reason=f"Trop-perçu sur le paiement {payment.provider_reference}")
    if payment.family_id:
        publish(session, "billing.payment.succeeded", {
            "payment_id": payment.id, "family_id": payment.family_id,
            "invoice_ids": invoice_ids, "basket_id": payment.basket_id,
            "amount": as_str(payment.amount), "provider_reference": payment.provider_reference,
            "recipients": recipients_of(session, payment.family_id),
            "provider": payment.provider, "paid_at": payment.paid_at.isoformat(),
            "invoice_numbers": numbers,
        }, payment.commune_id)


def mark_failed(session: Session, payment: Payment, status: str,
                reason: str | None = None) -> None:
    payment.status = status
    payment.reason = reason or domain.FAILURE_REASONS[status]
    payment.updated_at = now()
    invoice_ids = payment_invoice_ids(session, payment.id)
    if payment.basket_id:
        for invoice_id in invoice_ids:
            invoice = locked_invoice(session, invoice_id)
            if invoice is not None and invoice.kind == "basket" and invoice.paid == 0 \
                    and invoice.credited == 0:
                invoice.status = "cancelled"
    if payment.family_id:
        publish(session, "billing.payment.failed", {
            "payment_id": payment.id, "family_id": payment.family_id,
            "basket_id": payment.basket_id, "status": status, "reason": payment.reason,
            "recipients": recipients_of(session, payment.family_id),
            "invoice_ids": invoice_ids, "amount": as_str(payment.amount),
        }, payment.commune_id)


def apply_outcome(session: Session, payment: Payment, reported: str,
                  provider_reference: str = "", reason: str | None = None) -> bool:
    """Move ``payment`` (locked) to what the provider reported; False when nothing changes."""
    new = domain.payment_transition(payment.status, reported)
    if new is None:
        return False
    if new == "paid":
        mark_paid(session, payment, provider_reference)
    elif new == "waiting":
        payment.status = "waiting"
        payment.updated_at = now()
    else:
        mark_failed(session, payment, new, reason)
    return True


# The session of the reconciliation under way: the simulator's record is read in it (SQLite
# would block a second transaction while this one holds the payment's lock).
_reconciling: ContextVar[Session | None] = ContextVar("billing_reconciling", default=None)


def reconcile(session: Session, payment: Payment,
              providers: dict[str, Provider] | None) -> str:
    """Ask ``payment``'s provider (``payment`` locked, pending) what became of it and apply a
    verified answer. Returns ``settled`` (paid or failed now), ``pending`` (still at the
    provider), ``unknown`` (no answer we may use) or ``unreachable`` (asking failed)."""
    provider = (providers or {}).get(payment.provider)
    if provider is None:
        return "unknown"
    order = order_of(session, payment)
    token = _reconciling.set(session)
    try:
        answer = provider.poll(order)
    except Exception as exc:
        log.warning("payment_poll_failed", payment_id=payment.id, error=str(exc))
        return "unreachable"
    finally:
        _reconciling.reset(token)
    if answer is None:
        return "unknown"
    problem = answer_problem(payment, provider, order, answer)
    if problem is not None:
        log.warning("security_event", kind="payment_poll_rejected",
                    provider=payment.provider, reason=problem, payment_id=payment.id)
        _audit_answer(session, payment, answer, f"reconciliation_{problem}")
        return "unknown"
    if apply_outcome(session, payment, answer.status, answer.provider_reference):
        _audit_answer(session, payment, answer, "reconciliation_applied")
    return "pending" if payment.status in domain.PENDING else "settled"


def expire_payments(db: Database, older_than: timedelta, *, limit: int = 100,
                    providers: dict[str, Provider] | None = None) -> int:
    """Payments left created/waiting too long: asked once more of their provider
    (reconciliation), then expired with ``billing.payment.failed``; returns how many changed.

    One the provider says it is still working on (PayFiP's "no result yet") stays pending and
    goes to the back of the queue (its ``updated_at``): asked again at the next pass, it never
    holds back the others nor keeps the worker's loop spinning."""
    cutoff = now() - older_than
    changed = 0
    with db.transaction() as session:
        query = (select(Payment).where(Payment.status.in_(domain.PENDING),
                                       Payment.created_at < cutoff)
                 .order_by(Payment.updated_at, Payment.created_at).limit(limit))
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        payments = list(session.scalars(query))
        for payment in payments:
            outcome = reconcile(session, payment, providers)
            if outcome == "pending":
                payment.updated_at = now()  # still at the provider: asked again later
                continue
            if outcome != "settled":  # no usable answer, or the provider is down
                mark_failed(session, payment, "expired")
            changed += 1
        return changed


# --- views -------------------------------------------------------------------------------------


def line_view(line: InvoiceLine) -> dict[str, Any]:
    return {
        "id": line.id, "child_id": line.child_id, "child_name": line.child_name,
        "activity_id": line.activity_id, "activity_name": line.activity_name,
        "label": line.label, "quantity": line.quantity, "unit": line.unit,
        "unit_price": as_str(line.unit_price), "amount": as_str(line.amount),
        "amount_paid": as_str(line.settled),
        "amount_remaining": as_str(max(line.amount - line.settled, ZERO)),
        "dates": list(line.dates or []),
        "detail": f"{domain.quantity_label(line.quantity, line.unit)} {euros(line.amount)}",
    }


def invoice_view(invoice: Invoice, commune: dict[str, Any] | None,
                 lines: list[InvoiceLine] | None = None) -> dict[str, Any]:
    view = {
        "id": invoice.id,
        "commune": {"id": invoice.commune_id, "slug": commune["slug"] if commune else None,
                    "name": commune["name"] if commune else None},
        "reference": invoice.number, "number": invoice.number, "label": invoice.label,
        "kind": invoice.kind, "period": invoice.period, "family_id": invoice.family_id,
        "payer_name": invoice.payer_name, "issue_date": invoice.issue_date,
        "due_date": invoice.due_date, "payment_deadline": invoice.payment_deadline,
        "status": invoice.status, "amount": as_str(invoice.total),
        "amount_paid": as_str(invoice.paid), "amount_credited": as_str(invoice.credited),
        "amount_remaining": as_str(invoice.remaining), "hidden": invoice.hidden,
        "can_pay_online": invoice.status in ("open", "partially_paid")
        and invoice.payment_deadline >= today() and invoice.family_id is not None
        and invoice.kind != "basket",
    }
    if lines is not None:
        view["lines"] = [line_view(line) for line in lines]
        view["services"] = sorted({line.activity_name for line in lines})
    return view


def payment_view(session: Session, payment: Payment, *, agent: bool = False) -> dict[str, Any]:
    view = {"id": payment.id, "status": payment.status, "amount": as_str(payment.amount),
            "invoice_ids": payment_invoice_ids(session, payment.id),
            "basket_id": payment.basket_id, "provider": payment.provider,
            "method": payment.method, "created_at": payment.created_at,
            "paid_at": payment.paid_at, "reason": payment.reason}
    if agent:
        view["family_id"] = payment.family_id
        view["provider_reference"] = payment.provider_reference
        view["callbacks"] = [
            {"id": c.id, "received_at": c.received_at, "verified": c.verified,
             "outcome": c.outcome, "body": c.body}
            for c in session.scalars(select(PaymentCallback)
                                     .where(PaymentCallback.payment_id == payment.id)
                                     .order_by(PaymentCallback.received_at))]
    return view


def credit_note_view(note: CreditNote) -> dict[str, Any]:
    return {"id": note.id, "number": note.number, "reference": note.number,
            "family_id": note.family_id, "origin": note.origin, "origin_id": note.origin_id,
            "invoice_id": note.invoice_id, "reason": note.reason,
            "amount": as_str(note.amount), "remaining": as_str(note.remaining),
            "status": note.status, "issue_date": note.issue_date,
            "booking_ids": list(note.booking_ids or []), "lines": list(note.lines or [])}


def tariff_view(tariff: Tariff) -> dict[str, Any]:
    return {"id": tariff.id, "activity_code": tariff.activity_code,
            "activity_id": tariff.activity_id, "label": tariff.label,
            "unit_price": as_str(tariff.unit_price) if tariff.unit_price is not None else None,
            "brackets": tariff.brackets or [],
            "reduced_from_child": tariff.reduced_from_child,
            "reduced_rate": format((Decimal(tariff.reduced_rate_bp or 0) / 100).normalize(), "f"),
            "unbooked_surcharge": as_str(tariff.unbooked_surcharge or ZERO),
            "updated_at": tariff.updated_at}


def rule_of(tariff: Tariff) -> domain.TariffRule:
    return domain.TariffRule(
        unit_price=tariff.unit_price,
        brackets=tuple(domain.Bracket(b.get("max_quotient"), Decimal(b["price"]))
                       for b in tariff.brackets or []),
        reduced_from_child=tariff.reduced_from_child,
        reduced_rate=Decimal(tariff.reduced_rate_bp or 0) / 100,
        unbooked_surcharge=tariff.unbooked_surcharge or ZERO)


def run_view(run: InvoicingRun, session: Session | None = None) -> dict[str, Any]:
    """The run; with ``session``, its whole draft too (invoices and anomalies, for review)."""
    view = {"id": run.id, "period": run.period, "status": run.status,
            "total": as_str(run.total), "invoice_count": run.invoice_count,
            "anomaly_count": run.anomaly_count, "created_at": run.created_at,
            "updated_at": run.updated_at, "finalised_at": run.finalised_at}
    if session is not None:
        view.update(runs.draft_detail(session, run.id))
    return view


def encode_cursor(values: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[str]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "Le curseur de pagination est invalide.") from exc
    if not (isinstance(values, list) and all(isinstance(v, str) for v in values)):
        raise Problem(400, "Le curseur de pagination est invalide.")
    return values


# --- the use cases -----------------------------------------------------------------------------


@dataclass
class Billing:
    db: Database
    settings: Settings
    registry: PaymentProviders

    @classmethod
    def of(cls, db: Database, settings: Settings) -> Billing:
        billing = cls(db, settings, load_providers(settings))
        simulator = billing.providers.get("simulator")
        if isinstance(simulator, SimulatorProvider):
            simulator.decisions = billing.simulator_decision
        return billing

    @property
    def provider_name(self) -> str | None:
        """The provider of communes without a payment configuration of their own."""
        return self.registry.default

    @property
    def providers(self) -> dict[str, Provider]:
        """Every provider payments may use or that may call back, by name."""
        return self.registry.by_name

    @property
    def public_url(self) -> str:
        return self.settings.public_url.rstrip("/")

    def simulator(self) -> SimulatorProvider:
        provider = self.providers.get("simulator")
        if not isinstance(provider, SimulatorProvider):
            raise Problem(404)
        return provider

    # access --------------------------------------------------------------------------------------
    @staticmethod
    def _family(principal: Principal) -> str:
        if not principal.family_id:
            raise Problem(403, "Réservé aux comptes famille.")
        return principal.family_id

    @staticmethod
    def _can_see_as_agent(principal: Principal, commune: dict[str, Any] | None) -> bool:
        if principal.platform_admin:
            return True
        return bool(commune) and principal.is_agent_of(commune["slug"])

    def _invoice_for(self, session: Session, principal: Principal, invoice_id: str,
                     *, lock: bool = False) -> tuple[Invoice, dict[str, Any] | None]:
        """The invoice if the caller may see it (its household, or an agent of its commune);
        404 otherwise, whoever's it is."""
        invoice = locked_invoice(session, invoice_id) if lock else session.get(Invoice,
                                                                              invoice_id)
        if invoice is None:
            raise Problem(404, NOT_FOUND_INVOICE)
        commune = commune_by_id(session, invoice.commune_id)
        if principal.family_id and invoice.family_id == principal.family_id:
            return invoice, commune
        if not principal.family_id and self._can_see_as_agent(principal, commune):
            return invoice, commune
        raise Problem(404, NOT_FOUND_INVOICE)

    # tariffs and settings ------------------------------------------------------------------------
    def list_tariffs(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            rows = session.scalars(select(Tariff).where(Tariff.commune_id == commune["id"])
                                   .order_by(Tariff.activity_code))
            return {"items": [tariff_view(t) for t in rows], "next": None}

    def put_tariff(self, slug: str, code: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            domain.check_tariff(payload)
        except RuleError as exc:
            raise rule_problem(exc) from exc
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            tariff = session.scalar(select(Tariff).where(Tariff.commune_id == commune["id"],
                                                         Tariff.activity_code == code))
            if tariff is None:
                tariff = Tariff(commune_id=commune["id"], activity_code=code)
                session.add(tariff)
            tariff.activity_id = payload.get("activity_id")
            tariff.label = payload["label"]
            tariff.unit_price = payload.get("unit_price")
            tariff.brackets = [{"max_quotient": b.get("max_quotient"), "price": as_str(b["price"])}
                               for b in payload.get("brackets") or []]
            tariff.reduced_from_child = payload.get("reduced_from_child")
            tariff.reduced_rate_bp = int((payload.get("reduced_rate") or ZERO) * 100)
            tariff.unbooked_surcharge = payload.get("unbooked_surcharge") or ZERO
            tariff.updated_at = now()
            session.flush()
            return tariff_view(tariff)

    def delete_tariff(self, slug: str, code: str) -> None:
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            tariff = session.scalar(select(Tariff).where(Tariff.commune_id == commune["id"],
                                                         Tariff.activity_code == code))
            if tariff is None:
                raise Problem(404, "Ce tarif n'existe pas.")
            session.delete(tariff)

    def get_settings(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            return self._settings_view(settings_of(session, commune["id"]))

    @staticmethod
    def _settings_view(found: BillingSettings) -> dict[str, Any]:
        return {key: getattr(found, key) for key in (
            "bill_unjustified_absence", "bill_unrecorded_bookings", "due_days",
            "online_payment_days", "payment_instructions")}

    def put_settings(self, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            found = session.get(BillingSettings, commune["id"])
            if found is None:
                found = settings_of(session, commune["id"])
                session.add(found)
            for key, value in payload.items():
                setattr(found, key, value)
            found.updated_at = now()
            session.flush()
            return self._settings_view(found)

    def put_quotient(self, slug: str, family_id: str, quotient: int | None) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            member = session.execute(select(HOUSEHOLD_COMMUNES.c.family_id).where(
                HOUSEHOLD_COMMUNES.c.family_id == family_id,
                HOUSEHOLD_COMMUNES.c.commune_id == commune["id"])).first()
            if member is None:
                raise Problem(404, "Ce foyer n'est pas connu dans cette commune.")
            row = session.get(HouseholdQuotient, (commune["id"], family_id))
            if row is None:
                row = HouseholdQuotient(commune_id=commune["id"], family_id=family_id)
                session.add(row)
            row.quotient = quotient
            row.updated_at = now()
            return {"family_id": family_id, "quotient": quotient}

    # invoicing runs ------------------------------------------------------------------------------
    def start_run(self, principal: Principal, slug: str, period: str, *,
                  detail: bool = True) -> tuple[dict[str, Any], bool]:
        """The period's draft, computed anew; a finalised period's run unchanged (created:
        False, nothing made twice). ``detail``: the answer carries the whole draft."""
        try:
            domain.period_bounds(period)
        except RuleError as exc:
            raise rule_problem(exc) from exc
        for _attempt in range(2):
            try:
                with self.db.transaction() as session:
                    commune = commune_or_404(session, slug)
                    run = session.execute(
                        select(InvoicingRun).where(InvoicingRun.commune_id == commune["id"],
                                                   InvoicingRun.period == period)
                        .with_for_update()).scalar_one_or_none()
                    if run is not None and run.status == "finalised":
                        return run_view(run, session if detail else None), False
                    created = run is None
                    if run is None:
                        run = InvoicingRun(commune_id=commune["id"], period=period,
                                           created_by=principal.account_id, status="draft")
                        session.add(run)
                    found = settings_of(session, commune["id"])
                    try:
                        runs.prepare(session, run, commune["id"], period, domain.RunSettings(
                            found.bill_unjustified_absence, found.bill_unrecorded_bookings))
                    except RuleError as exc:
                        raise rule_problem(exc) from exc
                    run.updated_at = now()
                    session.flush()
                    return run_view(run, session if detail else None), created
            except IntegrityError:
                continue  # another agent created the period's run at the same moment
        raise Problem(409, "Une autre campagne de facturation est en cours pour cette période.")

    def list_runs(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            rows = session.scalars(select(InvoicingRun)
                                   .where(InvoicingRun.commune_id == commune["id"])
                                   .order_by(InvoicingRun.period.desc()))
            return {"items": [run_view(r) for r in rows], "next": None}

    def get_run(self, slug: str, run_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            run = session.get(InvoicingRun, run_id)
            if run is None or run.commune_id != commune["id"]:
                raise Problem(404, "Cette campagne de facturation n'existe pas.")
            return run_view(run, session)

    def finalise_run(self, principal: Principal, slug: str, run_id: str, *,
                     detail: bool = True) -> dict[str, Any]:
        """Issue the draft's invoices, numbered, and publish them; a second call changes
        nothing (the run row is locked, a finalised run is answered as it is). Streamed
        (``runs.issue``): memory does not grow with the number of households."""
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            run = session.execute(select(InvoicingRun).where(InvoicingRun.id == run_id)
                                  .with_for_update()
                                  .execution_options(populate_existing=True)
                                  ).scalar_one_or_none()
            if run is None or run.commune_id != commune["id"]:
                raise Problem(404, "Cette campagne de facturation n'existe pas.")
            if run.status == "finalised":
                return run_view(run, session if detail else None)
            found = settings_of(session, commune["id"])
            runs.issue(session, run, commune, today(), found.due_days,
                       found.online_payment_days)
            # Credit waiting to be used: only the households that have some.
            with_credit = select(CreditNote.family_id).where(
                CreditNote.commune_id == commune["id"], CreditNote.status == "available",
                CreditNote.remaining > 0)
            for family_id in sorted(session.scalars(
                    select(Invoice.family_id).where(Invoice.run_id == run.id,
                                                    Invoice.family_id.in_(with_credit))
                    .distinct())):
                use_credit(session, commune["id"], family_id)
            run.status = "finalised"
            run.finalised_at = now()
            run.finalised_by = principal.account_id
            run.updated_at = now()
            session.flush()
            return run_view(run, session if detail else None)

    # manual invoices (agents) --------------------------------------------------------------------
    def create_invoice(self, principal: Principal, slug: str,
                       payload: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            family_id = payload.get("family_id")
            household = household_row(session, family_id)
            # Only a household of this commune: an agent must not bill another commune's
            # families (found by the authorization matrix, tests/security).
            if family_id and (household is None or session.execute(
                    select(HOUSEHOLD_COMMUNES.c.family_id).where(
                        HOUSEHOLD_COMMUNES.c.family_id == family_id,
                        HOUSEHOLD_COMMUNES.c.commune_id == commune["id"])).first() is None):
                raise Problem(422, errors={"family_id": [
                    "Ce foyer n'est pas connu dans cette commune."]})
            found = settings_of(session, commune["id"])
            issued = payload.get("issue_date") or today()
            sequence = next_numbers(session, commune["id"], issued.year, "invoice")
            lines = []
            for position, item in enumerate(payload["lines"]):
                amount = money(item["unit_price"] * item["quantity"])
                lines.append(InvoiceLine(
                    position=position, child_id=None, child_name=item.get("child_name"),
                    activity_id=None, activity_name=item["label"], label=item["label"],
                    quantity=item["quantity"], unit=item.get("unit") or "jours",
                    unit_price=item["unit_price"], amount=amount, settled=ZERO, dates=[],
                    booking_ids=[]))
            total = sum((ln.amount for ln in lines), ZERO)
            invoice = Invoice(
                commune_id=commune["id"], family_id=family_id,
                payer_name=payload.get("payer_name") or payer_name(household),
                number=domain.invoice_reference(issued.year, domain.commune_code(slug),
                                                sequence),
                year=issued.year, sequence=sequence, kind="manual",
                label=payload.get("label") or f"Facture du {french_date(issued)}",
                period=payload.get("period"), issue_date=issued,
                due_date=payload.get("due_date") or issued + timedelta(days=found.due_days),
                payment_deadline=issued + timedelta(days=found.online_payment_days),
                status="open" if total > 0 else "paid", total=total, paid=ZERO,
                credited=ZERO, hidden=False)
            session.add(invoice)
            session.flush()
            for line in lines:
                line.invoice_id = invoice.id
                session.add(line)
            session.flush()
            publish_invoice_issued(session, invoice)
            if family_id:
                use_credit(session, commune["id"], family_id)
            return invoice_view(invoice, commune, lines)

    def cancel_invoice(self, slug: str, invoice_id: str) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            invoice = locked_invoice(session, invoice_id)
            if invoice is None or invoice.commune_id != commune["id"]:
                raise Problem(404, NOT_FOUND_INVOICE)
            if invoice.paid > 0:
                raise Problem(409, "Cette facture a reçu des paiements : émettez un avoir pour "
                                   "la corriger.")
            if invoice.status != "cancelled":
                # Credit used on it goes back to its credit notes.
                for allocation in session.scalars(select(Allocation).where(
                        Allocation.invoice_id == invoice.id,
                        Allocation.credit_note_id.is_not(None))):
                    note = session.get(CreditNote, allocation.credit_note_id)
                    note.remaining += allocation.amount
                    note.status = "available"
                    session.delete(allocation)
                for line in lines_of(session, invoice.id):
                    line.settled = ZERO
                invoice.credited = ZERO
                invoice.status = "cancelled"
            return invoice_view(invoice, commune, lines_of(session, invoice.id))

    def record_payment(self, principal: Principal, slug: str, invoice_id: str,
                       payload: dict[str, Any]) -> dict[str, Any]:
        """A payment at the counter (cash, cheque, CESU, transfer), recorded by an agent."""
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            invoice = locked_invoice(session, invoice_id)
            if invoice is None or invoice.commune_id != commune["id"]:
                raise Problem(404, NOT_FOUND_INVOICE)
            if invoice.status not in ("open", "partially_paid"):
                raise Problem(409, "Cette facture n'a plus rien à payer.")
            if payload["amount"] > invoice.remaining:
                raise Problem(422, errors={"amount": [
                    f"Le reste à payer est de {euros(invoice.remaining)}."]})
            payment = Payment(commune_id=commune["id"], family_id=invoice.family_id,
                              provider="counter", method=payload["method"], status="created",
                              amount=payload["amount"], recorded_by=principal.account_id)
            session.add(payment)
            session.flush()
            session.add(PaymentInvoice(payment_id=payment.id, invoice_id=invoice.id,
                                       amount=payload["amount"]))
            session.flush()
            mark_paid(session, payment, payload.get("reference") or
                      f"GUICHET-{payment.id[:8].upper()}")
            return payment_view(session, payment, agent=True)

    # invoices: parents ---------------------------------------------------------------------------
    def list_invoices(self, principal: Principal, slug: str, *, status: str | None,
                      hidden: bool | None, cursor: str | None, period: str | None = None,
                      family_id: str | None = None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            query = select(Invoice).where(Invoice.commune_id == commune["id"])
            if principal.family_id:
                query = query.where(Invoice.family_id == principal.family_id)
                query = query.where(Invoice.hidden.is_(bool(hidden)))
            else:
                if family_id:
                    query = query.where(Invoice.family_id == family_id)
                if hidden is not None:
                    query = query.where(Invoice.hidden.is_(hidden))
                if period:
                    query = query.where(Invoice.period == period)
            if status == "open":
                query = query.where(Invoice.status.in_(("open", "partially_paid")))
            elif status:
                query = query.where(Invoice.status == status)
            if cursor:
                issue, number = decode_cursor(cursor)
                query = query.where(or_(Invoice.issue_date < date.fromisoformat(issue),
                                        and_(Invoice.issue_date == date.fromisoformat(issue),
                                             Invoice.number < number)))
            rows = list(session.scalars(query.order_by(Invoice.issue_date.desc(),
                                                       Invoice.number.desc()).limit(PAGE + 1)))
            items = rows[:PAGE]
            by_invoice: dict[str, list[InvoiceLine]] = {}
            if items:
                for line in session.scalars(select(InvoiceLine).where(
                        InvoiceLine.invoice_id.in_([i.id for i in items]))
                        .order_by(InvoiceLine.position)):
                    by_invoice.setdefault(line.invoice_id, []).append(line)
            views = []
            for invoice in items:
                view = invoice_view(invoice, commune, by_invoice.get(invoice.id, []))
                view.pop("lines")
                views.append(view)
            nxt = encode_cursor([items[-1].issue_date.isoformat(), items[-1].number]) \
                if len(rows) > PAGE else None
            return {"items": views, "next": nxt}

    def get_invoice(self, principal: Principal, invoice_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            invoice, commune = self._invoice_for(session, principal, invoice_id)
            return invoice_view(invoice, commune, lines_of(session, invoice.id))

    def set_hidden(self, principal: Principal, invoice_id: str, hidden: bool) -> dict[str, Any]:
        family_id = self._family(principal)
        with self.db.transaction() as session:
            invoice = locked_invoice(session, invoice_id)
            if invoice is None or invoice.family_id != family_id:
                raise Problem(404, NOT_FOUND_INVOICE)
            invoice.hidden = hidden
            return invoice_view(invoice, commune_by_id(session, invoice.commune_id),
                                lines_of(session, invoice.id))

    def claim(self, principal: Principal, reference: str, amount: Decimal) -> dict[str, Any]:
        """Attach an invoice issued without a household (paper, treasury) to the caller's,
        given its reference and amount. Every failure answers the same 404, whether the
        reference does not exist, the amount differs or the invoice is another household's;
        failed attempts are limited per household."""
        family_id = self._family(principal)
        commune_ids = [c.get("id") for c in principal.communes.values() if c.get("id")]
        with self.db.transaction() as session:
            recent = session.scalar(select(func.count()).select_from(ClaimAttempt).where(
                ClaimAttempt.family_id == family_id, ClaimAttempt.succeeded.is_(False),
                ClaimAttempt.at > now() - CLAIM_WINDOW))
            if recent >= CLAIM_LIMIT:
                raise Problem(429, "Trop de tentatives : réessayez dans un quart d'heure.",
                              headers={"Retry-After": str(int(CLAIM_WINDOW.total_seconds()))})
            invoice = session.execute(
                select(Invoice).where(Invoice.number == reference.strip().upper(),
                                      Invoice.commune_id.in_(commune_ids))
                .with_for_update()).scalars().first() if commune_ids else None
            ok = (invoice is not None and invoice.total == money(amount)
                  and invoice.family_id in (None, family_id) and invoice.status != "cancelled")
            session.add(ClaimAttempt(family_id=family_id, succeeded=ok))
            if not ok:
                log.info("invoice_claim_refused", family_id=family_id)
                result = None
            else:
                invoice.family_id = family_id
                invoice.hidden = False
                use_credit(session, invoice.commune_id, family_id)
                result = invoice_view(invoice, commune_by_id(session, invoice.commune_id),
                                      lines_of(session, invoice.id))
        if result is None:
            raise Problem(404, CLAIM_FAILED)
        return result

    # documents -----------------------------------------------------------------------------------
    def _commune_party(self, commune: dict[str, Any] | None) -> pdf.Party:
        if not commune:
            return pdf.Party("Commune")
        settings = commune.get("settings") or {}
        lines = []
        address = settings.get("address") or {}
        if address:
            lines += [address.get("line1") or "", address.get("line2") or "",
                      f"{address.get('postal_code', '')} {address.get('city', '')}"]
        if settings.get("contact_email"):
            lines.append(settings["contact_email"])
        if settings.get("phone"):
            lines.append(f"Tél. {settings['phone']}")
        return pdf.Party(commune["name"], [line for line in lines if line.strip()])

    @staticmethod
    def _household_party(session: Session, family_id: str | None, fallback: str) -> pdf.Party:
        found = household_row(session, family_id)
        if not found or found["snapshot"].get("erased"):  # erased: the name as issued only
            return pdf.Party(fallback)
        address = found["snapshot"].get("address") or {}
        lines = [address.get("line1") or "", address.get("line2") or "",
                 f"{address.get('postal_code', '')} {address.get('city', '')}".strip()]
        return pdf.Party(f"{payer_name(found)} (foyer {found['family_name']})",
                         [line for line in lines if line])

    def invoice_pdf(self, principal: Principal, invoice_id: str) -> tuple[bytes, str]:
        with self.db.sessions() as session:
            invoice, commune = self._invoice_for(session, principal, invoice_id)
            lines = lines_of(session, invoice.id)
            found = settings_of(session, invoice.commune_id)
            notes = [
                "Comment payer : en ligne sur le portail famille (rubrique « Mes factures ») "
                f"jusqu'au {french_date(invoice.payment_deadline)}, ou auprès de la mairie "
                "(espèces, chèque à l'ordre du Trésor public, CESU). Rappelez la référence "
                f"{invoice.number}.",
            ]
            if found.payment_instructions:
                notes.append(found.payment_instructions)
            if invoice.status == "paid":
                notes.insert(0, "Cette facture est acquittée.")
            doc = pdf.Document(
                title="Facture", reference=invoice.number,
                commune=self._commune_party(commune),
                household=self._household_party(session, invoice.family_id,
                                                invoice.payer_name),
                facts=[("Date d'émission", french_date(invoice.issue_date)),
                       ("Échéance", french_date(invoice.due_date)),
                       ("Période", domain.period_label(invoice.period) if invoice.period
                        else "-")],
                rows=[pdf.Row(ln.label, domain.quantity_label(ln.quantity, ln.unit),
                              pdf.amount(ln.unit_price), pdf.amount(ln.amount),
                              pdf.amount(max(ln.amount - ln.settled, ZERO))) for ln in lines],
                extra_column="Reste à payer",
                totals=[("Total", pdf.amount(invoice.total)),
                        ("Déjà payé", pdf.amount(invoice.paid)),
                        ("Avoirs déduits", pdf.amount(invoice.credited)),
                        ("Reste à payer", pdf.amount(invoice.remaining))],
                notes=notes)
            return pdf.render(doc), f"facture-{invoice.number}.pdf"

    def credit_note_pdf(self, principal: Principal, note_id: str) -> tuple[bytes, str]:
        with self.db.sessions() as session:
            note = session.get(CreditNote, note_id)
            commune = commune_by_id(session, note.commune_id) if note else None
            visible = note is not None and (
                (principal.family_id and note.family_id == principal.family_id)
                or (not principal.family_id and self._can_see_as_agent(principal, commune)))
            if not visible:
                raise Problem(404, "Cet avoir n'existe pas.")
            rows = [pdf.Row(ln.get("label", note.reason), ln.get("quantity", "1"),
                            pdf.amount(Decimal(ln["amount"])), pdf.amount(Decimal(ln["amount"])))
                    for ln in note.lines or []] or [
                pdf.Row(note.reason, "1", pdf.amount(note.amount), pdf.amount(note.amount))]
            doc = pdf.Document(
                title="Avoir", reference=note.number, commune=self._commune_party(commune),
                household=self._household_party(session, note.family_id, "Foyer"),
                facts=[("Date", french_date(note.issue_date))],
                rows=rows,
                totals=[("Montant de l'avoir", pdf.amount(note.amount)),
                        ("Reste à utiliser", pdf.amount(note.remaining))],
                notes=["Cet avoir est déduit automatiquement de vos prochaines factures ; le "
                       "solde éventuel vous est remboursé sur demande à la mairie."])
            return pdf.render(doc), f"avoir-{note.number}.pdf"

    def attestation_pdf(self, principal: Principal, slug: str, year: int
                        ) -> tuple[bytes, str]:
        family_id = self._family(principal)
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            first = datetime(year, 1, 1, tzinfo=UTC)
            last = datetime(year + 1, 1, 1, tzinfo=UTC)
            rows = session.execute(
                select(InvoiceLine.child_name, InvoiceLine.activity_name,
                       func.sum(Allocation.amount))
                .join(Allocation, Allocation.line_id == InvoiceLine.id)
                .join(Payment, Payment.id == Allocation.payment_id)
                .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                .where(Invoice.family_id == family_id, Invoice.commune_id == commune["id"],
                       Payment.status == "paid", Payment.paid_at >= first,
                       Payment.paid_at < last)
                .group_by(InvoiceLine.child_name, InvoiceLine.activity_name)
                .order_by(InvoiceLine.child_name, InvoiceLine.activity_name)).all()
            # sum() keeps the column's type: Decimal euros
            amounts = [(child, activity, total or ZERO) for child, activity, total in rows]
            total = sum((a for _, _, a in amounts), ZERO)
            reference = f"ATT-{year}-{domain.commune_code(slug)}"
            doc = pdf.Document(
                title="Attestation de paiement", reference=reference,
                commune=self._commune_party(commune),
                household=self._household_party(session, family_id, "Foyer"),
                facts=[("Année", str(year)), ("Établie le", french_date(today()))],
                columns=("Enfant et activité", "", "", "Montant payé"),
                rows=[pdf.Row(f"{child or '-'} - {activity}", "", "", pdf.amount(money(a)))
                      for child, activity, a in amounts],
                totals=[(f"Total payé en {year}", pdf.amount(money(total)))],
                notes=[f"La commune {commune['name']} atteste que le foyer a payé en {year} les "
                       "sommes ci-dessus pour l'accueil de ses enfants (frais de garde : à "
                       "reporter sur la déclaration de revenus pour les enfants de moins de 6 "
                       "ans au 1er janvier, selon les règles en vigueur)."])
            return pdf.render(doc), f"attestation-{year}-{slug}.pdf"

    # payments ------------------------------------------------------------------------------------
    def _provider_for(self, commune: dict[str, Any] | None) -> tuple[str, Provider]:
        """The provider of the commune's payments: its own configuration
        (``payment_config_ref``), else ``PAYMENT_PROVIDER``."""
        ref = ((commune or {}).get("settings") or {}).get("payment_config_ref")
        name = self.registry.for_ref(ref)
        if ref and self.registry.kind_of(ref) is None and not self.settings.dev:
            log.warning("payment_config_missing", commune_id=(commune or {}).get("id"),
                        payment_config_ref=ref, provider=name)
        provider = self.providers.get(name) if name else None
        if provider is None:
            raise Problem(422, "Le paiement en ligne n'est pas proposé par cette commune : "
                               "payez auprès de la mairie.")
        return name, provider

    @staticmethod
    def _start(session: Session, payment: Payment, provider: Provider, description: str,
               email: str | None) -> str:
        """Opens the payment at its provider (inside the transaction creating it: a failure
        leaves nothing behind) and keeps the provider's reference of the operation."""
        try:
            redirect = provider.start(order_of(session, payment, description=description,
                                               email=email))
        except ProviderError as exc:
            log.warning("payment_start_failed", provider=provider.name, payment_id=payment.id,
                        error=str(exc))
            raise provider_problem(exc) from exc
        if redirect.reference:
            payment.provider_reference = redirect.reference
        return redirect.url

    def _check_return_url(self, return_url: str) -> None:
        given, public = urlsplit(return_url), urlsplit(self.public_url + "/")
        if (given.scheme, given.netloc) != (public.scheme, public.netloc) or \
                not given.path.startswith(public.path or "/"):
            raise Problem(422, errors={"return_url": [
                "L'adresse de retour doit être une page du portail."]})

    def create_payment(self, principal: Principal, invoice_ids: list[str],
                       return_url: str) -> dict[str, Any]:
        family_id = self._family(principal)
        self._check_return_url(return_url)
        with self.db.transaction() as session:
            invoices = []
            for invoice_id in dict.fromkeys(invoice_ids):
                invoice = locked_invoice(session, invoice_id)
                if invoice is None or invoice.family_id != family_id:
                    raise Problem(404, NOT_FOUND_INVOICE)
                invoices.append(invoice)
            if len({i.commune_id for i in invoices}) > 1:
                raise Problem(422, errors={"invoice_ids": [
                    "Payez séparément les factures de communes différentes."]})
            errors = []
            for invoice in invoices:
                if invoice.status == "paid":
                    errors.append(f"La facture {invoice.number} est déjà payée.")
                elif invoice.status == "cancelled":
                    errors.append(f"La facture {invoice.number} est annulée.")
                elif invoice.kind == "basket":
                    errors.append(f"La facture {invoice.number} se paie depuis le panier de "
                                  "réservations.")
                elif invoice.payment_deadline < today():
                    errors.append(f"La date limite de paiement en ligne de la facture "
                                  f"{invoice.number} est dépassée : payez-la auprès de la "
                                  "mairie.")
            if errors:
                raise Problem(422, "Certaines factures ne peuvent pas être payées en ligne.",
                              errors={"invoice_ids": errors})
            total = sum((i.remaining for i in invoices), ZERO)
            if total <= 0:
                raise Problem(422, errors={"invoice_ids": ["Rien à payer."]})
            name, provider = self._provider_for(commune_by_id(session, invoices[0].commune_id))
            payment = Payment(commune_id=invoices[0].commune_id, family_id=family_id,
                              provider=name, status="created", amount=total,
                              return_url=return_url)
            session.add(payment)
            session.flush()
            for position, invoice in enumerate(invoices):
                session.add(PaymentInvoice(payment_id=payment.id, invoice_id=invoice.id,
                                           position=position, amount=invoice.remaining))
            email = principal.email or next(iter(recipients_of(session, family_id)), None)
            url = self._start(session, payment, provider,
                              "Factures " + ", ".join(i.number for i in invoices), email)
            return {"payment_id": payment.id, "payment_url": url, "amount": as_str(total),
                    "status": payment.status}

    def get_payment(self, principal: Principal, payment_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            payment = session.get(Payment, payment_id)
            commune = commune_by_id(session, payment.commune_id) if payment else None
            if payment is None:
                raise Problem(404, "Ce paiement n'existe pas.")
            if principal.family_id and payment.family_id == principal.family_id:
                return payment_view(session, payment)
            if not principal.family_id and self._can_see_as_agent(principal, commune):
                return payment_view(session, payment, agent=True)
            raise Problem(404, "Ce paiement n'existe pas.")

    def list_payments(self, slug: str, status: str | None, cursor: str | None
                      ) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            query = select(Payment).where(Payment.commune_id == commune["id"])
            if status:
                query = query.where(Payment.status == status)
            if cursor:
                created, pid = decode_cursor(cursor)
                moment = datetime.fromisoformat(created)
                query = query.where(or_(Payment.created_at < moment,
                                        and_(Payment.created_at == moment, Payment.id < pid)))
            rows = list(session.scalars(query.order_by(Payment.created_at.desc(),
                                                       Payment.id.desc()).limit(PAGE + 1)))
            items = rows[:PAGE]
            nxt = encode_cursor([items[-1].created_at.isoformat(), items[-1].id]) \
                if len(rows) > PAGE else None
            views = []
            for payment in items:
                view = payment_view(session, payment)
                view.update(family_id=payment.family_id,
                            provider_reference=payment.provider_reference)
                views.append(view)
            return {"items": views, "next": nxt}

    # callbacks -----------------------------------------------------------------------------------
    def _audit(self, provider: str, payment_id: str | None, verified: bool, outcome: str,
               body: bytes, headers: dict[str, str], remote_addr: str | None) -> None:
        with self.db.transaction() as session:
            session.add(PaymentCallback(provider=provider, payment_id=payment_id,
                                        verified=verified, outcome=outcome,
                                        body=body.decode("utf-8", "replace")[:20000],
                                        headers=headers, remote_addr=remote_addr))

    def handle_notification(self, provider_name: str, body: bytes, headers: dict[str, str],
                            remote_addr: str | None = None) -> dict[str, Any]:
        """A provider's notification: verified before anything changes (its signature, or the
        provider's own answer when it is not signed), amount, account and operation checked
        against our payment, idempotent (a replay answers success and changes nothing)."""
        provider = self.providers.get(provider_name)
        kept = {k: v for k, v in headers.items()
                if k.lower() not in ("authorization", "cookie")}
        if provider is None:
            raise Problem(404, "Ce prestataire de paiement n'est pas connu.")
        try:
            notification = provider.parse(body, headers)
        except InvalidNotification as exc:
            log.warning("security_event", kind="payment_callback_rejected",
                        provider=provider_name, reason=str(exc), remote_addr=remote_addr)
            self._audit(provider_name, None, False, "rejected_signature", body, kept,
                        remote_addr)
            raise Problem(400, "Notification refusée : signature invalide.") from exc
        except ProviderError as exc:  # asking the provider failed: reconciliation will
            log.warning("payment_callback_unverified", provider=provider_name, error=str(exc),
                        remote_addr=remote_addr)
            self._audit(provider_name, None, False, "provider_unavailable", body, kept,
                        remote_addr)
            raise Problem(503, "Le prestataire de paiement ne répond pas : la notification "
                               "sera rapprochée plus tard.") from exc
        with self.db.transaction() as session:
            payment = locked_payment(session, notification.payment_id) \
                if notification.payment_id else None
            if payment is None or payment.provider != provider_name:
                outcome = "unknown_payment"
            else:
                outcome = answer_problem(payment, provider, order_of(session, payment),
                                         notification)
                if outcome is None:
                    changed = apply_outcome(session, payment, notification.status,
                                            notification.provider_reference)
                    outcome = "applied" if changed else "ignored"
            session.add(PaymentCallback(
                provider=provider_name, payment_id=payment.id if payment else None,
                verified=outcome in ("applied", "ignored"), outcome=outcome,
                body=body.decode("utf-8", "replace")[:20000], headers=kept,
                remote_addr=remote_addr))
        if outcome not in ("applied", "ignored"):
            log.warning("security_event", kind="payment_callback_rejected",
                        provider=provider_name, reason=outcome,
                        payment_id=notification.payment_id, remote_addr=remote_addr)
            raise Problem(400, "Notification refusée : paiement inconnu, montant, compte ou "
                               "opération différents.")
        return {"status": "ok", "outcome": outcome}

    # pages of providers paid through a form (SystemPay) ------------------------------------------
    def provider_form(self, payment_id: str) -> dict[str, Any]:
        """What billing's page ``/payments/redirect/{id}`` shows: the provider's signed form
        for a payment still pending (the page then submits it), or that it is over."""
        with self.db.transaction() as session:
            payment = locked_payment(session, payment_id)
            provider = self.providers.get(payment.provider) if payment else None
            if payment is None or not hasattr(provider, "form"):
                raise Problem(404, "Ce paiement n'existe pas.")
            if payment.status == "created":
                payment.status = "waiting"
                payment.updated_at = now()
            pending = payment.status in domain.PENDING
            commune = commune_by_id(session, payment.commune_id)
            numbers = [session.get(Invoice, i).number
                       for i in payment_invoice_ids(session, payment.id)]
            form = None
            if pending:
                try:
                    form = provider.form(order_of(session, payment,
                                                  description=", ".join(numbers)))
                except ProviderError as exc:
                    raise provider_problem(exc) from exc
            return {"payment_id": payment.id, "amount": euros(payment.amount),
                    "status": payment.status, "pending": pending, "form": form,
                    "commune": commune["name"] if commune else "",
                    "references": numbers, "return_url": payment.return_url}

    # the simulator's page ------------------------------------------------------------------------
    def simulator_page(self, payment_id: str) -> dict[str, Any]:
        simulator = self.simulator()
        with self.db.transaction() as session:
            payment = locked_payment(session, payment_id)
            if payment is None or payment.provider != "simulator":
                raise Problem(404, "Ce paiement n'existe pas.")
            if payment.status == "created":
                payment.status = "waiting"
                payment.updated_at = now()
            commune = commune_by_id(session, payment.commune_id)
            numbers = [session.get(Invoice, i).number
                       for i in payment_invoice_ids(session, payment.id)]
            return {"payment_id": payment.id, "amount": euros(payment.amount),
                    "status": payment.status, "pending": payment.status in domain.PENDING,
                    "commune": commune["name"] if commune else "",
                    "references": numbers, "return_url": payment.return_url,
                    "token": simulator.form_token(payment.id)}

    def simulator_submit(self, payment_id: str, token: str, action: str,
                         deliver: bool = True) -> str:
        """The simulated bank's answer, sent as a signed notification through the same path
        as a real provider's; returns where to send the browser.

        Like a bank, the simulator first records what was decided (once: a second click, or a
        retry after an error, sends the first decision again), then notifies. A notification
        lost on the way (``deliver=False`` drops it on purpose, for fault tests; or billing
        failing while handling it) is recovered by reconciliation, which asks ``poll``."""
        simulator = self.simulator()
        if not simulator.check_form_token(payment_id, token):
            log.warning("security_event", kind="simulator_form_rejected", payment_id=payment_id)
            raise Problem(403, "Formulaire de paiement invalide.")
        reported = {"pay": "paid", "deny": "denied", "abandon": "cancelled"}.get(action)
        if reported is None:
            raise Problem(422, errors={"action": ["Choix inconnu."]})
        with self.db.sessions() as session:
            payment = session.get(Payment, payment_id)
            if payment is None:
                raise Problem(404, "Ce paiement n'existe pas.")
            amount, return_url = payment.amount, payment.return_url
        body, _ = simulator.notification(payment_id, amount, reported)
        body = self._simulator_decide(payment_id, body)
        if deliver:
            headers = {SIMULATOR_SIGNATURE: simulator.sign(body),
                       "Content-Type": "application/json"}
            self.handle_notification("simulator", body, headers, "simulator")
            with self.db.transaction() as session:
                decision = session.get(SimulatorDecision, payment_id)
                decision.delivered = True
        else:
            log.warning("simulator_notification_dropped", payment_id=payment_id)
        return return_url or self.public_url + "/"

    def _simulator_decide(self, payment_id: str, body: bytes) -> bytes:
        """Record the simulated bank's decision unless one exists; the one that stands."""
        try:
            with self.db.transaction() as session:
                decision = session.get(SimulatorDecision, payment_id)
                if decision is None:
                    session.add(SimulatorDecision(payment_id=payment_id, body=body.decode()))
                    return body
                return decision.body.encode()
        except IntegrityError:  # a concurrent click recorded it first
            return self.simulator_decision(payment_id) or body

    def simulator_decision(self, payment_id: str) -> bytes | None:
        """The simulated bank's recorded decision (its answer to ``poll``)."""
        current = _reconciling.get()
        if current is not None:
            decision = current.get(SimulatorDecision, payment_id)
            return decision.body.encode() if decision is not None else None
        with self.db.sessions() as session:
            decision = session.get(SimulatorDecision, payment_id)
            return decision.body.encode() if decision is not None else None

    # checkouts (reservations) ---------------------------------------------------------------------
    def checkout(self, key: str, payload: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The invoice and payment of a prepaid basket; the same basket again answers the
        same (200). Two concurrent calls for one basket make one: the unique basket id of
        the payment makes the second wait, fail, and read the first's answer."""
        if key != payload["basket_id"]:
            raise Problem(422, errors={"Idempotency-Key": [
                "L'en-tête Idempotency-Key doit être l'identifiant du panier."]})
        total = sum((line["amount"] for line in payload["lines"]), ZERO)
        if total != payload["amount"]:
            raise Problem(422, errors={"amount": [
                "Le montant ne correspond pas à la somme des lignes."]})
        if total <= 0:
            raise Problem(422, errors={"amount": ["Rien à payer."]})
        self._check_return_url(payload["return_url"])
        existing = self._existing_checkout(payload)
        if existing is not None:
            return existing, 200
        try:
            with self.db.transaction() as session:
                commune = commune_by_id(session, payload["commune_id"])
                if commune is None:
                    raise Problem(404, "Cette commune n'est pas connue du service facturation.")
                name, provider = self._provider_for(commune)
                payment = Payment(commune_id=commune["id"], family_id=payload["family_id"],
                                  provider=name, status="created", amount=total,
                                  return_url=payload["return_url"],
                                  basket_id=payload["basket_id"])
                session.add(payment)
                session.flush()  # the unique basket id: a concurrent twin stops here
                issued = today()
                sequence = next_numbers(session, commune["id"], issued.year, "invoice")
                invoice = Invoice(
                    commune_id=commune["id"], family_id=payload["family_id"],
                    payer_name=payer_name(household_row(session, payload["family_id"])),
                    number=domain.invoice_reference(issued.year,
                                                    domain.commune_code(commune["slug"]),
                                                    sequence),
                    year=issued.year, sequence=sequence, kind="basket",
                    label=f"Réservations du {french_date(issued)}",
                    basket_id=payload["basket_id"], issue_date=issued, due_date=issued,
                    payment_deadline=issued, status="open", total=total, paid=ZERO,
                    credited=ZERO, hidden=False)
                session.add(invoice)
                session.flush()
                for position, line in enumerate(payload["lines"]):
                    name = line.get("activity_name") or "Activité"
                    child = line.get("child_name")
                    session.add(InvoiceLine(
                        invoice_id=invoice.id, position=position, child_id=line["child_id"],
                        child_name=child, activity_id=line["activity_id"],
                        activity_name=name, label=f"{name} — {child}" if child else name,
                        quantity=len(line["dates"]), unit="jours",
                        unit_price=line["unit_price"], amount=line["amount"], settled=ZERO,
                        dates=[d.isoformat() for d in line["dates"]],
                        booking_ids=line.get("booking_ids") or []))
                session.add(PaymentInvoice(payment_id=payment.id, invoice_id=invoice.id,
                                           amount=total))
                email = next(iter(recipients_of(session, payload["family_id"])), None) or \
                    (commune.get("settings") or {}).get("contact_email")
                url = self._start(session, payment, provider, f"Facture {invoice.number}",
                                  email)
                return {"payment_id": payment.id, "payment_url": url,
                        "invoice_id": invoice.id}, 201
        except IntegrityError:
            existing = self._existing_checkout(payload)
            if existing is None:
                raise
            return existing, 200

    def _existing_checkout(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        with self.db.sessions() as session:
            payment = session.scalar(select(Payment).where(
                Payment.basket_id == payload["basket_id"]))
            if payment is None:
                return None
            if payment.family_id != payload["family_id"] or payment.amount != payload["amount"]:
                raise Problem(409, "Ce panier a déjà été présenté avec un autre contenu.")
            invoice_ids = payment_invoice_ids(session, payment.id)
            provider = self.providers.get(payment.provider)
            # the operation already opened, not a new one (PayFiP: the same idop)
            url = provider.resume(order_of(session, payment)) if provider else None
            return {"payment_id": payment.id, "payment_url": url,
                    "invoice_id": invoice_ids[0] if invoice_ids else None}

    # credit notes ---------------------------------------------------------------------------------
    def list_credit_notes(self, principal: Principal, slug: str,
                          family_id: str | None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            query = select(CreditNote).where(CreditNote.commune_id == commune["id"])
            if principal.family_id:
                query = query.where(CreditNote.family_id == principal.family_id)
            elif family_id:
                query = query.where(CreditNote.family_id == family_id)
            rows = session.scalars(query.order_by(CreditNote.created_at.desc()).limit(500))
            return {"items": [credit_note_view(n) for n in rows], "next": None}

    def issue_credit_note(self, principal: Principal, slug: str,
                          payload: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            family_id = payload["family_id"]
            member = session.execute(select(HOUSEHOLD_COMMUNES.c.family_id).where(
                HOUSEHOLD_COMMUNES.c.family_id == family_id,
                HOUSEHOLD_COMMUNES.c.commune_id == commune["id"])).first()
            invoice_id = payload.get("invoice_id")
            if invoice_id:
                invoice = session.get(Invoice, invoice_id)
                if invoice is None or invoice.commune_id != commune["id"] or \
                        invoice.family_id != family_id:
                    raise Problem(422, errors={"invoice_id": [
                        "Cette facture n'est pas une facture de ce foyer."]})
                if payload["amount"] > invoice.total:
                    raise Problem(422, errors={"amount": [
                        "L'avoir ne peut pas dépasser le montant de la facture."]})
                member = member or True
            if member is None:
                raise Problem(422, errors={"family_id": [
                    "Ce foyer n'est pas connu dans cette commune."]})
            note = create_credit_note(
                session, commune_id=commune["id"], family_id=family_id,
                amount=payload["amount"],
                origin="invoice_correction" if invoice_id else "manual",
                origin_id=invoice_id, invoice_id=invoice_id, reason=payload["reason"],
                created_by=principal.account_id)
            return credit_note_view(note)

    def refund_credit_note(self, slug: str, note_id: str) -> dict[str, Any]:
        """Mark what is left of a credit note to be paid back (the treasury refunds it)."""
        with self.db.transaction() as session:
            commune = commune_or_404(session, slug)
            note = session.execute(select(CreditNote).where(CreditNote.id == note_id)
                                   .with_for_update()).scalar_one_or_none()
            if note is None or note.commune_id != commune["id"]:
                raise Problem(404, "Cet avoir n'existe pas.")
            if note.status == "available" and note.remaining > 0:
                note.status = "to_refund"
            elif note.status != "to_refund":
                raise Problem(409, "Cet avoir a déjà été entièrement utilisé.")
            return credit_note_view(note)

    # exports --------------------------------------------------------------------------------------
    def export_invoices(self, slug: str, period: str | None) -> tuple[str, str]:
        with self.db.sessions() as session:
            commune = commune_or_404(session, slug)
            query = select(Invoice).where(Invoice.commune_id == commune["id"])
            if period:
                try:
                    first, last = domain.period_bounds(period)
                except RuleError as exc:
                    raise rule_problem(exc) from exc
                query = query.where(or_(Invoice.period == period,
                                        and_(Invoice.period.is_(None),
                                             Invoice.issue_date >= first,
                                             Invoice.issue_date <= last)))
            out = io.StringIO()
            out.write("\ufeff")  # spreadsheets read UTF-8 with it
            writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
            writer.writerow(["reference", "type", "periode", "date_emission", "echeance",
                             "foyer", "payeur", "montant", "paye", "avoirs", "reste", "statut"])
            for invoice in session.scalars(query.order_by(Invoice.year, Invoice.sequence)):
                writer.writerow([
                    invoice.number, invoice.kind, invoice.period or "",
                    invoice.issue_date.isoformat(), invoice.due_date.isoformat(),
                    invoice.family_id or "", invoice.payer_name,
                    *(f"{v:.2f}".replace(".", ",") for v in (
                        invoice.total, invoice.paid, invoice.credited, invoice.remaining)),
                    invoice.status])
            return out.getvalue(), f"factures-{slug}-{period or 'toutes'}.csv"
