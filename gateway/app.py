"""create_app for the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from services.common.app import create_app as create_base_app
from services.common.auth import Principal, Signer, ensure_dev_keys
from services.common.config import ConfigError, Env, Settings, load_settings
from services.common.db import Database
from services.common.errors import Problem

from . import NAME, SERVICES
from .auth_api import _login_key
from .auth_api import bp as auth_bp
from .proxy import bp as proxy_bp
from .sessions import COOKIE, SessionStore
from .upstreams import Timeouts, Upstreams


@dataclass
class Gateway:
    settings: Settings
    upstreams: Upstreams
    sessions: SessionStore
    signer: Signer

    @property
    def dev(self) -> bool:
        return self.settings.dev

    def token_from_request(self) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:].strip() or None
        return request.cookies.get(COOKIE) or None

    def authenticate(self) -> Principal | None:
        """The caller's principal, None when anonymous; 401 for a dead or forged token."""
        token = self.token_from_request()
        if not token:
            return None
        principal = self.sessions.principal(token)
        if principal is None:
            raise Problem(401, "Votre session a expiré : veuillez vous reconnecter.")
        return principal


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


def security_headers(response, dev: bool):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
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
    gateway = Gateway(
        settings=settings,
        upstreams=Upstreams(upstream_urls(settings.extra, settings.dev),
                            Timeouts(read=env.float("UPSTREAM_TIMEOUT", 10.0))),
        sessions=SessionStore(db),
        signer=Signer(signing_key(settings)),
    )
    env.check()
    # Fix: without static_folder=None, Flask's own /static/<path> route answered 404 for the
    # portal's stylesheet instead of forwarding it.
    app = create_base_app(NAME, settings, blueprints=[auth_bp, proxy_bp], db=db,
                          description="Passerelle : routage, sessions, jetons internes.",
                          static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.extensions["gateway"] = gateway
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.extra.get("REDIS_URL") or "memory://",
        headers_enabled=True,
        strategy="moving-window",
    )
    # Flask-Limiter (>= 4) checks a decorated limit inside the wrapper it returns, not before
    # the request: the wrapper must replace the registered view, or no limit ever applies.
    login_view = app.view_functions["auth.login"]
    login_view = limiter.limit("20 per minute", key_func=get_remote_address)(login_view)
    login_view = limiter.limit("10 per 15 minutes", key_func=_login_key)(login_view)
    app.view_functions["auth.login"] = login_view
    app.after_request(lambda response: security_headers(response, settings.dev))
    return app
