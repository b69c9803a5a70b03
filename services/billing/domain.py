"""Billing rules, free of Flask and SQLAlchemy: money, tariffs, the monthly run, settlements,
payment states, references.

Amounts are ``Decimal`` euros. A price is kept exact while it is computed (a reduced rate may
give 3.485) and rounded once, to the cent, half up, where an amount is finally written: a line's
total. An invoice's total is the sum of its lines, so it always equals them.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, NamedTuple

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class RuleError(Exception):
    """A request that breaks a billing rule; ``errors`` by field, ``detail`` in French."""

    def __init__(self, errors: dict[str, list[str]] | None = None, detail: str | None = None,
                 status: int = 422):
        self.errors = errors or {}
        self.detail = detail
        self.status = status
        super().__init__(detail or str(errors))


# --- money -------------------------------------------------------------------------------------


def money(value: Any) -> Decimal:
    """Round once, to the cent, half up (``3.485`` → ``3.49``)."""
    try:
        return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise RuleError({"amount": ["Montant invalide."]}) from exc


def as_str(amount: Decimal) -> str:
    """The contract's form: ``"82.00"``."""
    return str(money(amount))


def euros(amount: Decimal) -> str:
    """French display: ``1 234,50 €`` (non-breaking spaces)."""
    sign = "-" if amount < 0 else ""
    units, cents = f"{abs(money(amount)):.2f}".split(".")
    groups = []
    while units:
        groups.insert(0, units[-3:])
        units = units[:-3]
    grouped = "\u202f".join(groups)
    return f"{sign}{grouped},{cents}\u00a0€"


def french_date(value: date) -> str:
    return value.strftime("%d/%m/%Y")


MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_bounds(period: str) -> tuple[date, date]:
    match = PERIOD.match(period or "")
    if not match:
        raise RuleError({"period": ["Période invalide (format attendu AAAA-MM)."]})
    year, month = int(match.group(1)), int(match.group(2))
    if year < 1:  # "0000-01" matches the pattern but is no date (found by schemathesis: 500)
        raise RuleError({"period": ["Période invalide (format attendu AAAA-MM)."]})
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def period_label(period: str) -> str:
    first, _ = period_bounds(period)
    return f"{MONTHS[first.month - 1]} {first.year}"


def quantity_label(quantity: int, unit: str = "jours") -> str:
    if unit == "jours":
        return f"{quantity} jour{'s' if quantity > 1 else ''}"
    return f"{quantity} {unit}"


# --- references --------------------------------------------------------------------------------


def commune_code(slug: str) -> str:
    """Three letters from the commune's slug: ``jolieville`` → ``JOL``."""
    text = unicodedata.normalize("NFKD", slug).encode("ascii", "ignore").decode()
    letters = re.sub(r"[^A-Za-z]", "", text).upper()
    return (letters + "XXX")[:3]


def invoice_reference(year: int, code: str, sequence: int) -> str:
    """``2026-JOL-000154``: year, commune, number within the commune's year."""
    return f"{year}-{code}-{sequence:06d}"


def credit_note_reference(year: int, code: str, sequence: int) -> str:
    """``2026-JOL-A00003`` (``A`` for avoir, a sequence of its own)."""
    return f"{year}-{code}-A{sequence:05d}"


# --- tariffs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bracket:
    max_quotient: int | None  # None: the top bracket (and the one without a quotient)
    price: Decimal


@dataclass(frozen=True)
class TariffRule:
    unit_price: Decimal | None = None
    brackets: tuple[Bracket, ...] = ()
    reduced_from_child: int | None = None
    reduced_rate: Decimal = ZERO  # percentage off, e.g. Decimal("20")
    unbooked_surcharge: Decimal = ZERO

    def base_price(self, quotient: int | None) -> Decimal:
        """The price for a household's quotient familial; the top bracket when none given."""
        if self.brackets:
            ordered = sorted(self.brackets, key=lambda b: (b.max_quotient is None,
                                                           b.max_quotient or 0))
            if quotient is not None:
                for bracket in ordered:
                    if bracket.max_quotient is None or quotient <= bracket.max_quotient:
                        return bracket.price
            return ordered[-1].price
        if self.unit_price is None:
            raise RuleError({"unit_price": ["Aucun prix défini pour cette activité."]})
        return self.unit_price

    def price(self, quotient: int | None, child_rank: int = 1) -> Decimal:
        """The exact (unrounded) price of one day for this child."""
        price = self.base_price(quotient)
        if self.reduced_from_child and child_rank >= self.reduced_from_child and \
                self.reduced_rate:
            price = price * (Decimal(100) - self.reduced_rate) / Decimal(100)
        return price


def check_tariff(data: dict[str, Any]) -> TariffRule:
    """A tariff as agents send it (amounts as Decimal) → its rule; RuleError when unusable."""
    errors: dict[str, list[str]] = {}
    brackets = []
    raw = data.get("brackets") or []
    seen: set[int | None] = set()
    for index, item in enumerate(raw):
        bound = item.get("max_quotient")
        if bound in seen:
            errors[f"brackets.{index}.max_quotient"] = ["Deux tranches ont la même borne."]
        seen.add(bound)
        brackets.append(Bracket(bound, item["price"]))
    if raw and None not in seen:
        errors["brackets"] = ["La dernière tranche (sans plafond) est obligatoire : elle "
                              "s'applique aux foyers qui n'ont pas donné leur quotient."]
    if not raw and data.get("unit_price") is None:
        errors["unit_price"] = ["Indiquez un prix unitaire ou des tranches de quotient."]
    rate = data.get("reduced_rate") or ZERO
    if rate and not data.get("reduced_from_child"):
        errors["reduced_from_child"] = ["Indiquez à partir de quel enfant le tarif réduit "
                                        "s'applique."]
    if errors:
        raise RuleError(errors)
    return TariffRule(unit_price=data.get("unit_price"), brackets=tuple(brackets),
                      reduced_from_child=data.get("reduced_from_child"), reduced_rate=rate,
                      unbooked_surcharge=data.get("unbooked_surcharge") or ZERO)


# --- the monthly run ---------------------------------------------------------------------------


# Named tuples, not frozen dataclasses: a run builds one per booked day and per attendance
# mark (hundreds of thousands), and a frozen dataclass's __init__ costs several times more.
class DayBooking(NamedTuple):
    booking_id: str
    family_id: str
    child_id: str
    activity_id: str
    date: date
    unit_price: Decimal
    child_first_name: str
    activity_name: str
    status: str  # confirmed | cancelled
    payment_mode: str = "monthly"


class DayAttendance(NamedTuple):
    family_id: str
    child_id: str
    activity_id: str
    date: date
    status: str  # present | absent | excused
    booking_id: str | None = None


@dataclass(frozen=True)
class RunSettings:
    bill_unjustified_absence: bool = True
    bill_unrecorded_bookings: bool = True


@dataclass
class DraftLine:
    child_id: str
    child_name: str
    activity_id: str
    activity_name: str
    quantity: int
    unit_price: Decimal  # shown (rounded); the amount is computed from the exact prices
    amount: Decimal
    dates: list[date]
    booking_ids: list[str]
    label: str
    surcharge: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"child_id": self.child_id, "child_name": self.child_name,
                "activity_id": self.activity_id, "activity_name": self.activity_name,
                "quantity": self.quantity, "unit_price": as_str(self.unit_price),
                "amount": as_str(self.amount), "dates": [d.isoformat() for d in self.dates],
                "booking_ids": self.booking_ids, "label": self.label,
                "surcharge": self.surcharge,
                "detail": f"{quantity_label(self.quantity)} {euros(self.amount)}"}


@dataclass
class DraftInvoice:
    family_id: str
    family_name: str
    lines: list[DraftLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)


@dataclass(frozen=True)
class Anomaly:
    kind: str  # presence_without_booking | booking_without_attendance | no_price
    family_id: str
    child_id: str
    activity_id: str
    date: date
    label: str

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "family_id": self.family_id, "child_id": self.child_id,
                "activity_id": self.activity_id, "date": self.date.isoformat(),
                "label": self.label}


ANOMALY_LABELS = {
    "presence_without_booking": "Présence sans réservation",
    "booking_without_attendance": "Réservation sans pointage",
    "no_price": "Présence sans réservation ni tarif : non facturée",
}


@dataclass
class RunResult:
    invoices: list[DraftInvoice]
    anomalies: list[Anomaly]

    @property
    def total(self) -> Decimal:
        return sum((invoice.total for invoice in self.invoices), ZERO)


def compute_run(
    bookings: Iterable[DayBooking],
    attendance: Iterable[DayAttendance],
    *,
    tariffs: dict[str, TariffRule],
    quotients: dict[str, int | None],
    birth_order: dict[str, tuple[str, str]],
    names: dict[str, str],
    child_names: dict[str, str],
    settings: RunSettings,
) -> RunResult:
    """The invoices of one commune's month, from its monthly bookings and attendance.

    Billed: presence (with a booking at the tariff, or without at the tariff plus its surcharge);
    an unjustified absence when the commune bills them; a booking without attendance when the
    commune bills them (flagged as an anomaly either way). Never billed: an excused absence, a
    cancelled booking without presence. Prices come from the activity's tariff (``tariffs`` by
    activity id), with the household's quotient and the child's rank among the household's
    billed children (oldest first, ``birth_order``: child id → (birth date, id)); without a
    tariff, from the booking's own unit price.
    """
    booked: dict[tuple[str, str, date], DayBooking] = {}
    for booking in bookings:
        key = (booking.child_id, booking.activity_id, booking.date)
        current = booked.get(key)
        # One confirmed booking per child, activity and day wins over a cancelled one.
        if current is None or (current.status == "cancelled" and booking.status == "confirmed"):
            booked[key] = booking
    seen: dict[tuple[str, str, date], DayAttendance] = {
        (a.child_id, a.activity_id, a.date): a for a in attendance}

    # (family, child, activity) → billed days: (date, booking or None, booked?)
    billed: dict[tuple[str, str, str], list[tuple[date, DayBooking | None, bool]]] = \
        defaultdict(list)
    anomalies: list[Anomaly] = []
    activity_names: dict[str, str] = {}
    first_names: dict[str, str] = dict(child_names)

    for key, booking in booked.items():
        activity_names.setdefault(booking.activity_id, booking.activity_name)
        first_names.setdefault(booking.child_id, booking.child_first_name)
        if booking.payment_mode != "monthly":
            continue
        mark = seen.get(key)
        if booking.status == "cancelled":
            continue  # a presence despite the cancellation is handled below
        if mark is None:
            anomalies.append(Anomaly("booking_without_attendance", booking.family_id,
                                     booking.child_id, booking.activity_id, booking.date,
                                     ANOMALY_LABELS["booking_without_attendance"]))
            if settings.bill_unrecorded_bookings:
                billed[(booking.family_id, booking.child_id, booking.activity_id)].append(
                    (booking.date, booking, True))
        elif mark.status == "present" or (mark.status == "absent"
                                          and settings.bill_unjustified_absence):
            billed[(booking.family_id, booking.child_id, booking.activity_id)].append(
                (booking.date, booking, True))

    for key, mark in seen.items():
        booking = booked.get(key)
        if booking is not None and booking.status == "confirmed":
            continue
        if booking is not None and booking.payment_mode != "monthly":
            continue
        if mark.status != "present":
            continue
        if mark.activity_id not in tariffs:
            anomalies.append(Anomaly("no_price", mark.family_id, mark.child_id,
                                     mark.activity_id, mark.date, ANOMALY_LABELS["no_price"]))
            continue
        anomalies.append(Anomaly("presence_without_booking", mark.family_id, mark.child_id,
                                 mark.activity_id, mark.date,
                                 ANOMALY_LABELS["presence_without_booking"]))
        billed[(mark.family_id, mark.child_id, mark.activity_id)].append(
            (mark.date, None, False))

    # The rank of each billed child in its household, oldest first.
    children_of: dict[str, set[str]] = defaultdict(set)
    for family_id, child_id, _ in billed:
        children_of[family_id].add(child_id)
    rank: dict[str, int] = {}
    for kids in children_of.values():
        for position, child_id in enumerate(
                sorted(kids, key=lambda c: birth_order.get(c, ("9999-99-99", c))), start=1):
            rank[child_id] = position

    invoices: dict[str, DraftInvoice] = {}
    for (family_id, child_id, activity_id), days in sorted(
            billed.items(), key=lambda item: (names.get(item[0][0], ""), item[0][0],
                                              birth_order.get(item[0][1], ("", "")),
                                              activity_names.get(item[0][2], ""))):
        days.sort(key=lambda d: d[0])
        rule = tariffs.get(activity_id)
        child_name = first_names.get(child_id, "")
        activity_name = activity_names.get(activity_id) or "Activité"
        exact = ZERO
        surcharge = ZERO
        prices = set()
        unbooked = 0
        # One price per child and activity for the month (computed once, not per day).
        tariff_price = rule.price(quotients.get(family_id), rank.get(child_id, 1)) \
            if rule is not None else None
        for _day, booking, was_booked in days:
            if tariff_price is not None:
                price = tariff_price
            else:
                price = booking.unit_price if booking is not None else ZERO
            prices.add(price)
            exact += price
            if not was_booked and rule is not None:
                surcharge += rule.unbooked_surcharge
                unbooked += 1
        amount = money(exact)
        unit = money(prices.pop()) if len(prices) == 1 else money(exact / len(days))
        invoice = invoices.setdefault(family_id, DraftInvoice(family_id,
                                                              names.get(family_id, "")))
        label = f"{activity_name} — {child_name}" if child_name else activity_name
        invoice.lines.append(DraftLine(
            child_id, child_name, activity_id, activity_name, len(days), unit, amount,
            [d for d, _, _ in days], [b.booking_id for _, b, _ in days if b is not None],
            label))
        if surcharge > 0:
            invoice.lines.append(DraftLine(
                child_id, child_name, activity_id, activity_name, unbooked,
                money(surcharge / unbooked), money(surcharge),
                [d for d, _, booked_ in days if not booked_], [],
                f"Majoration présence sans réservation — {activity_name} — {child_name}",
                surcharge=True))
    anomalies.sort(key=lambda a: (a.date, a.family_id, a.child_id, a.activity_id, a.kind))
    return RunResult([i for i in invoices.values() if i.total > 0 or i.lines], anomalies)


# --- settling invoices -------------------------------------------------------------------------


def spread(amount: Decimal, remaining: Sequence[Decimal]) -> list[Decimal]:
    """How ``amount`` settles lines with these remaining amounts, in order; what is left over
    (``amount`` beyond the sum) is not placed."""
    out = []
    left = money(amount)
    for owed in remaining:
        part = min(left, max(owed, ZERO))
        out.append(part)
        left -= part
    return out


def invoice_status(total: Decimal, settled: Decimal, cancelled: bool = False) -> str:
    if cancelled:
        return "cancelled"
    if settled >= total:
        return "paid"
    if settled > 0:
        return "partially_paid"
    return "open"


# --- payments ----------------------------------------------------------------------------------

PAYMENT_STATUSES = ("created", "waiting", "paid", "denied", "cancelled", "expired", "error")
PENDING = ("created", "waiting")
FAILED = ("denied", "cancelled", "expired", "error")
FAILURE_REASONS = {
    "denied": "Paiement refusé par la banque",
    "cancelled": "Paiement abandonné",
    "expired": "Paiement expiré : il n'a pas été terminé à temps",
    "error": "Erreur lors du paiement",
}


def payment_transition(current: str, reported: str) -> str | None:
    """The payment's new status when the provider reports ``reported``; None: nothing changes.

    A pending payment takes any outcome. ``paid`` is final: a late refusal never un-pays.
    Money reported after a failure (expired, abandoned...) is still recorded as paid: it was
    taken, it must not be lost.
    """
    if reported not in PAYMENT_STATUSES or reported == current:
        return None
    if current == "paid":
        return None
    if current in PENDING:
        return reported if reported != "created" else None
    if reported == "paid":
        return "paid"
    return None
