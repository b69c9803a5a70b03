"""« Mes factures »: the list, one invoice, paying online, the return page, hide, claim."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from portal.filters import euros, month_fr

from .billing_support import (
    CREDIT_NOTES_API,
    HIDDEN,
    INVOICES_API,
    LATE_ID,
    OPEN,
    OPEN_ID,
    PAID,
    PAID_ID,
    PARTIAL_ID,
    PAYMENT_ID,
    PAYMENTS_API,
    billing_parent,
    invoice,
    payment,
)
from .support import ME_ONE_COMMUNE, field_error, input_value, post_form, problem, text

NBSP = "\u00a0"
PAYMENT_URL = f"http://127.0.0.1:8000/payments/simulator/{PAYMENT_ID}"


@pytest.fixture
def parent(client, fake):
    billing_parent(fake)
    client.set_cookie("portail_session", "s3cr3t")
    return client


def created(fake, url: str = PAYMENT_URL) -> None:
    fake.on("POST", PAYMENTS_API, 201, {"payment_id": PAYMENT_ID, "payment_url": url,
                                        "amount": "182.00", "status": "created"})


def checkbox(page: str, invoice_id: str) -> str | None:
    match = re.search(rf'<input type="checkbox"[^>]*id="facture-{invoice_id}"[^>]*>', page)
    return match.group(0) if match else None


# --- the list ----------------------------------------------------------------------------------


def test_invoices_to_pay_as_the_seed_shows_them(parent, fake):
    response = parent.get("/factures")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Mes factures — Portail Famille</title>" in page
    assert fake.last_query(INVOICES_API) == {"status": ["open"], "hidden": ["false"]}
    assert 'href="/factures" aria-current="page">À payer</a>' in page
    assert 'href="/factures?onglet=payees">Payées</a>' in page
    # commune, services, reference, due date, remaining amount, detail, PDF
    assert "<td data-label=\"Commune\">JolieVille Test</td>" in page
    assert "Accueil périscolaire soir, Restauration scolaire" in page
    assert "2026-JOL-000154" in page and "31/10/2026" in page
    assert f"<td data-label=\"Reste à payer\">82,00{NBSP}€</td>" in page
    assert f"100,00{NBSP}€ <span class=\"muted\">(sur 120,50{NBSP}€)</span>" in page
    assert f'href="/factures/{OPEN_ID}"' in page
    assert f'href="/api/billing/invoices/{OPEN_ID}/pdf"' in page
    # a box for each invoice payable online, none for the one past its online deadline
    assert checkbox(page, OPEN_ID) and checkbox(page, PARTIAL_ID)
    assert 'name="facture"' in checkbox(page, OPEN_ID)
    assert checkbox(page, LATE_ID) is None
    assert "Paiement en ligne clos : à régler auprès de la mairie" in page
    assert f"<strong>182,00{NBSP}€</strong>" in page
    assert 'action="/factures/paiement"' in page and "Payer les factures sélectionnées" in page
    assert ("Les factures réglées auprès du Trésor public (chèque, espèces, virement) peuvent "
            "mettre quelques jours à apparaître comme payées : vous pouvez les masquer.") in \
        " ".join(page.split())
    assert f'formaction="/factures/{OPEN_ID}/masquer"' in page
    assert 'href="/factures?onglet=masquees">Voir les factures masquées</a>' in page


def test_the_list_also_has_claim_credit_notes_and_attestations(parent, fake):
    page = text(parent.get("/factures"))
    assert "Je ne trouve pas ma facture" in page and 'action="/factures/rattacher"' in page
    assert '<label class="field__label" for="reference">Référence de la facture</label>' in page
    assert fake.calls("GET", CREDIT_NOTES_API)
    assert "2026-JOL-A00003" in page and "Annulation du mercredi 14/10/2026" in page
    assert "Disponible : déduit de vos prochaines factures" in page
    assert 'href="/api/billing/credit-notes/cn1/pdf"' in page
    year = datetime.now(ZoneInfo("Europe/Paris")).year
    for y in (year, year - 1):
        assert f'href="/api/billing/communes/jolieville/attestations/{y}/pdf"' in page
        assert f"Attestation {y}" in page


def test_paid_tab(parent, fake):
    fake.on("GET", INVOICES_API, body={"items": [PAID], "next": None})
    page = text(parent.get("/factures?onglet=payees"))
    assert fake.last_query(INVOICES_API) == {"status": ["paid"], "hidden": ["false"]}
    assert 'href="/factures?onglet=payees" aria-current="page">Payées' in page
    assert "<h2 id=\"liste\">Factures payées</h2>" in page
    assert f"45,00{NBSP}€" in page and "2026-JOL-000090" in page
    assert 'type="checkbox"' not in page and "Payer les factures sélectionnées" not in page
    assert f'action="/factures/{PAID_ID}/masquer"' in page
    assert 'name="suivant" value="/factures?onglet=payees"' in page


def test_hidden_invoices_and_their_unhide_buttons(parent, fake):
    fake.on("GET", INVOICES_API, body={"items": [HIDDEN], "next": None})
    page = text(parent.get("/factures?onglet=masquees"))
    assert fake.last_query(INVOICES_API) == {"hidden": ["true"]}
    assert "Factures masquées" in page and "Retour aux factures à payer" in page
    assert f'action="/factures/{HIDDEN["id"]}/afficher"' in page
    assert "Afficher de nouveau" in page


def test_empty_lists_and_pagination(parent, fake):
    fake.on("GET", INVOICES_API, body={"items": [], "next": None})
    assert "Aucune facture à payer." in text(parent.get("/factures"))
    assert "Aucune facture payée." in text(parent.get("/factures?onglet=payees"))
    fake.on("GET", INVOICES_API, body={"items": [OPEN], "next": "c-2"})
    page = parent.get("/factures").get_data(as_text=True)
    assert 'href="/factures?suite=c-2">Factures suivantes' in page
    parent.get("/factures?suite=c-2")
    assert fake.last_query(INVOICES_API)["cursor"] == ["c-2"]


def test_billing_unreachable_for_the_list_is_a_degraded_page(parent, fake):
    fake.on("GET", INVOICES_API, 503, {"status": 503})
    response = parent.get("/factures")
    assert response.status_code == 502 and "Réessayez" in text(response)


def test_invoices_are_for_households_only(agent, fake):
    assert agent.get("/factures", headers={"Accept": "text/html"}).status_code == 404
    assert not any("/api/billing/" in r.url for r in fake.seen)


def test_logged_out_visitors_go_to_login(client, fake):
    response = client.get("/factures")
    assert response.status_code == 303
    assert response.headers["Location"] == "/connexion?suivant=/factures"


def test_the_menu_link_is_current(parent, fake):
    page = parent.get("/factures").get_data(as_text=True)
    assert 'href="/factures" aria-current="page">Mes factures' in page


# --- one invoice -------------------------------------------------------------------------------


def test_invoice_detail_with_lines_paid_and_remaining(parent, fake):
    fake.on("GET", f"/api/billing/invoices/{PARTIAL_ID}",
            body={**invoice(PARTIAL_ID, status="partially_paid", amount="82.20",
                            amount_paid="24.60", amount_credited="0.60",
                            amount_remaining="57.00", reference="2026-JOL-000160"),
                  "lines": [{"id": "l1", "label": "Restauration scolaire — Léa",
                             "activity_name": "Restauration scolaire", "child_name": "Léa",
                             "quantity": 6, "unit": "jours", "unit_price": "4.10",
                             "amount": "24.60", "amount_paid": "24.60",
                             "amount_remaining": "0.00"}]})
    response = parent.get(f"/factures/{PARTIAL_ID}")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Facture 2026-JOL-000160 — Portail Famille</title>" in page
    assert "<h1>Facture 2026-JOL-000160</h1>" in page
    assert "<dt>Période</dt><dd>septembre 2026</dd>" in page
    assert "<dt>Échéance</dt><dd>31/10/2026</dd>" in page
    assert "Partiellement payée" in page
    assert f"<dt>Déjà payé</dt><dd>24,60{NBSP}€</dd>" in page
    assert f"<dt>Avoirs déduits</dt><dd>0,60{NBSP}€</dd>" in page
    assert f"<strong>57,00{NBSP}€</strong>" in page
    assert "Restauration scolaire — Léa" in page and "6 jours" in page
    assert f'href="/api/billing/invoices/{PARTIAL_ID}/pdf"' in page
    assert f'<input type="hidden" name="facture" value="{PARTIAL_ID}">' in page
    assert "Payer cette facture en ligne" in page
    assert f'action="/factures/{PARTIAL_ID}/masquer"' in page


def test_invoice_detail_past_the_online_deadline(parent, fake):
    page = text(parent.get(f"/factures/{LATE_ID}"))
    assert "Payer cette facture en ligne" not in page
    assert "ne peut plus être payée en ligne" in page


def test_someone_elses_invoice_is_404(parent, fake):
    fake.on("GET", "/api/billing/invoices/autre", 404, problem(404, "Cette facture n'existe pas."))
    response = parent.get("/factures/autre", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "Ressource introuvable" in text(response)


# --- paying ------------------------------------------------------------------------------------


def test_select_confirm_and_pay_redirects_to_the_provider(parent, fake):
    response = post_form(parent, "/factures/paiement", {"facture": [OPEN_ID, PARTIAL_ID]},
                         token_from="/factures")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Paiement de vos factures — Portail Famille</title>" in page
    assert "2026-JOL-000154" in page and "2026-JOL-000160" in page
    assert f"Payer 182,00{NBSP}€</button>" in page
    assert 'action="/factures/paiement/confirmer"' in page
    assert not fake.calls("POST", PAYMENTS_API)  # nothing is asked before the confirmation

    created(fake)
    response = post_form(parent, "/factures/paiement/confirmer",
                         {"facture": [OPEN_ID, PARTIAL_ID]}, token_from="/factures")
    assert response.status_code == 303
    assert response.headers["Location"] == PAYMENT_URL
    assert fake.last_json("POST", PAYMENTS_API) == {
        "invoice_ids": [OPEN_ID, PARTIAL_ID],
        "return_url": "http://localhost/factures/paiement/retour"}


def test_the_return_address_is_the_public_one_the_gateway_names(parent, fake):
    created(fake)
    public = {"X-Forwarded-Host": "portail.jolieville.fr", "X-Forwarded-Proto": "https"}
    response = post_form(parent, "/factures/paiement/confirmer", {"facture": [OPEN_ID]},
                         token_from="/factures",
                         headers={**public, "Referer": "https://portail.jolieville.fr/factures"})
    assert response.status_code == 303
    assert fake.last_json("POST", PAYMENTS_API)["return_url"] == \
        "https://portail.jolieville.fr/factures/paiement/retour"
    # Over https, Flask-WTF also wants the form to come from a page of the same site.
    response = post_form(parent, "/factures/paiement/confirmer", {"facture": [OPEN_ID]},
                         token_from="/factures",
                         headers={**public, "Referer": "https://ailleurs.example/"})
    assert response.status_code == 400
    assert len(fake.calls("POST", PAYMENTS_API)) == 1


@pytest.mark.parametrize("path", ["/factures/paiement", "/factures/paiement/confirmer"])
def test_nothing_selected_is_explained(parent, fake, path):
    response = post_form(parent, path, {}, token_from="/factures")
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Mes factures — Portail Famille</title>" in page
    assert "Sélectionnez au moins une facture à payer." in page
    assert 'role="alert"' in page
    assert not fake.calls("POST", PAYMENTS_API)


def test_api_refusal_is_shown_on_the_list_with_the_selection_kept(parent, fake):
    fake.on("POST", PAYMENTS_API, 422, problem(
        422, "Certaines factures ne peuvent pas être payées en ligne.",
        {"invoice_ids": ["La facture 2026-JOL-000154 est déjà payée."]}))
    response = post_form(parent, "/factures/paiement/confirmer",
                         {"facture": [OPEN_ID, PARTIAL_ID]}, token_from="/factures")
    page = text(response)
    assert response.status_code == 422
    assert "Certaines factures ne peuvent pas être payées en ligne." in page
    assert "<li>La facture 2026-JOL-000154 est déjà payée.</li>" in page
    assert "checked" in checkbox(page, OPEN_ID) and "checked" in checkbox(page, PARTIAL_ID)


def test_several_communes_refusal(parent, fake):
    fake.on("POST", PAYMENTS_API, 422, problem(422, "Données invalides.", {
        "invoice_ids": ["Payez séparément les factures de communes différentes."]}))
    page = text(post_form(parent, "/factures/paiement/confirmer", {"facture": [OPEN_ID]},
                          token_from="/factures"))
    assert "Payez séparément les factures de communes différentes." in page


def test_confirmation_refuses_an_invoice_not_payable_online(parent, fake):
    response = post_form(parent, "/factures/paiement", {"facture": [OPEN_ID, LATE_ID]},
                         token_from="/factures")
    assert response.status_code == 422
    assert "La facture 2026-JOL-000101 ne peut pas être payée en ligne." in text(response)


def test_confirmation_of_an_unknown_invoice(parent, fake):
    fake.on("GET", "/api/billing/invoices/inconnue", 404,
            problem(404, "Cette facture n'existe pas."))
    response = post_form(parent, "/factures/paiement", {"facture": ["inconnue"]},
                         token_from="/factures")
    assert response.status_code == 422 and "Cette facture n'existe pas." in text(response)


def test_a_payment_url_that_is_not_a_web_address_is_not_followed(parent, fake):
    created(fake, url="javascript:alert(1)")
    response = post_form(parent, "/factures/paiement/confirmer", {"facture": [OPEN_ID]},
                         token_from="/factures")
    assert response.status_code == 422
    assert "Le paiement n'a pas pu être préparé." in text(response)


def test_paying_without_csrf_token_is_refused(parent, fake):
    created(fake)
    response = parent.post("/factures/paiement/confirmer", data={"facture": [OPEN_ID]})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response)
    assert not fake.calls("POST", PAYMENTS_API)
    assert parent.post("/factures/paiement", data={"facture": [OPEN_ID]}).status_code == 400


def test_reloading_the_confirmation_goes_back_to_the_list(parent, fake):
    response = parent.get("/factures/paiement")
    assert response.status_code == 303 and response.headers["Location"] == "/factures"


# --- the way back --------------------------------------------------------------------------------

RETURN = f"/factures/paiement/retour?payment={PAYMENT_ID}"


def test_return_paid_lists_the_invoices_now_paid(parent, fake):
    fake.on("GET", f"{PAYMENTS_API}/{PAYMENT_ID}", body=payment("paid"))
    fake.on("GET", f"/api/billing/invoices/{OPEN_ID}",
            body=invoice(status="paid", amount_paid="82.00", amount_remaining="0.00"))
    fake.on("GET", f"/api/billing/invoices/{PARTIAL_ID}",
            body=invoice(PARTIAL_ID, reference="2026-JOL-000160", status="paid"))
    response = parent.get(RETURN)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Paiement accepté — Portail Famille</title>" in page
    assert "<h1>Paiement accepté</h1>" in page
    assert f"<strong>182,00{NBSP}€</strong>" in page and "20/10/2026 à 10 h 01" in page
    assert "2026-JOL-000154" in page and "2026-JOL-000160" in page
    assert page.count("<td data-label=\"État\">Payée</td>") == 2
    assert 'href="/factures?onglet=payees"' in page
    assert 'http-equiv="refresh"' not in page


def test_return_waiting_refreshes_a_few_times_then_stops(parent, fake):
    fake.on("GET", f"{PAYMENTS_API}/{PAYMENT_ID}", body=payment("waiting"))
    page = text(parent.get(RETURN))
    assert "<h1>Paiement en cours de confirmation</h1>" in page
    assert (f'<meta http-equiv="refresh" content="3; url=/factures/paiement/retour?payment='
            f'{PAYMENT_ID}&essai=1">') in page
    assert f'href="/factures/paiement/retour?payment={PAYMENT_ID}">Actualiser</a>' in page
    page = text(parent.get(RETURN + "&essai=10"))
    assert "Paiement en cours de confirmation" in page and 'http-equiv="refresh"' not in page
    assert "Actualiser" in page
    fake.on("GET", f"{PAYMENTS_API}/{PAYMENT_ID}", body=payment("created"))
    assert "Paiement en cours de confirmation" in text(parent.get(RETURN))


@pytest.mark.parametrize("state,title,sentence", [
    ("denied", "Paiement refusé", "refusé par votre banque"),
    ("cancelled", "Paiement abandonné", "Vous avez abandonné le paiement"),
    ("expired", "Paiement expiré", "Le délai pour payer est dépassé"),
    ("error", "Paiement non abouti", "erreur technique"),
])
def test_return_failed(parent, fake, state, title, sentence):
    fake.on("GET", f"{PAYMENTS_API}/{PAYMENT_ID}", body=payment(state))
    response = parent.get(RETURN)
    page = text(response)
    assert response.status_code == 200
    assert f"<h1>{title}</h1>" in page and sentence in page
    assert "Aucune somme n'a été prélevée." in page
    assert 'href="/factures">Réessayer le paiement</a>' in page
    assert 'http-equiv="refresh"' not in page


def test_return_for_another_households_payment_is_404(parent, fake):
    fake.on("GET", f"{PAYMENTS_API}/autre", 404, problem(404, "Ce paiement n'existe pas."))
    response = parent.get("/factures/paiement/retour?payment=autre",
                          headers={"Accept": "text/html"})
    assert response.status_code == 404 and "Ressource introuvable" in text(response)


def test_return_without_id_finds_the_payment_just_started(parent, fake):
    assert parent.get("/factures/paiement/retour",
                      headers={"Accept": "text/html"}).status_code == 404
    created(fake)
    post_form(parent, "/factures/paiement/confirmer", {"facture": [OPEN_ID]},
              token_from="/factures")
    response = parent.get("/factures/paiement/retour")
    assert response.status_code == 303
    assert response.headers["Location"] == RETURN


# --- hide, unhide ------------------------------------------------------------------------------


def test_hide_from_the_list_and_come_back(parent, fake):
    fake.on("POST", f"/api/billing/invoices/{OPEN_ID}/hide", body={**OPEN, "hidden": True})
    # The list's "Masquer" buttons submit the payment form to another address.
    response = post_form(parent, f"/factures/{OPEN_ID}/masquer",
                         {"facture": [PARTIAL_ID], "suivant": "/factures"},
                         token_from="/factures")
    assert response.status_code == 303 and response.headers["Location"] == "/factures"
    assert fake.calls("POST", f"/api/billing/invoices/{OPEN_ID}/hide")
    assert not fake.calls("POST", PAYMENTS_API)
    page = text(parent.get("/factures"))
    assert "La facture 2026-JOL-000154 est masquée." in page


def test_unhide_goes_back_where_it_was_asked(parent, fake):
    fake.on("POST", f"/api/billing/invoices/{HIDDEN['id']}/unhide",
            body={**HIDDEN, "hidden": False})
    response = post_form(parent, f"/factures/{HIDDEN['id']}/afficher",
                         {"suivant": "/factures?onglet=masquees"}, token_from="/factures")
    assert response.headers["Location"] == "/factures?onglet=masquees"
    assert "La facture 2026-JOL-000080 est de nouveau affichée." in text(
        parent.get("/factures?onglet=masquees"))


def test_hide_never_redirects_elsewhere(parent, fake):
    fake.on("POST", f"/api/billing/invoices/{OPEN_ID}/hide", body=OPEN)
    response = post_form(parent, f"/factures/{OPEN_ID}/masquer",
                         {"suivant": "https://ailleurs.example/"}, token_from="/factures")
    assert response.headers["Location"] == "/factures"


def test_hide_without_csrf_token_is_refused(parent, fake):
    assert parent.post(f"/factures/{OPEN_ID}/masquer").status_code == 400
    assert not fake.calls("POST", f"/api/billing/invoices/{OPEN_ID}/hide")


# --- « Je ne trouve pas ma facture » -------------------------------------------------------------

CLAIM = "/api/billing/invoices/claim"


def test_claim_attaches_the_invoice(parent, fake):
    found = invoice("0a7c2b8e-0000-4000-8000-000000000009", reference="2026-JOL-000099")
    fake.on("POST", CLAIM, body=found)
    fake.on("GET", f"/api/billing/invoices/{found['id']}", body={**found, "lines": []})
    response = post_form(parent, "/factures/rattacher",
                         {"reference": " 2026-jol-000099 ", "amount": "82,00 €"},
                         token_from="/factures")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/factures/{found['id']}"
    assert fake.last_json("POST", CLAIM) == {"reference": "2026-JOL-000099", "amount": "82.00"}
    assert "La facture 2026-JOL-000099 a été ajoutée à vos factures." in text(
        parent.get(response.headers["Location"]))


def test_claim_refused_says_so_without_details(parent, fake):
    fake.on("POST", CLAIM, 404, problem(404, "Aucune facture ne correspond à cette référence "
                                             "et à ce montant. Vérifiez-les sur la facture "
                                             "papier, ou contactez la mairie."))
    response = post_form(parent, "/factures/rattacher",
                         {"reference": "2026-JOL-000099", "amount": "12"},
                         token_from="/factures")
    page = text(response)
    assert response.status_code == 422
    assert "Aucune facture ne correspond à cette référence et à ce montant." in page
    assert input_value(page, "reference") == "2026-JOL-000099"
    assert input_value(page, "amount") == "12"


def test_claim_rate_limited(parent, fake):
    fake.on("POST", CLAIM, 429, problem(429, "Trop de tentatives : réessayez dans un quart "
                                             "d'heure."), {"Retry-After": "900"})
    response = post_form(parent, "/factures/rattacher",
                         {"reference": "2026-JOL-000099", "amount": "12"},
                         token_from="/factures")
    assert response.status_code == 429
    assert "Trop de tentatives : réessayez dans un quart d'heure." in text(response)


def test_claim_local_checks(parent, fake):
    page = text(post_form(parent, "/factures/rattacher", {"reference": "", "amount": "abc"},
                          token_from="/factures"))
    assert field_error(page, "reference") == "Indiquez la référence de la facture."
    assert field_error(page, "amount") == "Montant invalide (par exemple 24,60)."
    assert '<a href="#reference">' in page and 'aria-invalid="true"' in page
    page = text(post_form(parent, "/factures/rattacher", {"reference": "X", "amount": "0"},
                          token_from="/factures"))
    assert field_error(page, "amount") == "Le montant doit être supérieur à zéro."
    assert not fake.calls("POST", CLAIM)


def test_claim_api_field_errors_go_next_to_fields(parent, fake):
    fake.on("POST", CLAIM, 422, problem(422, "Invalide.",
                                        {"reference": ["Au plus 40 caractères."]}))
    page = text(post_form(parent, "/factures/rattacher", {"reference": "X", "amount": "3"},
                          token_from="/factures"))
    assert field_error(page, "reference") == "Au plus 40 caractères."


# --- a commune without invoices for this household ------------------------------------------------


def test_a_commune_billing_does_not_know_yet(parent, fake):
    fake.on("GET", "/auth/me", body=ME_ONE_COMMUNE)
    fake.on("GET", INVOICES_API, 404, problem(404, "Commune inconnue."))
    fake.on("GET", CREDIT_NOTES_API, 404, problem(404, "Commune inconnue."))
    response = parent.get("/factures")
    page = text(response)
    assert response.status_code == 200
    assert "Les factures de JolieVille Test ne peuvent pas être affichées pour le moment." in page
    assert "Vos avoirs ne peuvent pas être affichés pour le moment." in page


# --- filters -----------------------------------------------------------------------------------


def test_amounts_and_months_in_french():
    assert euros("82.00") == f"82,00{NBSP}€"
    assert euros("1234567.5") == f"1\u202f234\u202f567,50{NBSP}€"
    assert euros("-3") == f"-3,00{NBSP}€"
    assert euros(None) == "" and euros("n/a") == "n/a"
    assert month_fr("2026-10") == "octobre 2026" and month_fr("2026-13") == "2026-13"
