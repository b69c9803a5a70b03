"""The payment provider's notification never arrives: reconciliation settles the payment.

The simulator records what its "bank" decided before notifying (as a bank does) and answers
``poll`` from that record; ``deliver=0`` drops the notification on purpose (the fault suite's
"notification never arrives").
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import partial

from services.billing.events import on_basket_expired
from services.billing.operations import expire_payments
from tests.billing.support import PARENT, event
from tests.billing.test_checkout import checkout
from tests.billing.test_payments import start_payment, two_invoices


def pay_without_notifying(billing, payment_id: str, action: str = "pay"):
    page = billing.get(f"/payments/simulator/{payment_id}")
    token = re.search(r'name="token" value="([0-9a-f]+)"', page.get_data(as_text=True))
    return billing.post(f"/payments/simulator/{payment_id}",
                        data={"token": token.group(1), "action": action, "deliver": "0"})


def status_of(billing, payment_id: str) -> str:
    return billing.get(f"/api/billing/payments/{payment_id}", PARENT).get_json()["status"]


def test_a_lost_notification_is_recovered_by_reconciliation(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    assert pay_without_notifying(billing, payment).status_code == 303
    assert status_of(billing, payment) == "waiting"  # nothing arrived
    providers = billing.ops.providers
    assert expire_payments(billing.db, timedelta(seconds=-1), providers=providers) == 1
    assert status_of(billing, payment) == "paid"  # not expired: the bank said it was paid
    assert billing.get(f"/api/billing/invoices/{first['id']}", PARENT).get_json()["status"] \
        == "paid"
    (succeeded,) = billing.events("billing.payment.succeeded")
    assert succeeded["data"]["payment_id"] == payment
    assert billing.events("billing.payment.failed") == []


def test_the_bank_decides_once_a_second_click_sends_the_first_decision(billing):
    first, _ = two_invoices(billing)
    payment = start_payment(billing, [first["id"]]).get_json()["payment_id"]
    assert pay_without_notifying(billing, payment).status_code == 303
    # the parent comes back and refuses: the bank already took the money
    assert pay_without_notifying(billing, payment, "deny").status_code == 303
    expire_payments(billing.db, timedelta(seconds=-1), providers=billing.ops.providers)
    assert status_of(billing, payment) == "paid"


def test_an_expired_basket_paid_at_the_bank_is_not_cancelled(billing):
    """Fix: the basket's expiry cancelled its payment without asking the provider, and a
    cancelled payment is never reconciled: the family's money was lost."""
    billing.consumer.handlers["reservations.basket.expired"] = partial(
        on_basket_expired, providers=billing.ops.providers)
    answer = checkout(billing).get_json()
    assert pay_without_notifying(billing, answer["payment_id"]).status_code == 303
    billing.handle(event("reservations.basket.expired", payment_id=answer["payment_id"]))
    assert status_of(billing, answer["payment_id"]) == "paid"
    invoice = billing.get(f"/api/billing/invoices/{answer['invoice_id']}", PARENT).get_json()
    assert invoice["status"] == "paid"
    assert len(billing.events("billing.payment.succeeded")) == 1
    assert billing.events("billing.payment.failed") == []


def test_an_expired_basket_never_paid_is_cancelled(billing):
    billing.consumer.handlers["reservations.basket.expired"] = partial(
        on_basket_expired, providers=billing.ops.providers)
    answer = checkout(billing).get_json()
    billing.handle(event("reservations.basket.expired", payment_id=answer["payment_id"]))
    assert status_of(billing, answer["payment_id"]) == "cancelled"
