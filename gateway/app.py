"""create_app for the gateway."""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask import Flask, jsonify

from services.common.app import create_app as create_base_app
from services.common.auth import Signer, ensure_dev_keys, jwks_of
from services.common.config import ConfigError, Env, Settings, load_settings
from services.common.db import Database

from . import NAME, SERVICES, limits
from .accounts_client import AccountsClient
from .auth_api import bp as auth_bp
from .core import Gateway
from .proxy import bp as proxy_bp
from .sessions import SessionStore
from .upstreams import MAX_IN_FLIGHT, QUEUE_WAIT, Timeouts, Upstreams


def upstream_urls(environ: Mapping[str, str], dev: bool) -> dict[str, str]:
    env = Env(environ)
    names = (*SERVICES, "portal")
    urls = {name: env.str(f"{name.upper()}_URL", required=True) for name in names}
    if env.problems and dev:
        env.problems = [p + " (en mode embarqué, `portail dev` les fixe)" for p in env.problems]
    env.check()
    return urls


def signing_key(settings: Settings) -> str:
    pem = settings.extra.get("JWT_PRIVATE_KEY", "")
    if pem:
        return pem
    if settings.dev:
        return ensure_dev_keys(settings.data_dir)[0]
    raise ConfigError(["JWT_PRIVATE_KEY est obligatoire (clé de signature des jetons internes)"])


def previous_keys(settings: Settings) -> list[str]:
    """``JWT_PREVIOUS_KEYS``: PEM keys no longer signing but still published during rotation."""
    raw = settings.extra.get("JWT_PREVIOUS_KEYS", "")
    marker = "-----END PRIVATE KEY-----"
    return [block.strip() + "\n" + marker + "\n" for block in raw.split(marker) if block.strip()]


def security_headers(response, dev: bool):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy",
                       "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
    headers.setdefault("Content-Security-Policy",
                       "default-src 'self'; frame-ancestors 'none'; form-action 'self'; "
                       "base-uri 'self'; object-src 'none'")
    if not dev:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def create_app(settings: Settings | None = None, db: Database | None = None) -> Flask:
    settings = settings or load_settings(NAME, needs_bus=False)
    db = db or Database(settings.database_url)
    env = Env(settings.extra)
    # One upstream may hold at most half of this process's threads (deploy/gunicorn.conf.py).
    threads = env.int("GATEWAY_THREADS", 2 * MAX_IN_FLIGHT)
    upstreams = Upstreams(upstream_urls(settings.extra, settings.dev),
                          Timeouts(read=env.float("UPSTREAM_TIMEOUT", 10.0)),
                          max_in_flight=max(1, threads // 2),
                          queue_wait=env.float("GATEWAY_QUEUE_WAIT", QUEUE_WAIT))
    pem = signing_key(settings)
    signer = Signer(pem)
    gateway = Gateway(
        settings=settings,
        upstreams=upstreams,
        sessions=SessionStore(db),
        signer=signer,
        accounts=AccountsClient(upstreams, signer),
    )
    jwks = jwks_of(pem, *previous_keys(settings))
    env.check()
    # Fix: without static_folder=None, Flask's own /static/<path> route answered 404 for the
    # portal's stylesheet instead of forwarding it.
    app = create_base_app(NAME, settings, blueprints=[auth_bp, proxy_bp], db=db,
                          description="Passerelle : routage, sessions, jetons internes.",
                          static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.extensions["gateway"] = gateway
    limits.install(app, settings.extra.get("REDIS_URL") or "memory://")
    # The public keys of the internal tokens, current and previous: services may fetch them
    # (JWKS_URL) instead of being configured with JWT_PUBLIC_KEYS, and learn a new key
    # without a restart when it is rotated.
    app.add_url_rule("/.well-known/jwks.json", "jwks", lambda: jsonify(json.loads(jwks)))
    app.after_request(lambda response: security_headers(response, settings.dev))
    return app
