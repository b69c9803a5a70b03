"""Accounts' HTTP API (thin: parse, authorise, call ``operations``, answer).

DESIGN section 6 and docs/contract.md ("Identity (issue 3)"). Identity always comes from the
gateway's token: a parent's household is the one in the token, an agent acts in their commune.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask_smorest import Blueprint as ApiBlueprint

from services.common.app import current_context
from services.common.auth import (
    Principal,
    current_principal,
    require_commune,
    require_platform_admin,
)
from services.common.errors import Problem
from services.common.webargs import parse_json

from . import NAME
from .operations import RENEW_ACCEPTED, RESET_ACCEPTED, Operations
from .schemas import (
    AccountStateSchema,
    ActivationInfoSchema,
    AgentFamilyPatchSchema,
    AgentFamilySchema,
    CodeSchema,
    CommuneCreateSchema,
    CommunePatchSchema,
    CommuneSchema,
    CredentialsSchema,
    CursorQuerySchema,
    EmailSchema,
    FamilyCreateSchema,
    FamilyPageSchema,
    FamilyPatchSchema,
    FamilyQuerySchema,
    FamilySchema,
    InvitationSchema,
    JoinCommuneSchema,
    MeSchema,
    MessageSchema,
    MyCommuneSchema,
    MyCommunesSchema,
    NewsInSchema,
    NewsPageSchema,
    NewsSchema,
    PasswordChangeSchema,
    ResetInfoSchema,
    TokenPasswordSchema,
    TokenSchema,
)
from .second_factor import WRONG_CODE, WRONG_RECOVERY, SecondFactors

# Headers for the gateway (docs/contract.md), never forwarded to the client.
PRINCIPAL_CHANGED = {"X-Portail-Principal-Changed": "1"}


def end_other_sessions(account_id: str) -> dict[str, str]:
    # The account is named: after a reset the caller is anonymous, and the gateway must still
    # know whose sessions to close.
    return {"X-Portail-End-Other-Sessions": account_id}


def ops() -> Operations:
    ctx = current_context()
    return Operations.of(ctx.db, ctx.settings)


def agent_of(slug: str, *, hide_from_members: bool = False) -> Principal:
    """An agent of ``slug`` (or a platform admin). With ``hide_from_members``, a parent of the
    commune gets 404, as for any household id that is not theirs."""
    principal = current_principal()
    if (hide_from_members and not principal.platform_admin and principal.roles_in(slug)
            and not principal.is_agent_of(slug)):
        raise Problem(404)
    return require_commune(slug, agent=True)


def parent() -> Principal:
    principal = current_principal()
    if not principal.family_id:
        raise Problem(403, "Réservé aux comptes famille.")
    return principal


# communes ------------------------------------------------------------------------------------
communes = ApiBlueprint("communes", __name__, url_prefix=f"/api/{NAME}/communes",
                        description="Communes (collectivités), leurs foyers et actualités")


@communes.route("", methods=["POST"])
@communes.arguments(CommuneCreateSchema)
@communes.response(201, CommuneSchema)
def create_commune(payload):
    """Créer une commune (administrateur de la plateforme)."""
    require_platform_admin()
    return ops().create_commune(payload)


@communes.route("/<slug>")
@communes.response(200, CommuneSchema)
def get_commune(slug: str):
    """Une commune : nom, réglages et modules souscrits (public : la page de connexion
    affiche le nom et le logo de la commune)."""
    return ops().get_commune(slug)


@communes.route("/<slug>", methods=["PATCH"])
@communes.arguments(CommunePatchSchema)
@communes.response(200, CommuneSchema)
def update_commune(payload, slug: str):
    """Modifier le nom ou les réglages d'une commune (administrateur de la plateforme ou
    agent-admin de la commune) ; publie accounts.commune.updated."""
    principal = require_commune(slug, agent=True)
    if not principal.platform_admin and "agent-admin" not in principal.roles_in(slug):
        raise Problem(403, "Réservé aux administrateurs de la commune.")
    return ops().update_commune(slug, payload)


@communes.route("/<slug>/families", methods=["POST"])
@communes.arguments(FamilyCreateSchema)
@communes.response(201, AgentFamilySchema)
def create_family(payload, slug: str):
    """Créer un foyer et envoyer l'invitation (agent). Si l'adresse e-mail a déjà un compte
    famille, crée une proposition d'adhésion (``membership_status: pending``) avec un code
    famille que le foyer saisit pour rejoindre la commune."""
    principal = agent_of(slug)
    return ops().create_family(principal, slug, payload)


@communes.route("/<slug>/families")
@communes.arguments(FamilyQuerySchema, location="query")
@communes.response(200, FamilyPageSchema)
def list_families(query, slug: str):
    """Les foyers de la commune (agent) : recherche par nom, e-mail, code famille ou prénom
    d'enfant ; 50 par page, par nom."""
    agent_of(slug)
    return ops().list_families(slug, query["q"], query["cursor"])


@communes.route("/<slug>/families/<family_id>")
@communes.response(200, AgentFamilySchema)
def get_family(slug: str, family_id: str):
    """Un foyer de la commune (agent) ; la lecture est inscrite au journal des accès."""
    principal = agent_of(slug, hide_from_members=True)
    family = ops().family_for_agent(slug, family_id)
    from .privacy_api import record_family_read  # the privacy module imports this one

    record_family_read(principal, slug, family_id)
    return family


@communes.route("/<slug>/families/<family_id>", methods=["PATCH"])
@communes.arguments(AgentFamilyPatchSchema)
@communes.response(200, AgentFamilySchema)
def update_family(patch, slug: str, family_id: str):
    """Appliquer un changement justifié (agent) : adresse, nom, enfants, allergies / PAI."""
    agent_of(slug, hide_from_members=True)
    return ops().update_family_as_agent(slug, family_id, patch)


@communes.route("/<slug>/families/<family_id>/invitation", methods=["POST"])
@communes.response(202, InvitationSchema)
def reinvite(slug: str, family_id: str):
    """Renvoyer l'invitation (agent) : un nouveau lien, les précédents ne marchent plus."""
    agent_of(slug, hide_from_members=True)
    return ops().reinvite(slug, family_id)


@communes.route("/<slug>/news")
@communes.arguments(CursorQuerySchema, location="query")
@communes.response(200, NewsPageSchema)
def list_news(query, slug: str):
    """Les actualités de la commune, les plus récentes d'abord (membres et agents)."""
    require_commune(slug)
    return ops().list_news(slug, query["cursor"])


@communes.route("/<slug>/news", methods=["POST"])
@communes.arguments(NewsInSchema)
@communes.response(201, NewsSchema)
def post_news(payload, slug: str):
    """Publier une actualité (agent)."""
    principal = agent_of(slug)
    return ops().post_news(principal, slug, payload)


# activation and password reset (public) ----------------------------------------------------
activation = ApiBlueprint("activation", __name__, url_prefix=f"/api/{NAME}/activation",
                          description="Activation d'un compte invité (public)")


@activation.route("", methods=["POST"])
@activation.arguments(TokenPasswordSchema)
@activation.response(200, AccountStateSchema)
def activate(payload):
    """Choisir son mot de passe avec le lien d'invitation ; le lien ne sert qu'une fois."""
    return ops().activate(payload["token"], payload["password"])


@activation.route("/renew", methods=["POST"])
@activation.arguments(TokenSchema)
@activation.response(202, MessageSchema)
def renew(payload):
    """Recevoir un nouveau lien (toujours 202)."""
    ops().renew_activation(payload["token"])
    return {"detail": RENEW_ACCEPTED}


@activation.route("/<token>")
@activation.response(200, ActivationInfoSchema)
def activation_info(token: str):
    """Ce que le lien d'invitation permet d'activer ; 410 (``status`` expired ou used)."""
    return ops().activation_info(token)


reset = ApiBlueprint("password_reset", __name__, url_prefix=f"/api/{NAME}/password-reset",
                     description="Mot de passe oublié (public)")


@reset.route("", methods=["POST"])
@reset.arguments(EmailSchema)
@reset.response(202, MessageSchema)
def request_reset(payload):
    """Demander un lien de réinitialisation ; la réponse est la même que l'adresse soit
    inscrite ou non."""
    ops().request_reset(payload["email"])
    return {"detail": RESET_ACCEPTED}


@reset.route("/confirm", methods=["POST"])
@reset.arguments(TokenPasswordSchema)
@reset.response(200, AccountStateSchema)
def confirm_reset(payload):
    """Choisir un nouveau mot de passe avec le lien reçu ; ferme les autres sessions."""
    state = ops().confirm_reset(payload["token"], payload["password"])
    return state, 200, end_other_sessions(state["account_id"])


@reset.route("/<token>")
@reset.response(200, ResetInfoSchema)
def reset_info(token: str):
    """Le lien de réinitialisation est-il valable ? 410 (``status`` expired ou used)."""
    return ops().reset_info(token)


# the caller's own account --------------------------------------------------------------------
me = ApiBlueprint("me", __name__, url_prefix=f"/api/{NAME}/me",
                  description="Mon compte, mon foyer, mes communes")


@me.route("")
@me.response(200, MeSchema)
def whoami():
    """Mon compte et mes communes, avec mes rôles dans chacune."""
    return ops().me(current_principal())


@me.route("/communes")
@me.response(200, MyCommunesSchema)
def my_communes():
    """Les communes de mon foyer, avec le code famille de chacune."""
    return ops().my_communes(parent())


@me.route("/communes", methods=["POST"])
@me.arguments(JoinCommuneSchema)
@me.response(201, MyCommuneSchema)
def join_commune(payload):
    """Rejoindre une autre commune avec le code famille qu'elle a donné à mon foyer."""
    joined = ops().join_commune(parent(), payload["commune"], payload["family_code"])
    return joined, 201, PRINCIPAL_CHANGED


@me.route("/family")
@me.response(200, FamilySchema)
def my_family():
    """Mon foyer : adresse, responsables, enfants."""
    return ops().my_family(parent())


@me.route("/family", methods=["PATCH"])
@me.arguments(FamilyPatchSchema)
@me.response(200, FamilySchema)
def update_my_family(payload):
    """Modifier les coordonnées des responsables (noms, lien, e-mail, téléphones, payeur).
    L'adresse, le nom du foyer et les enfants se modifient par « Mes demandes »."""
    return ops().update_my_family(parent(), payload)


@me.route("/password", methods=["POST"])
@me.arguments(PasswordChangeSchema)
@me.response(200, MessageSchema)
def change_password(payload):
    """Changer de mot de passe (l'actuel est demandé) ; ferme les autres sessions."""
    principal = current_principal()
    ops().change_password(principal, payload["current_password"], payload["new_password"])
    return ({"detail": "Votre mot de passe est modifié."}, 200,
            end_other_sessions(principal.account_id))


API_BLUEPRINTS = [communes, activation, reset, me]

# Internal routes live outside /api/: the gateway never forwards them, and they also demand
# the gateway's own service token.
internal = Blueprint("internal", __name__, url_prefix="/internal")


def _require_gateway() -> None:
    if current_principal().account_id != "service:gateway":
        raise Problem(403, "Réservé à la passerelle.")


@internal.post("/authenticate")
def authenticate():
    _require_gateway()
    payload = parse_json(CredentialsSchema())
    return jsonify(ops().authenticate(payload["email"], payload["password"]))


@internal.get("/principals/<account_id>")
def principal(account_id: str):
    _require_gateway()
    return jsonify(ops().principal(account_id))


# The second factor of agents and admins (docs/contract.md, "Second factor"): the gateway
# asks, for the account of a session waiting for it; never routed from outside.
def second_factors() -> SecondFactors:
    return SecondFactors(current_context().db, current_app.extensions["totp_box"])


def _code() -> str:
    return parse_json(CodeSchema())["code"]


def _checked(result: dict, wrong: str):
    if not result.pop("ok"):
        raise Problem(401, wrong)
    return jsonify(result)


@internal.post("/second-factor/<account_id>/enrolment")
def start_enrolment(account_id: str):
    _require_gateway()
    return jsonify(second_factors().start_enrolment(account_id))


@internal.post("/second-factor/<account_id>/enrolment/confirm")
def confirm_enrolment(account_id: str):
    _require_gateway()
    return _checked(second_factors().confirm_enrolment(account_id, _code()), WRONG_CODE)


@internal.post("/second-factor/<account_id>/verify")
def verify_second_factor(account_id: str):
    _require_gateway()
    return _checked(second_factors().verify(account_id, _code()), WRONG_CODE)


@internal.post("/second-factor/<account_id>/recover")
def recover_second_factor(account_id: str):
    _require_gateway()
    return _checked(second_factors().recover(account_id, _code()), WRONG_RECOVERY)
