"""GDPR pages (issue 8): « Mes données », the agents' erasure requests, the DPO's access log.

Against the fake gateway, like every portal test; each page also passes the accessibility
self-check of test_accessibility (labels, ids, CSRF in every POST form).
"""

from __future__ import annotations

from .support import AGENT, field_error, post_form, problem, text
from .test_accessibility import check

ERASURE = "/api/accounts/me/erasure"
BLOCKERS = [{"code": "unpaid_invoices", "service": "billing",
             "message": "1 facture(s) restent à payer (F-2026-0001, 82,00 € au total) : "
                        "réglez-les depuis « Mes factures » ou contactez la mairie."}]
PENDING = {"id": "e1", "family_id": "f1", "status": "pending", "reason": "Déménagement",
           "created_at": "2026-11-20T10:00:00Z", "decided_at": None, "refusal_reason": None,
           "communes": [{"slug": "jolieville", "name": "JolieVille Test",
                         "decision": "accepted", "reason": None,
                         "decided_at": "2026-11-21T10:00:00Z"},
                        {"slug": "dammartin", "name": "Dammartin-sur-Tigeaux",
                         "decision": None, "reason": None, "decided_at": None}]}
DPO = {**AGENT, "email": "dpo@jolieville.test",
       "communes": [{"slug": "jolieville", "name": "JolieVille Test",
                     "roles": ["agent", "dpo"]}]}


def test_my_data_offers_the_archive_and_shows_what_blocks_erasure(parent, fake):
    fake.on("GET", ERASURE, body={"request": None, "blockers": BLOCKERS})
    response = parent.get("/mes-donnees")
    page = text(response)
    assert response.status_code == 200
    check(response.get_data(as_text=True), "/mes-donnees")
    assert 'href="/api/accounts/me/export"' in page
    assert "La suppression n'est pas encore possible" in page
    assert "restent à payer" in page
    assert "Demander la suppression" in page and 'name="csrf_token"' in page
    assert 'href="/mes-donnees"' in page  # in the menu


def test_asking_for_erasure_needs_the_confirmation_then_posts(parent, fake):
    fake.on("GET", ERASURE, body={"request": None, "blockers": []})
    refused = post_form(parent, "/mes-donnees", {"reason": "Déménagement"})
    assert refused.status_code == 422
    page = text(refused)
    assert field_error(page, "confirm") == "Cochez la case pour confirmer votre demande."
    assert not fake.calls("POST", ERASURE)
    check(refused.get_data(as_text=True), "POST /mes-donnees")

    fake.on("POST", ERASURE, 201, body=PENDING)
    sent = post_form(parent, "/mes-donnees", {"reason": "Déménagement", "confirm": "y"})
    assert sent.status_code == 303 and sent.headers["Location"] == "/mes-donnees"
    assert fake.last_json("POST", ERASURE) == {"reason": "Déménagement"}


def test_a_pending_request_shows_each_communes_decision_and_no_second_form(parent, fake):
    fake.on("GET", ERASURE, body={"request": PENDING, "blockers": []})
    page = text(parent.get("/mes-donnees"))
    assert "En cours d'examen par la mairie" in page
    assert "JolieVille Test : Acceptée" in page
    assert "Dammartin-sur-Tigeaux : En attente" in page
    assert 'action="/mes-donnees"' not in page


def test_a_refusal_from_the_api_is_shown(parent, fake):
    fake.on("GET", ERASURE, body={"request": None, "blockers": []})
    fake.on("POST", ERASURE, 409, body=problem(409, "Votre demande de suppression est déjà "
                                                    "en cours d'examen par la mairie."))
    response = post_form(parent, "/mes-donnees", {"confirm": "y"})
    assert response.status_code == 422
    assert "déjà en cours d'examen" in text(response)


def test_an_agent_lists_and_decides_erasure_requests(agent, fake):
    base = "/api/accounts/communes/jolieville/erasure-requests"
    fake.on("GET", base, body={"items": [{**PENDING, "family_name": "CASSEREAU",
                                          "family_code": "JV-0042"}], "next": None})
    listing = agent.get("/agent/suppressions")
    assert listing.status_code == 200
    check(listing.get_data(as_text=True), "/agent/suppressions")
    assert "CASSEREAU" in text(listing) and 'href="/agent/suppressions/e1"' in text(listing)
    assert fake.last_query(base) == {"status": ["pending"]}

    fake.on("GET", f"{base}/e1", body={**PENDING, "family_name": "CASSEREAU",
                                       "blockers": BLOCKERS})
    detail = agent.get("/agent/suppressions/e1")
    check(detail.get_data(as_text=True), "/agent/suppressions/e1")
    assert "Ce qui empêche encore la suppression" in text(detail)

    # Refusing needs a reason, said in French next to the field.
    no_reason = post_form(agent, "/agent/suppressions/e1", {"decision": "refuse"})
    assert no_reason.status_code == 422
    assert field_error(text(no_reason), "reason") == "Indiquez à la famille la raison du refus."
    assert not fake.calls("POST", f"{base}/e1/decision")

    fake.on("POST", f"{base}/e1/decision", 409,
            body=problem(409, "La suppression n'est pas possible pour l'instant : 1 facture(s) "
                              "restent à payer."))
    blocked = post_form(agent, "/agent/suppressions/e1", {"decision": "accept"})
    assert blocked.status_code == 422 and "restent à payer" in text(blocked)

    fake.on("POST", f"{base}/e1/decision", body={**PENDING, "status": "refused"})
    done = post_form(agent, "/agent/suppressions/e1",
                     {"decision": "refuse", "reason": "Une facture reste due."})
    assert done.status_code == 303
    assert fake.last_json("POST", f"{base}/e1/decision") == {
        "accept": False, "reason": "Une facture reste due."}


def test_the_access_log_is_for_the_dpo_only(agent, fake):
    assert agent.get("/agent/journal-des-acces").status_code == 403
    assert 'href="/agent/journal-des-acces"' not in text(agent.get("/agent/suppressions"))


def test_the_dpo_filters_the_access_log(client, fake):
    fake.agent()
    fake.on("GET", "/auth/me", body=DPO)
    path = "/api/accounts/communes/jolieville/audit"
    fake.on("GET", path, body={"items": [{
        "id": "x1", "at": "2026-11-20T09:15:00Z", "service": "requests",
        "account_id": "a2", "email": "agent@jolieville.test", "family_id": "f1",
        "family_name": "CASSEREAU", "action": "document.download", "object_id": "d1"}],
        "next": "c2"})
    client.set_cookie("portail_session", "s")
    response = client.get("/agent/journal-des-acces?agent=agent@jolieville.test&du=2026-11-01"
                          "&au=2026-11-30")
    assert response.status_code == 200
    check(response.get_data(as_text=True), "/agent/journal-des-acces")
    page = text(response)
    assert "Document téléchargé" in page and "CASSEREAU" in page and "20/11/2026" in page
    assert fake.last_query(path) == {"account": ["agent@jolieville.test"],
                                     "from": ["2026-11-01"], "to": ["2026-11-30"]}
    assert "suite=c2" in page
    assert 'href="/agent/journal-des-acces"' in page  # in the DPO's menu
