"""Joining another commune with the family code it gave the household (see the module
docstring of services/accounts/operations.py for the rule)."""

from __future__ import annotations

from sqlalchemy import func, select

from services.accounts.models import Account
from tests.accounts.support import (
    AGENT,
    DAMMARTIN,
    DAMMARTIN_AGENT,
    JOLIEVILLE,
    PARENT,
    STRONG,
    activate,
    create_household,
    household,
    login_claims,
    parent_principal,
)

JOIN = "/api/accounts/me/communes"
DAMMARTIN_FAMILIES = "/api/accounts/communes/dammartin/families"


def active_martin(accounts):
    created = create_household(accounts)
    assert activate(accounts, created["token"]).status_code == 200
    return created, parent_principal(login_claims(accounts, "martin@exemple.fr", STRONG))


def offer(accounts, email="martin@exemple.fr"):
    response = accounts.post(DAMMARTIN_FAMILIES, DAMMARTIN_AGENT,
                             json=household(email, family_name="Martin (Dammartin)"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_household_joins_a_second_commune_with_its_code(accounts):
    created, martin = active_martin(accounts)
    accounts_before = _count_accounts(accounts)
    events_before = len(accounts.events())

    proposal = offer(accounts)
    # The same household, no second account, nothing published until the family joins.
    assert proposal["id"] == created["id"]
    assert proposal["membership_status"] == "pending"
    assert proposal["status"] == "invited"
    assert proposal["family_code"] != created["family_code"]
    assert proposal["guardians"] == [] and proposal["children"] == []
    assert _count_accounts(accounts) == accounts_before
    assert len(accounts.events()) == events_before
    listed = accounts.get(DAMMARTIN_FAMILIES, DAMMARTIN_AGENT).get_json()["items"]
    assert [(i["id"], i["membership_status"]) for i in listed
            if i["id"] == created["id"]] == [(created["id"], "pending")]

    code = proposal["family_code"]
    typed = f" {code[:4].lower()}-{code[4:].lower()} "
    joined = accounts.post(JOIN, martin, json={"commune": "dammartin", "family_code": typed})
    assert joined.status_code == 201, joined.get_json()
    assert joined.headers["X-Portail-Principal-Changed"] == "1"
    assert joined.get_json()["slug"] == "dammartin"
    assert joined.get_json()["family_code"] == code
    assert joined.get_json()["name"] == "Dammartin-sur-Tigeaux"

    membership = accounts.last("accounts.membership.created")
    assert membership["commune_id"] == DAMMARTIN
    assert membership["data"] == {"family_id": created["id"], "commune_id": DAMMARTIN,
                                  "family_code": code, "commune_slug": "dammartin"}
    snapshot = accounts.last("accounts.family.updated")["data"]
    assert snapshot["version"] == 2
    assert [c["slug"] for c in snapshot["communes"]] == ["jolieville", "dammartin"]

    claims = login_claims(accounts, "martin@exemple.fr", STRONG)
    assert claims["communes"]["dammartin"] == {"id": DAMMARTIN, "name": "Dammartin-sur-Tigeaux",
                                               "roles": ["parent"]}
    assert claims["communes"]["jolieville"]["id"] == JOLIEVILLE
    mine = accounts.get(JOIN, martin).get_json()["items"]
    assert [i["slug"] for i in mine] == ["jolieville", "dammartin"]
    detail = accounts.get(f"{DAMMARTIN_FAMILIES}/{created['id']}", DAMMARTIN_AGENT).get_json()
    assert detail["membership_status"] == "active" and detail["status"] == "active"
    assert detail["family_name"] == "MARTIN"
    assert len(detail["children"]) == 2

    # Single use: the code is spent, the household is a member.
    again = accounts.post(JOIN, martin, json={"commune": "dammartin", "family_code": code})
    assert again.status_code == 409
    assert "déjà partie" in again.get_json()["detail"]


def test_a_wrong_code_is_refused_in_french(accounts):
    _, martin = active_martin(accounts)
    offer(accounts)
    for body, field in [
        ({"commune": "dammartin", "family_code": "ZZZZZZZZ"}, "family_code"),
        ({"commune": "dammartin", "family_code": "DM7CASSE"}, "family_code"),  # someone else's
        ({"commune": "jolieville", "family_code": "JV7CASSE"}, "family_code"),
        ({"commune": "nulle-part", "family_code": "ZZZZZZZZ"}, "commune"),
    ]:
        response = accounts.post(JOIN, martin, json=body)
        if body["commune"] == "jolieville":
            assert response.status_code == 409  # already a member there
            continue
        assert response.status_code == 422, body
        assert response.get_json()["errors"][field][0].startswith("Ce")
    missing = accounts.post(JOIN, martin, json={"commune": "dammartin"})
    assert missing.get_json()["errors"] == {"family_code": ["Ce champ est obligatoire."]}
    assert len(accounts.events("accounts.membership.created")) == 3  # the seed's two, Martin's


def test_the_code_is_bound_to_the_account_it_was_made_for(accounts):
    _, martin = active_martin(accounts)
    proposal = offer(accounts)
    stolen = accounts.post(JOIN, PARENT, json={"commune": "dammartin",
                                               "family_code": proposal["family_code"]})
    assert stolen.status_code == 409  # CASSEREAU already belongs to Dammartin
    other = create_household(accounts, "autre@exemple.fr")
    activate(accounts, other["token"])
    stranger = parent_principal(login_claims(accounts, "autre@exemple.fr", STRONG))
    response = accounts.post(JOIN, stranger, json={"commune": "dammartin",
                                                  "family_code": proposal["family_code"]})
    assert response.status_code == 422
    joined = accounts.post(JOIN, martin, json={"commune": "dammartin",
                                               "family_code": proposal["family_code"]})
    assert joined.status_code == 201


def test_offers_and_duplicates_answer_conflicts(accounts):
    active_martin(accounts)
    offer(accounts)
    twice = accounts.post(DAMMARTIN_FAMILIES, DAMMARTIN_AGENT, json=household())
    assert twice.status_code == 409
    assert "rejoindre" in twice.get_json()["detail"]
    member = accounts.post("/api/accounts/communes/jolieville/families", AGENT,
                           json=household())
    assert member.status_code == 409
    assert "déjà inscrit" in member.get_json()["detail"]


def test_an_offer_is_not_re_invited_but_its_code_is_recalled(accounts):
    created, _ = active_martin(accounts)
    proposal = offer(accounts)
    response = accounts.post(f"{DAMMARTIN_FAMILIES}/{created['id']}/invitation",
                             DAMMARTIN_AGENT, json={})
    assert response.status_code == 409
    assert proposal["family_code"] in response.get_json()["detail"]


def test_an_invited_household_may_be_offered_too(accounts):
    created = create_household(accounts)
    proposal = offer(accounts)
    assert proposal["id"] == created["id"]
    activate(accounts, created["token"])
    martin = parent_principal(login_claims(accounts, "martin@exemple.fr", STRONG))
    joined = accounts.post(JOIN, martin, json={"commune": "dammartin",
                                               "family_code": proposal["family_code"]})
    assert joined.status_code == 201


def test_only_parents_join(accounts):
    body = {"commune": "dammartin", "family_code": "ZZZZZZZZ"}
    assert accounts.post(JOIN, None, json=body).status_code == 401
    assert accounts.post(JOIN, AGENT, json=body).status_code == 403


def _count_accounts(accounts) -> int:
    with accounts.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Account))
