"""Payment events (duplicates, any order), hold expiry, and the waiting list."""

from __future__ import annotations

import copy
import threading
import time
import uuid

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
    SCHOOL_YEAR,
    build,
)
from tests.test_catalogue import EXAMPLES

WEDNESDAY = "2026-12-09"


def fail(r, checkout, status="denied"):
    data = copy.deepcopy(EXAMPLES["billing.payment.failed"])
    data.update(payment_id=checkout["payment_id"], family_id=CASSEREAU,
                basket_id=checkout["basket_id"], status=status, amount=checkout["amount"])
    return r.feed("billing.payment.failed", data, commune_id=JOLIEVILLE)


def cell(r, child=LEA, day=WEDNESDAY):
    return r.calendar(child, day, activity=MERCREDI)[day][MERCREDI]


def small_centre(r, capacity=1, waiting=0, mode="automatic"):
    answer = r.patch(f"jolieville/activities/{MERCREDI}", json={
        "capacity": capacity, "waiting_list_size": waiting, "waiting_list_mode": mode,
        "offer_hours": 24})
    assert answer.status_code == 200, answer.get_json()
    r.post("jolieville/enrolments", AGENT, json={
        "child_id": OTHER_CHILD, "service_id": LOISIRS, "school_year_id": SCHOOL_YEAR})


def other_books(r, day=WEDNESDAY):
    answer = r.book(OTHER_CHILD, MERCREDI, [day], OTHER_PARENT)
    data = copy.deepcopy(EXAMPLES["billing.payment.succeeded"])
    data.update(payment_id=answer["payment_id"], family_id=OTHER_FAMILY, invoice_ids=[],
                basket_id=answer["basket_id"], amount=answer["amount"])
    r.feed("billing.payment.succeeded", data, commune_id=JOLIEVILLE)
    return answer


# --- payment events --------------------------------------------------------------------------

def test_a_duplicate_payment_confirms_once(reservations):
    r = reservations
    checkout = r.book(LEA, MERCREDI, [WEDNESDAY, "2026-12-16"])
    event_id = str(uuid.uuid4())
    assert r.pay(checkout, event_id=event_id) == "handled"
    assert r.pay(checkout, event_id=event_id) == "duplicate"  # the same message again
    assert r.pay(checkout) == "handled"  # another event for the same payment
    [confirmed] = r.events("reservations.booking.confirmed")
    assert confirmed["data"]["dates"] == [WEDNESDAY, "2026-12-16"]
    assert confirmed["data"]["payment_mode"] == "prepaid"
    assert cell(r)["state"] == "booked"
    assert r.events("reservations.booking.cancelled") == []


def test_a_failed_payment_releases_and_a_late_failure_never_undoes_a_payment(reservations):
    r = reservations
    first = r.book(LEA, MERCREDI, [WEDNESDAY])
    fail(r, first)
    assert cell(r)["state"] == "available"
    assert r.get(f"jolieville/baskets/{first['basket_id']}").get_json()["status"] == "failed"
    again = r.checkout(basket_id=first["basket_id"])
    assert again.status_code == 409
    assert "n'a pas abouti" in again.get_json()["detail"]
    second = r.book(LEA, MERCREDI, ["2026-12-16"])
    r.pay(second)
    fail(r, second)  # out of order: the failure of an attempt, after the success
    assert cell(r, day="2026-12-16")["state"] == "booked"


def test_a_success_after_a_failure_takes_the_places_again(reservations):
    r = reservations
    checkout = r.book(LEA, MERCREDI, [WEDNESDAY])
    fail(r, checkout)
    r.pay(checkout)
    assert cell(r)["state"] == "booked"
    [confirmed] = r.events("reservations.booking.confirmed")
    assert confirmed["data"]["basket_id"] == checkout["basket_id"]


def test_a_payment_for_no_basket_of_ours_changes_nothing(reservations):
    data = copy.deepcopy(EXAMPLES["billing.payment.succeeded"])  # an invoice payment
    assert reservations.feed("billing.payment.succeeded", data) == "handled"
    data["basket_id"] = str(uuid.uuid4())
    assert reservations.feed("billing.payment.succeeded", data) == "handled"
    assert reservations.events() == []


# --- hold expiry -----------------------------------------------------------------------------

def test_an_expired_hold_frees_the_places(reservations, clock):
    r = reservations
    checkout = r.book(LEA, MERCREDI, [WEDNESDAY])
    clock.advance(minutes=59)
    assert r.ops.expire_holds() == 0
    clock.advance(minutes=2)
    assert r.ops.expire_holds() == 1
    assert r.ops.expire_holds() == 0
    [expired] = r.events("reservations.basket.expired")
    assert expired["data"] == {
        "basket_id": checkout["basket_id"], "family_id": CASSEREAU,
        "payment_id": checkout["payment_id"],
        "booking_ids": [b["id"] for b in checkout["bookings"]]}
    assert cell(r)["state"] == "available"
    replay = r.checkout(basket_id=checkout["basket_id"])
    assert replay.status_code == 409
    assert "délai de paiement" in replay.get_json()["detail"]


def test_a_payment_after_expiry_retakes_a_free_place(reservations, clock):
    r = reservations
    checkout = r.book(LEA, MERCREDI, [WEDNESDAY])
    clock.advance(minutes=61)
    r.ops.expire_holds()
    r.pay(checkout)
    assert cell(r)["state"] == "booked"
    assert r.events("reservations.booking.cancelled") == []
    assert r.get(f"jolieville/baskets/{checkout['basket_id']}").get_json()["status"] == (
        "confirmed")


def test_a_payment_after_expiry_is_refunded_when_the_place_is_gone(reservations, clock):
    r = reservations
    small_centre(r)
    checkout = r.book(LEA, MERCREDI, [WEDNESDAY])
    clock.advance(minutes=61)
    r.ops.expire_holds()
    other_books(r)
    r.pay(checkout)
    assert cell(r)["state"] == "cancelled"
    [cancelled] = r.events("reservations.booking.cancelled")
    data = cancelled["data"]
    assert data["refund_due"] == "14.00"
    assert data["refund_lines"] == [{"booking_id": checkout["bookings"][0]["id"],
                                     "date": WEDNESDAY, "amount": "14.00"}]
    assert data["payment_mode"] == "prepaid" and data["child_first_name"] == "Léa"
    r.pay(checkout)  # redelivered by billing with another id: no second refund
    assert len(r.events("reservations.booking.cancelled")) == 1
    occupancy = r.get("jolieville/occupancy", AGENT, query_string={
        "activity": MERCREDI, "from": WEDNESDAY, "to": WEDNESDAY}).get_json()["items"]
    assert occupancy[0]["booked"] == 1 and occupancy[0]["available"] == 0


def test_the_worker_sweeps_expired_holds(tmp_path, clock, billing):
    r = build(tmp_path, f"sqlite:///{tmp_path}/w.db", clock, BOOKING_SWEEP_SECONDS="0.05")
    try:
        r.book(LEA, MERCREDI, [WEDNESDAY])
        clock.advance(minutes=61)
        stop = threading.Event()
        threads = r.runtime.start_worker_threads(stop)
        try:
            assert "reservations-sweeper" in {t.name for t in threads}
            deadline = time.monotonic() + 10
            while not r.events("reservations.basket.expired"):
                assert time.monotonic() < deadline, "le balayeur n'a rien libéré"
                time.sleep(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
        assert cell(r)["state"] == "available"
    finally:
        r.db.dispose()


# --- the waiting list -------------------------------------------------------------------------

def test_the_first_in_line_gets_a_freed_place(reservations):
    r = reservations
    small_centre(r, capacity=1, waiting=2)
    other = other_books(r)
    waiting = r.book(LEA, MERCREDI, [WEDNESDAY])
    assert waiting["status"] == "confirmed" and waiting["bookings"] == []
    assert waiting["waiting_list"][0]["position"] == 1
    hugo = r.book(HUGO, MERCREDI, [WEDNESDAY])
    assert hugo["waiting_list"][0]["position"] == 2
    cancelled = r.post("jolieville/cancellations", OTHER_PARENT, json={
        "booking_ids": [other["bookings"][0]["id"]], "reason": "malade"})
    assert cancelled.status_code == 200, cancelled.get_json()
    assert cell(r)["state"] == "booked"
    promoted = [e for e in r.events("reservations.booking.confirmed")
                if e["data"]["child_id"] == LEA]
    assert len(promoted) == 1
    assert promoted[0]["data"]["basket_id"] is None
    hugo_cell = cell(r, HUGO)
    assert hugo_cell["state"] == "full" and hugo_cell["waiting_list"]["position"] == 1
    entries = r.get("jolieville/waiting-list", AGENT).get_json()["items"]
    assert [(e["child_first_name"], e["position"]) for e in entries] == [("Hugo", 1)]


def test_an_offer_holds_the_place_until_accepted_or_lapsed(reservations, clock, billing):
    r = reservations
    small_centre(r, capacity=1, waiting=3, mode="offer")
    other = other_books(r)
    r.book(LEA, MERCREDI, [WEDNESDAY])
    r.book(HUGO, MERCREDI, [WEDNESDAY])
    r.post("jolieville/cancellations", OTHER_PARENT,
           json={"booking_ids": [other["bookings"][0]["id"]]})
    offered = cell(r)
    assert offered["state"] == "full"
    assert offered["waiting_list"]["status"] == "offered"
    assert offered["waiting_list"]["offer_expires_at"] == "2026-12-01T07:00:00+00:00"
    assert offered["reason"] == "Place proposée : à accepter"
    # Lapsed after 24 hours: the offer goes to Hugo, the next in line.
    clock.advance(hours=25)
    assert r.ops.lapse_offers() == 1
    assert cell(r)["waiting_list"] is None
    entry = cell(r, HUGO)["waiting_list"]
    assert entry["status"] == "offered"
    accepted = r.post(f"jolieville/waiting-list/{entry['id']}/accept")
    assert accepted.status_code == 200, accepted.get_json()
    body = accepted.get_json()
    assert body["status"] == "payment_required" and body["amount"] == "14.00"
    assert billing.calls[-1]["key"] == body["basket_id"]
    r.pay(body)
    assert cell(r, HUGO)["state"] == "booked"
    late = r.post(f"jolieville/waiting-list/{entry['id']}/accept")
    assert late.status_code == 409


def test_more_capacity_goes_to_the_waiting_list(reservations):
    r = reservations
    small_centre(r, capacity=1, waiting=2)
    other_books(r)
    r.book(LEA, MERCREDI, [WEDNESDAY])
    assert cell(r)["state"] == "full"
    r.patch(f"jolieville/activities/{MERCREDI}", json={"capacity": 2})
    assert cell(r)["state"] == "booked"


def test_leaving_the_waiting_list(reservations):
    r = reservations
    small_centre(r, capacity=1, waiting=2)
    other_books(r)
    entry = r.book(LEA, MERCREDI, [WEDNESDAY])["waiting_list"][0]
    assert r.delete(f"jolieville/waiting-list/{entry['id']}", OTHER_PARENT).status_code == 404
    assert r.delete(f"jolieville/waiting-list/{entry['id']}").status_code == 204
    assert cell(r)["waiting_list"] is None
    assert cell(r)["can_wait"] is True
