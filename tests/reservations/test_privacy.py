"""Reservations' part of the GDPR rights (issue 8), with the service's clock moved: bookings
to come block an erasure until they are past; the erasure deletes the household's bookings and
gives back the places still held; the export; the audit of agents' reads."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from services.reservations.models import Booking, Occupancy
from tests.reservations.support import (
    AGENT,
    CASSEREAU,
    HUGO,
    LEA,
    MERCREDI,
    PARENT,
    REPAS,
    paris,
)


def _accounts_get(reservations, path: str):
    token = reservations.runtime.service_tokens.mint("accounts", "reservations")
    return reservations.client().get(path, headers={"Authorization": f"Bearer {token}"})


def _blockers(reservations) -> list[str]:
    answer = _accounts_get(reservations, f"/internal/households/{CASSEREAU}/erasure-blockers")
    assert answer.status_code == 200, answer.get_json()
    return [b["code"] for b in answer.get_json()["blockers"]]


def _taken(reservations, day) -> int:
    with reservations.db.sessions() as session:
        row = session.get(Occupancy, (MERCREDI, day))
        return row.taken if row else 0


def test_bookings_to_come_block_then_the_erasure_frees_the_places(reservations, clock):
    reservations.book(LEA, REPAS, ["2026-12-07"])
    assert _blockers(reservations) == ["future_bookings"]
    clock.set(paris(2026, 12, 8, 8, 0))  # the day is past: nothing blocks any more
    assert _blockers(reservations) == []

    # Held after the check (the family still had its session; a prepaid Wednesday, places
    # counted): the erasure gives the place back.
    reservations.book(HUGO, MERCREDI, ["2026-12-16"])
    assert _taken(reservations, date(2026, 12, 16)) == 1

    # An agent's read of the child's bookings is audited; the family's own is not.
    reservations.get(f"jolieville/bookings?child_id={LEA}", PARENT)
    assert reservations.events("reservations.access.recorded") == []
    assert reservations.get(f"jolieville/bookings?child_id={LEA}", AGENT).status_code == 200
    [audited] = reservations.events("reservations.access.recorded")
    assert audited["data"]["family_id"] == CASSEREAU
    assert audited["data"]["action"] == "bookings.list"

    export = _accounts_get(reservations, f"/internal/households/{CASSEREAU}/export").get_json()
    assert {b["date"] for b in export["data"]["reservations"]} == {"2026-12-07", "2026-12-16"}
    assert {b["enfant"] for b in export["data"]["reservations"]} == {"Léa", "Hugo"}

    data = {"family_id": CASSEREAU, "commune_ids": [], "version": 30,
            "erased_at": "2026-12-08T08:00:00+00:00", "request_id": None}
    reservations.feed("accounts.household.erased", data)
    reservations.feed("accounts.household.erased", data)  # another delivery: nothing more
    with reservations.db.sessions() as session:
        assert session.scalar(select(Booking).where(Booking.family_id == CASSEREAU)) is None
    assert _taken(reservations, date(2026, 12, 16)) == 0
    children = reservations.get("jolieville/children?q=L%C3%A9a", AGENT).get_data(as_text=True)
    assert LEA not in children
    assert reservations.get(f"jolieville/children/{LEA}/calendar", AGENT).status_code == 404
