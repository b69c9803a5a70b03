"""The accessibility self-check of test_accessibility, on every page of « Mes demandes » and
of the agents' « Demandes », as shown and as sent back refused."""

from __future__ import annotations

import io

import pytest

from .requests_support import (
    CATEGORIES,
    FAMILY_RECORD,
    PDF,
    REQUEST,
    REQUESTS,
    requests_agent,
    requests_parent,
)
from .support import FakeGateway, build, csrf_token, problem
from .test_accessibility import check
from .test_requests_agent import ACCEPTED_ADDRESS, ACCEPTED_ALLERGY

PARENT_GET = ["/demandes", "/demandes?suite=c2", "/demandes/nouvelle/cat-pickup",
              "/demandes/nouvelle/cat-address", "/demandes/r1", "/demandes/fermee"]
AGENT_GET = ["/agent/demandes", "/agent/demandes?statut=toutes&attribution=moi&suite=c2",
             "/agent/demandes/r1", "/agent/demandes/adresse", "/agent/demandes/allergie",
             "/agent/categories", "/agent/categories/nouvelle", "/agent/categories/cat-pickup"]


def parent_client(fake: FakeGateway):
    requests_parent(fake)
    fake.on("GET", f"{REQUESTS}/fermee", body={**REQUEST, "status": "closed",
                                               "status_label": "clôturée",
                                               "waiting_for_family": False,
                                               "can_reply": False})
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    return client


def agent_client(fake: FakeGateway):
    requests_agent(fake)
    fake.on("GET", f"{REQUESTS}/adresse", body={**ACCEPTED_ADDRESS, "id": "adresse"})
    fake.on("GET", f"{REQUESTS}/allergie", body={**ACCEPTED_ALLERGY, "id": "allergie"})
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s")
    return client


@pytest.mark.parametrize("path", PARENT_GET)
def test_parent_pages(path):
    response = parent_client(FakeGateway()).get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


@pytest.mark.parametrize("path", AGENT_GET)
def test_agent_pages(path):
    response = agent_client(FakeGateway()).get(path)
    assert response.status_code == 200
    check(response.get_data(as_text=True), path)


def refused_new(fake: FakeGateway):
    fake.on("POST", REQUESTS, 422, problem(422, "La demande n'a pas été envoyée.", {
        "child": ["Ce champ est obligatoire."], "moment": ["Ce champ est obligatoire."],
        "every_week": ["Répondez par oui ou par non."],
        "identity_document": ["Ce document est obligatoire."], "category": ["Inconnue."]}))
    return "/demandes/nouvelle/cat-pickup", {
        "person_name": "x", "identity_document": (io.BytesIO(PDF), "a.pdf")}


def refused_reply(fake: FakeGateway):
    fake.on("POST", f"{REQUESTS}/r1/messages", 422, problem(
        422, "Le message n'a pas été envoyé.", {"body": ["Écrivez un message."],
                                                "documents": ["Fichier illisible."]}))
    return "/demandes/r1/reponse", {"body": "", "documents": (io.BytesIO(b"MZ"), "x.pdf")}


def too_big_reply(fake: FakeGateway):
    fake.on("POST", f"{REQUESTS}/r1/messages", 413, problem(413, "L'envoi est trop volumineux."))
    return "/demandes/r1/reponse", {"body": "x"}


def refused_transition(fake: FakeGateway):
    fake.on("POST", f"{REQUESTS}/r1/transition", 409, problem(
        409, "Impossible.", {"status": ["Impossible de passer à « acceptée »."]}))
    return "/agent/demandes/r1/statut", {"statut-status": "accepted"}


def refused_question(fake: FakeGateway):
    return "/agent/demandes/r1/question", {"question-message": ""}


def refused_assign(fake: FakeGateway):
    return "/agent/demandes/r1/attribution", {"attribution-agent": "inconnu"}


def refused_message(fake: FakeGateway):
    fake.on("POST", f"{REQUESTS}/r1/messages", 422, problem(
        422, "Le message n'a pas été envoyé.", {"body": ["Écrivez un message."]}))
    return "/agent/demandes/r1/message", {"body": ""}


def refused_apply(fake: FakeGateway):
    fake.on("PATCH", FAMILY_RECORD, 422, problem(422, "Invalide.", {
        "address.city": ["Ville inconnue."], "version": ["Périmée."]}))
    return "/agent/demandes/adresse/dossier", {
        "dossier-line1": "1 rue A", "dossier-postal_code": "77000", "dossier-city": "X"}


def refused_category(fake: FakeGateway):
    return "/agent/categories/nouvelle", {
        "label": "", "fields-1-help": "sans libellé", "fields-2-label": "Choix",
        "fields-2-type": "choice", "documents-0-label": "Pièce", "documents-0-max_size": "99"}


def refused_category_edit(fake: FakeGateway):
    fake.on("PATCH", f"{CATEGORIES}/cat-pickup", 409, problem(409, "Modifiée entre-temps."))
    return "/agent/categories/cat-pickup", {"label": "X", "fields-0-label": "Enfant"}


PARENT_REFUSED = [refused_new, refused_reply, too_big_reply]
AGENT_REFUSED = [refused_transition, refused_question, refused_assign, refused_message,
                 refused_apply, refused_category, refused_category_edit]


@pytest.mark.parametrize("scenario", PARENT_REFUSED + AGENT_REFUSED,
                         ids=lambda s: s.__name__)
def test_refused_forms(scenario):
    fake = FakeGateway()
    client = (parent_client if scenario in PARENT_REFUSED else agent_client)(fake)
    path, data = scenario(fake)
    actions = ("/reponse", "/statut", "/question", "/attribution", "/message", "/dossier")
    page_of_form = path.rsplit("/", 1)[0] if path.endswith(actions) else path
    token = csrf_token(client, page_of_form)
    response = client.post(path, data={**data, "csrf_token": token},
                           content_type="multipart/form-data")
    html = response.get_data(as_text=True)
    assert response.status_code in (409, 413, 422), (path, response.status_code)
    page = check(html, f"POST {path}")
    assert page.title.startswith("Erreur — "), page.title
    assert 'role="alert"' in html
