"""The layout: menu by role and by the commune's modules, and the commune switcher."""

from __future__ import annotations

import re

from .support import AGENT, ME, ME_ONE_COMMUNE, commune, csrf_token


def nav(page: str) -> str:
    return page[page.index('<nav aria-label="Menu principal">'):page.index("</nav>")]


def test_parent_menu_has_the_modules_of_the_commune(parent, fake):
    page = parent.get("/").get_data(as_text=True)
    menu = nav(page)
    for label in ("Actualités", "Mes réservations", "Mes factures", "Mes demandes",
                  "Mon profil", "Se déconnecter"):
        assert label in menu
    assert 'href="/" aria-current="page">Actualités' in menu
    assert "Familles" not in menu and "/agent/" not in menu


def test_menu_hides_the_modules_a_commune_does_not_subscribe_to(parent, fake):
    fake.on("GET", "/api/accounts/communes/jolieville", body=commune(modules=("invoices",)))
    menu = nav(parent.get("/").get_data(as_text=True))
    assert "Mes factures" in menu
    assert "Mes réservations" not in menu and "Mes demandes" not in menu


def test_menu_shows_every_module_when_the_commune_cannot_be_read(parent, fake):
    fake.on("GET", "/api/accounts/communes/jolieville", 503, {"status": 503})
    response = parent.get("/")
    assert response.status_code == 200
    menu = nav(response.get_data(as_text=True))
    assert "Mes réservations" in menu and "Mes demandes" in menu


def test_commune_settings_are_kept_a_minute(parent, fake):
    parent.get("/")
    parent.get("/profil")
    assert len(fake.calls("GET", "/api/accounts/communes/jolieville")) == 1


def test_agent_menu_has_the_agent_pages(agent, fake):
    menu = nav(agent.get("/").get_data(as_text=True))
    assert 'href="/agent/familles"' in menu and 'href="/agent/actualites"' in menu
    assert "Mes réservations" not in menu  # an agent has no household
    assert "Mon profil" in menu


def test_switcher_only_with_several_communes(parent, fake):
    page = parent.get("/").get_data(as_text=True)
    assert 'action="/commune"' in page
    assert '<label for="commune-choisie">Commune</label>' in page
    assert '<option value="jolieville" selected>JolieVille Test</option>' in page
    assert '<option value="dammartin">Dammartin-sur-Tigeaux</option>' in page

    fake.on("GET", "/auth/me", body=ME_ONE_COMMUNE)
    page = parent.get("/").get_data(as_text=True)
    assert 'action="/commune"' not in page
    assert "Commune : <strong>JolieVille Test</strong>" in page


def test_switching_commune_sets_the_cookie_and_changes_the_page(parent, fake):
    token = csrf_token(parent, "/")
    response = parent.post("/commune", data={"commune": "dammartin", "suivant": "/profil",
                                             "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/profil"
    line = next(c for c in response.headers.getlist("Set-Cookie")
                if c.startswith("portail_commune="))
    assert line.startswith("portail_commune=dammartin;")
    assert "HttpOnly" in line and "SameSite=Lax" in line
    page = parent.get("/").get_data(as_text=True)
    assert '<option value="dammartin" selected>' in page
    assert "Actualités <span class=\"h1-sub\">de Dammartin-sur-Tigeaux</span>" in page
    assert "Aucune actualité de Dammartin-sur-Tigeaux" in page
    menu = nav(page)
    assert "Mes factures" in menu and "Mes réservations" not in menu  # dammartin's modules


def test_switching_to_a_commune_not_listed_by_the_gateway_is_ignored(parent, fake):
    token = csrf_token(parent, "/")
    response = parent.post("/commune", data={"commune": "ailleurs", "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert not any(c.startswith("portail_commune=")
                   for c in response.headers.getlist("Set-Cookie"))


def test_a_forged_commune_cookie_is_ignored(parent, fake):
    parent.set_cookie("portail_commune", "ailleurs")
    page = parent.get("/").get_data(as_text=True)
    assert '<option value="jolieville" selected>' in page
    assert "Fermeture du centre de loisirs" in page  # jolieville's news
    assert not any("/communes/ailleurs" in r.url for r in fake.seen)


def test_an_agent_cookie_for_another_commune_falls_back_to_theirs(agent, fake):
    fake.on("GET", "/api/accounts/communes/jolieville/families", body={"items": [],
                                                                       "next": None})
    agent.set_cookie("portail_commune", "dammartin")
    assert agent.get("/agent/familles").status_code == 200
    assert fake.calls("GET", "/api/accounts/communes/jolieville/families")
    assert not any("/communes/dammartin" in r.url for r in fake.seen)


def test_switching_needs_the_csrf_token(parent, fake):
    response = parent.post("/commune", data={"commune": "dammartin"})
    assert response.status_code == 400
    assert not any(c.startswith("portail_commune=")
                   for c in response.headers.getlist("Set-Cookie"))


def test_switch_redirect_stays_on_the_site(parent, fake):
    token = csrf_token(parent, "/")
    response = parent.post("/commune", data={"commune": "dammartin", "csrf_token": token,
                                             "suivant": "//evil.test/"})
    assert response.headers["Location"] == "/"


def test_home_shows_the_news_of_the_current_commune(parent, fake):
    page = parent.get("/").get_data(as_text=True)
    assert "<title>Actualités — Portail Famille</title>" in page
    assert "Fermeture du centre de loisirs" in page
    assert "Publiée le 02/11/2026" in page
    assert "<p>Le centre sera fermé le 11 novembre.</p>" in page
    assert len(re.findall(r"<h1[ >]", page)) == 1


def test_home_news_down_is_a_degraded_page_not_a_500(parent, fake):
    fake.on("GET", "/api/accounts/communes/jolieville/news", 502, {"status": 502})
    response = parent.get("/")
    assert response.status_code == 502
    page = response.get_data(as_text=True)
    assert "Service momentanément perturbé" in page and "Se déconnecter" in page


def test_platform_admin_without_commune_sees_a_plain_home(client, fake):
    fake.on("GET", "/auth/me", body={**AGENT, "platform_admin": True, "communes": []})
    client.set_cookie("portail_session", "s3cr3t")
    page = client.get("/").get_data(as_text=True)
    assert "aucune commune" in page
    assert ME["email"] not in page
