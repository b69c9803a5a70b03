"""Agents configure services, sites, activities, the calendar and enrolments; the API is in
the OpenAPI document; parents read, and other communes' agents are kept out."""

from __future__ import annotations

from services.common.auth import Principal
from tests.reservations.support import (
    AGENT,
    DAMMARTIN_AGENT,
    HUGO,
    JULES_FERRY,
    LEA,
    LOISIRS,
    MERCREDI,
    OTHER_CHILD,
    OTHER_PARENT,
    PARENT,
    REPAS,
    SCHOOL_YEAR,
    TILLEULS,
)


def new_service(r, **body):
    answer = r.post("jolieville/services", AGENT,
                    json={"name": "Accueil de loisirs des vacances", **body})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def activity_body(service_id, **changes):
    body = {"service_id": service_id, "site_id": TILLEULS, "code": "JOURNEE",
            "label": "Journée vacances", "payment_mode": "prepaid", "unit_price": "18.50",
            "capacity": 30, "waiting_list_size": 3, "waiting_list_mode": "offer",
            "offer_hours": 48, "eligibility": {"min_age": 3, "max_age": 11},
            "booking_deadline": {"kind": "working_days_before", "days": 3, "time": "12:00"},
            "cancellation_deadline": {"kind": "days_before", "days": 7, "time": "18:00"},
            "late_cancellation": "request",
            "calendar": {"weekdays": [1, 2, 3, 4, 5], "school_holidays": "only"}}
    body.update(changes)
    return body


def test_the_activities_of_the_seed_with_their_rules(reservations):
    answer = reservations.get("jolieville/activities")
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["next"] is None
    assert {s["name"] for s in body["services"]} == {
        "Restauration scolaire", "Accueil périscolaire", "Centre de loisirs",
        "Étude surveillée"}
    assert {s["name"] for s in body["sites"]} == {"École Jules Ferry",
                                                   "Centre de loisirs Les Tilleuls"}
    by_code = {a["code"]: a for a in body["items"]}
    assert set(by_code) == {"REPAS", "MATIN", "SOIR", "MERCREDI", "ETUDE"}
    repas = by_code["REPAS"]
    assert repas["payment_mode"] == "monthly" and repas["unit_price"] == "4.10"
    assert repas["capacity"] is None
    assert repas["booking_deadline"] == {"kind": "days_before", "days": 1, "time": "09:00"}
    assert repas["booking_deadline_label"] == "la veille à 09:00"
    assert repas["site_name"] == "École Jules Ferry"
    mercredi = by_code["MERCREDI"]
    assert (mercredi["unit_price"], mercredi["capacity"], mercredi["waiting_list_size"]) == (
        "14.00", 24, 5)
    assert mercredi["calendar"]["weekdays"] == [3]
    assert by_code["MATIN"]["unit_price"] == "2.50"
    assert by_code["SOIR"]["unit_price"] == "3.20"
    assert by_code["ETUDE"]["eligibility"]["label"] == "du CP au CM2"


def test_an_agent_creates_and_edits_an_activity(reservations):
    r = reservations
    service = new_service(r, enrolment_mode="validated")
    created = r.post("jolieville/activities", AGENT, json=activity_body(service["id"]))
    assert created.status_code == 201, created.get_json()
    activity = created.get_json()
    assert activity["unit_price"] == "18.50"
    assert activity["booking_deadline_label"] == "3 jours ouvrés avant à 12:00"
    assert activity["calendar"]["school_holidays"] == "only"
    patched = r.patch(f"jolieville/activities/{activity['id']}", AGENT,
                      json={"unit_price": "19.00", "calendar": {"weekdays": [1, 2, 4, 5]},
                            "eligibility": {"max_age": 12}})
    assert patched.status_code == 200, patched.get_json()
    body = patched.get_json()
    assert body["unit_price"] == "19.00"
    assert body["calendar"] == {"weekdays": [1, 2, 4, 5], "periods": [],
                                "school_holidays": "only", "public_holidays": "closed"}
    assert body["eligibility"]["min_age"] == 3 and body["eligibility"]["max_age"] == 12
    again = r.post("jolieville/activities", AGENT, json=activity_body(service["id"]))
    assert again.status_code == 409


def test_invalid_activities_are_refused_in_french(reservations):
    r = reservations
    service = new_service(r)
    bad = r.post("jolieville/activities", AGENT, json=activity_body(
        service["id"], unit_price="4.105", payment_mode="later",
        booking_deadline={"kind": "weekly", "time": "25:00"}, calendar={"weekdays": []}))
    assert bad.status_code == 422
    errors = bad.get_json()["errors"]
    assert "unit_price" in errors and "payment_mode" in errors
    assert "booking_deadline.time" in errors or "booking_deadline.weekday" in errors
    assert errors["calendar.weekdays"] == ["Au moins un jour d'ouverture."]
    elsewhere = r.post("jolieville/activities", AGENT, json=activity_body(
        service["id"], site_id="00000000-0000-4000-8000-000000000000"))
    assert elsewhere.status_code == 422
    assert elsewhere.get_json()["errors"]["site_id"] == ["Site inconnu dans cette commune."]


def test_only_the_communes_agents_configure(reservations):
    r = reservations
    body = {"name": "Piscine"}
    assert r.post("jolieville/services", PARENT, json=body).status_code == 403
    assert r.post("jolieville/services", DAMMARTIN_AGENT, json=body).status_code == 403
    assert r.post("jolieville/services", None, json=body).status_code == 401
    assert r.get("jolieville/activities", DAMMARTIN_AGENT).status_code == 403
    assert r.get("jolieville/activities", OTHER_PARENT).status_code == 200
    assert r.get("dammartin/activities", OTHER_PARENT).status_code == 404
    assert r.patch(f"jolieville/activities/{REPAS}", DAMMARTIN_AGENT,
                   json={"unit_price": "0.00"}).status_code == 403
    assert r.patch(f"dammartin/activities/{REPAS}", DAMMARTIN_AGENT,
                   json={"unit_price": "0.00"}).status_code == 404
    admin = Principal(account_id="acc20000-0000-4000-8000-000000000001", platform_admin=True)
    assert r.get("jolieville/activities", admin).status_code == 200
    unknown = r.get("saint-nulle-part/activities", admin)
    assert unknown.status_code == 404
    assert unknown.get_json()["detail"] == "Cette commune n'est pas connue du portail."


def test_the_calendar_of_the_commune_and_its_exceptions(reservations):
    r = reservations
    settings = r.get("jolieville/calendar").get_json()
    assert settings["zone"] == "C"
    assert [y["label"] for y in settings["school_years"]] == ["2026-2027"]
    days = r.get("jolieville/calendar/days", query_string={"from": "2026-11-11",
                                                           "to": "2026-12-21"}).get_json()
    by_day = {d["date"]: d for d in days["days"]}
    assert by_day["2026-11-11"]["public_holiday"] == "Armistice"
    assert by_day["2026-12-21"]["school_holiday"] == "Vacances de Noël"
    assert by_day["2026-12-07"]["school_year"] == "2026-2027"
    closure = r.post("jolieville/calendar/exceptions", AGENT, json={
        "kind": "closure", "from": "2026-12-10", "to": "2026-12-11", "label": "grève",
        "site_id": JULES_FERRY})
    assert closure.status_code == 201, closure.get_json()
    cells = r.calendar(LEA, "2026-12-10", "2026-12-11", activity=REPAS)
    assert cells["2026-12-10"][REPAS]["state"] == "closed"
    assert cells["2026-12-10"][REPAS]["reason"] == "Fermé (fermeture : grève)"
    # The Christmas holidays opened for the Wednesday centre on the 23rd.
    r.post("jolieville/calendar/exceptions", AGENT, json={
        "kind": "opening", "from": "2026-12-23", "label": "accueil de Noël",
        "activity_id": MERCREDI})
    cells = r.calendar(LEA, "2026-12-23", activity=MERCREDI)
    assert cells["2026-12-23"][MERCREDI]["state"] == "available"
    gone = r.delete(f"jolieville/calendar/exceptions/{closure.get_json()['id']}", AGENT)
    assert gone.status_code == 204
    assert r.calendar(LEA, "2026-12-10", activity=REPAS)["2026-12-10"][REPAS]["state"] == (
        "available")
    zone = r.put("jolieville/calendar", AGENT, json={"zone": "A"})
    assert zone.get_json()["zone"] == "A"
    assert r.put("jolieville/calendar", PARENT, json={"zone": "B"}).status_code == 403
    overlap = r.post("jolieville/school-years", AGENT, json={
        "label": "2027-2028", "starts_on": "2027-08-01", "ends_on": "2028-07-31"})
    assert overlap.status_code == 409
    created = r.post("jolieville/school-years", AGENT, json={
        "label": "2027-2028", "starts_on": "2027-09-01", "ends_on": "2028-08-31"})
    assert created.status_code == 201


def test_enrolment_automatic_or_validated_by_an_agent(reservations):
    r = reservations
    service = new_service(r, enrolment_mode="validated")
    activity = r.post("jolieville/activities", AGENT, json=activity_body(
        service["id"], calendar={"weekdays": [1, 2, 4, 5]}, eligibility={})).get_json()
    asked = r.post("jolieville/enrolments", PARENT, json={
        "child_id": LEA, "service_id": service["id"], "school_year_id": SCHOOL_YEAR})
    assert asked.status_code == 201, asked.get_json()
    assert asked.get_json()["status"] == "pending"
    assert asked.get_json()["child_first_name"] == "Léa"
    refused = r.add(LEA, activity["id"], ["2026-12-10"])
    assert refused.status_code == 422
    assert "attend la validation de la mairie" in refused.get_json()["detail"]
    twice = r.post("jolieville/enrolments", PARENT, json={
        "child_id": LEA, "service_id": service["id"], "school_year_id": SCHOOL_YEAR})
    assert twice.status_code == 409
    pending = r.get("jolieville/enrolments", AGENT, query_string={"status": "pending"})
    assert [e["id"] for e in pending.get_json()["items"]] == [asked.get_json()["id"]]
    assert r.post(f"jolieville/enrolments/{asked.get_json()['id']}/decision", PARENT,
                  json={"accept": True}).status_code == 403
    decided = r.post(f"jolieville/enrolments/{asked.get_json()['id']}/decision", AGENT,
                     json={"accept": True, "message": "Bienvenue"})
    assert decided.get_json()["status"] == "validated"
    assert r.add(LEA, activity["id"], ["2026-12-10"]).status_code == 201
    # An agent's enrolment is validated at once; a parent cannot enrol another's child.
    by_agent = r.post("jolieville/enrolments", AGENT, json={
        "child_id": HUGO, "service_id": service["id"], "school_year_id": SCHOOL_YEAR})
    assert by_agent.get_json()["status"] == "validated"
    other = r.post("jolieville/enrolments", PARENT, json={
        "child_id": OTHER_CHILD, "service_id": LOISIRS, "school_year_id": SCHOOL_YEAR})
    assert other.status_code == 404
    mine = r.get("jolieville/enrolments", PARENT).get_json()["items"]
    assert {e["child_id"] for e in mine} == {LEA, HUGO}


def test_the_api_is_in_the_openapi_document(reservations):
    spec = reservations.client().get("/api/reservations/openapi.json").get_json()
    paths = spec["paths"]
    base = "/api/reservations/communes/{slug}"
    for path, method in [
        ("/activities", "get"), ("/activities", "post"), ("/activities/{activity_id}", "patch"),
        ("/children/{child_id}/calendar", "get"), ("/basket", "get"),
        ("/basket/items", "post"), ("/basket/items/{item_id}", "delete"),
        ("/basket/checkout", "post"), ("/bookings", "get"), ("/cancellations", "post"),
        ("/cancellations", "get"), ("/cancellations/{cancellation_id}/decision", "post"),
        ("/attendance", "get"), ("/attendance", "put"), ("/attendance/lock", "post"),
        ("/attendance/export", "get"), ("/occupancy", "get"), ("/enrolments", "post"),
        ("/waiting-list", "get"), ("/waiting-list/{entry_id}/accept", "post"),
    ]:
        assert method in paths[base + path], (path, method)
