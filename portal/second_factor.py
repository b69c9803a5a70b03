"""The second factor of agents and admins (TOTP), after their password.

The gateway answers the password of such an account with a *pending* session (no agent role
yet) and says what comes next: ``totp`` (the code of the app) or ``enrolment`` (add the app
first). These pages send the code, or a recovery code, to the gateway's
``/auth/second-factor...`` and pass on the new session cookie it sets (a new id: fixation is
impossible). Each form carries its CSRF token; the portal keeps no secret and no code.
"""

from __future__ import annotations

from typing import Any

import segno
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Regexp

from .client import SESSION_COOKIE, GatewayError, gateway, json_body, session_set_cookies
from .security import safe_target

second_factor = Blueprint("second_factor", __name__)

# The demo agents' and admin's secret (README, demo section); the same as
# services/accounts/totp.py DEMO_SECRET (tests/security/test_sessions.py checks it).
DEMO_SECRET = "PORTAILDEMOTOTPJOLIEVILLEAGENTS2"
SESSION_GONE = "Votre session a expiré"  # the gateway's 401 for a dead session
EXPIRED = "Votre connexion a expiré : saisissez à nouveau votre adresse e-mail et votre mot de " \
          "passe."


class CodeForm(FlaskForm):
    code = StringField(
        "Code à 6 chiffres",
        validators=[DataRequired("Saisissez le code affiché par votre application."),
                    Regexp(r"^\s*\d{3}\s?\d{3}\s*$",
                           message="Le code comporte 6 chiffres (exemple : 123456).")],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric",
                   "spellcheck": "false"},
    )


class RecoveryForm(FlaskForm):
    recovery_code = StringField(
        "Code de secours",
        validators=[DataRequired("Saisissez l'un de vos codes de secours."),
                    Length(max=64, message="Ce code est trop long.")],
        render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "none"},
    )


def next_step(body: dict[str, Any], target: str | None) -> str | None:
    """Where the login form sends an account whose session waits for its second factor."""
    step = body.get("second_factor") if isinstance(body, dict) else None
    if step == "totp":
        return url_for("second_factor.verify", suivant=target)
    if step == "enrolment":
        return url_for("second_factor.enrol", suivant=target)
    return None


def _target() -> str | None:
    return safe_target(request.args.get("suivant"))


def _dev_hint() -> str | None:
    """In dev only: the demo accounts' current code, so `make run` needs no phone."""
    if not current_app.extensions["portail"].settings.dev:
        return None
    import pyotp

    return pyotp.TOTP(DEMO_SECRET).now()


def _to_login(message: str = EXPIRED) -> Response:
    flash(message, "error")
    return redirect(url_for("pages.login", suivant=_target()), 303)


def _logged_in(answer, target: str | None, message: str | None = None) -> Response:
    """The gateway opened the full session: its cookie replaces the pending one."""
    response = redirect(target or url_for("pages.home"), 303)
    session.clear()  # a fresh CSRF session for the new identity
    if message:  # after the clear, or it would be lost with the old session
        flash(message, "success")
    for line in session_set_cookies(answer):
        response.headers.add("Set-Cookie", line)
    return response


def _refusal(answer) -> tuple[str, int]:
    """A French sentence and the page's status for a refused code."""
    try:
        body = json_body(answer)
    except GatewayError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if answer.status_code == 429:
        seconds = answer.headers.get("Retry-After")
        wait = f" Réessayez dans {seconds} secondes." if seconds and seconds.isdigit() else ""
        return (detail or "Trop de tentatives.") + wait, 429
    return detail or "Code incorrect.", 422


def _send(path: str, payload: dict[str, str], form: FlaskForm, template: str,
          **page: Any) -> Any:
    """The gateway's 200 answer, or the page (or redirect) that explains its refusal."""
    try:
        answer = gateway().post(path, json=payload)
    except GatewayError as exc:
        return render_template(template, form=form, notice=exc.message, **page), exc.status
    if answer.status_code == 200:
        return answer
    message, status = _refusal(answer)
    # 409: the session no longer waits for a code; 401 for the session itself: it expired.
    if answer.status_code == 409 or (answer.status_code == 401
                                     and message.startswith(SESSION_GONE)):
        return _to_login()
    return render_template(template, form=form, error=message, **page), status


@second_factor.route("/connexion/verification", methods=["GET", "POST"])
def verify():
    g.plain_layout = True
    if not request.cookies.get(SESSION_COOKIE):
        return _to_login()
    form = CodeForm()
    page = {"target": _target(), "dev_code": _dev_hint()}
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("second_factor/verify.html", form=form, **page), status
    answer = _send("/auth/second-factor", {"code": form.code.data.replace(" ", "")}, form,
                   "second_factor/verify.html", **page)
    if isinstance(answer, tuple | Response):
        return answer
    return _logged_in(answer, page["target"])


@second_factor.route("/connexion/secours", methods=["GET", "POST"])
def recover():
    g.plain_layout = True
    if not request.cookies.get(SESSION_COOKIE):
        return _to_login()
    form = RecoveryForm()
    page = {"target": _target()}
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("second_factor/recover.html", form=form, **page), status
    answer = _send("/auth/second-factor", {"recovery_code": form.recovery_code.data.strip()},
                   form, "second_factor/recover.html", **page)
    if isinstance(answer, tuple | Response):
        return answer
    left = json_body(answer).get("recovery_codes_left", 0)
    return _logged_in(answer, page["target"],
                      f"Code de secours accepté. Il vous en reste {left}. Si vous avez perdu "
                      "votre téléphone, demandez à un administrateur de réinitialiser votre "
                      "double authentification.")


@second_factor.route("/connexion/double-authentification", methods=["GET", "POST"])
def enrol():
    """Add the app (QR code or key), then confirm with its first code; the recovery codes are
    shown once, on the page that follows."""
    g.plain_layout = True
    if not request.cookies.get(SESSION_COOKIE):
        return _to_login()
    try:
        started = gateway().post("/auth/second-factor/enrolment")
    except GatewayError as exc:
        return render_template("second_factor/enrol.html", form=CodeForm(), notice=exc.message,
                               secret=None, target=_target()), exc.status
    if started.status_code == 409:  # already configured: the code of the app is asked
        return redirect(url_for("second_factor.verify", suivant=_target()), 303)
    if started.status_code != 200:
        return _to_login()
    body = json_body(started)
    secret, uri = str(body["secret"]), str(body["otpauth_uri"])
    page = {"target": _target(), "secret": " ".join(secret[i:i + 4]
                                                    for i in range(0, len(secret), 4)),
            "qr": Markup(segno.make(uri, error="m").svg_inline(
                scale=5, title="QR code à scanner avec votre application")),
            "uri": uri}
    form = CodeForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("second_factor/enrol.html", form=form, **page), status
    answer = _send("/auth/second-factor/enrolment/confirm",
                   {"code": form.code.data.replace(" ", "")}, form,
                   "second_factor/enrol.html", **page)
    if isinstance(answer, tuple | Response):
        return answer
    codes = json_body(answer).get("recovery_codes") or []
    response = Response(render_template("second_factor/recovery_codes.html", codes=codes,
                                        target=page["target"] or url_for("pages.home")))
    session.clear()
    for line in session_set_cookies(answer):
        response.headers.add("Set-Cookie", line)
    response.headers["Cache-Control"] = "no-store"
    return response
