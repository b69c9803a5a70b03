"""GDPR pages (issue 8): « Mes données » for families (archive, erasure request), the agents'
erasure requests, and the access log of the commune's data-protection officer.

Like every page, a client of the public API: the archive link is the API's own
``/api/accounts/me/export`` (the gateway's session cookie opens it); forms carry the CSRF
token; the accounts service checks every right again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

try:  # wtforms 3.2+: choices as SelectChoice (tuples are deprecated)
    from wtforms.fields.choices import SelectChoice
except ImportError:  # pragma: no cover - older wtforms
    def SelectChoice(value: str, label: str) -> tuple[str, str]:  # type: ignore[no-redef] # noqa: N802
        return (value, label)

from .account import Commune, agent_commune, agent_required, current_account, login_required
from .client import GatewayError, call

privacy = Blueprint("privacy", __name__)

EXPORT = "/api/accounts/me/export"
ERASURE = "/api/accounts/me/erasure"
STATUSES = {"pending": "En cours d'examen par la mairie", "refused": "Refusée",
            "completed": "Effectuée : les données ont été supprimées"}
DECISIONS = {None: "En attente", "accepted": "Acceptée", "refused": "Refusée"}
ACTIONS = {
    "family.read": "Fiche du foyer consultée",
    "request.read": "Demande consultée",
    "document.download": "Document téléchargé",
    "invoices.list": "Factures du foyer consultées",
    "invoice.read": "Facture consultée",
    "invoice.pdf": "Facture téléchargée (PDF)",
    "credit_notes.list": "Avoirs du foyer consultés",
    "bookings.list": "Réservations d'un enfant consultées",
    "calendar.read": "Calendrier d'un enfant consulté",
}


class ErasureAskForm(FlaskForm):
    reason = TextAreaField("Motif (facultatif)", filters=[lambda v: (v or "").strip()],
                           validators=[Optional(), Length(max=2000,
                                                          message="Au plus 2000 caractères.")],
                           render_kw={"rows": 4})
    confirm = BooleanField(
        "Je comprends que la suppression est définitive : mon compte sera fermé et les "
        "données de mon foyer effacées, sauf les factures et paiements que la commune doit "
        "conserver dix ans.",
        validators=[DataRequired("Cochez la case pour confirmer votre demande.")])


class ErasureDecisionForm(FlaskForm):
    decision = RadioField("Décision", choices=[SelectChoice("accept", "Accepter la suppression"),
                                               SelectChoice("refuse", "Refuser")],
                          validators=[DataRequired("Choisissez une décision.")])
    reason = TextAreaField("Raison (obligatoire en cas de refus, transmise à la famille)",
                           filters=[lambda v: (v or "").strip()],
                           validators=[Length(max=2000, message="Au plus 2000 caractères.")],
                           render_kw={"rows": 4})

    def validate_reason(self, field) -> None:
        if self.decision.data == "refuse" and not field.data:
            raise ValidationError("Indiquez à la famille la raison du refus.")


def _commune_path(commune: Commune, *rest: str) -> str:
    return "/".join(["/api/accounts/communes", quote(commune.slug, safe=""),
                     *(quote(part, safe="") for part in rest)])


# --- families: « Mes données » ---------------------------------------------------------------
@privacy.route("/mes-donnees", methods=["GET", "POST"])
@login_required
def my_data():
    account = current_account()
    if account is None or not account.family_id:
        abort(404)
    form = ErasureAskForm()
    status, notice, messages = 200, None, []
    if form.validate_on_submit():
        try:
            answer = call("POST", ERASURE, json={"reason": form.reason.data or None})
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        if answer is not None and answer.ok:
            flash("Votre demande de suppression est envoyée : la mairie l'examinera et vous "
                  "verrez sa réponse sur cette page.", "success")
            return redirect(url_for("privacy.my_data"), 303)
        if answer is not None:
            messages, status = [answer.detail or "La demande n'a pas abouti."], 422
    elif form.is_submitted():
        status = 422
    state: dict[str, Any] | None = None
    try:
        found = call("GET", ERASURE)
        state = found.data if found.ok else None
    except GatewayError as exc:
        notice = notice or exc.message
    return render_template("privacy/my_data.html", form=form, state=state, notice=notice,
                           messages=messages, export_url=EXPORT, statuses=STATUSES,
                           decisions=DECISIONS), status


# --- agents: erasure requests ------------------------------------------------------------------
@privacy.get("/agent/suppressions")
@agent_required
def erasures():
    commune = agent_commune()
    status = request.args.get("statut", "pending")
    status = status if status in STATUSES or status == "tous" else "pending"
    params = None if status == "tous" else {"status": status}
    answer = call("GET", _commune_path(commune, "erasure-requests"), params=params)
    return render_template("privacy/erasures.html", items=answer.items(), status=status,
                           statuses=STATUSES)


@privacy.route("/agent/suppressions/<request_id>", methods=["GET", "POST"])
@agent_required
def erasure(request_id: str):
    commune = agent_commune()
    path = _commune_path(commune, "erasure-requests", request_id)
    form = ErasureDecisionForm()
    status, notice, messages = 200, None, []
    if form.validate_on_submit():
        body = {"accept": form.decision.data == "accept", "reason": form.reason.data or None}
        try:
            answer = call("POST", f"{path}/decision", json=body)
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        if answer is not None and answer.ok:
            done = answer.data.get("status")
            flash("Suppression effectuée dans tous les services." if done == "completed"
                  else "Demande refusée : la famille verra votre raison." if done == "refused"
                  else "Décision enregistrée : les autres communes du foyer doivent aussi "
                       "l'accepter.", "success")
            return redirect(url_for("privacy.erasure", request_id=request_id), 303)
        if answer is not None:
            messages, status = [answer.detail or "La décision n'a pas abouti."], 422
    elif form.is_submitted():
        status = 422
    item = call("GET", path).data
    return render_template("privacy/erasure.html", form=form, item=item, notice=notice,
                           messages=messages, statuses=STATUSES,
                           decisions=DECISIONS), status


# --- the data-protection officer: the access log -------------------------------------------------
@privacy.get("/agent/journal-des-acces")
@agent_required
def audit():
    commune = agent_commune()
    if "dpo" not in commune.roles:
        abort(403)
    filters = {key: (request.args.get(key) or "").strip()[:254]
               for key in ("agent", "foyer", "du", "au")}
    params = {api: filters[key] for key, api in (("agent", "account"), ("foyer", "family_id"),
                                                 ("du", "from"), ("au", "to")) if filters[key]}
    cursor = request.args.get("suite") or None
    if cursor:
        params["cursor"] = cursor
    answer = call("GET", _commune_path(commune, "audit"), params=params or None)
    messages = [] if answer.ok else [answer.detail or "Le journal ne peut pas être affiché."]
    for errors in (answer.errors or {}).values():
        messages.extend(errors)
    return render_template("privacy/audit.html", items=answer.items(), filters=filters,
                           next_cursor=answer.data.get("next"), cursor=cursor,
                           messages=messages, actions=ACTIONS), 200 if answer.ok else 422
