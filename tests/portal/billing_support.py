"""What the fake gateway answers for the billing pages: invoices, payments, runs, tariffs."""

from __future__ import annotations

from typing import Any

from .support import FakeGateway

OPEN_ID = "0a7c2b8e-0000-4000-8000-000000000001"
PARTIAL_ID = "0a7c2b8e-0000-4000-8000-000000000002"
LATE_ID = "0a7c2b8e-0000-4000-8000-000000000003"
PAID_ID = "0a7c2b8e-0000-4000-8000-000000000004"
HIDDEN_ID = "0a7c2b8e-0000-4000-8000-000000000005"
PAYMENT_ID = "9b1d4f00-0000-4000-8000-0000000000aa"
RUN_ID = "5e3a9c00-0000-4000-8000-0000000000bb"

JV = {"id": "id-jolieville", "slug": "jolieville", "name": "JolieVille Test"}
INVOICES_API = "/api/billing/communes/jolieville/invoices"
CREDIT_NOTES_API = "/api/billing/communes/jolieville/credit-notes"
PAYMENTS_API = "/api/billing/payments"
RUNS_API = "/api/billing/communes/jolieville/invoicing-runs"
TARIFFS_API = "/api/billing/communes/jolieville/tariffs"
AGENT_PAYMENTS_API = "/api/billing/communes/jolieville/payments"


def invoice(invoice_id: str = OPEN_ID, **changes: Any) -> dict[str, Any]:
    data = {
        "id": invoice_id, "commune": JV, "reference": "2026-JOL-000154",
        "number": "2026-JOL-000154", "label": "Facture du 01/10/2026 — septembre 2026",
        "kind": "monthly", "period": "2026-09", "family_id": "f1",
        "payer_name": "Marie CASSEREAU", "issue_date": "2026-10-01", "due_date": "2026-10-31",
        "payment_deadline": "2026-11-15", "status": "open", "amount": "82.00",
        "amount_paid": "0.00", "amount_credited": "0.00", "amount_remaining": "82.00",
        "hidden": False, "can_pay_online": True, "services": ["Restauration scolaire"],
    }
    data.update(changes)
    return data


OPEN = invoice()
PARTIAL = invoice(PARTIAL_ID, reference="2026-JOL-000160", number="2026-JOL-000160",
                  status="partially_paid", amount="120.50", amount_paid="20.50",
                  amount_remaining="100.00", due_date="2026-11-30",
                  services=["Accueil périscolaire soir", "Restauration scolaire"])
LATE = invoice(LATE_ID, reference="2026-JOL-000101", number="2026-JOL-000101",
               can_pay_online=False, due_date="2026-05-31", payment_deadline="2026-06-15")
PAID = invoice(PAID_ID, reference="2026-JOL-000090", number="2026-JOL-000090",
               status="paid", amount="45.00", amount_paid="45.00", amount_remaining="0.00",
               can_pay_online=False)
HIDDEN = invoice(HIDDEN_ID, reference="2026-JOL-000080", number="2026-JOL-000080",
                 hidden=True)

LINES = [
    {"id": "l1", "child_id": "c1", "child_name": "Léa", "activity_id": "a1",
     "activity_name": "Restauration scolaire", "label": "Restauration scolaire — Léa",
     "quantity": 6, "unit": "jours", "unit_price": "4.10", "amount": "24.60",
     "amount_paid": "0.00", "amount_remaining": "24.60", "dates": [],
     "detail": "6 jours 24,60 €"},
    {"id": "l2", "child_id": "c2", "child_name": "Tom", "activity_id": "a2",
     "activity_name": "Accueil périscolaire soir", "label": "Accueil périscolaire soir — Tom",
     "quantity": 18, "unit": "jours", "unit_price": "3.20", "amount": "57.60",
     "amount_paid": "0.00", "amount_remaining": "57.60", "dates": [],
     "detail": "18 jours 57,60 €"},
]

CREDIT_NOTES = {"items": [
    {"id": "cn1", "number": "2026-JOL-A00003", "reference": "2026-JOL-A00003",
     "origin": "booking_cancellation", "reason": "Annulation du mercredi 14/10/2026",
     "amount": "14.00", "remaining": "14.00", "status": "available",
     "issue_date": "2026-10-12", "invoice_id": None},
], "next": None}


def payment(status: str = "paid", **changes: Any) -> dict[str, Any]:
    data = {"id": PAYMENT_ID, "status": status, "amount": "182.00",
            "invoice_ids": [OPEN_ID, PARTIAL_ID], "basket_id": None, "provider": "simulator",
            "method": "online", "created_at": "2026-10-20T08:00:00Z",
            "paid_at": "2026-10-20T08:01:00Z" if status == "paid" else None, "reason": None}
    data.update(changes)
    return data


def billing_parent(fake: FakeGateway) -> None:
    """The demo parent's invoices in JolieVille, as the billing API answers them."""
    fake.parent()
    fake.on("GET", INVOICES_API, body={"items": [OPEN, PARTIAL, LATE], "next": None})
    fake.on("GET", CREDIT_NOTES_API, body=CREDIT_NOTES)
    for item in (OPEN, PARTIAL, LATE, PAID, HIDDEN):
        fake.on("GET", f"/api/billing/invoices/{item['id']}", body={**item, "lines": LINES})


RUN_DRAFT = {
    "id": RUN_ID, "period": "2026-10", "status": "draft", "total": "106.60",
    "invoice_count": 2, "anomaly_count": 2, "created_at": "2026-11-02T09:00:00Z",
    "updated_at": "2026-11-02T09:05:00Z", "finalised_at": None,
    "invoices": [
        {"family_id": "f1", "family_name": "CASSEREAU", "total": "82.20", "lines": [
            {"child_id": "c1", "child_name": "Léa", "activity_id": "a1",
             "activity_name": "Restauration scolaire", "quantity": 6, "unit_price": "4.10",
             "amount": "24.60", "dates": [], "booking_ids": [],
             "label": "Restauration scolaire — Léa", "surcharge": False,
             "detail": "6 jours 24,60 €"},
            {"child_id": "c2", "child_name": "Tom", "activity_id": "a2",
             "activity_name": "Accueil périscolaire soir", "quantity": 18,
             "unit_price": "3.20", "amount": "57.60", "dates": [], "booking_ids": [],
             "label": "Accueil périscolaire soir — Tom", "surcharge": False,
             "detail": "18 jours 57,60 €"}]},
        {"family_id": "f9", "family_name": "MARTIN", "total": "24.40", "lines": [
            {"child_id": "c9", "child_name": "Jules", "activity_id": "a1",
             "activity_name": "Restauration scolaire", "quantity": 1, "unit_price": "5.10",
             "amount": "5.10", "dates": ["2026-10-07"], "booking_ids": [],
             "label": "Restauration scolaire — Jules (sans réservation)", "surcharge": True,
             "detail": "1 jour 5,10 €"},
            {"child_id": "c9", "child_name": "Jules", "activity_id": "a1",
             "activity_name": "Restauration scolaire", "quantity": 1, "unit_price": "19.30",
             "amount": "19.30", "dates": [], "booking_ids": [],
             "label": "Restauration scolaire — Jules", "surcharge": False,
             "detail": "1 jour 19,30 €"}]},
    ],
    "anomalies": [
        {"kind": "presence_without_booking", "family_id": "f9", "child_id": "c9",
         "activity_id": "a1", "date": "2026-10-07", "label": "Présence sans réservation"},
        {"kind": "booking_without_attendance", "family_id": "f1", "child_id": "c2",
         "activity_id": "a2", "date": "2026-10-13", "label": "Réservation sans pointage"},
    ],
}
RUN_FINALISED = {**RUN_DRAFT, "status": "finalised", "finalised_at": "2026-11-03T10:00:00Z"}

TARIFFS = {"items": [
    {"id": "t1", "activity_code": "REPAS", "activity_id": "act-repas",
     "label": "Restauration scolaire", "unit_price": None,
     "brackets": [{"max_quotient": 600, "price": "2.10"},
                  {"max_quotient": 1000, "price": "3.20"},
                  {"max_quotient": None, "price": "4.10"}],
     "reduced_from_child": 3, "reduced_rate": "20", "unbooked_surcharge": "1.00",
     "updated_at": "2026-09-01T08:00:00Z"},
    {"id": "t2", "activity_code": "ETUDE", "activity_id": "act-etude",
     "label": "Étude surveillée", "unit_price": "2.00", "brackets": [],
     "reduced_from_child": None, "reduced_rate": "0", "unbooked_surcharge": "0.00",
     "updated_at": "2026-09-01T08:00:00Z"},
], "next": None}

AGENT_PAYMENTS = {"items": [
    payment("paid", family_id="f1", provider_reference="SIM-123"),
    payment("denied", id="p2", amount="45.00", invoice_ids=[PAID_ID], paid_at=None,
            reason="Carte refusée", family_id="f1", provider_reference=None),
    payment("paid", id="p3", amount="20.00", invoice_ids=[LATE_ID], provider="counter",
            method="cheque", family_id="f1", provider_reference="CHQ 0042"),
], "next": "curseur-p2"}


def billing_agent(fake: FakeGateway) -> None:
    fake.agent()
    fake.on("GET", RUNS_API, body={"items": [
        {k: v for k, v in RUN_DRAFT.items() if k not in ("invoices", "anomalies")},
        {**{k: v for k, v in RUN_FINALISED.items() if k not in ("invoices", "anomalies")},
         "id": "r-sept", "period": "2026-09", "total": "1234.50", "invoice_count": 12,
         "anomaly_count": 0}], "next": None})
    fake.on("GET", f"{RUNS_API}/{RUN_ID}", body=RUN_DRAFT)
    fake.on("GET", TARIFFS_API, body=TARIFFS)
    fake.on("GET", AGENT_PAYMENTS_API, body=AGENT_PAYMENTS)
    fake.on("GET", INVOICES_API, body={"items": [OPEN, PAID], "next": None})
    fake.on("GET", CREDIT_NOTES_API, body={"items": [], "next": None})
    for item in (OPEN, PAID, LATE):
        fake.on("GET", f"/api/billing/invoices/{item['id']}", body={**item, "lines": LINES})
