"""The caller's own account and household."""

from __future__ import annotations

from services.common.auth import Principal
from tests.accounts.support import (
    ADMIN,
    AGENT,
    CASSEREAU,
    DAMMARTIN,
    JOLIEVILLE,
    PARENT,
    create_household,
)

FAMILY = "/api/accounts/me/family"


def test_me_for_a_parent_an_agent_and_an_admin(accounts):
    parent = accounts.get("/api/accounts/me", PARENT).get_json()
    assert parent == {
        "account_id": PARENT.account_id, "email": "parent@famille.test",
        "family_id": CASSEREAU, "platform_admin": False,
        "communes": [
            {"slug": "dammartin", "name": "Dammartin-sur-Tigeaux", "roles": ["parent"],
             "family_code": "DM7CASSE"},
            {"slug": "jolieville", "name": "JolieVille Test", "roles": ["parent"],
             "family_code": "JV7CASSE"},
        ],
    }
    agent = accounts.get("/api/accounts/me", AGENT).get_json()
    assert agent["family_id"] is None
    assert agent["communes"] == [{"slug": "jolieville", "name": "JolieVille Test",
                                  "roles": ["agent", "agent-admin"]}]
    admin = accounts.get("/api/accounts/me", ADMIN).get_json()
    assert admin["platform_admin"] is True and admin["communes"] == []
    assert accounts.get("/api/accounts/me").status_code == 401


def test_my_communes(accounts):
    items = accounts.get("/api/accounts/me/communes", PARENT).get_json()["items"]
    assert [(i["slug"], i["name"], i["family_code"]) for i in items] == [
        ("jolieville", "JolieVille Test", "JV7CASSE"),
        ("dammartin", "Dammartin-sur-Tigeaux", "DM7CASSE"),
    ]
    assert all(i["joined_at"] for i in items)
    assert accounts.get("/api/accounts/me/communes", AGENT).status_code == 403
    assert accounts.get("/api/accounts/me/communes").status_code == 401


def test_my_family(accounts):
    family = accounts.get(FAMILY, PARENT).get_json()
    assert family["id"] == CASSEREAU
    assert family["family_name"] == "CASSEREAU"
    assert family["address"]["city"] == "JolieVille"
    assert [(g["first_name"], g["pays"]) for g in family["guardians"]] == [
        ("Marie", True), ("Paul", False)]
    assert [(c["first_name"], c["birth_date"], c["class_name"], c["allergies"])
            for c in family["children"]] == [("Léa", "2017-03-14", "CM1", False),
                                              ("Hugo", "2020-09-02", "GS", True)]
    assert accounts.get(FAMILY, AGENT).status_code == 403
    assert accounts.get(FAMILY).status_code == 401


def test_the_household_comes_from_the_token_only(accounts):
    other = create_household(accounts)
    # A family_id in the body or the query changes nothing: identity is the token's.
    mine = accounts.get(FAMILY, PARENT, query_string={"family_id": other["id"]}).get_json()
    assert mine["id"] == CASSEREAU
    stranger = Principal(account_id="0c0ffee0-0000-4000-8000-000000000001",
                         email="x@exemple.fr", family_id="0c0ffee0-0000-4000-8000-000000000002",
                         communes={})
    assert accounts.get(FAMILY, stranger).status_code == 404


def test_a_parent_changes_guardians_contact_details_at_once(accounts):
    family = accounts.get(FAMILY, PARENT).get_json()
    marie, paul = family["guardians"]
    response = accounts.patch(FAMILY, PARENT, json={"guardians": [
        {"id": marie["id"], "phones": ["06 12 34 56 78", "+33 1 60 00 00 01"], "pays": False},
        {"id": paul["id"], "email": "Paul@Exemple.fr", "pays": True, "relation": "beau-père",
         "first_name": " Paul-Henri "},
    ]})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["version"] == 2
    marie2, paul2 = body["guardians"]
    assert marie2["phones"] == ["06 12 34 56 78", "+33 1 60 00 00 01"]
    assert marie2["pays"] is False and marie2["email"] == "parent@famille.test"
    assert (paul2["email"], paul2["pays"], paul2["relation"], paul2["first_name"]) == (
        "paul@exemple.fr", True, "beau-père", "Paul-Henri")

    event = accounts.last("accounts.family.updated")
    assert event["data"]["version"] == 2
    assert event["data"]["guardians"][1]["email"] == "paul@exemple.fr"
    assert event["data"]["communes"] == [
        {"commune_id": JOLIEVILLE, "slug": "jolieville", "family_code": "JV7CASSE"},
        {"commune_id": DAMMARTIN, "slug": "dammartin", "family_code": "DM7CASSE"},
    ]
    assert len(event["data"]["children"]) == 2

    # Removing a phone, clearing the relation.
    again = accounts.patch(FAMILY, PARENT, json={"guardians": [
        {"id": marie["id"], "phones": [], "relation": ""}]}).get_json()
    assert again["guardians"][0]["phones"] == [] and again["guardians"][0]["relation"] is None
    assert again["version"] == 3
    cleared = accounts.patch(FAMILY, PARENT, json={"guardians": [
        {"id": paul["id"], "email": " "}]}).get_json()
    assert cleared["guardians"][1]["email"] is None


def test_a_change_that_changes_nothing_publishes_nothing(accounts):
    family = accounts.get(FAMILY, PARENT).get_json()
    before = len(accounts.events("accounts.family.updated"))
    same = accounts.patch(FAMILY, PARENT, json={
        "guardians": [{k: v for k, v in g.items()} for g in family["guardians"]],
        "address": family["address"], "family_name": family["family_name"],
        "children": family["children"],
    })
    assert same.status_code == 200, same.get_json()
    assert same.get_json()["version"] == 1
    assert len(accounts.events("accounts.family.updated")) == before


def test_proofs_go_through_a_request_to_the_town_hall(accounts):
    family = accounts.get(FAMILY, PARENT).get_json()
    hugo = family["children"][1]
    for body, field in [
        ({"address": {**family["address"], "line1": "1 rue Neuve"}}, "address"),
        ({"children": [{"id": hugo["id"], "allergies": False}]}, "children"),
        ({"children": [{**hugo, "first_name": "Victor"}]}, "children"),
        ({"children": [{**hugo, "birth_date": "2020-09-03"}]}, "children"),
        ({"children": [{"first_name": "Nouveau", "last_name": "X",
                        "birth_date": "2024-01-01"}]}, "children"),
        ({"family_name": "DUPONT"}, "family_name"),
    ]:
        response = accounts.patch(FAMILY, PARENT, json=body)
        assert response.status_code == 422, body
        assert "« Mes demandes »" in response.get_json()["errors"][field][0]
    assert accounts.get(FAMILY, PARENT).get_json()["version"] == 1
    assert not [e for e in accounts.events("accounts.family.updated")
                if e["data"]["version"] > 1]


def test_invalid_profile_changes_are_refused_in_french(accounts):
    family = accounts.get(FAMILY, PARENT).get_json()
    marie, paul = family["guardians"]
    cases = [
        ({"guardians": [{"id": marie["id"], "pays": False}]}, "guardians",
         "Au moins un responsable doit être désigné comme payeur."),
        ({"guardians": [{"id": "0c0ffee0-0000-4000-8000-000000000009", "phones": []}]},
         "guardians.0.id", "Ce responsable ne fait pas partie de votre foyer."),
        ({"guardians": [{"id": marie["id"], "phones": ["pas un numéro"]}]},
         "guardians.0.phones.0", "Numéro de téléphone invalide."),
        ({"guardians": [{"id": marie["id"], "email": "marie@"}]}, "guardians.0.email",
         "Adresse e-mail invalide."),
        ({"guardians": [{"id": marie["id"], "first_name": "  "}]}, "guardians.0.first_name",
         "Ce champ ne peut pas être vide."),
        ({"guardians": [{"id": marie["id"], "phones": ["0612345678"] * 6}]},
         "guardians.0.phones", "Au plus 5 numéros."),
    ]
    for body, field, message in cases:
        response = accounts.patch(FAMILY, PARENT, json=body)
        assert response.status_code == 422, body
        assert response.get_json()["errors"][field] == [message], response.get_json()


def test_a_guardian_of_another_household_cannot_be_changed(accounts):
    other = create_household(accounts)
    response = accounts.patch(FAMILY, PARENT, json={"guardians": [
        {"id": other["guardians"][0]["id"], "phones": ["06 00 00 00 00"]}]})
    assert response.status_code == 422
    assert "guardians.0.id" in response.get_json()["errors"]
    detail = accounts.get(f"/api/accounts/communes/jolieville/families/{other['id']}",
                          AGENT).get_json()
    assert detail["guardians"][0]["phones"] == ["06 11 22 33 44"]


def test_a_stale_version_is_a_conflict(accounts):
    family = accounts.get(FAMILY, PARENT).get_json()
    marie = family["guardians"][0]
    ok = accounts.patch(FAMILY, PARENT, json={"version": 1, "guardians": [
        {"id": marie["id"], "phones": []}]})
    assert ok.status_code == 200
    stale = accounts.patch(FAMILY, PARENT, json={"version": 1, "guardians": [
        {"id": marie["id"], "phones": ["06 00 00 00 00"]}]})
    assert stale.status_code == 409
    assert "rechargez" in stale.get_json()["detail"]
