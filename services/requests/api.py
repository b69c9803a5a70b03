"""Requests' HTTP API (thin: parse, authorise, call ``operations``, answer).

DESIGN section 6 ("Requests"). Identity comes from the gateway's token only: a parent sees
and sends their own household's requests (another household's id answers 404); an agent works
in their commune (another commune's agent gets 403). Submissions and replies are multipart:
``category`` = the category id, one part per field by its ``name``, one file part per document
by its ``name``; they are checked by ``domain`` and ``documents`` before anything is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, send_file
from flask_smorest import Blueprint as ApiBlueprint
from werkzeug.exceptions import RequestEntityTooLarge

from services.common.app import current_context
from services.common.auth import Principal, require_commune
from services.common.errors import Problem
from services.common.privacy import record_read
from services.common.tenancy import commune_blueprint

from . import NAME
from .documents import CONTENT_TYPES, content_disposition
from .domain import size_label
from .operations import Operations, Upload
from .privacy import family_of_request
from .schemas import (
    AgentPageSchema,
    AssignSchema,
    CategoryInSchema,
    CategoryPageSchema,
    CategoryPatchSchema,
    CategoryQuerySchema,
    CategorySchema,
    RequestPageSchema,
    RequestQuerySchema,
    RequestSchema,
    SettingsInSchema,
    SettingsSchema,
    TransitionSchema,
)
from .storage import DocumentStore

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@dataclass
class RequestsConfig:
    """What the requests app holds besides the common context (``app.extensions``)."""

    store: DocumentStore
    max_upload: int  # bytes, the whole body of one call (REQUESTS_MAX_UPLOAD_MB)
    max_parts: int


def config() -> RequestsConfig:
    return current_app.extensions["requests"]


def ops() -> Operations:
    cfg = config()
    return Operations(current_context().db, cfg.store, cfg.max_upload)


def caller(slug: str) -> tuple[Principal, bool]:
    """The caller and whether they act as an agent of ``slug`` (or a platform admin)."""
    principal = require_commune(slug)
    agent = principal.platform_admin or principal.is_agent_of(slug)
    if agent:
        ops().see_agent(principal, slug)
    elif not principal.family_id:
        raise Problem(403, "Réservé aux comptes famille.")
    return principal, agent


def agent_of(slug: str) -> Principal:
    principal = require_commune(slug, agent=True)
    ops().see_agent(principal, slug)
    return principal


def parent_of(slug: str) -> Principal:
    principal = require_commune(slug)
    if not principal.family_id:
        raise Problem(403, "Réservé aux comptes famille : les agents ne déposent pas de "
                           "demande.")
    return principal


def read_form() -> tuple[dict[str, list[str]], dict[str, list[Upload]]]:
    """The text parts and the file parts of a multipart (or url-encoded) body.

    An empty or malformed body gives empty parts (the caller then answers 422 with what is
    missing); a body over the limit or with too many parts answers 413 in French.
    """
    if request.mimetype and request.mimetype not in FORM_TYPES:
        raise Problem(415, "Envoyez le formulaire en multipart/form-data : une partie par "
                           "champ, une partie fichier par document.")
    cfg = config()
    try:
        form = request.form
        files = request.files
    except RequestEntityTooLarge as exc:
        raise Problem(413, f"L'envoi est trop volumineux : {size_label(cfg.max_upload)} et "
                           f"{cfg.max_parts} parties au plus en tout. Envoyez des fichiers plus "
                           f"légers (photos moins grandes, PDF compressé).") from exc
    values = {name: form.getlist(name) for name in form}
    uploads: dict[str, list[Upload]] = {}
    for name, storage in files.items(multi=True):
        data = storage.read()
        if not data and not storage.filename:
            continue  # a file input left empty
        uploads.setdefault(name, []).append(Upload(storage.filename, data))
    return values, uploads


_MULTIPART_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {
                "category": {"type": "string", "description": "l'id de la catégorie"},
            },
            "additionalProperties": {"oneOf": [
                {"type": "string", "description": "un champ du formulaire, par son name"},
                {"type": "string", "format": "binary",
                 "description": "un document, par son name"}]},
        }}},
    },
}
_REPLY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "properties": {
                "body": {"type": "string", "description": "le message"},
                "documents": {"type": "array", "items": {"type": "string", "format": "binary"},
                              "description": "documents supplémentaires (PDF, JPEG, PNG, "
                                             "HEIC)"},
            },
            "additionalProperties": {"type": "string", "format": "binary",
                                     "description": "un document de la catégorie, par son "
                                                    "name"},
        }}, "application/json": {"schema": {"type": "object", "properties": {
            "body": {"type": "string"}}}}},
    },
}

communes = ApiBlueprint("requests_api", __name__, url_prefix=f"/api/{NAME}/communes",
                        description="Catégories de demandes, demandes des familles, "
                                    "traitement par les agents")


# categories ----------------------------------------------------------------------------------
@communes.route("/<slug>/categories")
@communes.arguments(CategoryQuerySchema, location="query")
@communes.response(200, CategoryPageSchema)
def list_categories(query, slug: str):
    """Les catégories de demandes de la commune, avec leur formulaire et les documents
    demandés (membres et agents ; ``all=true`` : aussi les désactivées, agents)."""
    _, agent = caller(slug)
    return ops().list_categories(slug, agent, query["all"])


@communes.route("/<slug>/categories", methods=["POST"])
@communes.arguments(CategoryInSchema)
@communes.response(201, CategorySchema)
def create_category(payload, slug: str):
    """Créer une catégorie (agent)."""
    agent_of(slug)
    return ops().create_category(slug, payload)


@communes.route("/<slug>/categories/<category_id>")
@communes.response(200, CategorySchema)
def get_category(slug: str, category_id: str):
    """Une catégorie (membres : si elle est active ; agents)."""
    _, agent = caller(slug)
    return ops().get_category(slug, category_id, agent)


@communes.route("/<slug>/categories/<category_id>", methods=["PATCH"])
@communes.arguments(CategoryPatchSchema)
@communes.response(200, CategorySchema)
def update_category(payload, slug: str, category_id: str):
    """Modifier une catégorie (agent) ; les demandes déjà reçues gardent leur formulaire.
    ``active: false`` la retire des choix des familles."""
    agent_of(slug)
    return ops().update_category(slug, category_id, payload)


# requests --------------------------------------------------------------------------------------
@communes.route("/<slug>/requests")
@communes.arguments(RequestQuerySchema, location="query")
@communes.response(200, RequestPageSchema)
def list_requests(query, slug: str):
    """Familles : l'historique de leurs demandes, les plus récentes d'abord. Agents : la file
    de la commune, les plus anciennes d'abord, filtrée par ``status`` (un ou plusieurs,
    séparés par des virgules), ``category`` et ``assigned`` (me, none ou un id)."""
    principal, agent = caller(slug)
    return ops().list_requests(principal, slug, agent, query)


@communes.route("/<slug>/requests", methods=["POST"])
@communes.doc(**_MULTIPART_DOC)
@communes.response(201, RequestSchema)
def submit(slug: str):
    """Envoyer une demande (famille), en multipart : ``category``, une partie par champ, un
    fichier par document. Rien n'est gardé en cas d'erreur (422, messages par champ).
    Un envoi répété (même en-tête ``Idempotency-Key``, ou même catégorie, mêmes réponses et
    mêmes fichiers dans les 10 minutes) répond 200 avec la demande déjà reçue."""
    principal = parent_of(slug)
    form, files = read_form()
    view, created = ops().submit(principal, slug, form, files,
                                 request.headers.get("Idempotency-Key"))
    location = f"/api/{NAME}/communes/{slug}/requests/{view['id']}"
    if created:
        return view, 201, {"Location": location}
    return view, 200, {"Location": location, "Idempotent-Replayed": "true"}


@communes.route("/<slug>/requests/<request_id>")
@communes.response(200, RequestSchema)
def get_request(slug: str, request_id: str):
    """Une demande : réponses, documents, messages et historique (qui, quand, quoi). Agents :
    aussi le foyer et ses enfants, et les statuts possibles ensuite."""
    principal, agent = caller(slug)
    view = ops().get_request(principal, slug, request_id, agent)
    if agent:  # issue 8: the agents' reads go to the commune's audit log
        record_read(principal, service=NAME, slug=slug, family_id=view.get("family_id"),
                    action="request.read", object_id=request_id)
    return view


@communes.route("/<slug>/requests/<request_id>/messages", methods=["POST"])
@communes.doc(**_REPLY_DOC)
@communes.response(201, RequestSchema)
def post_message(slug: str, request_id: str):
    """Écrire un message, avec des documents (famille ou agent). La réponse de la famille à
    une demande « en attente de votre réponse » la remet « en cours »."""
    principal, agent = caller(slug)
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Problem(400, "Le corps de la requête doit être un objet JSON.")
        text, files = body.get("body"), {}
        if text is not None and not isinstance(text, str):
            raise Problem(422, errors={"body": ["Doit être une chaîne de caractères."]})
    else:
        form, files = read_form()
        text = next(iter(form.get("body") or []), None)
    return ops().post_message(principal, slug, request_id, text, files, agent)


@communes.route("/<slug>/requests/<request_id>/transition", methods=["POST"])
@communes.arguments(TransitionSchema)
@communes.response(200, RequestSchema)
def transition(payload, slug: str, request_id: str):
    """Changer le statut (agent), seulement selon les transitions de la catégorie, avec un
    message à la famille (obligatoire pour une question, « waiting_for_family », et un
    refus)."""
    principal = agent_of(slug)
    return ops().transition(principal, slug, request_id, payload["status"],
                            payload.get("message"))


@communes.route("/<slug>/requests/<request_id>/assign", methods=["POST"])
@communes.arguments(AssignSchema)
@communes.response(200, RequestSchema)
def assign(payload, slug: str, request_id: str):
    """Confier la demande à un agent de la commune (ou ``null`` : à personne)."""
    principal = agent_of(slug)
    return ops().assign(principal, slug, request_id, payload["agent_account_id"])


@communes.route("/<slug>/requests/<request_id>/documents/<document_id>")
@communes.doc(responses={"200": {"description": "le fichier (PDF, JPEG, PNG ou HEIC), en "
                                                "pièce jointe",
                                 # the stored type, not octet-stream (as the answer says)
                                 "content": {kind: {"schema": {"type": "string",
                                                               "format": "binary"}}
                                             for kind in CONTENT_TYPES.values()}}})
def download(slug: str, request_id: str, document_id: str):
    """Télécharger un document (le foyer de la demande, les agents de la commune)."""
    principal, agent = caller(slug)
    fileobj, document = ops().open_document(principal, slug, request_id, document_id, agent)
    if agent:  # issue 8: the agents' downloads go to the commune's audit log
        record_read(principal, service=NAME, slug=slug,
                    family_id=family_of_request(request_id), action="document.download",
                    object_id=document_id)
    response = send_file(fileobj, mimetype=document.content_type, as_attachment=True,
                         download_name=document.filename, conditional=False, etag=False,
                         max_age=0)
    response.content_length = document.size
    response.headers["Content-Disposition"] = content_disposition(document.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# agents and settings ---------------------------------------------------------------------------
@communes.route("/<slug>/agents")
@communes.response(200, AgentPageSchema)
def list_agents(slug: str):
    """Les agents de la commune vus par ce service (à qui confier une demande)."""
    agent_of(slug)
    return ops().list_agents(slug)


@communes.route("/<slug>/settings")
@communes.response(200, SettingsSchema)
def get_settings(slug: str):
    """Les réglages des demandes de la commune (agent) : durée de conservation en mois."""
    agent_of(slug)
    return ops().get_settings(slug)


@communes.route("/<slug>/settings", methods=["PATCH"])
@communes.arguments(SettingsInSchema)
@communes.response(200, SettingsSchema)
def update_settings(payload, slug: str):
    """Régler la durée de conservation des demandes traitées et de leurs documents
    (administrateur de la commune ; 36 mois par défaut)."""
    principal = agent_of(slug)
    if not principal.platform_admin and "agent-admin" not in principal.roles_in(slug):
        raise Problem(403, "Réservé aux administrateurs de la commune.")
    return ops().update_settings(slug, payload)


API_BLUEPRINTS = [commune_blueprint(NAME), communes]
