"""Request categories: the contract's shape, the demo seed, agents creating and editing them."""

from __future__ import annotations

from services.requests.seed import seed
from tests.requests.support import (
    ABSENCE,
    AGENT,
    ALLERGY,
    DAMMARTIN_AGENT,
    OTHER_PARENT,
    PARENT,
    PICKUP,
    base,
    submitted,
)


def new_category(**changes):
    body = {
        "label": "Inscription à l'étude surveillée",
        "description": "Demander une place à l'étude du soir.",
        "fields": [
            {"name": "child", "label": "Enfant", "type": "child", "required": True},
            {"name": "days", "label": "Jours", "type": "choice", "required": True,
             "options": ["Lundi", {"value": "mardi", "label": "Mardi"}],
             "help": "Un jour par demande."},
            {"name": "transport", "label": "Rentre seul", "type": "yes_no"},
            {"name": "contact", "label": "E-mail de contact", "type": "email"},
        ],
        "required_attachments": [
            {"name": "attestation", "label": "Attestation employeur", "required": False,
             "accepted_types": ["pdf"], "max_size": 2 * 1024 * 1024},
        ],
    }
    body.update(changes)
    return body


def test_the_list_has_the_contracts_fields(requests_app):
    response = requests_app.get(f"{base()}/categories", PARENT)
    assert response.status_code == 200
    body = response.get_json()
    assert body["next"] is None
    labels = [c["label"] for c in body["items"]]
    assert labels == ["Autorisation de récupération d'un enfant", "Changement d'adresse",
                      "Allergie alimentaire", "Absence justifiée"]
    pickup = next(c for c in body["items"] if c["id"] == PICKUP)
    assert {"id", "label", "fields", "required_attachments", "description", "kind"} <= set(pickup)
    for field in pickup["fields"]:
        assert {"name", "label", "type", "required", "help", "options"} <= set(field)
    [document] = pickup["required_attachments"]
    assert document == {
        "name": "identity_document", "label": "Pièce d'identité de la personne autorisée",
        "required": True, "accepted_types": ["pdf", "jpeg", "png"], "max_size": 5 * 1024 * 1024,
        "max_size_label": "5 Mo", "max_files": 1,
        "accept": ".pdf,.jpg,.jpeg,.jfif,.png,application/pdf,image/jpeg,image/png",
        "help": "Carte d'identité, passeport ou permis de conduire, recto verso."}
    kinds = {c["label"]: c["kind"] for c in body["items"]}
    assert kinds["Changement d'adresse"] == "address_change"
    assert kinds["Allergie alimentaire"] == "allergy"
    assert kinds["Absence justifiée"] == "absence_justification"
    absence = next(c for c in body["items"] if c["id"] == ABSENCE)
    assert absence["required_attachments"][0]["required"] is False
    assert absence["statuses"] == ["submitted", "in_progress", "waiting_for_family", "accepted",
                                   "refused", "closed"]
    assert absence["transitions"]["in_progress"] == ["waiting_for_family", "accepted", "refused"]


def test_the_seed_is_idempotent_and_covers_both_communes(requests_app):
    assert seed(requests_app.db) == []
    dammartin = requests_app.get(f"{base('dammartin')}/categories", PARENT).get_json()
    assert len(dammartin["items"]) == 4
    assert {c["id"] for c in dammartin["items"]}.isdisjoint({PICKUP, ABSENCE})


def test_an_agent_creates_then_edits_a_category(requests_app):
    created = requests_app.post(f"{base()}/categories", AGENT, json=new_category())
    assert created.status_code == 201, created.get_json()
    category = created.get_json()
    assert category["version"] == 1
    assert category["fields"][1]["options"] == [{"value": "Lundi", "label": "Lundi"},
                                                {"value": "mardi", "label": "Mardi"}]
    assert category["required_attachments"][0]["max_size_label"] == "2 Mo"
    assert category["statuses"][0] == "submitted"
    listed = requests_app.get(f"{base()}/categories", PARENT).get_json()["items"]
    assert category["id"] in [c["id"] for c in listed]

    changed = requests_app.patch(f"{base()}/categories/{category['id']}", AGENT,
                                 json={"active": False, "version": 1})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["version"] == 2
    listed = requests_app.get(f"{base()}/categories", PARENT).get_json()["items"]
    assert category["id"] not in [c["id"] for c in listed]
    every = requests_app.get(f"{base()}/categories?all=true", AGENT).get_json()["items"]
    assert category["id"] in [c["id"] for c in every]
    assert requests_app.get(f"{base()}/categories/{category['id']}", PARENT).status_code == 404

    stale = requests_app.patch(f"{base()}/categories/{category['id']}", AGENT,
                               json={"label": "Autre", "version": 1})
    assert stale.status_code == 409


def test_a_category_is_checked_with_french_messages(requests_app):
    response = requests_app.post(f"{base()}/categories", AGENT, json=new_category(
        kind="absence_justification",
        fields=[{"name": "child", "label": "Enfant", "type": "chld"},
                {"name": "x", "label": "Choix", "type": "choice"}],
        transitions={"submitted": ["accepted"], "accepted": ["submitted", "elsewhere"]}))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert any("Type" in m for m in errors["fields.0.type"])

    response = requests_app.post(f"{base()}/categories", AGENT, json=new_category(
        kind="absence_justification",
        fields=[{"name": "child", "label": "Enfant", "type": "child", "required": True},
                {"name": "x", "label": "Choix", "type": "choice"}],
        statuses=["submitted", "waiting_for_family", "accepted"],
        transitions={"submitted": ["accepted", "waiting_for_family"]}))
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors["fields.1.options"] == ["Un champ « choix » doit proposer au moins une option."]
    assert any("« from »" in m for m in errors["fields"])
    assert any("revenir à « en cours »" in m for m in errors["transitions.waiting_for_family"])

    duplicate = requests_app.post(f"{base()}/categories", AGENT,
                                  json=new_category(label="Absence justifiée"))
    assert duplicate.status_code == 409
    assert duplicate.get_json()["errors"]["label"]

    too_big = requests_app.post(f"{base()}/categories", AGENT, json=new_category(
        required_attachments=[{"name": "scan", "label": "Scan", "max_size": 200 * 1024 * 1024}]))
    assert too_big.status_code == 422
    assert too_big.get_json()["errors"]["required_attachments.0.max_size"] == [
        "Au plus 25 Mo (la limite d'un envoi)."]


def test_only_the_communes_agents_manage_categories(requests_app):
    assert requests_app.post(f"{base()}/categories", PARENT,
                             json=new_category()).status_code == 403
    other = requests_app.post(f"{base()}/categories", DAMMARTIN_AGENT, json=new_category())
    assert other.status_code == 403
    assert other.get_json()["detail"] == "Vous n'êtes pas agent de cette commune."
    assert requests_app.patch(f"{base()}/categories/{PICKUP}", DAMMARTIN_AGENT,
                              json={"label": "x"}).status_code == 403
    # A category of jolieville is not found through dammartin.
    assert requests_app.patch(f"{base('dammartin')}/categories/{PICKUP}", DAMMARTIN_AGENT,
                              json={"label": "x"}).status_code == 404
    # A parent who does not belong to dammartin does not learn it exists.
    assert requests_app.get(f"{base('dammartin')}/categories",
                            OTHER_PARENT).status_code == 404
    assert requests_app.get(f"{base()}/categories").status_code == 401


def test_a_status_in_use_cannot_be_removed(requests_app):
    request = submitted(requests_app)
    moved = requests_app.post(f"{base()}/requests/{request['id']}/transition", AGENT,
                              json={"status": "in_progress"})
    assert moved.status_code == 200
    shorter = {"statuses": ["submitted", "accepted", "refused", "closed"],
               "transitions": {"submitted": ["accepted", "refused"], "accepted": ["closed"],
                               "refused": ["closed"]}}
    response = requests_app.patch(f"{base()}/categories/{PICKUP}", AGENT, json=shorter)
    assert response.status_code == 409
    assert "« en cours »" in response.get_json()["detail"]
    response = requests_app.patch(f"{base()}/categories/{ALLERGY}", AGENT, json=shorter)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["transitions"] == shorter["transitions"] | {"closed": []}
    without_first = requests_app.patch(f"{base()}/categories/{ALLERGY}", AGENT,
                                       json={"statuses": ["accepted", "closed"]})
    assert without_first.status_code == 422
    assert "« nouvelle »" in without_first.get_json()["errors"]["statuses"][0]


def test_the_openapi_document_lists_the_routes(requests_app):
    spec = requests_app.get("/api/requests/openapi.json").get_json()
    paths = spec["paths"]
    assert "/api/requests/communes/{slug}/requests" in paths
    assert "multipart/form-data" in paths["/api/requests/communes/{slug}/requests"]["post"][
        "requestBody"]["content"]
    assert "/api/requests/communes/{slug}/requests/{request_id}/transition" in paths
