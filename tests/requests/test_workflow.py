"""Following and processing requests: history, queue, transitions, questions and replies,
assignment, downloads, the immutable history and the events other services act on."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.requests.support import (
    ABSENCE,
    ADMIN,
    AGENT,
    ALLERGY,
    COLLEAGUE,
    DAMMARTIN_AGENT,
    FAMILY,
    HUGO,
    LEA,
    OTHER_PARENT,
    PARENT,
    PICKUP,
    RECIPIENTS,
    absence_form,
    base,
    file_part,
    jpeg,
    pdf,
    pickup_form,
    png,
    submitted,
)


def transition(requests_app, request_id, status, message=None, as_=AGENT):
    return requests_app.post(f"{base()}/requests/{request_id}/transition", as_,
                             json={"status": status, "message": message})


def reply(requests_app, request_id, as_=PARENT, **data):
    return requests_app.post(f"{base()}/requests/{request_id}/messages", as_, data=data,
                             content_type="multipart/form-data")


# reading -----------------------------------------------------------------------------------
def test_a_household_sees_its_history_newest_first(requests_app):
    first = submitted(requests_app)
    second = submitted(requests_app, absence_form())
    other = submitted(requests_app, absence_form(child="c0000000-0000-4000-8000-0000000000aa"),
                      as_=OTHER_PARENT)
    listed = requests_app.get(f"{base()}/requests", PARENT).get_json()
    assert [r["id"] for r in listed["items"]] == [second["id"], first["id"]]
    assert listed["next"] is None
    assert other["id"] not in [r["id"] for r in listed["items"]]
    page = requests_app.get(f"{base()}/requests?limit=1", PARENT).get_json()
    rest = requests_app.get(f"{base()}/requests?limit=1&cursor={page['next']}", PARENT).get_json()
    assert [r["id"] for r in page["items"] + rest["items"]] == [second["id"], first["id"]]
    assert rest["next"] is None
    item = listed["items"][0]
    assert item["status_label"] == "nouvelle"
    assert item["category"]["label"] == "Absence justifiée"
    assert item["assigned_to"] is None and item["family_name"] is None


def test_another_households_request_is_not_found(requests_app):
    request = submitted(requests_app)
    document = request["documents"][0]
    assert requests_app.get(f"{base()}/requests/{request['id']}",
                            OTHER_PARENT).status_code == 404
    assert requests_app.get(document["url"], OTHER_PARENT).status_code == 404
    assert reply(requests_app, request["id"], OTHER_PARENT, body="Moi aussi").status_code == 404
    assert requests_app.get(f"{base()}/requests/not-an-id", PARENT).status_code == 404
    assert requests_app.get(f"{base('dammartin')}/requests/{request['id']}",
                            PARENT).status_code == 404


def test_an_agent_of_another_commune_is_refused(requests_app):
    request = submitted(requests_app)
    for response in (
            requests_app.get(f"{base()}/requests", DAMMARTIN_AGENT),
            requests_app.get(f"{base()}/requests/{request['id']}", DAMMARTIN_AGENT),
            requests_app.get(request["documents"][0]["url"], DAMMARTIN_AGENT),
            transition(requests_app, request["id"], "in_progress", as_=DAMMARTIN_AGENT),
            requests_app.post(f"{base()}/requests/{request['id']}/assign", DAMMARTIN_AGENT,
                              json={"agent_account_id": DAMMARTIN_AGENT.account_id})):
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["detail"] == "Vous n'êtes pas agent de cette commune."
    # Through their own commune, the request is simply not there.
    assert requests_app.get(f"{base('dammartin')}/requests/{request['id']}",
                            DAMMARTIN_AGENT).status_code == 404


def test_parents_cannot_act_as_agents(requests_app):
    request = submitted(requests_app)
    assert transition(requests_app, request["id"], "in_progress", as_=PARENT).status_code == 403
    assert requests_app.post(f"{base()}/requests/{request['id']}/assign", PARENT,
                             json={"agent_account_id": None}).status_code == 403
    assert requests_app.get(f"{base()}/agents", PARENT).status_code == 403


def test_the_agents_queue_is_oldest_first_and_filtered(requests_app):
    first = submitted(requests_app)
    second = submitted(requests_app, absence_form())
    third = submitted(requests_app, absence_form(child=LEA))
    transition(requests_app, second["id"], "in_progress")
    queue = requests_app.get(f"{base()}/requests", AGENT).get_json()
    assert [r["id"] for r in queue["items"]] == [first["id"], second["id"], third["id"]]
    assert queue["items"][0]["family_name"] == "CASSEREAU"
    new = requests_app.get(f"{base()}/requests?status=submitted", AGENT).get_json()
    assert [r["id"] for r in new["items"]] == [first["id"], third["id"]]
    both = requests_app.get(f"{base()}/requests?status=submitted,in_progress&category={ABSENCE}",
                            AGENT).get_json()
    assert [r["id"] for r in both["items"]] == [second["id"], third["id"]]
    page = requests_app.get(f"{base()}/requests?limit=2", AGENT).get_json()
    assert [r["id"] for r in page["items"]] == [first["id"], second["id"]]
    rest = requests_app.get(f"{base()}/requests?limit=2&cursor={page['next']}", AGENT).get_json()
    assert [r["id"] for r in rest["items"]] == [third["id"]] and rest["next"] is None
    wrong = requests_app.get(f"{base()}/requests?status=ouverte", AGENT)
    assert wrong.status_code == 422
    assert requests_app.get(f"{base()}/requests?cursor=xyz", AGENT).status_code == 422


def test_an_agent_opens_a_request_with_the_household(requests_app):
    request = submitted(requests_app)
    opened = requests_app.get(f"{base()}/requests/{request['id']}", AGENT).get_json()
    household = opened["household"]
    assert household["family_id"] == FAMILY
    assert household["family_name"] == "CASSEREAU"
    assert household["family_code"] == "JO7CASSE"
    assert [c["first_name"] for c in household["children"]] == ["Léa", "Hugo"]
    assert {g["email"] for g in household["guardians"]} == set(RECIPIENTS)
    assert opened["allowed_transitions"] == ["in_progress", "waiting_for_family"]
    assert opened["history"][0]["actor"]["email"] == "parent@famille.test"


# downloads -----------------------------------------------------------------------------------
def test_a_download_is_an_attachment_of_the_right_type(requests_app):
    content = pdf("autorisation")
    request = submitted(requests_app, pickup_form(identity_document=file_part(
        content, "Pièce d'identité « Jeanne ».pdf", "application/pdf")))
    url = request["documents"][0]["url"]
    for who in (PARENT, AGENT, COLLEAGUE, ADMIN):
        response = requests_app.get(url, who)
        assert response.status_code == 200
        assert response.get_data() == content
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(content))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Piece d_identite _ Jeanne _.pdf\"; "
        "filename*=UTF-8''Pi%C3%A8ce%20d%27identit%C3%A9%20%C2%AB%20Jeanne%20%C2%BB.pdf")
    assert requests_app.get(url).status_code == 401
    missing = url.rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    assert requests_app.get(missing, PARENT).status_code == 404


def test_a_png_is_served_as_a_png_whatever_it_was_called(requests_app):
    request = submitted(requests_app, pickup_form(
        identity_document=file_part(png(), "scan.pdf", "application/pdf")))
    response = requests_app.get(request["documents"][0]["url"], AGENT)
    assert response.headers["Content-Type"] == "image/png"
    assert 'filename="scan.png"' in response.headers["Content-Disposition"]


# transitions ---------------------------------------------------------------------------------
def test_the_whole_journey_question_reply_acceptance(requests_app):
    request = submitted(requests_app)
    rid = request["id"]
    moved = transition(requests_app, rid, "in_progress")
    assert moved.status_code == 200
    asked = transition(requests_app, rid, "waiting_for_family",
                       "Merci d'envoyer le verso de la pièce d'identité.")
    assert asked.status_code == 200
    assert asked.get_json()["status_label"] == "en attente de votre réponse"
    seen = requests_app.get(f"{base()}/requests/{rid}", PARENT).get_json()
    assert seen["waiting_for_family"] and seen["can_reply"]
    assert seen["messages"][-1]["body"] == "Merci d'envoyer le verso de la pièce d'identité."
    assert seen["messages"][-1]["author"] == {"kind": "agent", "account_id": None,
                                              "email": None}

    answered = reply(requests_app, rid, body="Voici le verso.",
                     identity_document=file_part(jpeg(), "verso.jpg", "image/jpeg"),
                     documents=file_part(png(), "complement.png", "image/png"))
    assert answered.status_code == 201, answered.get_json()
    body = answered.get_json()
    assert body["status"] == "in_progress"
    assert len(body["documents"]) == 3
    added = [d for d in body["documents"] if d["message_id"]]
    assert {d["name"] for d in added} == {"identity_document", None}
    assert body["messages"][-1]["document_ids"] == [d["id"] for d in added]

    accepted = transition(requests_app, rid, "accepted", "Autorisation enregistrée.")
    assert accepted.status_code == 200
    closed = transition(requests_app, rid, "closed")
    assert closed.status_code == 200
    final = requests_app.get(f"{base()}/requests/{rid}", PARENT).get_json()
    assert final["can_reply"] is False
    assert [(h["action"], h["new_status"]) for h in final["history"]] == [
        ("submitted", "submitted"), ("status_changed", "in_progress"),
        ("status_changed", "waiting_for_family"), ("message", None),
        ("status_changed", "in_progress"), ("status_changed", "accepted"),
        ("status_changed", "closed")]
    assert final["history"][4]["actor"]["kind"] == "family"
    assert reply(requests_app, rid, body="Merci !").status_code == 409

    changes = requests_app.events("requests.request.status_changed")
    assert [(e["data"]["old_status"], e["data"]["new_status"]) for e in changes] == [
        ("submitted", "in_progress"), ("in_progress", "waiting_for_family"),
        ("waiting_for_family", "in_progress"), ("in_progress", "accepted"),
        ("accepted", "closed")]
    assert changes[1]["data"]["agent_message"] == ("Merci d'envoyer le verso de la pièce "
                                                   "d'identité.")
    assert changes[1]["data"]["recipients"] == RECIPIENTS
    assert all(e["data"]["category_kind"] is None and e["data"]["payload"] is None
               for e in changes)


def test_a_transition_the_category_does_not_allow_is_refused(requests_app):
    request = submitted(requests_app)
    response = transition(requests_app, request["id"], "accepted", "Oui")
    assert response.status_code == 409
    detail = response.get_json()["detail"]
    assert detail == ("Impossible de passer du statut « nouvelle » au statut « acceptée » pour "
                      "cette catégorie. Depuis « nouvelle », la demande peut passer à : "
                      "« en cours » ou « en attente de votre réponse ».")
    assert response.get_json()["errors"]["status"] == [detail]
    for status in ("in_progress", "refused"):
        assert transition(requests_app, request["id"], status, "Motif").status_code == 200
    closed_now = transition(requests_app, request["id"], "closed")
    assert closed_now.status_code == 200
    again = transition(requests_app, request["id"], "in_progress")
    assert again.status_code == 409
    assert "« clôturée » ne change plus de statut" in again.get_json()["detail"]
    assert transition(requests_app, request["id"], "ouverte").status_code == 422
    assert len(requests_app.events("requests.request.status_changed")) == 3


def test_a_category_with_its_own_transitions(requests_app):
    requests_app.patch(f"{base()}/categories/{PICKUP}", AGENT, json={
        "statuses": ["submitted", "accepted", "refused"],
        "transitions": {"submitted": ["accepted", "refused"]}})
    request = submitted(requests_app)
    response = transition(requests_app, request["id"], "in_progress")
    assert response.status_code == 409
    assert "« acceptée » ou « refusée »" in response.get_json()["detail"]
    assert transition(requests_app, request["id"], "accepted").status_code == 200


def test_a_question_and_a_refusal_need_a_message(requests_app):
    request = submitted(requests_app)
    response = transition(requests_app, request["id"], "waiting_for_family", "  ")
    assert response.status_code == 422
    assert response.get_json()["errors"]["message"] == [
        "Écrivez à la famille ce qu'il manque ou la question à laquelle répondre."]
    transition(requests_app, request["id"], "in_progress")
    response = transition(requests_app, request["id"], "refused")
    assert response.get_json()["errors"]["message"] == ["Indiquez à la famille le motif du refus."]


def test_a_reply_is_checked_like_a_submission(requests_app):
    request = submitted(requests_app)
    transition(requests_app, request["id"], "waiting_for_family", "Le verso ?")
    before = requests_app.all_files()
    empty = reply(requests_app, request["id"])
    assert empty.status_code == 422
    assert empty.get_json()["errors"] == {"body": ["Écrivez un message ou joignez un document."]}
    wrong = reply(requests_app, request["id"], body="Voici",
                  documents=file_part(b"<html></html>", "verso.pdf", "application/pdf"),
                  autre=file_part(pdf(), "x.pdf"))
    assert wrong.status_code == 422
    assert wrong.get_json()["errors"] == {
        "documents": ["Le fichier doit être un PDF, une image JPEG, PNG ou HEIC."],
        "autre": ["Ce document n'est pas demandé pour cette catégorie."]}
    assert requests_app.all_files() == before
    still = requests_app.get(f"{base()}/requests/{request['id']}", PARENT).get_json()
    assert still["status"] == "waiting_for_family" and len(still["messages"]) == 1
    # A double click on "Envoyer" sends one message.
    first = reply(requests_app, request["id"], body="Le voici.")
    second = reply(requests_app, request["id"], body="Le voici.")
    assert first.status_code == second.status_code == 201
    assert len(second.get_json()["messages"]) == 2


def test_agents_write_to_the_family_too(requests_app):
    request = submitted(requests_app)
    response = requests_app.post(f"{base()}/requests/{request['id']}/messages", AGENT,
                                 json={"body": "Nous traitons votre demande."})
    assert response.status_code == 201
    assert response.get_json()["status"] == "submitted"
    seen = requests_app.get(f"{base()}/requests/{request['id']}", PARENT).get_json()
    assert seen["messages"][0]["body"] == "Nous traitons votre demande."


# assignment ----------------------------------------------------------------------------------
def test_a_request_is_assigned_to_a_colleague_seen_before(requests_app):
    request = submitted(requests_app)
    unknown = requests_app.post(f"{base()}/requests/{request['id']}/assign", AGENT,
                                json={"agent_account_id": COLLEAGUE.account_id})
    assert unknown.status_code == 422
    assert "au moins une fois" in unknown.get_json()["errors"]["agent_account_id"][0]
    requests_app.get(f"{base()}/requests", COLLEAGUE)  # the colleague's first visit
    agents = requests_app.get(f"{base()}/agents", AGENT).get_json()["items"]
    assert {a["email"] for a in agents} == {"agent@jolieville.test", "agent2@jolieville.test"}
    assigned = requests_app.post(f"{base()}/requests/{request['id']}/assign", AGENT,
                                 json={"agent_account_id": COLLEAGUE.account_id})
    assert assigned.status_code == 200
    assert assigned.get_json()["assigned_to"]["email"] == "agent2@jolieville.test"
    mine = requests_app.get(f"{base()}/requests?assigned=me", COLLEAGUE).get_json()
    assert [r["id"] for r in mine["items"]] == [request["id"]]
    assert requests_app.get(f"{base()}/requests?assigned=none", AGENT).get_json()["items"] == []
    step = assigned.get_json()["history"][-1]
    assert step["action"] == "assigned"
    assert step["actor"]["email"] == "agent@jolieville.test"
    assert step["details"]["agent_email"] == "agent2@jolieville.test"
    family_view = requests_app.get(f"{base()}/requests/{request['id']}", PARENT).get_json()
    assert family_view["assigned_to"] is None
    assert family_view["history"][-1]["details"] == {}
    unassigned = requests_app.post(f"{base()}/requests/{request['id']}/assign", AGENT,
                                   json={"agent_account_id": None})
    assert unassigned.get_json()["assigned_to"] is None


# the history cannot be changed ---------------------------------------------------------------
def test_the_history_has_no_path_to_change_it(requests_app):
    request = submitted(requests_app)
    path = f"{base()}/requests/{request['id']}"
    for method in ("PATCH", "PUT", "DELETE"):
        assert requests_app.call(method, path, AGENT, json={}).status_code == 405
    assert requests_app.call("DELETE", f"{path}/history", AGENT).status_code in (404, 405)


def test_the_database_refuses_to_change_or_delete_a_step(requests_app):
    request = submitted(requests_app)
    with pytest.raises(Exception, match="append-only"), requests_app.db.transaction() as s:
        s.execute(text("UPDATE request_history SET message = 'réécrit'"))
    with pytest.raises(Exception, match="append-only"), requests_app.db.transaction() as s:
        s.execute(text("DELETE FROM request_history"))
    history = requests_app.get(f"{base()}/requests/{request['id']}", AGENT).get_json()["history"]
    assert [h["message"] for h in history] == [None]


# what other services are told ----------------------------------------------------------------
def test_an_accepted_absence_tells_reservations_the_child_and_days(requests_app):
    request = submitted(requests_app, absence_form())
    transition(requests_app, request["id"], "in_progress")
    transition(requests_app, request["id"], "accepted", "Absence justifiée, non facturée.")
    [submitted_event] = requests_app.events("requests.request.submitted")
    assert submitted_event["data"]["category_kind"] == "absence_justification"
    accepted = requests_app.events("requests.request.status_changed")[-1]
    assert accepted["commune_id"] == requests_app.get(base(), AGENT).get_json()["id"]
    assert accepted["data"] == {
        "request_id": request["id"], "family_id": FAMILY, "old_status": "in_progress",
        "new_status": "accepted", "recipients": RECIPIENTS,
        "agent_message": "Absence justifiée, non facturée.",
        "category_kind": "absence_justification",
        "payload": {"child_id": HUGO, "dates": ["2026-10-05", "2026-10-06", "2026-10-07"],
                    "reason": "Maladie"},
        "category_id": ABSENCE, "category_label": "Absence justifiée"}


def test_a_one_day_absence_and_the_other_kinds_payloads(requests_app):
    one_day = submitted(requests_app, absence_form(to=None, reason="Autre", certificate=None))
    transition(requests_app, one_day["id"], "in_progress")
    assert requests_app.events("requests.request.status_changed")[-1]["data"]["payload"] == {
        "child_id": HUGO, "dates": ["2026-10-05"], "reason": "Autre"}

    allergy = submitted(requests_app, {
        "category": ALLERGY, "child": LEA, "notes": "Arachide : PAI en cours.",
        "medical_certificate": file_part(pdf("certificat"), "certificat.pdf")})
    transition(requests_app, allergy["id"], "in_progress")
    assert requests_app.events("requests.request.status_changed")[-1]["data"]["payload"] == {
        "child_id": LEA, "notes": "Arachide : PAI en cours."}

    from tests.requests.support import ADDRESS

    moved = submitted(requests_app, {
        "category": ADDRESS, "line1": "3 place de la Mairie", "postal_code": "77 100",
        "city": "JolieVille", "from": "2026-11-01",
        "proof_of_address": file_part(pdf("facture"), "facture.pdf")})
    transition(requests_app, moved["id"], "in_progress")
    event = requests_app.events("requests.request.status_changed")[-1]["data"]
    assert event["category_kind"] == "address_change"
    assert event["payload"] == {
        "address": {"line1": "3 place de la Mairie", "line2": None, "postal_code": "77100",
                    "city": "JolieVille"},
        "effective_date": "2026-11-01"}


def test_recipients_follow_the_household_read_model(requests_app):
    from tests.requests.support import household_snapshot

    request = submitted(requests_app)
    snapshot = household_snapshot(version=9)
    snapshot["guardians"][1]["email"] = None
    requests_app.handle("accounts.family.updated", snapshot)
    transition(requests_app, request["id"], "in_progress")
    event = requests_app.events("requests.request.status_changed")[-1]
    assert event["data"]["recipients"] == [RECIPIENTS[0]]
