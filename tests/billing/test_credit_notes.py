"""Credit notes: refunds of cancelled prepaid bookings, corrections by agents."""

from __future__ import annotations

from tests.billing.support import (
    AGENT,
    CHILD_1,
    DAMMARTIN_AGENT,
    FAMILY,
    OTHER_PARENT,
    PARENT,
    event,
    finalise_month,
    october_for_family,
    open_invoices,
)

NOTES = "/api/billing/communes/jolieville/credit-notes"


def cancellation(**changes):
    return event("reservations.booking.cancelled", **changes)


def test_a_cancelled_prepaid_booking_is_refunded_once_and_used_on_the_next_invoice(billing):
    cancelled = cancellation()
    billing.handle(cancelled)
    (issued,) = billing.events("billing.credit_note.issued")
    assert issued["data"]["amount"] == "25.00"
    assert issued["data"]["origin"] == "booking_cancellation"
    assert issued["data"]["family_id"] == FAMILY
    assert issued["data"]["number"].startswith("20") and "-JOL-A" in issued["data"]["number"]
    # the same event again, or another event for the same bookings: nothing more
    assert billing.handle(cancelled) == "duplicate"
    billing.handle(cancellation())
    assert len(billing.events("billing.credit_note.issued")) == 1
    (note,) = billing.get(NOTES, PARENT).get_json()["items"]
    assert note["remaining"] == "25.00" and note["status"] == "available"

    october_for_family(billing, 6)  # 24.60 to pay
    finalise_month(billing)
    assert open_invoices(billing) == []
    paid = billing.get("/api/billing/communes/jolieville/invoices?status=paid",
                       PARENT).get_json()["items"]
    assert paid[0]["amount_credited"] == "24.60"
    (note,) = billing.get(NOTES, PARENT).get_json()["items"]
    assert note["remaining"] == "0.40"

    pdf = billing.get(f"/api/billing/credit-notes/{note['id']}/pdf", PARENT)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    assert billing.get(f"/api/billing/credit-notes/{note['id']}/pdf",
                       OTHER_PARENT).status_code == 404


def test_nothing_to_refund_makes_no_credit_note(billing):
    billing.handle(cancellation(within_deadline=False, refund_due="0.00", refund_lines=None))
    assert billing.events("billing.credit_note.issued") == []


def test_agents_correct_an_invoice_with_a_credit_note(billing):
    october_for_family(billing, 6)
    finalise_month(billing)
    (invoice,) = open_invoices(billing)
    answer = billing.post(NOTES, AGENT, json={"family_id": FAMILY, "amount": "4.10",
                                              "reason": "Repas du 2 octobre non servi",
                                              "invoice_id": invoice["id"]})
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["origin"] == "invoice_correction"
    after = billing.get(f"/api/billing/invoices/{invoice['id']}", PARENT).get_json()
    assert after["status"] == "partially_paid"
    assert after["amount_remaining"] == "20.50"
    assert billing.events("billing.credit_note.issued")[0]["data"]["invoice_id"] == invoice["id"]
    assert billing.post(NOTES, DAMMARTIN_AGENT, json={"family_id": FAMILY, "amount": "1.00",
                                                      "reason": "x"}).status_code == 403
    assert billing.post(NOTES, PARENT, json={"family_id": FAMILY, "amount": "1.00",
                                             "reason": "x"}).status_code == 403


def test_a_credit_note_left_unused_can_be_marked_to_refund(billing):
    answer = billing.post(NOTES, AGENT, json={"family_id": FAMILY, "amount": "12.00",
                                              "reason": "Départ de la commune"}).get_json()
    assert answer["origin"] == "manual"
    refunded = billing.post(f"{NOTES}/{answer['id']}/refund", AGENT)
    assert refunded.status_code == 200
    assert refunded.get_json()["status"] == "to_refund"
    # to be refunded: no longer used on new invoices
    october_for_family(billing, 1)
    finalise_month(billing)
    assert len(open_invoices(billing)) == 1


def test_refund_lines_refund_only_what_was_not_refunded_yet(billing):
    first = cancellation(booking_ids=["b0000000-0000-4000-8000-000000000001"],
                         dates=["2026-10-07"], refund_due="12.50",
                         refund_lines=[{"booking_id": "b0000000-0000-4000-8000-000000000001",
                                        "date": "2026-10-07", "amount": "12.50"}])
    billing.handle(first)
    billing.handle(cancellation())  # both bookings, with their lines: only the second is new
    amounts = [e["data"]["amount"] for e in billing.events("billing.credit_note.issued")]
    assert amounts == ["12.50", "12.50"]
    assert CHILD_1
