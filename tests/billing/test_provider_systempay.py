"""SystemPay (Lyra's "vads_" form protocol) through eopayment: the signed-callback provider.

Notifications are built here as SystemPay sends them (a form of ``vads_`` fields) and signed
with an implementation of the public protocol written for these tests, independent of
eopayment's: HMAC-SHA-256 with the shop's key over the values of the ``vads_`` fields sorted by
name, joined with ``+``, followed by ``+`` and the key, in base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from html import unescape
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from services.billing import operations
from services.billing.models import PaymentCallback
from tests.billing.support import (
    AGENT,
    EXAMPLES,
    FAMILY,
    PARENT,
    PUBLIC_URL,
    RETURN_URL,
    build,
    event,
)

SITE_ID = "12345678"
KEY = "hUFp1dVmqJ7cP3iq"
OTHER_SITE_ID = "87654321"  # another commune's shop
OTHER_KEY = "Zx9Yw8Vu7Ts6Rq5P"
ENV = {
    "SYSTEMPAY_SYSTEMPAY_JOLIEVILLE_SITE_ID": SITE_ID,
    "SYSTEMPAY_SYSTEMPAY_JOLIEVILLE_KEY": KEY,
    "SYSTEMPAY_SYSTEMPAY_JOLIEVILLE_MODE": "TEST",
    "SYSTEMPAY_AUTRE_COMMUNE_SITE_ID": OTHER_SITE_ID,
    "SYSTEMPAY_AUTRE_COMMUNE_KEY": OTHER_KEY,
    "SYSTEMPAY_AUTRE_COMMUNE_MODE": "TEST",
}
CALLBACK = "/payments/callback/systempay"
PAYMENT_PAGE = "https://paiement.systempay.fr/vads-payment/"


def use_systempay(billing) -> None:
    """JolieVille's settings now name its SystemPay shop (a newer version of the commune)."""
    data = {**EXAMPLES["accounts.commune.created"], "version": 2,
            "settings": {**EXAMPLES["accounts.commune.created"]["settings"],
                         "payment_config_ref": "systempay-jolieville"}}
    billing.handle(event("accounts.commune.updated", data=data))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def billing(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/billing.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    built = build(tmp_path, url, **ENV)
    use_systempay(built)
    yield built
    built.db.dispose()


@pytest.fixture
def security_events(monkeypatch) -> list[dict]:
    events: list[dict] = []
    real = operations.log

    class Recorder:
        def warning(self, name, **kw):
            if name == "security_event":
                events.append(kw)
            real.warning(name, **kw)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(operations, "log", Recorder())
    return events


# --- the protocol, written independently --------------------------------------------------------


def signature(fields: dict[str, str], key: str = KEY) -> str:
    values = [value for name, value in sorted(fields.items()) if name.startswith("vads_")]
    message = "+".join([*values, key]).encode()
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


def ipn(payment_id: str, *, amount: str = "2460", result: str = "00",
        trans_status: str = "AUTHORISED", site_id: str = SITE_ID, mode: str = "TEST",
        **changes: str) -> dict[str, str]:
    """An instant payment notification's fields, as SystemPay posts them."""
    fields = {
        "vads_action_mode": "INTERACTIVE", "vads_amount": amount, "vads_auth_mode": "FULL",
        "vads_auth_number": "3fd7c2" if result == "00" else "", "vads_auth_result": result,
        "vads_capture_delay": "0", "vads_card_brand": "CB",
        "vads_card_number": "497010XXXXXX0055", "vads_ctx_mode": mode, "vads_currency": "978",
        "vads_effective_amount": amount, "vads_effective_currency": "978",
        "vads_extra_result": "", "vads_hash": "9d0d55de0fdb6ef58e3b1df9f8bb4ff3",
        "vads_language": "fr", "vads_operation_type": "DEBIT",
        "vads_order_id": payment_id.replace("-", ""), "vads_order_info": "Factures",
        "vads_page_action": "PAYMENT", "vads_payment_config": "SINGLE",
        "vads_result": result, "vads_sequence_number": "1", "vads_site_id": site_id,
        "vads_trans_date": "20261012092131", "vads_trans_id": "a1B2c3",
        "vads_trans_status": trans_status,
        "vads_trans_uuid": "5d1e6e2b4bfa4a1c9a43e4bb5e1b8c2a", "vads_url_check_src": "PAY",
        "vads_validation_mode": "0", "vads_version": "V2", "vads_warranty_result": "YES",
    }
    fields.update(changes)
    return fields


def post(billing, fields: dict[str, str], *, key: str = KEY, signed: str | None = None):
    body = urlencode({**fields, "signature": signed or signature(fields, key)})
    return billing.client().post(CALLBACK, data=body,
                                 content_type="application/x-www-form-urlencoded")


# --- helpers ----------------------------------------------------------------------------------


def invoice(billing, amount: str = "24.60") -> dict:
    answer = billing.post("/api/billing/communes/jolieville/invoices", AGENT, json={
        "family_id": FAMILY, "lines": [{"label": "Restauration scolaire", "unit_price": amount}]})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def start(billing, invoice_id: str) -> dict:
    answer = billing.post("/api/billing/payments", PARENT,
                          json={"invoice_ids": [invoice_id], "return_url": RETURN_URL})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def status(billing, payment_id: str) -> str:
    return billing.get(f"/api/billing/payments/{payment_id}", PARENT).get_json()["status"]


def outcomes(billing) -> list[str]:
    with billing.db.sessions() as session:
        return [c.outcome for c in session.scalars(
            select(PaymentCallback).order_by(PaymentCallback.received_at))]


# --- the way to the payment page ----------------------------------------------------------------


def test_the_payment_url_leads_to_a_form_signed_for_the_shop(billing):
    bill = invoice(billing)
    payment = start(billing, bill["id"])
    payment_id = payment["payment_id"]
    assert payment["payment_url"] == f"{PUBLIC_URL}/payments/redirect/{payment_id}"
    seen = billing.get(f"/api/billing/payments/{payment_id}", AGENT).get_json()
    assert seen["provider"] == "systempay"

    page = billing.get(f"/payments/redirect/{payment_id}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<html lang="fr">' in html and html.count("<h1") == 1
    assert f'action="{PAYMENT_PAGE}"' in html
    assert ">Continuer vers le paiement sécurisé</button>" in html
    fields = {unescape(n): unescape(v) for n, v in
              re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)}
    assert fields["vads_site_id"] == SITE_ID and fields["vads_ctx_mode"] == "TEST"
    assert fields["vads_amount"] == "2460" and fields["vads_currency"] == "978"
    assert fields["vads_order_id"] == payment_id.replace("-", "")
    assert fields["vads_url_check"] == f"{PUBLIC_URL}{CALLBACK}"
    assert fields["vads_url_return"] == RETURN_URL
    assert bill["reference"] in fields["vads_order_info"]
    assert fields["signature"] == signature(fields)  # the protocol, as written above
    csp = page.headers["Content-Security-Policy"]
    assert "form-action https://paiement.systempay.fr;" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in html
    assert page.headers["Cache-Control"] == "no-store"
    assert status(billing, payment_id) == "waiting"

    assert post(billing, ipn(payment_id)).status_code == 200
    over = billing.get(f"/payments/redirect/{payment_id}").get_data(as_text=True)
    assert "terminé" in over and "<form" not in over
    assert billing.get("/payments/redirect/00000000-0000-4000-8000-000000000000"
                       ).status_code == 404


# --- notifications ----------------------------------------------------------------------------


def test_a_validly_signed_notification_pays(billing):
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    answer = post(billing, ipn(payment_id))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"status": "ok", "outcome": "applied"}
    assert status(billing, payment_id) == "paid"
    got = billing.get(f"/api/billing/invoices/{bill['id']}", PARENT).get_json()
    assert got["status"] == "paid"
    (succeeded,) = billing.events("billing.payment.succeeded")
    assert succeeded["data"]["provider"] == "systempay"
    assert succeeded["data"]["provider_reference"] == "5d1e6e2b4bfa4a1c9a43e4bb5e1b8c2a"


def test_refusal_and_abandon(billing):
    bill = invoice(billing)
    refused = start(billing, bill["id"])["payment_id"]
    assert post(billing, ipn(refused, result="05", trans_status="REFUSED")).status_code == 200
    assert status(billing, refused) == "denied"
    abandoned = start(billing, bill["id"])["payment_id"]
    assert post(billing, ipn(abandoned, result="17", trans_status="ABANDONED",
                             vads_auth_result="")).status_code == 200
    assert status(billing, abandoned) == "cancelled"
    assert [e["data"]["status"] for e in billing.events("billing.payment.failed")] == [
        "denied", "cancelled"]


def test_a_forged_signature_changes_nothing_and_is_a_security_event(billing, security_events):
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    forged = post(billing, ipn(payment_id), key="NotTheShopKey123")
    assert forged.status_code == 400
    assert forged.headers["Content-Type"] == "application/problem+json"
    unsigned = billing.client().post(CALLBACK, data=urlencode(ipn(payment_id)),
                                     content_type="application/x-www-form-urlencoded")
    assert unsigned.status_code == 400
    # signed with the right key, but claiming production while the shop is configured in test
    production = ipn(payment_id, mode="PRODUCTION")
    assert post(billing, production).status_code == 400
    unknown_shop = post(billing, ipn(payment_id, site_id="11111111"))
    assert unknown_shop.status_code == 400
    assert billing.client().post(CALLBACK, data=b"\xff\xfe",
                                 content_type="application/x-www-form-urlencoded"
                                 ).status_code == 400
    assert status(billing, payment_id) == "created"
    assert billing.events("billing.payment.succeeded") == []
    assert outcomes(billing) == ["rejected_signature"] * 5
    assert [e["kind"] for e in security_events] == ["payment_callback_rejected"] * 5
    assert "signature" in security_events[0]["reason"]


def test_a_tampered_amount_is_refused(billing, security_events):
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    genuine = ipn(payment_id, amount="100")  # a genuine notification... for 1,00 €
    tampered = {**genuine, "vads_amount": "2460", "vads_effective_amount": "2460"}
    assert post(billing, tampered, signed=signature(genuine)).status_code == 400
    assert post(billing, genuine).status_code == 400  # signed, but not our amount
    assert status(billing, payment_id) == "created"
    assert billing.events("billing.payment.succeeded") == []
    assert outcomes(billing) == ["rejected_signature", "rejected_amount"]
    assert [e["reason"] for e in security_events][1] == "rejected_amount"


def test_a_replay_is_ignored(billing):
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    fields = ipn(payment_id)
    assert post(billing, fields).get_json()["outcome"] == "applied"
    replay = post(billing, fields)
    assert replay.status_code == 200 and replay.get_json()["outcome"] == "ignored"
    assert len(billing.events("billing.payment.succeeded")) == 1
    got = billing.get(f"/api/billing/invoices/{bill['id']}", PARENT).get_json()
    assert got["amount_paid"] == "24.60"


def test_a_refusal_arriving_after_the_payment_leaves_it_paid(billing):
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    assert post(billing, ipn(payment_id)).get_json()["outcome"] == "applied"
    late = post(billing, ipn(payment_id, result="05", trans_status="REFUSED",
                             vads_trans_id="z9Y8x7"))
    assert late.status_code == 200 and late.get_json()["outcome"] == "ignored"
    assert status(billing, payment_id) == "paid"
    assert billing.events("billing.payment.failed") == []


def test_a_refusal_then_the_payment_ends_paid(billing):
    """Out of order the other way: a first attempt refused, a second one paid."""
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    post(billing, ipn(payment_id, result="05", trans_status="REFUSED"))
    assert status(billing, payment_id) == "denied"
    assert post(billing, ipn(payment_id, vads_trans_id="b2C3d4")).get_json()["outcome"] == \
        "applied"
    assert status(billing, payment_id) == "paid"


def test_only_paid_when_the_transaction_is_authorised(billing):
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    waiting = post(billing, ipn(payment_id, trans_status="WAITING_AUTHORISATION"))
    assert waiting.status_code == 200
    assert status(billing, payment_id) == "waiting"
    assert billing.events("billing.payment.succeeded") == []


def test_another_communes_shop_cannot_pay_our_payment(billing, security_events):
    """A notification validly signed by another shop of the platform, naming our payment."""
    bill = invoice(billing)
    payment_id = start(billing, bill["id"])["payment_id"]
    answer = post(billing, ipn(payment_id, site_id=OTHER_SITE_ID), key=OTHER_KEY)
    assert answer.status_code == 400
    assert status(billing, payment_id) == "created"
    assert outcomes(billing) == ["rejected_account"]
    assert [e["reason"] for e in security_events] == ["rejected_account"]

