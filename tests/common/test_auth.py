"""services.common.auth: the gateway's internal tokens and the per-commune access rules."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from flask import Blueprint, jsonify

from services.common.app import create_app
from services.common.auth import (
    ISSUER,
    InvalidToken,
    KeySet,
    Principal,
    Signer,
    current_principal,
    ensure_dev_keys,
    generate_private_key_pem,
    jwks_of,
    kid_of,
    require_commune,
)
from services.common.config import Settings
from services.common.errors import PROBLEM_TYPE

NAME = "reservations"
COMMUNE_A = "jolieville"
COMMUNE_B = "dammartin"

PARENT_A = Principal(account_id="parent-a", email="parent@famille.test", family_id="fam-1",
                     communes={COMMUNE_A: {"id": "c-a", "roles": ["parent"]}})
AGENT_A = Principal(account_id="agent-a", email="agent@jolieville.test",
                    communes={COMMUNE_A: {"id": "c-a", "roles": ["agent", "agent-admin"]}})
ADMIN = Principal(account_id="admin", email="admin@portail.test", platform_admin=True)


@pytest.fixture(scope="module")
def pem() -> str:
    return generate_private_key_pem()


@pytest.fixture(scope="module")
def signer(pem) -> Signer:
    return Signer(pem)


@pytest.fixture(scope="module")
def client(pem, tmp_path_factory):
    bp = Blueprint("probe", __name__, url_prefix=f"/api/{NAME}")

    @bp.get("/whoami")
    def whoami():
        principal = current_principal()
        return jsonify(account_id=principal.account_id, family_id=principal.family_id,
                       admin=principal.platform_admin, communes=principal.communes)

    @bp.get("/communes/<slug>")
    def commune(slug):
        return jsonify(account_id=require_commune(slug).account_id)

    @bp.get("/communes/<slug>/agents")
    def agents_only(slug):
        return jsonify(account_id=require_commune(slug, agent=True).account_id)

    tmp = tmp_path_factory.mktemp("auth")
    settings = Settings(service=NAME, env="dev", data_dir=tmp, secret_key="x" * 32)
    app = create_app(NAME, settings, blueprints=[bp], keyset=KeySet(jwks_of(pem)))
    return app.test_client()


def _get(client, path, token=None, **headers):
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(f"/api/{NAME}{path}", headers=headers)


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM_TYPE
    body = response.get_json(force=True)
    assert body["status"] == status
    return body


# tokens -----------------------------------------------------------------------------------
def test_signer_and_keyset_round_trip(pem, signer):
    token = signer.mint(PARENT_A, audience=NAME)
    principal = KeySet(jwks_of(pem)).verify(token, audience=NAME)
    assert principal == PARENT_A
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] == kid_of(pem)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert 0 < claims["exp"] - claims["iat"] <= 60  # short-lived


def test_keyset_accepts_every_key_it_lists(signer, pem):
    other = generate_private_key_pem()
    keyset = KeySet(jwks_of(other, pem))  # rotation: new key first, old one still trusted
    assert keyset.verify(signer.mint(AGENT_A, NAME), NAME) == AGENT_A
    assert keyset.verify(Signer(other).mint(ADMIN, NAME), NAME) == ADMIN


def test_dev_keys_are_kept_in_the_data_dir(tmp_path):
    pem, jwks = ensure_dev_keys(tmp_path)
    assert ensure_dev_keys(tmp_path) == (pem, jwks)
    assert (tmp_path / "keys" / "jwt-private.pem").stat().st_mode & 0o077 == 0
    assert KeySet(jwks).verify(Signer(pem).mint(ADMIN, "billing"), "billing") == ADMIN


def test_a_valid_token_identifies_the_caller(client, signer):
    response = _get(client, "/whoami", signer.mint(PARENT_A, NAME))
    assert response.status_code == 200
    assert response.get_json() == {"account_id": "parent-a", "family_id": "fam-1",
                                   "admin": False, "communes": PARENT_A.communes}


def test_missing_header_is_401(client):
    body = assert_problem(_get(client, "/whoami"), 401)
    assert body["detail"] == "Veuillez vous connecter."


def test_a_non_bearer_header_is_401(client, signer):
    token = signer.mint(PARENT_A, NAME)
    assert_problem(_get(client, "/whoami", Authorization=f"Basic {token}"), 401)


def test_wrong_audience_is_401(client, signer):
    body = assert_problem(_get(client, "/whoami", signer.mint(PARENT_A, "billing")), 401)
    assert body["detail"] == "Jeton d'accès invalide ou expiré."


def test_expired_token_is_401(client, pem):
    expired = Signer(pem, ttl=-60).mint(PARENT_A, NAME)  # beyond the 5 s leeway
    assert_problem(_get(client, "/whoami", expired), 401)


def test_token_of_an_unknown_key_is_401(client):
    stranger = Signer(generate_private_key_pem()).mint(ADMIN, NAME)
    assert_problem(_get(client, "/whoami", stranger), 401)


def test_token_of_another_key_with_a_trusted_kid_is_401(client, pem):
    forged = Signer(generate_private_key_pem())
    forged.kid = kid_of(pem)  # claims to be the trusted key
    assert_problem(_get(client, "/whoami", forged.mint(ADMIN, NAME)), 401)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tampered_payload_is_401(client, signer):
    header, payload, signature = signer.mint(PARENT_A, NAME).split(".")
    claims = json.loads(_unb64(payload))
    claims["adm"] = True  # promote oneself to platform admin
    tampered = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    assert_problem(_get(client, "/whoami", tampered), 401)
    assert_problem(_get(client, "/communes/dammartin", tampered), 401)


def test_unsigned_token_is_401(client, pem, signer):
    claims = jwt.decode(signer.mint(ADMIN, NAME), options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid_of(pem)})
    assert_problem(_get(client, "/whoami", unsigned), 401)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "é" * 3])
def test_garbage_token_is_401(client, garbage):
    with pytest.raises(InvalidToken):
        KeySet(jwks_of(generate_private_key_pem())).verify(garbage or "x", NAME)
    assert_problem(_get(client, "/whoami", garbage), 401)


def test_token_without_required_claims_is_refused(pem):
    key = Signer(pem).key
    token = jwt.encode({"sub": "x", "aud": NAME, "iss": ISSUER}, key, algorithm="EdDSA",
                       headers={"kid": kid_of(pem)})  # no exp, iat, jti
    with pytest.raises(InvalidToken):
        KeySet(jwks_of(pem)).verify(token, NAME)


# communes ---------------------------------------------------------------------------------
def test_parent_of_a_reads_a(client, signer):
    response = _get(client, f"/communes/{COMMUNE_A}", signer.mint(PARENT_A, NAME))
    assert response.status_code == 200


def test_parent_of_a_asking_b_gets_404(client, signer):
    body = assert_problem(_get(client, f"/communes/{COMMUNE_B}", signer.mint(PARENT_A, NAME)),
                          404)
    assert body["title"] == "Ressource introuvable"


def test_agent_of_a_asking_b_gets_403(client, signer):
    token = signer.mint(AGENT_A, NAME)
    body = assert_problem(_get(client, f"/communes/{COMMUNE_B}", token), 403)
    assert body["detail"] == "Vous n'êtes pas agent de cette commune."
    assert_problem(_get(client, f"/communes/{COMMUNE_B}/agents", token), 403)


def test_agent_of_a_acting_as_agent_in_a_passes(client, signer):
    response = _get(client, f"/communes/{COMMUNE_A}/agents", signer.mint(AGENT_A, NAME))
    assert response.status_code == 200
    assert response.get_json() == {"account_id": "agent-a"}


def test_parent_asking_an_agent_route_gets_403(client, signer):
    body = assert_problem(
        _get(client, f"/communes/{COMMUNE_A}/agents", signer.mint(PARENT_A, NAME)), 403)
    assert body["detail"] == "Réservé aux agents de la commune."


@pytest.mark.parametrize("path", [f"/communes/{COMMUNE_A}", f"/communes/{COMMUNE_B}/agents"])
def test_platform_admin_passes_everywhere(client, signer, path):
    response = _get(client, path, signer.mint(ADMIN, NAME))
    assert response.status_code == 200
    assert response.get_json() == {"account_id": "admin"}


def test_anonymous_asking_a_commune_gets_401(client):
    assert_problem(_get(client, f"/communes/{COMMUNE_A}"), 401)


def test_a_service_without_keys_answers_503(tmp_path):
    bp = Blueprint("probe", __name__)

    @bp.get("/whoami")
    def whoami():
        return jsonify(account_id=current_principal().account_id)

    settings = Settings(service=NAME, env="dev", data_dir=tmp_path, secret_key="x" * 32)
    client = create_app(NAME, settings, blueprints=[bp]).test_client()
    assert client.get("/whoami").status_code == 401
    response = client.get("/whoami", headers={"Authorization": "Bearer abc"})
    assert_problem(response, 503)
