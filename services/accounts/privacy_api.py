"""Accounts' GDPR routes (issue 8): « Mes données » (archive, erasure request), the agents'
processing of erasure requests, the data-protection officer's audit log.

Kept beside ``api.py`` (same thin style: parse, authorise, call ``privacy``, answer) so that
the identity routes stay readable. Payload schemas are here too, as small as the routes.
"""

from __future__ import annotations

from flask import current_app, send_file
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from services.common.app import current_context
from services.common.auth import Principal, require_commune
from services.common.errors import Problem
from services.common.fields import Text
from services.common.internal import ServiceClient

from . import NAME, audit
from .api import agent_of, parent
from .models import Commune
from .privacy import Privacy


def privacy() -> Privacy:
    app = current_app

    def client() -> ServiceClient:
        tokens = app.extensions.get("portail_service_tokens")
        if tokens is None:
            raise Problem(503, "Les appels entre services ne sont pas configurés.")
        cached = app.extensions.get("accounts_service_client")
        if cached is None:
            cached = app.extensions["accounts_service_client"] = ServiceClient(NAME, tokens)
        return cached

    return Privacy(current_context().db, client)


def dpo_of(slug: str) -> Principal:
    """The commune's data-protection officer (role ``dpo``), or a platform admin."""
    principal = require_commune(slug, agent=False)
    if not principal.platform_admin and "dpo" not in principal.roles_in(slug):
        if principal.is_agent_of(slug):
            raise Problem(403, "Réservé au délégué à la protection des données de la commune.")
        raise Problem(404)
    return principal


# schemas -------------------------------------------------------------------------------------
class ErasureAskSchema(Schema):
    reason = Text(load_default=None, allow_none=True,
                  validate=validate.Length(max=2000, error="Au plus 2000 caractères."))


class ErasureDecisionSchema(Schema):
    accept = fields.Boolean(required=True, error_messages={
        "required": "Ce champ est obligatoire.", "invalid": "Choisissez accepter ou refuser."})
    reason = Text(load_default=None, allow_none=True,
                  validate=validate.Length(max=2000, error="Au plus 2000 caractères."))


class ErasureStatusQuerySchema(Schema):
    status = fields.String(load_default=None, validate=validate.OneOf(
        ("pending", "refused", "completed"), error="Statut inconnu."))


class ErasureCommuneSchema(Schema):
    slug = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    decision = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    decided_at = fields.String(allow_none=True)


class BlockerSchema(Schema):
    code = fields.String()
    message = fields.String()
    service = fields.String()


class ErasureSchema(Schema):
    id = fields.String()
    family_id = fields.String()
    family_name = fields.String(allow_none=True)
    family_code = fields.String(allow_none=True)
    status = fields.String()
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    refusal_reason = fields.String(allow_none=True)
    communes = fields.List(fields.Nested(ErasureCommuneSchema))
    blockers = fields.List(fields.Nested(BlockerSchema))


class MyErasureSchema(Schema):
    request = fields.Nested(ErasureSchema, allow_none=True)
    blockers = fields.List(fields.Nested(BlockerSchema))


class ErasurePageSchema(Schema):
    items = fields.List(fields.Nested(ErasureSchema))
    next = fields.String(allow_none=True)


class AuditQuerySchema(Schema):
    account = fields.String(load_default=None, validate=validate.Length(max=254))
    family_id = fields.String(load_default=None, validate=validate.Length(max=36))
    date_from = fields.Date(load_default=None, data_key="from",
                            error_messages={"invalid": "Date invalide (AAAA-MM-JJ)."})
    date_to = fields.Date(load_default=None, data_key="to",
                          error_messages={"invalid": "Date invalide (AAAA-MM-JJ)."})
    cursor = fields.String(load_default=None)


class AuditEntrySchema(Schema):
    id = fields.String()
    at = fields.DateTime()
    service = fields.String()
    account_id = fields.String()
    email = fields.String(allow_none=True)
    family_id = fields.String()
    family_name = fields.String(allow_none=True)
    action = fields.String()
    object_id = fields.String(allow_none=True)


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema))
    next = fields.String(allow_none=True)


# the family's own data ---------------------------------------------------------------------------
my_data = ApiBlueprint("my_data", __name__, url_prefix=f"/api/{NAME}/me",
                       description="Mes données : archive et demande de suppression (RGPD)")


@my_data.route("/export")
@my_data.response(200, description="Archive ZIP : un fichier JSON par service, les documents "
                                   "et un sommaire LISEZMOI.html en français")
def export():
    """Télécharger toutes les données de mon foyer (ZIP)."""
    archive, filename = privacy().export(parent())
    response = send_file(archive, mimetype="application/zip", as_attachment=True,
                         download_name=filename, conditional=False, etag=False, max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@my_data.route("/erasure")
@my_data.response(200, MyErasureSchema)
def my_erasure():
    """Ma dernière demande de suppression et ce qui empêche encore la suppression."""
    return privacy().my_erasure(parent())


@my_data.route("/erasure", methods=["POST"])
@my_data.arguments(ErasureAskSchema)
@my_data.response(201, ErasureSchema)
def ask_erasure(payload):
    """Demander la suppression des données de mon foyer ; la mairie l'examine."""
    return privacy().ask_erasure(parent(), payload["reason"])


# agents and the data-protection officer --------------------------------------------------------
commune_privacy = ApiBlueprint("commune_privacy", __name__,
                               url_prefix=f"/api/{NAME}/communes",
                               description="Demandes de suppression et journal des accès (RGPD)")


@commune_privacy.route("/<slug>/erasure-requests")
@commune_privacy.arguments(ErasureStatusQuerySchema, location="query")
@commune_privacy.response(200, ErasurePageSchema)
def list_erasures(query, slug: str):
    """Les demandes de suppression des foyers de la commune (agent)."""
    agent_of(slug, hide_from_members=True)
    return privacy().list_erasures(slug, query["status"])


@commune_privacy.route("/<slug>/erasure-requests/<request_id>")
@commune_privacy.response(200, ErasureSchema)
def get_erasure(slug: str, request_id: str):
    """Une demande de suppression, avec ce qui l'empêche encore (agent)."""
    agent_of(slug, hide_from_members=True)
    return privacy().erasure_for_agent(slug, request_id)


@commune_privacy.route("/<slug>/erasure-requests/<request_id>/decision", methods=["POST"])
@commune_privacy.arguments(ErasureDecisionSchema)
@commune_privacy.response(200, ErasureSchema)
def decide_erasure(payload, slug: str, request_id: str):
    """Accepter (409 tant que quelque chose l'empêche) ou refuser avec une raison (agent)."""
    principal = agent_of(slug, hide_from_members=True)
    return privacy().decide(principal, slug, request_id, payload["accept"],
                            payload["reason"])


@commune_privacy.route("/<slug>/audit")
@commune_privacy.arguments(AuditQuerySchema, location="query")
@commune_privacy.response(200, AuditPageSchema)
def audit_log(query, slug: str):
    """Le journal des accès des agents aux données des foyers (délégué à la protection des
    données de la commune) ; filtres : agent (id ou e-mail), foyer, dates."""
    dpo_of(slug)
    return privacy().audit_log(slug, account=query["account"], family_id=query["family_id"],
                               date_from=query["date_from"], date_to=query["date_to"],
                               cursor=query["cursor"])


PRIVACY_BLUEPRINTS = [my_data, commune_privacy]


def record_family_read(principal: Principal, slug: str, family_id: str) -> None:
    """Audit of the agents' read of a family file (``GET /communes/{c}/families/{id}``)."""
    with current_context().db.transaction() as session:
        commune_id = session.scalar(select(Commune.id).where(Commune.slug == slug))
        audit.record(session, principal, commune_id, family_id, "family.read")
