"""The family's summary on the home page: one block per service; a slow or dead service shows
a French notice in its own block and the rest of the page is shown as usual."""

from __future__ import annotations

import requests

from .support import NEWS


def summary(fake, *, invoices=None, bookings=None, requests_=None):
    fake.parent()
    fake.on("GET", "/api/reservations/communes/jolieville/bookings", body=bookings or {
        "items": [{"id": "b1", "date": "2026-12-08", "child_first_name": "Léa",
                   "activity_label": "Repas (restauration scolaire)", "status": "confirmed"},
                  {"id": "b2", "date": "2026-12-07", "child_first_name": "Tom",
                   "activity_label": "Accueil du matin", "status": "cancelled"}],
        "next": None})
    fake.on("GET", "/api/billing/communes/jolieville/invoices", body=invoices or {
        "items": [{"id": "i1", "amount_remaining": "24.60"},
                  {"id": "i2", "amount_remaining": "10.00"}], "next": None})
    fake.on("GET", "/api/requests/communes/jolieville/requests", body=requests_ or {
        "items": [{"id": "r1", "status": "waiting_for_family"}, {"id": "r2", "status": "closed"}],
        "next": None})


def home(client) -> tuple[int, str]:
    client.set_cookie("portail_session", "s3cr3t")
    response = client.get("/")
    return response.status_code, response.get_data(as_text=True)


def test_the_summary_shows_each_services_block(client, fake):
    summary(fake)
    status, page = home(client)
    assert status == 200
    assert "Mes prochaines réservations" in page and "Léa, Repas (restauration scolaire)" in page
    assert "Tom" not in page.split("Mes prochaines réservations")[1].split("</section>")[0]
    assert "2 factures à payer, 34,60" in page
    assert "1 demande en cours, dont 1 en attente de votre réponse" in page
    assert NEWS["items"][0]["title"] in page
    query = fake.last_query("/api/billing/communes/jolieville/invoices")
    assert query["status"] == ["open"]


def test_a_dead_billing_leaves_the_rest_of_the_page(client, fake):
    summary(fake)
    fake.on("GET", "/api/billing/communes/jolieville/invoices", 502,
            {"status": 502, "detail": "Ce service du portail est momentanément indisponible."})
    status, page = home(client)
    assert status == 200
    assert "Vos factures ne peuvent pas être affichées pour le moment." in page
    assert "Léa, Repas (restauration scolaire)" in page  # reservations' block is there
    assert "1 demande en cours" in page
    assert NEWS["items"][0]["title"] in page


def test_a_slow_reservations_service_shows_a_notice_in_its_block(client, fake):
    summary(fake)

    def too_slow(_request):
        raise requests.ReadTimeout("lecture trop longue")

    fake.handle("GET", "/api/reservations/communes/jolieville/bookings", too_slow)
    status, page = home(client)
    assert status == 200
    assert "Vos prochaines réservations ne peuvent pas être affichées pour le moment." in page
    assert "2 factures à payer" in page


def test_the_blocks_are_asked_with_a_short_timeout(client, fake):
    summary(fake)
    timeouts = []
    send = fake.send

    def recording(request, **kwargs):
        timeouts.append((request.url, kwargs.get("timeout")))
        return send(request, **kwargs)

    fake.send = recording
    home(client)
    blocks = [t for url, t in timeouts if "/bookings" in url or "/invoices" in url
              or "/requests/communes" in url]
    assert len(blocks) == 3
    assert all(t is not None and t[1] <= 5 for t in blocks)


def test_an_agent_has_no_family_summary(client, fake):
    fake.agent()
    status, page = home(client)
    assert status == 200
    assert "En bref" not in page
    assert fake.calls("GET", "/api/billing/communes/jolieville/invoices") == []
