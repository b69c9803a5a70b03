"""Accounts' HTTP API (thin: parse, authorise, call the domain, answer)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.common import outbox
from services.common.app import current_context
from services.common.auth import current_principal, require_platform_admin
from services.common.errors import Problem
from services.common.events import Event
from services.common.webargs import parse_json

from . import NAME
from .domain import CommuneSettings, hash_password, needs_rehash, normalise_email, verify_password
from .models import Account, AgentRole, Commune
from .schemas import CommuneCreateSchema, CommuneSchema, CredentialsSchema

communes = ApiBlueprint("communes", __name__, url_prefix=f"/api/{NAME}/communes",
                        description="Communes (collectivités) du portail")


@communes.route("", methods=["POST"])
@communes.arguments(CommuneCreateSchema)
@communes.response(201, CommuneSchema)
def create_commune(payload):
    """Créer une commune (administrateur de la plateforme)."""
    require_platform_admin()
    settings = CommuneSettings(**{**payload["settings"],
                                  "modules": tuple(payload["settings"].get("modules", ()))})
    db = current_context().db
    try:
        with db.transaction() as session:
            commune = Commune(slug=payload["slug"], name=payload["name"],
                              settings=settings.as_dict(), version=1)
            session.add(commune)
            session.flush()
            outbox.add(session, Event.new(
                "accounts.commune.created",
                {"commune_id": commune.id, "slug": commune.slug, "name": commune.name,
                 "settings": commune.settings},
                producer=NAME, commune_id=commune.id,
            ))
    except IntegrityError as exc:
        raise Problem(409, "Une commune utilise déjà cet identifiant.",
                      errors={"slug": ["Cet identifiant est déjà utilisé."]}) from exc
    return commune


@communes.route("/<slug>")
@communes.response(200, CommuneSchema)
def get_commune(slug: str):
    """Une commune : nom, réglages et modules souscrits (public : la page de connexion
    affiche le nom et le logo de la commune)."""
    with current_context().db.sessions() as session:
        commune = session.scalar(select(Commune).where(Commune.slug == slug))
        if commune is None:
            raise Problem(404, "Cette commune n'existe pas.")
        return commune


# Internal routes live outside /api/: the gateway never forwards them, and they also demand
# the gateway's own service token.
internal = Blueprint("internal", __name__, url_prefix="/internal")


def principal_claims(session, account: Account) -> dict:
    communes: dict[str, dict] = {}
    role = session.get(AgentRole, account.id)
    if role is not None:
        commune = session.get(Commune, role.commune_id)
        communes[commune.slug] = {"id": commune.id, "name": commune.name,
                                  "roles": list(role.roles)}
    return {
        "account_id": account.id,
        "email": account.email,
        "family_id": account.family_id,
        "platform_admin": account.platform_admin,
        "communes": communes,
    }


def _require_gateway() -> None:
    if current_principal().account_id != "service:gateway":
        raise Problem(403, "Réservé à la passerelle.")


@internal.post("/authenticate")
def authenticate():
    _require_gateway()
    payload = parse_json(CredentialsSchema())
    email = normalise_email(payload["email"])
    db = current_context().db
    with db.transaction() as session:
        account = session.scalar(select(Account).where(Account.email == email))
        ok = verify_password(account.password_hash if account else None, payload["password"])
        if not ok or account is None or account.status != "active":
            raise Problem(401, "Adresse e-mail ou mot de passe incorrect.")
        if needs_rehash(account.password_hash):
            account.password_hash = hash_password(payload["password"])
        return jsonify(principal_claims(session, account))


@internal.get("/principals/<account_id>")
def principal(account_id: str):
    _require_gateway()
    with current_context().db.sessions() as session:
        account = session.get(Account, account_id)
        if account is None or account.status != "active":
            raise Problem(404)
        return jsonify(principal_claims(session, account))
