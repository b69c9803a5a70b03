"""Agents' pages to set reservations up: the opening calendar (zone, school years, exceptions,
a month's preview), the services and the sites, against the fake gateway."""

from __future__ import annotations

import pytest
import requests

from .reservations_support import (
    ACTIVITIES_API,
    API,
    CATALOGUE,
    JULES_FERRY,
    LOISIRS,
    MERCREDI,
    RESTAURATION,
    TILLEULS,
    reservations_agent,
)
from .support import (
    FakeGateway,
    build,
    csrf_token,
    field_error,
    input_value,
    post_form,
    problem,
    text,
)
from .test_accessibility import check

CALENDAR_API = f"{API}/calendar"
DAYS_API = f"{API}/calendar/days"
YEARS_API = f"{API}/school-years"
EXCEPTIONS_API = f"{API}/calendar/exceptions"
SERVICES_API = f"{API}/services"
SITES_API = f"{API}/sites"
PONT = "5e7a0000-0000-4000-8000-0000000e0001"
OUVERTURE = "5e7a0000-0000-4000-8000-0000000e0002"
NOVEMBER = "/agent/calendrier?mois=2026-11"

CALENDAR = {
    "zone": "C",
    "school_years": [{"id": "y1", "label": "2026-2027", "starts_on": "2026-09-01",
                      "ends_on": "2027-08-31"}],
    "exceptions": [
        {"id": OUVERTURE, "kind": "opening", "from": "2026-10-19", "to": "2026-10-23",
         "label": "Centre ouvert pendant les vacances", "service_id": None,
         "site_id": TILLEULS, "activity_id": MERCREDI},
        {"id": PONT, "kind": "closure", "from": "2026-11-10", "to": "2026-11-10",
         "label": "Pont du 11 novembre", "service_id": None, "site_id": None,
         "activity_id": None},
    ],
}


def day(iso: str, **changes) -> dict:
    data = {"date": iso, "public_holiday": None, "school_holiday": None,
            "school_year": "2026-2027", "exceptions": []}
    data.update(changes)
    return data


NOVEMBER_DAYS = {"zone": "C", "days": [
    day("2026-11-01", public_holiday="Toussaint", school_holiday="Vacances de la Toussaint"),
    *[day(f"2026-11-{n:02d}") for n in range(2, 10)],
    day("2026-11-10", exceptions=[CALENDAR["exceptions"][1]]),
    day("2026-11-11", public_holiday="Armistice 1918"),
    *[day(f"2026-11-{n:02d}") for n in range(12, 31)],
]}


# The catalogue as GET /activities gives it, with each service's enrolment mode and each
# site's address.
SETUP_CATALOGUE = {
    **CATALOGUE,
    "services": [{**s, "enrolment_mode": "validated" if s["id"] == LOISIRS else "automatic"}
                 for s in CATALOGUE["services"]],
    "sites": [{"id": TILLEULS, "name": "Centre des Tilleuls",
               "address": "8 allée des Tilleuls, 77000 JolieVille"},
              {"id": JULES_FERRY, "name": "École Jules Ferry", "address": None}],
}


def setup_agent(fake: FakeGateway) -> None:
    reservations_agent(fake)
    fake.on("GET", ACTIVITIES_API, body=SETUP_CATALOGUE)
    fake.on("GET", CALENDAR_API, body=CALENDAR)
    fake.on("GET", DAYS_API, body=NOVEMBER_DAYS)
    fake.on("GET", YEARS_API, body=CALENDAR["school_years"])


@pytest.fixture
def agent(client, fake):
    setup_agent(fake)
    client.set_cookie("portail_session", "s3cr3t")
    return client


PAGES = ["/agent/calendrier", NOVEMBER, "/agent/services", f"/agent/services/{LOISIRS}",
         "/agent/sites", f"/agent/sites/{TILLEULS}"]
POSTS = ["/agent/calendrier/zone", "/agent/calendrier/annees", "/agent/calendrier/exceptions",
         f"/agent/calendrier/exceptions/{PONT}/supprimer", "/agent/services",
         f"/agent/services/{LOISIRS}", "/agent/sites", f"/agent/sites/{TILLEULS}"]


def section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    end = page.find("</section>", start)
    return page[start:end]


# --- who may see them ------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_setup_pages_are_403_for_parents(parent, fake, path):
    response = parent.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "Accès refusé" in text(response)
    assert not any("/api/reservations/" in r.url for r in fake.seen)


@pytest.mark.parametrize("path", PAGES)
def test_setup_pages_send_anonymous_visitors_to_login(client, fake, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/connexion?suivant=/agent/")


def test_setup_posts_are_403_for_parents(parent, fake):
    for path in POSTS:
        response = post_form(parent, path, {"zone": "A", "name": "X"}, token_from="/profil")
        assert response.status_code == 403, path
    assert not [r for r in fake.seen if r.method != "GET"]


@pytest.mark.parametrize("path", POSTS)
def test_setup_posts_need_the_csrf_token(agent, fake, path):
    response = agent.post(path, data={"zone": "A", "name": "Étude", "year_label": "2027-2028",
                                      "starts_on": "2027-09-01", "ends_on": "2028-08-31"},
                          headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response)
    assert not [r for r in fake.seen if r.method != "GET"]


def test_the_activities_page_links_to_the_setup_pages(agent, fake):
    page = text(agent.get("/agent/activites"))
    nav = page[page.index('aria-label="Configuration des réservations"'):]
    nav = nav[:nav.index("</nav>")]
    for href, label in (("/agent/activites", "Activités"), ("/agent/services", "Services"),
                        ("/agent/sites", "Sites"),
                        ("/agent/calendrier", "Calendrier d'ouverture")):
        assert f'href="{href}"' in nav and label in nav
    assert 'href="/agent/activites" aria-current="page">Activités' in nav


def test_a_commune_without_reservations(agent, fake):
    fake.on("GET", CALENDAR_API, 404, problem(404, "Introuvable."))
    fake.on("GET", ACTIVITIES_API, 404, problem(404, "Introuvable."))
    for path in ("/agent/calendrier", "/agent/services", "/agent/sites"):
        response = agent.get(path)
        assert response.status_code == 200
        assert "ne propose pas les réservations en ligne" in text(response)
        assert "<form class=\"form" not in text(response)


# --- the opening calendar --------------------------------------------------------------------


def test_the_calendar_page_in_french(agent, fake):
    response = agent.get(NOVEMBER)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Calendrier d'ouverture — Portail Famille</title>" in page
    assert page.count("<h1>") == 1
    # The zone, chosen.
    assert "La commune est en zone <strong>C</strong>" in page
    assert '<option selected value="C">Zone C</option>' in page
    # The school years.
    years = section(page, "annees")
    assert '<th scope="row">2026-2027</th>' in years
    assert "mardi 1er septembre 2026" in years and "mardi 31 août 2027" in years
    # The exceptions, their dates, their kind and their scope in words.
    exceptions = section(page, "exceptions")
    assert '<th scope="row">Pont du 11 novembre</th>' in exceptions
    assert '<td data-label="Dates">mardi 10 novembre 2026</td>' in exceptions
    assert ('<td data-label="Dates">du lundi 19 octobre 2026 au vendredi 23 octobre 2026</td>'
            in exceptions)
    assert '<td data-label="Portée">Toute la commune</td>' in exceptions
    assert ('<td data-label="Portée">Site : Centre des Tilleuls, Activité : Centre de loisirs '
            "du mercredi (Centre des Tilleuls)</td>") in exceptions
    assert "Fermeture exceptionnelle" in exceptions and "Ouverture exceptionnelle" in exceptions
    assert f'action="/agent/calendrier/exceptions/{PONT}/supprimer?mois=2026-11"' in exceptions
    assert ("Supprimer<span class=\"visually-hidden\"> : Pont du 11 novembre, mardi 10 "
            "novembre 2026</span>") in exceptions
    # The add form's scope selects, from the catalogue.
    assert '<option value="">Tous les services</option>' in page
    assert f'<option value="{TILLEULS}">Centre des Tilleuls</option>' in page
    assert (f'<option value="{MERCREDI}">Centre de loisirs du mercredi (Centre des Tilleuls)'
            "</option>") in page
    # The month's preview.
    assert fake.last_query(DAYS_API) == {"from": ["2026-11-01"], "to": ["2026-11-30"]}
    preview = section(page, "apercu")
    assert "Aperçu de novembre 2026" in preview
    assert "(vacances de la zone C)" in preview
    assert '<th scope="row">dimanche 1er novembre 2026</th>' in preview
    assert '<td data-label="Jour férié">Toussaint</td>' in preview
    assert '<td data-label="Vacances scolaires">Vacances de la Toussaint</td>' in preview
    assert '<td data-label="Jour férié">Armistice 1918</td>' in preview
    assert ("<li>Fermeture : Pont du 11 novembre <span class=\"resa-meta\">Toute la commune"
            "</span></li>") in preview
    assert preview.count('<tr>') == 31  # the header and 30 days
    assert 'href="/agent/calendrier?mois=2026-10#apercu">Mois précédent' in preview
    assert 'href="/agent/calendrier?mois=2026-12#apercu">Mois suivant' in preview
    assert input_value(page, "mois") == "2026-11"


def test_the_preview_month_typed_by_hand_and_by_default(agent, fake):
    agent.get("/agent/calendrier?mois=02/2027")
    assert fake.last_query(DAYS_API) == {"from": ["2027-02-01"], "to": ["2027-02-28"]}
    agent.get("/agent/calendrier?mois=n'importe quoi")
    sent = fake.last_query(DAYS_API)
    assert sent["from"][0].endswith("-01")


def test_saving_the_zone(agent, fake):
    fake.on("PUT", CALENDAR_API, body={**CALENDAR, "zone": "B"})
    response = post_form(agent, "/agent/calendrier/zone?mois=2026-11", {"zone": "B"},
                         token_from=NOVEMBER)
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/calendrier?mois=2026-11"
    assert fake.last_json("PUT", CALENDAR_API) == {"zone": "B"}
    assert "Zone de vacances scolaires enregistrée : zone B." in text(agent.get(NOVEMBER))


def test_an_unknown_zone_is_refused_before_the_api(agent, fake):
    response = post_form(agent, "/agent/calendrier/zone", {"zone": "D"},
                         token_from="/agent/calendrier")
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Calendrier d'ouverture" in page
    assert field_error(page, "zone") == "Choisissez la zone A, B ou C."
    assert not fake.calls("PUT", CALENDAR_API)


def test_opening_a_school_year(agent, fake):
    fake.on("POST", YEARS_API, 201, {"id": "y2", "label": "2027-2028",
                                     "starts_on": "2027-09-01", "ends_on": "2028-08-31"})
    response = post_form(agent, "/agent/calendrier/annees", {
        "year_label": " 2027-2028 ", "starts_on": "01/09/2027", "ends_on": "2028-08-31"},
        token_from="/agent/calendrier")
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/calendrier#annees"
    assert fake.last_json("POST", YEARS_API) == {"label": "2027-2028",
                                                 "starts_on": "2027-09-01",
                                                 "ends_on": "2028-08-31"}
    assert "Année scolaire 2027-2028 ajoutée." in text(agent.get("/agent/calendrier"))


def test_an_overlapping_school_year_is_shown_next_to_its_dates(agent, fake):
    fake.on("POST", YEARS_API, 409,
            problem(409, "Ces dates chevauchent l'année scolaire 2026-2027."))
    response = post_form(agent, "/agent/calendrier/annees", {
        "year_label": "2027-2028", "starts_on": "2027-08-01", "ends_on": "2028-07-31"},
        token_from="/agent/calendrier")
    page = text(response)
    assert response.status_code == 409
    assert "<title>Erreur — Calendrier d'ouverture" in page
    assert field_error(page, "starts_on") == "Ces dates chevauchent l'année scolaire 2026-2027."
    assert 'aria-describedby="starts_on-aide starts_on-erreur"' in page
    assert '<a href="#starts_on">' in page
    assert input_value(page, "year_label") == "2027-2028"
    assert input_value(page, "starts_on") == "2027-08-01"
    assert input_value(page, "ends_on") == "2028-07-31"


def test_a_school_year_refused_by_the_api_field_by_field(agent, fake):
    fake.on("POST", YEARS_API, 422, problem(422, "Invalide.", {
        "label": ["Format attendu : 2026-2027."], "ends_on": ["Une année scolaire dure au "
                                                             "plus un an."]}))
    response = post_form(agent, "/agent/calendrier/annees", {
        "year_label": "2027-2028", "starts_on": "2027-09-01", "ends_on": "2028-08-31"},
        token_from="/agent/calendrier")
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "year_label") == "Format attendu : 2026-2027."
    assert field_error(page, "ends_on") == "Une année scolaire dure au plus un an."


def test_a_school_year_with_mistakes(agent, fake):
    response = post_form(agent, "/agent/calendrier/annees", {
        "year_label": "2027", "starts_on": "2027-09-01", "ends_on": "2027-08-31"},
        token_from="/agent/calendrier")
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "year_label") == "Format attendu : 2026-2027."
    assert field_error(page, "ends_on") == "La fin doit suivre le début."
    response = post_form(agent, "/agent/calendrier/annees", {"year_label": "",
                                                              "starts_on": "31/02/2027"},
                         token_from="/agent/calendrier")
    page = text(response)
    assert field_error(page, "starts_on") == "Date invalide (exemple : 05/10/2026)."
    assert field_error(page, "ends_on") == "Indiquez le dernier jour de l'année scolaire."
    assert not fake.calls("POST", YEARS_API)


EXCEPTION = {"kind": "opening", "start": "26/10/2026", "end": "2026-10-30",
             "label": " Centre ouvert ", "service_id": LOISIRS, "site_id": TILLEULS,
             "activity_id": MERCREDI}


def test_adding_an_exception_with_its_scope(agent, fake):
    fake.on("POST", EXCEPTIONS_API, 201, {"id": "e3"})
    response = post_form(agent, "/agent/calendrier/exceptions?mois=2026-10", EXCEPTION,
                         token_from="/agent/calendrier")
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/calendrier?mois=2026-10#exceptions"
    assert fake.last_json("POST", EXCEPTIONS_API) == {
        "kind": "opening", "from": "2026-10-26", "to": "2026-10-30", "label": "Centre ouvert",
        "service_id": LOISIRS, "site_id": TILLEULS, "activity_id": MERCREDI}
    assert "Ouverture exceptionnelle « Centre ouvert » ajoutée." in text(
        agent.get("/agent/calendrier"))


def test_a_closure_of_one_day_for_the_whole_commune(agent, fake):
    fake.on("POST", EXCEPTIONS_API, 201, {"id": "e4"})
    post_form(agent, "/agent/calendrier/exceptions", {
        "kind": "closure", "start": "2027-05-07", "end": "", "label": "Pont de l'Ascension",
        "service_id": "", "site_id": "", "activity_id": ""}, token_from="/agent/calendrier")
    assert fake.last_json("POST", EXCEPTIONS_API) == {
        "kind": "closure", "from": "2027-05-07", "to": None, "label": "Pont de l'Ascension",
        "service_id": None, "site_id": None, "activity_id": None}


def test_an_exception_refused_by_the_api_keeps_its_values(agent, fake):
    fake.on("POST", EXCEPTIONS_API, 422, problem(422, "Invalide.", {
        "to": ["Au plus un an."], "site_id": ["Site inconnu dans cette commune."]}))
    response = post_form(agent, "/agent/calendrier/exceptions", EXCEPTION,
                         token_from="/agent/calendrier")
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Calendrier d'ouverture" in page
    assert field_error(page, "end") == "Au plus un an."
    assert field_error(page, "site_id") == "Site inconnu dans cette commune."
    assert input_value(page, "start") == "26/10/2026"
    assert input_value(page, "label") == "Centre ouvert"
    assert f'<option selected value="{LOISIRS}">Centre de loisirs</option>' in page
    assert f'<option selected value="{MERCREDI}">' in page
    assert '<option selected value="opening">Ouverture exceptionnelle</option>' in page


def test_an_exception_with_mistakes(agent, fake):
    response = post_form(agent, "/agent/calendrier/exceptions", {
        "kind": "vacances", "start": "2026-10-30", "end": "2026-10-26", "label": "",
        "service_id": "autre"}, token_from="/agent/calendrier")
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "kind") == "Choisissez une fermeture ou une ouverture."
    assert field_error(page, "end") == "La fin doit suivre le début."
    assert field_error(page, "label") == ("Indiquez le libellé, par exemple « Pont de "
                                          "l'Ascension ».")
    assert field_error(page, "service_id") == "Choisissez un service de la liste."
    assert page.count('<div class="alert" role="alert"') == 1
    assert not fake.calls("POST", EXCEPTIONS_API)


def test_deleting_an_exception(agent, fake):
    path = f"{EXCEPTIONS_API}/{PONT}"
    fake.on("DELETE", path, 204)
    response = post_form(agent, f"/agent/calendrier/exceptions/{PONT}/supprimer?mois=2026-11",
                         {}, token_from=NOVEMBER)
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/calendrier?mois=2026-11#exceptions"
    assert len(fake.calls("DELETE", path)) == 1
    assert "L'exception de calendrier est supprimée." in text(agent.get(NOVEMBER))
    fake.on("DELETE", path, 404, problem(404, "Cette exception de calendrier est introuvable."))
    response = post_form(agent, f"/agent/calendrier/exceptions/{PONT}/supprimer", {},
                         token_from="/agent/calendrier")
    assert "Cette exception de calendrier est introuvable." in text(
        agent.get(response.headers["Location"]))


# --- services --------------------------------------------------------------------------------


def test_the_services_page(agent, fake):
    response = agent.get("/agent/services")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Services — Portail Famille</title>" in page
    assert fake.last_query(ACTIVITIES_API) == {"include_inactive": ["true"]}
    assert f'href="/agent/services/{LOISIRS}">Centre de loisirs' in page
    assert '<td data-label="Type">loisirs</td>' in page
    assert '<td data-label="Inscription des enfants">Automatique</td>' in page
    assert '<td data-label="Inscription des enfants">Validée par un agent</td>' in page
    assert '<td data-label="Activités">1</td>' in page
    assert '<option selected value="automatic">Automatique</option>' in page
    assert '<option value="validated">Validée par un agent</option>' in page
    assert 'id="nouveau">Créer un service</h2>' in page


def test_creating_a_service(agent, fake):
    fake.on("POST", SERVICES_API, 201, {"id": "s9", "name": "Étude surveillée"})
    response = post_form(agent, "/agent/services", {
        "name": " Étude surveillée ", "kind": "etude", "enrolment_mode": "validated"})
    assert response.status_code == 303 and response.headers["Location"] == "/agent/services"
    assert fake.last_json("POST", SERVICES_API) == {
        "name": "Étude surveillée", "kind": "etude", "enrolment_mode": "validated"}
    assert "Service « Étude surveillée » créé." in text(agent.get("/agent/services"))
    post_form(agent, "/agent/services", {"name": "Garderie", "kind": "",
                                         "enrolment_mode": "automatic"})
    assert fake.last_json("POST", SERVICES_API) == {
        "name": "Garderie", "kind": None, "enrolment_mode": "automatic"}


def test_a_service_name_already_taken(agent, fake):
    fake.on("POST", SERVICES_API, 409, problem(
        409, "« Centre de loisirs » existe déjà dans cette commune.",
        {"name": ["Ce nom est déjà utilisé."]}))
    response = post_form(agent, "/agent/services", {
        "name": "Centre de loisirs", "kind": "loisirs", "enrolment_mode": "validated"})
    page = text(response)
    assert response.status_code == 409
    assert "<title>Erreur — Services" in page
    assert field_error(page, "name") == "Ce nom est déjà utilisé."
    assert 'aria-describedby="name-aide name-erreur"' in page
    assert input_value(page, "name") == "Centre de loisirs"
    assert input_value(page, "kind") == "loisirs"
    assert '<option selected value="validated">' in page


def test_a_service_with_mistakes(agent, fake):
    response = post_form(agent, "/agent/services", {"name": "", "kind": "x" * 41,
                                                    "enrolment_mode": "libre"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "name") == "Indiquez le nom du service."
    assert field_error(page, "kind") == "Au plus 40 caractères."
    assert field_error(page, "enrolment_mode") == "Choisissez le mode d'inscription."
    assert not fake.calls("POST", SERVICES_API)


def test_editing_a_service(agent, fake):
    page = text(agent.get(f"/agent/services/{LOISIRS}"))
    assert "<title>Modifier le service « Centre de loisirs » — Portail Famille</title>" in page
    assert input_value(page, "name") == "Centre de loisirs"
    assert input_value(page, "kind") == "loisirs"
    assert '<option selected value="validated">Validée par un agent</option>' in page
    fake.on("PATCH", f"{SERVICES_API}/{LOISIRS}", body={"id": LOISIRS})
    response = post_form(agent, f"/agent/services/{LOISIRS}", {
        "name": "Centre de loisirs (mercredis)", "kind": "", "enrolment_mode": "automatic"})
    assert response.status_code == 303 and response.headers["Location"] == "/agent/services"
    assert fake.last_json("PATCH", f"{SERVICES_API}/{LOISIRS}") == {
        "name": "Centre de loisirs (mercredis)", "kind": None, "enrolment_mode": "automatic"}
    assert "Service « Centre de loisirs (mercredis) » enregistré." in text(
        agent.get("/agent/services"))


def test_a_service_edit_refused_by_the_api(agent, fake):
    fake.on("PATCH", f"{SERVICES_API}/{RESTAURATION}", 422, problem(422, "Invalide.", {
        "enrolment_mode": ["Must be one of: automatic, validated."], "name": ["Trop long."]}))
    response = post_form(agent, f"/agent/services/{RESTAURATION}", {
        "name": "Cantine", "kind": "restauration", "enrolment_mode": "automatic"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "name") == "Trop long."
    assert input_value(page, "name") == "Cantine"


def test_an_unknown_service_is_404(agent, fake):
    response = agent.get("/agent/services/inconnu", headers={"Accept": "text/html"})
    assert response.status_code == 404
    response = post_form(agent, "/agent/services/inconnu", {"name": "X"},
                         token_from="/agent/services")
    assert response.status_code == 404
    assert not [r for r in fake.seen if r.method != "GET"]


# --- sites -----------------------------------------------------------------------------------


def test_the_sites_page(agent, fake):
    page = text(agent.get("/agent/sites"))
    assert "<title>Sites — Portail Famille</title>" in page
    assert f'href="/agent/sites/{TILLEULS}">Centre des Tilleuls' in page
    assert '<td data-label="Adresse">8 allée des Tilleuls, 77000 JolieVille</td>' in page
    assert '<td data-label="Adresse">—</td>' in page
    assert '<td data-label="Activités">2</td>' in page  # Jules Ferry: repas and soir


def test_creating_and_editing_a_site(agent, fake):
    fake.on("POST", SITES_API, 201, {"id": "z1"})
    response = post_form(agent, "/agent/sites", {"name": "École Pasteur", "address": ""})
    assert response.status_code == 303 and response.headers["Location"] == "/agent/sites"
    assert fake.last_json("POST", SITES_API) == {"name": "École Pasteur", "address": None}
    assert "Site « École Pasteur » créé." in text(agent.get("/agent/sites"))
    page = text(agent.get(f"/agent/sites/{TILLEULS}"))
    assert input_value(page, "address") == "8 allée des Tilleuls, 77000 JolieVille"
    fake.on("PATCH", f"{SITES_API}/{TILLEULS}", body={"id": TILLEULS})
    response = post_form(agent, f"/agent/sites/{TILLEULS}", {
        "name": "Centre de loisirs Les Tilleuls", "address": " 8 allée des Tilleuls "})
    assert response.status_code == 303
    assert fake.last_json("PATCH", f"{SITES_API}/{TILLEULS}") == {
        "name": "Centre de loisirs Les Tilleuls", "address": "8 allée des Tilleuls"}
    assert "Site « Centre de loisirs Les Tilleuls » enregistré." in text(
        agent.get("/agent/sites"))


def test_a_site_refused_by_the_api_keeps_its_values(agent, fake):
    fake.on("POST", SITES_API, 422, problem(422, "Invalide.", {
        "address": ["Au plus 300 caractères."]}))
    response = post_form(agent, "/agent/sites", {"name": "École Pasteur",
                                                 "address": "1 rue Pasteur"})
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Sites" in page
    assert field_error(page, "address") == "Au plus 300 caractères."
    assert input_value(page, "name") == "École Pasteur"
    assert input_value(page, "address") == "1 rue Pasteur"
    response = post_form(agent, "/agent/sites", {"name": " ", "address": ""})
    assert field_error(text(response), "name") == "Indiquez le nom du site."


def test_the_gateway_down_while_saving_keeps_the_form(agent, fake):
    def down(_request):
        raise requests.ConnectionError("down")

    fake.handle("POST", SITES_API, down)
    response = post_form(agent, "/agent/sites", {"name": "École Pasteur", "address": ""})
    page = text(response)
    assert response.status_code == 503
    assert "Service momentanément perturbé" in page
    assert input_value(page, "name") == "École Pasteur"


# --- accessibility ---------------------------------------------------------------------------


def client_for(fake: FakeGateway):
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    return client


@pytest.fixture
def setup_fake() -> FakeGateway:
    fake = FakeGateway()
    setup_agent(fake)
    return fake


@pytest.mark.parametrize("path", PAGES + ["/agent/activites"])
def test_setup_pages_pass_the_self_check(setup_fake, path):
    response = client_for(setup_fake).get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


def test_empty_setup_pages_pass_the_self_check(setup_fake):
    setup_fake.on("GET", CALENDAR_API, body={"zone": "C", "school_years": [],
                                             "exceptions": []})
    setup_fake.on("GET", DAYS_API, body={"zone": "C", "days": []})
    setup_fake.on("GET", ACTIVITIES_API, body={"items": [], "services": [], "sites": [],
                                               "next": None})
    client = client_for(setup_fake)
    for path in ("/agent/calendrier", "/agent/services", "/agent/sites"):
        check(client.get(path).get_data(as_text=True), path)


REFUSED = [
    # (path, data, what the fake answers first)
    ("/agent/calendrier/zone", {"zone": ""}, None),
    ("/agent/calendrier/zone", {"zone": "A"},
     ("PUT", CALENDAR_API, 422, problem(422, "Zone inconnue.", {"zone": ["Inconnue."]}))),
    ("/agent/calendrier/annees", {"year_label": "x"}, None),
    ("/agent/calendrier/annees",
     {"year_label": "2027-2028", "starts_on": "2027-08-01", "ends_on": "2028-07-31"},
     ("POST", YEARS_API, 409, problem(409, "Ces dates chevauchent l'année scolaire "
                                           "2026-2027."))),
    ("/agent/calendrier/exceptions", {"kind": "closure"}, None),
    ("/agent/calendrier/exceptions", EXCEPTION,
     ("POST", EXCEPTIONS_API, 422, problem(422, "Invalide.", {"activity_id": ["Inconnue."]}))),
    ("/agent/services", {"name": ""}, None),
    ("/agent/services", {"name": "Repas", "enrolment_mode": "automatic"},
     ("POST", SERVICES_API, 409, problem(409, "Existe déjà.", {"name": ["Déjà utilisé."]}))),
    (f"/agent/services/{LOISIRS}", {"name": ""}, None),
    ("/agent/sites", {"name": ""}, None),
    (f"/agent/sites/{TILLEULS}", {"name": "Tilleuls"},
     ("PATCH", f"{SITES_API}/{TILLEULS}", 409, problem(409, "Existe déjà.",
                                                        {"name": ["Déjà utilisé."]}))),
]


@pytest.mark.parametrize("path,data,answer", REFUSED)
def test_refused_setup_forms_pass_the_self_check(setup_fake, path, data, answer):
    client = client_for(setup_fake)
    token = csrf_token(client, "/agent/calendrier" if path.startswith("/agent/calendrier/")
                       else path)
    if answer:
        setup_fake.on(*answer)
    response = client.post(path, data={**data, "csrf_token": token})
    html = response.get_data(as_text=True)
    page = check(html, f"POST {path}")
    assert response.status_code in (409, 422)
    assert page.title.startswith("Erreur — "), page.title
    assert 'role="alert"' in html
