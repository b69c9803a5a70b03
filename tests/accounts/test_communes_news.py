"""Commune settings and news."""

from __future__ import annotations

from services.common.auth import Principal
from tests.accounts.support import (
    ADMIN,
    AGENT,
    DAMMARTIN_AGENT,
    JOLIEVILLE,
    PARENT,
    PLAIN_AGENT,
)

COMMUNE = "/api/accounts/communes/jolieville"
NEWS = f"{COMMUNE}/news"


def test_a_commune_is_public(accounts):
    body = accounts.get(COMMUNE).get_json()
    assert body["id"] == JOLIEVILLE and body["name"] == "JolieVille Test"
    assert body["version"] == 1
    assert body["settings"]["modules"] == ["reservations", "invoices", "requests"]
    assert accounts.get("/api/accounts/communes/nulle-part").status_code == 404


def test_an_agent_admin_changes_the_commune_settings(accounts):
    response = accounts.patch(COMMUNE, AGENT, json={
        "name": "JolieVille", "settings": {"modules": ["invoices"], "address": {
            "line1": "Place de la Mairie", "postal_code": "77100", "city": "JolieVille"}}})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["name"] == "JolieVille" and body["version"] == 2
    assert body["settings"]["modules"] == ["invoices"]
    assert body["settings"]["contact_email"] == "mairie@jolieville.test"  # kept
    assert body["settings"]["address"]["line2"] is None
    event = accounts.last("accounts.commune.updated")
    assert event["commune_id"] == JOLIEVILLE
    assert event["data"]["version"] == 2 and event["data"]["name"] == "JolieVille"
    assert event["data"]["settings"]["modules"] == ["invoices"]

    unchanged = accounts.patch(COMMUNE, ADMIN, json={"name": "JolieVille"})
    assert unchanged.get_json()["version"] == 2
    assert len(accounts.events("accounts.commune.updated")) == 1
    admin = accounts.patch("/api/accounts/communes/dammartin", ADMIN,
                           json={"settings": {"phone": "01 64 00 00 01"}})
    assert admin.status_code == 200 and admin.get_json()["version"] == 2


def test_only_admins_change_a_commune(accounts):
    body = {"name": "Ailleurs"}
    assert accounts.patch(COMMUNE, None, json=body).status_code == 401
    assert accounts.patch(COMMUNE, PLAIN_AGENT, json=body).status_code == 403
    assert accounts.patch(COMMUNE, DAMMARTIN_AGENT, json=body).status_code == 403
    assert accounts.patch(COMMUNE, PARENT, json=body).status_code == 403
    bad = accounts.patch(COMMUNE, AGENT, json={"settings": {"modules": ["cinema"]}})
    assert bad.status_code == 422
    assert bad.get_json()["errors"]["settings.modules.0"][0].startswith("Doit être l'une")
    assert accounts.patch("/api/accounts/communes/nulle-part", ADMIN,
                          json=body).status_code == 404


def test_a_platform_admin_creates_a_commune_with_an_address(accounts):
    response = accounts.post("/api/accounts/communes", ADMIN, json={
        "slug": "saint-essai", "name": "Saint-Essai", "settings": {
            "contact_email": "mairie@saint-essai.fr", "address": {
                "line1": "1 place de l'Église", "postal_code": "77000", "city": "Saint-Essai"}}})
    assert response.status_code == 201, response.get_json()
    created = accounts.last("accounts.commune.created")["data"]
    assert created["slug"] == "saint-essai"
    assert created["settings"]["address"]["city"] == "Saint-Essai"
    again = accounts.post("/api/accounts/communes", ADMIN, json={"slug": "saint-essai",
                                                                  "name": "Doublon"})
    assert again.status_code == 409
    assert accounts.post("/api/accounts/communes", AGENT, json={
        "slug": "x-y", "name": "Xy"}).status_code == 403


def test_members_and_agents_read_the_news_newest_first(accounts):
    for reader in (PARENT, AGENT, ADMIN):
        response = accounts.get(NEWS, reader)
        assert response.status_code == 200
        items = response.get_json()["items"]
        assert [i["title"][:14] for i in items] == ["Les menus de l", "Inscriptions a"]
        assert response.get_json()["next"] is None
    assert accounts.get(NEWS).status_code == 401
    assert accounts.get(NEWS, DAMMARTIN_AGENT).status_code == 403
    outsider = Principal(account_id="0c0ffee0-0000-4000-8000-000000000003",
                         family_id="0c0ffee0-0000-4000-8000-000000000004",
                         communes={"dammartin": {"id": "x", "roles": ["parent"]}})
    assert accounts.get(NEWS, outsider).status_code == 404
    assert accounts.get("/api/accounts/communes/dammartin/news", PARENT).get_json() == {
        "items": [], "next": None}


def test_agents_publish_news_and_the_list_pages(accounts):
    response = accounts.post(NEWS, PLAIN_AGENT, json={"title": " Fermeture ",
                                                      "body": "La cantine ferme lundi."})
    assert response.status_code == 201
    news = response.get_json()
    assert news["title"] == "Fermeture" and news["published_at"]
    assert accounts.get(NEWS, PARENT).get_json()["items"][0]["id"] == news["id"]

    assert accounts.post(NEWS, PARENT, json={"title": "x", "body": "y"}).status_code == 403
    assert accounts.post(NEWS, DAMMARTIN_AGENT, json={"title": "x",
                                                      "body": "y"}).status_code == 403
    empty = accounts.post(NEWS, AGENT, json={"title": "", "body": "y"})
    assert empty.status_code == 422
    assert empty.get_json()["errors"]["title"] == ["Ce champ ne peut pas être vide."]

    for i in range(25):
        accounts.post(NEWS, AGENT, json={"title": f"N{i}", "body": "..."})
    first = accounts.get(NEWS, PARENT).get_json()
    assert len(first["items"]) == 20 and first["next"]
    assert first["items"][0]["title"] == "N24"
    second = accounts.get(NEWS, PARENT, query_string={"cursor": first["next"]}).get_json()
    assert len(second["items"]) == 28 - 20 and second["next"] is None
    titles = [i["title"] for i in first["items"] + second["items"]]
    assert len(set(titles)) == 28
    assert titles[-1].startswith("Inscriptions")
    assert accounts.get(NEWS, PARENT, query_string={"cursor": "!!"}).status_code == 422
