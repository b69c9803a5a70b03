"""Agents' reservation pages: the register, cancellation requests, occupancy, activities and
enrolments."""

from __future__ import annotations

import json

import pytest

from .reservations_support import (
    A_MERCREDI,
    ACTIVITIES_API,
    API,
    ATTENDANCE_API,
    BOOKED,
    CANCELLATIONS_API,
    CHILDREN_API,
    ENROLMENT_ID,
    JULES_FERRY,
    LOISIRS,
    MERCREDI,
    OCCUPANCY_API,
    REPAS,
    REQUEST_ID,
    SHEET,
    SOIR,
    TILLEULS,
    reservations_agent,
)
from .support import commune, field_error, input_value, post_form, problem, text

REGISTER = f"/agent/pointage?site={JULES_FERRY}&date=2026-10-08"
AGENT_PAGES = ["/agent/pointage", "/agent/annulations", "/agent/occupation", "/agent/activites",
               "/agent/activites/nouvelle", f"/agent/activites/{MERCREDI}",
               "/agent/inscriptions"]


@pytest.fixture
def agent(client, fake):
    reservations_agent(fake)
    client.set_cookie("portail_session", "s3cr3t")
    return client


def radio(page: str, booking_id: str, status: str) -> str:
    start = page.index(f'id="p-{booking_id}-{status}"')
    return page[page.rindex("<input", 0, start):page.index(">", start) + 1]


# --- who may see them ------------------------------------------------------------------------


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_reservation_pages_are_403_for_parents(parent, fake, path):
    response = parent.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "Accès refusé" in text(response)
    assert not any("/api/reservations/" in r.url for r in fake.seen)


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_reservation_pages_send_anonymous_visitors_to_login(client, fake, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/connexion?suivant=/agent/")


def test_agent_reservation_posts_are_403_for_parents(parent, fake):
    for path in ("/agent/pointage", "/agent/pointage/ajouter", "/agent/pointage/verrouiller",
                 f"/agent/annulations/{REQUEST_ID}/decision", f"/agent/activites/{MERCREDI}",
                 f"/agent/inscriptions/{ENROLMENT_ID}/decision"):
        response = post_form(parent, path, {"decision": "accepter"}, token_from="/profil")
        assert response.status_code == 403, path
    assert not [r for r in fake.seen if r.method != "GET"]


def test_agent_posts_need_the_csrf_token(agent, fake):
    response = agent.post("/agent/pointage", data={
        "site": JULES_FERRY, "date": "2026-10-08", f"m.c1.{REPAS}": "present"},
        headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert not fake.calls("PUT", ATTENDANCE_API)


def test_the_menu_has_the_reservation_pages_when_the_commune_has_them(agent, fake):
    page = agent.get("/").get_data(as_text=True)
    menu = page[page.index('<nav aria-label="Menu principal">'):page.index("</nav>")]
    for href, label in (("/agent/pointage", "Pointage"), ("/agent/annulations", "Annulations"),
                        ("/agent/activites", "Activités")):
        assert f'href="{href}">{label}</a>' in menu
    fake.on("GET", "/api/accounts/communes/jolieville",
            body=commune(modules=("invoices", "requests")))
    agent.application.extensions.pop("portal_communes", None)
    page = agent.get("/").get_data(as_text=True)
    assert "/agent/pointage" not in page[:page.index("</nav>")]


# --- the register ------------------------------------------------------------------------------


def test_the_register_lists_the_children_expected_with_their_allergies(agent, fake):
    response = agent.get(REGISTER)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Pointage — Portail Famille</title>" in page
    assert fake.last_query(ATTENDANCE_API) == {"site": [JULES_FERRY], "date": ["2026-10-08"]}
    assert "École Jules Ferry — jeudi 8 octobre 2026" in page
    assert "<caption>Repas (restauration scolaire) — 2 enfants</caption>" in page
    assert 'CASSEREAU Léa <span class="badge badge--allergy">Allergie / PAI</span>' in page
    assert 'MARTIN Jules <span class="badge badge--extra">Sans réservation</span>' in page
    # A radio group per child and activity, as it was recorded.
    assert f'name="m.c1.{REPAS}" value="present"' in radio(page, BOOKED, "present")
    assert "checked" not in radio(page, BOOKED, "present")
    assert "checked" in radio(page, "5e7a0000-0000-4000-8000-00000000d002", "present")
    assert "checked" in radio(page, "5e7a0000-0000-4000-8000-00000000d003", "absent")
    assert ('<legend class="visually-hidden">Pointage de Léa CASSEREAU, Repas (restauration '
            "scolaire)</legend>") in page
    assert '<button type="submit" class="button">Enregistrer</button>' in page
    export = (f'href="{API}/attendance/export?site={JULES_FERRY}&date=2026-10-08">'
              "Exporter (CSV)")
    assert export in page
    assert '<td data-label="dont allergie / PAI">1</td>' in page
    assert "Mois déjà verrouillés : septembre 2026." in page
    assert input_value(page, "month") == "2026-09"


def test_the_register_defaults_to_the_first_site_and_today(agent, fake):
    assert agent.get("/agent/pointage?site=inconnu").status_code == 200
    query = fake.last_query(ATTENDANCE_API)
    assert query["site"] == [TILLEULS] and len(query["date"][0]) == 10


def test_saving_the_register_puts_the_marks_given(agent, fake):
    fake.on("PUT", ATTENDANCE_API, body=SHEET)
    response = post_form(agent, "/agent/pointage", {
        "site": JULES_FERRY, "date": "2026-10-08", f"m.c1.{REPAS}": "present",
        f"m.c9.{REPAS}": "absent", f"m.c1.{SOIR}": "excused", "m.c2.bad": "peut-être"},
        token_from=REGISTER)
    assert response.status_code == 303
    assert response.headers["Location"] == REGISTER
    assert fake.last_query(ATTENDANCE_API) == {"site": [JULES_FERRY], "date": ["2026-10-08"]}
    assert fake.last_json("PUT", ATTENDANCE_API) == {"marks": [
        {"child_id": "c1", "activity_id": REPAS, "status": "present"},
        {"child_id": "c9", "activity_id": REPAS, "status": "absent"},
        {"child_id": "c1", "activity_id": SOIR, "status": "excused"}]}
    assert ("Pointage du jeudi 8 octobre 2026 enregistré : 3 enfants pointés."
            in text(agent.get(REGISTER)))


def test_a_locked_month_is_refused_and_the_marks_stay(agent, fake):
    message = "Le pointage d'octobre 2026 est verrouillé : il ne peut plus être modifié."
    fake.on("PUT", ATTENDANCE_API, 409, problem(409, message))
    response = post_form(agent, "/agent/pointage", {
        "site": JULES_FERRY, "date": "2026-10-08", f"m.c1.{REPAS}": "excused"},
        token_from=REGISTER)
    page = text(response)
    assert response.status_code == 409
    assert "<title>Erreur — Pointage — Portail Famille</title>" in page
    assert message in page
    assert "checked" in radio(page, BOOKED, "excused")


def test_a_locked_day_shows_the_marks_without_changing_them(agent, fake):
    fake.on("GET", ATTENDANCE_API, body={**SHEET, "locked": True})
    page = text(agent.get(REGISTER))
    assert "est verrouillé : il ne peut plus être modifié" in page
    assert "disabled" in radio(page, BOOKED, "present")
    assert ">Enregistrer</button>" not in page
    assert "Ajouter un enfant non prévu" not in page


def test_saving_nothing_is_explained(agent, fake):
    response = post_form(agent, "/agent/pointage", {"site": JULES_FERRY, "date": "2026-10-08"},
                         token_from=REGISTER)
    assert response.status_code == 422
    assert "Aucun pointage à enregistrer" in text(response)
    assert not fake.calls("PUT", ATTENDANCE_API)


def test_an_unexpected_child_is_found_and_added_present(agent, fake):
    page = text(agent.get(REGISTER + "&q=mar"))
    assert fake.last_query(CHILDREN_API) == {"q": ["mar"]}
    assert "<caption>Enfants correspondant à « mar »</caption>" in page
    assert '<label class="field__label" for="activite-c9">Activité' in page
    fake.on("PUT", ATTENDANCE_API, body=SHEET)
    response = post_form(agent, "/agent/pointage/ajouter", {
        "site": JULES_FERRY, "date": "2026-10-08", "enfant": "c9", "activite": REPAS,
        "nom": "Jules MARTIN"}, token_from=REGISTER)
    assert response.status_code == 303
    assert fake.last_json("PUT", ATTENDANCE_API) == {"marks": [
        {"child_id": "c9", "activity_id": REPAS, "status": "present"}]}
    assert "Jules MARTIN est ajouté au pointage" in text(agent.get(REGISTER))


def test_locking_a_month(agent, fake):
    fake.on("POST", f"{ATTENDANCE_API}/lock", 201, {"month": "2026-10",
                                                     "locked_at": "2026-11-02T08:00:00Z"})
    response = post_form(agent, "/agent/pointage/verrouiller", {
        "month": "10/2026", "site": JULES_FERRY, "date": "2026-10-08"}, token_from=REGISTER)
    assert response.status_code == 303 and response.headers["Location"] == REGISTER
    assert fake.last_json("POST", f"{ATTENDANCE_API}/lock") == {"month": "2026-10"}
    assert "Le pointage d'octobre 2026 est verrouillé" in text(agent.get(REGISTER))
    response = post_form(agent, "/agent/pointage/verrouiller", {"month": "octobre"},
                         token_from=REGISTER)
    assert response.status_code == 422
    assert field_error(text(response), "month") == "Mois invalide (exemple : 10/2026)."


# --- cancellation requests and enrolments ---------------------------------------------------------


def test_pending_cancellation_requests_to_decide(agent, fake):
    page = text(agent.get("/agent/annulations"))
    assert fake.last_query(CANCELLATIONS_API) == {"status": ["pending"]}
    assert "Léa — Accueil périscolaire du soir" in page
    assert "jeudi 8 octobre 2026" in page and "Rendez-vous médical" in page
    assert '<label class="field__label" for="message-' in page
    fake.on("POST", f"{CANCELLATIONS_API}/{REQUEST_ID}/decision", body={
        **fake_item(), "status": "accepted"})
    response = post_form(agent, f"/agent/annulations/{REQUEST_ID}/decision", {
        "decision": "accepter", "message": " Bon rétablissement "},
        token_from="/agent/annulations")
    assert response.status_code == 303
    assert fake.last_json("POST", f"{CANCELLATIONS_API}/{REQUEST_ID}/decision") == {
        "accept": True, "message": "Bon rétablissement"}
    assert "Annulation acceptée" in text(agent.get("/agent/annulations"))
    post_form(agent, f"/agent/annulations/{REQUEST_ID}/decision", {"decision": "refuser"},
              token_from="/agent/annulations")
    assert fake.last_json("POST", f"{CANCELLATIONS_API}/{REQUEST_ID}/decision") == {
        "accept": False, "message": None}


def fake_item() -> dict:
    return {"id": REQUEST_ID, "child_first_name": "Léa", "dates": ["2026-10-08"]}


def test_a_decision_already_taken_is_explained(agent, fake):
    fake.on("POST", f"{CANCELLATIONS_API}/{REQUEST_ID}/decision", 409,
            problem(409, "Cette demande d'annulation a déjà été traitée."))
    response = post_form(agent, f"/agent/annulations/{REQUEST_ID}/decision",
                         {"decision": "accepter"}, token_from="/agent/annulations")
    assert "Cette demande d'annulation a déjà été traitée." in text(
        agent.get(response.headers["Location"]))


def test_pending_enrolments_to_validate(agent, fake):
    page = text(agent.get("/agent/inscriptions"))
    assert "Tom CASSEREAU — Centre de loisirs" in page and "2026-2027" in page
    decision = f"{API}/enrolments/{ENROLMENT_ID}/decision"
    fake.on("POST", decision, body={"id": ENROLMENT_ID, "status": "validated"})
    response = post_form(agent, f"/agent/inscriptions/{ENROLMENT_ID}/decision",
                         {"decision": "accepter"}, token_from="/agent/inscriptions")
    assert response.status_code == 303
    assert fake.last_json("POST", decision) == {"accept": True, "message": None}
    assert "Inscription validée" in text(agent.get("/agent/inscriptions"))


# --- occupancy ------------------------------------------------------------------------------------


def test_occupancy_is_a_table_per_day(agent, fake):
    response = agent.get(f"/agent/occupation?site={TILLEULS}&du=2026-10-05&au=2026-10-09")
    page = text(response)
    assert response.status_code == 200
    assert fake.last_query(OCCUPANCY_API) == {"from": ["2026-10-05"], "to": ["2026-10-09"],
                                              "site": [TILLEULS]}
    assert page.index("<caption>mercredi 7 octobre 2026</caption>") < page.index(
        "<caption>jeudi 8 octobre 2026</caption>")
    assert '<td data-label="Places libres"><strong>Complet</strong></td>' in page
    assert '<td data-label="Capacité">Sans limite</td>' in page
    assert '<td data-label="Présents">120</td>' in page


def test_occupancy_keeps_the_period_within_the_limit(agent, fake):
    page = text(agent.get("/agent/occupation?du=2026-01-01&au=2026-12-31"))
    assert fake.last_query(OCCUPANCY_API)["to"] == ["2026-04-02"]
    assert "Au plus 92 jours à la fois" in page


# --- activities -----------------------------------------------------------------------------------


def test_activities_list_their_rules(agent, fake):
    page = text(agent.get("/agent/activites"))
    assert fake.last_query(ACTIVITIES_API) == {"include_inactive": ["true"]}
    assert f'href="/agent/activites/{MERCREDI}">Centre de loisirs du mercredi' in page
    assert ('<td data-label="Réservation possible">le jeudi à 12:00 pour la semaine suivante'
            "</td>") in page
    assert "24 (+ 5 en liste d'attente)" in page
    assert "Demande à la mairie après la date limite" in page


EDIT = {"label": "Centre de loisirs (journée)", "unit_price": "15,50 €", "payment_mode": "prepaid",
        "capacity": "30", "waiting_list_size": "6", "booking_kind": "weekly",
        "booking_days": "", "booking_weekday": "4", "booking_time": "12:00",
        "cancellation_kind": "working_days_before", "cancellation_days": "2",
        "cancellation_weekday": "1", "cancellation_time": "10:00",
        "late_cancellation": "request", "active": "y"}


def test_editing_an_activity_patches_its_rules(agent, fake):
    page = text(agent.get(f"/agent/activites/{MERCREDI}"))
    assert input_value(page, "unit_price") == "14,00"
    assert input_value(page, "booking_time") == "12:00"
    assert '<option selected value="weekly">' in page
    fake.on("PATCH", f"{ACTIVITIES_API}/{MERCREDI}", body=A_MERCREDI)
    response = post_form(agent, f"/agent/activites/{MERCREDI}", EDIT)
    assert response.status_code == 303 and response.headers["Location"] == "/agent/activites"
    assert fake.last_json("PATCH", f"{ACTIVITIES_API}/{MERCREDI}") == {
        "label": "Centre de loisirs (journée)", "unit_price": "15.50", "payment_mode": "prepaid",
        "capacity": 30, "waiting_list_size": 6,
        "booking_deadline": {"kind": "weekly", "weekday": 4, "time": "12:00"},
        "cancellation_deadline": {"kind": "working_days_before", "days": 2, "time": "10:00"},
        "late_cancellation": "request", "active": True}


def test_an_activity_without_deadline_rule_and_inactive(agent, fake):
    fake.on("PATCH", f"{ACTIVITIES_API}/{MERCREDI}", body=A_MERCREDI)
    data = {**EDIT, "booking_kind": "", "capacity": "", "waiting_list_size": "0"}
    data.pop("active")
    post_form(agent, f"/agent/activites/{MERCREDI}", data)
    sent = fake.last_json("PATCH", f"{ACTIVITIES_API}/{MERCREDI}")
    assert sent["booking_deadline"] is None and sent["capacity"] is None
    assert sent["active"] is False


def test_an_activity_form_with_mistakes(agent, fake):
    response = post_form(agent, f"/agent/activites/{MERCREDI}", {
        **EDIT, "unit_price": "quatre", "booking_kind": "days_before", "booking_days": "",
        "capacity": "", "cancellation_time": "25:00"})
    page = text(response)
    assert response.status_code == 422
    assert page.count("<title>Erreur — Modifier") == 1
    assert field_error(page, "unit_price") == "Montant invalide (par exemple 4,10)."
    assert field_error(page, "booking_days") == "Indiquez le nombre de jours."
    assert field_error(page, "cancellation_time") == "Heure invalide (exemple : 09:00)."
    assert field_error(page, "waiting_list_size") == "Une liste d'attente suppose une capacité."
    assert not fake.calls("PATCH", f"{ACTIVITIES_API}/{MERCREDI}")


def test_the_api_refusal_goes_next_to_its_field(agent, fake):
    fake.on("PATCH", f"{ACTIVITIES_API}/{MERCREDI}", 422, problem(422, "Invalide.", {
        "cancellation_deadline.days": ["Au plus 366."], "label": ["Déjà pris."]}))
    page = text(post_form(agent, f"/agent/activites/{MERCREDI}", EDIT))
    assert field_error(page, "cancellation_days") == "Au plus 366."
    assert field_error(page, "label") == "Déjà pris."


def test_creating_an_activity(agent, fake):
    page = text(agent.get("/agent/activites/nouvelle"))
    assert "<title>Créer une activité — Portail Famille</title>" in page
    assert 'id="weekdays-1" name="weekdays"' in page
    fake.on("POST", ACTIVITIES_API, 201, {**A_MERCREDI, "id": "new"})
    response = post_form(agent, "/agent/activites/nouvelle", {
        **EDIT, "service_id": LOISIRS, "site_id": TILLEULS, "code": "journee",
        "weekdays": ["3"], "booking_kind": ""})
    assert response.status_code == 303
    assert fake.last_json("POST", ACTIVITIES_API) == {
        "label": "Centre de loisirs (journée)", "unit_price": "15.50", "payment_mode": "prepaid",
        "capacity": 30, "waiting_list_size": 6,
        "cancellation_deadline": {"kind": "working_days_before", "days": 2, "time": "10:00"},
        "late_cancellation": "request", "active": True, "service_id": LOISIRS,
        "site_id": TILLEULS, "code": "JOURNEE", "calendar": {"weekdays": [3]}}
    response = post_form(agent, "/agent/activites/nouvelle", {**EDIT, "service_id": "autre"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "service_id") == "Choisissez un service de la liste."
    assert "Cochez au moins un jour d'ouverture." in page
    assert json.loads(fake.calls("POST", ACTIVITIES_API)[-1].body)["code"] == "JOURNEE"
