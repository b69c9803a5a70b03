"""GET /api/notifications/me/messages and the agents' view of a commune's messages."""

from __future__ import annotations

from datetime import timedelta

from services.common.auth import Principal
from services.notifications.sender import Sender
from tests.notifications.support import (
    COMMUNE,
    COMMUNE_2,
    FAMILY,
    OTHER_FAMILY,
    ListTransport,
    SmtpServer,
    consumer,
    event,
    free_port,
    handle,
    messages,
    now,
)
from tests.notifications.test_sender import smtp_sender

PARENT = Principal(account_id="acc00000-0000-4000-8000-000000000001",
                   email="parent@famille.test", family_id=FAMILY,
                   communes={"jolieville": {"id": COMMUNE, "roles": ["parent"]}})
OTHER_PARENT = Principal(account_id="acc00000-0000-4000-8000-000000000002",
                         email="voisin@famille.test", family_id=OTHER_FAMILY,
                         communes={"jolieville": {"id": COMMUNE, "roles": ["parent"]}})
AGENT = Principal(account_id="acc00000-0000-4000-8000-00000000000a",
                  email="agent@jolieville.test",
                  communes={"jolieville": {"id": COMMUNE, "roles": ["agent"]}})
OTHER_AGENT = Principal(account_id="acc00000-0000-4000-8000-00000000000b",
                        email="agent@dammartin.test",
                        communes={"dammartin": {"id": COMMUNE_2, "roles": ["agent"]}})
ADMIN = Principal(account_id="acc00000-0000-4000-8000-0000000000ad",
                  email="admin@portail.test", platform_admin=True)

MINE = "/api/notifications/me/messages"
FAILED = "/api/notifications/communes/jolieville/messages?status=failed"


def test_a_parent_sees_what_was_sent_to_the_household_newest_first(service):
    first = event("billing.invoice.issued")
    second = event("requests.request.submitted")
    theirs = event("billing.invoice.issued", family_id=OTHER_FAMILY,
                   recipients=["voisin@famille.test"])
    for ev in (first, second, theirs):
        handle(consumer(service.db), ev)
    Sender(service.db, ListTransport()).run_once()

    response = service.get(MINE, PARENT)
    assert response.status_code == 200, response.text
    body = response.json
    assert body["next"] is None
    assert [item["subject"] for item in body["items"]] == [
        "Demande reçue : Absence justifiée", "Nouvelle facture F2026-10-0042 : 82,00 €"]
    item = body["items"][1]
    assert set(item) == {"id", "subject", "to", "status", "created_at", "sent_at", "kind",
                         "text"}
    assert item["to"] == "parent@famille.test"
    assert item["status"] == "sent"
    assert item["kind"] == "invoice_issued"
    assert item["sent_at"] and item["created_at"]
    assert "82,00 €" in item["text"]

    # The other household sees only its own message, and never the first one's.
    other = service.get(MINE, OTHER_PARENT).json["items"]
    assert [i["to"] for i in other] == ["voisin@famille.test"]


def test_pages_of_fifty_with_an_opaque_cursor(service):
    for _ in range(55):
        handle(consumer(service.db), event("billing.invoice.issued"))
    assert len(messages(service.db)) == 55
    first = service.get(MINE, PARENT).json
    assert len(first["items"]) == 50
    assert first["next"]
    second = service.get(MINE, PARENT, query_string={"cursor": first["next"]}).json
    assert len(second["items"]) == 5
    assert second["next"] is None
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 55
    stamps = [i["created_at"] for i in first["items"] + second["items"]]
    assert stamps == sorted(stamps, reverse=True)
    bad = service.get(MINE, PARENT, query_string={"cursor": "n'importe quoi"})
    assert bad.status_code == 400
    assert bad.content_type == "application/problem+json"


def test_only_a_household_may_ask(service):
    assert service.get(MINE).status_code == 401
    response = service.get(MINE, AGENT)
    assert response.status_code == 403
    assert response.json["detail"].startswith("Réservé aux familles")
    assert service.get(MINE, ADMIN).status_code == 403
    assert service.get(MINE, headers={"Authorization": "Bearer faux"}).status_code == 401


def test_agents_see_the_failures_of_their_commune(service):
    server = SmtpServer().start()
    server.recorder.refuse["parent@famille.test"] = "550 5.1.1 Mailbox unknown"
    try:
        refused = event("billing.invoice.issued")
        fine = event("billing.invoice.issued", recipients=["autre@famille.test"])
        elsewhere = event("billing.invoice.issued", commune_id=COMMUNE_2)
        for ev in (refused, fine, elsewhere):
            handle(consumer(service.db), ev)
        smtp_sender(service.db, server.port).run_once()
    finally:
        server.stop()

    response = service.get(FAILED, AGENT)
    assert response.status_code == 200, response.text
    [item] = response.json["items"]
    assert item["event_id"] == refused.id
    assert item["to"] == "parent@famille.test"
    assert item["status"] == "failed"
    assert "550 5.1.1 Mailbox unknown" in item["last_error"]
    assert item["attempts"] == 1
    assert item["failed_at"]
    assert item["family_id"] == FAMILY

    everything = service.get("/api/notifications/communes/jolieville/messages", AGENT).json
    assert {i["status"] for i in everything["items"]} == {"failed", "sent"}
    # Dammartin's failure is Dammartin's.
    assert len(service.get("/api/notifications/communes/dammartin/messages?status=failed",
                           ADMIN).json["items"]) == 1


def test_pending_messages_show_why_they_wait(service):
    handle(consumer(service.db), event("billing.invoice.issued"))
    smtp_sender(service.db, free_port()).run_once(now=now() + timedelta(seconds=1))
    [item] = service.get("/api/notifications/communes/jolieville/messages?status=pending",
                         AGENT).json["items"]
    assert item["attempts"] == 1
    assert "injoignable" in item["last_error"]
    assert item["next_attempt_at"]


def test_the_agents_view_is_for_the_communes_agents(service):
    assert service.get(FAILED).status_code == 401
    assert service.get(FAILED, PARENT).status_code == 403
    assert service.get(FAILED, OTHER_AGENT).status_code == 403
    assert service.get(FAILED, ADMIN).status_code == 200
    wrong = service.get("/api/notifications/communes/jolieville/messages?status=perdu", AGENT)
    assert wrong.status_code == 422
    unknown = service.get("/api/notifications/communes/inconnue/messages", ADMIN)
    assert unknown.status_code == 404


def test_the_dev_mailbox_shows_what_the_maildir_backend_delivered(service):
    from services.notifications.sender import sender_from_settings

    handle(consumer(service.db), event("accounts.family.invited"))
    sender = sender_from_settings(service.db, service.runtime.settings)
    assert sender.run_once() == 1
    items = service.get("/api/notifications/dev/mailbox").json["items"]
    assert [i["subject"] for i in items] == [
        "Activez votre compte sur le portail famille de JolieVille Test"]
    one = service.get(f"/api/notifications/dev/mailbox/{items[0]['id']}").json
    assert "http://localhost:8000/activation?token=abc123" in one["text"]


def test_the_openapi_document_describes_the_endpoints(service):
    paths = service.get("/api/notifications/openapi.json").json["paths"]
    assert "/api/notifications/me/messages" in paths
    assert "/api/notifications/communes/{slug}/messages" in paths


def test_secret_links_are_hidden_in_the_history(service):
    """A reset or activation link is a credential: it goes in the e-mail only, never in
    what the household's other logins (or its API clients) read back."""
    reset = event("accounts.password_reset.requested")
    handle(consumer(service.db), reset)
    [message] = messages(service.db, event_id=reset.id)
    assert reset.data["reset_url"] in message.text_body  # the mail itself has it
    [item] = service.get(MINE, PARENT).json["items"]
    assert item["kind"] == "password_reset"
    assert reset.data["reset_url"] not in item["text"]
    assert "token=" not in item["text"]
    assert "[lien personnel, masqué dans l'historique]" in item["text"]
    assert "https://portail.jolieville.test/" in item["text"]  # the portal link stays
