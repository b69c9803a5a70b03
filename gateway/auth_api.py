"""``/auth/login``, ``/auth/logout`` and ``/auth/me`` (DESIGN section 6)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from marshmallow import Schema, fields, validate

from services.common.errors import Problem
from services.common.webargs import parse_json

from .sessions import COOKIE

bp = Blueprint("auth", __name__, url_prefix="/auth")


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


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
    principal = gw.accounts.authenticate(payload["email"], payload["password"])
    if principal is None:
        raise Problem(401, "Adresse e-mail ou mot de passe incorrect.")
    # A session token presented at login is closed: a new id every login, never fixation.
    old = gw.token_from_request()
    if old:
        gw.sessions.close(old)
    token = gw.sessions.open(principal)
    lifetime = int(gw.sessions.policy.absolute.total_seconds())
    response = jsonify(access_token=token, token_type="Bearer", expires_in=lifetime)
    _set_cookie(response, token)
    response.headers["Cache-Control"] = "no-store"
    return response


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
    return jsonify(
        account_id=principal.account_id,
        email=principal.email,
        family_id=principal.family_id,
        platform_admin=principal.platform_admin,
        communes=[
            {"slug": slug, "name": info.get("name", slug), "roles": info.get("roles", [])}
            for slug, info in sorted(principal.communes.items())
        ],
    )
