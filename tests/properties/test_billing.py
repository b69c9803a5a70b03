"""Properties of the billing rules money depends on: tariff brackets by quotient familial,
reductions, rounding to the cent, invoice totals from the monthly run, spreading a payment or
a credit over an invoice's lines, invoice states."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing import domain
from services.billing.domain import (
    CENT,
    ZERO,
    Bracket,
    DayAttendance,
    DayBooking,
    RunSettings,
    TariffRule,
    check_tariff,
    compute_run,
    invoice_status,
    money,
    spread,
)

cents = st.integers(0, 10_000_000).map(lambda c: Decimal(c) / 100)
# Amounts as agents type them and as computations leave them (up to 4 decimals).
exact_amounts = st.decimals(min_value=0, max_value=100_000, places=4, allow_nan=False,
                            allow_infinity=False)
quotients = st.one_of(st.none(), st.integers(0, 5000))
rates = st.integers(0, 10000).map(lambda r: Decimal(r) / 100)  # 0.00 … 100.00 %


@st.composite
def bracketed_rules(draw) -> TariffRule:
    bounds = draw(st.lists(st.integers(0, 4000), unique=True, max_size=8))
    brackets = [Bracket(b, draw(cents)) for b in bounds] + [Bracket(None, draw(cents))]
    draw(st.randoms()).shuffle(brackets)  # agents send them in any order
    return TariffRule(brackets=tuple(brackets),
                      reduced_from_child=draw(st.one_of(st.none(), st.integers(2, 20))),
                      reduced_rate=draw(rates), unbooked_surcharge=draw(cents))


# --- rounding -----------------------------------------------------------------------------------


@given(exact_amounts)
def test_money_rounds_once_to_the_cent_half_up(amount):
    rounded = money(amount)
    assert rounded == rounded.quantize(CENT)
    assert abs(rounded - amount) <= Decimal("0.005")
    if abs(rounded - amount) == Decimal("0.005"):
        assert rounded > amount  # half up, never half even
    assert money(rounded) == rounded
    assert domain.as_str(amount) == f"{rounded:.2f}"


@given(st.text(max_size=12))
def test_money_refuses_what_is_not_an_amount_with_a_rule_error(text):
    try:
        Decimal(text)
    except Exception:
        with pytest.raises(domain.RuleError):
            money(text)


# --- brackets ------------------------------------------------------------------------------------


@given(bracketed_rules(), quotients)
def test_the_quotient_falls_in_the_lowest_bracket_that_holds_it(rule, quotient):
    price = rule.base_price(quotient)
    top = next(b for b in rule.brackets if b.max_quotient is None)
    holding = sorted((b for b in rule.brackets
                      if b.max_quotient is not None and quotient is not None
                      and quotient <= b.max_quotient), key=lambda b: b.max_quotient)
    assert price == (holding[0].price if holding else top.price)


@given(bracketed_rules(), st.integers(0, 5000))
def test_bracket_bounds_are_inclusive(rule, _):
    for bracket in rule.brackets:
        if bracket.max_quotient is None:
            continue
        lower = [b for b in rule.brackets
                 if b.max_quotient is not None and b.max_quotient < bracket.max_quotient]
        if not lower or max(b.max_quotient for b in lower) < bracket.max_quotient:
            assert rule.base_price(bracket.max_quotient) == bracket.price


@given(bracketed_rules(), quotients, st.integers(1, 12))
def test_a_reduction_never_raises_the_price_nor_makes_it_negative(rule, quotient, rank):
    base = rule.base_price(quotient)
    price = rule.price(quotient, rank)
    assert ZERO <= price <= base
    if rule.reduced_from_child is None or rank < rule.reduced_from_child:
        assert price == base
    elif rule.reduced_rate:
        assert price == base * (100 - rule.reduced_rate) / 100


@given(st.lists(st.one_of(st.none(), st.integers(0, 4000)), max_size=6), cents)
def test_a_tariff_without_its_top_bracket_or_with_twice_a_bound_is_refused(bounds, price):
    data = {"brackets": [{"max_quotient": b, "price": price} for b in bounds],
            "unit_price": price}
    valid = None in bounds and len(set(bounds)) == len(bounds)
    if valid or not bounds:
        assert isinstance(check_tariff(data), TariffRule)
    else:
        with pytest.raises(domain.RuleError):
            check_tariff(data)


# --- the monthly run ---------------------------------------------------------------------------

FAMILIES = ["fam-a", "fam-b", "fam-c"]
CHILDREN = {"fam-a": ["a1", "a2", "a3"], "fam-b": ["b1"], "fam-c": ["c1", "c2"]}
ACTIVITIES = ["canteen", "study", "leisure"]
MONTH = [date(2026, 3, 1) + timedelta(days=i) for i in range(31)]


@st.composite
def months(draw):
    bookings, attendance, booked = [], [], set()
    for i, (family, child, activity, day) in enumerate(draw(st.lists(st.tuples(
            st.sampled_from(FAMILIES), st.integers(0, 2), st.sampled_from(ACTIVITIES),
            st.sampled_from(MONTH)), max_size=25))):
        kid = CHILDREN[family][child % len(CHILDREN[family])]
        if (kid, activity, day) in booked:  # one booking per child, activity and day
            continue
        booked.add((kid, activity, day))
        bookings.append(DayBooking(f"bk{i}", family, kid, activity, day, draw(cents), kid,
                                   activity, draw(st.sampled_from(["confirmed", "cancelled"])),
                                   draw(st.sampled_from(["monthly", "monthly", "prepaid"]))))
    for family, child, activity, day, status in draw(st.lists(st.tuples(
            st.sampled_from(FAMILIES), st.integers(0, 2), st.sampled_from(ACTIVITIES),
            st.sampled_from(MONTH), st.sampled_from(["present", "absent", "excused"])),
            max_size=25, unique_by=lambda t: (t[0], t[1] % len(CHILDREN[t[0]]), t[2], t[3]))):
        kid = CHILDREN[family][child % len(CHILDREN[family])]
        attendance.append(DayAttendance(family, kid, activity, day, status))
    tariffs = draw(st.dictionaries(st.sampled_from(ACTIVITIES), bracketed_rules(), max_size=3))
    quotient_of = draw(st.fixed_dictionaries({f: quotients for f in FAMILIES}))
    settings = RunSettings(draw(st.booleans()), draw(st.booleans()))
    return bookings, attendance, tariffs, quotient_of, settings


def run_of(month):
    bookings, attendance, tariffs, quotient_of, settings = month
    birth = {kid: (f"201{n}-01-01", kid) for kids in CHILDREN.values()
             for n, kid in enumerate(kids)}
    return compute_run(bookings, attendance, tariffs=tariffs, quotients=quotient_of,
                       birth_order=birth, names={f: f.upper() for f in FAMILIES},
                       child_names={}, settings=settings)


@given(months())
def test_an_invoice_total_is_the_sum_of_its_lines_in_cents_and_never_negative(month):
    result = run_of(month)
    for invoice in result.invoices:
        assert invoice.lines
        assert invoice.total == sum((line.amount for line in invoice.lines), ZERO)
        assert invoice.total >= 0
        for line in invoice.lines:
            assert line.amount == line.amount.quantize(CENT) and line.amount >= 0
            assert line.unit_price == line.unit_price.quantize(CENT)
            assert line.quantity == len(line.dates) > 0
            # rounding once per line: a line is never more than half a cent off its days
            assert abs(line.amount - line.unit_price * line.quantity) <= \
                Decimal("0.005") * line.quantity + Decimal("0.005")
    assert result.total == sum((i.total for i in result.invoices), ZERO)
    assert len({i.family_id for i in result.invoices}) == len(result.invoices)


@given(months())
def test_what_is_never_billed_is_not_billed(month):
    bookings, attendance, *_ = month
    result = run_of(month)
    excused = {(a.child_id, a.activity_id, a.date) for a in attendance if a.status == "excused"}
    present = {(a.child_id, a.activity_id, a.date) for a in attendance if a.status == "present"}
    prepaid = {(b.child_id, b.activity_id, b.date) for b in bookings
               if b.payment_mode != "monthly"}
    for invoice in result.invoices:
        for line in invoice.lines:
            for day in line.dates:
                key = (line.child_id, line.activity_id, day)
                assert key not in excused or key in present
                assert key not in prepaid
    # each (child, activity, day) at most once among the non-surcharge lines
    billed = [(line.child_id, line.activity_id, d) for i in result.invoices
              for line in i.lines if not line.surcharge for d in line.dates]
    assert len(billed) == len(set(billed))


# --- settling: payments and credit notes -------------------------------------------------------


@given(st.decimals(min_value=-100, max_value=100_000, places=2), st.lists(
    st.decimals(min_value=-50, max_value=10_000, places=2), max_size=10))
def test_spreading_never_places_more_than_given_nor_more_than_a_line_owes(amount, owed):
    parts = spread(amount, owed)
    assert len(parts) == len(owed)
    for part, due in zip(parts, owed, strict=True):
        assert part >= ZERO or amount < 0
        assert part <= max(due, ZERO)
    if amount >= 0:
        positive = sum((max(d, ZERO) for d in owed), ZERO)
        assert sum(parts, ZERO) == min(money(amount), positive)
        # in order: a line is left short only when nothing remains for the later ones
        for i, (part, due) in enumerate(zip(parts, owed, strict=True)):
            if part < max(due, ZERO):
                assert all(p == 0 for p in parts[i + 1:])


@st.composite
def credit_situations(draw):
    lines = draw(st.lists(cents.filter(lambda c: c > 0), min_size=1, max_size=6))
    settled = [min(draw(cents), line) for line in lines]
    credits = draw(st.lists(cents.filter(lambda c: c > 0), min_size=1, max_size=4))
    return lines, settled, credits


@given(credit_situations())
def test_applying_credit_notes_never_exceeds_what_is_due_nor_what_is_available(situation):
    """The arithmetic of operations.use_credit/settle over the domain's functions: each note
    in turn spread over what the invoice still owes, line by line."""
    lines, settled, credits = situation
    total = sum(lines, ZERO)
    due_before = total - sum(settled, ZERO)
    available_before = sum(credits, ZERO)
    remaining_credit = []
    for credit in credits:
        owed = [line - done for line, done in zip(lines, settled, strict=True)]
        parts = spread(min(credit, sum(owed, ZERO)), owed)
        used = sum(parts, ZERO)
        assert used <= credit and used <= sum(owed, ZERO)
        settled = [done + part for done, part in zip(settled, parts, strict=True)]
        remaining_credit.append(credit - used)
    applied = available_before - sum(remaining_credit, ZERO)
    # conserved: what left the notes is exactly what the invoice received
    assert applied == sum(settled, ZERO) - (total - due_before)
    assert applied == min(available_before, due_before)
    assert all(r >= 0 for r in remaining_credit)
    assert all(done <= line for line, done in zip(lines, settled, strict=True))
    status = invoice_status(total, sum(settled, ZERO))
    assert status == ("paid" if applied == due_before else
                      "partially_paid" if sum(settled, ZERO) > 0 else "open")


@given(cents, cents, st.booleans())
def test_invoice_status_follows_what_was_settled(total, settled, cancelled):
    status = invoice_status(total, settled, cancelled)
    if cancelled:
        assert status == "cancelled"
    elif settled >= total:
        assert status == "paid"
    else:
        assert status == ("partially_paid" if settled > 0 else "open")


@given(st.sampled_from(domain.PAYMENT_STATUSES), st.lists(
    st.sampled_from(domain.PAYMENT_STATUSES), max_size=8))
def test_a_paid_payment_stays_paid_whatever_is_reported_afterwards(start, reports):
    status, was_paid = start, start == "paid"
    for reported in reports:
        new = domain.payment_transition(status, reported)
        if new is not None:
            status = new
        was_paid = was_paid or status == "paid"
        if was_paid:
            assert status == "paid"
