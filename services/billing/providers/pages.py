"""``GET /payments/redirect/{payment_id}``: the page sending the parent to a provider paid
through a POSTed form (SystemPay), since a payment's ``payment_url`` is a plain link.

Like the simulator's page and a provider's own site, it knows the payment by its id in the URL,
not by a session. It shows a button (and submits itself when scripts run) to the provider's
page, with the fields the provider signed; its Content-Security-Policy allows that one form
target and nothing else.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app
from jinja2 import Environment, select_autoescape

pages = Blueprint("billing_provider_pages", __name__)

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
PAGE = _env.from_string("""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Paiement en ligne — {{ commune }}</title>
</head>
<body>
<main>
<h1>Paiement en ligne</h1>
<p>Bénéficiaire : {{ commune }}</p>
{% if references %}<p>Référence{{ "s" if references|length > 1 }} : {{ references|join(", ") }}
</p>{% endif %}
<p>Montant : {{ amount }}</p>
{% if form %}
<form id="pay" method="post" action="{{ form.action }}" accept-charset="utf-8">
{% for name, value in form.fields %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}<button type="submit">Continuer vers le paiement sécurisé</button>
</form>
<script nonce="{{ nonce }}">document.getElementById("pay").submit();</script>
{% else %}
<p role="status">Ce paiement est terminé.</p>
{% if return_url %}<p><a href="{{ return_url }}">Revenir au portail</a></p>{% endif %}
{% endif %}
</main>
</body>
</html>
""")


@pages.route("/payments/redirect/<payment_id>", methods=["GET"])
def provider_redirect(payment_id: str):
    page = current_app.extensions["billing"].provider_form(payment_id)
    nonce = secrets.token_urlsafe(16)
    response = Response(PAGE.render(**page, nonce=nonce), mimetype="text/html")
    form = page["form"]
    target = "'none'"
    if form is not None:
        parts = urlsplit(form.action)
        target = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; form-action {target}; "
        "base-uri 'none'; frame-ancestors 'none'")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
