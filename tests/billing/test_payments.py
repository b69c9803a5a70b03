"""Online payments: the simulator's page, signed callbacks, idempotency, expiry."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from sqlalchemy import select

from services.billing.models import PaymentCallback
from services.billing.operations import expire_payments
from services.billing.providers import SIGNATURE_HEADER
from tests.billing.support import (
    AGENT,
    OTHER_PARENT,
    PARENT,
    PUBLIC_URL,
    RETURN_URL,
    finalise_month,
    october_for_family,
    open_invoices,
)


def two_invoices(billing):
    """Two open invoices of the household: a monthly one (24.60) and a manual one (10.00)."""
    october_for_family(billing)
    finalise_month(billing)
    manual = billing.post("/api/billing/communes/jolieville/invoices", AGENT, json={
        "family_id": PARENT.family_id, "lines": [{"label": "Sortie au musée", "quantity": 1,
                                                  "unit_price": "10.00"}]})
    assert manual.status_code == 201, manual.get_json()
    return sorted(open_invoices(billing), key=lambda i: i["reference"])


def start_payment(billing, invoice_ids, as_=PARENT, return_url=RETURN_URL):
    return billing.post("/api/billing/payments", as_,
                        json={"invoice_ids": invoice_ids, "return_url": return_url})


def simulate(billing, payment_id: str, action: str):
    page = billing.get(f"/payments/simulator/{payment_id}")
    assert page.status_code == 200
    token = re.search(r'name="token" value="([0-9a-f]+)"', page.get_data(as_text=True))
    return billing.post(f"/payments/simulator/{payment_id}",
                        data={"token": token.group(1), "action": action})


def callback(billing, payment_id, status, amount, *, key=None, headers=None):
    simulator = billing.ops.simulator()
    body = json.dumps({"payment_id": payment_id, "status": status, "amount": amount,
                       "reference": "SIM-TEST-0001"}).encode()
    signature = simulator.sign(body) if key is None else __import__("hmac").new(
        key, body, "sha256").hexdigest()
    return billing.client().post("/payments/callback/simulator", data=body,
                                 headers={SIGNATURE_HEADER: signature,
                                          "Content-Type": "application/json",
                                          **(headers or {})})


def test_paying_two_invoices_in_the_simulator(billing):
    first, second = two_invoices(billing)
    started = start_payment(billing, [first["id"], second["id"]])
    assert started.status_code == 201, started.get_json()
    payment = started.get_json()
    assert payment["amount"] == "34.60"
    assert payment["payment_url"] == f"{PUBLIC_URL}/payments/simulator/{payment['payment_id']}"

    page = billing.get(f"/payments/simulator/{payment['payment_id']}")
    html = page.get_data(as_text=True)
    assert page.mimetype == "text/html"
    assert '<html lang="fr">' in html
    assert html.count("<h1") == 1
    for label in ("Payer", "Refuser", "Abandonner"):
        assert f">{label}</button>" in html
    assert '<label for="card">' in html
    assert "34,60" in html
    state = billing.get(f"/api/billing/payments/{payment['payment_id']}", PARENT).get_json()
    assert state["status"] == "waiting"

    answer = simulate(billing, payment["payment_id"], "pay")
    assert answer.status_code == 303
    assert answer.headers["Location"] == RETURN_URL
    state = billing.get(f"/api/billing/payments/{payment['payment_id']}", PARENT).get_json()
    assert state == {**state, "status": "paid", "amount": "34.60",
                     "invoice_ids": [first["id"], second["id"]]}
    assert open_invoices(billing) == []
    paid = billing.get("/api/billing/communes/jolieville/invoices?status=paid",
                       PARENT).get_json()["items"]
    assert {i["id"] for i in paid} == {first["id"], second["id"]}
    detail = billing.get(f"/api/billing/invoices/{first['id']}", PARENT).get_json()
    assert all(ln["amount_remaining"] == "0.00" for ln in detail["lines"])
    (succeeded,) = billing.events("billing.payment.succeeded")
    assert succeeded["data"]["invoice_ids"] == [first["id"], second["id"]]
    assert succeeded["data"]["amount"] == "34.60"
    assert succeeded["data"]["basket_id"] is None
    assert succeeded["data"]["invoice_numbers"] == [first["reference"], second["reference"]]

    # the page, opened again, says it is over and offers the way back
    html = billing.get(f"/payments/simulator/{payment['payment_id']}").get_data(as_text=True)
    assert "terminé" in html and "<form" not in html


def test_refusal_and_abandon_fail_the_payment_and_leave_the_invoices_open(billing):
    first, _ = two_invoices(billing)
    for action, status in (("deny", "denied"), ("abandon", "cancelled")):
        payment = start_payment(billing, [first["id"]]).get_json()
        assert simulate(billing, payment["payment_id"], action).status_code == 303
        state = billing.get(f"/api/billing/payments/{payment['payment_id']}", PARENT)
        assert state.get_json()["status"] == status
    failed = billing.events("billing.payment.failed")
    assert [e["data"]["status"] for e in failed] == ["denied", "cancelled"]
    assert len(open_invoices(billing)) == 2


def test_a_replayed_notification_changes_nothing_and_a_late_refusal_never_unpays(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    assert callback(billing, payment, "paid", "24.60").get_json()["outcome"] == "applied"
    replay = callback(billing, payment, "paid", "24.60")
    assert replay.status_code == 200
    assert replay.get_json()["outcome"] == "ignored"
    late = callback(billing, payment, "denied", "24.60")
    assert late.status_code == 200
    assert billing.get(f"/api/billing/payments/{payment}", PARENT).get_json()["status"] == "paid"
    assert len(billing.events("billing.payment.succeeded")) == 1
    assert billing.events("billing.payment.failed") == []
    invoice = billing.get(f"/api/billing/invoices/{first['id']}", PARENT).get_json()
    assert invoice["status"] == "paid" and invoice["amount_paid"] == "24.60"


def test_forged_and_tampered_notifications_change_nothing_and_are_kept(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    forged = callback(billing, payment, "paid", "24.60", key=b"not the key")
    assert forged.status_code == 400
    assert forged.headers["Content-Type"] == "application/problem+json"
    unsigned = billing.client().post("/payments/callback/simulator", json={
        "payment_id": payment, "status": "paid", "amount": "24.60"})
    assert unsigned.status_code == 400
    tampered = callback(billing, payment, "paid", "0.01")  # signed, but not our amount
    assert tampered.status_code == 400
    assert billing.get(f"/api/billing/payments/{payment}", PARENT).get_json()["status"] == \
        "created"
    assert billing.events("billing.payment.succeeded") == []
    with billing.db.sessions() as session:
        outcomes = [c.outcome for c in session.scalars(
            select(PaymentCallback).order_by(PaymentCallback.received_at))]
    assert outcomes == ["rejected_signature", "rejected_signature", "rejected_amount"]
    # agents see the callbacks of a payment
    seen = billing.get(f"/api/billing/payments/{payment}", AGENT).get_json()
    assert [c["outcome"] for c in seen["callbacks"]] == ["rejected_amount"]
    assert billing.client().post("/payments/callback/nobody", data=b"{}").status_code == 404


def test_the_simulator_form_needs_its_token(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    answer = billing.post(f"/payments/simulator/{payment}", data={"token": "0" * 64,
                                                                   "action": "pay"})
    assert answer.status_code == 403
    assert billing.get(f"/api/billing/payments/{payment}", PARENT).get_json()["status"] == \
        "created"


def test_what_cannot_be_paid(billing):
    first, second = two_invoices(billing)
    assert start_payment(billing, [first["id"]], as_=OTHER_PARENT).status_code == 404
    assert start_payment(billing, [first["id"]], as_=AGENT).status_code == 403
    away = start_payment(billing, [first["id"]], return_url="https://evil.example.com/x")
    assert away.status_code == 422
    assert "return_url" in away.get_json()["errors"]
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    callback(billing, payment, "paid", "24.60")
    again = start_payment(billing, [first["id"], second["id"]])
    assert again.status_code == 422
    assert "déjà payée" in again.get_json()["errors"]["invoice_ids"][0]
    # someone else's payment is not theirs to see
    assert billing.get(f"/api/billing/payments/{payment}", OTHER_PARENT).status_code == 404


def test_payments_left_pending_expire_and_money_arriving_late_is_kept(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    assert expire_payments(billing.db, timedelta(hours=2)) == 0
    assert expire_payments(billing.db, timedelta(seconds=-1)) == 1
    assert billing.get(f"/api/billing/payments/{payment}", PARENT).get_json()["status"] == \
        "expired"
    (failed,) = billing.events("billing.payment.failed")
    assert failed["data"]["status"] == "expired"
    late = callback(billing, payment, "paid", "24.60")
    assert late.get_json()["outcome"] == "applied"
    assert billing.get(f"/api/billing/invoices/{first['id']}", PARENT).get_json()["status"] == \
        "paid"


def test_paying_twice_for_one_invoice_leaves_a_credit_not_a_loss(billing):
    first, second = two_invoices(billing)
    one = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    two = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    callback(billing, one, "paid", "24.60")
    callback(billing, two, "paid", "24.60")
    (note,) = billing.events("billing.credit_note.issued")
    assert note["data"]["amount"] == "24.60"
    # the credit went at once to the other open invoice (10.00); 14.60 remain available
    other = billing.get(f"/api/billing/invoices/{second['id']}", PARENT).get_json()
    assert other["status"] == "paid" and other["amount_credited"] == "10.00"
    notes = billing.get("/api/billing/communes/jolieville/credit-notes", PARENT).get_json()
    assert [n["remaining"] for n in notes["items"]] == ["14.60"]


def test_payments_list_for_agents(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    items = billing.get("/api/billing/communes/jolieville/payments", AGENT).get_json()["items"]
    assert [p["id"] for p in items] == [payment]
    assert billing.get("/api/billing/communes/jolieville/payments?status=paid",
                       AGENT).get_json()["items"] == []
    assert billing.get("/api/billing/communes/jolieville/payments", PARENT).status_code == 403


def test_counter_payment_recorded_by_an_agent(billing):
    first, _ = two_invoices(billing)
    answer = billing.post(f"/api/billing/communes/jolieville/invoices/{first['id']}/payments",
                          AGENT, json={"amount": "20.00", "method": "cheque"})
    assert answer.status_code == 201, answer.get_json()
    invoice = billing.get(f"/api/billing/invoices/{first['id']}", PARENT).get_json()
    assert invoice["status"] == "partially_paid"
    assert invoice["amount_remaining"] == "4.60"
    assert [ln["amount_paid"] for ln in invoice["lines"]] == ["20.00"]
    assert billing.events("billing.payment.succeeded")[0]["data"]["amount"] == "20.00"
    too_much = billing.post(
        f"/api/billing/communes/jolieville/invoices/{first['id']}/payments", AGENT,
        json={"amount": "5.00", "method": "cash"})
    assert too_much.status_code == 422
