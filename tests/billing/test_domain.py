"""Billing rules without Flask or a database: money, tariffs, the monthly run, payments."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.billing import domain
from services.billing.domain import (
    Bracket,
    DayAttendance,
    DayBooking,
    RuleError,
    RunSettings,
    TariffRule,
    compute_run,
    money,
)

D = Decimal
CANTEEN = TariffRule(brackets=(Bracket(600, D("2.10")), Bracket(1000, D("3.20")),
                               Bracket(None, D("4.10"))),
                     reduced_from_child=3, reduced_rate=D("15"), unbooked_surcharge=D("1.00"))


@pytest.mark.parametrize(("value", "expected"), [
    ("3.485", "3.49"), ("3.484", "3.48"), ("2.675", "2.68"), ("0.005", "0.01"),
    ("10", "10.00"), (D("20.905"), "20.91")])
def test_amounts_are_rounded_once_half_up(value, expected):
    assert money(value) == D(expected)
    assert domain.as_str(money(value)) == expected


def test_euros_are_shown_the_french_way():
    assert domain.euros(D("82")) == "82,00\u00a0€"
    assert domain.euros(D("1234567.5")) == "1\u202f234\u202f567,50\u00a0€"


@pytest.mark.parametrize(("quotient", "price"), [
    (None, "4.10"), (0, "2.10"), (600, "2.10"), (601, "3.20"), (1000, "3.20"),
    (1001, "4.10"), (99999, "4.10")])
def test_brackets_by_quotient_with_the_top_one_when_none_given(quotient, price):
    assert CANTEEN.price(quotient) == D(price)


def test_reduced_rate_from_the_third_child_is_kept_exact_until_the_line():
    assert CANTEEN.price(None, 2) == D("4.10")
    assert CANTEEN.price(None, 3) == D("3.485")
    # six days at 3.485 = 20.91 (rounded once); rounding each day would give 20.94
    assert money(CANTEEN.price(None, 3) * 6) == D("20.91")


def test_a_tariff_needs_a_price_and_a_top_bracket():
    with pytest.raises(RuleError) as info:
        domain.check_tariff({"brackets": [{"max_quotient": 600, "price": D("2.10")}]})
    assert "brackets" in info.value.errors
    with pytest.raises(RuleError) as info:
        domain.check_tariff({"brackets": []})
    assert "unit_price" in info.value.errors
    with pytest.raises(RuleError) as info:
        domain.check_tariff({"unit_price": D("2"), "reduced_rate": D("10")})
    assert "reduced_from_child" in info.value.errors


def test_references():
    assert domain.commune_code("jolieville") == "JOL"
    assert domain.commune_code("saint-ébre") == "SAI"
    assert domain.commune_code("a1") == "AXX"
    assert domain.invoice_reference(2026, "JOL", 154) == "2026-JOL-000154"
    assert domain.credit_note_reference(2026, "JOL", 3) == "2026-JOL-A00003"


def _booking(i, day, *, child="c1", family="f1", status="confirmed", mode="monthly",
             price="4.10", activity="a1"):
    return DayBooking(f"b{i}", family, child, activity, date(2026, 10, day), D(price), "Léa",
                      "Restauration scolaire", status, mode)


def _mark(day, status="present", *, child="c1", family="f1", activity="a1"):
    return DayAttendance(family, child, activity, date(2026, 10, day), status)


DEFAULT = RunSettings()


def _run(bookings, marks, settings=DEFAULT, tariffs=None, quotients=None, order=None):
    return compute_run(bookings, marks, tariffs=tariffs if tariffs is not None else {},
                       quotients=quotients or {}, birth_order=order or {},
                       names={"f1": "CASSEREAU"}, child_names={}, settings=settings)


def test_presence_and_unjustified_absence_are_billed_excused_absence_is_not():
    bookings = [_booking(i, d) for i, d in enumerate((1, 2, 5, 6, 7, 8))]
    marks = [_mark(1), _mark(2), _mark(5, "absent"), _mark(6, "excused"), _mark(7)]
    result = _run(bookings, marks)
    (invoice,) = result.invoices
    (line,) = invoice.lines
    # 1, 2, 7 present, 5 absent (billed), 8 booked without attendance (billed, anomaly)
    assert line.quantity == 5
    assert line.amount == D("20.50")
    assert [a.kind for a in result.anomalies] == ["booking_without_attendance"]
    assert invoice.total == result.total == sum(ln.amount for ln in invoice.lines)

    lenient = _run(bookings, marks, RunSettings(bill_unjustified_absence=False,
                                                bill_unrecorded_bookings=False))
    assert lenient.invoices[0].lines[0].quantity == 3


def test_cancelled_bookings_and_prepaid_ones_are_not_invoiced_monthly():
    bookings = [_booking(1, 1, status="cancelled"), _booking(2, 2, mode="prepaid"),
                _booking(3, 3)]
    result = _run(bookings, [_mark(2), _mark(3)])
    assert result.invoices[0].lines[0].quantity == 1
    assert result.anomalies == []


def test_presence_without_booking_is_billed_with_the_surcharge_and_flagged():
    result = _run([_booking(1, 1)], [_mark(1), _mark(2)], tariffs={"a1": CANTEEN})
    lines = result.invoices[0].lines
    assert [(ln.quantity, ln.amount, ln.surcharge) for ln in lines] == [
        (2, D("8.20"), False), (1, D("1.00"), True)]
    assert [a.kind for a in result.anomalies] == ["presence_without_booking"]
    assert result.total == D("9.20")


def test_presence_without_booking_nor_tariff_is_only_an_anomaly():
    result = _run([], [_mark(2)])
    assert result.invoices == []
    assert [a.kind for a in result.anomalies] == ["no_price"]


def test_the_third_billed_child_of_a_household_gets_the_reduced_rate():
    bookings = [_booking(f"{c}{d}", d, child=c) for c in ("c1", "c2", "c3") for d in (1, 2)]
    marks = [_mark(d, child=c) for c in ("c1", "c2", "c3") for d in (1, 2)]
    order = {"c1": ("2015-01-01", "c1"), "c2": ("2017-01-01", "c2"),
             "c3": ("2019-01-01", "c3")}
    result = _run(bookings, marks, tariffs={"a1": CANTEEN}, quotients={"f1": 800}, order=order)
    amounts = {ln.child_id: ln.amount for ln in result.invoices[0].lines}
    assert amounts == {"c1": D("6.40"), "c2": D("6.40"), "c3": D("5.44")}


def test_spread_settles_lines_in_order():
    assert domain.spread(D("10.00"), [D("4.10"), D("4.10"), D("4.10")]) == [
        D("4.10"), D("4.10"), D("1.80")]
    assert domain.spread(D("20.00"), [D("4.10"), D("0.00")]) == [D("4.10"), D("0.00")]


@pytest.mark.parametrize(("current", "reported", "expected"), [
    ("created", "paid", "paid"), ("waiting", "denied", "denied"),
    ("created", "waiting", "waiting"), ("paid", "denied", None), ("paid", "paid", None),
    ("paid", "cancelled", None), ("expired", "paid", "paid"), ("cancelled", "paid", "paid"),
    ("denied", "cancelled", None), ("expired", "expired", None), ("waiting", "created", None)])
def test_payment_transitions(current, reported, expected):
    assert domain.payment_transition(current, reported) == expected


def test_period_bounds():
    assert domain.period_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    with pytest.raises(RuleError):
        domain.period_bounds("2026-13")
