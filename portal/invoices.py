"""« Mes factures » : a household's invoices in the current commune, paying them online, the
way back from the payment provider, credit notes and yearly attestations.

Everything comes from the billing API through the gateway; PDFs are plain links to the API
(the gateway authenticates the browser's own cookie), never proxied. Paying is two steps: the
parent ticks invoices and confirms the total, then the portal asks billing for a payment and
sends the browser to the provider's page. The payment's id is remembered in the portal's signed
session cookie so the return page finds it even when the provider's return carries no id.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from services.common.logging import get_logger

from .account import Commune, current_account, current_commune, login_required
from .billing_forms import ClaimForm
from .client import Answer, GatewayError, call
from .filters import PARIS, amount
from .formtools import RATE_LIMITED, apply_answer
from .security import safe_target

log = get_logger(__name__)

invoices = Blueprint("invoices", __name__, url_prefix="/factures")

TABS = {"a-payer": "À payer", "payees": "Payées", "masquees": "Masquées"}
# What each tab asks the API for.
TAB_QUERY = {"a-payer": {"status": "open", "hidden": "false"},
             "payees": {"status": "paid", "hidden": "false"},
             "masquees": {"hidden": "true"}}
INVOICE_STATUSES = {"open": "À payer", "partially_paid": "Partiellement payée",
                    "paid": "Payée", "cancelled": "Annulée"}
CREDIT_STATUSES = {"available": "Disponible : déduit de vos prochaines factures",
                   "used": "Utilisé", "to_refund": "À rembourser par le Trésor public"}
PAYMENT_PENDING = ("created", "waiting")
PAYMENT_FAILED = {
    "denied": "Le paiement a été refusé par votre banque. Aucune somme n'a été prélevée.",
    "cancelled": "Vous avez abandonné le paiement. Aucune somme n'a été prélevée.",
    "expired": "Le délai pour payer est dépassé. Aucune somme n'a été prélevée.",
    "error": "Le paiement n'a pas pu aboutir à cause d'une erreur technique. Aucune somme "
             "n'a été prélevée.",
}
NOTHING_SELECTED = "Sélectionnez au moins une facture à payer."
MAX_SELECTED = 50
REFRESHES = 10  # the waiting page reloads itself at most this many times (3 s apart)
REMEMBERED_PAYMENT = "paiement"


def billing_path(*parts: str) -> str:
    return "/".join(["/api/billing", *(quote(part, safe="") for part in parts)])


def pdf_url(invoice_id: str) -> str:
    return billing_path("invoices", invoice_id, "pdf")


# --- the list --------------------------------------------------------------------------------


@invoices.get("")
@login_required
def index():
    tab = request.args.get("onglet")
    return _index_page(tab if tab in TABS else "a-payer", request.args.get("suite") or None)


def _index_page(tab: str = "a-payer", cursor: str | None = None, *,
                claim_form: ClaimForm | None = None, messages: list[str] | None = None,
                selected: list[str] | None = None, status: int = 200):
    commune = _household_commune()
    items: list[dict[str, Any]] | None = None
    next_cursor = None
    credit_notes: list[dict[str, Any]] | None = None
    if commune is not None:
        params = dict(TAB_QUERY[tab])
        if cursor:
            params["cursor"] = cursor
        listing = call("GET", billing_path("communes", commune.slug, "invoices"), params=params,
                       accept=(403, 404))
        if listing.ok:
            items, next_cursor = listing.items(), listing.data.get("next")
        credit_notes = _credit_notes(commune)
    this_year = datetime.now(PARIS).year
    total = sum((amount(i.get("amount_remaining")) or Decimal(0) for i in items or ()
                 if i.get("can_pay_online")), Decimal(0))
    return render_template(
        "invoices/index.html", tab=tab, tabs=TABS, items=items, next_cursor=next_cursor,
        cursor=cursor, credit_notes=credit_notes, claim_form=claim_form or ClaimForm(),
        messages=messages or [], selected=set(selected or ()), payable_total=total,
        years=(this_year, this_year - 1), statuses=INVOICE_STATUSES,
        credit_statuses=CREDIT_STATUSES, billing_path=billing_path, pdf_url=pdf_url,
    ), status


def _credit_notes(commune: Commune) -> list[dict[str, Any]] | None:
    try:
        answer = call("GET", billing_path("communes", commune.slug, "credit-notes"),
                      accept=(403, 404))
    except GatewayError:
        return None
    return answer.items() if answer.ok else None


def _household_commune() -> Commune | None:
    """The commune whose invoices are shown; only a household has invoices (404 otherwise)."""
    account = current_account()
    if account is None or not account.family_id:
        abort(404)
    return current_commune()


# --- one invoice -----------------------------------------------------------------------------


@invoices.get("/<invoice_id>")
@login_required
def detail(invoice_id: str):
    _household_commune()
    invoice = call("GET", billing_path("invoices", invoice_id)).data
    return render_template("invoices/detail.html", invoice=invoice, invoice_id=invoice_id,
                           statuses=INVOICE_STATUSES, pdf_url=pdf_url(invoice_id))


@invoices.post("/<invoice_id>/masquer")
@login_required
def hide(invoice_id: str):
    return _set_hidden(invoice_id, True)


@invoices.post("/<invoice_id>/afficher")
@login_required
def unhide(invoice_id: str):
    return _set_hidden(invoice_id, False)


def _set_hidden(invoice_id: str, hidden: bool):
    _household_commune()
    action = "hide" if hidden else "unhide"
    answer = call("POST", billing_path("invoices", invoice_id, action), json={})
    reference = answer.data.get("reference") or ""
    if answer.ok and hidden:
        flash(f"La facture {reference} est masquée. Vous la retrouvez dans « Voir les "
              "factures masquées ».", "success")
    elif answer.ok:
        flash(f"La facture {reference} est de nouveau affichée.", "success")
    else:
        flash(answer.detail or "La facture n'a pas pu être modifiée.", "error")
    target = safe_target(request.form.get("suivant")) or url_for("invoices.index")
    return redirect(target, 303)


# --- « Je ne trouve pas ma facture » -------------------------------------------------------------


@invoices.post("/rattacher")
@login_required
def claim():
    _household_commune()
    form = ClaimForm()
    if not form.validate_on_submit():
        return _index_page(claim_form=form, status=422)
    try:
        # 404 is the one answer to every failure (wrong reference or amount, another's).
        answer = call("POST", billing_path("invoices", "claim"), json=form.payload(),
                      accept=(404,))
    except GatewayError as exc:
        return _index_page(claim_form=form, messages=[exc.message], status=exc.status)
    invoice_id = answer.data.get("id")
    if answer.ok and invoice_id:
        flash(f"La facture {answer.data.get('reference') or form.reference.data} a été "
              "ajoutée à vos factures.", "success")
        return redirect(url_for("invoices.detail", invoice_id=str(invoice_id)), 303)
    if answer.status == 429:
        top = [answer.detail or RATE_LIMITED]
    elif answer.status == 404:
        top = [answer.detail or "Aucune facture ne correspond à cette référence et à ce "
                                "montant."]
    else:
        top = apply_answer(form, answer)
    return _index_page(claim_form=form, messages=top, status=429 if answer.status == 429 else 422)


# --- paying --------------------------------------------------------------------------------------


@invoices.get("/paiement")
def payment_form_again():
    """A reload of the confirmation page (or a login in between) starts again from the list."""
    return redirect(url_for("invoices.index"), 303)


@invoices.post("/paiement")
@login_required
def payment_confirmation():
    """Step 1: the ticked invoices and their total, to confirm before leaving for the bank."""
    _household_commune()
    ids = _selected()
    if not ids:
        return _index_page(messages=[NOTHING_SELECTED], status=422)
    chosen: list[dict[str, Any]] = []
    problems: list[str] = []
    for invoice_id in ids:
        answer = call("GET", billing_path("invoices", invoice_id), accept=(404,))
        if not answer.ok:
            problems.append(answer.detail or "Cette facture n'existe pas.")
            continue
        invoice = answer.data
        if invoice.get("can_pay_online") is False:
            problems.append(f"La facture {invoice.get('reference')} ne peut pas être payée en "
                            "ligne.")
        chosen.append(invoice)
    if problems:
        return _index_page(messages=problems, selected=ids, status=422)
    total = sum((amount(i.get("amount_remaining")) or Decimal(0) for i in chosen), Decimal(0))
    return render_template("invoices/confirm.html", invoices=chosen, total=total,
                           statuses=INVOICE_STATUSES)


@invoices.post("/paiement/confirmer")
@login_required
def pay():
    """Step 2: billing creates the payment; the browser goes to the provider's page."""
    _household_commune()
    ids = _selected()
    if not ids:
        return _index_page(messages=[NOTHING_SELECTED], status=422)
    body = {"invoice_ids": ids,
            "return_url": url_for("invoices.payment_return", _external=True)}
    try:
        answer = call("POST", billing_path("payments"), json=body, accept=(404,))
    except GatewayError as exc:
        return _index_page(messages=[exc.message], selected=ids, status=exc.status)
    payment_url = answer.data.get("payment_url")
    if answer.ok and isinstance(payment_url, str) and _web_address(payment_url):
        session[REMEMBERED_PAYMENT] = str(answer.data.get("payment_id") or "")
        log.info("payment_started", payment_id=answer.data.get("payment_id"),
                 invoices=len(ids))
        return redirect(payment_url, 303)
    if answer.ok:
        log.error("payment_without_url", status=answer.status)
        problems = ["Le paiement n'a pas pu être préparé. Réessayez dans quelques instants."]
    else:
        problems = _problems(answer)
    return _index_page(messages=problems, selected=ids, status=422)


@invoices.get("/paiement/retour")
@login_required
def payment_return():
    """Where the provider sends the browser back: the payment's outcome, in French."""
    _household_commune()
    payment_id = request.args.get("payment")
    if not payment_id:
        remembered = session.get(REMEMBERED_PAYMENT)
        if not remembered:
            abort(404)
        return redirect(url_for("invoices.payment_return", payment=remembered), 303)
    payment = call("GET", billing_path("payments", payment_id)).data
    state = payment.get("status")
    paid: list[dict[str, Any]] = []
    if state == "paid":
        for invoice_id in payment.get("invoice_ids") or ():
            answer = call("GET", billing_path("invoices", str(invoice_id)), accept=(404,))
            if answer.ok:
                paid.append(answer.data)
        if session.get(REMEMBERED_PAYMENT) == payment_id:
            session.pop(REMEMBERED_PAYMENT)
    attempt = _attempt()
    refresh = None
    if state in PAYMENT_PENDING and attempt < REFRESHES:
        refresh = url_for("invoices.payment_return", payment=payment_id, essai=attempt + 1)
    return render_template(
        "invoices/return.html", payment=payment, payment_id=payment_id, state=state,
        pending=state in PAYMENT_PENDING, failure=PAYMENT_FAILED.get(state or ""),
        invoices=paid, refresh=refresh, statuses=INVOICE_STATUSES)


def _attempt() -> int:
    value = request.args.get("essai", "")
    return min(int(value), REFRESHES) if value.isdigit() else 0


def _selected() -> list[str]:
    """The ticked invoices' ids, each once, in order; at most what one payment may cover."""
    ids = [v.strip() for v in request.form.getlist("facture") if v and v.strip()]
    return list(dict.fromkeys(ids))[:MAX_SELECTED]


def _problems(answer: Answer) -> list[str]:
    """A refused payment in French: the detail, then every message of every field."""
    messages = [m for values in answer.errors.values() for m in values]
    if answer.detail and answer.detail not in messages:
        messages.insert(0, answer.detail)
    return messages or ["Le paiement n'a pas pu être préparé."]


def _web_address(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
