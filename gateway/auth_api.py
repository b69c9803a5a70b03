"""``/auth/login``, ``/auth/logout`` and ``/auth/me`` (DESIGN section 6), and the second factor
of agents and platform admins (``/auth/second-factor...``, docs/contract.md).

An account that needs a second factor gets, after its password, a *pending* session (10
minutes, no agent role and no admin right in the tokens minted for it); the right code (or a
recovery code) closes it and opens a new session, with a new id, that carries the roles.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate

from services.common.errors import Problem
from services.common.webargs import parse_json

from .core import needs_second_factor
from .sessions import COOKIE, NOT_REQUIRED, PENDING, VERIFIED

bp = Blueprint("auth", __name__, url_prefix="/auth")


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class CodeSchema(Schema):
    code = fields.String(validate=validate.Length(min=1, max=64))
    recovery_code = fields.String(validate=validate.Length(min=1, max=64))


def _set_cookie(response, token: str | None, max_age: int | None = None) -> None:
    gw = current_app.extensions["gateway"]
    if token is None:
        response.delete_cookie(COOKIE, path="/", samesite="Lax", secure=not gw.dev,
                               httponly=True)
        return
    response.set_cookie(COOKIE, token, max_age=max_age, path="/", httponly=True,
                        samesite="Lax", secure=not gw.dev)


@bp.post("/login")
def login():
    gw = current_app.extensions["gateway"]
    payload = parse_json(LoginSchema())
    found = gw.accounts.authenticate(payload["email"], payload["password"])
    if found is None:
        raise Problem(401, "Adresse e-mail ou mot de passe incorrect.")
    principal, second_factor = found
    required = bool(second_factor.get("required")) or needs_second_factor(principal)
    if not required:
        return _new_session(principal, NOT_REQUIRED)
    # What comes next: the code of the app, or the app's enrolment first.
    step = "totp" if second_factor.get("enrolled") else "enrolment"
    return _new_session(principal, PENDING, second_factor=step)


def _new_session(principal, state: str, **extra):
    """Close the session presented (a new id at every step, never fixation), open another."""
    gw = current_app.extensions["gateway"]
    old = gw.token_from_request()
    if old:
        gw.sessions.close(old)
    token = gw.sessions.open(principal, second_factor=state)
    response = jsonify(access_token=token, token_type="Bearer",
                       expires_in=gw.sessions.lifetime(state), **extra)
    _set_cookie(response, token)
    response.headers["Cache-Control"] = "no-store"
    return response


def _pending_account() -> str:
    """The account of the caller's session waiting for its second factor."""
    gw = current_app.extensions["gateway"]
    token = gw.token_from_request()
    found = gw.sessions.find(token) if token else None
    if found is None:
        raise Problem(401, "Votre session a expiré : veuillez vous reconnecter.")
    if found.second_factor != PENDING:
        raise Problem(409, "Aucune double authentification n'est attendue pour cette session.")
    return found.principal.account_id


def _verified_session(account_id: str, **extra):
    gw = current_app.extensions["gateway"]
    principal = gw.accounts.principal(account_id)  # the roles as they are now
    if principal is None:
        gw.sessions.close_all(account_id)
        raise Problem(401, "Votre session a expiré : veuillez vous reconnecter.")
    return _new_session(principal, VERIFIED, **extra)


@bp.post("/second-factor")
def second_factor():
    """``{code}`` (the app's 6 digits) or ``{recovery_code}``: the session's second factor."""
    gw = current_app.extensions["gateway"]
    account_id = _pending_account()
    payload = parse_json(CodeSchema())
    if payload.get("code"):
        gw.accounts.second_factor(account_id, "verify", payload["code"])
        return _verified_session(account_id)
    if payload.get("recovery_code"):
        result = gw.accounts.second_factor(account_id, "recover", payload["recovery_code"])
        return _verified_session(account_id, recovery_codes_left=result.get("remaining", 0))
    raise Problem(422, errors={"code": ["Saisissez le code de votre application."]})


@bp.post("/second-factor/enrolment")
def start_enrolment():
    """The secret to add to an authenticator app, until the first code confirms it."""
    gw = current_app.extensions["gateway"]
    result = gw.accounts.second_factor(_pending_account(), "enrolment")
    response = jsonify(secret=result["secret"], otpauth_uri=result["otpauth_uri"])
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/second-factor/enrolment/confirm")
def confirm_enrolment():
    """``{code}``: the app works; the recovery codes are given here, once."""
    gw = current_app.extensions["gateway"]
    account_id = _pending_account()
    code = parse_json(CodeSchema()).get("code")
    if not code:
        raise Problem(422, errors={"code": ["Saisissez le code de votre application."]})
    result = gw.accounts.second_factor(account_id, "enrolment/confirm", code)
    return _verified_session(account_id, recovery_codes=result["recovery_codes"])


@bp.post("/logout")
def logout():
    gw = current_app.extensions["gateway"]
    token = gw.token_from_request()
    if token:
        gw.sessions.close(token)
    response = current_app.response_class(status=204)
    _set_cookie(response, None)
    return response


@bp.get("/me")
def me():
    gw = current_app.extensions["gateway"]
    principal = gw.authenticate()
    if principal is None:
        raise Problem(401)
    found = gw.sessions.find(gw.token_from_request())
    state = found.second_factor if found else None
    return jsonify(
        # "pending": the roles of agents and admins wait for the second factor.
        second_factor=state if state in (PENDING, VERIFIED) else "not_required",
        account_id=principal.account_id,
        email=principal.email,
        family_id=principal.family_id,
        platform_admin=principal.platform_admin,
        communes=[
            {"slug": slug, "name": info.get("name", slug), "roles": info.get("roles", [])}
            for slug, info in sorted(principal.communes.items())
        ],
    )
