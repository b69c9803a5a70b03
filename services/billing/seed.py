"""Demo data of DESIGN section 7 owned by billing; idempotent (run at every `portail seed`).

Tariffs of the demo activities in both communes (keyed by activity code; ``activity_id`` is
``demo_id("activity", "<commune>:<code>")``, the id the demo activities are expected to have in
reservations), and past invoices of the CASSEREAU household in JolieVille: one paid, one to pay,
and one paper invoice not yet attached to any household ("je ne trouve pas ma facture").
No event is published: these are history, nobody is to be e-mailed about them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.db import Database

from . import domain
from .models import (
    Allocation,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentInvoice,
    Tariff,
)
from .operations import next_numbers

_NS = uuid.UUID("6f0b8a4e-6d43-4c36-9b62-6a1f0c2f3e11")  # the same in every service's seed


def demo_id(kind: str, key: str) -> str:
    """Stable ids, so that every service's demo data refers to the same commune or family."""
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


D = Decimal
COMMUNES = ("jolieville", "dammartin")
TARIFFS = [
    # code, label, unit price, brackets by quotient, reduced from child / rate, surcharge
    ("REPAS", "Restauration scolaire", None,
     [(600, "2.10"), (1000, "3.20"), (None, "4.10")], 3, D("20"), D("1.00")),
    ("MATIN", "Accueil périscolaire matin", D("2.50"), [], None, D("0"), D("1.00")),
    ("SOIR", "Accueil périscolaire soir", D("3.20"), [], None, D("0"), D("1.00")),
    ("MERCREDI", "Centre de loisirs mercredi", D("14.00"), [], None, D("0"), D("0.00")),
    ("ETUDE", "Étude surveillée", D("2.00"), [], None, D("0"), D("0.00")),
]
FAMILY = "CASSEREAU"
PAYER = "Marie CASSEREAU"
CHILDREN = {"Léa": demo_id("child", f"{FAMILY}:Léa"), "Hugo": demo_id("child", f"{FAMILY}:Hugo")}


def _month_start(day: date, back: int) -> date:
    year, month = day.year, day.month - back
    while month < 1:
        month += 12
        year -= 1
    return date(year, month, 1)


def seed(db: Database) -> list[str]:
    created: list[str] = []
    with db.transaction() as session:
        for slug in COMMUNES:
            created.extend(_seed_tariffs(session, slug))
        created.extend(_seed_invoices(session))
    return created


def _seed_tariffs(session: Session, slug: str) -> list[str]:
    commune_id = demo_id("commune", slug)
    made = 0
    for code, label, unit_price, brackets, from_child, rate, surcharge in TARIFFS:
        exists = session.scalar(select(Tariff.id).where(Tariff.commune_id == commune_id,
                                                        Tariff.activity_code == code))
        if exists:
            continue
        session.add(Tariff(
            id=demo_id("tariff", f"{slug}:{code}"), commune_id=commune_id, activity_code=code,
            activity_id=demo_id("activity", f"{slug}:{code}"), label=label,
            unit_price=unit_price,
            brackets=[{"max_quotient": bound, "price": price} for bound, price in brackets],
            reduced_from_child=from_child, reduced_rate_bp=int(rate * 100),
            unbooked_surcharge=surcharge))
        made += 1
    return [f"tarifs {slug}"] if made else []


def _invoice(session: Session, key: str, *, family_id: str | None, payer: str, issued: date,
             period: str | None, label: str, lines: list[tuple[str, str, int, Decimal]],
             kind: str = "monthly") -> Invoice | None:
    invoice_id = demo_id("invoice", key)
    if session.get(Invoice, invoice_id) is not None:
        return None
    commune_id = demo_id("commune", "jolieville")
    sequence = next_numbers(session, commune_id, issued.year, "invoice")
    rows = []
    for position, (child, activity, quantity, price) in enumerate(lines):
        rows.append(InvoiceLine(
            id=demo_id("invoice-line", f"{key}:{position}"), invoice_id=invoice_id,
            position=position, child_id=CHILDREN.get(child), child_name=child,
            activity_id=None, activity_name=activity,
            label=f"{activity} — {child}" if child else activity, quantity=quantity,
            unit="jours", unit_price=price, amount=domain.money(price * quantity),
            settled=Decimal("0.00"), dates=[], booking_ids=[]))
    total = sum((r.amount for r in rows), Decimal("0.00"))
    invoice = Invoice(
        id=invoice_id, commune_id=commune_id, family_id=family_id, payer_name=payer,
        number=domain.invoice_reference(issued.year, domain.commune_code("jolieville"),
                                        sequence),
        year=issued.year, sequence=sequence, kind=kind, label=label, period=period,
        issue_date=issued, due_date=issued + timedelta(days=30),
        payment_deadline=max(issued + timedelta(days=45),
                             datetime.now(UTC).date() + timedelta(days=30)),
        status="open", total=total, paid=Decimal("0.00"), credited=Decimal("0.00"),
        hidden=False)
    session.add(invoice)
    session.add_all(rows)
    session.flush()
    return invoice


def _seed_invoices(session: Session) -> list[str]:
    created = []
    family_id = demo_id("family", FAMILY)
    today = datetime.now(UTC).date()
    paid_issue = _month_start(today, 1)
    open_issue = _month_start(today, 0)

    paid = _invoice(
        session, f"jolieville:{FAMILY}:paid", family_id=family_id, payer=PAYER,
        issued=paid_issue, period=_month_start(paid_issue, 1).strftime("%Y-%m"),
        label=f"Facture du {domain.french_date(paid_issue)}",
        lines=[("Léa", "Restauration scolaire", 6, D("4.10"))])
    if paid is not None:
        payment = Payment(
            id=demo_id("payment", f"jolieville:{FAMILY}:paid"), commune_id=paid.commune_id,
            family_id=family_id, provider="simulator", method="online", status="paid",
            amount=paid.total, provider_reference=f"SIM-{paid_issue:%Y%m%d}-DEMO0001",
            created_at=datetime.combine(paid_issue + timedelta(days=7), datetime.min.time(),
                                        UTC),
            paid_at=datetime.combine(paid_issue + timedelta(days=7), datetime.min.time(), UTC))
        session.add(payment)
        session.add(PaymentInvoice(payment_id=payment.id, invoice_id=paid.id,
                                   amount=paid.total))
        for line in session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == paid.id)):
            line.settled = line.amount
            session.add(Allocation(invoice_id=paid.id, line_id=line.id, payment_id=payment.id,
                                   amount=line.amount))
        paid.paid = paid.total
        paid.status = "paid"
        created.append(f"facture payée {paid.number}")

    due = _invoice(
        session, f"jolieville:{FAMILY}:open", family_id=family_id, payer=PAYER,
        issued=open_issue, period=_month_start(open_issue, 1).strftime("%Y-%m"),
        label=f"Facture du {domain.french_date(open_issue)}",
        lines=[("Léa", "Restauration scolaire", 15, D("4.10")),
               ("Hugo", "Restauration scolaire", 14, D("4.10")),
               ("Léa", "Étude surveillée", 8, D("2.00"))])
    if due is not None:
        created.append(f"facture à payer {due.number}")

    paper = _invoice(
        session, "jolieville:paper:1", family_id=None, payer="M. ou Mme CASSEREAU",
        issued=paid_issue, period=None,
        label=f"Facture papier du {domain.french_date(paid_issue)}",
        lines=[("Hugo", "Accueil périscolaire soir", 10, D("3.20"))], kind="manual")
    if paper is not None:
        created.append(f"facture papier {paper.number} (à rattacher)")
    return created
