"""Getting in without a password: account activation and password reset, by e-mailed link.

Both links carry a single-use token the accounts service checks (``GET .../{token}``) before
the form is shown and again when it is sent. An expired or used link says so in French and
offers a new one; an unknown one is a 404 page. A password is never sent back to the browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from .client import Answer, GatewayError, call
from .forms import PASSWORD_HINT, NewPasswordForm, ResetRequestForm
from .formtools import RATE_LIMITED, apply_answer
from .views import open_session

access = Blueprint("access", __name__)

ACTIVATION = "/api/accounts/activation"
RESET = "/api/accounts/password-reset"

RESET_SENT = ("Si un compte existe pour cette adresse, un e-mail vient de lui être envoyé avec "
              "un lien pour choisir un nouveau mot de passe. Ce lien est valable une heure. "
              "Pensez à regarder dans les courriers indésirables.")
RENEW_SENT = ("Si ce lien correspond à un compte qui n'est pas encore activé, un nouveau lien "
              "d'activation vient d'être envoyé à l'adresse e-mail du foyer. Il remplace "
              "les précédents.")


def _password_errors(key: str) -> str | None:
    return "password" if key in ("password", "new_password") else None


# --- Activation -----------------------------------------------------------------------------


@access.get("/activation")
def activation_by_query():
    """Links written as ``/activation?token=…`` lead to the same page."""
    token = request.args.get("token") or request.args.get("jeton")
    if not token:
        abort(404)
    return redirect(url_for("access.activation", token=token), 302)


@access.route("/activation/<token>", methods=["GET", "POST"])
def activation(token: str):
    check = _check(f"{ACTIVATION}/{quote(token, safe='')}")
    if check.status == 404:
        return _unknown_link("activation"), 404
    if check.status == 410:
        return _link_gone("activation", token, check), 410
    household = check.data
    form = NewPasswordForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _activation_page(form, token, household), status
    password = form.password.data
    try:
        answer = call("POST", ACTIVATION, json={"token": token, "password": password})
    except GatewayError as exc:
        return _activation_page(form, token, household, notice=exc.message), exc.status
    if answer.status == 410:
        return _link_gone("activation", token, answer), 410
    if not answer.ok:
        top = apply_answer(form, answer, _password_errors)
        return _activation_page(form, token, household, messages=top), 422
    email = answer.data.get("email") or household.get("email")
    welcome = open_session(email, password, url_for("pages.home")) if email else None
    if welcome is not None:
        flash("Votre compte est activé. Bienvenue sur le Portail Famille !", "success")
        return welcome
    return render_template("access/activated.html", email=email)


@access.post("/activation/<token>/nouveau-lien")
def activation_renew(token: str):
    # 202 whatever the token: the answer must not tell whether a link was real.
    call("POST", f"{ACTIVATION}/renew", json={"token": token}, accept=(403, 404))
    return render_template("access/sent.html", title="Nouveau lien demandé", text=RENEW_SENT)


def _activation_page(form: NewPasswordForm, token: str, household: dict[str, Any],
                     **extra: Any) -> str:
    return render_template("access/activation.html", form=form, token=token,
                           household=household, password_hint=PASSWORD_HINT, **extra)


# --- Password reset -------------------------------------------------------------------------


@access.route("/mot-de-passe/oublie", methods=["GET", "POST"])
def forgotten():
    form = ResetRequestForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("access/forgotten.html", form=form), status
    try:
        answer = call("POST", RESET, json={"email": form.email.data}, accept=(403, 404))
    except GatewayError as exc:
        return render_template("access/forgotten.html", form=form, notice=exc.message), \
            exc.status
    if answer.status == 429:
        top = [answer.detail or RATE_LIMITED]
        return render_template("access/forgotten.html", form=form, messages=top), 429
    # Whatever else the service said, the same words: nobody learns whether an address is
    # registered.
    return render_template("access/sent.html", title="Demande envoyée", text=RESET_SENT)


@access.get("/mot-de-passe/reinitialiser")
def reset_by_query():
    token = request.args.get("token") or request.args.get("jeton")
    if not token:
        abort(404)
    return redirect(url_for("access.reset", token=token), 302)


@access.route("/mot-de-passe/reinitialiser/<token>", methods=["GET", "POST"])
def reset(token: str):
    check = _check(f"{RESET}/{quote(token, safe='')}")
    if check.status == 404:
        return _unknown_link("reset"), 404
    if check.status == 410:
        return _link_gone("reset", token, check), 410
    email = check.data.get("email")
    form = NewPasswordForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _reset_page(form, email), status
    password = form.password.data
    try:
        answer = call("POST", f"{RESET}/confirm", json={"token": token, "password": password})
    except GatewayError as exc:
        return _reset_page(form, email, notice=exc.message), exc.status
    if answer.status == 410:
        return _link_gone("reset", token, answer), 410
    if not answer.ok:
        return _reset_page(form, email, messages=apply_answer(form, answer, _password_errors)), \
            422
    welcome = open_session(email, password, url_for("pages.home")) if email else None
    if welcome is not None:
        flash("Votre mot de passe a été modifié. Vous êtes connecté.", "success")
        return welcome
    flash("Votre mot de passe a été modifié. Connectez-vous avec le nouveau.", "success")
    return redirect(url_for("pages.login"), 303)


def _reset_page(form: NewPasswordForm, email: str | None, **extra: Any) -> str:
    return render_template("access/reset.html", form=form, email=email,
                           password_hint=PASSWORD_HINT, **extra)


# --- Both -----------------------------------------------------------------------------------


def _check(path: str) -> Answer:
    """The token's check: valid (200), gone (410) or unknown (404, any other refusal)."""
    answer = call("GET", path, accept=(403, 404))
    if answer.status == 410 or (answer.ok and isinstance(answer.body, dict)):
        return answer
    if 400 <= answer.status < 500:
        return Answer(404, answer.body)
    raise GatewayError("Les services du portail ont renvoyé une réponse inattendue. "
                       "Réessayez dans quelques instants.", 502)


def _unknown_link(kind: str) -> str:
    """404: no such link; most often an address cut in two by the e-mail program."""
    return render_template("access/link_unknown.html", kind=kind)


def _link_gone(kind: str, token: str, answer: Answer) -> str:
    """410: the link expired or was already used; say which, and offer a new one."""
    data = answer.data
    reason = next((v for v in (data.get("status"), data.get("reason"), data.get("code"))
                   if v in ("expired", "used")), None)
    return render_template("access/link_gone.html", kind=kind, token=token, reason=reason,
                           detail=answer.detail)
