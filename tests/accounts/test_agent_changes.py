"""An agent applies the changes that need a proof: address, allergies, children's details."""

from __future__ import annotations

from tests.accounts.support import (
    AGENT,
    CASSEREAU,
    DAMMARTIN_AGENT,
    PARENT,
    create_household,
)

PATH = f"/api/accounts/communes/jolieville/families/{CASSEREAU}"
NEW_ADDRESS = {"line1": "12 avenue des Tilleuls", "line2": None, "postal_code": "77100",
               "city": "JolieVille"}


def test_an_agent_changes_the_address_and_an_allergy(accounts):
    before = accounts.get(PATH, AGENT).get_json()
    hugo = next(c for c in before["children"] if c["first_name"] == "Hugo")
    answer = accounts.patch(PATH, AGENT, json={
        "address": NEW_ADDRESS,
        "children": [{"id": hugo["id"], "allergies": True,
                      "allergy_notes": "Arachide : PAI signé le 2 novembre."}],
        "version": before["version"]})
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["address"]["line1"] == "12 avenue des Tilleuls"
    event = accounts.last("accounts.family.updated")
    assert event["data"]["version"] == before["version"] + 1
    assert event["data"]["address"]["line1"] == "12 avenue des Tilleuls"
    assert next(c for c in event["data"]["children"] if c["id"] == hugo["id"])["allergies"]
    # The parent sees it on the profile.
    mine = accounts.get("/api/accounts/me/family", PARENT).get_json()
    assert mine["address"]["line1"] == "12 avenue des Tilleuls"


def test_an_agent_adds_a_child(accounts):
    answer = accounts.patch(PATH, AGENT, json={"children": [
        {"first_name": "Zoé", "last_name": "CASSEREAU", "birth_date": "2022-01-15"}]})
    assert answer.status_code == 200
    assert "Zoé" in [c["first_name"] for c in answer.get_json()["children"]]
    incomplete = accounts.patch(PATH, AGENT, json={"children": [{"first_name": "Sans nom"}]})
    assert incomplete.status_code == 422
    assert "children.0.last_name" in incomplete.get_json()["errors"]


def test_stale_version_and_foreign_child_are_refused(accounts):
    stale = accounts.patch(PATH, AGENT, json={"address": NEW_ADDRESS, "version": 0})
    assert stale.status_code == 409
    other = create_household(accounts)
    foreign = accounts.patch(PATH, AGENT, json={"children": [
        {"id": other["id"], "allergies": True}]})
    assert foreign.status_code == 422


def test_only_agents_of_the_commune(accounts):
    assert accounts.patch(PATH, PARENT, json={"address": NEW_ADDRESS}).status_code == 404
    assert accounts.patch(PATH, DAMMARTIN_AGENT,
                          json={"address": NEW_ADDRESS}).status_code == 403
    assert accounts.patch(PATH, None, json={"address": NEW_ADDRESS}).status_code == 401
