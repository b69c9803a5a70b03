"""Agents' billing pages: invoicing runs, tariffs, payments, one invoice (counter payment,
credit note), and the menu entries."""

from __future__ import annotations

import pytest

from .billing_support import (
    AGENT_PAYMENTS_API,
    CREDIT_NOTES_API,
    INVOICES_API,
    LATE_ID,
    OPEN,
    OPEN_ID,
    PAID_ID,
    RUN_DRAFT,
    RUN_FINALISED,
    RUN_ID,
    RUNS_API,
    TARIFFS_API,
    billing_agent,
    invoice,
)
from .support import commune, csrf_token, field_error, input_value, post_form, problem, text

NBSP = "\u00a0"

AGENT_PAGES = ["/agent/facturation", f"/agent/facturation/{RUN_ID}", "/agent/tarifs",
               "/agent/tarifs/REPAS", "/agent/paiements", "/agent/factures",
               f"/agent/factures/{OPEN_ID}"]
AGENT_POSTS = [("/agent/facturation", {"period": "2026-10"}),
               (f"/agent/facturation/{RUN_ID}/valider", {"confirm": "y"}),
               ("/agent/tarifs/REPAS", {"label": "Repas", "unit_price": "3"}),
               (f"/agent/factures/{OPEN_ID}/paiement",
                {"pay_amount": "10", "pay_method": "cash"}),
               (f"/agent/factures/{OPEN_ID}/avoir",
                {"note_amount": "10", "note_reason": "Erreur"})]


@pytest.fixture
def agent(client, fake):
    billing_agent(fake)
    client.set_cookie("portail_session", "s3cr3t")
    return client


def nav(page: str) -> str:
    return page[page.index('<nav aria-label="Menu principal">'):page.index("</nav>")]


# --- who may see them ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_billing_pages_are_403_for_parents(client, fake, path):
    fake.parent()
    client.set_cookie("portail_session", "s3cr3t")
    response = client.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "Accès refusé" in text(response)
    assert not any("/api/billing/" in r.url for r in fake.seen)


@pytest.mark.parametrize("path,data", AGENT_POSTS)
def test_agent_billing_posts_are_403_for_parents(client, fake, path, data):
    fake.parent()
    client.set_cookie("portail_session", "s3cr3t")
    response = post_form(client, path, data, token_from="/profil")
    assert response.status_code == 403
    assert not any("/api/billing/" in r.url for r in fake.seen)


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_billing_pages_redirect_anonymous_visitors(client, fake, path):
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/connexion?suivant=/agent/")


@pytest.mark.parametrize("path,data", AGENT_POSTS)
def test_agent_billing_posts_without_csrf_are_refused(agent, fake, path, data):
    assert agent.post(path, data=data).status_code == 400
    assert not any(r.method in ("POST", "PUT") and "/api/billing/" in r.url for r in fake.seen)


def test_menu_has_the_billing_entries_when_the_commune_subscribes(agent, fake):
    menu = nav(agent.get("/").get_data(as_text=True))
    for href, label in (("/agent/facturation", "Facturation"), ("/agent/tarifs", "Tarifs"),
                        ("/agent/paiements", "Paiements")):
        assert f'href="{href}">{label}</a>' in menu
    menu = nav(agent.get("/agent/tarifs").get_data(as_text=True))
    assert 'href="/agent/tarifs" aria-current="page">Tarifs' in menu
    fake.on("GET", "/api/accounts/communes/jolieville",
            body=commune(modules=("reservations", "requests")))
    agent.application.extensions["portal_communes"].clear()
    menu = nav(agent.get("/").get_data(as_text=True))
    assert "/agent/facturation" not in menu and "/agent/familles" in menu


def test_parents_have_no_billing_agent_entries(client, fake):
    fake.parent()
    client.set_cookie("portail_session", "s3cr3t")
    assert "/agent/facturation" not in nav(client.get("/").get_data(as_text=True))


# --- invoicing runs ------------------------------------------------------------------------------


def test_runs_list_and_form(agent, fake):
    response = agent.get("/agent/facturation")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Facturation — Portail Famille</title>" in page
    assert "Préparer la facturation du mois" in page
    assert '<label class="field__label" for="period">Mois à facturer</label>' in page
    assert 'type="month"' in page
    assert f'<a href="/agent/facturation/{RUN_ID}">octobre 2026</a>' in page
    assert "<td data-label=\"État\">Brouillon</td>" in page
    assert "<td data-label=\"État\">Validée</td>" in page
    assert f"1\u202f234,50{NBSP}€" in page and "03/11/2026" in page


def test_prepare_a_run(agent, fake):
    fake.on("POST", RUNS_API, 201, RUN_DRAFT)
    response = post_form(agent, "/agent/facturation", {"period": "10/2026"})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/agent/facturation/{RUN_ID}"
    assert fake.last_json("POST", RUNS_API) == {"period": "2026-10"}
    assert "Brouillon de la facturation d'octobre 2026 préparé" in text(
        agent.get(response.headers["Location"]))


def test_prepare_a_period_already_finalised(agent, fake):
    fake.on("POST", RUNS_API, 200, RUN_FINALISED)
    fake.on("GET", f"{RUNS_API}/{RUN_ID}", body=RUN_FINALISED)
    response = post_form(agent, "/agent/facturation", {"period": "2026-10"})
    assert "La facturation d'octobre 2026 est déjà validée : rien n'a été refait." in text(
        agent.get(response.headers["Location"]))


def test_prepare_a_run_errors(agent, fake):
    page = text(post_form(agent, "/agent/facturation", {"period": "octobre"}))
    assert field_error(page, "period") == "Mois invalide (par exemple 10/2026)."
    page = text(post_form(agent, "/agent/facturation", {"period": ""}))
    assert field_error(page, "period") == "Indiquez le mois à facturer."
    assert not fake.calls("POST", RUNS_API)
    fake.on("POST", RUNS_API, 422, problem(422, "Invalide.", {
        "period": ["Période invalide (format attendu AAAA-MM)."]}))
    response = post_form(agent, "/agent/facturation", {"period": "2026-10"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "period") == "Période invalide (format attendu AAAA-MM)."
    assert input_value(page, "period") == "2026-10"
    assert "<title>Erreur — Facturation — Portail Famille</title>" in page
    fake.on("POST", RUNS_API, 409, problem(
        409, "Une autre campagne de facturation est en cours pour cette période."))
    page = text(post_form(agent, "/agent/facturation", {"period": "2026-10"}))
    assert "<li>Une autre campagne de facturation est en cours pour cette période.</li>" in page


def test_draft_run_shows_totals_per_household_and_anomalies_in_french(agent, fake):
    response = agent.get(f"/agent/facturation/{RUN_ID}")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Facturation d'octobre 2026 — Portail Famille</title>" in page
    assert f"<dt>Total</dt><dd>106,60{NBSP}€</dd>" in page
    assert "CASSEREAU" in page and f"<td data-label=\"Total\">82,20{NBSP}€</td>" in page
    assert f"Restauration scolaire — Léa : 6 × 4,10{NBSP}€ = 24,60{NBSP}€" in page
    assert "Restauration scolaire — Jules (sans réservation)" in page
    # anomalies: kind in French, household, child and activity by name, date
    assert "Présence sans réservation (facturée)" in page
    assert "Réservation sans pointage" in page
    assert "<td data-label=\"Foyer\">MARTIN</td>" in page
    assert "<td data-label=\"Enfant\">Tom</td>" in page
    assert "<td data-label=\"Activité\">Accueil périscolaire soir</td>" in page
    assert "13/10/2026" in page
    assert f'action="/agent/facturation/{RUN_ID}/valider"' in page
    assert "Valider la facturation" in page
    assert "exports/invoices.csv" not in page


def test_finalise_needs_the_confirmation_box(agent, fake):
    response = post_form(agent, f"/agent/facturation/{RUN_ID}/valider", {},
                         token_from=f"/agent/facturation/{RUN_ID}")
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "confirm") == "Cochez la case pour confirmer la validation."
    assert not fake.calls("POST", f"{RUNS_API}/{RUN_ID}/finalise")


def test_finalise_posts_and_shows_the_finalised_run(agent, fake):
    fake.on("POST", f"{RUNS_API}/{RUN_ID}/finalise", body=RUN_FINALISED)
    response = post_form(agent, f"/agent/facturation/{RUN_ID}/valider", {"confirm": "y"},
                         token_from=f"/agent/facturation/{RUN_ID}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/agent/facturation/{RUN_ID}"
    assert fake.calls("POST", f"{RUNS_API}/{RUN_ID}/finalise")
    fake.on("GET", f"{RUNS_API}/{RUN_ID}", body=RUN_FINALISED)
    page = text(agent.get(response.headers["Location"]))
    assert "La facturation d'octobre 2026 est validée : 2 factures émises." in page
    assert "Validée le 03/11/2026 à 11 h 00" in page
    assert ('href="/api/billing/communes/jolieville/exports/invoices.csv?period=2026-10"'
            in page)
    assert 'href="/agent/factures?periode=2026-10"' in page
    assert "Valider la facturation" not in page and "Anomalies à vérifier" not in page


def test_finalise_refused_by_the_api(agent, fake):
    fake.on("POST", f"{RUNS_API}/{RUN_ID}/finalise", 404,
            problem(404, "Cette campagne de facturation n'existe pas."))
    token = csrf_token(agent, "/agent/facturation")
    response = agent.post(f"/agent/facturation/{RUN_ID}/valider", headers={
        "Accept": "text/html"}, data={"confirm": "y", "csrf_token": token})
    assert response.status_code == 404


def test_runs_with_many_households_are_paged(agent, fake):
    households = [{"family_id": f"f{i}", "family_name": f"FAMILLE {i:03d}", "total": "1.00",
                   "lines": []} for i in range(150)]
    fake.on("GET", f"{RUNS_API}/{RUN_ID}", body={**RUN_DRAFT, "invoices": households})
    page = text(agent.get(f"/agent/facturation/{RUN_ID}"))
    assert "FAMILLE 099" in page and "FAMILLE 100" not in page
    assert "Foyers 1 à 100 sur 150." in page and "Foyers suivants" in page
    page = text(agent.get(f"/agent/facturation/{RUN_ID}?page=2"))
    assert "FAMILLE 100" in page and "FAMILLE 149" in page and "FAMILLE 099" not in page


# --- tariffs -------------------------------------------------------------------------------------


def test_tariffs_list(agent, fake):
    page = text(agent.get("/agent/tarifs"))
    assert "<title>Tarifs — Portail Famille</title>" in page
    assert "Restauration scolaire" in page and "REPAS" in page
    assert f"Quotient jusqu'à 600 : 2,10{NBSP}€" in page
    assert f"Au-delà : 4,10{NBSP}€" in page
    assert "−20 % à partir du 3<sup>e</sup> enfant" in page
    assert f"+ 1,00{NBSP}€" in page
    assert f"<td data-label=\"Prix\">2,00{NBSP}€</td>" in page
    assert 'href="/agent/tarifs/ETUDE"' in page


def test_tariff_form_is_filled_with_the_tariff(agent, fake):
    page = text(agent.get("/agent/tarifs/REPAS"))
    assert input_value(page, "label") == "Restauration scolaire"
    assert input_value(page, "brackets-0-max_quotient") == "600"
    assert input_value(page, "brackets-0-price") == "2,10"
    assert input_value(page, "brackets-2-max_quotient") == ""
    assert input_value(page, "brackets-2-price") == "4,10"
    assert input_value(page, "brackets-4-price") == ""
    assert "brackets-5-price" not in page  # five rows
    assert "<legend>Tranche 5</legend>" in page
    assert input_value(page, "reduced_from_child") == "3"
    assert input_value(page, "reduced_rate") == "20"
    assert input_value(page, "unbooked_surcharge") == "1,00"
    assert input_value(page, "unit_price") == ""


def test_unknown_tariff_is_404(agent, fake):
    assert agent.get("/agent/tarifs/INCONNU",
                     headers={"Accept": "text/html"}).status_code == 404


def test_tariff_saved_with_its_activity_and_the_rows_filled_in(agent, fake):
    fake.on("PUT", f"{TARIFFS_API}/REPAS", body=TARIFFS_ITEM)
    response = post_form(agent, "/agent/tarifs/REPAS", {
        "label": "Restauration scolaire", "unit_price": "",
        "brackets-0-max_quotient": "", "brackets-0-price": "",
        "brackets-1-max_quotient": "700", "brackets-1-price": "2,30",
        "brackets-3-max_quotient": "", "brackets-3-price": "4,20 €",
        "reduced_from_child": "3", "reduced_rate": "25,5", "unbooked_surcharge": "1,5"})
    assert response.status_code == 303 and response.headers["Location"] == "/agent/tarifs"
    assert fake.last_json("PUT", f"{TARIFFS_API}/REPAS") == {
        "label": "Restauration scolaire", "activity_id": "act-repas", "unit_price": None,
        "brackets": [{"max_quotient": 700, "price": "2.30"},
                     {"max_quotient": None, "price": "4.20"}],
        "reduced_from_child": 3, "reduced_rate": "25.5", "unbooked_surcharge": "1.50"}
    assert "Le tarif « Restauration scolaire » est enregistré" in text(agent.get("/agent/tarifs"))


def test_tariff_api_errors_are_put_next_to_their_fields(agent, fake):
    # The API numbers the brackets it received: its 0 and 1 are the form's rows 2 and 4.
    fake.on("PUT", f"{TARIFFS_API}/REPAS", 422, problem(422, "Données invalides.", {
        "brackets.1.max_quotient": ["Deux tranches ont la même borne."],
        "brackets": ["La dernière tranche (sans plafond) est obligatoire : elle s'applique aux "
                     "foyers qui n'ont pas donné leur quotient."],
        "reduced_from_child": ["Indiquez à partir de quel enfant le tarif réduit "
                               "s'applique."],
        "unit_price": ["Indiquez un prix unitaire ou des tranches de quotient."]}))
    response = post_form(agent, "/agent/tarifs/REPAS", {
        "label": "Restauration scolaire",
        "brackets-1-max_quotient": "600", "brackets-1-price": "2",
        "brackets-3-max_quotient": "600", "brackets-3-price": "3",
        "reduced_rate": "10"})
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "brackets-3-max_quotient") == "Deux tranches ont la même borne."
    assert field_error(page, "brackets-1-max_quotient") is None
    assert field_error(page, "reduced_from_child").startswith("Indiquez à partir de quel")
    assert field_error(page, "unit_price").startswith("Indiquez un prix unitaire")
    assert "<li>La dernière tranche (sans plafond) est obligatoire" in page
    assert '<a href="#brackets-3-max_quotient">Tranche 4 : Deux tranches' in page
    assert input_value(page, "brackets-3-price") == "3"
    assert "<title>Erreur — Tarif Restauration scolaire — Portail Famille</title>" in page


def test_tariff_local_checks(agent, fake):
    page = text(post_form(agent, "/agent/tarifs/REPAS", {
        "label": "", "unit_price": "deux", "brackets-0-max_quotient": "600",
        "brackets-0-price": "", "brackets-1-max_quotient": "beaucoup",
        "brackets-1-price": "3", "reduced_from_child": "1", "reduced_rate": "150",
        "unbooked_surcharge": "-1"}))
    assert field_error(page, "label") == "Indiquez le libellé."
    assert field_error(page, "unit_price") == "Montant invalide (par exemple 24,60)."
    assert field_error(page, "brackets-0-price") == "Indiquez le prix de cette tranche."
    assert field_error(page, "brackets-1-max_quotient") == "Un nombre entier, par exemple 600."
    assert field_error(page, "reduced_from_child") == "Un rang d'enfant entre 2 et 20."
    assert field_error(page, "reduced_rate") == "Un pourcentage entre 0 et 100."
    assert field_error(page, "unbooked_surcharge") == "Montant invalide (par exemple 24,60)."
    assert not fake.calls("PUT", f"{TARIFFS_API}/REPAS")


def test_a_tariff_with_more_brackets_than_rows_keeps_them_all(agent, fake):
    many = [{"max_quotient": 100 * (i + 1), "price": f"{i + 1}.00"} for i in range(6)]
    many.append({"max_quotient": None, "price": "9.00"})
    fake.on("GET", TARIFFS_API, body={"items": [{**TARIFFS_ITEM, "brackets": many}],
                                      "next": None})
    page = text(agent.get("/agent/tarifs/REPAS"))
    assert input_value(page, "brackets-6-price") == "9,00"
    assert "brackets-7-price" not in page


TARIFFS_ITEM = {"id": "t1", "activity_code": "REPAS", "activity_id": "act-repas",
                "label": "Restauration scolaire", "unit_price": None,
                "brackets": [{"max_quotient": 700, "price": "2.30"},
                             {"max_quotient": None, "price": "4.20"}],
                "reduced_from_child": 3, "reduced_rate": "25.5", "unbooked_surcharge": "1.50"}


# --- payments ----------------------------------------------------------------------------------


def test_payments_list_in_french_with_a_status_filter(agent, fake):
    page = text(agent.get("/agent/paiements"))
    assert "<title>Paiements — Portail Famille</title>" in page
    assert fake.last_query(AGENT_PAYMENTS_API) == {}
    assert "<td data-label=\"État\">Payé</td>" in page
    assert "Refusé <span class=\"muted\">(Carte refusée)</span>" in page
    assert "En ligne (simulateur)" in page and "Au guichet : Chèque" in page
    assert f"182,00{NBSP}€" in page and "CHQ 0042" in page
    assert f'href="/agent/factures/{OPEN_ID}"' in page
    assert f'href="/agent/factures/{LATE_ID}"' in page
    assert '<label class="field__label" for="statut">État du paiement</label>' in page
    assert 'href="/agent/paiements?suite=curseur-p2">Paiements suivants' in page
    page = text(agent.get("/agent/paiements?statut=denied"))
    assert fake.last_query(AGENT_PAYMENTS_API) == {"status": ["denied"]}
    assert '<option value="denied" selected>Refusé</option>' in page
    agent.get("/agent/paiements?statut=nimporte")
    assert fake.last_query(AGENT_PAYMENTS_API) == {}


# --- invoices ----------------------------------------------------------------------------------


def test_agent_invoice_list_with_filters(agent, fake):
    page = text(agent.get("/agent/factures?periode=2026-09&statut=open"))
    assert fake.last_query(INVOICES_API) == {"period": ["2026-09"], "status": ["open"]}
    assert "Factures de septembre 2026 (à payer)" in page
    assert f'<a href="/agent/factures/{OPEN_ID}">2026-JOL-000154</a>' in page
    assert "Marie CASSEREAU" in page
    assert 'href="/api/billing/communes/jolieville/exports/invoices.csv?period=2026-09"' in page
    agent.get("/agent/factures?periode=nimporte")
    assert fake.last_query(INVOICES_API) == {}


def test_agent_invoice_detail_has_the_counter_and_credit_note_forms(agent, fake):
    page = text(agent.get(f"/agent/factures/{OPEN_ID}"))
    assert "<h1>Facture 2026-JOL-000154</h1>" in page
    assert "Enregistrer un paiement au guichet" in page
    assert f'action="/agent/factures/{OPEN_ID}/paiement"' in page
    assert '<option value="cesu">CESU</option>' in page
    assert f'action="/agent/factures/{OPEN_ID}/avoir"' in page
    assert fake.last_query(CREDIT_NOTES_API) == {"family_id": ["f1"]}
    assert f'href="/api/billing/invoices/{OPEN_ID}/pdf"' in page


def test_paid_invoice_has_no_counter_form(agent, fake):
    page = text(agent.get(f"/agent/factures/{PAID_ID}"))
    assert "Cette facture n'a plus rien à payer." in page
    assert f'action="/agent/factures/{PAID_ID}/paiement"' not in page


def test_another_communes_invoice_is_404(agent, fake):
    fake.on("GET", "/api/billing/invoices/ailleurs", body=invoice(
        "ailleurs", commune={"id": "x", "slug": "dammartin", "name": "Dammartin"}))
    assert agent.get("/agent/factures/ailleurs",
                     headers={"Accept": "text/html"}).status_code == 404


def test_record_a_counter_payment(agent, fake):
    api = f"{INVOICES_API}/{OPEN_ID}/payments"
    fake.on("POST", api, 201, {"id": "p9", "status": "paid", "amount": "20.00"})
    response = post_form(agent, f"/agent/factures/{OPEN_ID}/paiement", {
        "pay_amount": "20", "pay_method": "cheque", "pay_reference": "CHQ 123"},
        token_from=f"/agent/factures/{OPEN_ID}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/agent/factures/{OPEN_ID}"
    assert fake.last_json("POST", api) == {"amount": "20.00", "method": "cheque",
                                           "reference": "CHQ 123"}
    assert f"Paiement de 20,00{NBSP}€ enregistré (chèque)." in text(
        agent.get(f"/agent/factures/{OPEN_ID}"))


def test_counter_payment_errors(agent, fake):
    page = text(post_form(agent, f"/agent/factures/{OPEN_ID}/paiement",
                          {"pay_amount": "", "pay_method": ""},
                          token_from=f"/agent/factures/{OPEN_ID}"))
    assert field_error(page, "pay_amount") == "Indiquez le montant reçu."
    assert field_error(page, "pay_method") == "Choisissez le moyen de paiement."
    api = f"{INVOICES_API}/{OPEN_ID}/payments"
    fake.on("POST", api, 422, problem(422, "Invalide.", {
        "amount": [f"Le reste à payer est de 82,00{NBSP}€."]}))
    response = post_form(agent, f"/agent/factures/{OPEN_ID}/paiement",
                         {"pay_amount": "100", "pay_method": "cash"},
                         token_from=f"/agent/factures/{OPEN_ID}")
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "pay_amount") == f"Le reste à payer est de 82,00{NBSP}€."
    assert input_value(page, "pay_amount") == "100"
    assert '<option selected value="cash">' in page or '<option value="cash" selected' in page


def test_issue_a_credit_note(agent, fake):
    fake.on("POST", CREDIT_NOTES_API, 201, {"id": "cn9", "number": "2026-JOL-A00009",
                                            "amount": "4.10"})
    response = post_form(agent, f"/agent/factures/{OPEN_ID}/avoir", {
        "note_amount": "4,10", "note_reason": "Repas du 12/10 compté deux fois"},
        token_from=f"/agent/factures/{OPEN_ID}")
    assert response.status_code == 303
    assert fake.last_json("POST", CREDIT_NOTES_API) == {
        "family_id": "f1", "invoice_id": OPEN_ID, "amount": "4.10",
        "reason": "Repas du 12/10 compté deux fois"}
    assert f"Avoir 2026-JOL-A00009 de 4,10{NBSP}€ émis" in text(
        agent.get(f"/agent/factures/{OPEN_ID}"))


def test_credit_note_errors(agent, fake):
    fake.on("POST", CREDIT_NOTES_API, 422, problem(422, "Invalide.", {
        "amount": ["L'avoir ne peut pas dépasser le montant de la facture."]}))
    response = post_form(agent, f"/agent/factures/{OPEN_ID}/avoir",
                         {"note_amount": "999", "note_reason": "Geste"},
                         token_from=f"/agent/factures/{OPEN_ID}")
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "note_amount") == \
        "L'avoir ne peut pas dépasser le montant de la facture."
    assert "Geste</textarea>" in page
    page = text(post_form(agent, f"/agent/factures/{OPEN_ID}/avoir",
                          {"note_amount": "", "note_reason": ""},
                          token_from=f"/agent/factures/{OPEN_ID}"))
    assert field_error(page, "note_reason") == "Indiquez le motif de l'avoir."


def test_credit_note_on_an_invoice_without_household(agent, fake):
    fake.on("GET", f"/api/billing/invoices/{OPEN_ID}", body={**OPEN, "family_id": None,
                                                            "lines": []})
    page = text(agent.get(f"/agent/factures/{OPEN_ID}"))
    assert "un avoir ne peut pas être émis" in page
    response = post_form(agent, f"/agent/factures/{OPEN_ID}/avoir",
                         {"note_amount": "1", "note_reason": "x"},
                         token_from=f"/agent/factures/{OPEN_ID}")
    assert response.status_code == 422
    assert not fake.calls("POST", CREDIT_NOTES_API)
