"""The monthly invoicing run, streamed: a commune's month is read, computed, drafted and issued
a chunk of households at a time, so that memory stays flat however many households it has.

Draft (``prepare``): the month's booked days and attendance are read in two streams ordered by
household (server-side cursors on PostgreSQL), merged, and cut into chunks of ``CHUNK``
households; each chunk is computed by ``domain.compute_run`` (every rule is per household: the
rank of a child, the quotient) and written as ``run_drafts`` rows, one per household with an
invoice or an anomaly, in one multi-row insert.

Finalisation (``issue``): the numbers of all the run's invoices are reserved at once (the
counter row stays locked until the commit: no gap, no duplicate), then the draft rows are read
back in the numbering order (family name, then id), chunk by chunk, and each chunk becomes its
invoices, their lines and one ``billing.invoice.issued`` per invoice, each kind in one
multi-row insert: a few statements per chunk instead of several per household.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from itertools import chain
from typing import Any

from sqlalchemy import BigInteger, delete, func, insert, select, type_coerce
from sqlalchemy.orm import Session

from services.common.db import mark
from services.common.events import Event
from services.common.households import CHILDREN, HOUSEHOLDS, recipients
from services.common.outbox import OUTBOX

from . import NAME, domain
from .domain import ZERO, as_str
from .models import (
    CENT,
    Attendance,
    BookedDay,
    HouseholdQuotient,
    Invoice,
    InvoiceLine,
    InvoicingRun,
    RunDraft,
    Tariff,
    new_id,
    utcnow,
)

CHUNK = 500  # households computed, drafted or issued together
FETCH = 5_000  # rows fetched at a time from a stream

# The price as stored (cents): turned into euros once per distinct price, not once per row.
_BOOKING_COLUMNS = (BookedDay.family_id, BookedDay.booking_id, BookedDay.child_id,
                    BookedDay.activity_id, BookedDay.date,
                    type_coerce(BookedDay.unit_price, BigInteger),
                    BookedDay.child_first_name, BookedDay.activity_name, BookedDay.status,
                    BookedDay.payment_mode)
_MARK_COLUMNS = (Attendance.family_id, Attendance.child_id, Attendance.activity_id,
                 Attendance.date, Attendance.status, Attendance.booking_id)


def _stream(session: Session, statement, size: int = FETCH):
    """A Core result read ``size`` rows at a time (a server-side cursor on PostgreSQL): no ORM
    machinery per row, and never the whole month in memory."""
    return session.connection().execute(statement.execution_options(yield_per=size))


def household_chunks(session: Session, commune_id: str, first: date, last: date,
                     size: int | None = None
                     ) -> Iterator[tuple[list[str], list[domain.DayBooking],
                                         list[domain.DayAttendance]]]:
    """``(family ids, their booked days, their attendance)`` of the period, ``size``
    households at a time (``CHUNK``), in family id order."""
    size = size or CHUNK
    bookings = chain.from_iterable(_stream(session, select(*_BOOKING_COLUMNS).where(
        BookedDay.commune_id == commune_id, BookedDay.date >= first, BookedDay.date <= last)
        .order_by(BookedDay.family_id)).partitions())
    marks = chain.from_iterable(_stream(session, select(*_MARK_COLUMNS).where(
        Attendance.commune_id == commune_id, Attendance.date >= first, Attendance.date <= last)
        .order_by(Attendance.family_id)).partitions())
    booking, mark_row = next(bookings, None), next(marks, None)
    families: list[str] = []
    day_bookings: list[domain.DayBooking] = []
    day_marks: list[domain.DayAttendance] = []
    previous = None
    euros: dict[int, Decimal] = {}
    while booking is not None or mark_row is not None:
        family = min(row[0] for row in (booking, mark_row) if row is not None)
        # Family ids are UUIDs: the database's order and Python's agree; a household met
        # twice would be drafted twice, so say it loudly rather than bill it twice.
        if previous is not None and family <= previous:
            raise RuntimeError("invoicing run: households not read in order")
        previous = family
        families.append(family)
        while booking is not None and booking[0] == family:
            cents = booking[5]
            price = euros.get(cents)
            if price is None:
                price = euros[cents] = (Decimal(cents) / 100).quantize(CENT)
            day_bookings.append(domain.DayBooking(booking[1], family, booking[2], booking[3],
                                                  booking[4], price, *booking[6:]))
            booking = next(bookings, None)
        while mark_row is not None and mark_row[0] == family:
            day_marks.append(domain.DayAttendance(*mark_row))
            mark_row = next(marks, None)
        if len(families) >= size:
            yield families, day_bookings, day_marks
            families, day_bookings, day_marks = [], [], []
    if families:
        yield families, day_bookings, day_marks


def _tariffs(session: Session, commune_id: str) -> dict[str, domain.TariffRule]:
    from .operations import rule_of  # the one reading of a tariff row

    return {t.activity_id: rule_of(t) for t in session.scalars(
        select(Tariff).where(Tariff.commune_id == commune_id, Tariff.activity_id.is_not(None)))}


def _draft_rows(run_id: str, result: domain.RunResult) -> list[dict[str, Any]]:
    anomalies: dict[str, list[dict]] = defaultdict(list)
    for anomaly in result.anomalies:
        anomalies[anomaly.family_id].append(anomaly.as_json())
    rows = []
    for invoice in result.invoices:
        rows.append({"run_id": run_id, "family_id": invoice.family_id,
                     "family_name": invoice.family_name, "total": invoice.total,
                     "line_count": len(invoice.lines),
                     "lines": [line.as_json() for line in invoice.lines],
                     "anomalies": anomalies.pop(invoice.family_id, [])})
    for family_id, found in anomalies.items():  # anomalies without an invoice
        rows.append({"run_id": run_id, "family_id": family_id, "family_name": "",
                     "total": ZERO, "line_count": 0, "lines": [], "anomalies": found})
    return rows


def prepare(session: Session, run: InvoicingRun, commune_id: str, period: str,
            settings: domain.RunSettings) -> None:
    """(Re)compute ``run``'s draft (the run row is locked by the caller)."""
    first, last = domain.period_bounds(period)
    session.flush()  # the run row exists before its drafts
    session.execute(delete(RunDraft).where(RunDraft.run_id == run.id))
    tariffs = _tariffs(session, commune_id)
    total, invoices, anomalies = ZERO, 0, 0
    for families, bookings, marks in household_chunks(session, commune_id, first, last):
        names = dict(session.execute(select(HOUSEHOLDS.c.family_id, HOUSEHOLDS.c.family_name)
                                     .where(HOUSEHOLDS.c.family_id.in_(families))).all())
        order: dict[str, tuple[str, str]] = {}
        child_names: dict[str, str] = {}
        for child_id, born, first_name in session.execute(
                select(CHILDREN.c.id, CHILDREN.c.birth_date, CHILDREN.c.first_name)
                .where(CHILDREN.c.family_id.in_(families))):
            order[child_id] = (born, child_id)
            child_names[child_id] = first_name
        quotients = dict(session.execute(
            select(HouseholdQuotient.family_id, HouseholdQuotient.quotient).where(
                HouseholdQuotient.commune_id == commune_id,
                HouseholdQuotient.family_id.in_(families))).all())
        result = domain.compute_run(bookings, marks, tariffs=tariffs, quotients=quotients,
                                    birth_order=order, names=names, child_names=child_names,
                                    settings=settings)
        rows = _draft_rows(run.id, result)
        if rows:
            session.execute(insert(RunDraft.__table__), rows)
        total += result.total
        invoices += len(result.invoices)
        anomalies += len(result.anomalies)
    run.draft = {}
    run.total, run.invoice_count, run.anomaly_count = total, invoices, anomalies


def draft_detail(session: Session, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The whole draft, as the API shows it for review: invoices in numbering order, anomalies
    by date. (Runs drafted before the drafts had their table keep theirs in ``run.draft``.)"""
    invoices, anomalies = [], []
    for row in session.scalars(select(RunDraft).where(RunDraft.run_id == run_id)
                               .order_by(RunDraft.family_name, RunDraft.family_id)):
        if row.line_count:
            invoices.append({"family_id": row.family_id, "family_name": row.family_name,
                             "total": as_str(row.total), "lines": row.lines})
        anomalies.extend(row.anomalies or [])
    anomalies.sort(key=lambda a: (a["date"], a["family_id"], a["child_id"], a["activity_id"],
                                  a["kind"]))
    return {"invoices": invoices, "anomalies": anomalies}


def _invoice_rows(run: InvoicingRun, commune: dict[str, Any], drafts: list,
                  households: dict[str, dict[str, Any]], first_number: int, issued: date,
                  due_days: int, online_days: int, label: str
                  ) -> tuple[list[dict], list[dict], list[dict]]:
    from .operations import payer_name

    code = domain.commune_code(commune["slug"])
    created = utcnow()
    invoices, lines, payloads, events = [], [], [], []
    for offset, draft in enumerate(drafts):
        total = sum((Decimal(line["amount"]) for line in draft.lines), ZERO)
        sequence = first_number + offset
        invoice = {
            "id": new_id(), "commune_id": commune["id"], "family_id": draft.family_id,
            "payer_name": payer_name(households.get(draft.family_id)),
            "number": domain.invoice_reference(issued.year, code, sequence),
            "year": issued.year, "sequence": sequence, "kind": "monthly", "label": label,
            "period": run.period, "run_id": run.id, "basket_id": None, "issue_date": issued,
            "due_date": issued + timedelta(days=due_days),
            "payment_deadline": issued + timedelta(days=online_days),
            "status": "open" if total > 0 else "paid", "total": total, "paid": ZERO,
            "credited": ZERO, "hidden": False, "created_at": created}
        invoices.append(invoice)
        for position, line in enumerate(draft.lines):
            lines.append({
                "id": new_id(), "invoice_id": invoice["id"], "position": position,
                "child_id": line["child_id"], "child_name": line["child_name"],
                "activity_id": line["activity_id"], "activity_name": line["activity_name"],
                "label": line["label"], "quantity": line["quantity"], "unit": "jours",
                "unit_price": Decimal(line["unit_price"]), "amount": Decimal(line["amount"]),
                "settled": ZERO, "dates": line["dates"], "booking_ids": line["booking_ids"]})
        household = households.get(draft.family_id)
        payloads.append({
            "invoice_id": invoice["id"], "number": invoice["number"],
            "family_id": draft.family_id, "amount": as_str(total),
            "due_date": invoice["due_date"].isoformat(),
            "recipients": recipients(household["snapshot"]) if household else [],
            "issue_date": issued.isoformat(), "period": run.period})
    for event in Event.new_many("billing.invoice.issued", payloads, producer=NAME,
                                commune_id=commune["id"]):
        # The envelope as ``outbox.add`` writes it (``to_dict``), without its deep copy.
        events.append({"event_id": event.id, "type": event.type, "envelope": dict(vars(event))})
    return invoices, lines, events


def issue(session: Session, run: InvoicingRun, commune: dict[str, Any], issued: date,
          due_days: int, online_days: int) -> int:
    """Issue ``run``'s draft (locked by the caller): numbered invoices, their lines, one
    ``billing.invoice.issued`` each (outbox). Returns how many invoices."""
    from .operations import households_by_id, next_numbers

    count = session.scalar(select(func.count()).select_from(RunDraft).where(
        RunDraft.run_id == run.id, RunDraft.line_count > 0)) or 0
    if not count:
        return 0
    number = next_numbers(session, commune["id"], issued.year, "invoice", count)
    label = f"Facture du {domain.french_date(issued)} — {domain.period_label(run.period)}"
    drafts = _stream(session, select(RunDraft.family_id, RunDraft.lines).where(
        RunDraft.run_id == run.id, RunDraft.line_count > 0)
        .order_by(RunDraft.family_name, RunDraft.family_id), CHUNK)
    issued_count = 0
    for chunk in drafts.partitions():
        households = households_by_id(session, [d.family_id for d in chunk])
        invoices, lines, events = _invoice_rows(run, commune, chunk, households, number,
                                                issued, due_days, online_days, label)
        number += len(chunk)
        issued_count += len(chunk)
        session.execute(insert(Invoice.__table__), invoices)
        session.execute(insert(InvoiceLine.__table__), lines)
        session.execute(OUTBOX.insert(), events)
    if issued_count != count:  # the draft changed under the lock: never leave a gap
        raise RuntimeError("invoicing run: the draft changed while it was issued")
    mark(session, "outbox")
    return issued_count
