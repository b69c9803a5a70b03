"""The portal's base pages against a fake gateway: home, login, logout, errors, dev mailbox."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import requests

from .support import ME, SESSION_LINE, build, csrf_token, login


def test_home_anonymous_explains_and_links_to_login(client, fake):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="fr">' in page
    assert 'name="viewport"' in page
    assert "Aller au contenu" in page and 'id="contenu"' in page
    assert "cantine" in page and "périscolaire" in page and "centre de loisirs" in page
    assert "factures" in page.lower() and "mairie" in page
    assert 'href="/connexion"' in page
    assert "Se déconnecter" not in page
    assert fake.seen == []  # no cookie, no question to the gateway
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp


def test_home_logged_in_lists_communes_and_forwards_cookie_and_request_id(client, fake):
    fake.on("GET", "/auth/me", body=ME)
    client.set_cookie("portail_session", "s3cr3t")
    response = client.get("/", headers={"X-Request-ID": "req-42"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "JolieVille Test" in page and "Dammartin-sur-Tigeaux" in page
    assert "parent@famille.test" in page
    for label in ("Actualités", "Mes réservations", "Mes factures", "Mes demandes",
                  "Mon profil", "Se déconnecter"):
        assert label in page
    sent = fake.last("/auth/me")
    assert sent.headers["Cookie"] == "portail_session=s3cr3t"
    assert sent.headers["X-Request-ID"] == "req-42"


def test_stale_session_cookie_shows_anonymous_home(client, fake):
    fake.on("GET", "/auth/me", 401, {"status": 401})
    client.set_cookie("portail_session", "expired")
    page = client.get("/").get_data(as_text=True)
    assert "Bienvenue" in page and 'href="/connexion"' in page


def test_login_form_is_accessible(client):
    page = client.get("/connexion").get_data(as_text=True)
    assert '<label class="field__label" for="email">Adresse e-mail</label>' in page
    assert '<label class="field__label" for="password">Mot de passe</label>' in page
    assert 'autocomplete="username"' in page and 'autocomplete="current-password"' in page
    assert 'aria-describedby="email-aide"' in page


def test_login_without_csrf_token_is_refused_in_french(client, fake):
    response = client.post("/connexion", data={"email": "a@b.fr", "password": "x"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in response.get_data(as_text=True)
    assert fake.seen == []


def test_login_bad_credentials_keeps_email(client, fake):
    fake.on("POST", "/auth/login", 401, {"status": 401, "title": "Authentification requise"})
    response = login(client, password="mauvais")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Adresse e-mail ou mot de passe incorrect." in page
    assert 'value="parent@famille.test"' in page
    assert "mauvais" not in page  # the password is never sent back
    assert json.loads(fake.last("/auth/login").body) == {
        "email": "parent@famille.test", "password": "mauvais"}


def test_login_field_errors_next_to_fields(client, fake):
    response = login(client, email="pas-une-adresse", password="")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="email-erreur"' in page and "Adresse e-mail invalide" in page
    assert 'aria-describedby="email-aide email-erreur"' in page
    assert 'id="password-erreur"' in page and "Indiquez votre mot de passe." in page
    assert 'value="pas-une-adresse"' in page
    assert fake.seen == []


def test_login_success_copies_gateway_cookie_and_redirects(client, fake):
    fake.on("POST", "/auth/login", 200,
            {"access_token": "t", "token_type": "Bearer", "expires_in": 3600},
            [("Set-Cookie", SESSION_LINE), ("Set-Cookie", "other=1; Path=/")])
    response = login(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    cookies = response.headers.getlist("Set-Cookie")
    assert SESSION_LINE in cookies
    assert not any(line.startswith("other=") for line in cookies)


def test_login_success_honours_local_next_only(client, fake):
    fake.on("POST", "/auth/login", 200, {}, {"Set-Cookie": SESSION_LINE})
    token = csrf_token(client)
    data = {"email": "parent@famille.test", "password": "p", "csrf_token": token}
    response = client.post("/connexion?suivant=/factures", data=data)
    assert response.headers["Location"] == "/factures"
    token = csrf_token(client)
    data["csrf_token"] = token
    response = client.post("/connexion?suivant=//evil.test/", data=data)
    assert response.headers["Location"] == "/"


def test_pooled_session_never_keeps_a_visitors_cookie(fake):
    app = build(fake)
    fake.on("POST", "/auth/login", 200, {}, {"Set-Cookie": SESSION_LINE})
    fake.on("GET", "/auth/me", 401, {"status": 401})
    login(app.test_client())
    other = app.test_client()
    other.set_cookie("portail_session", "someone-else")
    other.get("/")
    assert fake.last("/auth/me").headers["Cookie"] == "portail_session=someone-else"
    assert len(app.extensions["portal_client"].session.cookies) == 0


def test_login_rate_limited_shows_seconds(client, fake):
    fake.on("POST", "/auth/login", 429, {"status": 429}, {"Retry-After": "42"})
    response = login(client)
    assert response.status_code == 429
    assert "Trop de tentatives : réessayez dans 42 secondes." in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "42"


@pytest.mark.parametrize("failure", [requests.ConnectionError("refused"),
                                     requests.ConnectTimeout("slow")])
def test_login_gateway_down_shows_french_notice(client, fake, failure):
    token = csrf_token(client)
    fake.failure = failure
    response = client.post("/connexion", data={"email": "parent@famille.test",
                                               "password": "p", "csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code in (503, 504)
    assert "Service momentanément perturbé" in page
    assert "Réessayez dans quelques instants." in page
    assert 'value="parent@famille.test"' in page
    assert "Traceback" not in page


def test_home_gateway_down_renders_degraded_page(client, fake):
    fake.failure = requests.ConnectionError("refused")
    client.set_cookie("portail_session", "s3cr3t")
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "injoignables" in page and '<html lang="fr">' in page
    assert len(fake.seen) == 1  # asked once, not again for the layout


def test_gateway_5xx_is_a_502_page(client, fake):
    fake.on("GET", "/auth/me", 500, {"status": 500})
    client.set_cookie("portail_session", "s3cr3t")
    response = client.get("/")
    assert response.status_code == 502
    assert "rencontrent un problème" in response.get_data(as_text=True)


def test_logout_forwards_cookie_and_deletes_it(client, fake):
    fake.on("GET", "/auth/me", body=ME)
    fake.on("POST", "/auth/logout", 204)
    client.set_cookie("portail_session", "s3cr3t")
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/deconnexion", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert fake.last("/auth/logout").headers["Cookie"] == "portail_session=s3cr3t"
    deleted = [c for c in response.headers.getlist("Set-Cookie")
               if c.startswith("portail_session=")]
    assert deleted and "Max-Age=0" in deleted[0]


def test_logout_without_csrf_is_refused(client, fake):
    client.set_cookie("portail_session", "s3cr3t")
    assert client.post("/deconnexion").status_code == 400
    assert not any(urlsplit(r.url).path == "/auth/logout" for r in fake.seen)


def test_csrf_cookie_settings(fake):
    prod = build(fake, env="production").test_client()
    response = prod.get("/connexion")
    line = next(c for c in response.headers.getlist("Set-Cookie")
                if c.startswith("portail_csrf="))
    assert "HttpOnly" in line and "SameSite=Lax" in line and "Secure" in line
    dev = build(fake).test_client().get("/connexion")
    line = next(c for c in dev.headers.getlist("Set-Cookie") if c.startswith("portail_csrf="))
    assert "Secure" not in line


def test_dev_mail_is_404_outside_dev(fake):
    prod = build(fake, env="production").test_client()
    assert prod.get("/dev/mail").status_code == 404
    assert prod.get("/dev/mail/abc").status_code == 404
    assert fake.seen == []


def test_dev_mail_lists_and_shows_messages(client, fake):
    item = {"id": "m2", "from": "Portail Famille <ne-pas-repondre@portail.test>",
            "to": "parent@famille.test", "subject": "Activez votre compte",
            "date": "2026-05-12T12:03:00+00:00",
            "text": "Bonjour,\nActivez : http://127.0.0.1:8000/activation?jeton=abc&x=1.\n",
            "html": '<p>Bonjour <a href="http://127.0.0.1:8000/activation?jeton=abc">'
                    "activer</a></p><script>alert(1)</script>"}
    older = {**item, "id": "m1", "subject": "Bienvenue"}
    fake.on("GET", "/api/notifications/dev/mailbox", body={"items": [item, older],
                                                            "next": None})
    fake.on("GET", "/api/notifications/dev/mailbox/m2", body=item)
    listing = client.get("/dev/mail")
    page = listing.get_data(as_text=True)
    assert listing.status_code == 200
    assert page.index("Activez votre compte") < page.index("Bienvenue")
    assert 'href="/dev/mail/m2"' in page and "12/05/2026 à 14 h 03" in page

    shown = client.get("/dev/mail/m2")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "srcdoc=\"&lt;base target=&#34;_blank&#34;&gt;&lt;p&gt;Bonjour" in page
    assert "<script>" not in page  # the e-mail's HTML only ever appears escaped
    assert ('<a href="http://127.0.0.1:8000/activation?jeton=abc&amp;x=1">'
            in page)
    csp = shown.headers["Content-Security-Policy"]
    assert "frame-src 'self'" in csp and "script-src" not in csp
    assert "frame-ancestors 'none'" in csp


def test_dev_mail_unknown_message_is_404(client, fake):
    assert client.get("/dev/mail/nope").status_code == 404


def test_error_pages_html_for_browsers_problem_json_for_programs(client):
    html = client.get("/nulle-part", headers={"Accept": "text/html,*/*;q=0.8"})
    assert html.status_code == 404 and html.mimetype == "text/html"
    page = html.get_data(as_text=True)
    assert "Ressource introuvable" in page and '<html lang="fr">' in page
    api = client.get("/nulle-part", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.mimetype == "application/problem+json"
    assert api.get_json()["title"] == "Ressource introuvable"


def test_unexpected_error_is_a_french_500_page(fake):
    app = build(fake)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boum")
    def boum():
        raise RuntimeError("boum")

    response = app.test_client().get("/boum", headers={"Accept": "text/html"})
    page = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Erreur interne" in page and "boum" not in page and "Traceback" not in page


def test_healthz_still_answers(client):
    assert client.get("/healthz").get_json()["service"] == "portal"
