"""The gateway's internal tokens: keys, signing (gateway) and verification (every service).

The gateway authenticates people and API clients, then forwards each call with a short-lived
JWT minted for the one service it calls (``aud``). Services trust nothing else: identity,
household and roles per commune come from that token only, never from the body.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app, g, request
from jwt.algorithms import OKPAlgorithm

from .errors import Problem

ISSUER = "portail-gateway"
ALGORITHM = "EdDSA"
TOKEN_TTL = 60  # seconds: one proxied call, with room for a slow upload


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the gateway vouched for it."""

    account_id: str
    email: str = ""
    family_id: str | None = None
    platform_admin: bool = False
    # commune slug -> {"id": commune id, "roles": ["parent"] or ["agent", "agent-admin"]}
    communes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def roles_in(self, slug: str) -> list[str]:
        return list(self.communes.get(slug, {}).get("roles", []))

    def is_agent_of(self, slug: str) -> bool:
        return any(r.startswith("agent") for r in self.roles_in(slug))

    def is_agent(self) -> bool:
        return any(self.is_agent_of(slug) for slug in self.communes)

    def claims(self) -> dict[str, Any]:
        return {
            "sub": self.account_id,
            "email": self.email,
            "fam": self.family_id,
            "adm": self.platform_admin,
            "communes": self.communes,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Principal:
        return cls(
            account_id=str(claims["sub"]),
            email=str(claims.get("email") or ""),
            family_id=claims.get("fam"),
            platform_admin=bool(claims.get("adm")),
            communes=dict(claims.get("communes") or {}),
        )


# keys -------------------------------------------------------------------------------------
def generate_private_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def kid_of(private_pem: str) -> str:
    public = serialization.load_pem_private_key(private_pem.encode(), None).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return uuid.uuid5(uuid.NAMESPACE_OID, raw.hex()).hex[:16]


def jwks_of(*private_pems: str) -> str:
    """The public JWKS for the given private keys (the current one and those still trusted)."""
    keys = []
    for pem in private_pems:
        public = serialization.load_pem_private_key(pem.encode(), None).public_key()
        jwk = json.loads(OKPAlgorithm.to_jwk(public))
        jwk.update({"kid": kid_of(pem), "use": "sig", "alg": ALGORITHM})
        keys.append(jwk)
    return json.dumps({"keys": keys})


def ensure_dev_keys(data_dir: Path) -> tuple[str, str]:
    """A signing key kept in the data dir (embedded and local modes); returns (pem, jwks)."""
    path = data_dir / "keys" / "jwt-private.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_private_key_pem())
        path.chmod(0o600)
    pem = path.read_text()
    return pem, jwks_of(pem)


class KeySet:
    """Public keys a service accepts, by ``kid``."""

    def __init__(self, jwks: str | dict):
        data = json.loads(jwks) if isinstance(jwks, str) else jwks
        self.keys = {k["kid"]: OKPAlgorithm.from_jwk(json.dumps(k)) for k in data.get("keys", [])}

    def verify(self, token: str, audience: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("jeton illisible") from exc
        key = self.keys.get(kid)
        if key is None:
            raise InvalidToken("clé de signature inconnue")
        try:
            claims = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=audience, issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
                leeway=5,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        return Principal.from_claims(claims)


class RemoteKeySet(KeySet):
    """The gateway's published JWKS (``JWKS_URL``), fetched on first use and again when a token
    names a key not seen yet: a rotated key is picked up without restarting the service."""

    def __init__(self, url: str, *, min_refetch: float = 30.0, timeout: float = 3.0):
        self.url = url
        self.min_refetch = min_refetch
        self.timeout = timeout
        self.keys = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _fetch(self) -> None:
        import requests

        with self._lock:
            if time.monotonic() - self._fetched_at < self.min_refetch:
                return
            self._fetched_at = time.monotonic()
            try:
                answer = requests.get(self.url, timeout=self.timeout)
                answer.raise_for_status()
                KeySet.__init__(self, answer.json())
            except Exception as exc:  # keep the keys we had; the token fails as unknown
                raise InvalidToken(f"clés de vérification inaccessibles : {exc}") from exc

    def verify(self, token: str, audience: str) -> Principal:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("jeton illisible") from exc
        if kid not in self.keys:
            self._fetch()
        return super().verify(token, audience)


class Signer:
    def __init__(self, private_pem: str, *, ttl: int = TOKEN_TTL):
        self.key = serialization.load_pem_private_key(private_pem.encode(), None)
        self.kid = kid_of(private_pem)
        self.ttl = ttl

    def mint(self, principal: Principal, audience: str) -> str:
        now = int(time.time())
        claims = {
            **principal.claims(),
            "iss": ISSUER,
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})


# Flask side -------------------------------------------------------------------------------
def _keyset() -> KeySet:
    keyset = current_app.extensions["portail"].keyset
    if keyset is None:
        raise Problem(503, "Le service n'a pas de clé de vérification configurée.")
    return keyset


def optional_principal() -> Principal | None:
    if "principal" in g:
        return g.principal
    header = request.headers.get("Authorization", "")
    principal = None
    if header.startswith("Bearer "):
        ctx = current_app.extensions["portail"]
        try:
            principal = _keyset().verify(header[7:], audience=ctx.name)
        except InvalidToken as exc:
            raise Problem(401, "Jeton d'accès invalide ou expiré.") from exc
    g.principal = principal
    return principal


def current_principal() -> Principal:
    principal = optional_principal()
    if principal is None:
        raise Problem(401)
    return principal


def require_platform_admin() -> Principal:
    principal = current_principal()
    if not principal.platform_admin:
        raise Problem(403, "Réservé aux administrateurs de la plateforme.")
    return principal


def require_commune(slug: str, *, agent: bool = False) -> Principal:
    """The caller may act in commune ``slug``; agents only when ``agent`` is asked.

    A parent who does not belong to the commune gets 404 (its existence is not theirs to
    know); an agent of another commune gets 403.
    """
    principal = current_principal()
    if principal.platform_admin:
        return principal
    roles = principal.roles_in(slug)
    if not roles:
        if principal.is_agent():
            raise Problem(403, "Vous n'êtes pas agent de cette commune.")
        raise Problem(404)
    if agent and not principal.is_agent_of(slug):
        raise Problem(403, "Réservé aux agents de la commune.")
    return principal
