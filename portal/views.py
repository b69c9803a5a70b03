"""The portal's pages: home (the commune's news), login, logout, the commune switcher.

All data comes from the gateway.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

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

from .account import COMMUNE_COOKIE, commune_modules, current_account, current_commune
from .client import (
    SESSION_COOKIE,
    GatewayError,
    call,
    gateway,
    json_body,
    session_set_cookies,
)
from .dashboard import family_blocks
from .forms import LoginForm
from .second_factor import next_step
from .security import safe_target

log = get_logger(__name__)

pages = Blueprint("pages", __name__)

BAD_CREDENTIALS = "Adresse e-mail ou mot de passe incorrect."
COMMUNE_COOKIE_SECONDS = 365 * 24 * 3600


@pages.get("/")
def home():
    try:
        account = current_account()
    except GatewayError as exc:
        return render_template("home.html", account=None, notice=exc.message), exc.status
    commune = current_commune() if account else None
    news: list | None = []
    if commune is not None:
        try:
            answer = call("GET", f"/api/accounts/communes/{quote(commune.slug, safe='')}/news",
                          accept=(403, 404))
        except GatewayError as exc:
            return render_template("home.html", news=None, notice=exc.message), exc.status
        news = answer.items() if answer.ok else None
    # The family's summary: each block from its own service; one slow or dead service shows
    # a notice in its block, never an error page (portal/dashboard.py).
    blocks = (family_blocks(commune.slug, commune_modules(commune.slug))
              if commune is not None and account.family_id else {})
    return render_template("home.html", news=news, blocks=blocks)


@pages.get("/actualites")
def news():
    return redirect(url_for("pages.home"), 301)


@pages.post("/commune")
def switch_commune():
    """The commune switcher: remembers a slug the gateway lists for this account, only."""
    target = safe_target(request.form.get("suivant")) or url_for("pages.home")
    response = redirect(target, 303)
    account = current_account()
    chosen = account.commune(request.form.get("commune")) if account else None
    if chosen is not None:
        dev = current_app.extensions["portail"].settings.dev
        response.set_cookie(COMMUNE_COOKIE, chosen.slug, max_age=COMMUNE_COOKIE_SECONDS,
                            path="/", secure=not dev, httponly=True, samesite="Lax")
    return response


@pages.route("/connexion", methods=["GET", "POST"])
def login():
    form = LoginForm()
    target = safe_target(request.args.get("suivant"))
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
            # Agents and admins: the session waits for the second factor (its own pages).
            after = _second_factor_step(answer, target)
            response = redirect(after or target or url_for("pages.home"), 303)
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


def open_session(email: str, password: str, target: str) -> Response | None:
    """Log in through the gateway and send the browser on with its new session cookie.

    None when that did not work (the caller then says how to log in by hand).
    """
    try:
        answer = gateway().post("/auth/login", json={"email": email, "password": password})
    except GatewayError:
        return None
    cookies = session_set_cookies(answer) if answer.status_code == 200 else []
    if not cookies:
        log.info("session_not_opened", status=answer.status_code)
        return None
    session.clear()  # a fresh CSRF session for the new identity
    response = redirect(_second_factor_step(answer, target) or target, 303)
    for line in cookies:
        response.headers.add("Set-Cookie", line)
    return response


def _second_factor_step(answer, target: str | None) -> str | None:
    try:
        body = answer.json()
    except ValueError:
        return None
    return next_step(body, safe_target(target)) if isinstance(body, dict) else None


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
