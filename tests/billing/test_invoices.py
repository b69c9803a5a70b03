"""A household's invoices: list, detail, PDF, hide and unhide, claim; nothing leaks."""

from __future__ import annotations

import contextlib
import zlib
from datetime import UTC, datetime

from tests.billing.support import (
    AGENT,
    DAMMARTIN_AGENT,
    OTHER_FAMILY,
    OTHER_PARENT,
    PARENT,
    finalise_month,
    october_for_family,
    open_invoices,
)
from tests.billing.test_payments import callback

LIST = "/api/billing/communes/jolieville/invoices"


def pdf_text(data: bytes) -> bytes:
    """The PDF's bytes with its compressed streams inflated."""
    out = [data]
    for chunk in data.split(b"stream\n")[1:]:
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(chunk.split(b"\nendstream")[0]))
    return b"".join(out)


def paper_invoice(billing, amount="42.00", family_id=None):
    answer = billing.post(LIST, AGENT, json={
        "family_id": family_id, "payer_name": "M. CASSEREAU",
        "lines": [{"label": "Accueil du soir", "quantity": 1, "unit_price": amount}]})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_the_household_sees_its_invoices_and_nobody_else_does(billing):
    october_for_family(billing)
    finalise_month(billing)
    (invoice,) = open_invoices(billing)
    assert invoice["commune"]["name"] == "JolieVille Test"
    assert invoice["services"] == ["Restauration scolaire"]
    assert invoice["can_pay_online"] is True
    assert open_invoices(billing, OTHER_PARENT) == []
    for path in (f"/api/billing/invoices/{invoice['id']}",
                 f"/api/billing/invoices/{invoice['id']}/pdf"):
        assert billing.get(path, OTHER_PARENT).status_code == 404
        assert billing.get(path, DAMMARTIN_AGENT).status_code == 404
        assert billing.get(path, AGENT).status_code == 200
    for action in ("hide", "unhide"):
        answer = billing.post(f"/api/billing/invoices/{invoice['id']}/{action}", OTHER_PARENT)
        assert answer.status_code == 404
    missing = billing.get("/api/billing/invoices/00000000-0000-4000-8000-000000000000", PARENT)
    assert missing.get_json() == billing.get(f"/api/billing/invoices/{invoice['id']}",
                                             OTHER_PARENT).get_json()
    # agents of the commune list every household's, another commune's agent is refused
    assert len(billing.get(LIST, AGENT).get_json()["items"]) == 1
    assert billing.get(LIST, DAMMARTIN_AGENT).status_code == 403
    assert billing.get(LIST).status_code == 401


def test_invoice_pdf(billing):
    october_for_family(billing)
    finalise_month(billing)
    (invoice,) = open_invoices(billing)
    answer = billing.get(f"/api/billing/invoices/{invoice['id']}/pdf", PARENT)
    assert answer.status_code == 200
    assert answer.mimetype == "application/pdf"
    assert answer.headers["Content-Disposition"] == \
        f'attachment; filename="facture-{invoice["reference"]}.pdf"'
    assert answer.data.startswith(b"%PDF")
    text = pdf_text(answer.data)
    assert invoice["reference"].encode() in text
    assert b"JolieVille Test" in text
    assert b"24,60 EUR" in text


def test_hide_and_unhide(billing):
    october_for_family(billing)
    finalise_month(billing)
    (invoice,) = open_invoices(billing)
    hidden = billing.post(f"/api/billing/invoices/{invoice['id']}/hide", PARENT)
    assert hidden.status_code == 200 and hidden.get_json()["hidden"] is True
    assert open_invoices(billing) == []
    shown = billing.get(f"{LIST}?hidden=true", PARENT).get_json()["items"]
    assert [i["id"] for i in shown] == [invoice["id"]]
    billing.post(f"/api/billing/invoices/{invoice['id']}/unhide", PARENT)
    assert [i["id"] for i in open_invoices(billing)] == [invoice["id"]]


def test_claiming_a_paper_invoice_by_reference_and_amount(billing):
    paper = paper_invoice(billing)
    assert paper["family_id"] is None
    claim = "/api/billing/invoices/claim"
    wrong_amount = billing.post(claim, PARENT, json={"reference": paper["reference"],
                                                     "amount": "41.00"})
    wrong_reference = billing.post(claim, PARENT, json={"reference": "2026-JOL-999999",
                                                        "amount": "42.00"})
    assert wrong_amount.status_code == wrong_reference.status_code == 404
    assert wrong_amount.get_json() == wrong_reference.get_json()

    found = billing.post(claim, PARENT, json={"reference": paper["reference"].lower(),
                                              "amount": "42,00"})
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["family_id"] == PARENT.family_id
    assert [i["id"] for i in open_invoices(billing)] == [paper["id"]]
    again = billing.post(claim, PARENT, json={"reference": paper["reference"],
                                              "amount": "42.00"})
    assert again.status_code == 200

    # now the household's: to anyone else it looks exactly like a wrong reference
    taken = billing.post(claim, OTHER_PARENT, json={"reference": paper["reference"],
                                                    "amount": "42.00"})
    assert taken.status_code == 404
    assert taken.get_json() == wrong_reference.get_json()
    assert billing.post(claim, AGENT, json={"reference": "x", "amount": "1"}).status_code == 403


def test_claim_attempts_are_limited(billing):
    paper = paper_invoice(billing)
    for _ in range(5):
        assert billing.post("/api/billing/invoices/claim", OTHER_PARENT,
                            json={"reference": "2026-JOL-000000",
                                  "amount": "1.00"}).status_code == 404
    blocked = billing.post("/api/billing/invoices/claim", OTHER_PARENT,
                           json={"reference": paper["reference"], "amount": "42.00"})
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers
    # another household is not held back
    assert billing.post("/api/billing/invoices/claim", PARENT,
                        json={"reference": paper["reference"],
                              "amount": "42.00"}).status_code == 200


def test_annual_attestation_of_amounts_paid(billing):
    october_for_family(billing)
    finalise_month(billing)
    (invoice,) = open_invoices(billing)
    payment = billing.post("/api/billing/payments", PARENT, json={
        "invoice_ids": [invoice["id"]],
        "return_url": "https://portail.example.fr/factures"}).get_json()["payment_id"]
    callback(billing, payment, "paid", "24.60")
    year = datetime.now(UTC).year
    answer = billing.get(f"/api/billing/communes/jolieville/attestations/{year}/pdf", PARENT)
    assert answer.status_code == 200
    assert answer.mimetype == "application/pdf"
    text = pdf_text(answer.data)
    assert b"24,60 EUR" in text and b"Restauration scolaire" in text
    other = billing.get(f"/api/billing/communes/jolieville/attestations/{year}/pdf",
                        OTHER_PARENT)
    assert other.status_code == 200
    assert b"24,60" not in pdf_text(other.data)


def test_cancelling_an_invoice_gives_its_credit_back(billing):
    note = billing.post("/api/billing/communes/jolieville/credit-notes", AGENT, json={
        "family_id": OTHER_FAMILY, "amount": "5.00", "reason": "Geste"}).get_json()
    invoice = paper_invoice(billing, "8.00", family_id=OTHER_FAMILY)
    assert invoice["amount_credited"] == "5.00"
    cancelled = billing.post(
        f"/api/billing/communes/jolieville/invoices/{invoice['id']}/cancel", AGENT)
    assert cancelled.get_json()["status"] == "cancelled"
    notes = billing.get("/api/billing/communes/jolieville/credit-notes", OTHER_PARENT)
    assert [(n["id"], n["remaining"]) for n in notes.get_json()["items"]] == [
        (note["id"], "5.00")]


def test_openapi_document(billing):
    spec = billing.get("/api/billing/openapi.json").get_json()
    for path in ("/api/billing/payments", "/api/billing/invoices/claim",
                 "/api/billing/communes/{slug}/invoicing-runs"):
        assert path in spec["paths"]
