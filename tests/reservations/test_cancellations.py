"""Cancelling: at once within the deadline (refund due when prepaid), refused or sent to an
agent after it, and an absence justified through a request."""

from __future__ import annotations

import copy

import pytest

from services.common.bus import PermanentError
from tests.reservations.support import (
    AGENT,
    CASSEREAU,
    DAMMARTIN_AGENT,
    HUGO,
    JOLIEVILLE,
    LEA,
    MATIN,
    MERCREDI,
    OTHER_PARENT,
    PARENT,
    REPAS,
    paris,
)
from tests.test_catalogue import EXAMPLES


def cancel(r, bookings, reason="Rendez-vous médical", as_=PARENT):
    return r.post("jolieville/cancellations", as_, json={
        "booking_ids": [b["id"] for b in bookings], "reason": reason})


def test_within_the_deadline_a_monthly_booking_is_cancelled_at_once(reservations):
    r = reservations
    booked = r.book(LEA, REPAS, ["2026-12-07", "2026-12-08"])["bookings"]
    answer = cancel(r, booked[:1])
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert [b["state"] for b in body["cancelled"]] == ["cancelled"]
    assert body["refund_due"] == "0.00" and body["requests"] == []
    [event] = r.events("reservations.booking.cancelled")
    data = event["data"]
    assert data["within_deadline"] is True and data["refund_due"] == "0.00"
    assert data["refund_lines"] is None and data["payment_mode"] == "monthly"
    assert data["reason"] == "Rendez-vous médical"
    assert data["cancellation_id"] == body["cancellations"][0]["id"]
    cell = r.calendar(LEA, "2026-12-07", activity=REPAS)["2026-12-07"][REPAS]
    assert cell["state"] == "cancelled" and cell["can_book"] is True
    again = cancel(r, booked[:1])
    assert again.get_json()["already_cancelled"] == [booked[0]["id"]]
    assert len(r.events("reservations.booking.cancelled")) == 1


def test_a_prepaid_cancellation_in_time_is_refunded(reservations):
    r = reservations
    checkout = r.book(HUGO, MERCREDI, ["2026-12-09", "2026-12-16"])
    r.pay(checkout)
    answer = cancel(r, checkout["bookings"])
    assert answer.get_json()["refund_due"] == "28.00"
    [event] = r.events("reservations.booking.cancelled")
    assert event["data"]["refund_due"] == "28.00"
    assert [line["amount"] for line in event["data"]["refund_lines"]] == ["14.00", "14.00"]
    assert event["data"]["recipients"] == ["parent@famille.test"]


def test_after_the_deadline_a_refusal_gives_the_deadline(reservations, clock):
    r = reservations
    booked = r.book(LEA, REPAS, ["2026-12-07"])["bookings"]
    clock.set(paris(2026, 12, 6, 9, 30))
    answer = cancel(r, booked)
    assert answer.status_code == 409
    assert answer.get_json()["detail"] == (
        "Annulation impossible pour Léa le lundi 7 décembre 2026 (« Repas (restauration "
        "scolaire) ») : la date limite d'annulation (la veille à 09:00) était le dimanche 6 "
        "décembre 2026 à 09:00.")
    assert answer.get_json()["conflicts"][0]["deadline"] == "2026-12-06T09:00:00+01:00"
    cell = r.calendar(LEA, "2026-12-07", activity=REPAS)["2026-12-07"][REPAS]
    assert cell["state"] == "booked" and cell["can_cancel"] is False
    assert r.events("reservations.booking.cancelled") == []


def test_after_the_deadline_a_request_goes_to_an_agent(reservations, clock):
    r = reservations
    checkout = r.book(HUGO, MERCREDI, ["2026-12-09"])
    r.pay(checkout)
    # Cancelling the Wednesday closes 2 working days before at noon: Monday 7 at 12:00.
    clock.set(paris(2026, 12, 7, 14, 0))
    cell = r.calendar(HUGO, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["can_cancel"] is True and cell["cancel_mode"] == "request"
    asked = cancel(r, checkout["bookings"], reason="Grand-mère malade")
    assert asked.status_code == 200
    [request] = asked.get_json()["requests"]
    assert request["status"] == "pending" and request["within_deadline"] is False
    assert r.events("reservations.booking.cancelled") == []
    cell = r.calendar(HUGO, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "booked" and cell["can_cancel"] is False
    assert cell["reason"] == "Demande d'annulation en cours"
    twice = cancel(r, checkout["bookings"])
    assert twice.status_code == 409
    pending = r.get("jolieville/cancellations", AGENT, query_string={"status": "pending"})
    assert [c["id"] for c in pending.get_json()["items"]] == [request["id"]]
    assert r.get("jolieville/cancellations", DAMMARTIN_AGENT).status_code == 403
    assert r.get("jolieville/cancellations", OTHER_PARENT).get_json()["items"] == []
    path = f"jolieville/cancellations/{request['id']}/decision"
    assert r.post(path, PARENT, json={"accept": True}).status_code == 403
    decided = r.post(path, AGENT, json={"accept": True, "message": "Accordé, bon courage."})
    assert decided.status_code == 200, decided.get_json()
    assert decided.get_json()["status"] == "accepted"
    assert decided.get_json()["refund"] == "14.00"
    [event] = r.events("reservations.booking.cancelled")
    assert event["data"]["within_deadline"] is False
    assert event["data"]["agent_message"] == "Accordé, bon courage."
    assert event["data"]["refund_due"] == "14.00"
    assert event["data"]["cancellation_id"] == request["id"]
    assert r.post(path, AGENT, json={"accept": False}).status_code == 409


def test_an_agent_refuses_a_late_cancellation(reservations, clock):
    r = reservations
    checkout = r.book(HUGO, MERCREDI, ["2026-12-09"])
    r.pay(checkout)
    clock.set(paris(2026, 12, 8, 10, 0))
    [request] = cancel(r, checkout["bookings"]).get_json()["requests"]
    refused = r.post(f"jolieville/cancellations/{request['id']}/decision", AGENT,
                     json={"accept": False, "message": "Trop tard."})
    assert refused.get_json()["status"] == "refused"
    cell = r.calendar(HUGO, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "booked" and cell["reason"] is None
    assert r.events("reservations.booking.cancelled") == []
    mine = r.get("jolieville/cancellations").get_json()["items"]
    assert mine[0]["agent_message"] == "Trop tard."


def test_what_cannot_be_cancelled(reservations):
    r = reservations
    held = r.book(HUGO, MERCREDI, ["2026-12-09"])["bookings"]
    answer = cancel(r, held)
    assert answer.status_code == 409
    assert "attend son paiement" in answer.get_json()["detail"]
    assert cancel(r, held, as_=OTHER_PARENT).status_code == 404
    assert r.post("jolieville/cancellations", AGENT,
                  json={"booking_ids": [held[0]["id"]]}).status_code == 403


def absence(day: str, activity_id: str | None = None, **changes):
    data = copy.deepcopy(EXAMPLES["requests.request.status_changed"])
    payload = {"child_id": LEA, "dates": [day]}
    if activity_id:
        payload["activity_id"] = activity_id
    data.update(family_id=CASSEREAU, payload=payload)
    data.update(changes)
    return data


def test_a_justified_absence_excuses_the_day_and_refunds_prepaid(reservations):
    r = reservations
    r.book(LEA, REPAS, ["2026-12-07"])
    checkout = r.book(LEA, MATIN, ["2026-12-07"])
    r.pay(checkout)
    assert r.feed("requests.request.status_changed", absence("2026-12-07"),
                  commune_id=JOLIEVILLE) == "handled"
    cells = r.calendar(LEA, "2026-12-07")["2026-12-07"]
    assert cells[REPAS]["state"] == "excused" and cells[MATIN]["state"] == "excused"
    recorded = r.events("reservations.attendance.recorded")
    assert {(e["data"]["activity_id"], e["data"]["status"]) for e in recorded} == {
        (REPAS, "excused"), (MATIN, "excused")}
    [cancelled] = r.events("reservations.booking.cancelled")
    assert cancelled["data"]["activity_id"] == MATIN
    assert cancelled["data"]["refund_due"] == "2.50"
    assert cancelled["data"]["reason"] == "Absence justifiée"
    # The same decision again (another event) changes nothing.
    r.feed("requests.request.status_changed", absence("2026-12-07"), commune_id=JOLIEVILLE)
    assert len(r.events("reservations.booking.cancelled")) == 1
    assert len(r.events("reservations.attendance.recorded")) == 2


def test_other_request_changes_are_ignored_and_a_useless_payload_dead_letters(reservations):
    r = reservations
    r.book(LEA, REPAS, ["2026-12-07"])
    r.feed("requests.request.status_changed",
           absence("2026-12-07", old_status="submitted", new_status="in_progress"))
    r.feed("requests.request.status_changed",
           absence("2026-12-07", category_kind="address_change"))
    assert r.events("reservations.attendance.recorded") == []
    with pytest.raises(PermanentError):
        r.feed("requests.request.status_changed", absence("2026-12-07", payload={}))
