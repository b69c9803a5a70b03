"""No sequence of bookings, payments, cancellations and departures from the waiting list
takes more places than the activity has, nor loses anyone who is waiting.

A Hypothesis state machine drives the real reservations app (SQLite, its API and its event
handlers) for three children on one Wednesday of a small leisure centre (capacity 1 or 2,
a waiting list of 2, automatic promotion); after every step the database is read back.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import select

from services.reservations.domain.rules import HOLDING, OFFERED, WAITING
from services.reservations.models import Booking, WaitingEntry
from tests.reservations.support import (
    AGENT,
    CASSEREAU,
    HUGO,
    JOLIEVILLE,
    LEA,
    LOISIRS,
    MERCREDI,
    OTHER_CHILD,
    OTHER_FAMILY,
    OTHER_PARENT,
    PARENT,
    SCHOOL_YEAR,
    FakeBilling,
    build,
)
from tests.test_catalogue import EXAMPLES

WEDNESDAY = "2026-12-09"
CHILDREN = {LEA: (PARENT, CASSEREAU), HUGO: (PARENT, CASSEREAU),
            OTHER_CHILD: (OTHER_PARENT, OTHER_FAMILY)}
# Each example builds a fresh app (migrations, seed): few of them in the test command.
STEPS = int(os.environ.get("PORTAIL_CAPACITY_STEPS", "10"))
EXAMPLES_RUN = int(os.environ.get("PORTAIL_CAPACITY_EXAMPLES", "15"))


class SmallCentre(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="capacity-"))
        # Billing's checkout, served for real, sharing the service-token key of the data dir.
        self.billing = FakeBilling(self.directory)
        os.environ["BILLING_URL"] = self.billing.url
        self.r = build(self.directory, f"sqlite:///{self.directory}/reservations.db")
        self.capacity = 1
        self.held = 0  # places held after the previous step
        self.left: set[str] = set()  # children who left the waiting list themselves

    def teardown(self):
        self.r.db.dispose()
        self.billing.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    @initialize(capacity=st.integers(1, 2))
    def open_the_centre(self, capacity):
        self.capacity = capacity
        answer = self.r.patch(f"jolieville/activities/{MERCREDI}", json={
            "capacity": capacity, "waiting_list_size": 2, "waiting_list_mode": "automatic",
            "offer_hours": 24})
        assert answer.status_code == 200, answer.get_json()
        enrolled = self.r.post("jolieville/enrolments", AGENT, json={
            "child_id": OTHER_CHILD, "service_id": LOISIRS, "school_year_id": SCHOOL_YEAR})
        assert enrolled.status_code == 201, enrolled.get_json()

    # --- what families do ------------------------------------------------------------------

    @rule(child=st.sampled_from(list(CHILDREN)), pay=st.booleans())
    def book(self, child, pay):
        parent, family = CHILDREN[child]
        added = self.r.add(child, MERCREDI, [WEDNESDAY], parent)
        if added.status_code != 201:
            return  # already booked or waiting, or the list is full: refused, nothing kept
        answer = self.r.checkout(parent)
        assert answer.status_code in (200, 409), answer.get_json()
        body = answer.get_json()
        if answer.status_code == 200 and body.get("payment_id") and pay:
            self._payment("billing.payment.succeeded", body, family)
        elif answer.status_code == 200 and body.get("payment_id"):
            data = copy.deepcopy(EXAMPLES["billing.payment.failed"])
            data.update(payment_id=body["payment_id"], family_id=family,
                        basket_id=body["basket_id"], status="denied", amount=body["amount"])
            self.r.feed("billing.payment.failed", data, commune_id=JOLIEVILLE)
        if child in self.left and self._entry(child) is not None:
            self.left.discard(child)

    def _payment(self, event_type, body, family):
        data = copy.deepcopy(EXAMPLES[event_type])
        data.update(payment_id=body["payment_id"], family_id=family, invoice_ids=[],
                    basket_id=body["basket_id"], amount=body["amount"])
        self.r.feed(event_type, data, commune_id=JOLIEVILLE)

    @rule(child=st.sampled_from(list(CHILDREN)))
    def cancel(self, child):
        booking = self._booking(child)
        if booking is None:
            return
        parent, _ = CHILDREN[child]
        answer = self.r.post("jolieville/cancellations", parent,
                             json={"booking_ids": [booking.id]})
        assert answer.status_code < 500, answer.get_json()

    @rule(child=st.sampled_from(list(CHILDREN)))
    def leave_the_waiting_list(self, child):
        entry = self._entry(child)
        if entry is None:
            return
        parent, _ = CHILDREN[child]
        answer = self.r.delete(f"jolieville/waiting-list/{entry.id}", parent)
        assert answer.status_code in (204, 409), answer.get_json()
        if answer.status_code == 204:
            self.left.add(child)

    @rule(capacity=st.integers(1, 3))
    def agent_changes_the_capacity(self, capacity):
        answer = self.r.patch(f"jolieville/activities/{MERCREDI}", json={"capacity": capacity})
        assert answer.status_code == 200, answer.get_json()
        self.capacity = capacity

    # --- what must always hold ---------------------------------------------------------------

    def _rows(self, model, *where):
        with self.r.db.sessions() as session:
            return list(session.scalars(select(model).where(
                model.activity_id == MERCREDI, model.date == _day(), *where)))

    def _booking(self, child):
        rows = self._rows(Booking, Booking.child_id == child, Booking.status.in_(HOLDING))
        return rows[0] if rows else None

    def _entry(self, child):
        rows = self._rows(WaitingEntry, WaitingEntry.child_id == child,
                          WaitingEntry.status.in_((WAITING, OFFERED)))
        return rows[0] if rows else None

    @invariant()
    def never_more_places_than_the_capacity(self):
        holding = self._rows(Booking, Booking.status.in_(HOLDING))
        # Lowering the capacity cancels nobody, so more may hold a place than it says; but then
        # no new place is given until enough have left.
        assert len(holding) <= max(self.capacity, self.held), (len(holding), self.capacity)
        self.held = len(holding)
        assert len({b.child_id for b in holding}) == len(holding)  # one place per child

    @invariant()
    def nobody_waiting_is_lost(self):
        for child in CHILDREN:
            ever = self._rows(WaitingEntry, WaitingEntry.child_id == child)
            if not ever or child in self.left:
                continue
            # Someone who joined the line is still in it, or got a place (promoted), or left
            # it only by asking; an entry never just disappears.
            still = self._entry(child) is not None
            placed = any(e.status == "promoted" for e in ever) or \
                self._booking(child) is not None
            assert still or placed or any(e.status == "withdrawn" for e in ever), \
                [(e.status, e.rank) for e in ever]
        waiting = self._rows(WaitingEntry, WaitingEntry.status.in_((WAITING, OFFERED)))
        assert len(waiting) <= 2
        assert len({e.child_id for e in waiting}) == len(waiting)


def _day():
    from datetime import date

    return date.fromisoformat(WEDNESDAY)


SmallCentre.TestCase.settings = settings(max_examples=EXAMPLES_RUN,
                                         stateful_step_count=STEPS, deadline=None)
TestSmallCentre = SmallCentre.TestCase
