"""create_app for the portal: French pages rendered on the server, from the gateway's API."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from flask_wtf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from services.common.app import create_app as create_service_app
from services.common.config import Settings, load_settings

from .access import access
from .account import MODULES, commune_modules, current_commune, layout_account
from .agent import agent
from .billing_agent import billing_agent
from .client import GatewayClient, forward_session_cookies
from .devmail import devmail
from .errors import install_error_pages
from .filters import install_filters
from .formtools import install_form_helpers
from .invoices import invoices
from .privacy import privacy
from .profile import profile
from .requests_agent import requests_agent
from .requests_pages import requests_pages
from .reservations_agent import reservations_agent
from .reservations_pages import reservations
from .reservations_setup import reservations_setup
from .second_factor import second_factor
from .security import install_security_headers
from .views import pages

DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings("portal", needs_database=False, needs_bus=False)
    # Outside dev the mailbox routes are simply not there, so they answer 404.
    blueprints = [pages, access, second_factor, profile, agent, invoices, billing_agent,
                  requests_pages, requests_agent, reservations, reservations_agent,
                  reservations_setup, privacy]
    if settings.dev:
        blueprints.append(devmail)
    app = create_service_app("portal", settings, blueprints=blueprints)
    app.config.update(
        # The portal's own cookie only carries the CSRF token; the visitor's identity is the
        # gateway's ``portail_session`` cookie, which the portal forwards and never reads.
        SESSION_COOKIE_NAME="portail_csrf",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not settings.dev,
    )
    # The gateway in front says which public host and scheme the browser used: links sent
    # outside (the payment provider's return address) must name them. One proxy hop, the
    # gateway's; X-Forwarded-For is left alone, the gateway client passes the chain on itself.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=0, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.extensions["portal_client"] = GatewayClient(
        settings.extra.get("GATEWAY_URL", DEFAULT_GATEWAY_URL))
    CSRFProtect(app)
    install_security_headers(app, production=not settings.dev)
    install_filters(app)
    install_form_helpers(app)
    install_error_pages(app)  # after create_service_app, so these handlers replace its own
    app.after_request(forward_session_cookies)

    @app.context_processor
    def _layout() -> dict[str, Any]:
        layout: dict[str, Any] = {"account": None, "account_unknown": True, "commune": None,
                                  "modules": MODULES, "dev": settings.dev}
        if g.get("plain_layout"):
            return layout
        account, unknown = layout_account()
        layout.update(account=account, account_unknown=unknown)
        if account is not None:
            commune = current_commune()
            layout.update(commune=commune,
                          modules=commune_modules(commune.slug) if commune else ())
        return layout

    return app
