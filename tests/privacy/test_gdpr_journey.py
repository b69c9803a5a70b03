"""GDPR end to end in the embedded suite (issue 8), through the public API only, except
where a test must look at storage itself (the files) or replay an event by hand.

The CASSEREAU family downloads its archive, asks for erasure; what blocks it (an unpaid
invoice, a booking to come) is shown in French and refused to the agent until settled; both
of its communes accept; then no service gives back the family's names, e-mails, phones or
children's names, its documents' files are gone from storage, and its invoices are still
there with the same totals. Replaying the erasure event, or a late household snapshot,
changes nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile

import pytest
from sqlalchemy import select

from services.common.events import Event
from suite.embedded import EmbeddedSuite
from tests.e2e.support import eventually, login, wait_for_demo_data

C = "jolieville"
PERSONAL = ("CASSEREAU", "parent@famille.test", "Léa")


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    saved = dict(os.environ)
    suite = EmbeddedSuite("127.0.0.1", 0, tmp_path_factory.mktemp("gdpr"))
    suite.start(fresh=True)
    try:
        # Every service has received the demo communes and households over the bus (an
        # agent's first read of a child's bookings answered 404 in CI before reservations had).
        wait_for_demo_data(suite.url)
        yield suite
    finally:
        suite.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def _pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages"
            b"/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def _stored_files(suite) -> list:
    root = suite.data_dir / "documents"
    return [p for p in root.rglob("*") if p.is_file() and ".tmp" not in p.name] \
        if root.exists() else []


def test_agents_reads_are_in_the_audit_log_of_the_dpo(suite):
    base = suite.url
    parent = login(base, "parent@famille.test")
    agent = login(base, "agent@jolieville.test")
    dpo = login(base, "dpo@jolieville.test")
    family = parent.get(f"{base}/api/accounts/me/family").json()
    lea = next(c for c in family["children"] if c["first_name"] == "Léa")
    category = next(c for c in eventually(lambda: parent.get(
        f"{base}/api/requests/communes/{C}/categories").json().get("items"))
        if c["required_attachments"])
    sent = parent.post(f"{base}/api/requests/communes/{C}/requests", files={
        "category": (None, category["id"]), "child": (None, lea["id"]),
        "person_name": (None, "Paul MARTIN"), "relation": (None, "voisin"),
        "phone": (None, "06 11 22 33 45"), "from": (None, "2026-12-02"),
        "identity_document": ("piece.pdf", _pdf(), "application/pdf")})
    assert sent.status_code == 201, sent.text
    detail = eventually(lambda: agent.get(
        f"{base}/api/requests/communes/{C}/requests/{sent.json()['id']}").json())
    assert agent.get(f"{base}{detail['documents'][0]['url']}").status_code == 200
    assert agent.get(f"{base}/api/accounts/communes/{C}/families/{family['id']}") \
        .status_code == 200
    invoices = agent.get(f"{base}/api/billing/communes/{C}/invoices",
                         params={"family_id": family["id"]}).json()["items"]
    assert agent.get(f"{base}/api/billing/invoices/{invoices[0]['id']}").status_code == 200
    assert agent.get(f"{base}/api/reservations/communes/{C}/bookings",
                     params={"child_id": lea["id"]}).status_code == 200
    # The family's own reads are not the agents' accesses: never in the log.
    parent.get(f"{base}/api/billing/invoices/{invoices[0]['id']}")

    expected = {"request.read", "document.download", "family.read", "invoices.list",
                "invoice.read", "bookings.list"}

    def logged():
        items = dpo.get(f"{base}/api/accounts/communes/{C}/audit",
                        params={"family_id": family["id"]}).json()["items"]
        return items if expected <= {i["action"] for i in items} else None

    items = eventually(logged, timeout=20)
    assert {i["email"] for i in items} == {"agent@jolieville.test"}
    assert {i["family_name"] for i in items} == {"CASSEREAU"}
    assert {i["service"] for i in items} == {"accounts", "billing", "requests", "reservations"}
    # Filters: by agent (e-mail), by date; another agent's e-mail finds nothing.
    today = items[0]["at"][:10]
    by_agent = dpo.get(f"{base}/api/accounts/communes/{C}/audit",
                       params={"account": "agent@jolieville.test", "from": today,
                               "to": today}).json()["items"]
    assert len(by_agent) >= len(items)
    assert dpo.get(f"{base}/api/accounts/communes/{C}/audit",
                   params={"account": "agent@dammartin.test"}).json()["items"] == []
    assert dpo.get(f"{base}/api/accounts/communes/{C}/audit",
                   params={"to": "2020-01-01"}).json()["items"] == []
    # Only the commune's DPO (and platform admins): an agent 403, a parent 404.
    assert agent.get(f"{base}/api/accounts/communes/{C}/audit").status_code == 403
    assert parent.get(f"{base}/api/accounts/communes/{C}/audit").status_code == 404
    assert login(base, "agent@dammartin.test").get(
        f"{base}/api/accounts/communes/{C}/audit").status_code == 403


def test_export_then_erasure_across_every_service(suite):
    base = suite.url
    parent = login(base, "parent@famille.test")
    agent = login(base, "agent@jolieville.test")
    other_agent = login(base, "agent@dammartin.test")
    family = parent.get(f"{base}/api/accounts/me/family").json()
    family_id = family["id"]
    lea = next(c for c in family["children"] if c["first_name"] == "Léa")

    # A request with a document, so that the archive and the erasure have a file to handle.
    category = next(c for c in eventually(lambda: parent.get(
        f"{base}/api/requests/communes/{C}/categories").json().get("items"))
        if c["required_attachments"])
    document = _pdf()
    sent = parent.post(f"{base}/api/requests/communes/{C}/requests", files={
        "category": (None, category["id"]), "child": (None, lea["id"]),
        "person_name": (None, "Jeanne DUPONT"), "relation": (None, "grand-mère"),
        "phone": (None, "06 11 22 33 44"), "from": (None, "2026-12-01"),
        "identity_document": ("carte.pdf", document, "application/pdf")})
    assert sent.status_code == 201, sent.text
    request_id = sent.json()["id"]
    eventually(lambda: parent.get(f"{base}/api/notifications/me/messages").json()["items"])

    # The archive: one JSON per service, the document, a French summary.
    answer = parent.get(f"{base}/api/accounts/me/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == "application/zip"
    assert "attachment" in answer.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = set(archive.namelist())
    assert {"compte.json", "reservations.json", "factures.json", "demandes.json",
            "messages.json", "LISEZMOI.html"} <= names
    own = json.loads(archive.read("compte.json"))
    assert {c["first_name"] for c in own["foyer"]["enfants"]} >= {"Léa"}
    assert own["compte"]["email"] == "parent@famille.test"
    invoices_before = {i["number"]: i["amount"]
                       for i in json.loads(archive.read("factures.json"))["factures"]}
    assert invoices_before
    # Dates in the archive are ISO (as in the API), for people and programs alike.
    first_invoice = json.loads(archive.read("factures.json"))["factures"][0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", first_invoice["issue_date"])
    requests_part = json.loads(archive.read("demandes.json"))["demandes"]
    assert [r for r in requests_part if r["categorie"] == category["label"]]
    files = [n for n in names if n.startswith("documents/")]
    assert document in [archive.read(f) for f in files]
    assert json.loads(archive.read("messages.json"))["messages"]
    assert _stored_files(suite)
    children_before = agent.get(f"{base}/api/reservations/communes/{C}/children",
                                params={"q": "Léa"}).json()["items"]
    assert lea["id"] in json.dumps(children_before)
    readme = archive.read("LISEZMOI.html").decode()
    assert "Vos données sur le Portail Famille" in readme and "Léa" in readme

    # Only the caller's own household: an agent has no household to export.
    assert agent.get(f"{base}/api/accounts/me/export").status_code == 403

    # A booking to come blocks the erasure, as the unpaid invoice of the demo does.
    repas = next(a for a in parent.get(f"{base}/api/reservations/communes/{C}/activities")
                 .json()["items"] if a["code"] == "REPAS")
    days = parent.get(f"{base}/api/reservations/communes/{C}/children/{lea['id']}/calendar",
                      params={"activity": repas["id"], "from": "2026-12-07",
                              "to": "2026-12-18"}).json()["days"]
    day = next(d["date"] for d in days if d["activities"][0]["can_book"])
    assert parent.post(f"{base}/api/reservations/communes/{C}/basket/items", json={
        "child_id": lea["id"], "activity_id": repas["id"], "dates": [day]}).status_code == 201
    booked = parent.post(f"{base}/api/reservations/communes/{C}/basket/checkout", json={})
    assert booked.json()["status"] == "confirmed", booked.text

    asked = parent.post(f"{base}/api/accounts/me/erasure", json={"reason": "Déménagement"})
    assert asked.status_code == 201, asked.text
    assert asked.json()["status"] == "pending"
    assert parent.post(f"{base}/api/accounts/me/erasure", json={}).status_code == 409
    mine = parent.get(f"{base}/api/accounts/me/erasure").json()
    codes = {b["code"] for b in mine["blockers"]}
    assert {"unpaid_invoices", "future_bookings"} <= codes
    assert all("€" in b["message"] or "réservation" in b["message"] for b in mine["blockers"])

    listed = agent.get(f"{base}/api/accounts/communes/{C}/erasure-requests",
                       params={"status": "pending"}).json()["items"]
    erasure_id = next(e["id"] for e in listed if e["family_id"] == family_id)
    refused = agent.post(f"{base}/api/accounts/communes/{C}/erasure-requests/{erasure_id}"
                         "/decision", json={"accept": True})
    assert refused.status_code == 409
    assert "restent à payer" in refused.json()["detail"]

    # The family cancels its booking; the agent records the payment at the counter.
    bookings = parent.get(f"{base}/api/reservations/communes/{C}/bookings",
                          params={"child_id": lea["id"]}).json()["items"]
    live = [b["id"] for b in bookings if b["status"] == "confirmed"]
    assert parent.post(f"{base}/api/reservations/communes/{C}/cancellations",
                       json={"booking_ids": live, "reason": "Départ"}).status_code in (200, 201)
    for invoice in agent.get(f"{base}/api/billing/communes/{C}/invoices",
                             params={"family_id": family_id}).json()["items"]:
        if invoice["status"] in ("open", "partially_paid"):
            paid = agent.post(f"{base}/api/billing/communes/{C}/invoices/{invoice['id']}"
                              "/payments", json={"amount": invoice["amount_remaining"],
                                                 "method": "cash"})
            assert paid.status_code in (200, 201), paid.text
    assert eventually(lambda: not parent.get(f"{base}/api/accounts/me/erasure")
                      .json()["blockers"])

    # Both communes decide: the first acceptance waits for the second.
    first = agent.post(f"{base}/api/accounts/communes/{C}/erasure-requests/{erasure_id}"
                       "/decision", json={"accept": True})
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "pending"
    done = other_agent.post(f"{base}/api/accounts/communes/dammartin/erasure-requests/"
                            f"{erasure_id}/decision", json={"accept": True})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"

    # Accounts: the parent can no longer log in; the family file is gone for agents.
    gone = parent.post(f"{base}/auth/login", json={"email": "parent@famille.test",
                                                   "password": "portail-demo"})
    assert gone.status_code == 401
    assert agent.get(f"{base}/api/accounts/communes/{C}/families/{family_id}").status_code \
        == 404
    families = agent.get(f"{base}/api/accounts/communes/{C}/families",
                         params={"q": "CASSEREAU"}).json()["items"]
    assert families == []

    # Every other service forgets, through the event.
    def requests_gone():
        items = agent.get(f"{base}/api/requests/communes/{C}/requests").json()["items"]
        return all(r["id"] != request_id for r in items)

    eventually(requests_gone, timeout=20)
    eventually(lambda: not _stored_files(suite), timeout=20)
    eventually(lambda: all(m.get("family_id") != family_id for m in agent.get(
        f"{base}/api/notifications/communes/{C}/messages").json()["items"]), timeout=20)
    eventually(lambda: lea["id"] not in agent.get(
        f"{base}/api/reservations/communes/{C}/children", params={"q": "Léa"}).text)

    # Billing keeps the invoices, same totals, with the payer's name only.
    def invoices_kept():
        items = agent.get(f"{base}/api/billing/communes/{C}/invoices",
                          params={"family_id": family_id}).json()["items"]
        lines = [agent.get(f"{base}/api/billing/invoices/{i['id']}").json() for i in items]
        return (items, lines) if all(
            line["child_name"] in (None, "Enfant") for inv in lines
            for line in inv["lines"]) else None

    items, detailed = eventually(invoices_kept, timeout=20)
    assert {i["number"]: i["amount"] for i in items} == {
        n: a for n, a in invoices_before.items() if n in {i["number"] for i in items}}
    assert {i["number"] for i in items} == set(invoices_before)
    text = json.dumps(detailed, ensure_ascii=False)
    assert "Léa" not in text and "parent@famille.test" not in text

    # Nothing personal anywhere the agents look.
    for url in (f"/api/requests/communes/{C}/requests",
                f"/api/notifications/communes/{C}/messages",
                f"/api/reservations/communes/{C}/children?q=L%C3%A9a",
                f"/api/accounts/communes/{C}/families?q=CASSEREAU"):
        body = agent.get(f"{base}{url}").text
        assert "parent@famille.test" not in body, url

    # A redelivered erasure (handler run again, past the inbox) and a late snapshot of the
    # household change nothing.
    late = Event.new("accounts.family.updated", {
        "family_id": family_id, "family_name": "CASSEREAU",
        "guardians": [{"id": family["guardians"][0]["id"], "first_name": "Marie",
                       "last_name": "CASSEREAU", "email": "parent@famille.test",
                       "phones": [], "pays": True}],
        "children": [], "address": None, "communes": [], "version": 2}, producer="accounts")
    erased = Event.new("accounts.household.erased", {
        "family_id": family_id, "commune_ids": [], "version": 99,
        "erased_at": "2026-11-27T10:00:00+00:00", "request_id": None}, producer="accounts")
    billing = suite.runtimes["billing"]
    from services.billing.models import Invoice, InvoiceLine

    def billing_state():
        with billing.db.sessions() as session:
            return (sorted((i.number, str(i.total), str(i.paid)) for i in session.scalars(
                select(Invoice).where(Invoice.family_id == family_id))),
                sorted(line.label for line in session.scalars(
                    select(InvoiceLine).join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                    .where(Invoice.family_id == family_id))))

    before = billing_state()
    for name in ("reservations", "billing", "requests", "notifications"):
        runtime = suite.runtimes[name]
        for event in (late, erased):
            handler = runtime.handlers.get(event.type)
            if handler is None:
                continue
            with runtime.db.transaction() as session:
                handler(session, event, event.data)
    assert billing_state() == before
    from services.common.households import household

    with suite.runtimes["requests"].db.sessions() as session:
        assert household(session, family_id)["family_name"] == "Foyer supprimé"
    assert agent.get(f"{base}/api/accounts/communes/{C}/erasure-requests/{erasure_id}") \
        .json()["status"] == "completed"
