"""``/profil``: household, guardians (edit), children, password, communes."""

from __future__ import annotations

import pytest

from .support import (
    DAMMARTIN,
    FAMILY,
    GUARDIANS,
    JOLIEVILLE,
    ME,
    field_error,
    input_value,
    post_form,
    problem,
    text,
)

GOOD = "une phrase assez longue"


@pytest.mark.parametrize("path", ["/profil", "/profil/mot-de-passe", "/profil/communes",
                                  "/profil/responsables/g1"])
def test_logged_out_profile_pages_redirect_to_login(client, fake, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/connexion?suivant={path}"
    assert fake.seen == []  # no cookie: nobody to ask about


def test_expired_session_redirects_to_login_and_back(client, fake):
    fake.on("GET", "/auth/me", 401, {"status": 401})
    client.set_cookie("portail_session", "old")
    response = client.get("/profil")
    assert response.headers["Location"] == "/connexion?suivant=/profil"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Connectez-vous pour accéder à cette page." in page
    assert 'action="/connexion?suivant=/profil"' in page


def test_api_401_in_the_middle_redirects_to_login(parent, fake):
    fake.on("GET", "/api/accounts/me/family", 401, {"status": 401})
    response = parent.get("/profil")
    assert response.status_code == 303
    assert response.headers["Location"] == "/connexion?suivant=/profil"


def test_profile_shows_household_guardians_and_children(parent, fake):
    response = parent.get("/profil")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Mon profil — Portail Famille</title>" in page
    assert "CASSEREAU" in page and "12 rue des Lilas" in page and "77000 JolieVille" in page
    assert "Pour changer d'adresse" in page and "justificatif de domicile" in page
    assert '<a href="/demandes">« Mes demandes »</a>' in page
    assert "Claire CASSEREAU" in page and "mère" in page and "06 12 34 56 78" in page
    assert 'href="/profil/responsables/g1"' in page and 'href="/profil/responsables/g2"' in page
    assert "<dt>Règle les factures</dt><dd>Oui</dd>" in page
    assert "<td>14/03/2018</td>" in page and "<td>02/09/2021</td>" in page
    assert "École élémentaire Jean Jaurès" in page and "<td>CE2</td>" in page
    assert "Allergie / PAI" in page and "<td>Oui</td>" in page
    assert "allergie ou un PAI" in page
    assert 'href="/profil/mot-de-passe"' in page and 'href="/profil/communes"' in page


def test_profile_without_requests_module_says_to_contact_the_town_hall(parent, fake):
    from .support import commune
    fake.on("GET", "/api/accounts/communes/jolieville", body=commune(modules=("invoices",)))
    page = text(parent.get("/profil"))
    assert "adressez-vous à votre mairie" in page and 'href="/demandes"' not in page


def test_agent_profile_has_no_household(agent, fake):
    page = text(agent.get("/profil"))
    assert "n'est rattaché à aucun foyer" in page
    assert not fake.calls("GET", "/api/accounts/me/family")
    assert agent.get("/profil/communes").status_code == 404


def test_guardian_form_is_prefilled(parent, fake):
    response = parent.get("/profil/responsables/g1")
    page = text(response)
    assert response.status_code == 200
    assert "Modifier les coordonnées de Claire CASSEREAU" in page
    assert input_value(page, "first_name") == "Claire"
    assert input_value(page, "relation") == "mère"
    assert input_value(page, "phone1") == "06 12 34 56 78"
    assert 'checked class="field__checkbox" id="pays"' in page
    assert "<legend>Coordonnées</legend>" in page


def test_guardian_edit_sends_the_whole_list_with_the_change(parent, fake):
    fake.on("PATCH", "/api/accounts/me/family", 200, FAMILY)
    response = post_form(parent, "/profil/responsables/g2", {
        "first_name": "Marc", "last_name": "CASSEREAU", "relation": "père",
        "email": "marc@famille.test", "phone1": "07 00 00 00 01", "phone2": "",
        "pays": "y"})
    assert response.status_code == 303 and response.headers["Location"] == "/profil"
    sent = fake.last_json("PATCH", "/api/accounts/me/family")
    assert sent == {"guardians": [
        GUARDIANS[0],
        {"id": "g2", "first_name": "Marc", "last_name": "CASSEREAU", "relation": "père",
         "email": "marc@famille.test", "phones": ["07 00 00 00 01"], "pays": True}]}
    page = text(parent.get("/profil"))
    assert "Les coordonnées de Marc CASSEREAU ont été enregistrées." in page


def test_guardian_edit_api_errors_next_to_fields_values_kept(parent, fake):
    fake.on("PATCH", "/api/accounts/me/family", 422, problem(
        422, "Certaines informations sont invalides : voir le détail par champ.",
        {"guardians.1.email": ["Cette adresse est déjà utilisée par un autre compte."],
         "guardians.1.phones.0": ["Numéro inconnu des services."],
         "guardians.0.email": ["Problème sur l'autre responsable."]}))
    response = post_form(parent, "/profil/responsables/g2", {
        "first_name": "Marc", "last_name": "CASSEREAU", "relation": "père",
        "email": "claire@famille.test", "phone1": "07 00 00 00 01"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "email") == "Cette adresse est déjà utilisée par un autre compte."
    assert field_error(page, "phone1") == "Numéro inconnu des services."
    assert "<li>Problème sur l'autre responsable.</li>" in page  # not this form's: on top
    assert '<a href="#email">' in page and '<a href="#phone1">' in page
    assert input_value(page, "email") == "claire@famille.test"
    assert input_value(page, "phone1") == "07 00 00 00 01"
    assert 'aria-invalid="true"' in page


def test_guardian_edit_sends_the_version_read_and_explains_a_conflict(parent, fake):
    fake.on("GET", "/api/accounts/me/family", body={**FAMILY, "version": 7})
    fake.on("PATCH", "/api/accounts/me/family", 409, problem(
        409, "Votre foyer a été modifié entre-temps : rechargez la page puis recommencez."))
    response = post_form(parent, "/profil/responsables/g1", {
        "first_name": "Claire", "last_name": "CASSEREAU", "phone1": "06 99 99 99 99"})
    page = text(response)
    assert response.status_code == 422
    assert fake.last_json("PATCH", "/api/accounts/me/family")["version"] == 7
    assert "<li>Votre foyer a été modifié entre-temps" in page
    assert input_value(page, "phone1") == "06 99 99 99 99"


def test_guardian_edit_local_errors(parent, fake):
    response = post_form(parent, "/profil/responsables/g1", {
        "first_name": "", "last_name": "CASSEREAU", "email": "pas-une-adresse"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "first_name") == "Indiquez le prénom."
    assert field_error(page, "email").startswith("Adresse e-mail invalide")
    assert not fake.calls("PATCH", "/api/accounts/me/family")


def test_unknown_guardian_is_404(parent, fake):
    assert parent.get("/profil/responsables/autre").status_code == 404


def test_guardian_edit_without_csrf_is_refused(parent, fake):
    response = parent.post("/profil/responsables/g1", data={"first_name": "X",
                                                            "last_name": "Y"})
    assert response.status_code == 400
    assert not fake.calls("PATCH", "/api/accounts/me/family")


def test_change_password(parent, fake):
    page = text(parent.get("/profil/mot-de-passe"))
    assert 'autocomplete="current-password"' in page
    assert page.count('autocomplete="new-password"') == 2
    fake.on("POST", "/api/accounts/me/password", 204)
    response = post_form(parent, "/profil/mot-de-passe", {
        "current_password": "portail-demo", "new_password": GOOD, "confirmation": GOOD})
    assert response.status_code == 303 and response.headers["Location"] == "/profil"
    assert fake.last_json("POST", "/api/accounts/me/password") == {
        "current_password": "portail-demo", "new_password": GOOD}
    assert "Votre mot de passe a été modifié." in text(parent.get("/profil"))


@pytest.mark.parametrize("status", [422, 403])
def test_change_password_refused_passwords_never_shown(parent, fake, status):
    errors = {"current_password": ["Mot de passe actuel incorrect."]} if status == 422 else None
    fake.on("POST", "/api/accounts/me/password", status,
            problem(status, "Mot de passe actuel incorrect.", errors))
    response = post_form(parent, "/profil/mot-de-passe", {
        "current_password": "ancien-secret-1", "new_password": GOOD, "confirmation": GOOD})
    page = text(response)
    assert response.status_code == 422
    assert "Mot de passe actuel incorrect." in page
    if status == 422:
        assert field_error(page, "current_password") == "Mot de passe actuel incorrect."
    assert "ancien-secret-1" not in page and GOOD not in page


def test_change_password_common_password_next_to_new_password(parent, fake):
    fake.on("POST", "/api/accounts/me/password", 422, problem(
        422, "Invalide.", {"new_password": ["Ce mot de passe est trop courant."]}))
    page = text(post_form(parent, "/profil/mot-de-passe", {
        "current_password": "portail-demo", "new_password": "azertyuiop123",
        "confirmation": "azertyuiop123"}))
    assert field_error(page, "new_password") == "Ce mot de passe est trop courant."
    assert "azertyuiop123" not in page


def test_communes_lists_and_joins(parent, fake):
    fake.parent(me={**ME, "communes": [JOLIEVILLE]})
    page = text(parent.get("/profil/communes"))
    assert "Adhérer à une autre collectivité" in page
    assert "JV-0042" in page and "01/09/2026" in page
    assert 'action="/commune"' not in page  # one commune: no switcher yet

    def joined(request):
        fake.on("GET", "/auth/me", body={**ME, "communes": [JOLIEVILLE, DAMMARTIN]})
        return 201, {"slug": "dammartin", "name": "Dammartin-sur-Tigeaux",
                     "family_code": "DT-7"}, {}

    fake.handle("POST", "/api/accounts/me/communes", joined)
    response = post_form(parent, "/profil/communes", {"commune": " Dammartin ",
                                                      "family_code": "DT-7"})
    assert response.status_code == 303 and response.headers["Location"] == "/profil/communes"
    assert fake.last_json("POST", "/api/accounts/me/communes") == {
        "commune": "dammartin", "family_code": "DT-7"}
    page = text(parent.get("/profil/communes"))
    assert "Votre foyer a rejoint Dammartin-sur-Tigeaux." in page
    assert '<option value="dammartin">Dammartin-sur-Tigeaux</option>' in page


@pytest.mark.parametrize("status,errors,field", [
    (422, {"family_code": ["Code famille incorrect."]}, "family_code"),
    (422, {"commune": ["Collectivité inconnue."]}, "commune"),
    (404, None, "family_code"),
])
def test_join_commune_refused_next_to_the_field(parent, fake, status, errors, field):
    detail = "Code famille incorrect." if field == "family_code" else "Collectivité inconnue."
    fake.on("POST", "/api/accounts/me/communes", status, problem(status, detail, errors))
    response = post_form(parent, "/profil/communes", {"commune": "ailleurs",
                                                      "family_code": "ZZ-1"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, field) == detail
    assert input_value(page, "commune") == "ailleurs"
    assert input_value(page, "family_code") == "ZZ-1"


def test_join_commune_without_csrf_is_refused(parent, fake):
    response = parent.post("/profil/communes", data={"commune": "dammartin",
                                                     "family_code": "DT-7"})
    assert response.status_code == 400
    assert not fake.calls("POST", "/api/accounts/me/communes")


def test_profile_api_down_is_a_degraded_page(parent, fake):
    fake.on("GET", "/api/accounts/me/family", 500, {"status": 500})
    response = parent.get("/profil")
    assert response.status_code == 502
    page = text(response)
    assert "rencontrent un problème" in page and "Traceback" not in page


def test_a_session_cookie_renewed_by_the_gateway_reaches_the_browser(parent, fake):
    renewed = "portail_session=n3w; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600"
    fake.on("POST", "/api/accounts/me/password", 204, None, {"Set-Cookie": renewed})
    response = post_form(parent, "/profil/mot-de-passe", {
        "current_password": "portail-demo", "new_password": GOOD, "confirmation": GOOD})
    assert response.headers.getlist("Set-Cookie").count(renewed) == 1


def test_gateway_unreachable_on_a_page_is_a_notice_not_a_500(parent, fake):
    import requests

    parent.get("/")  # the account is known; then the gateway goes away
    fake.failure = requests.ConnectionError("refused")
    response = parent.get("/profil")
    assert response.status_code == 503
    assert "injoignables" in text(response)


def test_session_lost_while_sending_a_form_comes_back_to_that_form(parent, fake):
    fake.on("PATCH", "/api/accounts/me/family", 401, {"status": 401})
    response = post_form(parent, "/profil/responsables/g1",
                         {"first_name": "Claire", "last_name": "CASSEREAU"},
                         headers={"Referer": "http://localhost/profil/responsables/g1"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/connexion?suivant=/profil/responsables/g1"
