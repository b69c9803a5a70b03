"""The accessibility self-check of ``test_accessibility`` on every reservation page, as shown
and as sent back refused: language, title, one h1, landmarks, unique ids, labelled controls,
references that exist, CSRF token in every POST form."""

from __future__ import annotations

import pytest

from .reservations_support import (
    API,
    ATTENDANCE_API,
    BASKET_API,
    BASKET_ID,
    CANCELLATIONS_API,
    CHECKOUT_API,
    EMPTY_BASKET,
    ITEMS_API,
    JULES_FERRY,
    LOISIRS,
    MERCREDI,
    REPAS,
    SHEET,
    WEEK,
    checkout_answer,
    reservations_agent,
    reservations_parent,
)
from .support import FakeGateway, build, csrf_token, problem
from .test_accessibility import check

WEEK_PAGE = f"/reservations?enfant=c1&semaine={WEEK}"
REGISTER = f"/agent/pointage?site={JULES_FERRY}&date=2026-10-08"
RETURN = f"/reservations/panier/retour?commune=jolieville&basket={BASKET_ID}"
CONFLICT = {"child_id": "c1", "activity_id": REPAS, "date": "2026-10-08", "rule": "deadline",
            "message": "Léa ne peut plus être inscrite le jeudi 8 octobre 2026.",
            "deadline": "2026-10-07T09:00:00+02:00"}

PARENT_GET = [WEEK_PAGE, "/reservations", "/reservations?enfant=c2&vue=mois&mois=2026-10",
              f"/reservations?enfant=c1&service={LOISIRS}&semaine={WEEK}",
              "/reservations/periode", "/reservations/periode?enfant=c2",
              "/reservations/panier", "/reservations/reservations",
              "/reservations/reservations?enfant=c1&du=2026-10-01"]
AGENT_GET = ["/agent/pointage", REGISTER, REGISTER + "&q=mar", REGISTER + "&q=personne",
             "/agent/annulations", "/agent/occupation", "/agent/activites",
             "/agent/activites/nouvelle", f"/agent/activites/{MERCREDI}",
             "/agent/inscriptions"]


def client_for(fake: FakeGateway):
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    return client


@pytest.fixture
def parent_fake() -> FakeGateway:
    fake = FakeGateway()
    reservations_parent(fake)
    fake.on("GET", "/api/reservations/communes/jolieville/children/x/calendar", 404, {})
    return fake


@pytest.fixture
def agent_fake() -> FakeGateway:
    fake = FakeGateway()
    reservations_agent(fake)
    return fake


@pytest.mark.parametrize("path", PARENT_GET)
def test_parent_reservation_pages(parent_fake, path):
    response = client_for(parent_fake).get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


@pytest.mark.parametrize("status", ["paid", "confirmed", "checked_out", "expired", "failed",
                                    "open"])
def test_return_pages(parent_fake, status):
    body = checkout_answer("payment_required" if status == "checked_out" else "confirmed")
    parent_fake.on("GET", f"{API}/baskets/{BASKET_ID}", body={**body, "basket_status": status})
    response = client_for(parent_fake).get(RETURN)
    assert response.status_code == 200
    check(response.get_data(as_text=True), status)


def test_an_empty_basket_page(parent_fake):
    parent_fake.on("GET", BASKET_API, body=EMPTY_BASKET)
    check(client_for(parent_fake).get("/reservations/panier").get_data(as_text=True), "vide")


@pytest.mark.parametrize("path", AGENT_GET)
def test_agent_reservation_pages(agent_fake, path):
    response = client_for(agent_fake).get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


def test_a_locked_register(agent_fake):
    agent_fake.on("GET", ATTENDANCE_API, body={**SHEET, "locked": True})
    check(client_for(agent_fake).get(REGISTER).get_data(as_text=True), "verrouillé")


PARENT_REFUSED = [
    # (path, token page, data, what the fake answers first)
    ("/reservations/ajouter", WEEK_PAGE, {"enfant": "c1", "semaine": WEEK}, None),
    ("/reservations/ajouter", WEEK_PAGE, {"enfant": "c1", "jour": f"{REPAS}|2026-10-08"},
     ("POST", ITEMS_API, 422, problem(422, "Refusé.", conflicts=[CONFLICT]))),
    ("/reservations/absence", WEEK_PAGE, {"enfant": "c1", "annuler": "b1", "motif": "x"},
     ("POST", CANCELLATIONS_API, 409, problem(409, "Refusé.", conflicts=[CONFLICT]))),
    ("/reservations/periode", "/reservations/periode", {"start": "hier", "end": ""}, None),
    ("/reservations/periode", "/reservations/periode",
     {"children": ["c1", "c2"], "activity": MERCREDI, "start": "2026-09-01",
      "end": "2026-12-19", "weekdays": ["3"]},
     ("POST", ITEMS_API, 422, problem(422, "Aucun jour.", conflicts=[CONFLICT]))),
    ("/reservations/panier/valider", "/reservations/panier", {"panier": BASKET_ID},
     ("POST", CHECKOUT_API, 409, problem(409, "Refusé.", conflicts=[CONFLICT]))),
    ("/reservations/panier/valider", "/reservations/panier", {"panier": BASKET_ID},
     ("POST", CHECKOUT_API, 503, problem(503, "Paiement indisponible."))),
]


@pytest.mark.parametrize("path,token_from,data,answer", PARENT_REFUSED)
def test_refused_parent_forms(parent_fake, path, token_from, data, answer):
    client = client_for(parent_fake)
    token = csrf_token(client, token_from)
    if answer:
        parent_fake.on(*answer)
    response = client.post(path, data={**data, "csrf_token": token})
    html = response.get_data(as_text=True)
    page = check(html, f"POST {path}")
    assert response.status_code in (409, 422, 503)
    if response.status_code != 503:
        assert page.title.startswith("Erreur — "), page.title
        assert 'role="alert"' in html


AGENT_REFUSED = [
    ("/agent/pointage", REGISTER, {"site": JULES_FERRY, "date": "2026-10-08"}, None),
    ("/agent/pointage", REGISTER, {"site": JULES_FERRY, "date": "2026-10-08",
                                   f"m.c1.{REPAS}": "present"},
     ("PUT", ATTENDANCE_API, 409, problem(409, "Le pointage d'octobre 2026 est verrouillé."))),
    ("/agent/pointage/verrouiller", REGISTER, {"month": "13/2026"}, None),
    (f"/agent/activites/{MERCREDI}", f"/agent/activites/{MERCREDI}",
     {"label": "", "unit_price": "x", "booking_kind": "weekly", "booking_time": ""}, None),
    ("/agent/activites/nouvelle", "/agent/activites/nouvelle", {"code": ""}, None),
]


@pytest.mark.parametrize("path,token_from,data,answer", AGENT_REFUSED)
def test_refused_agent_forms(agent_fake, path, token_from, data, answer):
    client = client_for(agent_fake)
    token = csrf_token(client, token_from)
    if answer:
        agent_fake.on(*answer)
    response = client.post(path, data={**data, "csrf_token": token})
    html = response.get_data(as_text=True)
    page = check(html, f"POST {path}")
    assert response.status_code in (409, 422)
    assert page.title.startswith("Erreur — "), page.title
    assert 'role="alert"' in html
