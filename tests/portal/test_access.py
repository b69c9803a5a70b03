"""Activation and password reset, by e-mailed link: valid, expired, used, unknown."""

from __future__ import annotations

import pytest

from .support import (
    CHILDREN,
    GUARDIANS,
    ME,
    SESSION_LINE,
    csrf_token,
    field_error,
    post_form,
    problem,
    text,
)

TOKEN = "tok-abc_123"
CHECK = f"/api/accounts/activation/{TOKEN}"
VALID = {"status": "valid", "email": "parent@famille.test", "family_name": "CASSEREAU",
         "guardians": GUARDIANS, "children": CHILDREN, "expires_at": "2026-12-01T08:00:00Z"}
GOOD = "une phrase assez longue"


def gone(reason: str) -> dict:
    """The contract's 410: a problem whose ``status`` says ``expired`` or ``used``."""
    body = problem(410, "Ce lien n'est plus valable : demandez-en un nouveau.")
    return {**body, "status": reason}


@pytest.fixture
def valid(fake):
    fake.on("GET", CHECK, body=VALID)


def activate(client, password=GOOD, confirmation=None):
    return post_form(client, f"/activation/{TOKEN}",
                     {"password": password,
                      "confirmation": password if confirmation is None else confirmation})


def test_activation_shows_the_household_to_check_and_the_password_form(client, fake, valid):
    response = client.get(f"/activation/{TOKEN}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<title>Activer votre compte — Portail Famille</title>" in page
    assert "CASSEREAU" in page and "Claire CASSEREAU" in page and "(mère)" in page
    assert "Léa CASSEREAU, né(e) le 14/03/2018" in page
    assert "01/12/2026" in page  # valid until
    assert 'value="parent@famille.test" readonly' in page and 'autocomplete="username"' in page
    assert page.count('autocomplete="new-password"') == 2
    assert "Au moins 12 caractères" in page and "trop courants" in page
    assert 'aria-describedby="password-aide"' in page


def test_activation_success_logs_in_and_goes_home(client, fake, valid):
    fake.on("POST", "/api/accounts/activation", 200, {"status": "active",
                                                      "email": "parent@famille.test"})
    fake.on("POST", "/auth/login", 200, {"access_token": "t"}, {"Set-Cookie": SESSION_LINE})
    response = activate(client)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert SESSION_LINE in response.headers.getlist("Set-Cookie")
    assert fake.last_json("POST", "/api/accounts/activation") == {"token": TOKEN,
                                                                  "password": GOOD}
    assert fake.last_json("POST", "/auth/login") == {"email": "parent@famille.test",
                                                     "password": GOOD}
    fake.parent()
    client.set_cookie("portail_session", "s3cr3t")
    page = client.get("/").get_data(as_text=True)
    assert "Votre compte est activé" in page


def test_activation_success_without_login_says_how_to_log_in(client, fake, valid):
    fake.on("POST", "/api/accounts/activation", 204)
    fake.on("POST", "/auth/login", 429, {"status": 429}, {"Retry-After": "30"})
    response = activate(client)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Votre compte est activé" in page and 'href="/connexion"' in page
    assert GOOD not in page


def test_activation_refused_password_is_shown_next_to_the_field(client, fake, valid):
    fake.on("POST", "/api/accounts/activation", 422, problem(
        422, "Certaines informations sont invalides : voir le détail par champ.",
        {"password": ["Ce mot de passe est trop courant : choisissez-en un autre."]}))
    response = activate(client, password="motdepasse123")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "password") == ("Ce mot de passe est trop courant : "
                                             "choisissez-en un autre.")
    assert 'aria-describedby="password-aide password-erreur"' in page
    assert '<a href="#password">' in page  # the summary links to the field
    assert "<title>Erreur — Activer votre compte" in page
    assert "motdepasse123" not in page  # never sent back
    assert "CASSEREAU" in page  # the household is still shown


def test_activation_checks_length_and_confirmation_in_the_portal(client, fake, valid):
    page = activate(client, password="court", confirmation="autre").get_data(as_text=True)
    assert field_error(page, "password") == "Au moins 12 caractères."
    assert field_error(page, "confirmation") == "Les deux mots de passe ne sont pas identiques."
    page = activate(client, confirmation="une autre phrase longue").get_data(as_text=True)
    assert field_error(page, "confirmation") == "Les deux mots de passe ne sont pas identiques."
    assert GOOD not in page
    assert not fake.calls("POST", "/api/accounts/activation")


@pytest.mark.parametrize("reason,heading", [("expired", "Ce lien a expiré"),
                                            ("used", "Ce lien a déjà été utilisé")])
def test_activation_expired_or_used_offers_a_new_link(client, fake, reason, heading):
    fake.on("GET", CHECK, 410, gone(reason))
    response = client.get(f"/activation/{TOKEN}")
    page = response.get_data(as_text=True)
    assert response.status_code == 410
    assert f"<h1>{heading}</h1>" in page
    assert "demandez-en un nouveau" in page
    assert f'action="/activation/{TOKEN}/nouveau-lien"' in page
    assert "Recevoir un nouveau lien" in page
    assert 'name="password"' not in page

    fake.on("POST", "/api/accounts/activation/renew", 202, {})
    response = post_form(client, f"/activation/{TOKEN}/nouveau-lien", {},
                         token_from=f"/activation/{TOKEN}")
    assert response.status_code == 200
    assert "nouveau lien d'activation vient d'être envoyé" in text(response)
    assert fake.last_json("POST", "/api/accounts/activation/renew") == {"token": TOKEN}


def test_activation_used_between_the_form_and_the_post(client, fake, valid):
    fake.on("POST", "/api/accounts/activation", 410, gone("used"))
    response = activate(client)
    assert response.status_code == 410
    assert "Ce lien a déjà été utilisé" in response.get_data(as_text=True)


def test_activation_unknown_token_is_a_french_404(client, fake):
    fake.on("GET", "/api/accounts/activation/inconnu", 404, problem(404, "Lien inconnu."))
    response = client.get("/activation/inconnu", headers={"Accept": "text/html"})
    assert response.status_code == 404
    page = text(response)
    assert "<h1>Ce lien n'est pas valable</h1>" in page and "contactez votre mairie" in page
    assert 'name="password"' not in page


def test_activation_link_with_a_query_string_leads_to_the_page(client):
    response = client.get(f"/activation?token={TOKEN}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/activation/{TOKEN}"


def test_activation_token_is_quoted_in_the_api_path(client, fake):
    client.get("/activation/a%3Fb%20c")
    assert fake.seen[-1].url == "http://gw.test/api/accounts/activation/a%3Fb%20c"


def test_activation_without_csrf_is_refused(client, fake, valid):
    response = client.post(f"/activation/{TOKEN}", data={"password": GOOD,
                                                         "confirmation": GOOD})
    assert response.status_code == 400
    assert not fake.calls("POST", "/api/accounts/activation")
    response = client.post(f"/activation/{TOKEN}/nouveau-lien")
    assert response.status_code == 400
    assert not fake.calls("POST", "/api/accounts/activation/renew")


def test_activation_gateway_down_keeps_the_form(client, fake, valid):
    fake.on("POST", "/api/accounts/activation", 503, {"status": 503})
    response = activate(client)
    page = response.get_data(as_text=True)
    assert response.status_code == 502
    assert "Service momentanément perturbé" in page and 'name="password"' in page
    assert GOOD not in page


# --- Password reset -------------------------------------------------------------------------


@pytest.mark.parametrize("status,body", [(202, {}), (404, problem(404, "Compte inconnu.")),
                                         (422, problem(422, "Adresse inconnue.",
                                                       {"email": ["Inconnue."]})),
                                         (409, problem(409, "Compte désactivé."))])
def test_reset_request_always_answers_the_same(client, fake, status, body):
    fake.on("POST", "/api/accounts/password-reset", status, body)
    response = post_form(client, "/mot-de-passe/oublie", {"email": " someone@ailleurs.fr "})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Si un compte existe pour cette adresse, un e-mail vient de lui être envoyé" in page
    assert "Inconnue" not in page and "Compte inconnu" not in page
    assert "Adresse inconnue" not in page and "désactivé" not in page
    assert fake.last_json("POST", "/api/accounts/password-reset") == {
        "email": "someone@ailleurs.fr"}


def test_reset_request_rate_limited_and_bad_address(client, fake):
    fake.on("POST", "/api/accounts/password-reset", 429,
            problem(429, "Trop de demandes : réessayez dans une minute."))
    response = post_form(client, "/mot-de-passe/oublie", {"email": "a@b.fr"})
    assert response.status_code == 429
    assert "Trop de demandes" in response.get_data(as_text=True)
    response = post_form(client, "/mot-de-passe/oublie", {"email": "pas-une-adresse"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "email").startswith("Adresse e-mail invalide")
    assert 'value="pas-une-adresse"' in page


def test_login_page_links_to_forgotten_password(client):
    page = client.get("/connexion").get_data(as_text=True)
    assert '<a href="/mot-de-passe/oublie">Mot de passe oublié ?</a>' in page


def test_reset_form_then_success_logs_in(client, fake):
    fake.on("GET", "/api/accounts/password-reset/r1", body={"status": "valid",
                                                          "email": "parent@famille.test"})
    page = client.get("/mot-de-passe/reinitialiser/r1").get_data(as_text=True)
    assert "Choisir un nouveau mot de passe" in page and 'value="parent@famille.test"' in page
    fake.on("POST", "/api/accounts/password-reset/confirm", 204)
    fake.on("POST", "/auth/login", 200, {}, {"Set-Cookie": SESSION_LINE})
    response = post_form(client, "/mot-de-passe/reinitialiser/r1",
                         {"password": GOOD, "confirmation": GOOD})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert fake.last_json("POST", "/api/accounts/password-reset/confirm") == {
        "token": "r1", "password": GOOD}
    assert SESSION_LINE in response.headers.getlist("Set-Cookie")


def test_reset_refused_password_next_to_the_field(client, fake):
    fake.on("GET", "/api/accounts/password-reset/r1", body={"status": "valid",
                                                          "email": "parent@famille.test"})
    fake.on("POST", "/api/accounts/password-reset/confirm", 422, problem(
        422, "Invalide.", {"new_password": ["Identique à l'adresse e-mail : refusé."]}))
    response = post_form(client, "/mot-de-passe/reinitialiser/r1",
                         {"password": "Parent-Famille-2026", "confirmation":
                          "Parent-Famille-2026"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(page, "password") == "Identique à l'adresse e-mail : refusé."
    assert 'value="parent@famille.test" readonly' in page
    assert "Parent-Famille-2026" not in page


@pytest.mark.parametrize("reason", ["expired", "used"])
def test_reset_link_gone_offers_to_ask_again(client, fake, reason):
    fake.on("GET", "/api/accounts/password-reset/r1", 410, gone(reason))
    response = client.get("/mot-de-passe/reinitialiser/r1")
    page = response.get_data(as_text=True)
    assert response.status_code == 410
    assert 'href="/mot-de-passe/oublie">Demander un nouveau lien' in page


def test_reset_unknown_token_is_404(client, fake):
    response = client.get("/mot-de-passe/reinitialiser/zz")
    assert response.status_code == 404
    assert 'href="/mot-de-passe/oublie">Demander un nouveau lien' in text(response)
    response = client.get("/mot-de-passe/reinitialiser?token=zz")
    assert response.headers["Location"] == "/mot-de-passe/reinitialiser/zz"


def test_logged_in_visitor_can_still_activate(client, fake, valid):
    fake.on("GET", "/auth/me", body=ME)
    client.set_cookie("portail_session", "s3cr3t")
    assert client.get(f"/activation/{TOKEN}").status_code == 200
    assert csrf_token(client, f"/activation/{TOKEN}")
