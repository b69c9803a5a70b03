"""What the fake gateway answers for the reservation pages: activities, a child's calendar, the
basket, checkouts, bookings, the waiting list, the register, cancellations, occupancy."""

from __future__ import annotations

from typing import Any

from .support import FakeGateway

API = "/api/reservations/communes/jolieville"
ACTIVITIES_API = f"{API}/activities"
BASKET_API = f"{API}/basket"
ITEMS_API = f"{API}/basket/items"
CHECKOUT_API = f"{API}/basket/checkout"
BOOKINGS_API = f"{API}/bookings"
CANCELLATIONS_API = f"{API}/cancellations"
WAITING_API = f"{API}/waiting-list"
ATTENDANCE_API = f"{API}/attendance"
LOCKS_API = f"{API}/attendance/locks"
CHILDREN_API = f"{API}/children"
OCCUPANCY_API = f"{API}/occupancy"
ENROLMENTS_API = f"{API}/enrolments"


def calendar_api(child_id: str = "c1") -> str:
    return f"{API}/children/{child_id}/calendar"


RESTAURATION = "5e7a0000-0000-4000-8000-00000000a001"
PERISCOLAIRE = "5e7a0000-0000-4000-8000-00000000a002"
LOISIRS = "5e7a0000-0000-4000-8000-00000000a003"
JULES_FERRY = "5e7a0000-0000-4000-8000-00000000b001"
TILLEULS = "5e7a0000-0000-4000-8000-00000000b002"
REPAS = "5e7a0000-0000-4000-8000-00000000c001"
SOIR = "5e7a0000-0000-4000-8000-00000000c002"
MERCREDI = "5e7a0000-0000-4000-8000-00000000c003"
BOOKED = "5e7a0000-0000-4000-8000-00000000d001"
PRESENT = "5e7a0000-0000-4000-8000-00000000d002"
HELD = "5e7a0000-0000-4000-8000-00000000d003"
CANCELLED = "5e7a0000-0000-4000-8000-00000000d004"
BASKET_ID = "5e7a0000-0000-4000-8000-00000000e001"
LINE_REPAS = "5e7a0000-0000-4000-8000-00000000e101"
LINE_MERCREDI = "5e7a0000-0000-4000-8000-00000000e102"
PAYMENT_ID = "5e7a0000-0000-4000-8000-00000000f001"
OFFER_ID = "5e7a0000-0000-4000-8000-00000000f101"
WAITING_ID = "5e7a0000-0000-4000-8000-00000000f102"
REQUEST_ID = "5e7a0000-0000-4000-8000-00000000f201"
ENROLMENT_ID = "5e7a0000-0000-4000-8000-00000000f301"
PAYMENT_URL = f"http://127.0.0.1:8000/payments/simulator/{PAYMENT_ID}"
WEEK = "2026-10-05"  # a Monday


def activity(activity_id: str, **changes: Any) -> dict[str, Any]:
    data = {
        "id": activity_id, "code": "REPAS", "label": "Repas (restauration scolaire)",
        "service_id": RESTAURATION, "service_name": "Restauration scolaire",
        "site_id": JULES_FERRY, "site_name": "École Jules Ferry", "payment_mode": "monthly",
        "unit_price": "4.10", "capacity": None, "waiting_list_size": 0,
        "waiting_list_mode": "automatic", "offer_hours": 24,
        "booking_deadline": {"kind": "days_before", "days": 1, "time": "09:00"},
        "booking_deadline_label": "la veille à 09:00",
        "cancellation_deadline": {"kind": "days_before", "days": 1, "time": "09:00"},
        "cancellation_deadline_label": "la veille à 09:00", "late_cancellation": "refuse",
        "calendar": {"weekdays": [1, 2, 4, 5], "periods": [], "school_holidays": "closed",
                     "public_holidays": "closed"},
        "active": True,
    }
    data.update(changes)
    return data


A_REPAS = activity(REPAS)
A_SOIR = activity(SOIR, code="SOIR", label="Accueil périscolaire du soir",
                  service_id=PERISCOLAIRE, service_name="Accueil périscolaire",
                  payment_mode="prepaid", unit_price="3.20", late_cancellation="request")
A_MERCREDI = activity(MERCREDI, code="MERCREDI", label="Centre de loisirs du mercredi",
                      service_id=LOISIRS, service_name="Centre de loisirs", site_id=TILLEULS,
                      site_name="Centre des Tilleuls", payment_mode="prepaid",
                      unit_price="14.00", capacity=24, waiting_list_size=5,
                      booking_deadline={"kind": "weekly", "weekday": 4, "time": "12:00"},
                      booking_deadline_label="le jeudi à 12:00 pour la semaine suivante",
                      calendar={"weekdays": [3], "periods": [], "school_holidays": "open",
                                "public_holidays": "closed"})
CATALOGUE = {
    "items": [A_SOIR, A_MERCREDI, A_REPAS],
    "services": [{"id": PERISCOLAIRE, "name": "Accueil périscolaire", "kind": "periscolaire"},
                 {"id": LOISIRS, "name": "Centre de loisirs", "kind": "loisirs"},
                 {"id": RESTAURATION, "name": "Restauration scolaire", "kind": "restauration"}],
    "sites": [{"id": TILLEULS, "name": "Centre des Tilleuls"},
              {"id": JULES_FERRY, "name": "École Jules Ferry"}],
    "next": None,
}


def cell(activity_id: str, state: str, **changes: Any) -> dict[str, Any]:
    data = {"activity_id": activity_id, "state": state, "can_book": False, "can_cancel": False,
            "deadline": None, "booking_id": None, "reason": None, "cancel_mode": None,
            "can_wait": False, "waiting_list": None}
    data.update(changes)
    return data


def closed(activity_id: str, reason: str = "Fermé (pas d'activité ce jour)") -> dict:
    return cell(activity_id, "closed", reason=reason)


DAYS = {
    "2026-10-05": [
        cell(REPAS, "booked", can_cancel=True, booking_id=BOOKED, cancel_mode="immediate",
             deadline="2026-10-04T09:00:00+02:00"),
        cell(SOIR, "pending_payment", booking_id=HELD, reason="En attente de paiement",
             deadline="2026-10-05T10:30:00+02:00"),
        closed(MERCREDI)],
    "2026-10-06": [
        cell(REPAS, "present", booking_id=PRESENT),
        cell(SOIR, "cancelled", booking_id=CANCELLED, can_book=True,
             deadline="2026-10-06T10:00:00+02:00"),
        closed(MERCREDI)],
    "2026-10-07": [
        closed(REPAS, "Fermé (pas d'activité le mercredi)"),
        closed(SOIR, "Fermé (pas d'activité le mercredi)"),
        cell(MERCREDI, "full", reason="Complet", can_wait=True,
             deadline="2026-10-01T12:00:00+02:00")],
    "2026-10-08": [
        cell(REPAS, "available", can_book=True, deadline="2026-10-07T09:00:00+02:00"),
        cell(SOIR, "absent", booking_id="5e7a0000-0000-4000-8000-00000000d005"),
        closed(MERCREDI)],
    "2026-10-09": [
        cell(REPAS, "available", can_book=True, deadline="2026-10-08T09:00:00+02:00"),
        cell(SOIR, "excused", booking_id="5e7a0000-0000-4000-8000-00000000d006"),
        closed(MERCREDI)],
    "2026-10-10": [closed(REPAS, "Fermé (week-end)"), closed(SOIR, "Fermé (week-end)"),
                   closed(MERCREDI, "Fermé (week-end)")],
    "2026-10-11": [closed(REPAS, "Fermé (week-end)"), closed(SOIR, "Fermé (week-end)"),
                   closed(MERCREDI, "Fermé (week-end)")],
}


def calendar(child_id: str = "c1", first_name: str = "Léa", days: dict | None = None,
             activities: list[dict] | None = None, start: str = WEEK,
             end: str = "2026-10-11") -> dict[str, Any]:
    chosen = activities if activities is not None else [A_REPAS, A_SOIR, A_MERCREDI]
    ids = {a["id"] for a in chosen}
    return {"child_id": child_id, "child_first_name": first_name, "from": start, "to": end,
            "activities": chosen,
            "days": [{"date": d, "activities": [c for c in cells if c["activity_id"] in ids]}
                     for d, cells in (days or DAYS).items()]}


EMPTY_BASKET = {"id": None, "status": "open", "items": [], "total": "0.00",
                "to_pay_now": "0.00", "to_invoice": "0.00", "hold_minutes": 60}
BASKET = {
    "id": BASKET_ID, "status": "open", "hold_minutes": 60,
    "items": [
        {"id": LINE_REPAS, "child_id": "c1", "child_first_name": "Léa", "activity_id": REPAS,
         "activity_label": "Repas (restauration scolaire)",
         "service_name": "Restauration scolaire", "site_name": "École Jules Ferry",
         "payment_mode": "monthly", "pay_now": False, "unit_price": "4.10",
         "dates": ["2026-10-12", "2026-10-13"], "count": 2, "amount": "8.20"},
        {"id": LINE_MERCREDI, "child_id": "c2", "child_first_name": "Tom",
         "activity_id": MERCREDI, "activity_label": "Centre de loisirs du mercredi",
         "service_name": "Centre de loisirs", "site_name": "Centre des Tilleuls",
         "payment_mode": "prepaid", "pay_now": True, "unit_price": "14.00",
         "dates": ["2026-10-14"], "count": 1, "amount": "14.00"},
    ],
    "total": "22.20", "to_pay_now": "14.00", "to_invoice": "8.20",
}


def booking(booking_id: str, day: str, **changes: Any) -> dict[str, Any]:
    data = {"id": booking_id, "child_id": "c1", "child_first_name": "Léa",
            "activity_id": REPAS, "activity_label": "Repas (restauration scolaire)",
            "date": day, "status": "confirmed", "state": "booked", "payment_mode": "monthly",
            "unit_price": "4.10", "basket_id": BASKET_ID, "hold_expires_at": None,
            "attendance": None, "cancellation_id": None, "cancellation_pending": False,
            "refund": "0.00", "source": "basket"}
    data.update(changes)
    return data


def checkout_answer(status: str = "confirmed", **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "status": status, "basket_id": BASKET_ID,
        "bookings": [booking(BOOKED, "2026-10-08"), booking(PRESENT, "2026-10-09")],
        "waiting_list": [], "amount": "0.00"}
    if status == "payment_required":
        data.update(payment_url=PAYMENT_URL, payment_id=PAYMENT_ID, amount="14.00",
                    hold_expires_at="2026-10-05T09:00:00Z",
                    bookings=[booking(HELD, "2026-10-14", child_id="c2",
                                      child_first_name="Tom", activity_id=MERCREDI,
                                      activity_label="Centre de loisirs du mercredi",
                                      status="pending_payment", state="pending_payment",
                                      payment_mode="prepaid", unit_price="14.00")])
    data.update(changes)
    return data


WAITING = {"items": [
    {"id": OFFER_ID, "child_id": "c2", "child_first_name": "Tom", "activity_id": MERCREDI,
     "activity_label": "Centre de loisirs du mercredi", "date": "2026-10-14",
     "status": "offered", "position": 1, "offer_expires_at": "2026-10-06T08:00:00Z",
     "booking_id": None},
    {"id": WAITING_ID, "child_id": "c1", "child_first_name": "Léa", "activity_id": MERCREDI,
     "activity_label": "Centre de loisirs du mercredi", "date": "2026-10-21",
     "status": "waiting", "position": 3, "offer_expires_at": None, "booking_id": None},
], "next": None}


def reservations_parent(fake: FakeGateway) -> None:
    """The demo parent in JolieVille, as the reservations API answers them."""
    fake.parent()
    fake.on("GET", ACTIVITIES_API, body=CATALOGUE)
    fake.on("GET", calendar_api("c1"), body=calendar())
    fake.on("GET", calendar_api("c2"), body=calendar("c2", "Tom"))
    fake.on("GET", BASKET_API, body=BASKET)
    fake.on("GET", BOOKINGS_API, body={"items": [
        booking(BOOKED, "2026-10-05"),
        booking(CANCELLED, "2026-10-06", activity_id=SOIR,
                activity_label="Accueil périscolaire du soir", status="cancelled",
                state="cancelled", payment_mode="prepaid", unit_price="3.20", refund="3.20"),
        booking(PRESENT, "2026-10-06", state="present", attendance="present"),
        booking(HELD, "2026-10-08", cancellation_pending=True),
    ], "next": "curseur-2"})
    fake.on("GET", WAITING_API, body=WAITING)


SHEET = {
    "site_id": JULES_FERRY, "site_name": "École Jules Ferry", "date": "2026-10-08",
    "locked": False,
    "items": [
        {"booking_id": BOOKED, "child_id": "c1", "first_name": "Léa",
         "last_name": "CASSEREAU", "class_name": "CE2", "school": None, "allergies": True,
         "family_id": "f1", "activity_id": REPAS, "activity_code": "REPAS",
         "activity_label": "Repas (restauration scolaire)", "status": None, "expected": True,
         "recorded_at": None},
        {"booking_id": PRESENT, "child_id": "c9", "first_name": "Jules", "last_name": "MARTIN",
         "class_name": "GS", "school": None, "allergies": False, "family_id": "f9",
         "activity_id": REPAS, "activity_code": "REPAS",
         "activity_label": "Repas (restauration scolaire)", "status": "present",
         "expected": False, "recorded_at": "2026-10-08T10:00:00Z"},
        {"booking_id": HELD, "child_id": "c1", "first_name": "Léa", "last_name": "CASSEREAU",
         "class_name": "CE2", "school": None, "allergies": True, "family_id": "f1",
         "activity_id": SOIR, "activity_code": "SOIR",
         "activity_label": "Accueil périscolaire du soir", "status": "absent",
         "expected": True, "recorded_at": "2026-10-08T17:00:00Z"},
    ],
    "totals": [
        {"activity_id": SOIR, "code": "SOIR", "label": "Accueil périscolaire du soir",
         "expected": 1, "present": 0, "absent": 1, "excused": 0, "unmarked": 0, "allergies": 1},
        {"activity_id": REPAS, "code": "REPAS", "label": "Repas (restauration scolaire)",
         "expected": 2, "present": 1, "absent": 0, "excused": 0, "unmarked": 1,
         "allergies": 1},
    ],
    "next": None,
}
PENDING_CANCELLATIONS = {"items": [
    {"id": REQUEST_ID, "child_id": "c1", "child_first_name": "Léa", "family_id": "f1",
     "activity_id": SOIR, "activity_label": "Accueil périscolaire du soir",
     "booking_ids": [BOOKED], "dates": ["2026-10-08"], "reason": "Rendez-vous médical",
     "status": "pending", "within_deadline": False, "refund": "0.00",
     "created_at": "2026-10-08T08:30:00Z", "decided_at": None, "agent_message": None},
], "next": None}
OCCUPANCY = {"items": [  # by activity, as the API sorts them: not in the order of days
    {"activity_id": REPAS, "activity_label": "Repas (restauration scolaire)",
     "site_id": JULES_FERRY, "date": "2026-10-08", "capacity": None, "booked": 131,
     "pending_payment": 0, "offered": 0, "waiting": 0, "available": None, "present": 120,
     "absent": 6, "excused": 5},
    {"activity_id": MERCREDI, "activity_label": "Centre de loisirs du mercredi",
     "site_id": TILLEULS, "date": "2026-10-07", "capacity": 24, "booked": 22,
     "pending_payment": 2, "offered": 0, "waiting": 3, "available": 0, "present": 0,
     "absent": 0, "excused": 0},
], "next": None}
PENDING_ENROLMENTS = {"items": [
    {"id": ENROLMENT_ID, "child_id": "c2", "child_first_name": "Tom",
     "child_last_name": "CASSEREAU", "family_id": "f1", "service_id": LOISIRS,
     "service_name": "Centre de loisirs", "school_year_id": "sy", "school_year": "2026-2027",
     "status": "pending", "message": None, "created_at": "2026-09-01T08:00:00Z",
     "decided_at": None},
], "next": None}


def reservations_agent(fake: FakeGateway) -> None:
    fake.agent()
    fake.on("GET", ACTIVITIES_API, body=CATALOGUE)
    fake.on("GET", ATTENDANCE_API, body=SHEET)
    fake.on("GET", LOCKS_API, body={"items": [
        {"month": "2026-09", "locked_at": "2026-10-02T08:00:00Z"}], "next": None})
    fake.on("GET", CHILDREN_API, body={"items": [
        {"id": "c9", "first_name": "Jules", "last_name": "MARTIN", "birth_date": "2019-06-01",
         "school": None, "class_name": "GS", "allergies": False, "family_id": "f9",
         "family_name": "MARTIN"}], "next": None})
    fake.on("GET", CANCELLATIONS_API, body=PENDING_CANCELLATIONS)
    fake.on("GET", OCCUPANCY_API, body=OCCUPANCY)
    fake.on("GET", f"{ACTIVITIES_API}/{MERCREDI}", body=A_MERCREDI)
    fake.on("GET", ENROLMENTS_API, body=PENDING_ENROLMENTS)
