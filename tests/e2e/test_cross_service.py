"""What crosses services, end to end in the embedded suite, through the public API only.

A prepaid leisure-centre Wednesday is booked and paid in the simulator (reservations →
billing → bus → reservations); the parent then sends « Absence justifiée » for that day, an
agent accepts it (requests → bus → reservations), the day shows as excused, and billing issues
the credit note for the refund (reservations → bus → billing), which the family is told about.
"""

from __future__ import annotations

import os
import re

import pytest
import requests

from suite.embedded import EmbeddedSuite
from tests.e2e.support import eventually, login

C = "jolieville"
WEDNESDAY = "2026-12-09"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    saved = dict(os.environ)
    suite = EmbeddedSuite("127.0.0.1", 0, tmp_path_factory.mktemp("cross"))
    suite.start(fresh=True)
    try:
        yield suite
    finally:
        suite.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def test_a_paid_day_excused_by_an_accepted_absence_is_refunded(suite):
    base = suite.url
    parent = login(base, "parent@famille.test")
    agent = login(base, "agent@jolieville.test")
    lea = next(c for c in parent.get(f"{base}/api/accounts/me/family").json()["children"]
               if c["first_name"] == "Léa")
    activities = eventually(lambda: parent.get(
        f"{base}/api/reservations/communes/{C}/activities").json().get("items"))
    wednesday = next(a for a in activities if a["code"] == "MERCREDI")
    assert wednesday["payment_mode"] == "prepaid"

    # Book and pay.
    eventually(lambda: parent.post(f"{base}/api/reservations/communes/{C}/basket/items", json={
        "child_id": lea["id"], "activity_id": wednesday["id"], "dates": [WEDNESDAY]},
    ).status_code == 201)
    checkout = parent.post(f"{base}/api/reservations/communes/{C}/basket/checkout", json={})
    assert checkout.status_code == 200, checkout.text
    assert checkout.json()["status"] == "payment_required"
    bank = requests.get(checkout.json()["payment_url"], timeout=10)
    token = re.search(r'name="token" value="([0-9a-f]+)"', bank.text).group(1)
    paid = requests.post(checkout.json()["payment_url"], data={"token": token, "action": "pay"},
                         allow_redirects=False, timeout=10)
    assert paid.status_code == 303

    def cell():
        calendar = parent.get(
            f"{base}/api/reservations/communes/{C}/children/{lea['id']}/calendar",
            params={"activity": wednesday["id"], "from": WEDNESDAY, "to": WEDNESDAY}).json()
        return calendar["days"][0]["activities"][0]

    eventually(lambda: cell()["state"] == "booked", timeout=20)

    # Justify an absence that day; the agent accepts.
    category = next(c for c in parent.get(f"{base}/api/requests/communes/{C}/categories")
                    .json()["items"] if c["kind"] == "absence_justification")
    reason = next(f for f in category["fields"] if f["name"] == "reason")
    sent = parent.post(f"{base}/api/requests/communes/{C}/requests",
                       files={"category": (None, category["id"]), "child": (None, lea["id"]),
                              "from": (None, WEDNESDAY), "to": (None, WEDNESDAY),
                              "reason": (None, reason["options"][0]["value"])})
    assert sent.status_code == 201, sent.text
    request_id = sent.json()["id"]
    for status in ("in_progress", "accepted"):
        moved = agent.post(f"{base}/api/requests/communes/{C}/requests/{request_id}/transition",
                           json={"status": status, "message": "Absence justifiée."})
        assert moved.status_code == 200, moved.text

    # Reservations excuses the day; billing refunds it by a credit note; the family is told.
    eventually(lambda: cell()["state"] == "excused", timeout=20)

    def credit_note():
        notes = parent.get(f"{base}/api/billing/communes/{C}/credit-notes").json()["items"]
        return [n for n in notes if n["origin"] == "booking_cancellation"]

    notes = eventually(credit_note, timeout=20)
    assert notes[0]["amount"] == wednesday["unit_price"]
    eventually(lambda: any("avoir" in m["subject"].lower() for m in parent.get(
        f"{base}/api/notifications/me/messages").json()["items"]), timeout=20)
