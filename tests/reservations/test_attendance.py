"""Agents run the day: the list of expected children with allergy flags, marks, an unexpected
child, a locked month, the kitchen's CSV, occupancy."""

from __future__ import annotations

from tests.reservations.support import (
    AGENT,
    DAMMARTIN_AGENT,
    HUGO,
    JULES_FERRY,
    LEA,
    OTHER_CHILD,
    OTHER_FAMILY,
    OTHER_PARENT,
    PARENT,
    REPAS,
    SOIR,
    TILLEULS,
)

DAY = "2026-12-07"
QUERY = {"site": JULES_FERRY, "date": DAY}


def test_the_days_list_and_the_marks(reservations):
    r = reservations
    r.book(LEA, REPAS, [DAY])
    r.book(HUGO, REPAS, [DAY])
    sheet = r.get("jolieville/attendance", AGENT, query_string=QUERY)
    assert sheet.status_code == 200, sheet.get_json()
    body = sheet.get_json()
    assert body["site_name"] == "École Jules Ferry" and body["locked"] is False
    assert [(i["first_name"], i["allergies"], i["status"], i["class_name"])
            for i in body["items"]] == [("Hugo", True, None, "GS"), ("Léa", False, None, "CM1")]
    [repas] = [t for t in body["totals"] if t["code"] == "REPAS"]
    assert (repas["expected"], repas["allergies"], repas["unmarked"]) == (2, 1, 2)
    marked = r.put("jolieville/attendance", AGENT, query_string=QUERY, json={"marks": [
        {"child_id": LEA, "activity_id": REPAS, "status": "present"},
        {"child_id": HUGO, "activity_id": REPAS, "status": "absent"}]})
    assert marked.status_code == 200, marked.get_json()
    assert {i["first_name"]: i["status"] for i in marked.get_json()["items"]} == {
        "Léa": "present", "Hugo": "absent"}
    events = r.events("reservations.attendance.recorded")
    assert {(e["data"]["child_id"], e["data"]["status"]) for e in events} == {
        (LEA, "present"), (HUGO, "absent")}
    assert all(e["data"]["recorded_at"].startswith("2026-11-30T07:00") for e in events)
    # The same marks again record nothing new; a correction is a new event.
    r.put("jolieville/attendance", AGENT, query_string=QUERY, json={"marks": [
        {"child_id": LEA, "activity_id": REPAS, "status": "present"},
        {"child_id": HUGO, "activity_id": REPAS, "status": "excused"}]})
    assert len(r.events("reservations.attendance.recorded")) == 3
    cells = r.calendar(LEA, DAY, activity=REPAS)
    assert cells[DAY][REPAS]["state"] == "present"
    assert r.calendar(HUGO, DAY, activity=REPAS)[DAY][REPAS]["state"] == "excused"


def test_an_unexpected_child_is_added(reservations):
    r = reservations
    answer = r.put("jolieville/attendance", AGENT, query_string=QUERY, json={"marks": [
        {"child_id": OTHER_CHILD, "activity_id": SOIR, "status": "present"}]})
    assert answer.status_code == 200, answer.get_json()
    [item] = answer.get_json()["items"]
    assert item["first_name"] == "Jules" and item["expected"] is False
    [confirmed] = r.events("reservations.booking.confirmed")
    assert confirmed["data"]["family_id"] == OTHER_FAMILY
    assert confirmed["data"]["payment_mode"] == "prepaid"
    assert confirmed["data"]["recipients"] == ["dupont@exemple.fr"]
    bookings = r.get("jolieville/bookings", OTHER_PARENT).get_json()["items"]
    assert [(b["state"], b["source"]) for b in bookings] == [("present", "attendance")]
    unknown = r.put("jolieville/attendance", AGENT, query_string=QUERY, json={"marks": [
        {"child_id": "00000000-0000-4000-8000-000000000000", "activity_id": REPAS,
         "status": "present"}]})
    assert unknown.status_code == 422
    wrong_site = r.put("jolieville/attendance", AGENT,
                       query_string={"site": TILLEULS, "date": DAY}, json={"marks": [
                           {"child_id": LEA, "activity_id": REPAS, "status": "present"}]})
    assert wrong_site.status_code == 422


def test_a_locked_month_cannot_change(reservations):
    r = reservations
    r.book(LEA, REPAS, [DAY])
    locked = r.post("jolieville/attendance/lock", AGENT, json={"month": "2026-12"})
    assert locked.status_code == 201
    assert r.post("jolieville/attendance/lock", AGENT, json={"month": "2026-12"}).get_json()[
        "month"] == "2026-12"
    refused = r.put("jolieville/attendance", AGENT, query_string=QUERY, json={"marks": [
        {"child_id": LEA, "activity_id": REPAS, "status": "present"}]})
    assert refused.status_code == 409
    assert refused.get_json()["detail"] == ("Le pointage de décembre 2026 est verrouillé : il "
                                            "ne peut plus être modifié.")
    assert r.get("jolieville/attendance", AGENT, query_string=QUERY).get_json()["locked"]
    assert [m["month"] for m in r.get("jolieville/attendance/locks", AGENT).get_json()[
        "items"]] == ["2026-12"]
    assert r.post("jolieville/attendance/lock", AGENT,
                  json={"month": "décembre"}).status_code == 422


def test_attendance_is_for_the_communes_agents(reservations):
    r = reservations
    assert r.get("jolieville/attendance", PARENT, query_string=QUERY).status_code == 403
    assert r.get("jolieville/attendance", DAMMARTIN_AGENT, query_string=QUERY).status_code == (
        403)
    assert r.get("jolieville/attendance", AGENT,
                 query_string={"site": JULES_FERRY}).status_code == 422


def test_the_kitchens_csv(reservations):
    r = reservations
    r.book(LEA, REPAS, [DAY])
    r.book(HUGO, REPAS, [DAY])
    answer = r.get("jolieville/attendance/export", AGENT, query_string=QUERY)
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    text = answer.get_data(as_text=True).lstrip("\ufeff")
    lines = text.splitlines()
    assert lines[0] == "École Jules Ferry — lundi 7 décembre 2026"
    assert lines[1] == "Activité;Code;Nom;Prénom;Classe;Allergie / PAI;Pointage"
    assert "Repas (restauration scolaire);REPAS;CASSEREAU;Hugo;GS;oui;" in lines
    assert "Repas (restauration scolaire);REPAS;2;1;0;0;0" in lines


def test_occupancy_and_children(reservations):
    r = reservations
    r.book(LEA, REPAS, [DAY])
    r.book(HUGO, REPAS, [DAY, "2026-12-08"])
    items = r.get("jolieville/occupancy", AGENT, query_string={
        "activity": REPAS, "from": DAY, "to": "2026-12-09"}).get_json()["items"]
    assert [(i["date"], i["booked"], i["capacity"], i["available"]) for i in items] == [
        (DAY, 2, None, None), ("2026-12-08", 1, None, None)]  # closed on Wednesday
    assert r.get("jolieville/occupancy", PARENT).status_code == 403
    found = r.get("jolieville/children", AGENT, query_string={"q": "hug"}).get_json()["items"]
    assert [(c["first_name"], c["family_name"]) for c in found] == [("Hugo", "CASSEREAU")]
    everyone = r.get("jolieville/children", AGENT).get_json()["items"]
    assert {c["first_name"] for c in everyone} == {"Léa", "Hugo", "Jules"}
