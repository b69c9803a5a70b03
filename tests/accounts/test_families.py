"""Agents create, find and re-invite the households of their commune."""

from __future__ import annotations

from datetime import date

from tests.accounts.support import (
    AGENT,
    DAMMARTIN_AGENT,
    JOLIEVILLE,
    PARENT,
    PLAIN_AGENT,
    PUBLIC_URL,
    create_household,
    household,
    token_of,
)

FAMILIES = "/api/accounts/communes/jolieville/families"
ALPHABET = set("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")


def test_an_agent_creates_a_household_and_invites_it(accounts):
    response = accounts.post(FAMILIES, AGENT, json=household())
    assert response.status_code == 201
    body = response.get_json()
    assert body["family_name"] == "MARTIN"
    assert body["email"] == "martin@exemple.fr"
    assert body["status"] == "invited"
    assert body["membership_status"] == "active"
    assert body["version"] == 1
    assert len(body["family_code"]) == 8 and set(body["family_code"]) <= ALPHABET
    assert [g["first_name"] for g in body["guardians"]] == ["Claire", "Marc"]
    # The first guardian gets the main e-mail when none was given for them.
    assert body["guardians"][0]["email"] == "martin@exemple.fr"
    assert body["children"][1] == {**body["children"][1], "first_name": "Noé",
                                   "allergies": True, "allergy_notes": "Gluten"}
    assert body["address"]["line2"] is None

    invited = accounts.last("accounts.family.invited")
    assert invited["commune_id"] == JOLIEVILLE
    data = invited["data"]
    assert data["family_id"] == body["id"]
    assert data["email"] == "martin@exemple.fr"
    assert data["activation_url"].startswith(f"{PUBLIC_URL}/activation/")
    assert data["commune_slug"] == "jolieville" and data["commune_name"] == "JolieVille Test"
    assert data["family_code"] == body["family_code"]

    updated = accounts.last("accounts.family.updated")["data"]
    assert updated["family_id"] == body["id"] and updated["version"] == 1
    assert updated["communes"] == [{"commune_id": JOLIEVILLE, "slug": "jolieville",
                                    "family_code": body["family_code"]}]
    assert [c["birth_date"] for c in updated["children"]] == ["2018-05-02", "2021-01-20"]
    created = accounts.last("accounts.membership.created")
    assert created["data"] == {"family_id": body["id"], "commune_id": JOLIEVILLE,
                               "family_code": body["family_code"],
                               "commune_slug": "jolieville"}
    # One request, one transaction: the three events share its correlation id.
    assert len({updated_env["correlation_id"] for updated_env in
                (invited, created, accounts.last("accounts.family.updated"))}) == 1


def test_the_token_is_stored_only_as_its_hash(accounts):
    body = create_household(accounts)
    with accounts.db.engine.connect() as conn:
        dump = "\n".join(str(row) for table in ("tokens", "accounts", "outbox")
                         for row in conn.exec_driver_sql(f"SELECT * FROM {table}")
                         if table != "outbox" or "invited" not in str(row))
    assert body["token"] not in dump


def test_family_codes_are_unique_in_a_commune(accounts):
    codes = {create_household(accounts, f"f{i}@exemple.fr")["family_code"] for i in range(12)}
    assert len(codes) == 12


def test_a_duplicate_email_is_a_conflict_in_french(accounts):
    create_household(accounts)
    again = accounts.post(FAMILIES, AGENT, json=household("MARTIN@exemple.fr "))
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"
    assert "déjà inscrit" in again.get_json()["detail"]
    agent_email = accounts.post(FAMILIES, AGENT, json=household("agent@jolieville.test"))
    assert agent_email.status_code == 409
    assert "n'est pas un compte famille" in agent_email.get_json()["errors"]["email"][0]


def test_invalid_households_are_refused_field_by_field_in_french(accounts):
    body = household("pas-une-adresse", guardians=[], children=[
        {"first_name": " ", "last_name": "X", "birth_date": "2030-01-01"}])
    body["address"]["postal_code"] = "7710"
    response = accounts.post(FAMILIES, AGENT, json=body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors["email"] == ["Adresse e-mail invalide."]
    assert errors["guardians"] == ["Entre 1 et 4 responsables."]
    assert errors["children.0.first_name"] == ["Ce champ ne peut pas être vide."]
    assert errors["children.0.birth_date"] == [
        "La date de naissance ne peut pas être dans le futur."]
    assert errors["address.postal_code"] == ["Code postal à 5 chiffres."]
    missing = accounts.post(FAMILIES, AGENT, json={"email": "a@b.fr", "intrus": 1})
    assert missing.get_json()["errors"]["family_name"] == ["Ce champ est obligatoire."]
    assert missing.get_json()["errors"]["intrus"] == ["Champ inconnu."]


def test_no_guardian_paying_means_the_first_pays(accounts):
    body = household(guardians=[{"first_name": "A", "last_name": "B"},
                                {"first_name": "C", "last_name": "B"}])
    created = accounts.post(FAMILIES, AGENT, json=body).get_json()
    assert [g["pays"] for g in created["guardians"]] == [True, False]


def test_only_agents_of_the_commune_create_households(accounts):
    assert accounts.post(FAMILIES, None, json=household()).status_code == 401
    other = accounts.post(FAMILIES, DAMMARTIN_AGENT, json=household())
    assert other.status_code == 403
    assert accounts.post(FAMILIES, PARENT, json=household()).status_code == 403
    assert accounts.post("/api/accounts/communes/nowhere/families", PARENT,
                         json=household()).status_code == 404
    assert accounts.post(FAMILIES, PLAIN_AGENT, json=household()).status_code == 201
    assert accounts.events("accounts.family.invited")[-1]["data"]["email"] == \
        "martin@exemple.fr"


def test_the_list_searches_sorts_and_pages(accounts):
    create_household(accounts, "durand@exemple.fr", family_name="Durand",
                     children=[{"first_name": "Éloïse", "last_name": "Durand",
                                "birth_date": "2016-02-02"}])
    other = create_household(accounts, "abel@exemple.fr", family_name="Abel")
    create_household(accounts, "elsewhere@exemple.fr", slug="dammartin", as_=DAMMARTIN_AGENT,
                     family_name="AILLEURS")
    page = accounts.get(FAMILIES, AGENT).get_json()
    assert [i["family_name"] for i in page["items"]] == ["Abel", "CASSEREAU", "Durand"]
    assert page["next"] is None
    casse = page["items"][1]
    assert casse == {"id": casse["id"], "family_name": "CASSEREAU", "family_code": "JV7CASSE",
                     "email": "parent@famille.test", "status": "active", "children_count": 2,
                     "membership_status": "active"}

    def names(q):
        response = accounts.get(FAMILIES, AGENT, query_string={"q": q})
        assert response.status_code == 200
        return [i["family_name"] for i in response.get_json()["items"]]

    assert names("cassé") == ["CASSEREAU"]
    assert names("ABEL@") == ["Abel"]
    assert names(other["family_code"].lower()) == ["Abel"]
    assert names("léa") == ["CASSEREAU"]
    assert names("éloïse") == ["Durand"]
    assert names("%") == []
    assert names("ailleurs") == []

    for i in range(55):
        create_household(accounts, f"p{i:02d}@exemple.fr", family_name=f"PAGE {i:02d}")
    first = accounts.get(FAMILIES, AGENT).get_json()
    assert len(first["items"]) == 50 and first["next"]
    second = accounts.get(FAMILIES, AGENT, query_string={"cursor": first["next"]}).get_json()
    assert len(second["items"]) == 58 - 50 and second["next"] is None
    assert not {i["id"] for i in first["items"]} & {i["id"] for i in second["items"]}
    bad = accounts.get(FAMILIES, AGENT, query_string={"cursor": "garbage"})
    assert bad.status_code == 422
    assert bad.get_json()["errors"]["cursor"] == ["Curseur de pagination invalide."]


def test_the_list_is_for_agents_of_the_commune(accounts):
    assert accounts.get(FAMILIES).status_code == 401
    assert accounts.get(FAMILIES, DAMMARTIN_AGENT).status_code == 403
    assert accounts.get(FAMILIES, PARENT).status_code == 403


def test_an_agent_reads_a_household_of_their_commune_only(accounts):
    created = create_household(accounts)
    path = f"{FAMILIES}/{created['id']}"
    detail = accounts.get(path, AGENT).get_json()
    assert detail["family_code"] == created["family_code"]
    assert detail["status"] == "invited" and detail["invited_at"]
    assert detail["children"][0]["birth_date"] == "2018-05-02"
    # The household of another commune does not exist here...
    elsewhere = create_household(accounts, "b@exemple.fr", slug="dammartin",
                                 as_=DAMMARTIN_AGENT)
    assert accounts.get(f"{FAMILIES}/{elsewhere['id']}", AGENT).status_code == 404
    assert accounts.get(f"{FAMILIES}/not-an-id", AGENT).status_code == 404
    # ... an agent of another commune is refused, a parent sees no one's household here.
    assert accounts.get(path, DAMMARTIN_AGENT).status_code == 403
    assert accounts.get(path, PARENT).status_code == 404
    assert accounts.get(f"{FAMILIES}/{PARENT.family_id}", PARENT).status_code == 404
    assert accounts.get(path).status_code == 401


def test_a_new_invitation_replaces_the_previous_link(accounts):
    created = create_household(accounts)
    path = f"{FAMILIES}/{created['id']}/invitation"
    response = accounts.post(path, AGENT, json={})
    assert response.status_code == 202
    expires = date.fromisoformat(response.get_json()["expires_at"][:10])
    assert (expires - date.today()).days == 7
    fresh = token_of(accounts.last("accounts.family.invited")["data"]["activation_url"])
    assert fresh != created["token"]
    old = accounts.get(f"/api/accounts/activation/{created['token']}")
    assert old.status_code == 410 and old.get_json()["status"] == "expired"
    assert accounts.get(f"/api/accounts/activation/{fresh}").status_code == 200
    assert accounts.post(path, DAMMARTIN_AGENT, json={}).status_code == 403
    assert accounts.post(path, PARENT, json={}).status_code == 404


def test_an_active_account_is_not_invited_again(accounts):
    response = accounts.post(f"{FAMILIES}/{PARENT.family_id}/invitation", AGENT, json={})
    assert response.status_code == 409
    assert "déjà activé" in response.get_json()["detail"]


def test_the_activation_lifetime_is_configurable(tmp_path):
    from tests.accounts.support import build

    accounts = build(tmp_path, f"sqlite:///{tmp_path}/ttl.db", ACTIVATION_TTL_DAYS="2")
    try:
        created = create_household(accounts)
        info = accounts.get(f"/api/accounts/activation/{created['token']}").get_json()
        assert (date.fromisoformat(info["expires_at"][:10]) - date.today()).days == 2
    finally:
        accounts.db.dispose()
