"""Billing's HTTP API (thin: parse, authorise, call ``operations``, answer).

Parents see their household's invoices only (the household comes from the token: another
household's invoice answers 404); agents act in their commune (another commune's agent: 403).
Outside ``/api/billing``: the providers' callbacks and the simulator's pages (public, routed by
the gateway without credentials) and ``/internal/checkouts`` (reservations' service token).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from flask_smorest import Blueprint as ApiBlueprint
from jinja2 import Environment, select_autoescape

from services.common.app import current_context
from services.common.auth import Principal, current_principal, require_commune
from services.common.errors import Problem
from services.common.internal import require_service
from services.common.privacy import record_read
from services.common.tenancy import commune_blueprint
from services.common.webargs import parse_json

from . import NAME
from .operations import Billing
from .privacy import audit_invoice
from .schemas import (
    CheckoutSchema,
    ClaimSchema,
    CreditNoteInSchema,
    CreditNotePageSchema,
    CreditNoteQuerySchema,
    CreditNoteSchema,
    ExportQuerySchema,
    InvoicePageSchema,
    InvoiceQuerySchema,
    InvoiceSchema,
    ManualInvoiceSchema,
    ManualPaymentSchema,
    PaymentCreatedSchema,
    PaymentInSchema,
    PaymentPageSchema,
    PaymentQuerySchema,
    PaymentSchema,
    QuotientOutSchema,
    QuotientSchema,
    RunInSchema,
    RunPageSchema,
    RunSchema,
    SettingsInSchema,
    SettingsSchema,
    TariffInSchema,
    TariffPageSchema,
    TariffSchema,
)


def ops() -> Billing:
    found = current_app.extensions.get("billing")
    if found is None:
        ctx = current_context()
        found = current_app.extensions["billing"] = Billing.of(ctx.db, ctx.settings)
    return found


def agent(slug: str) -> Principal:
    return require_commune(slug, agent=True)


def file_doc(mimetype: str, description: str) -> dict:
    """The OpenAPI entry of a route answering a file (flask-smorest cannot guess it)."""
    return {"responses": {"200": {"description": description, "content": {
        mimetype: {"schema": {"type": "string", "format": "binary"}}}}}}


def attachment(body: bytes | str, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


communes = commune_blueprint(NAME)

commune = ApiBlueprint("billing_commune", __name__, url_prefix=f"/api/{NAME}/communes",
                       description="Factures, campagnes, tarifs, avoirs et paiements d'une "
                                   "commune")


# --- invoices in a commune ---------------------------------------------------------------------


@commune.route("/<slug>/invoices")
@commune.arguments(InvoiceQuerySchema, location="query")
@commune.response(200, InvoicePageSchema)
def list_invoices(query, slug: str):
    """Les factures : celles du foyer (parent ; ``status=open|paid``, ``hidden=false`` par
    défaut), ou toutes celles de la commune (agent ; filtres ``period``, ``family_id``)."""
    principal = require_commune(slug)
    if not principal.family_id and not (principal.platform_admin
                                        or principal.is_agent_of(slug)):
        raise Problem(403, "Réservé aux familles et aux agents de la commune.")
    page = ops().list_invoices(principal, slug, status=query["status"], hidden=query["hidden"],
                               cursor=query["cursor"], period=query["period"],
                               family_id=query["family_id"])
    if query["family_id"]:  # issue 8: an agent looking at one household's invoices
        record_read(principal, service=NAME, slug=slug, family_id=query["family_id"],
                    action="invoices.list")
    return page


@commune.route("/<slug>/invoices", methods=["POST"])
@commune.arguments(ManualInvoiceSchema)
@commune.response(201, InvoiceSchema)
def create_invoice(payload, slug: str):
    """Émettre une facture à la main (agent) ; sans foyer, le foyer la rattache ensuite par sa
    référence et son montant."""
    return ops().create_invoice(agent(slug), slug, payload)


@commune.route("/<slug>/invoices/<invoice_id>/cancel", methods=["POST"])
@commune.response(200, InvoiceSchema)
def cancel_invoice(slug: str, invoice_id: str):
    """Annuler une facture qui n'a reçu aucun paiement (agent)."""
    agent(slug)
    return ops().cancel_invoice(slug, invoice_id)


@commune.route("/<slug>/invoices/<invoice_id>/payments", methods=["POST"])
@commune.arguments(ManualPaymentSchema)
@commune.response(201, PaymentSchema)
def record_payment(payload, slug: str, invoice_id: str):
    """Enregistrer un paiement au guichet : espèces, chèque, CESU, virement (agent)."""
    return ops().record_payment(agent(slug), slug, invoice_id, payload)


@commune.route("/<slug>/attestations/<int:year>/pdf")
@commune.doc(**file_doc("application/pdf", "l'attestation en PDF"))
def attestation(slug: str, year: int):
    """Attestation annuelle des sommes payées par le foyer (PDF)."""
    principal = require_commune(slug)
    if year < 2000 or year > 2100:
        raise Problem(404)
    body, filename = ops().attestation_pdf(principal, slug, year)
    return attachment(body, filename, "application/pdf")


# --- invoicing runs ------------------------------------------------------------------------------


@commune.route("/<slug>/invoicing-runs")
@commune.response(200, RunPageSchema)
def list_runs(slug: str):
    """Les campagnes de facturation de la commune (agent)."""
    agent(slug)
    return ops().list_runs(slug)


@commune.route("/<slug>/invoicing-runs", methods=["POST"])
@commune.arguments(RunInSchema)
@commune.response(201, RunSchema)
@commune.alt_response(200, schema=RunSchema, description="la campagne existait déjà")
def start_run(payload, slug: str):
    """Préparer la campagne d'un mois (brouillon : totaux et anomalies) ; la redemander met
    le brouillon à jour ; une campagne finalisée est rendue telle quelle (200)."""
    view, created = ops().start_run(agent(slug), slug, payload["period"])
    return view, 201 if created else 200


@commune.route("/<slug>/invoicing-runs/<run_id>")
@commune.response(200, RunSchema)
def get_run(slug: str, run_id: str):
    """Une campagne, avec ses factures (brouillon) et ses anomalies (agent)."""
    agent(slug)
    return ops().get_run(slug, run_id)


@commune.route("/<slug>/invoicing-runs/<run_id>/finalise", methods=["POST"])
@commune.response(200, RunSchema)
def finalise_run(slug: str, run_id: str):
    """Émettre les factures de la campagne (idempotent) ; publie billing.invoice.issued."""
    return ops().finalise_run(agent(slug), slug, run_id)


# --- tariffs, settings, quotients -----------------------------------------------------------------


@commune.route("/<slug>/tariffs")
@commune.response(200, TariffPageSchema)
def list_tariffs(slug: str):
    """Les tarifs de la commune (agent)."""
    agent(slug)
    return ops().list_tariffs(slug)


@commune.route("/<slug>/tariffs/<code>", methods=["PUT"])
@commune.arguments(TariffInSchema)
@commune.response(200, TariffSchema)
def put_tariff(payload, slug: str, code: str):
    """Créer ou remplacer le tarif d'une activité, par son code (REPAS...) (agent)."""
    agent(slug)
    return ops().put_tariff(slug, code, payload)


@commune.route("/<slug>/tariffs/<code>", methods=["DELETE"])
@commune.response(204)
def delete_tariff(slug: str, code: str):
    """Supprimer un tarif (agent)."""
    agent(slug)
    ops().delete_tariff(slug, code)


@commune.route("/<slug>/settings")
@commune.response(200, SettingsSchema)
def get_settings(slug: str):
    """Les règles de facturation de la commune (agent)."""
    agent(slug)
    return ops().get_settings(slug)


@commune.route("/<slug>/settings", methods=["PUT", "PATCH"])
@commune.arguments(SettingsInSchema)
@commune.response(200, SettingsSchema)
def put_settings(payload, slug: str):
    """Modifier les règles de facturation (agent) : absences injustifiées facturées,
    réservations sans pointage facturées, délais."""
    agent(slug)
    return ops().put_settings(slug, payload)


@commune.route("/<slug>/households/<family_id>/quotient", methods=["PUT"])
@commune.arguments(QuotientSchema)
@commune.response(200, QuotientOutSchema)
def put_quotient(payload, slug: str, family_id: str):
    """Le quotient familial d'un foyer (agent ; null : non communiqué, tranche haute)."""
    agent(slug)
    return ops().put_quotient(slug, family_id, payload["quotient"])


# --- credit notes, payments, exports (commune) ----------------------------------------------------


@commune.route("/<slug>/credit-notes")
@commune.arguments(CreditNoteQuerySchema, location="query")
@commune.response(200, CreditNotePageSchema)
def list_credit_notes(query, slug: str):
    """Les avoirs : ceux du foyer (parent) ou de la commune (agent)."""
    principal = require_commune(slug)
    if not principal.family_id and not (principal.platform_admin
                                        or principal.is_agent_of(slug)):
        raise Problem(403)
    page = ops().list_credit_notes(principal, slug, query["family_id"])
    if query["family_id"]:  # issue 8: an agent looking at one household's credit notes
        record_read(principal, service=NAME, slug=slug, family_id=query["family_id"],
                    action="credit_notes.list")
    return page


@commune.route("/<slug>/credit-notes", methods=["POST"])
@commune.arguments(CreditNoteInSchema)
@commune.response(201, CreditNoteSchema)
def issue_credit_note(payload, slug: str):
    """Émettre un avoir (agent : correction d'une facture, geste) ; il est déduit aussitôt des
    factures à payer du foyer."""
    return ops().issue_credit_note(agent(slug), slug, payload)


@commune.route("/<slug>/credit-notes/<note_id>/refund", methods=["POST"])
@commune.response(200, CreditNoteSchema)
def refund_credit_note(slug: str, note_id: str):
    """Marquer le solde d'un avoir « à rembourser » (agent)."""
    agent(slug)
    return ops().refund_credit_note(slug, note_id)


@commune.route("/<slug>/payments")
@commune.arguments(PaymentQuerySchema, location="query")
@commune.response(200, PaymentPageSchema)
def list_payments(query, slug: str):
    """Les paiements de la commune, les plus récents d'abord (agent)."""
    agent(slug)
    return ops().list_payments(slug, query["status"], query["cursor"])


@commune.route("/<slug>/exports/invoices.csv")
@commune.arguments(ExportQuerySchema, location="query")
@commune.doc(**file_doc("text/csv", "CSV (séparateur « ; », UTF-8)"))
def export_invoices(query, slug: str):
    """Les factures d'une période en CSV (séparateur « ; », UTF-8) pour la trésorerie (agent)."""
    agent(slug)
    body, filename = ops().export_invoices(slug, query["period"])
    return attachment(body.encode("utf-8"), filename, "text/csv")


# --- one invoice ---------------------------------------------------------------------------------

invoices = ApiBlueprint("billing_invoices", __name__, url_prefix=f"/api/{NAME}/invoices",
                        description="Une facture du foyer")


@invoices.route("/<invoice_id>")
@invoices.response(200, InvoiceSchema)
def get_invoice(invoice_id: str):
    """Une facture et ses lignes (montants payés et restant dus par ligne)."""
    view = ops().get_invoice(current_principal(), invoice_id)
    audit_invoice(current_principal(), invoice_id, "invoice.read")  # issue 8
    return view


@invoices.route("/<invoice_id>/pdf")
@invoices.doc(**file_doc("application/pdf", "la facture en PDF"))
def invoice_pdf(invoice_id: str):
    """La facture en PDF."""
    body, filename = ops().invoice_pdf(current_principal(), invoice_id)
    audit_invoice(current_principal(), invoice_id, "invoice.pdf")  # issue 8
    return attachment(body, filename, "application/pdf")


@invoices.route("/<invoice_id>/hide", methods=["POST"])
@invoices.response(200, InvoiceSchema)
def hide(invoice_id: str):
    """Masquer une facture (payée ailleurs, par exemple au Trésor public)."""
    return ops().set_hidden(current_principal(), invoice_id, True)


@invoices.route("/<invoice_id>/unhide", methods=["POST"])
@invoices.response(200, InvoiceSchema)
def unhide(invoice_id: str):
    """Afficher de nouveau une facture masquée."""
    return ops().set_hidden(current_principal(), invoice_id, False)


@invoices.route("/claim", methods=["POST"])
@invoices.arguments(ClaimSchema)
@invoices.response(200, InvoiceSchema)
def claim(payload):
    """« Je ne trouve pas ma facture » : rattacher au foyer une facture par sa référence et son
    montant. Toute erreur répond 404, sans dire laquelle ; tentatives limitées."""
    return ops().claim(current_principal(), payload["reference"], payload["amount"])


credit_notes = ApiBlueprint("billing_credit_notes", __name__,
                            url_prefix=f"/api/{NAME}/credit-notes", description="Un avoir")


@credit_notes.route("/<note_id>/pdf")
@credit_notes.doc(**file_doc("application/pdf", "l'avoir en PDF"))
def credit_note_pdf(note_id: str):
    """L'avoir en PDF."""
    body, filename = ops().credit_note_pdf(current_principal(), note_id)
    return attachment(body, filename, "application/pdf")


# --- payments ------------------------------------------------------------------------------------

payments = ApiBlueprint("billing_payments", __name__, url_prefix=f"/api/{NAME}/payments",
                        description="Paiements en ligne")


@payments.route("", methods=["POST"])
@payments.arguments(PaymentInSchema)
@payments.response(201, PaymentCreatedSchema)
def create_payment(payload):
    """Payer une ou plusieurs factures du foyer : le montant est la somme des restes à payer ;
    réponse ``payment_url`` où envoyer le navigateur."""
    return ops().create_payment(current_principal(), payload["invoice_ids"],
                                payload["return_url"])


@payments.route("/<payment_id>")
@payments.response(200, PaymentSchema)
def get_payment(payment_id: str):
    """Où en est un paiement : created, waiting, paid, denied, cancelled, expired, error."""
    return ops().get_payment(current_principal(), payment_id)


# --- outside /api: providers, simulator, internal -------------------------------------------------

public = Blueprint("billing_public", __name__)

_pages = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
SIMULATOR_PAGE = _pages.from_string("""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Paiement simulé — {{ commune }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b;background:#fff}
main{border:1px solid #767676;border-radius:.5rem;padding:1.5rem}
.amount{font-size:1.6rem;font-weight:bold}
label{display:block;margin-top:1rem;font-weight:600}
input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}
.actions{display:flex;gap:.5rem;flex-wrap:wrap;margin-top:1.5rem}
button{font-size:1rem;padding:.6rem 1rem;border-radius:.3rem;border:2px solid #000091;
background:#fff;color:#000091;cursor:pointer}
button.pay{background:#000091;color:#fff}
button:focus,a:focus{outline:3px solid #0a76f6;outline-offset:2px}
.note{font-size:.9rem;color:#3a3a3a}
</style>
</head>
<body>
<main>
<h1>Paiement simulé</h1>
<p class="note">Simulateur de banque du Portail Famille (environnement de démonstration) :
aucune somme n'est réellement prélevée.</p>
<p>Bénéficiaire : {{ commune }}</p>
{% if references %}<p>Référence{{ "s" if references|length > 1 }} : {{ references|join(", ") }}
</p>{% endif %}
<p>Montant à payer : <span class="amount">{{ amount }}</span></p>
{% if pending %}
<form method="post" action="">
<input type="hidden" name="token" value="{{ token }}">
<label for="card">Numéro de carte (simulé)</label>
<input id="card" name="card" type="text" inputmode="numeric" autocomplete="off"
 value="4970 1000 0000 0003" readonly>
<div class="actions">
<button class="pay" type="submit" name="action" value="pay">Payer</button>
<button type="submit" name="action" value="deny">Refuser</button>
<button type="submit" name="action" value="abandon">Abandonner</button>
</div>
</form>
{% else %}
<p role="status">Ce paiement est terminé (état : {{ status_label }}).</p>
{% if return_url %}<p><a href="{{ return_url }}">Revenir au portail</a></p>{% endif %}
{% endif %}
</main>
</body>
</html>
""")
STATUS_LABELS = {"paid": "payé", "denied": "refusé", "cancelled": "abandonné",
                 "expired": "expiré", "error": "en erreur", "created": "créé",
                 "waiting": "en attente"}


@public.route("/payments/simulator/<payment_id>", methods=["GET"])
def simulator_page(payment_id: str):
    page = ops().simulator_page(payment_id)
    html = SIMULATOR_PAGE.render(**page, status_label=STATUS_LABELS.get(page["status"], ""))
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@public.route("/payments/simulator/<payment_id>", methods=["POST"])
def simulator_submit(payment_id: str):
    # ``deliver=0``: the bank decides but its notification is lost (fault tests); the
    # payment is then settled by reconciliation.
    target = ops().simulator_submit(payment_id, request.form.get("token", ""),
                                    request.form.get("action", ""),
                                    deliver=request.form.get("deliver", "1") != "0")
    return redirect(target, code=303)


@public.route("/payments/callback/<provider>", methods=["POST"])
def payment_callback(provider: str):
    forwarded = request.headers.get("X-Forwarded-For", "")
    remote = forwarded.split(",")[0].strip() or request.remote_addr
    answer = ops().handle_notification(provider, request.get_data(), dict(request.headers),
                                       remote)
    return jsonify(answer)


@public.route("/internal/checkouts", methods=["POST"])
def checkout():
    require_service("reservations")
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise Problem(428, "L'en-tête Idempotency-Key (identifiant du panier) est requis.")
    payload = parse_json(CheckoutSchema())
    answer, status = ops().checkout(key.lower(), payload)
    return jsonify(answer), status


API_BLUEPRINTS = [communes, commune, invoices, credit_notes, payments]
BLUEPRINTS = [public]
