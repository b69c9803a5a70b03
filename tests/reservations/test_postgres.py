"""On the real PostgreSQL: many families validating at once for the last places never
overbook (row locks per activity and day, in a stable order), and the whole flow runs."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from services.common.auth import Principal
from services.reservations.models import Booking, Enrolment, WaitingEntry
from tests.reservations.support import (
    AGENT,
    HUGO,
    JOLIEVILLE,
    JULES_FERRY,
    LEA,
    LOISIRS,
    MERCREDI,
    REPAS,
    SCHOOL_YEAR,
    household,
)

pytestmark = pytest.mark.services

CLIENTS = 40
PLACES = 24


def families(r, count: int) -> list[tuple[Principal, str]]:
    """``count`` households of one child each, enrolled at the leisure centre."""
    out = []
    with r.db.transaction() as session:
        for index in range(count):
            family_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
            session.add(Enrolment(commune_id=JOLIEVILLE, family_id=family_id,
                                  child_id=child_id, service_id=LOISIRS,
                                  school_year_id=SCHOOL_YEAR, status="validated"))
            out.append((Principal(account_id=str(uuid.uuid4()), family_id=family_id,
                                  communes={"jolieville": {"id": JOLIEVILLE,
                                                           "roles": ["parent"]}}),
                        child_id, index))
    for principal, child_id, index in out:
        r.feed("accounts.family.updated", household(
            principal.family_id, name=f"FAMILLE{index}",
            children=[{"id": child_id, "first_name": f"Enfant{index}", "last_name": "TEST",
                       "birth_date": "2018-05-05", "school": None, "class_name": "CE2",
                       "allergies": False}],
            communes=[{"commune_id": JOLIEVILLE, "slug": "jolieville",
                       "family_code": f"F{index:04d}"}]))
    return [(p, c) for p, c, _ in out]


def race(r, clients: list[tuple[Principal, str]], dates: list[str]) -> list:
    for principal, child_id in clients:
        added = r.add(child_id, MERCREDI, dates, as_=principal)
        assert added.status_code == 201, added.get_json()
    barrier = threading.Barrier(len(clients))
    answers: list = [None] * len(clients)

    def one(index: int, principal: Principal) -> None:
        client = r.app.test_client()
        headers = r.headers(principal)
        barrier.wait()
        answer = client.post("/api/reservations/communes/jolieville/basket/checkout",
                             headers=headers, json={})
        answers[index] = (answer.status_code, answer.get_json())

    threads = [threading.Thread(target=one, args=(i, p)) for i, (p, _) in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return answers


def live(r, day: str) -> int:
    with r.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Booking).where(
            Booking.activity_id == MERCREDI, Booking.date == date.fromisoformat(day),
            Booking.status.in_(("pending_payment", "confirmed"))))


def test_forty_families_for_twenty_four_places_never_overbook(pg_reservations):
    r = pg_reservations
    r.patch(f"jolieville/activities/{MERCREDI}", json={"capacity": PLACES,
                                                        "waiting_list_size": 5})
    answers = race(r, families(r, CLIENTS), ["2026-12-09"])
    outcomes = Counter()
    for status, body in answers:
        if status == 200 and body["status"] == "payment_required":
            outcomes["held"] += 1
        elif status == 200 and body["waiting_list"]:
            outcomes["waiting"] += 1
        elif status == 409:
            assert body["conflicts"][0]["rule"] == "full"
            assert "et sa liste d'attente aussi" in body["detail"]
            outcomes["refused"] += 1
        else:
            outcomes[f"unexpected {status}: {body}"] += 1
    assert outcomes == {"held": PLACES, "waiting": 5, "refused": CLIENTS - PLACES - 5}
    assert live(r, "2026-12-09") == PLACES
    with r.db.sessions() as session:
        ranks = sorted(session.scalars(select(WaitingEntry.rank)))
    assert ranks == [1, 2, 3, 4, 5]
    occupancy = r.get("jolieville/occupancy", AGENT, query_string={
        "activity": MERCREDI, "from": "2026-12-09", "to": "2026-12-09"}).get_json()["items"]
    assert occupancy[0]["pending_payment"] == PLACES and occupancy[0]["available"] == 0
    assert occupancy[0]["waiting"] == 5


def test_baskets_sharing_several_days_neither_overbook_nor_deadlock(pg_reservations):
    r = pg_reservations
    r.patch(f"jolieville/activities/{MERCREDI}", json={"capacity": PLACES,
                                                        "waiting_list_size": 0})
    answers = race(r, families(r, CLIENTS), ["2026-12-16", "2026-12-09", "2027-01-06"])
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: PLACES, 409: CLIENTS - PLACES}, answers
    for day in ("2026-12-09", "2026-12-16", "2027-01-06"):
        assert live(r, day) == PLACES


def test_the_whole_flow_on_postgresql(pg_reservations, clock):
    r = pg_reservations
    monthly = r.book(LEA, REPAS, ["2026-12-07", "2026-12-08"])
    assert monthly["status"] == "confirmed"
    prepaid = r.book(HUGO, MERCREDI, ["2026-12-09"])
    r.pay(prepaid)
    r.pay(prepaid)
    held = r.book(LEA, MERCREDI, ["2026-12-16"])
    clock.advance(minutes=61)
    assert r.ops.expire_holds() == 1
    cancelled = r.post("jolieville/cancellations", json={
        "booking_ids": [prepaid["bookings"][0]["id"]]})
    assert cancelled.get_json()["refund_due"] == "14.00"
    marked = r.put("jolieville/attendance", AGENT,
                   query_string={"site": JULES_FERRY, "date": "2026-12-07"},
                   json={"marks": [{"child_id": LEA, "activity_id": REPAS,
                                    "status": "present"}]})
    assert marked.status_code == 200
    month = r.calendar(LEA, "2026-12-01", "2026-12-31")
    assert month["2026-12-07"][REPAS]["state"] == "present"
    assert month["2026-12-16"][MERCREDI]["state"] == "available"
    r.pay(held)  # after expiry, the place is free: taken again
    assert r.calendar(LEA, "2026-12-16")["2026-12-16"][MERCREDI]["state"] == "booked"
    types = Counter(e["type"] for e in r.events())
    assert types == {"reservations.booking.confirmed": 3,
                     "reservations.basket.checked_out": 3,
                     "reservations.basket.expired": 1,
                     "reservations.booking.cancelled": 1,
                     "reservations.attendance.recorded": 1}
