"""Agents' pages for their commune: the families (search, create and invite, re-invite), news.

Only an agent of the current commune sees them (anyone else gets the 403 page); the
accounts service checks the same again on every call.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .account import Commune, agent_commune, agent_required
from .client import GatewayError, call
from .filters import date_fr
from .forms import MAX_CHILDREN, MAX_GUARDIANS, FamilyForm, NewsForm
from .formtools import apply_answer

agent = Blueprint("agent", __name__, url_prefix="/agent")

STATUSES = {"invited": "Invitée (compte pas encore activé)", "active": "Active",
            "disabled": "Désactivée"}


def _communes_path(commune: Commune, *rest: str) -> str:
    return "/".join(["/api/accounts/communes", quote(commune.slug, safe=""),
                     *(quote(part, safe="") for part in rest)])


@agent.get("/familles")
@agent_required
def families():
    commune = agent_commune()
    q = (request.args.get("q") or "").strip()[:200]
    cursor = request.args.get("suite") or None
    params = {key: value for key, value in (("q", q), ("cursor", cursor)) if value}
    answer = call("GET", _communes_path(commune, "families"), params=params or None)
    messages = [] if answer.ok else [answer.detail or "La recherche n'a pas abouti."]
    return render_template("agent/families.html", items=answer.items(),
                           next_cursor=answer.data.get("next"), q=q, cursor=cursor,
                           messages=messages, statuses=STATUSES), 200 if answer.ok else 422


@agent.route("/familles/nouvelle", methods=["GET", "POST"])
@agent_required
def family_new():
    commune = agent_commune()
    form = FamilyForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _family_form(form), status
    try:
        answer = call("POST", _communes_path(commune, "families"), json=form.payload())
    except GatewayError as exc:
        return _family_form(form, notice=exc.message), exc.status
    family_id = answer.data.get("id")
    if not answer.ok or not family_id:
        return _family_form(form, messages=apply_answer(form, answer, form.api_path)), 422
    flash(f"Invitation envoyée à {form.email.data}.", "success")
    return redirect(url_for("agent.family", family_id=str(family_id)), 303)


@agent.get("/familles/<family_id>")
@agent_required
def family(family_id: str):
    commune = agent_commune()
    answer = call("GET", _communes_path(commune, "families", family_id))
    return render_template("agent/family.html", family=answer.data, family_id=family_id,
                           statuses=STATUSES)


@agent.post("/familles/<family_id>/invitation")
@agent_required
def resend_invitation(family_id: str):
    commune = agent_commune()
    answer = call("POST", _communes_path(commune, "families", family_id, "invitation"),
                  json={})
    if answer.ok:
        until = date_fr(answer.data.get("expires_at"))
        flash("Invitation envoyée de nouveau" + (f" : le lien est valable jusqu'au {until}."
                                                 if until else "."), "success")
    else:
        flash(answer.detail or "L'invitation n'a pas pu être renvoyée.", "error")
    return redirect(url_for("agent.family", family_id=family_id), 303)


@agent.route("/actualites", methods=["GET", "POST"])
@agent_required
def news():
    commune = agent_commune()
    path = _communes_path(commune, "news")
    form = NewsForm()
    top: list[str] = []
    notice = None
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            answer = call("POST", path, json={"title": form.title.data, "body": form.body.data})
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        if answer is not None and answer.ok:
            flash("Actualité publiée : elle apparaît sur la page d'accueil des familles.",
                  "success")
            return redirect(url_for("agent.news"), 303)
        if answer is not None:
            top = apply_answer(form, answer)
    items: list[dict[str, Any]] | None
    try:
        listing = call("GET", path)
        items = listing.items()
    except GatewayError as exc:
        items, notice = None, notice or exc.message
    return render_template("agent/news.html", form=form, items=items, messages=top,
                           notice=notice), status


def _family_form(form: FamilyForm, **extra: Any) -> str:
    return render_template("agent/family_new.html", form=form, max_guardians=MAX_GUARDIANS,
                           max_children=MAX_CHILDREN, **extra)
