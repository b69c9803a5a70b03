"""Calls between services, for the few places where a person waits for another service.

DESIGN section 1: such a call has a timeout, an idempotency key and a clear error when the
other side is down. It carries a short-lived *service token*: signed with the services' own key
(``SERVICE_TOKEN_KEY``, distinct from the gateway's), issuer ``portail-services``, subject
``service:<caller>``, audience the callee. It opens only ``/internal/...`` routes, which the
gateway never forwards; it can never pass for a person's token (other issuer, other keys).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from flask import current_app, request
from requests.adapters import HTTPAdapter

from .auth import ALGORITHM, generate_private_key_pem, kid_of
from .config import ConfigError, Settings
from .errors import Problem

ISSUER = "portail-services"
TTL = 30


def service_key(settings: Settings) -> str:
    """The services' shared signing key: from the environment, or kept in the data dir (dev)."""
    pem = settings.extra.get("SERVICE_TOKEN_KEY", "")
    if pem:
        return pem
    if not settings.dev:
        raise ConfigError(["SERVICE_TOKEN_KEY est obligatoire (clé des appels entre services)"])
    path = Path(settings.data_dir) / "keys" / "service-private.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(generate_private_key_pem())
        path.chmod(0o600)
    return path.read_text()


class ServiceTokens:
    def __init__(self, private_pem: str):
        self.key = serialization.load_pem_private_key(private_pem.encode(), None)
        self.public = self.key.public_key()
        self.kid = kid_of(private_pem)

    def mint(self, caller: str, audience: str) -> str:
        now = int(time.time())
        return jwt.encode(
            {"iss": ISSUER, "sub": f"service:{caller}", "aud": audience, "iat": now,
             "exp": now + TTL, "jti": uuid.uuid4().hex},
            self.key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(self, token: str, audience: str) -> str:
        """The calling service's name; raises ``Problem(401)`` otherwise."""
        try:
            claims = jwt.decode(token, self.public, algorithms=[ALGORITHM], audience=audience,
                                issuer=ISSUER, leeway=5,
                                options={"require": ["exp", "iat", "sub", "aud", "iss"]})
        except jwt.PyJWTError as exc:
            raise Problem(401, "Jeton de service invalide.") from exc
        subject = str(claims["sub"])
        if not subject.startswith("service:"):
            raise Problem(401, "Jeton de service invalide.")
        return subject.removeprefix("service:")


def require_service(*callers: str) -> str:
    """In an ``/internal/...`` view: the calling service, which must be one of ``callers``."""
    ctx = current_app.extensions["portail"]
    tokens: ServiceTokens | None = current_app.extensions.get("portail_service_tokens")
    if tokens is None:
        raise Problem(503, "Les appels entre services ne sont pas configurés.")
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Problem(401, "Jeton de service requis.")
    caller = tokens.verify(header[7:], audience=ctx.name)
    if caller not in callers:
        raise Problem(403, "Ce service n'est pas autorisé à faire cet appel.")
    return caller


class ServiceUnavailable(Problem):
    def __init__(self, service: str, detail: str | None = None):
        super().__init__(503, detail or "Un service du portail ne répond pas. Réessayez dans "
                                        "quelques instants.", service=service)


class ServiceClient:
    """A pooled client for one caller; the callee's base URL is read at call time from
    ``<CALLEE>_URL`` (the embedded mode learns the URLs while it starts the apps)."""

    def __init__(self, caller: str, tokens: ServiceTokens, urls: Mapping[str, str] | None = None,
                 *, connect_timeout: float = 2.0, read_timeout: float = 8.0):
        self.caller = caller
        self.tokens = tokens
        self.urls = dict(urls or {})
        self.timeout = (connect_timeout, read_timeout)
        self.http = requests.Session()
        self.http.trust_env = False
        adapter = HTTPAdapter(pool_maxsize=20, max_retries=0)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)

    def base_url(self, service: str) -> str:
        url = self.urls.get(service) or os.environ.get(f"{service.upper()}_URL")
        if not url:
            raise ServiceUnavailable(service, f"L'adresse du service {service} n'est pas "
                                              "configurée.")
        return url.rstrip("/")

    def call(self, service: str, method: str, path: str, *, json: Any = None,
             idempotency_key: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens.mint(self.caller, service)}",
                   "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            from flask import g, has_request_context

            if has_request_context() and g.get("request_id"):
                headers["X-Request-ID"] = g.request_id
        except ImportError:  # pragma: no cover - flask is always there
            pass
        try:
            response = self.http.request(method, f"{self.base_url(service)}{path}", json=json,
                                         headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ServiceUnavailable(service) from exc
        if response.status_code >= 500:
            raise ServiceUnavailable(service)
        return response
