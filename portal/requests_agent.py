"""Agents' pages of « Demandes » for their commune: the queue, a request and what can be done
with it, the categories.

Only an agent of the current commune sees them (anyone else gets the 403 page); the requests
service checks the same again on every call. A request's page holds several small forms
(status, question to the family, assignment, message, the household's record); each posts to
its own address, and a refused one brings the page back with its errors in place.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from .account import Commune, agent_commune, agent_required
from .client import Answer, GatewayError, call
from .formtools import apply_answer
from .requests_forms import (
    AGENT_STATUS_LABELS,
    FIELD_TYPES,
    FILE_TYPES,
    KIND_HINTS,
    KINDS,
    MAX_DOCUMENT_ROWS,
    MAX_DOCUMENTS,
    MAX_FIELD_ROWS,
    MAX_FIELDS,
    ApplyAddressForm,
    ApplyAllergyForm,
    AssignForm,
    QuestionForm,
    TransitionForm,
    category_data,
    category_form,
    choice_label,
    choices,
)
from .requests_pages import (
    NOT_READ,
    Control,
    chosen_files,
    documents_by_id,
    extra_files_control,
    limit_uploads,
    place_errors,
    refusal_status,
    requests_path,
    send_multipart,
    status_text,
    summary_items,
    too_large_page,
)

requests_agent = Blueprint("requests_agent", __name__, url_prefix="/agent")

OPEN_STATUSES = "submitted,in_progress,waiting_for_family"
STATUS_FILTERS: dict[str, tuple[str, str | None]] = {
    "a-traiter": ("À traiter (nouvelles, en cours, en attente de la famille)", OPEN_STATUSES),
    **{code: (label[0].upper() + label[1:], code) for code, label in AGENT_STATUS_LABELS.items()},
    "toutes": ("Tous les statuts", None),
}
ASSIGNED_FILTERS: dict[str, tuple[str, str | None]] = {
    "": ("Toutes", None),
    "moi": ("Confiées à moi", "me"),
    "personne": ("Confiées à personne", "none"),
}
APPLY_KINDS = ("address_change", "allergy")
ADDRESS_FIELDS = ("line1", "line2", "postal_code", "city")

requests_agent.before_app_request(limit_uploads("requests_agent.reply"))


def _family_path(commune: Commune, family_id: str) -> str:
    return "/".join(["/api/accounts/communes", quote(commune.slug, safe=""), "families",
                     quote(family_id, safe="")])


def _label(status: str) -> str:
    return AGENT_STATUS_LABELS.get(status, status)


# --- the queue -------------------------------------------------------------------------------


@requests_agent.get("/demandes")
@agent_required
def queue():
    commune = agent_commune()
    statut = request.args.get("statut") or "a-traiter"
    statut = statut if statut in STATUS_FILTERS else "a-traiter"
    attribution = request.args.get("attribution") or ""
    attribution = attribution if attribution in ASSIGNED_FILTERS else ""
    categorie = (request.args.get("categorie") or "").strip()[:64]
    cursor = request.args.get("suite") or None
    params = {key: value for key, value in (
        ("status", STATUS_FILTERS[statut][1]), ("category", categorie),
        ("assigned", ASSIGNED_FILTERS[attribution][1]), ("cursor", cursor)) if value}
    answer = call("GET", requests_path(commune, "requests"), params=params, accept=(404,))
    listing = call("GET", requests_path(commune, "categories"), params={"all": "true"},
                   accept=(404,))
    messages = [] if answer.ok else [answer.detail or "La liste des demandes n'a pas pu être "
                                                      "affichée."]
    filters = {"statut": statut, "categorie": categorie or None,
               "attribution": attribution or None}
    return render_template(
        "agent/requests/queue.html", items=answer.items(), messages=messages,
        next_cursor=answer.data.get("next"), cursor=cursor, filters=filters,
        categories=listing.items(), status_filters=STATUS_FILTERS,
        assigned_filters=ASSIGNED_FILTERS, status_text=status_text), \
        200 if answer.ok else 422


# --- one request -----------------------------------------------------------------------------


def _request(commune: Commune, request_id: str) -> dict[str, Any]:
    answer = call("GET", requests_path(commune, "requests", request_id))
    if not isinstance(answer.body, dict):
        abort(404)
    return answer.data


def _allowed(item: dict[str, Any]) -> list[str]:
    return [s for s in item.get("allowed_transitions") or [] if isinstance(s, str)]


def _status_choices(allowed: list[str]) -> list[Any]:
    return choices([("", "Choisissez"), *((s, _label(s)) for s in allowed)])


def _transition_form(item: dict[str, Any], posted: bool = False) -> TransitionForm:
    form = TransitionForm(prefix="statut") if posted else TransitionForm(formdata=None,
                                                                        prefix="statut")
    form.status.choices = _status_choices(_allowed(item))
    return form


def _agents(commune: Commune) -> list[dict[str, Any]]:
    answer = call("GET", requests_path(commune, "agents"), accept=(404,))
    return [a for a in answer.items() if a.get("account_id")]


def _assign_form(commune: Commune, item: dict[str, Any], posted: bool = False) -> AssignForm:
    current = (item.get("assigned_to") or {}).get("account_id") or ""
    form = (AssignForm(prefix="attribution") if posted
            else AssignForm(formdata=None, prefix="attribution", data={"agent": current}))
    agents = [(str(a["account_id"]), str(a.get("email") or a["account_id"]))
              for a in _agents(commune)]
    if current and current not in [value for value, _ in agents]:
        email = (item.get("assigned_to") or {}).get("email") or "agent actuel"
        agents.append((current, email))
    form.agent.choices = choices([("", "Personne"), *agents])
    return form


def _answers(item: dict[str, Any]) -> dict[str, Any]:
    return {str(f.get("name")): f.get("value") for f in item.get("fields") or []
            if isinstance(f, dict)}


def _children(item: dict[str, Any]) -> list[dict[str, Any]]:
    household = item.get("household") or {}
    return [c for c in household.get("children") or [] if isinstance(c, dict) and c.get("id")]


def _apply_form(item: dict[str, Any], posted: bool = False):
    """The form that writes an accepted change into the household's record, or None."""
    kind = (item.get("category") or {}).get("kind")
    if item.get("status") != "accepted" or kind not in APPLY_KINDS:
        return None
    values = _answers(item)
    if kind == "address_change":
        data = {name: values.get(name) or "" for name in ADDRESS_FIELDS}
        return (ApplyAddressForm(prefix="dossier") if posted
                else ApplyAddressForm(formdata=None, prefix="dossier", data=data))
    data = {"child": str(values.get("child") or ""), "allergies": True,
            "notes": str(values.get("notes") or "")}
    form = (ApplyAllergyForm(prefix="dossier") if posted
            else ApplyAllergyForm(formdata=None, prefix="dossier", data=data))
    form.child.choices = choices([("", "Choisissez"), *(
        (str(c["id"]), f"{c.get('first_name', '')} {c.get('last_name', '')}".strip())
        for c in _children(item))])
    return form


def _reply_controls(body: str = "") -> list[Control]:
    return [Control("textarea", "message-body", "body", "Message à la famille", value=body,
                    hints=["La famille le reçoit par e-mail et le lit sur sa demande."]),
            extra_files_control("message-")]


def _detail_page(commune: Commune, request_id: str, *, item: dict[str, Any] | None = None,
                 status: int = 200, transition: TransitionForm | None = None,
                 question: QuestionForm | None = None, assign: AssignForm | None = None,
                 apply: Any = None, reply: list[Control] | None = None,
                 messages: dict[str, list[str]] | None = None, notice: str | None = None):
    """The request's page; a form given here is the one sent, with its errors."""
    item = item or _request(commune, request_id)
    messages = messages or {}
    allowed = _allowed(item)
    if transition is None:
        transition = _transition_form(item)
    else:  # what the request can go to now, which may have changed meanwhile
        transition.status.choices = _status_choices(allowed)
    if question is None and "waiting_for_family" in allowed:
        question = QuestionForm(formdata=None, prefix="question")
    if assign is None:
        assign = _assign_form(commune, item)
    if apply is None:
        apply = _apply_form(item)
    if reply is None:
        reply = _reply_controls()
    failed = (any(messages.values())
              or any(f is not None and f.errors for f in (transition, question, assign, apply))
              or any(c.errors for c in reply))
    return render_template(
        "agent/requests/detail.html", item=item, request_id=request_id, allowed=allowed,
        transition=transition, question=question, assign=assign, apply=apply, reply=reply,
        reply_items=summary_items(reply), messages=messages, failed=failed, notice=notice,
        documents=documents_by_id(commune, item), status_label=status_text(item, agent=True),
        labels=AGENT_STATUS_LABELS, kinds=KINDS), status


@requests_agent.get("/demandes/<request_id>")
@agent_required
def detail(request_id: str):
    return _detail_page(agent_commune(), request_id)


def _refused(answer: Answer) -> int:
    return 409 if answer.status == 409 else 422


@requests_agent.post("/demandes/<request_id>/statut")
@agent_required
def transition(request_id: str):
    commune = agent_commune()
    item = _request(commune, request_id)
    form = _transition_form(item, posted=True)
    if not form.validate():
        return _detail_page(commune, request_id, item=item, transition=form, status=422)
    target = form.status.data
    body = {"status": target, "message": form.message.data or None}
    try:
        answer = call("POST", requests_path(commune, "requests", request_id, "transition"),
                      json=body)
    except GatewayError as exc:
        return _detail_page(commune, request_id, item=item, transition=form,
                            notice=exc.message, status=exc.status)
    if answer.ok:
        flash(f"La demande est maintenant « {_label(target)} ». La famille en est prévenue "
              "par e-mail.", "success")
        return redirect(url_for("requests_agent.detail", request_id=request_id), 303)
    # 409: the category does not go there from the current status (maybe changed meanwhile):
    # the page comes back with what the request can go to now, and the service's words.
    top = apply_answer(form, answer, {"status": "status", "message": "message"}.get)
    return _detail_page(commune, request_id, transition=form,
                        messages={"transition": top}, status=_refused(answer))


@requests_agent.post("/demandes/<request_id>/question")
@agent_required
def ask(request_id: str):
    commune = agent_commune()
    form = QuestionForm(prefix="question")
    if not form.validate():
        return _detail_page(commune, request_id, question=form, status=422)
    body = {"status": "waiting_for_family", "message": form.message.data}
    try:
        answer = call("POST", requests_path(commune, "requests", request_id, "transition"),
                      json=body)
    except GatewayError as exc:
        return _detail_page(commune, request_id, question=form, notice=exc.message,
                            status=exc.status)
    if answer.ok:
        flash("Votre question a été envoyée à la famille : la demande est « en attente de la "
              "famille » jusqu'à sa réponse.", "success")
        return redirect(url_for("requests_agent.detail", request_id=request_id), 303)
    top = apply_answer(form, answer, {"message": "message"}.get)
    return _detail_page(commune, request_id, question=form, messages={"question": top},
                        status=_refused(answer))


@requests_agent.post("/demandes/<request_id>/attribution")
@agent_required
def assign(request_id: str):
    commune = agent_commune()
    item = _request(commune, request_id)
    form = _assign_form(commune, item, posted=True)
    if not form.validate():
        return _detail_page(commune, request_id, item=item, assign=form, status=422)
    chosen = form.agent.data or None
    try:
        answer = call("POST", requests_path(commune, "requests", request_id, "assign"),
                      json={"agent_account_id": chosen})
    except GatewayError as exc:
        return _detail_page(commune, request_id, item=item, assign=form, notice=exc.message,
                            status=exc.status)
    if answer.ok:
        who = choice_label(form.agent, chosen or "") or ""
        flash(f"Demande confiée à {who}." if chosen
              else "La demande n'est plus confiée à personne.", "success")
        return redirect(url_for("requests_agent.detail", request_id=request_id), 303)
    top = apply_answer(form, answer, {"agent_account_id": "agent"}.get)
    return _detail_page(commune, request_id, assign=form, messages={"assign": top},
                        status=_refused(answer))


@requests_agent.post("/demandes/<request_id>/message")
@agent_required
def reply(request_id: str):
    commune = agent_commune()
    body = request.form.get("body", "")
    files: dict[str, list[FileStorage]] = chosen_files(["documents"])
    controls = _reply_controls(body)
    try:
        answer = send_multipart(requests_path(commune, "requests", request_id, "messages"),
                                [("body", body)], files)
    except GatewayError as exc:
        place_errors(controls, None, files)
        return _detail_page(commune, request_id, reply=controls, notice=exc.message,
                            status=exc.status)
    if answer.ok:
        flash("Votre message a été envoyé à la famille.", "success")
        return redirect(url_for("requests_agent.detail", request_id=request_id) + "#echanges",
                        303)
    top = place_errors(controls, answer, files)
    return _detail_page(commune, request_id, reply=controls, messages={"reply": top},
                        status=refusal_status(answer))


@requests_agent.post("/demandes/<request_id>/dossier")
@agent_required
def apply_to_household(request_id: str):
    """Write the accepted address or allergy into the household's record (accounts)."""
    commune = agent_commune()
    item = _request(commune, request_id)
    form = _apply_form(item, posted=True)
    if form is None:
        flash("Seule une demande acceptée de changement d'adresse ou d'allergie s'applique au "
              "dossier de la famille.", "error")
        return redirect(url_for("requests_agent.detail", request_id=request_id), 303)
    if not form.validate():
        return _detail_page(commune, request_id, item=item, apply=form, status=422)
    family_id = str(item.get("family_id") or (item.get("household") or {}).get("family_id")
                    or "")
    if not family_id:
        abort(404)
    try:
        answer = call("PATCH", _family_path(commune, family_id), json=form.payload(),
                      accept=(404,))
    except GatewayError as exc:
        return _detail_page(commune, request_id, item=item, apply=form, notice=exc.message,
                            status=exc.status)
    if answer.ok:
        flash(_applied(answer.data, form), "success")
        return redirect(url_for("requests_agent.detail", request_id=request_id) + "#dossier",
                        303)
    top = apply_answer(form, answer, form.api_path)
    return _detail_page(commune, request_id, item=item, apply=form, messages={"apply": top},
                        status=_refused(answer))


def _applied(household: dict[str, Any], form: Any) -> str:
    """What the record says now, from the accounts service's answer."""
    name = household.get("family_name") or "de la famille"
    head = f"Dossier de la famille {name} mis à jour"
    if isinstance(form, ApplyAddressForm):
        address = household.get("address")
        if isinstance(address, dict):
            parts = [address.get("line1"), address.get("line2"),
                     f"{address.get('postal_code') or ''} {address.get('city') or ''}".strip()]
            return f"{head}. Adresse enregistrée : {', '.join(p for p in parts if p)}."
        return f"{head}."
    child = next((c for c in household.get("children") or []
                  if isinstance(c, dict) and str(c.get("id")) == form.child.data), None)
    if child is None:
        return f"{head}."
    state = "oui" if child.get("allergies") else "non"
    notes = child.get("allergy_notes")
    return (f"{head}. {child.get('first_name', '')} {child.get('last_name', '')} : "
            f"allergie / PAI {state}" + (f" ({notes})." if notes else "."))


@requests_agent.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge):
    args = request.view_args or {}
    return too_large_page(lambda: _detail_page(
        agent_commune(), args["request_id"], messages={"reply": [NOT_READ]}, status=413))


# --- categories ------------------------------------------------------------------------------


@requests_agent.get("/categories")
@agent_required
def categories():
    commune = agent_commune()
    answer = call("GET", requests_path(commune, "categories"), params={"all": "true"},
                  accept=(404,))
    return render_template("agent/requests/categories.html", items=answer.items(),
                           offered=answer.ok, kinds=KINDS, not_offered=answer.detail)


def _category_page(form: Any, category: dict[str, Any] | None, **extra: Any) -> str:
    return render_template("agent/requests/category.html", form=form, category=category,
                           kinds=KINDS, kind_hints=KIND_HINTS, field_types=FIELD_TYPES,
                           file_types=FILE_TYPES, **extra)


@requests_agent.route("/categories/nouvelle", methods=["GET", "POST"])
@agent_required
def category_new():
    commune = agent_commune()
    form = category_form()()
    if not form.validate_on_submit():
        return _category_page(form, None), 422 if form.is_submitted() else 200
    try:
        answer = call("POST", requests_path(commune, "categories"), json=form.payload())
    except GatewayError as exc:
        return _category_page(form, None, notice=exc.message), exc.status
    if answer.ok:
        flash(f"La catégorie « {form.label.data} » est créée"
              + (" et proposée aux familles." if form.active.data else "."), "success")
        return redirect(url_for("requests_agent.categories"), 303)
    return _category_page(form, None, messages=apply_answer(form, answer, form.api_path)), \
        _refused(answer)


@requests_agent.route("/categories/<category_id>", methods=["GET", "POST"])
@agent_required
def category_edit(category_id: str):
    commune = agent_commune()
    category = call("GET", requests_path(commune, "categories", category_id)).data
    data = category_data(category)
    # Every field of the category, and room for one more.
    form_class = category_form(min(MAX_FIELDS, max(MAX_FIELD_ROWS, len(data["fields"]) + 1)),
                               min(MAX_DOCUMENTS,
                                   max(MAX_DOCUMENT_ROWS, len(data["documents"]) + 1)))
    form = form_class() if request.method == "POST" else form_class(data=data)
    if not form.validate_on_submit():
        return _category_page(form, category), 422 if form.is_submitted() else 200
    try:
        answer = call("PATCH", requests_path(commune, "categories", category_id),
                      json=form.payload(category))
    except GatewayError as exc:
        return _category_page(form, category, notice=exc.message), exc.status
    if answer.ok:
        flash(f"La catégorie « {form.label.data} » est enregistrée. Les demandes déjà reçues "
              "gardent leur formulaire.", "success")
        return redirect(url_for("requests_agent.categories"), 303)
    return _category_page(form, category,
                          messages=apply_answer(form, answer, form.api_path)), _refused(answer)
