"""Prepaid baskets: reservations asks billing for an invoice and a payment (idempotent)."""

from __future__ import annotations

import copy

from tests.billing.support import (
    ACTIVITY,
    ACTIVITY_2,
    CHILD_1,
    CHILD_2,
    COMMUNE,
    FAMILY,
    PARENT,
    PUBLIC_URL,
    event,
)
from tests.billing.test_payments import callback, simulate

BASKET = "ba000000-0000-4000-8000-000000000001"
BODY = {
    "basket_id": BASKET, "family_id": FAMILY, "commune_id": COMMUNE,
    "lines": [
        {"booking_ids": ["b0000000-0000-4000-8000-000000000001",
                         "b0000000-0000-4000-8000-000000000002"],
         "child_id": CHILD_1, "child_name": "Léa", "activity_id": ACTIVITY,
         "activity_name": "Centre de loisirs mercredi", "dates": ["2026-12-02", "2026-12-09"],
         "unit_price": "14.00", "amount": "28.00"},
        {"booking_ids": [], "child_id": CHILD_2, "child_name": "Tom",
         "activity_id": ACTIVITY_2, "activity_name": "Accueil périscolaire soir",
         "dates": ["2026-12-01"], "unit_price": "3.20", "amount": "3.20"},
    ],
    "amount": "31.20",
    "return_url": f"{PUBLIC_URL}/reservations/panier/retour?payment=x",
}


def checkout(billing, body=None, key=BASKET, caller="reservations"):
    return billing.internal("/internal/checkouts", body or BODY, key=key, caller=caller)


def test_a_basket_gets_an_invoice_and_a_payment_once(billing):
    first = checkout(billing)
    assert first.status_code == 201, first.get_json()
    answer = first.get_json()
    assert set(answer) == {"payment_id", "payment_url", "invoice_id"}
    assert answer["payment_url"].endswith(f"/payments/simulator/{answer['payment_id']}")
    again = checkout(billing)
    assert again.status_code == 200
    assert again.get_json() == answer
    invoice = billing.get(f"/api/billing/invoices/{answer['invoice_id']}", PARENT).get_json()
    assert invoice["kind"] == "basket" and invoice["amount"] == "31.20"
    assert [ln["detail"] for ln in invoice["lines"]] == ["2 jours 28,00\u00a0€",
                                                         "1 jour 3,20\u00a0€"]
    payment = billing.get(f"/api/billing/payments/{answer['payment_id']}", PARENT).get_json()
    assert payment["status"] == "created" and payment["basket_id"] == BASKET
    assert billing.events("billing.invoice.issued") == []
    # paid from the basket only (its payment carries the basket id reservations waits for)
    assert invoice["can_pay_online"] is False
    direct = billing.post("/api/billing/payments", PARENT, json={
        "invoice_ids": [answer["invoice_id"]], "return_url": BODY["return_url"]})
    assert direct.status_code == 422


def test_the_same_basket_with_another_content_is_a_conflict(billing):
    assert checkout(billing).status_code == 201
    changed = copy.deepcopy(BODY)
    changed["lines"][1]["amount"] = changed["lines"][1]["unit_price"] = "4.20"
    changed["amount"] = "32.20"
    assert checkout(billing, changed).status_code == 409


def test_checkout_is_checked(billing):
    assert checkout(billing, key=None).status_code == 428
    assert checkout(billing, key="ba000000-0000-4000-8000-000000000999").status_code == 422
    assert checkout(billing, caller="requests").status_code == 403
    assert billing.client().post("/internal/checkouts", json=BODY,
                                 headers={"Idempotency-Key": BASKET}).status_code == 401
    person = billing.post("/internal/checkouts", PARENT, json=BODY,
                          headers={"Idempotency-Key": BASKET})
    assert person.status_code == 401
    wrong_sum = {**BODY, "amount": "30.00"}
    assert checkout(billing, wrong_sum).status_code == 422
    elsewhere = {**BODY, "return_url": "https://ailleurs.example.com/"}
    assert checkout(billing, elsewhere).status_code == 422


def test_a_paid_basket_says_so_with_its_basket_id(billing):
    answer = checkout(billing).get_json()
    assert simulate(billing, answer["payment_id"], "pay").headers["Location"] == \
        BODY["return_url"]
    (succeeded,) = billing.events("billing.payment.succeeded")
    assert succeeded["data"]["basket_id"] == BASKET
    assert succeeded["data"]["invoice_ids"] == [answer["invoice_id"]]
    assert succeeded["commune_id"] == COMMUNE


def test_an_expired_basket_cancels_its_payment_and_a_late_success_still_counts(billing):
    answer = checkout(billing).get_json()
    expired = event("reservations.basket.expired", payment_id=answer["payment_id"])
    billing.handle(expired)
    assert billing.handle(expired) == "duplicate"
    payment = billing.get(f"/api/billing/payments/{answer['payment_id']}", PARENT).get_json()
    assert payment["status"] == "cancelled"
    (failed,) = billing.events("billing.payment.failed")
    assert failed["data"]["basket_id"] == BASKET
    assert failed["data"]["status"] == "cancelled"
    invoice = billing.get(f"/api/billing/invoices/{answer['invoice_id']}", PARENT).get_json()
    assert invoice["status"] == "cancelled"
    # the bank's answer arrives after all: the money is recorded, reservations decides
    assert callback(billing, answer["payment_id"], "paid", "31.20").get_json()["outcome"] == \
        "applied"
    invoice = billing.get(f"/api/billing/invoices/{answer['invoice_id']}", PARENT).get_json()
    assert invoice["status"] == "paid"
    assert len(billing.events("billing.payment.succeeded")) == 1
