"""A family books: the calendar, the basket (dates, periods, several children), the checkout
(monthly confirmed at once, prepaid held for payment), refusals in French naming the child,
the day and the rule, idempotent validation, billing down."""

from __future__ import annotations

import pytest

from tests.reservations.support import (
    AGENT,
    DAMMARTIN_AGENT,
    HUGO,
    LEA,
    LOISIRS,
    MATIN,
    MERCREDI,
    OTHER_CHILD,
    OTHER_PARENT,
    PARENT,
    REPAS,
    RESTAURATION,
    SCHOOL_YEAR,
    SOIR,
    paris,
)


def enrol_other_child(r, service_id=LOISIRS):
    answer = r.post("jolieville/enrolments", AGENT, json={
        "child_id": OTHER_CHILD, "service_id": service_id, "school_year_id": SCHOOL_YEAR})
    assert answer.status_code == 201, answer.get_json()


# --- the calendar ----------------------------------------------------------------------------

def test_the_week_of_a_child(reservations):
    days = reservations.calendar(LEA, "2026-12-07", "2026-12-13")
    assert list(days) == [f"2026-12-{d:02d}" for d in range(7, 14)]
    monday = days["2026-12-07"]
    assert set(monday) == {REPAS, MATIN, SOIR, MERCREDI,
                           "fd1d0b6e-0000-0000-0000-000000000000"} - {
        "fd1d0b6e-0000-0000-0000-000000000000"} | set(monday)  # every enrolled activity
    assert monday[REPAS] == {
        "activity_id": REPAS, "state": "available", "can_book": True, "can_cancel": False,
        "deadline": "2026-12-06T09:00:00+01:00", "booking_id": None, "reason": None,
        "cancel_mode": None, "can_wait": False, "waiting_list": None}
    assert days["2026-12-09"][MERCREDI]["deadline"] == "2026-12-03T12:00:00+01:00"
    assert days["2026-12-09"][REPAS]["state"] == "closed"
    assert days["2026-12-12"][REPAS]["reason"] == "Fermé (l'activité n'a pas lieu le samedi)"


def test_the_calendar_of_someone_elses_child_is_not_found(reservations):
    r = reservations
    path = f"jolieville/children/{OTHER_CHILD}/calendar"
    assert r.get(path, PARENT).status_code == 404
    assert r.get(path, OTHER_PARENT).status_code == 200
    assert r.get(path, AGENT).status_code == 200
    assert r.get(path, DAMMARTIN_AGENT).status_code == 403
    assert r.get("jolieville/children/00000000-0000-4000-8000-000000000000/calendar",
                 PARENT).status_code == 404
    assert r.get(f"dammartin/children/{OTHER_CHILD}/calendar", OTHER_PARENT).status_code == 404


def test_one_activity_and_the_month_by_default(reservations):
    answer = reservations.get(f"jolieville/children/{HUGO}/calendar",
                              query_string={"activity": MERCREDI, "from": "2026-12-01"})
    body = answer.get_json()
    assert body["from"] == "2026-12-01" and body["to"] == "2026-12-31"
    assert [a["id"] for a in body["activities"]] == [MERCREDI]
    states = {d["date"]: d["activities"][0]["state"] for d in body["days"]}
    assert states["2026-12-16"] == "available" and states["2026-12-23"] == "closed"


# --- the basket -----------------------------------------------------------------------------

def test_a_basket_for_two_children_and_a_period(reservations):
    r = reservations
    first = r.add(LEA, REPAS, ["2026-12-07", "2026-12-08"])
    assert first.status_code == 201, first.get_json()
    second = r.add(HUGO, REPAS, ["2026-12-07", "2026-12-08"])
    assert second.status_code == 201
    period = r.post("jolieville/basket/items", json={
        "child_id": LEA, "activity_id": MATIN,
        "period": {"from": "2026-12-01", "to": "2026-12-31", "weekdays": [1, 2, 4]}})
    assert period.status_code == 201, period.get_json()
    added = period.get_json()["added"]
    # Mondays, Tuesdays, Thursdays until the Christmas holidays (19 December), from the 2nd
    # (the 1st closed the day before at 09:00: it is 30 November 08:00).
    assert added == ["2026-12-01", "2026-12-03", "2026-12-07", "2026-12-08", "2026-12-10",
                     "2026-12-14", "2026-12-15", "2026-12-17"]
    basket = r.get("jolieville/basket").get_json()
    assert [(i["child_first_name"], i["activity_id"], i["count"]) for i in basket["items"]] == [
        ("Léa", REPAS, 2), ("Hugo", REPAS, 2), ("Léa", MATIN, 8)]
    assert basket["to_invoice"] == "16.40"
    assert basket["to_pay_now"] == "20.00"
    assert basket["total"] == "36.40"
    assert basket["hold_minutes"] == 60
    again = r.add(LEA, REPAS, ["2026-12-08", "2026-12-10"])
    assert [i["dates"] for i in again.get_json()["items"]][0] == [
        "2026-12-07", "2026-12-08", "2026-12-10"]
    hugo_line = basket["items"][1]["id"]
    assert r.delete(f"jolieville/basket/items/{hugo_line}", OTHER_PARENT).status_code == 404
    assert r.delete(f"jolieville/basket/items/{hugo_line}").status_code == 204
    assert len(r.get("jolieville/basket").get_json()["items"]) == 2


def test_an_empty_basket(reservations):
    basket = reservations.get("jolieville/basket").get_json()
    assert basket["id"] is None and basket["items"] == [] and basket["total"] == "0.00"
    empty = reservations.checkout()
    assert empty.status_code == 422
    assert empty.get_json()["detail"] == "Votre panier est vide."
    assert reservations.get("jolieville/basket", AGENT).status_code == 403


@pytest.mark.parametrize(("child", "activity", "day", "rule", "words"), [
    (LEA, REPAS, "2026-12-21", "closed",
     "Réservation impossible pour Léa le lundi 21 décembre 2026 : l'activité « Repas "
     "(restauration scolaire) » est fermée ce jour-là (vacances scolaires : Vacances de "
     "Noël)."),
    (LEA, REPAS, "2026-11-30", "deadline",
     "la date limite de réservation (la veille à 09:00) était le dimanche 29 novembre 2026 à "
     "09:00"),
    (HUGO, "etude", "2026-12-07", "not_eligible",
     "Réservation impossible pour Hugo le lundi 7 décembre 2026 : l'activité « Étude "
     "surveillée » est réservée aux enfants du CP au CM2 (Hugo est en GS)."),
    (OTHER_CHILD, REPAS, "2026-12-07", "not_enrolled",
     "Jules n'est pas inscrit(e) au service « Restauration scolaire » pour l'année scolaire "
     "2026-2027"),
])
def test_refusals_name_the_child_the_day_and_the_rule(reservations, child, activity, day,
                                                      rule, words):
    from tests.reservations.support import ETUDE

    who = OTHER_PARENT if child == OTHER_CHILD else PARENT
    answer = reservations.add(child, ETUDE if activity == "etude" else activity, [day], who)
    assert answer.status_code == 422
    assert answer.content_type == "application/problem+json"
    body = answer.get_json()
    assert words in body["detail"]
    assert body["conflicts"][0]["rule"] == rule
    assert body["conflicts"][0]["date"] == day
    assert body["dates"] == [day]


def test_someone_elses_child_cannot_be_put_in_a_basket(reservations):
    assert reservations.add(OTHER_CHILD, REPAS, ["2026-12-07"]).status_code == 404


# --- checkout -------------------------------------------------------------------------------

def test_monthly_lines_are_confirmed_at_once(reservations, billing):
    r = reservations
    answer = r.book(LEA, REPAS, ["2026-12-07", "2026-12-08"])
    assert answer["status"] == "confirmed"
    assert [(b["date"], b["status"], b["state"]) for b in answer["bookings"]] == [
        ("2026-12-07", "confirmed", "booked"), ("2026-12-08", "confirmed", "booked")]
    assert billing.calls == []
    [confirmed] = r.events("reservations.booking.confirmed")
    data = confirmed["data"]
    assert data["payment_mode"] == "monthly" and data["unit_price"] == "4.10"
    assert data["dates"] == ["2026-12-07", "2026-12-08"]
    assert data["booking_ids"] == [b["id"] for b in answer["bookings"]]
    assert data["child_first_name"] == "Léa"
    assert data["activity_name"] == "Repas (restauration scolaire)"
    assert data["recipients"] == ["parent@famille.test"]
    assert confirmed["commune_id"] is not None
    [checked_out] = r.events("reservations.basket.checked_out")
    assert checked_out["data"]["payment_mode"] == "monthly"
    assert checked_out["data"]["amount"] == "8.20"
    cell = r.calendar(LEA, "2026-12-07", activity=REPAS)["2026-12-07"][REPAS]
    assert cell["state"] == "booked" and cell["can_cancel"] and cell["cancel_mode"] == (
        "immediate")
    assert cell["deadline"] == "2026-12-06T09:00:00+01:00"
    assert r.get("jolieville/basket").get_json()["id"] is None


def test_prepaid_lines_are_held_and_billing_gives_the_payment(reservations, billing):
    r = reservations
    r.add(LEA, REPAS, ["2026-12-07"])
    r.add(HUGO, MERCREDI, ["2026-12-09", "2026-12-16"])
    r.add(LEA, MERCREDI, ["2026-12-09"])
    answer = r.checkout()
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "payment_required"
    assert body["payment_url"].startswith("https://portail.example.fr/payments/simulator/")
    assert body["amount"] == "42.00"
    assert body["hold_expires_at"] == "2026-11-30T08:00:00+00:00"  # 09:00 Paris + 60 min
    held = [b for b in body["bookings"] if b["status"] == "pending_payment"]
    assert len(held) == 3
    [call] = billing.calls
    assert call["key"] == body["basket_id"]
    sent = call["body"]
    assert sent["basket_id"] == body["basket_id"]
    assert sent["amount"] == "42.00"
    assert sent["return_url"] == ("https://portail.example.fr/reservations/panier/retour"
                                  f"?commune=jolieville&basket={body['basket_id']}")
    assert sorted((line["child_name"], line["dates"], line["amount"])
                  for line in sent["lines"]) == [
        ("Hugo CASSEREAU", ["2026-12-09", "2026-12-16"], "28.00"),
        ("Léa CASSEREAU", ["2026-12-09"], "14.00")]
    assert all(line["activity_name"] == "Centre de loisirs du mercredi"
               for line in sent["lines"])
    modes = {e["data"]["payment_mode"]: e["data"]["amount"]
             for e in r.events("reservations.basket.checked_out")}
    assert modes == {"monthly": "4.10", "prepaid": "42.00"}
    assert [e["data"]["payment_mode"] for e in r.events("reservations.booking.confirmed")] == [
        "monthly"]
    cell = r.calendar(HUGO, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "pending_payment"
    assert cell["deadline"] == "2026-11-30T09:00:00+01:00"
    r.pay(body)
    cell = r.calendar(HUGO, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "booked"
    paid = r.events("reservations.booking.confirmed")[1:]
    assert {(e["data"]["child_first_name"], tuple(e["data"]["dates"])) for e in paid} == {
        ("Hugo", ("2026-12-09", "2026-12-16")), ("Léa", ("2026-12-09",))}
    assert all(e["data"]["basket_id"] == body["basket_id"] for e in paid)
    record = r.get(f"jolieville/payments/{body['payment_id']}/basket").get_json()
    assert record["status"] == "confirmed" and record["basket_status"] == "paid"


def test_validating_the_same_basket_twice_books_once(reservations, billing):
    r = reservations
    r.add(HUGO, MERCREDI, ["2026-12-09"])
    first = r.checkout().get_json()
    second = r.checkout()
    assert second.status_code == 200
    assert second.get_json() == first
    third = r.checkout(basket_id=first["basket_id"]).get_json()
    assert third == first
    assert len(billing.calls) == 1
    bookings = r.get("jolieville/bookings", query_string={"child_id": HUGO}).get_json()
    assert len(bookings["items"]) == 1
    assert len(r.events("reservations.basket.checked_out")) == 1
    assert r.checkout(OTHER_PARENT, basket_id=first["basket_id"]).status_code == 404


def test_an_old_checkout_does_not_answer_for_an_empty_basket(reservations, clock):
    r = reservations
    r.book(LEA, REPAS, ["2026-12-07"])
    clock.advance(hours=2)
    empty = r.checkout()
    assert empty.status_code == 422
    assert empty.get_json()["detail"] == "Votre panier est vide."


def test_billing_down_keeps_the_holds_and_a_retry_uses_the_same_key(reservations, billing):
    r = reservations
    r.add(HUGO, MERCREDI, ["2026-12-09"])
    billing.down = True
    down = r.checkout()
    assert down.status_code == 503
    assert "ne répond pas" in down.get_json()["detail"]
    assert down.get_json()["basket_id"]
    cell = r.calendar(HUGO, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "pending_payment"
    billing.down = False
    retry = r.checkout()
    assert retry.status_code == 200
    body = retry.get_json()
    assert body["status"] == "payment_required" and body["payment_id"]
    assert [c["key"] for c in billing.calls] == [body["basket_id"]]
    assert len(r.get("jolieville/bookings").get_json()["items"]) == 1


def test_a_deadline_passing_before_checkout_is_a_409_with_the_dates(reservations, clock):
    r = reservations
    r.add(LEA, REPAS, ["2026-12-01", "2026-12-07"])
    r.add(HUGO, REPAS, ["2026-12-01"])
    clock.set(paris(2026, 11, 30, 9, 0, 1))
    answer = r.checkout()
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["dates"] == ["2026-12-01"]
    assert {(c["child_first_name"], c["rule"]) for c in body["conflicts"]} == {
        ("Léa", "deadline"), ("Hugo", "deadline")}
    assert body["detail"].startswith("Votre panier ne peut pas être validé : ")
    assert "lundi 30 novembre 2026 à 09:00" in body["detail"]
    assert r.get("jolieville/bookings").get_json()["items"] == []
    assert len(r.get("jolieville/basket").get_json()["items"]) == 2


def test_a_full_day_without_waiting_list_is_refused(reservations, billing):
    r = reservations
    r.patch(f"jolieville/activities/{MERCREDI}", json={"capacity": 1, "waiting_list_size": 0})
    enrol_other_child(r)
    r.book(OTHER_CHILD, MERCREDI, ["2026-12-09"], OTHER_PARENT)
    r.add(LEA, MERCREDI, ["2026-12-09", "2026-12-16"])
    answer = r.checkout()
    assert answer.status_code == 409
    body = answer.get_json()
    assert body["detail"] == ("Réservation impossible pour Léa le mercredi 9 décembre 2026 : "
                              "l'activité « Centre de loisirs du mercredi » est complète "
                              "(1 places).")
    assert body["conflicts"][0]["rule"] == "full"
    assert r.calendar(LEA, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI][
        "state"] == "full"


def test_days_without_capacity_are_counted_once_one_is_set(reservations, billing):
    """Checkouts keep no count of places for an activity without capacity (the canteen): once
    an agent sets one, the days already booked show as full."""
    r = reservations
    r.book(LEA, REPAS, ["2026-12-07"])
    r.patch(f"jolieville/activities/{REPAS}", json={"capacity": 1})
    enrol_other_child(r, RESTAURATION)
    cell = r.calendar(OTHER_CHILD, "2026-12-07", activity=REPAS, as_=OTHER_PARENT)[
        "2026-12-07"][REPAS]
    assert cell["state"] == "full"
    r.add(OTHER_CHILD, REPAS, ["2026-12-07"], OTHER_PARENT)
    assert r.checkout(OTHER_PARENT).status_code == 409


def test_a_full_day_goes_to_the_waiting_list(reservations, billing):
    r = reservations
    r.patch(f"jolieville/activities/{MERCREDI}", json={"capacity": 1, "waiting_list_size": 2})
    enrol_other_child(r)
    r.book(OTHER_CHILD, MERCREDI, ["2026-12-09"], OTHER_PARENT)
    cell = r.calendar(LEA, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "full" and cell["can_wait"] is True
    answer = r.book(LEA, MERCREDI, ["2026-12-09", "2026-12-16"])
    assert answer["status"] == "payment_required"
    assert [b["date"] for b in answer["bookings"]] == ["2026-12-16"]
    assert [(w["date"], w["position"], w["status"]) for w in answer["waiting_list"]] == [
        ("2026-12-09", 1, "waiting")]
    cell = r.calendar(LEA, "2026-12-09", activity=MERCREDI)["2026-12-09"][MERCREDI]
    assert cell["state"] == "full"
    assert cell["waiting_list"]["position"] == 1
    assert cell["reason"] == "Liste d'attente (rang 1)"


def test_deadline_days_before_across_the_spring_change(reservations, clock):
    """Tuesday 30 March 2027 is summer time, but "3 days before at 09:00" is Saturday 27 March
    at 09:00 winter time (08:00 UTC), not an hour earlier as Tuesday's offset would give."""
    r = reservations
    r.patch(f"jolieville/activities/{REPAS}",
            json={"booking_deadline": {"kind": "days_before", "days": 3, "time": "09:00"}})
    clock.set(paris(2027, 3, 27, 8, 59))
    cell = r.calendar(LEA, "2027-03-30", activity=REPAS)["2027-03-30"][REPAS]
    assert cell["can_book"] and cell["deadline"] == "2027-03-27T09:00:00+01:00"
    assert r.add(LEA, REPAS, ["2027-03-30"]).status_code == 201
    clock.set(paris(2027, 3, 27, 9, 0, 1))
    assert r.calendar(LEA, "2027-03-30", activity=REPAS)["2027-03-30"][REPAS]["can_book"] is (
        False)
    late = r.checkout()
    assert late.status_code == 409
    assert "était le samedi 27 mars 2027 à 09:00" in late.get_json()["detail"]
    # Easter Monday 29 March is a public holiday: closed, whatever the deadline.
    assert r.calendar(LEA, "2027-03-29", activity=REPAS)["2027-03-29"][REPAS]["reason"] == (
        "Fermé (jour férié : Lundi de Pâques)")


def test_deadline_the_day_before_across_the_autumn_change(reservations, clock):
    """Monday 26 October 2026 (a holiday centre open during the Toussaint holidays): the day
    before at 09:00 is Sunday 25 October 09:00 winter time, 08:00 UTC — not 07:00."""
    r = reservations
    service = r.post("jolieville/services", AGENT, json={"name": "Vacances"}).get_json()
    activity = r.post("jolieville/activities", AGENT, json={
        "service_id": service["id"], "site_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        "code": "X", "label": "x", "payment_mode": "monthly", "unit_price": "1.00",
        "calendar": {"weekdays": [1]}})
    assert activity.status_code == 422  # unknown site
    from tests.reservations.support import TILLEULS

    activity = r.post("jolieville/activities", AGENT, json={
        "service_id": service["id"], "site_id": TILLEULS, "code": "VAC",
        "label": "Accueil des vacances", "payment_mode": "monthly", "unit_price": "12.00",
        "booking_deadline": {"kind": "days_before", "days": 1, "time": "09:00"},
        "calendar": {"weekdays": [1, 2, 3, 4, 5], "school_holidays": "only"}}).get_json()
    r.post("jolieville/enrolments", PARENT, json={
        "child_id": LEA, "service_id": service["id"], "school_year_id": SCHOOL_YEAR})
    clock.set(paris(2026, 10, 25, 8, 59, 59))
    assert r.add(LEA, activity["id"], ["2026-10-26"]).status_code == 201
    clock.set(paris(2026, 10, 25, 9, 0, 1))
    refused = r.add(LEA, activity["id"], ["2026-10-26"])
    assert refused.status_code == 422 or refused.get_json()["added"] == []
    cell = r.calendar(LEA, "2026-10-26", activity=activity["id"])["2026-10-26"][activity["id"]]
    assert cell["deadline"] == "2026-10-25T09:00:00+01:00"
    assert cell["can_book"] is False and cell["reason"] == "Date limite dépassée"


def test_bookings_of_the_family_only(reservations, billing):
    r = reservations
    enrol_other_child(r)
    r.book(LEA, REPAS, ["2026-12-07", "2026-12-08"])
    r.book(OTHER_CHILD, MERCREDI, ["2026-12-09"], OTHER_PARENT)
    mine = r.get("jolieville/bookings").get_json()["items"]
    assert {b["child_id"] for b in mine} == {LEA}
    theirs = r.get("jolieville/bookings", OTHER_PARENT).get_json()["items"]
    assert {b["child_id"] for b in theirs} == {OTHER_CHILD}
    everyone = r.get("jolieville/bookings", AGENT).get_json()["items"]
    assert len(everyone) == 3
    one_day = r.get("jolieville/bookings", query_string={"from": "2026-12-08",
                                                         "to": "2026-12-08"}).get_json()
    assert [b["date"] for b in one_day["items"]] == ["2026-12-08"]
