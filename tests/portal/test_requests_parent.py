"""« Mes demandes » : the categories, the generated form, sending it as multipart, history,
a request's page and the reply."""

from __future__ import annotations

import io
import re

import pytest
import requests

from .requests_support import (
    CATEGORIES,
    PDF,
    PICKUP,
    REQUEST,
    REQUESTS,
    multipart,
    requests_parent,
    summary,
)
from .support import commune, csrf_token, field_error, input_value, problem, text

NEW = "/demandes/nouvelle/cat-pickup"
CREATED = {**REQUEST, "id": "r9", "reference": "D2026-ABCDEF", "status": "submitted"}


@pytest.fixture
def family(parent, fake):
    requests_parent(fake)
    return parent


def hidden_key(page: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def filled(client, **changes) -> dict:
    """The pickup form as a parent fills it, with its CSRF token and idempotency key."""
    page = client.get(NEW).get_data(as_text=True)
    data = {
        "csrf_token": csrf_token(client, NEW), "idempotency_key": hidden_key(page),
        "child": "c1", "person_name": "Jeanne DUPONT", "details": "Le mardi.\nEt le jeudi.",
        "from": "2026-12-01", "phone": "06 11 22 33 44", "email": "", "every_week": "oui",
        "moment": "soir", "site": "Gymnase",
        "identity_document": (io.BytesIO(PDF), "carte identité.pdf", "application/pdf"),
        "other_proof": (io.BytesIO(b""), ""),
    }
    data.update(changes)
    return data


def send(client, data, **kwargs):
    return client.post(NEW, data=data, content_type="multipart/form-data", **kwargs)


# --- the list --------------------------------------------------------------------------------


def test_my_requests_lists_categories_and_history(family, fake):
    response = family.get("/demandes")
    page = text(response)
    assert response.status_code == 200
    assert "<title>Mes demandes — Portail Famille</title>" in page
    assert '<h2 id="faire">Faire une demande</h2>' in page
    assert '<a href="/demandes/nouvelle/cat-pickup">Autorisation de récupération' in page
    assert "À joindre : Pièce d'identité de la personne autorisée." in page
    assert "Historique des demandes" in page
    assert '<a href="/demandes/r1">' in page and '<a href="/demandes/r2">' in page
    assert "D2026-0000R1" in page and "02/11/2026" in page and "03/11/2026" in page
    assert "<span class=\"status status--accepted\">acceptée</span>" in page
    # The one waiting for the family stands out, in the list and above it.
    row = page[page.index('<tr class="is-waiting">'):]
    row = row[:row.index("</tr>")]
    assert "/demandes/r1" in row and "Une réponse de votre part est attendue" in row
    assert page.count("Une réponse de votre part est attendue") == 2
    assert 'href="/demandes?suite=c2"' in page
    assert fake.last_query(REQUESTS) == {}


def test_history_pages_with_the_cursor(family, fake):
    fake.on("GET", REQUESTS, body={"items": [summary("r7", "closed")], "next": None})
    page = text(family.get("/demandes?suite=c2"))
    assert fake.last_query(REQUESTS) == {"cursor": ["c2"]}
    assert '<a href="/demandes">Demandes les plus récentes</a>' in page
    assert "Demandes plus anciennes" not in page


def test_commune_without_requests(family, fake):
    fake.on("GET", CATEGORIES, 404, problem(404, "Cette commune ne propose pas de demandes en "
                                                 "ligne."))
    fake.on("GET", REQUESTS, body={"items": [], "next": None})
    response = family.get("/demandes")
    assert response.status_code == 200
    page = text(response)
    assert "ne propose pas les demandes en ligne" in page
    assert "Vous n'avez encore fait aucune demande." in page


def test_the_menu_entry(family, fake):
    assert 'href="/demandes"' in family.get("/").get_data(as_text=True)


def test_an_account_without_household_has_no_requests_page(agent, fake):
    requests_parent(fake)
    fake.agent()
    assert agent.get("/demandes", headers={"Accept": "text/html"}).status_code == 404


def test_logged_out_visitors_go_to_the_login_page(client, fake):
    response = client.get(NEW)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/connexion?suivant={NEW}"


# --- the form --------------------------------------------------------------------------------


def test_the_form_is_generated_from_the_category(family, fake):
    response = family.get(NEW)
    html = response.get_data(as_text=True)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Nouvelle demande : Autorisation de récupération d'un enfant — Portail " \
           "Famille</title>" in page
    assert 'enctype="multipart/form-data"' in html
    assert re.search(r'name="idempotency_key" value="[\w-]{20,}"', html)
    # child → the household's children, from the accounts API
    assert fake.calls("GET", "/api/accounts/me/family")
    assert re.search(r'<select class="field__input" id="champ-child" name="child"', html)
    assert '<option value="c1">Léa CASSEREAU</option>' in page
    assert '<option value="c2">Tom CASSEREAU</option>' in page
    # text, long text, date, phone, e-mail
    assert 'type="text" id="champ-person_name" name="person_name"' in html
    assert '<textarea class="field__input" id="champ-details" name="details"' in html
    assert 'type="date" id="champ-from" name="from"' in html
    assert 'type="tel" id="champ-phone" name="phone" value="" autocomplete="tel"' in html
    assert 'type="email" id="champ-email" name="email" value="" autocomplete="email"' in html
    # yes / no and a short choice: radios in a fieldset whose legend is the question
    assert '<legend class="field__label">Chaque semaine</legend>' in page
    assert 'id="champ-every_week-0" name="every_week"\n             value="oui">' in html
    assert '<label for="champ-every_week-1">Non</label>' in html
    assert ('<legend class="field__label">Moment <span class="field__required">'
            "(obligatoire)</span></legend>") in page
    assert '<label for="champ-moment-1">Le soir</label>' in html
    # a long choice: a select
    assert '<select class="field__input" id="champ-site" name="site">' in html
    assert '<option value="Médiathèque">Médiathèque</option>' in page
    # required marks, help
    assert ('for="champ-person_name">Nom et prénom de la personne autorisée <span '
            'class="field__required">(obligatoire)</span>') in html
    assert 'for="champ-details">Précisions</label>' in html
    assert "Telle qu'écrite sur sa pièce d'identité." in page
    assert 'aria-describedby="champ-person_name-aide" aria-required="true"' in html
    # documents: accept, size and types, several files when allowed
    assert ('type="file" id="document-identity_document" name="identity_document" '
            'accept=".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"') in html
    assert "Formats acceptés : PDF, JPEG ou PNG. 5 Mo au plus." in page
    assert "Recto verso." in page
    assert 'name="other_proof" accept=".pdf,.heic,application/pdf" multiple' in html
    assert "Formats acceptés : PDF ou HEIC. 10 Mo au plus par fichier. Jusqu'à 3 fichiers." \
           in page
    assert "Documents à joindre" in page and "(obligatoire)" in page


def test_each_display_of_the_form_has_its_own_key(family, fake):
    first = hidden_key(family.get(NEW).get_data(as_text=True))
    second = hidden_key(family.get(NEW).get_data(as_text=True))
    assert first != second


def test_unknown_or_inactive_category_is_404(family, fake):
    assert family.get("/demandes/nouvelle/nope", headers={"Accept": "text/html"}) \
        .status_code == 404
    fake.on("GET", CATEGORIES, body={"items": [{**PICKUP, "active": False}], "next": None})
    assert family.get(NEW, headers={"Accept": "text/html"}).status_code == 404


def test_sending_forwards_multipart_with_the_idempotency_key(family, fake):
    fake.on("POST", REQUESTS, 201, CREATED)
    fake.on("GET", f"{REQUESTS}/r9", body=CREATED)
    data = filled(family)
    response = send(family, data)
    assert response.status_code == 303
    assert response.headers["Location"] == "/demandes/r9"
    sent = fake.calls("POST", REQUESTS)[-1]
    assert sent.headers["Idempotency-Key"] == data["idempotency_key"]
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["Cookie"] == "portail_session=s3cr3t"
    texts, files = multipart(sent)
    assert texts == {"category": ["cat-pickup"], "child": ["c1"],
                     "person_name": ["Jeanne DUPONT"], "details": ["Le mardi.\nEt le jeudi."],
                     "from": ["2026-12-01"], "phone": ["06 11 22 33 44"], "email": [""],
                     "every_week": ["oui"], "moment": ["soir"], "site": ["Gymnase"]}
    # the document by its name; the empty file input is no file
    assert files == {"identity_document": [("carte identité.pdf", PDF)]}
    assert "csrf_token" not in texts and "idempotency_key" not in texts
    page = text(family.get("/demandes/r9"))
    assert "Votre demande D2026-ABCDEF a été envoyée à la mairie." in page


def test_several_files_for_one_document(family, fake):
    fake.on("POST", REQUESTS, 201, CREATED)
    data = filled(family, other_proof=[(io.BytesIO(b"%PDF-1 a"), "a.pdf"),
                                       (io.BytesIO(b"%PDF-1 b"), "b.pdf")])
    assert send(family, data).status_code == 303
    _, files = multipart(fake.calls("POST", REQUESTS)[-1])
    assert files["other_proof"] == [("a.pdf", b"%PDF-1 a"), ("b.pdf", b"%PDF-1 b")]


def test_a_replayed_submission_leads_to_the_same_request(family, fake):
    fake.on("POST", REQUESTS, 200, CREATED, {"Idempotent-Replayed": "true"})
    response = send(family, filled(family))
    assert response.headers["Location"] == "/demandes/r9"


def test_refusal_puts_messages_next_to_fields_and_documents(family, fake):
    fake.on("POST", REQUESTS, 422, problem(
        422, "La demande n'a pas été envoyée : corrigez les points signalés.", {
            "phone": ["Numéro de téléphone invalide."],
            "moment": ["Ce champ est obligatoire."],
            "identity_document": ["Le fichier doit être un PDF, une image JPEG ou PNG."],
            "other_proof": ["Ce document est obligatoire."],
        }))
    data = filled(family, phone="pas un numéro", moment="", every_week="non")
    response = send(family, data)
    html = response.get_data(as_text=True)
    page = text(response)
    assert response.status_code == 422
    assert "<title>Erreur — Nouvelle demande" in page
    assert field_error(html, "champ-phone") == "Numéro de téléphone invalide."
    assert field_error(html, "champ-moment") == "Ce champ est obligatoire."
    assert field_error(html, "document-identity_document") == \
        "Le fichier doit être un PDF, une image JPEG ou PNG."
    assert field_error(html, "document-other_proof") == "Ce document est obligatoire."
    assert 'aria-describedby="champ-phone-erreur" aria-invalid="true" aria-required="true"' \
        in html
    # the summary links to each input (a radio group: its first radio)
    assert 'role="alert"' in html and "Le formulaire contient 4 erreurs" in page
    assert '<a href="#champ-phone">Téléphone de la personne autorisée : Numéro de téléphone ' \
           "invalide.</a>" in page
    assert '<a href="#champ-moment-0">Moment : Ce champ est obligatoire.</a>' in page
    assert '<a href="#document-other_proof">Autre justificatif : Ce document est ' \
           "obligatoire.</a>" in page
    # what was typed is kept
    assert input_value(html, "champ-phone") == "pas un numéro"
    assert input_value(html, "champ-person_name") == "Jeanne DUPONT"
    assert ">Le mardi.\nEt le jeudi.</textarea>" in page
    assert '<option value="c1" selected>Léa CASSEREAU</option>' in page
    assert '<option value="Gymnase" selected>Gymnase</option>' in page
    assert re.search(r'id="champ-every_week-1" name="every_week"\s+value="non" checked>', html)
    assert "checked" not in html[html.index('id="champ-moment-0"'):
                                 html.index('id="champ-moment-1"')]
    # files are not: the input that had one says so, tied to it for screen readers
    assert 'id="document-identity_document-fichiers">Vous aviez choisi « carte identité.pdf » ' \
           ": les fichiers ne sont pas conservés quand le formulaire est refusé, " \
           "choisissez-le de nouveau.</p>" in page
    assert ('aria-describedby="document-identity_document-aide '
            'document-identity_document-fichiers document-identity_document-erreur"') in html
    assert "document-other_proof-fichiers" not in html
    # nothing was kept: the next display has a new key
    assert hidden_key(html) != data["idempotency_key"]


def test_a_refusal_without_field_errors_is_shown_on_top(family, fake):
    fake.on("POST", REQUESTS, 409, problem(409, "Cette clé d'idempotence (Idempotency-Key) a "
                                                "déjà servi pour une autre demande."))
    response = send(family, filled(family))
    page = text(response)
    assert response.status_code == 422
    assert "Votre demande n'a pas abouti" in page
    assert "<li>Cette clé d'idempotence (Idempotency-Key) a déjà servi" in page


def test_too_big_for_the_service(family, fake):
    detail = ("L'envoi est trop volumineux : 25 Mo et 200 parties au plus en tout. Envoyez "
              "des fichiers plus légers (photos moins grandes, PDF compressé).")
    fake.on("POST", REQUESTS, 413, problem(413, detail))
    response = send(family, filled(family))
    page = text(response)
    assert response.status_code == 413
    assert f"<li>{detail}</li>" in page
    assert "Vous aviez choisi « carte identité.pdf »" in page
    assert input_value(response.get_data(as_text=True), "champ-person_name") == "Jeanne DUPONT"


def test_too_big_for_the_portal_is_refused_before_reading_it(app, family, fake):
    app.config["PORTAL_UPLOAD_LIMIT"] = 4096
    data = filled(family, identity_document=(io.BytesIO(b"x" * 10_000), "enorme.pdf"))
    response = send(family, data)
    page = text(response)
    assert response.status_code == 413
    assert "L'envoi est trop volumineux : 25 Mo au plus en tout" in page
    assert '<form class="form form--wide" method="post" enctype="multipart/form-data"' in page
    assert not fake.calls("POST", REQUESTS)
    # the portal's other forms keep its usual limit
    token = csrf_token(family, "/profil/mot-de-passe")
    response = family.post("/profil/mot-de-passe", data={
        "csrf_token": token, "current_password": "x" * 5000, "new_password": ""})
    assert response.status_code == 422


def test_gateway_down_keeps_the_key(family, fake):
    def down(_request):
        raise requests.ConnectionError("down")

    fake.handle("POST", REQUESTS, down)
    data = filled(family)
    response = send(family, data)
    assert response.status_code == 503
    html = response.get_data(as_text=True)
    assert "momentanément injoignables" in text(response)
    assert hidden_key(html) == data["idempotency_key"]


def test_the_form_needs_its_csrf_token(family, fake):
    data = filled(family)
    del data["csrf_token"]
    response = send(family, data, headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response)
    assert not fake.calls("POST", REQUESTS)


def test_agents_do_not_send_requests(agent, fake):
    requests_parent(fake)
    fake.agent()
    token = csrf_token(agent, "/agent/familles")
    response = agent.post(NEW, data={"csrf_token": token, "child": "c1"},
                          content_type="multipart/form-data",
                          headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert not fake.calls("POST", REQUESTS)


# --- a request -------------------------------------------------------------------------------


def test_request_page_shows_fields_documents_messages_and_history(family, fake):
    response = family.get("/demandes/r1")
    html = response.get_data(as_text=True)
    page = text(response)
    assert response.status_code == 200
    assert "<title>Demande D2026-7KQ3MX — Portail Famille</title>" in page
    assert "Une réponse de votre part est attendue" in page and 'href="#repondre"' in html
    assert "en attente de votre réponse" in page
    assert "<dt>Enfant</dt>\n  <dd>Léa CASSEREAU</dd>" in page
    assert "<dd><p>Le mardi.<br>\nEt le jeudi.</p></dd>" in page
    assert "<dt>Chaque semaine</dt>\n  <dd>Oui</dd>" in page
    # documents: direct links to the API, through the gateway
    assert ('<a href="/api/requests/communes/jolieville/requests/r1/documents/d1" download>'
            "Pièce d'identité de la personne autorisée : carte.pdf</a>") in page
    assert "(PDF, 121 Ko)" in page and "(PNG, 3 Mo)" in page
    assert "envoyé par vous le 02/11/2026 à 10 h 00" in page
    assert "envoyé par la mairie le 03/11/2026 à 11 h 30" in page
    # messages, with their documents
    messages = page[page.index('<ol class="messages">'):page.index("</ol>", page.index(
        '<ol class="messages">'))]
    assert "<strong>La mairie</strong>" in messages
    assert "Merci d'envoyer le verso de la pièce d'identité." in messages
    assert "documents/d2" in messages and "documents/d1" not in messages
    # history
    timeline = page[page.index('<ol class="timeline">'):]
    assert "Demande envoyée" in timeline and "— par vous" in timeline
    assert "Statut passé de « nouvelle »\n        à « en attente de votre réponse »" in timeline
    assert "— par la mairie" in timeline
    # the reply form: a message, the category's documents (optional), others
    assert 'action="/demandes/r1/reponse"' in html and 'enctype="multipart/form-data"' in html
    assert 'for="reponse-body">Votre message</label>' in html
    assert 'name="identity_document" accept=".pdf,' in html
    assert 'id="reponse-documents" name="documents"' in html and "(obligatoire)" not in page


def test_a_closed_request_has_no_reply_form(family, fake):
    fake.on("GET", f"{REQUESTS}/r1", body={**REQUEST, "status": "closed",
                                           "status_label": "clôturée",
                                           "waiting_for_family": False, "can_reply": False})
    page = text(family.get("/demandes/r1"))
    assert "Cette demande est clôturée" in page
    assert "/reponse" not in page and "Une réponse de votre part" not in page


def test_another_households_request_is_404(family, fake):
    fake.on("GET", f"{REQUESTS}/r404", 404, problem(404, "Cette demande n'existe pas."))
    response = family.get("/demandes/r404", headers={"Accept": "text/html"})
    assert response.status_code == 404


def reply(client, **data):
    token = csrf_token(client, "/demandes/r1")
    return client.post("/demandes/r1/reponse", data={"csrf_token": token, **data},
                       content_type="multipart/form-data")


def test_reply_with_message_and_documents(family, fake):
    fake.on("POST", f"{REQUESTS}/r1/messages", 201, REQUEST)
    response = reply(family, body="Voici le verso.",
                     identity_document=(io.BytesIO(PDF), "verso.pdf"),
                     documents=[(io.BytesIO(b"%PDF-1 x"), "x.pdf"), (io.BytesIO(b""), "")])
    assert response.status_code == 303
    assert response.headers["Location"] == "/demandes/r1#echanges"
    texts, files = multipart(fake.calls("POST", f"{REQUESTS}/r1/messages")[-1])
    assert texts == {"body": ["Voici le verso."]}
    assert files == {"identity_document": [("verso.pdf", PDF)],
                     "documents": [("x.pdf", b"%PDF-1 x")]}
    assert "Votre message a été envoyé à la mairie." in text(family.get("/demandes/r1"))


def test_reply_refused_keeps_the_message(family, fake):
    fake.on("POST", f"{REQUESTS}/r1/messages", 422, problem(
        422, "Le message n'a pas été envoyé : corrigez les points signalés.",
        {"documents": ["Le fichier doit être un PDF, une image JPEG, PNG ou HEIC."]}))
    response = reply(family, body="Voici.", documents=(io.BytesIO(b"MZ"), "virus.pdf"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(html, "reponse-documents") == \
        "Le fichier doit être un PDF, une image JPEG, PNG ou HEIC."
    assert ">Voici.</textarea>" in html
    assert "Vous aviez choisi « virus.pdf »" in text(response)
    assert "<title>Erreur — Demande D2026-7KQ3MX" in text(response)


def test_reply_to_a_closed_request(family, fake):
    fake.on("POST", f"{REQUESTS}/r1/messages", 409, problem(
        409, "Cette demande est clôturée : faites une nouvelle demande si besoin."))
    response = reply(family, body="Encore une chose")
    assert response.status_code == 422
    assert "<li>Cette demande est clôturée : faites une nouvelle demande si besoin.</li>" \
        in text(response)


def test_reply_needs_its_csrf_token(family, fake):
    response = family.post("/demandes/r1/reponse", data={"body": "x"},
                           content_type="multipart/form-data",
                           headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert not fake.calls("POST", f"{REQUESTS}/r1/messages")


def test_no_requests_module_hides_the_menu_entry(family, fake):
    fake.on("GET", "/api/accounts/communes/jolieville", body=commune(modules=("invoices",)))
    page = family.get("/").get_data(as_text=True)
    assert 'href="/demandes"' not in page


def test_reply_too_big_for_the_portal(app, family, fake):
    app.config["PORTAL_UPLOAD_LIMIT"] = 4096
    response = reply(family, body="Voici", documents=(io.BytesIO(b"x" * 10_000), "a.pdf"))
    assert response.status_code == 413
    page = text(response)
    assert "<li>L'envoi est trop volumineux : 25 Mo au plus en tout" in page
    assert "Écrire à la mairie" in page
    assert not fake.calls("POST", f"{REQUESTS}/r1/messages")
