"""An invoice typed by an agent (« Nouvelle facture »): the household found by a search or a
payer's name, the lines, the confirmation step with its total, the JSON sent to billing and
its refusals put back next to the fields."""

from __future__ import annotations

import html
import re

import pytest

from .billing_support import INVOICES_API, billing_agent, invoice
from .support import FakeGateway, build, csrf_token, field_error, input_value, problem, text
from .test_accessibility import check

NBSP = "\u00a0"
NEW = "/agent/factures/nouvelle"
NEW_ID = "0a7c2b8e-0000-4000-8000-0000000000f1"
FAMILIES_API = "/api/accounts/communes/jolieville/families"
HOUSEHOLDS = {"items": [
    {"id": "f9", "family_name": "MARTIN", "family_code": "JV-0099", "email": "m@x.test",
     "status": "active", "children_count": 2},
    {"id": "f12", "family_name": "MARTINEZ", "family_code": None, "email": "z@x.test",
     "status": "invited", "children_count": 1},
], "next": None}
CREATED = {**invoice(NEW_ID, reference="2026-JOL-000200", number="2026-JOL-000200",
                     kind="manual", label="Sortie au zoo", period=None, family_id="f9",
                     payer_name="Paul MARTIN", amount="13.80", amount_remaining="13.80"),
           "lines": []}
# Two lines, typed in rows 1 and 3 (row 2 left blank), the second one with a child's name.
LINES = {"lines-0-label": "Sortie au zoo", "lines-0-quantity": "3",
         "lines-0-unit_price": "4,10",
         "lines-2-label": "Goûter", "lines-2-quantity": "1", "lines-2-unit_price": "1.50 €",
         "lines-2-child_name": "Jules"}


@pytest.fixture
def agent(client, fake):
    billing_agent(fake)
    fake.on("GET", FAMILIES_API, body=HOUSEHOLDS)
    fake.on("POST", INVOICES_API, 201, CREATED)
    fake.on("GET", f"/api/billing/invoices/{NEW_ID}", body=CREATED)
    client.set_cookie("portail_session", "s3cr3t")
    return client


def send(client, data: dict, path: str = NEW):
    """The form of ``path`` sent with ``data`` (and its CSRF token)."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, path)})


def hidden_fields(page: str) -> dict[str, str]:
    """The confirmation form's hidden fields (CSRF token included), as the browser sends them."""
    form = page[page.index('<form method="post" action="/agent/factures/nouvelle'):]
    form = form[:form.index("</form>")]
    return {html.unescape(name): html.unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)}


def confirm(client, page: str, path: str = NEW, step: str = "confirmer"):
    return client.post(path, data={**hidden_fields(page), "etape": step})


def billing_posts(fake: FakeGateway) -> list:
    return [r for r in fake.seen if r.method == "POST" and "/api/billing/" in r.url]


# --- who may use it -----------------------------------------------------------------------------


def test_parents_get_the_403_page(client, fake):
    fake.parent()
    client.set_cookie("portail_session", "s3cr3t")
    response = client.get(NEW, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "Accès refusé" in text(response)
    token = csrf_token(client, "/profil")
    response = client.post(NEW, data={**LINES, "payer_name": "X", "etape": "confirmer",
                                      "csrf_token": token})
    assert response.status_code == 403
    assert not any("/api/billing/" in r.url or "/families" in r.url for r in fake.seen)


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(NEW)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/connexion?suivant=/agent/")


@pytest.mark.parametrize("step", [None, "confirmer", "modifier"])
def test_every_step_needs_the_csrf_token(agent, fake, step):
    data = {**LINES, "payer_name": "Paul MARTIN"}
    if step:
        data["etape"] = step
    assert agent.post(NEW, data=data).status_code == 400
    assert not billing_posts(fake)


# --- the form ----------------------------------------------------------------------------------


def test_the_invoice_list_links_to_the_form(agent):
    page = text(agent.get("/agent/factures"))
    assert f'<a class="button" href="{NEW}">Créer une facture</a>' in page


def test_the_form_in_french(agent, fake):
    response = agent.get(NEW)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Nouvelle facture — Portail Famille</title>" in page
    assert '<label class="field__label" for="q">Rechercher le foyer</label>' in page
    assert 'method="get" action="/agent/factures/nouvelle"' in page
    assert '<label class="field__label" for="payer_name">Nom du payeur</label>' in page
    assert 'id="family_id"' not in page  # no search yet: nothing to choose from
    assert 'type="month"' in page and 'type="date"' in page
    for row in range(6):
        assert f'id="lines-{row}-unit_price"' in page
    assert 'id="lines-6-label"' not in page
    assert '<label class="field__label" for="lines-0-child_name">Enfant concerné' in page
    assert 'inputmode="decimal"' in page
    assert ">Créer la facture</button>" in page
    assert not fake.calls("GET", FAMILIES_API)


def test_searching_a_household_offers_the_results(agent, fake):
    page = text(agent.get(f"{NEW}?q=mar"))
    assert fake.last_query(FAMILIES_API) == {"q": ["mar"]}
    assert input_value(page, "q") == "mar"
    assert '<option value="f9">MARTIN (code famille JV-0099)</option>' in page
    assert '<option value="f12">MARTINEZ</option>' in page
    assert "2 foyers trouvés pour « mar »." in page
    assert 'action="/agent/factures/nouvelle?q=mar"' in page


def test_a_search_without_result_says_so(agent, fake):
    fake.on("GET", FAMILIES_API, body={"items": [], "next": None})
    page = text(agent.get(f"{NEW}?q=zzz"))
    assert "Aucun foyer ne correspond à « zzz »." in page
    assert 'id="family_id"' not in page


def test_a_search_with_more_results_asks_to_narrow_it(agent, fake):
    fake.on("GET", FAMILIES_API, body={**HOUSEHOLDS, "next": "c2"})
    page = text(agent.get(f"{NEW}?q=ma"))
    assert "seuls les premiers sont proposés : précisez la recherche" in page


# --- confirming and creating --------------------------------------------------------------------


def test_a_household_invoice_confirmed_then_created(agent, fake):
    path = f"{NEW}?q=mar"
    response = send(agent, {"family_id": "f9", "label": " Sortie au zoo ",
                            "period": "10/2026", "due_date": "30/11/2026", **LINES}, path)
    page = text(response)
    assert response.status_code == 200
    assert not billing_posts(fake)  # nothing created before the confirmation
    assert "<h1>Vérifier la nouvelle facture</h1>" in page
    assert "MARTIN (code famille JV-0099)" in page
    assert "octobre 2026" in page and "30/11/2026" in page
    assert f'<td data-label="Montant">12,30{NBSP}€</td>' in page
    assert f"<strong>13,80{NBSP}€</strong>" in page
    assert ">Confirmer</button>" in page
    response = confirm(agent, response.get_data(as_text=True), path)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/agent/factures/{NEW_ID}"
    assert fake.last_json("POST", INVOICES_API) == {
        "family_id": "f9", "payer_name": None, "label": "Sortie au zoo", "period": "2026-10",
        "due_date": "2026-11-30",
        "lines": [{"label": "Sortie au zoo", "quantity": 3, "unit_price": "4.10",
                   "child_name": None},
                  {"label": "Goûter", "quantity": 1, "unit_price": "1.50",
                   "child_name": "Jules"}]}
    assert len(fake.calls("POST", INVOICES_API)) == 1
    page = text(agent.get(response.headers["Location"]))
    assert f"Facture 2026-JOL-000200 de 13,80{NBSP}€ émise : le foyer la retrouve" in page


def test_a_paper_invoice_to_a_payer_without_household(agent, fake):
    fake.on("POST", INVOICES_API, 201, {**CREATED, "family_id": None})
    response = send(agent, {"payer_name": "Paul MARTIN", "lines-1-label": "Photocopies",
                            "lines-1-quantity": "12", "lines-1-unit_price": "0.15"})
    page = text(response)
    assert "Paul MARTIN (facture papier, non rattachée à un foyer du portail)" in page
    assert f"<strong>1,80{NBSP}€</strong>" in page
    response = confirm(agent, response.get_data(as_text=True))
    assert response.status_code == 303
    assert fake.last_json("POST", INVOICES_API) == {
        "family_id": None, "payer_name": "Paul MARTIN", "label": None, "period": None,
        "due_date": None, "lines": [{"label": "Photocopies", "quantity": 12,
                                     "unit_price": "0.15", "child_name": None}]}
    assert not fake.calls("GET", FAMILIES_API)
    assert "sans foyer du portail : téléchargez-la" in text(
        agent.get(response.headers["Location"]))


def test_going_back_from_the_confirmation_keeps_what_was_typed(agent, fake):
    path = f"{NEW}?q=mar"
    first = send(agent, {"family_id": "f9", "period": "2026-10", **LINES}, path)
    response = confirm(agent, first.get_data(as_text=True), path, step="modifier")
    page = text(response)
    assert response.status_code == 200
    assert "<h1>Nouvelle facture" in page and 'role="alert"' not in page
    assert '<option selected value="f9">' in page or '<option value="f9" selected' in page
    assert input_value(page, "period") == "2026-10"
    assert input_value(page, "lines-2-label") == "Goûter"
    assert input_value(page, "lines-2-unit_price") == "1.50"
    assert input_value(page, "lines-0-unit_price") == "4,10"
    assert not billing_posts(fake)


def test_a_failing_gateway_keeps_the_confirmation(agent, fake):
    first = send(agent, {"payer_name": "Paul MARTIN", **LINES})
    fake.on("POST", INVOICES_API, 503, problem(503, "Indisponible."))
    response = confirm(agent, first.get_data(as_text=True))
    page = text(response)
    assert response.status_code == 502
    assert "Service momentanément perturbé" in page
    assert ">Confirmer</button>" in page and 'value="Paul MARTIN"' in page


# --- checks and errors --------------------------------------------------------------------------


def test_local_checks_before_anything_is_sent(agent, fake):
    response = send(agent, {"label": "x" * 201, "period": "octobre", "due_date": "demain"})
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Nouvelle facture — Portail Famille</title>" in page
    assert field_error(page, "payer_name") == "Choisissez le foyer ou indiquez le nom du payeur."
    assert field_error(page, "lines-0-label") == "Indiquez au moins une ligne."
    assert field_error(page, "label") == "Au plus 200 caractères."
    assert field_error(page, "period") == "Mois invalide (par exemple 10/2026)."
    assert field_error(page, "due_date") == "Date invalide (par exemple 30/11/2026)."
    assert '<a href="#lines-0-label">Ligne 1 : Indiquez au moins une ligne.</a>' in page
    assert input_value(page, "due_date") == "demain"
    response = send(agent, {"payer_name": "Paul", "lines-0-label": "Repas",
                            "lines-0-quantity": "0", "lines-0-unit_price": "4,1O",
                            "lines-3-child_name": "Léa", "lines-4-quantity": "2,5"})
    page = text(response)
    assert field_error(page, "lines-0-quantity") == "Un nombre entier entre 1 et 10 000."
    assert field_error(page, "lines-0-unit_price") == "Montant invalide (par exemple 24,60)."
    assert field_error(page, "lines-3-label") == "Indiquez le libellé de la ligne."
    assert field_error(page, "lines-3-quantity") == "Indiquez la quantité."
    assert field_error(page, "lines-3-unit_price") == "Indiquez le prix unitaire."
    assert field_error(page, "lines-4-quantity") == "Un nombre entier entre 1 et 10 000."
    assert input_value(page, "lines-3-child_name") == "Léa"
    assert input_value(page, "lines-0-unit_price") == "4,1O"
    assert not billing_posts(fake)


def test_a_household_or_a_payer_name_not_both(agent, fake):
    path = f"{NEW}?q=mar"
    page = text(send(agent, {**LINES}, path))
    assert field_error(page, "family_id") == "Choisissez le foyer ou indiquez le nom du payeur."
    page = text(send(agent, {"family_id": "f9", "payer_name": "Paul", **LINES}, path))
    assert field_error(page, "payer_name").startswith("Laissez ce nom vide")
    # A household that is not among the search's results is refused (and the select shown).
    response = send(agent, {"family_id": "f-autre", **LINES}, path)
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "family_id").startswith("Ce foyer ne fait pas partie des résultats")
    response = send(agent, {"family_id": "f9", **LINES})  # the search was lost
    page = text(response)
    assert response.status_code == 422
    assert field_error(page, "family_id").startswith("Ce foyer ne fait pas partie des résultats")
    check(response.get_data(as_text=True), "household without search")
    assert not billing_posts(fake)


def test_api_errors_go_next_to_their_fields_and_rows(agent, fake):
    # The API numbers the lines it received: its 0 and 1 are the form's rows 1 and 3.
    fake.on("POST", INVOICES_API, 422, problem(422, "Données invalides.", {
        "lines.1.unit_price": ["Montant invalide (par exemple 24.60)."],
        "lines.0.label": ["Au plus 300 caractères."],
        "lines.1.unit": ["Unité inconnue."],
        "family_id": ["Ce foyer n'est pas connu."],
        "due_date": ["Date invalide."],
        "lines": ["Au plus 200 lignes."]}))
    path = f"{NEW}?q=mar"
    first = send(agent, {"family_id": "f9", "due_date": "2026-11-30", **LINES}, path)
    response = confirm(agent, first.get_data(as_text=True), path)
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Nouvelle facture — Portail Famille</title>" in page
    assert field_error(page, "lines-2-unit_price") == "Montant invalide (par exemple 24.60)."
    assert field_error(page, "lines-1-unit_price") is None
    assert field_error(page, "lines-0-label") == "Au plus 300 caractères."
    assert field_error(page, "family_id") == "Ce foyer n'est pas connu."
    assert field_error(page, "due_date") == "Date invalide."
    assert "<li>Au plus 200 lignes.</li>" in page and "<li>Unité inconnue.</li>" in page
    assert '<a href="#lines-2-unit_price">Ligne 3 : Montant invalide' in page
    assert 'aria-describedby="lines-2-unit_price-erreur"' in page
    # Everything typed is still there.
    assert input_value(page, "lines-2-label") == "Goûter"
    assert input_value(page, "lines-2-child_name") == "Jules"
    assert input_value(page, "lines-0-unit_price") == "4,10"
    assert input_value(page, "due_date") == "2026-11-30"
    assert '<option selected value="f9">' in page or '<option value="f9" selected' in page
    check(response.get_data(as_text=True), "refused by the API")


def test_a_household_error_without_the_select_goes_to_the_summary(agent, fake):
    fake.on("POST", INVOICES_API, 422, problem(422, "Données invalides.", {
        "family_id": ["Ce foyer n'est pas connu."],
        "payer_name": ["Indiquez le foyer ou le nom du payeur."]}))
    first = send(agent, {"payer_name": "Paul MARTIN", **LINES})
    response = confirm(agent, first.get_data(as_text=True))
    page = text(response)
    assert "<li>Ce foyer n'est pas connu.</li>" in page
    assert field_error(page, "payer_name") == "Indiquez le foyer ou le nom du payeur."
    check(response.get_data(as_text=True), "family_id refused without select")


def test_a_refusal_without_field_errors_is_explained(agent, fake):
    fake.on("POST", INVOICES_API, 409, problem(409, "La numérotation est verrouillée."))
    first = send(agent, {"payer_name": "Paul MARTIN", **LINES})
    page = text(confirm(agent, first.get_data(as_text=True)))
    assert "<li>La numérotation est verrouillée.</li>" in page


# --- accessibility ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [NEW, f"{NEW}?q=mar", f"{NEW}?q=zzz"])
def test_pages_pass_the_accessibility_self_check(agent, fake, path):
    if "zzz" in path:
        fake.on("GET", FAMILIES_API, body={"items": [], "next": None})
    response = agent.get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


@pytest.mark.parametrize("data", [
    {},
    {"payer_name": "", "lines-2-quantity": "x", "lines-5-unit_price": "y"},
    {"family_id": "f9", "payer_name": "Paul", **LINES},
])
def test_refused_forms_pass_the_accessibility_self_check(agent, data):
    path = f"{NEW}?q=mar"
    response = send(agent, data, path)
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    page = check(body, f"POST {path}")
    assert page.title.startswith("Erreur — ")
    assert 'role="alert"' in body and 'aria-invalid="true"' in body


def test_the_confirmation_passes_the_accessibility_self_check(agent):
    response = send(agent, {"family_id": "f9", **LINES}, f"{NEW}?q=mar")
    assert response.status_code == 200
    page = check(response.get_data(as_text=True), "confirmation")
    assert page.forms[-1]["csrf"]


def test_without_a_session_cookie_nothing_is_searched(fake):
    billing_agent(fake)
    client = build(fake).test_client()
    assert client.get(f"{NEW}?q=mar").status_code == 303
    assert not fake.calls("GET", FAMILIES_API)
