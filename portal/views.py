"""The portal's pages: home, login, logout (all data comes from the gateway)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from services.common.logging import get_logger

from .account import current_account
from .client import SESSION_COOKIE, GatewayError, gateway, json_body, session_set_cookies
from .forms import LoginForm

log = get_logger(__name__)

pages = Blueprint("pages", __name__)

BAD_CREDENTIALS = "Adresse e-mail ou mot de passe incorrect."


@pages.get("/")
def home():
    try:
        account = current_account()
    except GatewayError as exc:
        return render_template("home.html", account=None, notice=exc.message), exc.status
    return render_template("home.html", account=account)


@pages.route("/connexion", methods=["GET", "POST"])
def login():
    form = LoginForm()
    target = _safe_target(request.args.get("suivant"))
    if not form.validate_on_submit():
        return _login_page(form, target), 422 if form.is_submitted() else 200
    email = (form.email.data or "").strip()
    try:
        credentials = {"email": email, "password": form.password.data}
        answer = gateway().post("/auth/login", json=credentials)
    except GatewayError as exc:
        return _login_page(form, target, notice=exc.message), exc.status
    if answer.status_code == 200:
        cookies = session_set_cookies(answer)
        if cookies:
            # A fresh CSRF session for the new identity, so a token seen before login is void.
            session.clear()
            response = redirect(target or url_for("pages.home"), 303)
            for line in cookies:
                response.headers.add("Set-Cookie", line)
            return response
        log.error("login_without_session_cookie", status=answer.status_code)
        notice = "La connexion n'a pas pu être établie. Réessayez dans quelques instants."
        return _login_page(form, target, notice=notice), 502
    if answer.status_code == 429:
        seconds = _retry_after(answer.headers.get("Retry-After"))
        message = f"Trop de tentatives : réessayez dans {_seconds_fr(seconds)}."
        response = Response(_login_page(form, target, error=message), 429)
        response.headers["Retry-After"] = str(seconds)
        return response
    if answer.status_code == 401:
        # 422 rather than 401: a form page sends no WWW-Authenticate challenge.
        return _login_page(form, target, error=BAD_CREDENTIALS), 422
    # Anything else (account not activated, invalid input...) carries a French detail.
    detail = _problem_detail(answer) or "La connexion a été refusée."
    return _login_page(form, target, error=detail), 422


@pages.post("/deconnexion")
def logout():
    cookies: list[str] = []
    if request.cookies.get(SESSION_COOKIE):
        try:
            cookies = session_set_cookies(gateway().post("/auth/logout"))
        except GatewayError:
            # The browser forgets the session anyway; the gateway's copy expires on its own.
            log.warning("logout_not_forwarded")
    session.clear()
    response = redirect(url_for("pages.home"), 303)
    for line in cookies:
        response.headers.add("Set-Cookie", line)
    if not cookies:
        dev = current_app.extensions["portail"].settings.dev
        response.delete_cookie(SESSION_COOKIE, path="/", secure=not dev, httponly=True,
                               samesite="Lax")
    return response


def _login_page(form: LoginForm, target: str | None, *, error: str | None = None,
                notice: str | None = None) -> str:
    return render_template("login.html", form=form, target=target, error=error, notice=notice)


def _safe_target(value: str | None) -> str | None:
    """Only a path on this site: ``suivant=https://ailleurs`` must not become an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(ch) < 32 for ch in value):
        return None
    return value


def _retry_after(value: str | None) -> int:
    """Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3); 60 s when unreadable."""
    if value and value.strip().isdigit():
        return max(1, int(value.strip()))
    if value:
        try:
            when = parsedate_to_datetime(value)
            return max(1, int((when - datetime.now(UTC)).total_seconds()))
        except (TypeError, ValueError):
            pass
    return 60


def _seconds_fr(seconds: int) -> str:
    return "1 seconde" if seconds == 1 else f"{seconds} secondes"


def _problem_detail(answer) -> str | None:
    try:
        body = json_body(answer)
    except GatewayError:
        return None
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) and detail else None
