"""``/profil``: the household, its guardians' contact details, the password, the communes.

What needs a proof (an address, an allergy) is read-only here: it changes through a request
to the town hall ("Mes demandes"), which an agent applies.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from .account import current_account, login_required
from .client import GatewayError, call
from .forms import PASSWORD_HINT, ChangePasswordForm, GuardianForm, JoinCommuneForm
from .formtools import apply_answer

profile = Blueprint("profile", __name__, url_prefix="/profil")

FAMILY = "/api/accounts/me/family"
PASSWORD = "/api/accounts/me/password"
COMMUNES = "/api/accounts/me/communes"

# What PATCH /me/family takes back of a guardian (what GET gives beyond that stays out).
GUARDIAN_FIELDS = ("id", "first_name", "last_name", "relation", "email", "phones", "pays")


@profile.get("")
@login_required
def index():
    account = current_account()
    family = _family() if account and account.family_id else None
    return render_template("profile/index.html", family=family)


@profile.route("/responsables/<guardian_id>", methods=["GET", "POST"])
@login_required
def guardian(guardian_id: str):
    family = _family_of_parent()
    guardians = [g for g in family.get("guardians") or () if isinstance(g, dict)]
    index = next((i for i, g in enumerate(guardians) if str(g.get("id")) == guardian_id), None)
    if index is None:
        abort(404)
    current = guardians[index]
    phones = [p for p in current.get("phones") or () if isinstance(p, str)]
    form = GuardianForm(data={
        "first_name": current.get("first_name"), "last_name": current.get("last_name"),
        "relation": current.get("relation"), "email": current.get("email"),
        "phone1": phones[0] if phones else "", "phone2": phones[1] if len(phones) > 1 else "",
        "pays": bool(current.get("pays")),
    })
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _guardian_page(form, current), status
    edited = {
        **_writable(current),
        "first_name": form.first_name.data,
        "last_name": form.last_name.data,
        "relation": form.relation.data or None,
        "email": form.email.data or None,
        "phones": [p for p in (form.phone1.data, form.phone2.data) if p] + phones[2:],
        "pays": bool(form.pays.data),
    }
    payload: dict[str, Any] = {"guardians": [_writable(g) for g in guardians]}
    payload["guardians"][index] = edited
    if isinstance(family.get("version"), int):
        # The household as it was read: an edit made meanwhile elsewhere answers 409.
        payload["version"] = family["version"]
    try:
        answer = call("PATCH", FAMILY, json=payload)
    except GatewayError as exc:
        return _guardian_page(form, current, notice=exc.message), exc.status
    if not answer.ok:
        top = apply_answer(form, answer, lambda key: _guardian_field(key, index))
        return _guardian_page(form, current, messages=top), 422
    flash(f"Les coordonnées de {form.first_name.data} {form.last_name.data} "
          "ont été enregistrées.", "success")
    return redirect(url_for("profile.index"), 303)


@profile.route("/mot-de-passe", methods=["GET", "POST"])
@login_required
def password():
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _password_page(form), status
    body = {"current_password": form.current_password.data,
            "new_password": form.new_password.data}
    try:
        # 403 is the service's "wrong current password" if it says so that way.
        answer = call("POST", PASSWORD, json=body, accept=(403,))
    except GatewayError as exc:
        return _password_page(form, notice=exc.message), exc.status
    if not answer.ok:
        rename = {"current_password": "current_password", "new_password": "new_password",
                  "password": "new_password"}.get
        return _password_page(form, messages=apply_answer(form, answer, rename)), 422
    flash("Votre mot de passe a été modifié. Vos autres sessions ont été fermées.", "success")
    return redirect(url_for("profile.index"), 303)


@profile.route("/communes", methods=["GET", "POST"])
@login_required
def communes():
    _require_household()
    form = JoinCommuneForm()
    top: list[str] = []
    notice = None
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        body = {"commune": form.commune.data, "family_code": form.family_code.data}
        try:
            # 404: no such commune or code, which is the person's typing, not a missing page.
            answer = call("POST", COMMUNES, json=body, accept=(403, 404))
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        if answer is not None and answer.ok:
            name = answer.data.get("name") or form.commune.data
            flash(f"Votre foyer a rejoint {name}. Choisissez-la dans le sélecteur de commune "
                  "en haut de page.", "success")
            return redirect(url_for("profile.communes"), 303)
        if answer is not None:
            if answer.status == 404 and not answer.errors:
                form.family_code.errors = [
                    *form.family_code.errors,
                    answer.detail or "Collectivité ou code famille inconnu : vérifiez-les sur "
                                     "le courrier de votre mairie."]
            else:
                top = apply_answer(form, answer, {"commune": "commune", "slug": "commune",
                                                  "family_code": "family_code"}.get)
    try:
        listing = call("GET", COMMUNES)
        items = listing.items() if listing.ok else []
    except GatewayError as exc:
        items, notice = None, notice or exc.message
        status = status if status != 200 else exc.status
    return render_template("profile/communes.html", form=form, items=items, messages=top,
                           notice=notice), status


def _family() -> dict[str, Any]:
    answer = call("GET", FAMILY)
    if not answer.ok or not isinstance(answer.body, dict):
        raise GatewayError("Les informations de votre foyer ne sont pas disponibles. "
                           "Réessayez dans quelques instants.", 502)
    return answer.data


def _require_household() -> None:
    account = current_account()
    if account is None or not account.family_id:
        abort(404)


def _family_of_parent() -> dict[str, Any]:
    _require_household()
    return _family()


def _writable(guardian: dict[str, Any]) -> dict[str, Any]:
    return {k: guardian[k] for k in GUARDIAN_FIELDS if k in guardian}


def _guardian_field(key: str, index: int) -> str | None:
    """``guardians.<index>.phones.1`` → ``phone2``; other guardians' errors go on top."""
    parts = key.split(".")
    if len(parts) < 3 or parts[0] != "guardians" or parts[1] != str(index):
        return None
    if parts[2] == "phones":
        return "phone2" if len(parts) > 3 and parts[3] == "1" else "phone1"
    return parts[2]


def _guardian_page(form: GuardianForm, guardian: dict[str, Any], **extra: Any) -> str:
    return render_template("profile/guardian.html", form=form, guardian=guardian, **extra)


def _password_page(form: ChangePasswordForm, **extra: Any) -> str:
    return render_template("profile/password.html", form=form, password_hint=PASSWORD_HINT,
                           **extra)
