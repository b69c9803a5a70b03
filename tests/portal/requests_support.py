"""What the fake gateway answers for the requests pages, and reading the multipart it got."""

from __future__ import annotations

import copy
import io
from typing import Any

from werkzeug.formparser import parse_form_data

from .support import CHILDREN, GUARDIANS, FakeGateway

API = "/api/requests/communes/jolieville"
CATEGORIES = f"{API}/categories"
REQUESTS = f"{API}/requests"
AGENTS = f"{API}/agents"
FAMILY_RECORD = "/api/accounts/communes/jolieville/families/f1"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
WORKFLOW = {
    "statuses": ["submitted", "in_progress", "waiting_for_family", "accepted", "refused",
                 "closed"],
    "transitions": {"submitted": ["in_progress", "waiting_for_family"],
                    "in_progress": ["waiting_for_family", "accepted", "refused"],
                    "waiting_for_family": ["in_progress"], "accepted": ["closed"],
                    "refused": ["closed"], "closed": []},
}
SITES = ["École Jean Jaurès", "École Victor Hugo", "Centre de loisirs", "Gymnase",
         "Médiathèque", "Mairie"]


def _field(name: str, label: str, type_: str, required: bool = True, help: str | None = None,
           options: list[Any] | None = None) -> dict[str, Any]:
    return {"name": name, "label": label, "type": type_, "required": required, "help": help,
            "options": options or []}


PICKUP = {
    "id": "cat-pickup", "label": "Autorisation de récupération d'un enfant",
    "description": "Autoriser une autre personne à venir chercher votre enfant.", "kind": None,
    "fields": [
        _field("child", "Enfant", "child"),
        _field("person_name", "Nom et prénom de la personne autorisée", "text",
               help="Telle qu'écrite sur sa pièce d'identité."),
        _field("details", "Précisions", "long_text", required=False),
        _field("from", "À partir du", "date"),
        _field("phone", "Téléphone de la personne autorisée", "phone"),
        _field("email", "E-mail de la personne autorisée", "email", required=False),
        _field("every_week", "Chaque semaine", "yes_no", required=False),
        _field("moment", "Moment", "choice",
               options=[{"value": "matin", "label": "Le matin"},
                        {"value": "soir", "label": "Le soir"}]),
        _field("site", "Lieu", "choice", required=False,
               options=[{"value": s, "label": s} for s in SITES]),
    ],
    "required_attachments": [
        {"name": "identity_document", "label": "Pièce d'identité de la personne autorisée",
         "required": True, "accepted_types": ["pdf", "jpeg", "png"], "max_size": 5 * 1024 * 1024,
         "max_size_label": "5 Mo", "max_files": 1,
         "accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png",
         "help": "Recto verso."},
        {"name": "other_proof", "label": "Autre justificatif", "required": False,
         "accepted_types": ["pdf", "heic"], "max_size": 10 * 1024 * 1024,
         "max_size_label": "10 Mo", "max_files": 3, "accept": ".pdf,.heic,application/pdf",
         "help": None},
    ],
    **WORKFLOW, "active": True, "position": 0, "version": 2,
}
ADDRESS = {
    "id": "cat-address", "label": "Changement d'adresse", "description": None,
    "kind": "address_change",
    "fields": [_field("line1", "Adresse", "text"),
               _field("line2", "Complément d'adresse", "text", required=False),
               _field("postal_code", "Code postal", "text"), _field("city", "Commune", "text")],
    "required_attachments": [
        {"name": "proof_of_address", "label": "Justificatif de domicile", "required": True,
         "accepted_types": ["pdf", "jpeg", "png", "heic"], "max_size": 10 * 1024 * 1024,
         "max_size_label": "10 Mo", "max_files": 1, "accept": ".pdf", "help": None}],
    **WORKFLOW, "active": True, "position": 1, "version": 1,
}
ALLERGY = {
    "id": "cat-allergy", "label": "Allergie alimentaire", "description": None, "kind": "allergy",
    "fields": [_field("child", "Enfant", "child"),
               _field("notes", "Description de l'allergie", "long_text")],
    "required_attachments": [], **WORKFLOW, "active": False, "position": 2, "version": 1,
}

HISTORY = [
    {"at": "2026-11-02T09:00:00+00:00", "action": "submitted",
     "actor": {"kind": "family", "account_id": "a1", "email": "parent@famille.test"},
     "old_status": None, "old_status_label": None, "new_status": "submitted",
     "new_status_label": "nouvelle", "message": None, "details": {}},
    {"at": "2026-11-03T10:30:00+00:00", "action": "status_changed",
     "actor": {"kind": "agent", "account_id": None, "email": None},
     "old_status": "submitted", "old_status_label": "nouvelle",
     "new_status": "waiting_for_family", "new_status_label": "en attente de votre réponse",
     "message": "Merci d'envoyer le verso de la pièce d'identité.", "details": {}},
]
DOCUMENTS = [
    {"id": "d1", "name": "identity_document", "label": "Pièce d'identité de la personne "
     "autorisée", "filename": "carte.pdf", "content_type": "application/pdf", "size": 123456,
     "uploaded_by": "family", "uploaded_at": "2026-11-02T09:00:00+00:00", "message_id": None,
     "url": f"{REQUESTS}/r1/documents/d1"},
    {"id": "d2", "name": None, "label": "Document joint", "filename": "modele.png",
     "content_type": "image/png", "size": 3 * 1024 * 1024, "uploaded_by": "agent",
     "uploaded_at": "2026-11-03T10:30:00+00:00", "message_id": "m1",
     "url": f"{REQUESTS}/r1/documents/d2"},
]
REQUEST = {
    "id": "r1", "reference": "D2026-7KQ3MX",
    "category": {"id": "cat-pickup", "label": PICKUP["label"], "kind": None},
    "status": "waiting_for_family", "status_label": "en attente de votre réponse",
    "created_at": "2026-11-02T09:00:00+00:00", "updated_at": "2026-11-03T10:30:00+00:00",
    "family_id": "f1", "family_name": None, "assigned_to": None, "waiting_for_family": True,
    "fields": [
        {"name": "child", "label": "Enfant", "type": "child", "value": "c1",
         "display": "Léa CASSEREAU"},
        {"name": "person_name", "label": "Nom et prénom de la personne autorisée",
         "type": "text", "value": "Jeanne DUPONT", "display": "Jeanne DUPONT"},
        {"name": "details", "label": "Précisions", "type": "long_text",
         "value": "Le mardi.\nEt le jeudi.", "display": "Le mardi.\nEt le jeudi."},
        {"name": "every_week", "label": "Chaque semaine", "type": "yes_no", "value": True,
         "display": "Oui"},
    ],
    "documents": DOCUMENTS,
    "messages": [{"id": "m1", "author": {"kind": "agent", "account_id": None, "email": None},
                  "body": "Merci d'envoyer le verso de la pièce d'identité.",
                  "created_at": "2026-11-03T10:30:00+00:00", "document_ids": ["d2"]}],
    "history": HISTORY, "allowed_transitions": [], "can_reply": True, "household": None,
}
HOUSEHOLD = {"family_id": "f1", "family_name": "CASSEREAU", "family_code": "JV-0042",
             "address": {"line1": "12 rue des Lilas", "line2": None, "postal_code": "77000",
                         "city": "JolieVille"},
             "guardians": [{k: g[k] for k in ("first_name", "last_name", "email", "phones",
                                               "pays")} for g in GUARDIANS],
             "children": CHILDREN}
AGENT_LIST = {"items": [{"account_id": "a2", "email": "agent@jolieville.test",
                         "last_seen_at": "2026-11-01T08:00:00+00:00"},
                        {"account_id": "a3", "email": "collegue@jolieville.test",
                         "last_seen_at": "2026-11-01T08:00:00+00:00"}]}


def summary(request_id: str = "r1", status: str = "submitted", **extra: Any) -> dict[str, Any]:
    labels = {"submitted": "nouvelle", "in_progress": "en cours",
              "waiting_for_family": "en attente de votre réponse", "accepted": "acceptée"}
    return {"id": request_id, "reference": f"D2026-{request_id.upper():0>6}",
            "category": {"id": "cat-pickup", "label": PICKUP["label"], "kind": None},
            "status": status, "status_label": labels.get(status, status),
            "created_at": "2026-11-02T09:00:00+00:00",
            "updated_at": "2026-11-03T10:30:00+00:00", "family_id": "f1",
            "family_name": None, "assigned_to": None,
            "waiting_for_family": status == "waiting_for_family", **extra}


def agent_request(**changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(REQUEST)
    item.update({"status": "in_progress", "status_label": "en cours",
                 "waiting_for_family": False, "family_name": "CASSEREAU",
                 "allowed_transitions": ["waiting_for_family", "accepted", "refused"],
                 "household": HOUSEHOLD})
    item["messages"][0]["author"] = {"kind": "agent", "account_id": "a2",
                                     "email": "agent@jolieville.test"}
    item.update(changes)
    return item


def requests_parent(fake: FakeGateway) -> None:
    fake.parent()
    fake.on("GET", CATEGORIES, body={"items": [PICKUP, ADDRESS], "next": None})
    fake.on("GET", REQUESTS, body={"items": [summary("r1", "waiting_for_family"),
                                             summary("r2", "accepted")], "next": "c2"})
    fake.on("GET", f"{REQUESTS}/r1", body=REQUEST)


def requests_agent(fake: FakeGateway) -> None:
    fake.agent()
    fake.on("GET", CATEGORIES, body={"items": [PICKUP, ADDRESS, ALLERGY], "next": None})
    fake.on("GET", f"{CATEGORIES}/cat-pickup", body=PICKUP)
    fake.on("GET", REQUESTS, body={"items": [
        summary("r1", "submitted", family_name="CASSEREAU"),
        summary("r3", "waiting_for_family", family_name="MARTIN",
                assigned_to={"account_id": "a3", "email": "collegue@jolieville.test"})],
        "next": "c2"})
    fake.on("GET", f"{REQUESTS}/r1", body=agent_request())
    fake.on("GET", AGENTS, body=AGENT_LIST)


def multipart(prepared) -> tuple[dict[str, list[str]], dict[str, list[tuple[str, bytes]]]]:
    """The text parts and the file parts ``(filename, content)`` the gateway received."""
    body = prepared.body if isinstance(prepared.body, bytes) else prepared.body.encode()
    environ = {"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": prepared.headers["Content-Type"], "REQUEST_METHOD": "POST"}
    _, form, files = parse_form_data(environ)
    texts = {name: form.getlist(name) for name in form}
    uploads: dict[str, list[tuple[str, bytes]]] = {}
    for name, storage in files.items(multi=True):
        uploads.setdefault(name, []).append((storage.filename, storage.read()))
    return texts, uploads
