"""Agents' « Demandes » : the queue, a request (status, question, assignment, message, the
household's record) and the categories."""

from __future__ import annotations

import io
import json
import re

import pytest

from .requests_support import (
    ADDRESS,
    AGENTS,
    CATEGORIES,
    FAMILY_RECORD,
    HOUSEHOLD,
    PDF,
    PICKUP,
    REQUESTS,
    agent_request,
    multipart,
    requests_agent,
    requests_parent,
)
from .support import commune, csrf_token, field_error, input_value, post_form, problem, text

DETAIL = "/agent/demandes/r1"
AGENT_PAGES = ["/agent/demandes", DETAIL, "/agent/categories", "/agent/categories/nouvelle",
               "/agent/categories/cat-pickup"]
AGENT_POSTS = [f"{DETAIL}/statut", f"{DETAIL}/question", f"{DETAIL}/attribution",
               f"{DETAIL}/message", f"{DETAIL}/dossier", "/agent/categories/nouvelle",
               "/agent/categories/cat-pickup"]


@pytest.fixture
def town(agent, fake):
    requests_agent(fake)
    return agent


def nav(page: str) -> str:
    return page[page.index('<nav aria-label="Menu principal">'):page.index("</nav>")]


# --- who ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_pages_are_403_for_parents(parent, fake, path):
    requests_parent(fake)
    response = parent.get(path, headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "Accès refusé" in text(response)
    assert not any("/api/requests/" in r.url for r in fake.seen)


@pytest.mark.parametrize("path", AGENT_POSTS)
def test_agent_posts_are_403_for_parents(parent, fake, path):
    requests_parent(fake)
    response = post_form(parent, path, {"statut-status": "accepted", "body": "x"},
                         token_from="/profil")
    assert response.status_code == 403
    assert not [r for r in fake.seen if r.method in ("POST", "PATCH")]


@pytest.mark.parametrize("path", AGENT_POSTS)
def test_agent_posts_need_the_csrf_token(town, fake, path):
    response = town.post(path, data={"statut-status": "accepted", "body": "x"},
                         content_type="multipart/form-data", headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response)
    assert not [r for r in fake.seen if r.method in ("POST", "PATCH")]


def test_agent_menu_has_requests_when_the_commune_offers_them(town, fake):
    assert '<a href="/agent/demandes"' in nav(town.get("/").get_data(as_text=True))
    fake.on("GET", "/api/accounts/communes/jolieville", body=commune(modules=("invoices",)))
    town.application.extensions["portal_communes"].clear()
    assert "/agent/demandes" not in nav(town.get("/").get_data(as_text=True))


def test_parent_menu_has_no_agent_entry(parent, fake):
    requests_parent(fake)
    assert "/agent/demandes" not in nav(parent.get("/").get_data(as_text=True))


# --- the queue -------------------------------------------------------------------------------


def test_queue_shows_requests_to_process_oldest_first(town, fake):
    response = town.get("/agent/demandes")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Demandes — Portail Famille</title>" in page
    assert fake.last_query(REQUESTS) == {"status": ["submitted,in_progress,waiting_for_family"]}
    assert fake.last_query(CATEGORIES) == {"all": ["true"]}
    assert "Demandes, les plus anciennes d'abord" in page
    assert '<a href="/agent/demandes/r1">D2026-0000R1</a>' in page
    assert "<td>CASSEREAU</td>" in page and "<td>MARTIN</td>" in page
    assert "en attente de la famille" in page and "<td>collegue@jolieville.test</td>" in page
    assert '<tr class="is-waiting">' in page
    assert '<option value="cat-allergy">Allergie alimentaire (désactivée)</option>' in page
    assert 'href="/agent/demandes?suite=c2&statut=a-traiter"' in page
    assert 'href="/agent/categories"' in page


@pytest.mark.parametrize("query,expected", [
    ("statut=accepted&categorie=cat-pickup&attribution=moi",
     {"status": ["accepted"], "category": ["cat-pickup"], "assigned": ["me"]}),
    ("statut=toutes&attribution=personne", {"assigned": ["none"]}),
    ("statut=nimporte&attribution=qui", {"status": ["submitted,in_progress,waiting_for_family"]}),
    ("statut=waiting_for_family&suite=c2", {"status": ["waiting_for_family"], "cursor": ["c2"]}),
])
def test_queue_filters(town, fake, query, expected):
    response = town.get(f"/agent/demandes?{query}")
    assert response.status_code == 200
    assert fake.last_query(REQUESTS) == expected


def test_queue_pages_keep_the_filters(town, fake):
    page = text(town.get("/agent/demandes?statut=accepted&categorie=cat-pickup&attribution=moi"
                         "&suite=c1"))
    assert '<option value="accepted" selected>Acceptée</option>' in page
    assert '<option value="cat-pickup" selected>' in page
    assert '<option value="moi" selected>Confiées à moi</option>' in page
    assert ('href="/agent/demandes?suite=c2&statut=accepted&categorie=cat-pickup'
            '&attribution=moi">Demandes suivantes</a>') in page
    assert ('href="/agent/demandes?statut=accepted&categorie=cat-pickup&attribution=moi">'
            "Premières demandes</a>") in page


def test_queue_empty_and_refused(town, fake):
    fake.on("GET", REQUESTS, body={"items": [], "next": None})
    assert "Aucune demande ne correspond à ces critères." in text(town.get("/agent/demandes"))
    fake.on("GET", REQUESTS, 422, problem(422, "Curseur de pagination invalide."))
    response = town.get("/agent/demandes?suite=abimé")
    assert response.status_code == 422
    assert "Curseur de pagination invalide." in text(response)


# --- a request -------------------------------------------------------------------------------


def test_request_page_shows_everything_an_agent_needs(town, fake):
    response = town.get(DETAIL)
    html = response.get_data(as_text=True)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Demande D2026-7KQ3MX — Portail Famille</title>" in page
    # the household and its children
    assert "<dt>Code famille</dt><dd>JV-0042</dd>" in page
    assert "12 rue des Lilas" in page and "Claire CASSEREAU" in page
    assert "<th scope=\"row\">Léa CASSEREAU</th>" in page and "14/03/2018" in page
    # answers, documents, messages, history
    assert "<dt>Nom et prénom de la personne autorisée</dt>" in page and "Jeanne DUPONT" in page
    assert 'href="/api/requests/communes/jolieville/requests/r1/documents/d1" download' in html
    assert "envoyé par la famille" in page
    assert "<strong>agent@jolieville.test</strong>" in page
    assert "— par la famille" in page
    assert "Statut passé de « nouvelle »\n        à « en attente de la famille »" in page
    # the status form offers what the category allows from here
    assert ('<option value="">Choisissez</option><option value="waiting_for_family">en attente '
            'de la famille</option><option value="accepted">acceptée</option><option '
            'value="refused">refusée</option></select>') in page
    assert 'action="/agent/demandes/r1/question"' in html
    assert ('<option selected value="">Personne</option><option value="a2">'
            'agent@jolieville.test</option>') in page
    assert 'action="/agent/demandes/r1/message"' in html and 'name="documents"' in html
    assert "Appliquer au dossier de la famille" not in page  # not an accepted change


def test_change_status_with_a_message(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/transition", body=agent_request(status="accepted"))
    response = post_form(town, f"{DETAIL}/statut",
                         {"statut-status": "accepted", "statut-message": "  C'est noté.  "},
                         token_from=DETAIL)
    assert response.status_code == 303 and response.headers["Location"] == DETAIL
    assert fake.last_json("POST", f"{REQUESTS}/r1/transition") == {
        "status": "accepted", "message": "C'est noté."}
    assert "La demande est maintenant « acceptée »." in text(town.get(DETAIL))


def test_change_status_refused_by_the_category_shows_the_reason(town, fake):
    detail = ("Impossible de passer du statut « en attente de la famille » au statut "
              "« acceptée » pour cette catégorie. Depuis « en attente de la famille », la "
              "demande peut passer à : « en cours ».")
    fake.on("POST", f"{REQUESTS}/r1/transition", 409,
            problem(409, detail, {"status": [detail]}))
    response = post_form(town, f"{DETAIL}/statut", {"statut-status": "accepted"},
                         token_from=DETAIL)
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert field_error(html, "statut-status") == detail
    assert '<a href="#statut-status">' in html
    assert "<title>Erreur — Demande" in html


def test_change_status_409_without_errors(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/transition", 409,
            problem(409, "La demande est déjà au statut « acceptée »."))
    response = post_form(town, f"{DETAIL}/statut", {"statut-status": "accepted"},
                         token_from=DETAIL)
    assert response.status_code == 409
    assert "<li>La demande est déjà au statut « acceptée ».</li>" in text(response)


def test_refusing_needs_a_message(town, fake):
    response = post_form(town, f"{DETAIL}/statut", {"statut-status": "refused"},
                         token_from=DETAIL)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "statut-message") == \
        "Indiquez à la famille le motif du refus."
    assert not fake.calls("POST", f"{REQUESTS}/r1/transition")


def test_a_status_the_request_cannot_go_to_is_refused_here(town, fake):
    response = post_form(town, f"{DETAIL}/statut", {"statut-status": "closed"},
                         token_from=DETAIL)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "statut-status") == \
        "Choisissez l'un des statuts proposés."


def test_the_service_message_requirement_lands_on_the_message(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/transition", 422, problem(
        422, "Invalide.", {"message": ["Écrivez à la famille ce qu'il manque."]}))
    response = post_form(town, f"{DETAIL}/statut",
                         {"statut-status": "waiting_for_family", "statut-message": " "},
                         token_from=DETAIL)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "statut-message") is not None


def test_ask_the_family(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/transition", body=agent_request(
        status="waiting_for_family"))
    response = post_form(town, f"{DETAIL}/question",
                         {"question-message": "Le verso, s'il vous plaît."}, token_from=DETAIL)
    assert response.status_code == 303
    assert fake.last_json("POST", f"{REQUESTS}/r1/transition") == {
        "status": "waiting_for_family", "message": "Le verso, s'il vous plaît."}
    empty = post_form(town, f"{DETAIL}/question", {"question-message": ""}, token_from=DETAIL)
    assert empty.status_code == 422
    assert field_error(empty.get_data(as_text=True), "question-message").startswith(
        "Écrivez à la famille")


def test_no_question_when_the_category_does_not_allow_it(town, fake):
    fake.on("GET", f"{REQUESTS}/r1", body=agent_request(
        status="accepted", allowed_transitions=["closed"]))
    page = text(town.get(DETAIL))
    assert "/question" not in page
    assert '<option value="closed">clôturée</option>' in page


def test_assign_to_a_colleague_and_to_nobody(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/assign", body=agent_request())
    response = post_form(town, f"{DETAIL}/attribution", {"attribution-agent": "a3"},
                         token_from=DETAIL)
    assert response.status_code == 303
    assert fake.last_json("POST", f"{REQUESTS}/r1/assign") == {"agent_account_id": "a3"}
    assert "Demande confiée à collegue@jolieville.test." in text(town.get(DETAIL))
    post_form(town, f"{DETAIL}/attribution", {"attribution-agent": ""}, token_from=DETAIL)
    assert fake.last_json("POST", f"{REQUESTS}/r1/assign") == {"agent_account_id": None}
    assert fake.calls("GET", AGENTS)


def test_assign_to_an_unknown_agent(town, fake):
    response = post_form(town, f"{DETAIL}/attribution", {"attribution-agent": "zz"},
                         token_from=DETAIL)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "attribution-agent") == \
        "Choisissez l'un des agents proposés."
    assert not fake.calls("POST", f"{REQUESTS}/r1/assign")


def test_the_current_assignee_is_selected(town, fake):
    fake.on("GET", f"{REQUESTS}/r1", body=agent_request(
        assigned_to={"account_id": "a3", "email": "collegue@jolieville.test"}))
    page = text(town.get(DETAIL))
    assert '<option selected value="a3">collegue@jolieville.test</option>' in page
    assert "<dt>Confiée à</dt><dd>collegue@jolieville.test</dd>" in page


def test_agent_message_with_a_document(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/messages", 201, agent_request())
    token = csrf_token(town, DETAIL)
    response = town.post(f"{DETAIL}/message", data={
        "csrf_token": token, "body": "Voici le modèle à remplir.",
        "documents": (io.BytesIO(PDF), "modele.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 303
    texts, files = multipart(fake.calls("POST", f"{REQUESTS}/r1/messages")[-1])
    assert texts == {"body": ["Voici le modèle à remplir."]}
    assert files == {"documents": [("modele.pdf", PDF)]}
    assert "Votre message a été envoyé à la famille." in text(town.get(DETAIL))


def test_agent_message_refused(town, fake):
    fake.on("POST", f"{REQUESTS}/r1/messages", 422, problem(
        422, "Le message n'a pas été envoyé.", {"body": ["Écrivez un message ou joignez un "
                                                         "document."]}))
    response = post_form(town, f"{DETAIL}/message", {"body": ""}, token_from=DETAIL,
                         content_type="multipart/form-data")
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "message-body") == \
        "Écrivez un message ou joignez un document."


# --- applying an accepted change to the household's record --------------------------------


ACCEPTED_ADDRESS = agent_request(
    status="accepted", allowed_transitions=["closed"],
    category={"id": "cat-address", "label": ADDRESS["label"], "kind": "address_change"},
    fields=[{"name": "line1", "label": "Adresse", "type": "text", "value": "3 allée des Pins",
             "display": "3 allée des Pins"},
            {"name": "postal_code", "label": "Code postal", "type": "text", "value": "77100",
             "display": "77100"},
            {"name": "city", "label": "Commune", "type": "text", "value": "JolieVille",
             "display": "JolieVille"}])
ACCEPTED_ALLERGY = agent_request(
    status="accepted", allowed_transitions=["closed"],
    category={"id": "cat-allergy", "label": "Allergie alimentaire", "kind": "allergy"},
    fields=[{"name": "child", "label": "Enfant", "type": "child", "value": "c2",
             "display": "Tom CASSEREAU"},
            {"name": "notes", "label": "Description", "type": "long_text",
             "value": "Arachide", "display": "Arachide"}])


def test_accepted_address_change_offers_to_update_the_household(town, fake):
    fake.on("GET", f"{REQUESTS}/r1", body=ACCEPTED_ADDRESS)
    response = town.get(DETAIL)
    html = response.get_data(as_text=True)
    assert "Appliquer au dossier de la famille" in html
    assert 'action="/agent/demandes/r1/dossier"' in html
    assert input_value(html, "dossier-line1") == "3 allée des Pins"
    assert input_value(html, "dossier-line2") == ""
    assert input_value(html, "dossier-postal_code") == "77100"
    assert input_value(html, "dossier-city") == "JolieVille"

    updated = {**HOUSEHOLD, "id": "f1", "address": {
        "line1": "3 allée des Pins", "line2": "Bât. C", "postal_code": "77100",
        "city": "JolieVille"}}
    fake.on("PATCH", FAMILY_RECORD, body=updated)
    response = post_form(town, f"{DETAIL}/dossier", {
        "dossier-line1": "3 allée des Pins", "dossier-line2": "Bât. C",
        "dossier-postal_code": "77100", "dossier-city": "JolieVille"}, token_from=DETAIL)
    assert response.status_code == 303
    assert response.headers["Location"] == f"{DETAIL}#dossier"
    assert fake.last_json("PATCH", FAMILY_RECORD) == {"address": {
        "line1": "3 allée des Pins", "line2": "Bât. C", "postal_code": "77100",
        "city": "JolieVille"}}
    assert ("Dossier de la famille CASSEREAU mis à jour. Adresse enregistrée : 3 allée des "
            "Pins, Bât. C, 77100 JolieVille.") in text(town.get(DETAIL))


def test_accepted_allergy_updates_the_child(town, fake):
    fake.on("GET", f"{REQUESTS}/r1", body=ACCEPTED_ALLERGY)
    html = town.get(DETAIL).get_data(as_text=True)
    assert '<option selected value="c2">Tom CASSEREAU</option>' in html
    assert re.search(r'id="dossier-notes"[^>]*>\s*Arachide</textarea>', html)
    children = [{**c, "allergies": c["id"] == "c2" or c["allergies"],
                 "allergy_notes": "Arachide" if c["id"] == "c2" else None}
                for c in HOUSEHOLD["children"]]
    fake.on("PATCH", FAMILY_RECORD, body={**HOUSEHOLD, "children": children})
    response = post_form(town, f"{DETAIL}/dossier", {
        "dossier-child": "c2", "dossier-allergies": "y", "dossier-notes": "Arachide"},
        token_from=DETAIL)
    assert response.status_code == 303
    assert fake.last_json("PATCH", FAMILY_RECORD) == {"children": [
        {"id": "c2", "allergies": True, "allergy_notes": "Arachide"}]}
    assert "Tom CASSEREAU : allergie / PAI oui (Arachide)." in text(town.get(DETAIL))


def test_applying_refused_by_accounts(town, fake):
    fake.on("GET", f"{REQUESTS}/r1", body=ACCEPTED_ADDRESS)
    fake.on("PATCH", FAMILY_RECORD, 422, problem(
        422, "Invalide.", {"address.postal_code": ["Code postal inconnu."]}))
    response = post_form(town, f"{DETAIL}/dossier", {
        "dossier-line1": "3 allée des Pins", "dossier-postal_code": "77100",
        "dossier-city": "JolieVille"}, token_from=DETAIL)
    assert response.status_code == 422
    assert field_error(response.get_data(as_text=True), "dossier-postal_code") == \
        "Code postal inconnu."
    bad = post_form(town, f"{DETAIL}/dossier", {"dossier-line1": "", "dossier-postal_code": "7"},
                    token_from=DETAIL)
    assert bad.status_code == 422
    assert field_error(bad.get_data(as_text=True), "dossier-postal_code") == \
        "Code postal invalide (5 chiffres)."


def test_nothing_to_apply_before_acceptance(town, fake):
    fake.on("GET", f"{REQUESTS}/r1", body={**ACCEPTED_ADDRESS, "status": "in_progress"})
    assert "Appliquer au dossier" not in text(town.get(DETAIL))
    response = post_form(town, f"{DETAIL}/dossier", {"dossier-line1": "x"}, token_from=DETAIL)
    assert response.status_code == 303
    assert not fake.calls("PATCH", FAMILY_RECORD)


# --- categories ------------------------------------------------------------------------------


def test_categories_list(town, fake):
    page = text(town.get("/agent/categories"))
    assert fake.last_query(CATEGORIES) == {"all": ["true"]}
    assert '<a href="/agent/categories/cat-pickup">Autorisation de récupération' in page
    assert "<td>Changement d'adresse</td>" in page
    assert "Pièce d'identité de la personne autorisée (obligatoire)" in page
    assert '<a class="button" href="/agent/categories/nouvelle">' in page


def category_form(**changes) -> dict[str, str | list[str]]:
    data: dict[str, str | list[str]] = {
        "label": "Inscription à l'étude", "description": "", "kind": "", "active": "y",
        "fields-0-label": "Enfant", "fields-0-type": "child", "fields-0-required": "y",
        "fields-2-label": "Jours souhaités", "fields-2-type": "choice",
        "fields-2-options": "Lundi, Mardi ,, Jeudi", "fields-2-help": "Un seul choix.",
        "documents-1-label": "Attestation d'employeur", "documents-1-types": ["pdf", "png"],
        "documents-1-max_size": "2,5", "documents-1-required": "y",
    }
    data.update(changes)
    return data


def test_create_a_category(town, fake):
    page = town.get("/agent/categories/nouvelle").get_data(as_text=True)
    assert page.count("<legend>Champ ") == 8 and page.count("<legend>Document ") == 4
    assert 'id="documents-0-types-0" name="documents-0-types" type="checkbox" value="pdf"' \
        in page
    fake.on("POST", CATEGORIES, 201, {**PICKUP, "id": "cat-new"})
    response = post_form(town, "/agent/categories/nouvelle", category_form())
    assert response.status_code == 303
    assert response.headers["Location"] == "/agent/categories"
    assert fake.last_json("POST", CATEGORIES) == {
        "label": "Inscription à l'étude", "description": None, "kind": None, "active": True,
        "fields": [
            {"name": "enfant", "label": "Enfant", "type": "child", "required": True,
             "help": None},
            {"name": "jours_souhaites", "label": "Jours souhaités", "type": "choice",
             "required": False, "help": "Un seul choix.",
             "options": [{"value": "Lundi", "label": "Lundi"},
                         {"value": "Mardi", "label": "Mardi"},
                         {"value": "Jeudi", "label": "Jeudi"}]}],
        "required_attachments": [
            {"name": "attestation_d_employeur", "label": "Attestation d'employeur",
             "required": True, "accepted_types": ["pdf", "png"],
             "max_size": int(2.5 * 1024 * 1024), "help": None}],
    }
    assert "La catégorie « Inscription à l'étude » est créée" in text(
        town.get("/agent/categories"))


def test_category_form_checks_what_can_be_fixed_at_once(town, fake):
    response = post_form(town, "/agent/categories/nouvelle", category_form(**{
        "label": "", "fields-2-options": "", "fields-3-help": "sans libellé",
        "documents-1-types": [], "documents-1-max_size": "30", "fields-0-name": "Pas Bon"}))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(html, "label") == "Indiquez le libellé de la catégorie."
    assert field_error(html, "fields-2-options") == \
        "Indiquez les options, séparées par des virgules."
    assert field_error(html, "fields-3-label") == "Indiquez le libellé du champ."
    assert field_error(html, "fields-0-name").startswith("Lettres minuscules")
    assert field_error(html, "documents-1-types") == "Cochez au moins un type de fichier."
    assert field_error(html, "documents-1-max_size") == "Au plus 25 Mo (la limite d'un envoi)."
    assert '<a href="#documents-1-types">' in html and 'id="documents-1-types"' in html
    assert not fake.calls("POST", CATEGORIES)


def test_category_refusal_maps_to_the_rows(town, fake):
    fake.on("POST", CATEGORIES, 422, problem(422, "La catégorie n'est pas valable.", {
        "fields.1.name": ["Ce nom est déjà utilisé dans cette catégorie."],
        "required_attachments.0.accepted_types.0": ["Type de fichier inconnu."],
        "fields": ["Une catégorie de type « allergie » doit avoir un champ « notes »."]}))
    response = post_form(town, "/agent/categories/nouvelle", category_form(kind="allergy"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    # the API's fields.1 is the second row filled in: the form's row 2
    assert field_error(html, "fields-2-name") == "Ce nom est déjà utilisé dans cette catégorie."
    assert field_error(html, "documents-1-types") == "Type de fichier inconnu."
    assert "<li>Une catégorie de type « allergie » doit avoir un champ « notes ».</li>" in \
        text(response)
    assert '<option selected value="allergy">' in html


def test_edit_a_category_keeps_what_the_form_does_not_show(town, fake):
    page = town.get("/agent/categories/cat-pickup").get_data(as_text=True)
    assert input_value(page, "label") == "Autorisation de récupération d&#39;un enfant"
    assert input_value(page, "version") == "2"
    assert input_value(page, "fields-7-options") == "Le matin, Le soir"
    assert input_value(page, "documents-0-max_size") == "5"
    assert page.count("<legend>Champ ") == 10  # nine fields, and room for one more
    assert 'id="documents-1-types-3" name="documents-1-types" type="checkbox" value="heic"' \
        in page
    fake.on("PATCH", f"{CATEGORIES}/cat-pickup", body=PICKUP)
    form = {
        "label": "Autorisation de sortie", "description": "", "kind": "", "version": "2",
        "fields-0-label": "Enfant", "fields-0-name": "child", "fields-0-type": "child",
        "fields-0-required": "y",
        "fields-1-label": "Moment", "fields-1-name": "moment", "fields-1-type": "choice",
        "fields-1-options": "Le soir, Le midi", "fields-1-required": "y",
        "documents-0-label": "Autre justificatif", "documents-0-name": "other_proof",
        "documents-0-types": ["pdf"], "documents-0-max_size": "10",
    }
    response = post_form(town, "/agent/categories/cat-pickup", form)
    assert response.status_code == 303
    body = fake.last_json("PATCH", f"{CATEGORIES}/cat-pickup")
    assert body["version"] == 2 and body["active"] is False and body["label"] == \
        "Autorisation de sortie"
    assert body["fields"][1]["options"] == [{"value": "soir", "label": "Le soir"},
                                            {"value": "Le midi", "label": "Le midi"}]
    assert body["required_attachments"] == [{
        "name": "other_proof", "label": "Autre justificatif", "required": False,
        "accepted_types": ["pdf"], "max_size": 10 * 1024 * 1024, "help": None,
        "max_files": 3}]


def test_edit_a_category_changed_meanwhile(town, fake):
    fake.on("PATCH", f"{CATEGORIES}/cat-pickup", 409, problem(
        409, "La catégorie a été modifiée entre-temps : rechargez la page."))
    response = post_form(town, "/agent/categories/cat-pickup", {
        "label": "X", "version": "1", "fields-0-label": "Enfant", "fields-0-type": "child"})
    assert response.status_code == 409
    assert "<li>La catégorie a été modifiée entre-temps : rechargez la page.</li>" in \
        text(response)
    assert json.loads(fake.calls("PATCH", f"{CATEGORIES}/cat-pickup")[-1].body)["version"] == 1


def test_agent_message_too_big_for_the_portal(app, town, fake):
    app.config["PORTAL_UPLOAD_LIMIT"] = 4096
    token = csrf_token(town, DETAIL)
    response = town.post(f"{DETAIL}/message", data={
        "csrf_token": token, "body": "x", "documents": (io.BytesIO(b"x" * 10_000), "a.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 413
    page = text(response)
    assert "L'envoi est trop volumineux : 25 Mo au plus en tout" in page
    assert "Écrire à la famille" in page
    assert not fake.calls("POST", f"{REQUESTS}/r1/messages")
