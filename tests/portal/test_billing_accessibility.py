"""The accessibility self-check (``test_accessibility.check``) of every invoice and billing page,
as shown and as sent back with errors."""

from __future__ import annotations

import pytest

from .billing_support import (
    HIDDEN,
    INVOICES_API,
    LATE_ID,
    OPEN_ID,
    PAID,
    PAID_ID,
    PARTIAL_ID,
    PAYMENT_ID,
    PAYMENTS_API,
    RUN_FINALISED,
    RUN_ID,
    RUNS_API,
    billing_agent,
    billing_parent,
    payment,
)
from .support import FakeGateway, build, csrf_token, problem
from .test_accessibility import check

PARENT_GET = ["/factures", "/factures?onglet=payees", "/factures?onglet=masquees",
              f"/factures/{OPEN_ID}", f"/factures/{LATE_ID}", f"/factures/{PAID_ID}",
              f"/factures/{HIDDEN['id']}"]
AGENT_GET = ["/agent/facturation", f"/agent/facturation/{RUN_ID}", "/agent/tarifs",
             "/agent/tarifs/REPAS", "/agent/tarifs/ETUDE", "/agent/paiements",
             "/agent/paiements?statut=paid", "/agent/factures",
             "/agent/factures?periode=2026-10&statut=open", f"/agent/factures/{OPEN_ID}",
             f"/agent/factures/{PAID_ID}"]


def _client(fake: FakeGateway):
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    return client


@pytest.fixture
def parent():
    fake = FakeGateway()
    billing_parent(fake)
    return fake, _client(fake)


@pytest.fixture
def agent():
    fake = FakeGateway()
    billing_agent(fake)
    return fake, _client(fake)


@pytest.mark.parametrize("path", PARENT_GET)
def test_parent_pages(parent, path):
    fake, client = parent
    if "onglet=payees" in path:
        fake.on("GET", INVOICES_API, body={"items": [PAID], "next": "c2"})
    if "onglet=masquees" in path:
        fake.on("GET", INVOICES_API, body={"items": [HIDDEN], "next": None})
    response = client.get(path)
    assert response.status_code == 200
    page = check(response.get_data(as_text=True), path)
    assert any(c["id"] == "commune-choisie" for c in page.controls)


@pytest.mark.parametrize("state", ["paid", "waiting", "created", "denied", "cancelled",
                                   "expired", "error"])
def test_return_pages(parent, state):
    fake, client = parent
    fake.on("GET", f"{PAYMENTS_API}/{PAYMENT_ID}", body=payment(state))
    response = client.get(f"/factures/paiement/retour?payment={PAYMENT_ID}")
    assert response.status_code == 200
    check(response.get_data(as_text=True), state)


@pytest.mark.parametrize("path", AGENT_GET)
def test_agent_pages(agent, path):
    _fake, client = agent
    response = client.get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


def test_finalised_run_page(agent):
    fake, client = agent
    fake.on("GET", f"{RUNS_API}/{RUN_ID}", body=RUN_FINALISED)
    check(client.get(f"/agent/facturation/{RUN_ID}").get_data(as_text=True), "finalised")


def test_payment_confirmation_page(parent):
    _fake, client = parent
    token = csrf_token(client, "/factures")
    response = client.post("/factures/paiement", data={
        "facture": [OPEN_ID, PARTIAL_ID], "csrf_token": token})
    assert response.status_code == 200
    check(response.get_data(as_text=True), "confirmation")


REFUSED = [
    # (who, path, data, page the form is on)
    ("parent", "/factures/paiement", {}, "/factures"),
    ("parent", "/factures/paiement/confirmer", {"facture": [OPEN_ID]}, "/factures"),
    ("parent", "/factures/rattacher", {"reference": "", "amount": "x"}, "/factures"),
    ("parent", "/factures/rattacher", {"reference": "A", "amount": "3"}, "/factures"),
    ("agent", "/agent/facturation", {"period": "demain"}, None),
    ("agent", f"/agent/facturation/{RUN_ID}/valider", {}, f"/agent/facturation/{RUN_ID}"),
    ("agent", "/agent/tarifs/REPAS", {"label": "", "brackets-1-max_quotient": "1",
                                      "brackets-3-price": "x"}, None),
    ("agent", f"/agent/factures/{OPEN_ID}/paiement", {"pay_amount": "", "pay_method": ""},
     f"/agent/factures/{OPEN_ID}"),
    ("agent", f"/agent/factures/{OPEN_ID}/avoir", {"note_amount": "0", "note_reason": ""},
     f"/agent/factures/{OPEN_ID}"),
]


@pytest.mark.parametrize("who,path,data,token_from", REFUSED)
def test_refused_forms(parent, agent, who, path, data, token_from):
    fake, client = parent if who == "parent" else agent
    fake.on("POST", PAYMENTS_API, 422, problem(422, "Refusé.", {
        "invoice_ids": ["La facture 2026-JOL-000154 est déjà payée."]}))
    fake.on("POST", "/api/billing/invoices/claim", 404, problem(404, "Aucune facture."))
    token = csrf_token(client, token_from or path)
    response = client.post(path, data={**data, "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html
    page = check(html, f"POST {path}")
    assert page.title.startswith("Erreur — "), page.title
    assert 'role="alert"' in html
