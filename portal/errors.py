"""Error pages in French for people, problem+json for programs.

The shared app factory answers every error as problem+json. These handlers replace its
HTTPException and Exception handlers (registered after it, for the same classes) and keep its
answer for clients that do not prefer HTML.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, g, redirect, render_template, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from services.common.errors import DETAILS, TITLES, from_http_exception, problem
from services.common.logging import get_logger

from .client import GatewayError, LoginRequired
from .security import safe_target

log = get_logger(__name__)

CSRF_DETAIL = ("Le formulaire a expiré ou ne provient pas du portail. "
               "Rechargez la page puis envoyez-le de nouveau.")


def wants_html() -> bool:
    best = request.accept_mimetypes.best_match(
        ["text/html", "application/problem+json", "application/json"], default="text/html")
    return best == "text/html"


def _page(status: int, detail: str, headers=None):
    body = render_template("error.html", status=status, title=TITLES.get(status, "Erreur"),
                           detail=detail)
    return body, status, headers or {}


def install_error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if not wants_html():
            return from_http_exception(error)
        status = error.code or 500
        # Keep headers such as Allow (405) but not the plain-text Content-Type.
        headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
        return _page(status, DETAILS.get(status, TITLES.get(status, "Erreur")), headers)

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        log.info("csrf_rejected", reason=error.description)
        if not wants_html():
            return problem(400, CSRF_DETAIL)
        return _page(400, CSRF_DETAIL)

    @app.errorhandler(LoginRequired)
    def _login(error: LoginRequired):
        if not wants_html():
            return problem(401)
        return redirect(url_for("pages.login", suivant=_come_back_to()), 303)

    @app.errorhandler(GatewayError)
    def _gateway(error: GatewayError):
        if not wants_html():
            return problem(error.status, error.message)
        return _page(error.status, error.message)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return _http(error)
        log.exception("unhandled_error")
        if not wants_html():
            return from_http_exception(InternalServerError())
        g.plain_layout = True  # whatever broke, the error page must not depend on it
        return _page(500, DETAILS[500])


def _come_back_to() -> str | None:
    """Where the login form sends the visitor back: this page, or for a form the page it
    was sent from (a POST cannot be replayed after logging in)."""
    if request.method == "GET":
        target = request.full_path.rstrip("?")
    else:
        referrer = urlsplit(request.referrer or "")
        same_site = referrer.netloc == request.host
        target = (referrer.path + (f"?{referrer.query}" if referrer.query else "")
                  if same_site else request.path)
    target = safe_target(target)
    return None if target in (None, "/") else target
