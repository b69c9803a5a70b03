"""Agents' pages: families (search, create and invite, re-invite) and news."""

from __future__ import annotations

import re

import pytest

from .support import NEWS, field_error, input_value, post_form, problem, text

FAMILIES = "/api/accounts/communes/jolieville/families"
NEWS_API = "/api/accounts/communes/jolieville/news"
DETAIL = {
    "id": "f9", "family_name": "MARTIN", "family_code": "JV-0099", "email": "martin@x.test",
    "status": "invited", "invited_at": "2026-11-20T10:00:00Z",
    "address": {"line1": "3 allée des Tilleuls", "line2": None, "postal_code": "77000",
                "city": "JolieVille"},
    "guardians": [{"id": "g9", "first_name": "Anne", "last_name": "MARTIN",
                   "relation": "mère", "email": "martin@x.test", "phones": ["0600000000"],
                   "pays": True}],
    "children": [{"id": "c9", "first_name": "Jules", "last_name": "MARTIN",
                  "birth_date": "2019-06-01", "school": None, "class_name": "GS",
                  "allergies": False}],
}

AGENT_PAGES = ["/agent/familles", "/agent/familles/nouvelle", "/agent/familles/f9",
               "/agent/actualites"]


def family_form(**changes) -> dict[str, str]:
    data = {
        "family_name": "MARTIN", "email": "martin@x.test",
        "address_line1": "3 allée des Tilleuls", "address_line2": "",
        "address_postal_code": "77000", "address_city": "JolieVille",
        "guardians-0-first_name": "", "guardians-0-last_name": "",
        "guardians-1-first_name": "Anne", "guardians-1-last_name": "MARTIN",
        "guardians-1-relation": "mère", "guardians-1-email": "anne@x.test",
        "guardians-1-phone": "06 00 00 00 00", "guardians-1-pays": "y",
        "children-0-first_name": "Jules", "children-0-last_name": "MARTIN",
        "children-0-birth_date": "01/06/2019", "children-0-class_name": "GS",
        "children-2-first_name": "Lou", "children-2-last_name": "MARTIN",
        "children-2-birth_date": "2021-02-03", "children-2-allergies": "y",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_pages_are_403_for_parents(parent, fake, path):
    response = parent.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 403
    page = text(response)
    assert "Accès refusé" in page and '<html lang="fr">' in page
    assert not any("/families" in r.url for r in fake.seen)


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_pages_redirect_anonymous_visitors_to_login(client, fake, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/connexion?suivant=/agent/")


def test_agent_posts_are_403_for_parents(parent, fake):
    assert post_form(parent, "/agent/familles/nouvelle", family_form(),
                     token_from="/profil").status_code == 403
    assert post_form(parent, "/agent/actualites", {"title": "x", "body": "y"},
                     token_from="/profil").status_code == 403
    assert post_form(parent, "/agent/familles/f9/invitation", {},
                     token_from="/profil").status_code == 403
    assert not any("/api/accounts/communes/jolieville/" in r.url and r.method == "POST"
                   for r in fake.seen)


def test_families_search_and_pagination(agent, fake):
    fake.on("GET", FAMILIES, body={"items": [
        {"id": "f1", "family_name": "CASSEREAU", "family_code": "JV-0042",
         "email": "parent@famille.test", "status": "active", "children_count": 2},
        {"id": "f9", "family_name": "MARTIN", "family_code": "JV-0099",
         "email": "martin@x.test", "status": "invited", "children_count": 1}],
        "next": "curseur-2"})
    response = agent.get("/agent/familles?q=cas")
    page = text(response)
    assert response.status_code == 200
    assert fake.last_query(FAMILIES) == {"q": ["cas"]}
    assert "<title>Familles — Portail Famille</title>" in page
    assert 'role="search"' in page and 'value="cas"' in page
    assert '<a href="/agent/familles/f1">CASSEREAU</a>' in page
    assert "Invitée (compte pas encore activé)" in page and "<td>Active</td>" in page
    assert 'href="/agent/familles?q=cas&amp;suite=curseur-2"' in response.get_data(
        as_text=True)
    agent.get("/agent/familles?q=cas&suite=curseur-2")
    assert fake.last_query(FAMILIES) == {"q": ["cas"], "cursor": ["curseur-2"]}


def test_families_empty_search(agent, fake):
    fake.on("GET", FAMILIES, body={"items": [], "next": None})
    page = text(agent.get("/agent/familles?q=zzz"))
    assert "Aucune famille ne correspond à « zzz »." in page
    assert "Familles suivantes" not in page


def test_create_family_form_is_grouped_in_fieldsets(agent, fake):
    page = text(agent.get("/agent/familles/nouvelle"))
    for legend in ("Foyer", "Adresse (facultative)", "Responsable 1",
                   "Responsable 2 (facultatif)", "Enfant 1 (facultatif)",
                   "Enfant 4 (facultatif)"):
        assert f"<legend>{legend}</legend>" in page
    assert "Enfant 5" not in page and "Responsable 3" not in page
    assert 'for="children-3-birth_date"' in page and 'type="date"' in page


def test_create_family_ignores_blank_rows_and_sends_the_payload(agent, fake):
    fake.on("POST", FAMILIES, 201, {"id": "f9", "family_code": "JV-0099"})
    fake.on("GET", f"{FAMILIES}/f9", body=DETAIL)
    response = post_form(agent, "/agent/familles/nouvelle", family_form())
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/familles/f9"
    assert fake.last_json("POST", FAMILIES) == {
        "family_name": "MARTIN", "email": "martin@x.test",
        "address": {"line1": "3 allée des Tilleuls", "line2": None, "postal_code": "77000",
                    "city": "JolieVille"},
        "guardians": [{"first_name": "Anne", "last_name": "MARTIN", "relation": "mère",
                       "email": "anne@x.test", "phones": ["06 00 00 00 00"], "pays": True}],
        "children": [
            {"first_name": "Jules", "last_name": "MARTIN", "birth_date": "2019-06-01",
             "school": None, "class_name": "GS", "allergies": False},
            {"first_name": "Lou", "last_name": "MARTIN", "birth_date": "2021-02-03",
             "school": None, "class_name": None, "allergies": True}],
    }
    page = text(agent.get("/agent/familles/f9"))
    assert "Invitation envoyée à martin@x.test." in page
    assert "<h1>Famille MARTIN</h1>" in page and "JV-0099" in page


def test_create_family_api_errors_go_to_the_right_rows(agent, fake):
    # The API numbers the rows it received: guardian 0 is the form's row 1, child 1 its row 2.
    fake.on("POST", FAMILIES, 422, problem(
        422, "Certaines informations sont invalides : voir le détail par champ.",
        {"email": ["Un compte existe déjà avec cette adresse."],
         "guardians.0.phones.0": ["Numéro de téléphone invalide."],
         "children.1.birth_date": ["L'enfant doit avoir moins de 18 ans."],
         "address.postal_code": ["Code postal hors de la commune."]}))
    response = post_form(agent, "/agent/familles/nouvelle", family_form())
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "email") == "Un compte existe déjà avec cette adresse."
    assert field_error(page, "guardians-1-phone") == "Numéro de téléphone invalide."
    assert field_error(page, "children-2-birth_date") == "L'enfant doit avoir moins de 18 ans."
    assert field_error(page, "address_postal_code") == "Code postal hors de la commune."
    assert '<a href="#children-2-birth_date">Enfant 3 : L\'enfant doit' in page
    assert "Le formulaire contient 4 erreurs" in page
    # Everything typed is still there.
    assert input_value(page, "family_name") == "MARTIN"
    assert input_value(page, "guardians-1-email") == "anne@x.test"
    assert input_value(page, "children-2-birth_date") == "2021-02-03"
    assert 'checked class="field__checkbox" id="children-2-allergies"' in page


def test_create_family_local_checks(agent, fake):
    data = family_form(**{"guardians-1-first_name": "", "guardians-1-last_name": "",
                          "guardians-1-relation": "", "guardians-1-email": "",
                          "guardians-1-phone": "", "children-0-last_name": "",
                          "children-2-birth_date": "32/13/2020", "email": "",
                          "address_city": ""})
    page = text(post_form(agent, "/agent/familles/nouvelle", data))
    assert field_error(page, "email") == "Indiquez l'adresse e-mail du foyer."
    assert field_error(page, "guardians-0-first_name") == "Indiquez au moins un responsable."
    assert field_error(page, "children-0-last_name") == "Indiquez le nom."
    assert field_error(page, "children-2-birth_date").startswith("Date invalide")
    assert field_error(page, "address_city") == "Complétez l'adresse (ou laissez-la vide)."
    assert field_error(page, "children-1-first_name") is None  # blank row: ignored
    assert not fake.calls("POST", FAMILIES)


def test_create_family_without_csrf_is_refused(agent, fake):
    assert agent.post("/agent/familles/nouvelle", data=family_form()).status_code == 400
    assert not fake.calls("POST", FAMILIES)


def test_family_detail_and_resend_invitation(agent, fake):
    fake.on("GET", f"{FAMILIES}/f9", body=DETAIL)
    page = text(agent.get("/agent/familles/f9"))
    assert "Invitée (compte pas encore activé)" in page
    assert "Invitation envoyée le</dt><dd>20/11/2026 à 11 h 00" in page
    assert "Jules MARTIN" in page and "01/06/2019" in page
    assert 'action="/agent/familles/f9/invitation"' in page

    fake.on("POST", f"{FAMILIES}/f9/invitation", 202, {"expires_at": "2026-12-04T10:00:00Z"})
    response = post_form(agent, "/agent/familles/f9/invitation", {},
                         token_from="/agent/familles/f9")
    assert response.status_code == 303 and response.headers["Location"] == "/agent/familles/f9"
    assert fake.last_json("POST", f"{FAMILIES}/f9/invitation") == {}
    page = text(agent.get("/agent/familles/f9"))
    assert "Invitation envoyée de nouveau : le lien est valable jusqu'au 04/12/2026" in page


def test_resend_invitation_conflict_is_explained(agent, fake):
    fake.on("GET", f"{FAMILIES}/f9", body={**DETAIL, "status": "active"})
    page = text(agent.get("/agent/familles/f9"))
    assert "Renvoyer l'invitation" not in page and "<dd>Active</dd>" in page
    fake.on("POST", f"{FAMILIES}/f9/invitation", 409,
            problem(409, "Ce compte est déjà activé : il n'y a plus d'invitation à envoyer."))
    post_form(agent, "/agent/familles/f9/invitation", {}, token_from="/agent/familles/f9")
    assert "Ce compte est déjà activé" in text(agent.get("/agent/familles/f9"))


def test_family_of_another_commune_is_404(agent, fake):
    fake.on("GET", f"{FAMILIES}/autre", 404, problem(404, "Famille inconnue."))
    response = agent.get("/agent/familles/autre", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "Ressource introuvable" in text(response)


def test_api_403_is_the_french_403_page(agent, fake):
    fake.on("GET", FAMILIES, 403, problem(403, "Réservé aux agents."))
    response = agent.get("/agent/familles", headers={"Accept": "text/html"})
    assert response.status_code == 403 and "Accès refusé" in text(response)


def test_news_list_and_publish(agent, fake):
    fake.on("GET", NEWS_API, body=NEWS)
    page = text(agent.get("/agent/actualites"))
    assert "Fermeture du centre de loisirs" in page and "Publier une actualité" in page
    assert '<label class="field__label" for="body">Texte</label>' in page
    assert re.search(r'<textarea [^>]*id="body"', page)
    fake.on("POST", NEWS_API, 201, {"id": "n2"})
    response = post_form(agent, "/agent/actualites", {"title": "Menus de décembre",
                                                      "body": "Les menus sont en ligne."})
    assert response.status_code == 303 and response.headers["Location"] == "/agent/actualites"
    assert fake.last_json("POST", NEWS_API) == {"title": "Menus de décembre",
                                                "body": "Les menus sont en ligne."}
    assert "Actualité publiée" in text(agent.get("/agent/actualites"))


def test_news_publish_errors_next_to_fields(agent, fake):
    fake.on("GET", NEWS_API, body=NEWS)
    fake.on("POST", NEWS_API, 422, problem(422, "Invalide.",
                                           {"title": ["Ce titre existe déjà."]}))
    response = post_form(agent, "/agent/actualites", {"title": "Menus",
                                                      "body": "Texte gardé."})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "title") == "Ce titre existe déjà."
    assert input_value(page, "title") == "Menus" and "Texte gardé.</textarea>" in page
    page = text(post_form(agent, "/agent/actualites", {"title": "", "body": ""}))
    assert field_error(page, "title") == "Indiquez un titre."
    assert field_error(page, "body") == "Écrivez le texte de l'actualité."


def test_news_publish_without_csrf_is_refused(agent, fake):
    assert agent.post("/agent/actualites", data={"title": "x", "body": "y"}).status_code == 400
    assert not fake.calls("POST", NEWS_API)


def test_agent_page_gateway_down_is_degraded(agent, fake):
    fake.on("GET", FAMILIES, 504, {"status": 504})
    response = agent.get("/agent/familles")
    assert response.status_code == 502
    assert "Service momentanément perturbé" in text(response) or "problème" in text(response)
