"""Agents' billing pages for their commune: monthly invoicing runs (prepare, review, validate),
tariffs, payments, one invoice (a payment at the counter, a credit note), and an invoice typed
by hand (for a household found by a search, or a paper invoice to a payer's name).

Only an agent of the current commune sees them (anyone else gets the 403 page); the billing
service checks the same again on every call. CSV exports are links to the API.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from .account import Commune, agent_commune, agent_required
from .billing_forms import (
    MAX_LINES,
    METHODS,
    CounterPaymentForm,
    CreditNoteForm,
    FinaliseForm,
    ManualInvoiceForm,
    RunForm,
    TariffForm,
    valid_period,
)
from .client import GatewayError, call
from .filters import euros, month_fr
from .formtools import apply_answer
from .invoices import CREDIT_STATUSES, INVOICE_STATUSES, billing_path

billing_agent = Blueprint("billing_agent", __name__, url_prefix="/agent")

RUN_STATUSES = {"draft": "Brouillon", "finalised": "Validée"}
ANOMALIES = {
    "presence_without_booking": "Présence sans réservation (facturée)",
    "booking_without_attendance": "Réservation sans pointage",
    "no_price": "Présence sans réservation ni tarif : non facturée",
}
PAYMENT_STATUSES = {"created": "Créé", "waiting": "En attente", "paid": "Payé",
                    "denied": "Refusé", "cancelled": "Abandonné", "expired": "Expiré",
                    "error": "En erreur"}
PROVIDERS = {"simulator": "En ligne (simulateur)", "payfip": "En ligne (PayFiP)",
             "counter": "Au guichet"}
INVOICE_FILTERS = {"open": "À payer", "paid": "Payées", "cancelled": "Annulées"}
PAGE = 100  # households and anomalies shown at once on a run's page


def of_month(period: str | None) -> str:
    """``2026-10`` → ``d'octobre 2026``, ``2026-03`` → ``de mars 2026``."""
    label = month_fr(period)
    return f"d'{label}" if label[:1] in ("a", "o") else f"de {label}"


def commune_path(commune: Commune, *rest: str) -> str:
    return billing_path("communes", commune.slug, *rest)


def export_url(commune: Commune, period: str | None) -> str:
    query = f"?{urlencode({'period': period})}" if period else ""
    return commune_path(commune, "exports", "invoices.csv") + query


# --- invoicing runs ----------------------------------------------------------------------------


@billing_agent.route("/facturation", methods=["GET", "POST"])
@agent_required
def runs():
    commune = agent_commune()
    form = RunForm()
    top: list[str] = []
    notice = None
    status = 422 if form.is_submitted() else 200
    if form.validate_on_submit():
        try:
            answer = call("POST", commune_path(commune, "invoicing-runs"),
                          json={"period": form.period.data})
        except GatewayError as exc:
            answer, notice, status = None, exc.message, exc.status
        run_id = answer.data.get("id") if answer is not None else None
        if answer is not None and answer.ok and run_id:
            label = of_month(answer.data.get("period") or form.period.data)
            if answer.data.get("status") == "finalised":
                flash(f"La facturation {label} est déjà validée : rien n'a été refait.",
                      "success")
            else:
                flash(f"Brouillon de la facturation {label} préparé : vérifiez les totaux "
                      "et les anomalies avant de le valider.", "success")
            return redirect(url_for("billing_agent.run", run_id=str(run_id)), 303)
        if answer is not None:
            top = apply_answer(form, answer)
    items: list[dict[str, Any]] | None
    try:
        listing = call("GET", commune_path(commune, "invoicing-runs"))
        items = listing.items()
    except GatewayError as exc:
        items, notice = None, notice or exc.message
    return render_template("agent/billing/runs.html", form=form, items=items, messages=top,
                           notice=notice, statuses=RUN_STATUSES), status


@billing_agent.get("/facturation/<run_id>")
@agent_required
def run(run_id: str):
    return _run_page(run_id, FinaliseForm())


@billing_agent.post("/facturation/<run_id>/valider")
@agent_required
def finalise(run_id: str):
    commune = agent_commune()
    form = FinaliseForm()
    if not form.validate_on_submit():
        return _run_page(run_id, form), 422
    try:
        answer = call("POST", commune_path(commune, "invoicing-runs", run_id, "finalise"),
                      json={})
    except GatewayError as exc:
        return _run_page(run_id, form, notice=exc.message), exc.status
    if not answer.ok:
        return _run_page(run_id, form, messages=apply_answer(form, answer)), 422
    count = answer.data.get("invoice_count")
    issued = ""
    if isinstance(count, int):
        issued = (f" : {count} factures émises" if count > 1 else
                  " : 1 facture émise" if count == 1 else " : aucune facture à émettre")
    flash(f"La facturation {of_month(answer.data.get('period'))} est validée{issued}.",
          "success")
    return redirect(url_for("billing_agent.run", run_id=run_id), 303)


def _run_page(run_id: str, form: FinaliseForm, **extra: Any) -> str:
    commune = agent_commune()
    data = call("GET", commune_path(commune, "invoicing-runs", run_id)).data
    households = [i for i in data.get("invoices") or () if isinstance(i, dict)]
    anomalies = [a for a in data.get("anomalies") or () if isinstance(a, dict)]
    families = {h.get("family_id"): h.get("family_name") for h in households}
    children: dict[Any, Any] = {}
    activities: dict[Any, Any] = {}
    for household in households:
        for line in household.get("lines") or ():
            if isinstance(line, dict):
                children.setdefault(line.get("child_id"), line.get("child_name"))
                activities.setdefault(line.get("activity_id"), line.get("activity_name"))
    page, pages = _page_of("page", len(households))
    anomaly_page, anomaly_pages = _page_of("anomalies", len(anomalies))
    return render_template(
        "agent/billing/run.html", run=data, run_id=run_id, form=form,
        households=households[(page - 1) * PAGE:page * PAGE], household_count=len(households),
        page=page, pages=pages,
        anomalies=anomalies[(anomaly_page - 1) * PAGE:anomaly_page * PAGE],
        anomaly_count=len(anomalies), anomaly_page=anomaly_page, anomaly_pages=anomaly_pages,
        families=families, children=children, activities=activities, kinds=ANOMALIES,
        of_month=of_month(data.get("period")), statuses=RUN_STATUSES, per_page=PAGE,
        export_url=export_url(commune, data.get("period")),
        messages=extra.pop("messages", []), **extra)


def _page_of(name: str, count: int) -> tuple[int, int]:
    pages = max(1, -(-count // PAGE))
    value = request.args.get(name, "")
    return (min(max(int(value), 1), pages) if value.isdigit() else 1), pages


# --- tariffs -----------------------------------------------------------------------------------


@billing_agent.get("/tarifs")
@agent_required
def tariffs():
    commune = agent_commune()
    items = call("GET", commune_path(commune, "tariffs")).items()
    return render_template("agent/billing/tariffs.html", items=items)


@billing_agent.route("/tarifs/<code>", methods=["GET", "POST"])
@agent_required
def tariff(code: str):
    commune = agent_commune()
    found = next((t for t in call("GET", commune_path(commune, "tariffs")).items()
                  if t.get("activity_code") == code), None)
    if found is None:
        abort(404)
    existing = [b for b in found.get("brackets") or () if isinstance(b, dict)]
    form_class = TariffForm.with_rows(len(existing))
    form = form_class(data=TariffForm.data_of(found))
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _tariff_page(form, found), status
    try:
        answer = call("PUT", commune_path(commune, "tariffs", code),
                      json=form.payload(found.get("activity_id")))
    except GatewayError as exc:
        return _tariff_page(form, found, notice=exc.message), exc.status
    if not answer.ok:
        return _tariff_page(form, found, messages=apply_answer(form, answer, form.api_path)), 422
    flash(f"Le tarif « {form.label.data} » est enregistré : il s'applique aux prochaines "
          "facturations.", "success")
    return redirect(url_for("billing_agent.tariffs"), 303)


def _tariff_page(form: TariffForm, tariff: dict[str, Any], **extra: Any) -> str:
    return render_template("agent/billing/tariff.html", form=form, tariff=tariff, **extra)


# --- payments ----------------------------------------------------------------------------------


@billing_agent.get("/paiements")
@agent_required
def payments():
    commune = agent_commune()
    state = request.args.get("statut") or ""
    state = state if state in PAYMENT_STATUSES else ""
    cursor = request.args.get("suite") or None
    params = {key: value for key, value in (("status", state), ("cursor", cursor)) if value}
    answer = call("GET", commune_path(commune, "payments"), params=params or None)
    messages = [] if answer.ok else [answer.detail or "La liste des paiements n'a pas pu être "
                                                      "affichée."]
    return render_template("agent/billing/payments.html", items=answer.items(),
                           next_cursor=answer.data.get("next"), cursor=cursor, state=state,
                           statuses=PAYMENT_STATUSES, providers=PROVIDERS, methods=METHODS,
                           messages=messages), 200 if answer.ok else 422


# --- invoices ----------------------------------------------------------------------------------


@billing_agent.get("/factures")
@agent_required
def invoices():
    commune = agent_commune()
    period = (request.args.get("periode") or "").strip()
    period = period if valid_period(period) else ""
    state = request.args.get("statut") or ""
    state = state if state in INVOICE_FILTERS else ""
    cursor = request.args.get("suite") or None
    params = {key: value for key, value in (("period", period), ("status", state),
                                            ("cursor", cursor)) if value}
    answer = call("GET", commune_path(commune, "invoices"), params=params or None)
    messages = [] if answer.ok else [answer.detail or "La liste des factures n'a pas pu être "
                                                      "affichée."]
    return render_template("agent/billing/invoices.html", items=answer.items(),
                           next_cursor=answer.data.get("next"), cursor=cursor, period=period,
                           state=state, filters=INVOICE_FILTERS, statuses=INVOICE_STATUSES,
                           messages=messages,
                           export_url=export_url(commune, period or None)), \
        200 if answer.ok else 422


@billing_agent.route("/factures/nouvelle", methods=["GET", "POST"])
@agent_required
def invoice_new():
    """An invoice typed by hand, in two steps: the form (« Créer la facture »), then its lines
    and total to check (« Confirmer ») before billing issues it. The household comes from the
    GET search ``?q=``, run again on every step so that the select offers the same choices."""
    commune = agent_commune()
    q = (request.args.get("q") or "").strip()[:200]
    search = _household_search(commune, q)
    form = ManualInvoiceForm(households=search["households"])
    if not form.is_submitted():
        return _invoice_form_page(form, q, search), 200
    step = request.form.get("etape")
    if step == "modifier":  # back from the confirmation, everything as it was typed
        return _invoice_form_page(form, q, search), 200
    if not form.validate_on_submit():
        return _invoice_form_page(form, q, search), 422
    if step != "confirmer":
        return _invoice_confirmation_page(form, q), 200
    try:
        answer = call("POST", commune_path(commune, "invoices"), json=form.payload())
    except GatewayError as exc:
        return _invoice_confirmation_page(form, q, notice=exc.message), exc.status
    invoice_id = answer.data.get("id")
    if not answer.ok or not invoice_id:
        top = apply_answer(form, answer, form.api_path)
        return _invoice_form_page(form, q, search, messages=top), 422
    reference = answer.data.get("reference") or answer.data.get("number") or ""
    issued = f"Facture {reference} de {euros(answer.data.get('amount'))} émise"
    if form.household is not None:
        flash(f"{issued} : le foyer la retrouve dans son espace, rubrique « Mes factures ».",
              "success")
    else:
        flash(f"{issued}, sans foyer du portail : téléchargez-la pour la remettre au payeur "
              "(il pourra la rattacher à son compte avec sa référence et son montant).",
              "success")
    return redirect(url_for("billing_agent.invoice", invoice_id=str(invoice_id)), 303)


def _household_search(commune: Commune, q: str) -> dict[str, Any]:
    """The households matching ``q`` (accounts' family search), for the invoice's select."""
    found: dict[str, Any] = {"households": [], "more": False, "problem": None, "notice": None}
    if not q:
        return found
    path = "/".join(["/api/accounts/communes", quote(commune.slug, safe=""), "families"])
    try:
        answer = call("GET", path, params={"q": q})
    except GatewayError as exc:
        found["notice"] = exc.message
        return found
    if not answer.ok:
        found["problem"] = answer.detail or "La recherche n'a pas abouti."
        return found
    found.update(households=answer.items(), more=bool(answer.data.get("next")))
    return found


def _invoice_form_page(form: ManualInvoiceForm, q: str, search: dict[str, Any],
                       **extra: Any) -> str:
    extra.setdefault("notice", search["notice"])
    return render_template("agent/billing/invoice_new.html", form=form, q=q,
                           households=search["households"], more=search["more"],
                           search_problem=search["problem"], max_lines=MAX_LINES,
                           messages=extra.pop("messages", []), **extra)


def _invoice_confirmation_page(form: ManualInvoiceForm, q: str, **extra: Any) -> str:
    return render_template("agent/billing/invoice_confirm.html", form=form, q=q,
                           lines=form.invoice_lines(), total=form.total(),
                           household=form.household, **extra)


@billing_agent.get("/factures/<invoice_id>")
@agent_required
def invoice(invoice_id: str):
    return _invoice_page(invoice_id, CounterPaymentForm(), CreditNoteForm())


@billing_agent.post("/factures/<invoice_id>/paiement")
@agent_required
def counter_payment(invoice_id: str):
    commune = agent_commune()
    form = CounterPaymentForm()
    if not form.validate_on_submit():
        return _invoice_page(invoice_id, form, CreditNoteForm()), 422
    try:
        answer = call("POST", commune_path(commune, "invoices", invoice_id, "payments"),
                      json=form.payload())
    except GatewayError as exc:
        return _invoice_page(invoice_id, form, CreditNoteForm(), notice=exc.message), \
            exc.status
    if not answer.ok:
        top = apply_answer(form, answer, form.api_path)
        return _invoice_page(invoice_id, form, CreditNoteForm(), messages=top), 422
    flash(f"Paiement de {euros(answer.data.get('amount'))} enregistré "
          f"({METHODS.get(form.pay_method.data, form.pay_method.data).lower()}).", "success")
    return redirect(url_for("billing_agent.invoice", invoice_id=invoice_id), 303)


@billing_agent.post("/factures/<invoice_id>/avoir")
@agent_required
def credit_note(invoice_id: str):
    commune = agent_commune()
    form = CreditNoteForm()
    found = _invoice_of(commune, invoice_id)
    if not found.get("family_id"):
        top = ["Cette facture n'est rattachée à aucun foyer : un avoir ne peut pas être émis."]
        return _invoice_page(invoice_id, CounterPaymentForm(), form, invoice=found,
                             messages=top), 422
    if not form.validate_on_submit():
        return _invoice_page(invoice_id, CounterPaymentForm(), form, invoice=found), 422
    try:
        answer = call("POST", commune_path(commune, "credit-notes"),
                      json=form.payload(str(found["family_id"]), invoice_id))
    except GatewayError as exc:
        return _invoice_page(invoice_id, CounterPaymentForm(), form, invoice=found,
                             notice=exc.message), exc.status
    if not answer.ok:
        top = apply_answer(form, answer, form.api_path)
        return _invoice_page(invoice_id, CounterPaymentForm(), form, invoice=found,
                             messages=top), 422
    flash(f"Avoir {answer.data.get('number') or ''} de {euros(answer.data.get('amount'))} "
          "émis : il est déduit des factures à payer du foyer.", "success")
    return redirect(url_for("billing_agent.invoice", invoice_id=invoice_id), 303)


def _invoice_of(commune: Commune, invoice_id: str) -> dict[str, Any]:
    """The invoice, when it is one of this commune's (404 otherwise)."""
    found = call("GET", billing_path("invoices", invoice_id)).data
    slug = (found.get("commune") or {}).get("slug") if isinstance(found.get("commune"),
                                                                   dict) else None
    if slug and slug != commune.slug:
        abort(404)
    return found


def _invoice_page(invoice_id: str, payment_form: CounterPaymentForm,
                  note_form: CreditNoteForm, *, invoice: dict[str, Any] | None = None,
                  **extra: Any) -> str:
    commune = agent_commune()
    found = invoice if invoice is not None else _invoice_of(commune, invoice_id)
    notes: list[dict[str, Any]] | None = []
    if found.get("family_id"):
        try:
            answer = call("GET", commune_path(commune, "credit-notes"),
                          params={"family_id": str(found["family_id"])}, accept=(403, 404))
            notes = [n for n in answer.items() if n.get("invoice_id") == invoice_id] \
                if answer.ok else None
        except GatewayError:
            notes = None
    return render_template(
        "agent/billing/invoice.html", invoice=found, invoice_id=invoice_id,
        payment_form=payment_form, note_form=note_form, notes=notes,
        statuses=INVOICE_STATUSES, credit_statuses=CREDIT_STATUSES,
        pdf_url=billing_path("invoices", invoice_id, "pdf"),
        messages=extra.pop("messages", []), **extra)
