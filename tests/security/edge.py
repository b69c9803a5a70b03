"""The edge of the matrix: the portal's pages and the gateway's own routes, through the gateway
over HTTP, with sessions opened by ``/auth/login`` (and the second factor for agents and the
platform admin), commune X chosen in the portal.

The portal holds no data: each page asks the public API with the visitor's session, so what a
page may show is decided by the services (tests/security/matrix.py). What this table adds: a
page needing an account sends the anonymous visitor to the login page, an agents' page
answers 403 to families, another household's object answers 404 in the portal too, and no
state-changing form is accepted without its CSRF token (400, nothing sent to the API).

Outcomes, in ACTORS order (anonymous parent_a parent_b agent_x agent_y admin): a status
code, or ``login`` (a redirect to ``/connexion``). Paths are filled with household A's and
commune X's objects (``PARAMS``). Agent Y's portal shows commune Y (not theirs: X), so its
agents' pages answer 200 for Y's own lists and 404 for X's objects; the platform admin is an
agent of no commune: the agents' pages answer 403 (admins work through the API).
"""

from __future__ import annotations

from tests.security.matrix import ACTORS


def row(outcomes: str) -> dict[str, str | int]:
    values = outcomes.split()
    assert len(values) == len(ACTORS), outcomes
    return {a: int(v) if v.isdigit() else v for a, v in zip(ACTORS, values, strict=True)}


PUBLIC_PAGE = row("200 200 200 200 200 200")
NOT_FOUND = row("404 404 404 404 404 404")
ACCOUNT_PAGE = row("login 200 200 200 200 200")       # any account (profile, second factor)
FAMILY_PAGE = row("login 200 200 404 404 404")        # a household's pages
FAMILY_OBJECT_PAGE = row("login 200 404 404 404 404")  # household A's object
AGENT_PAGE = row("login 403 403 200 200 403")
AGENT_OBJECT_PAGE = row("login 403 403 200 404 403")   # commune X's object
FORM_WITHOUT_TOKEN = row("400 400 400 400 400 400")   # CSRF: refused before anything

# path variable -> kind of object (tests/security/world.py), or a literal
PARAMS = {"invoice_id": "invoice", "request_id": "request", "category_id": "category",
          "activity_id": "activity", "run_id": "run", "family_id": "family",
          "service_id": "service", "site_id": "site", "code": "tariff",
          "guardian_id": "guardian", "cancellation_id": "cancellation",
          "enrolment_id": "enrolment", "exception_id": "exception", "entry_id": "waiting",
          "item_id": "basket_item", "token": "jeton-inconnu", "message_id": "absent",
          "filename": "absent.css"}

# Where a route's variable names another kind than PARAMS says.
ROUTE_PARAMS = {"/agent/suppressions/<request_id>": {"request_id": "erasure"}}

PORTAL: dict[str, dict[str, str | int]] = {
    # GDPR pages: « Mes données » (families), erasure requests (agents; household A belongs
    # to X and Y, so agent Y sees its request too), the access log (the commune's DPO only:
    # none of the six actors)
    "portal GET /mes-donnees": FAMILY_PAGE,
    "portal POST /mes-donnees": FORM_WITHOUT_TOKEN,
    "portal GET /agent/suppressions": AGENT_PAGE,
    "portal GET /agent/suppressions/<request_id>": AGENT_PAGE,
    "portal POST /agent/suppressions/<request_id>": FORM_WITHOUT_TOKEN,
    "portal GET /agent/journal-des-acces": row("login 403 403 403 403 403"),
    "portal GET /": PUBLIC_PAGE,
    "portal GET /activation": NOT_FOUND,
    "portal GET /activation/<token>": NOT_FOUND,
    "portal POST /activation/<token>": FORM_WITHOUT_TOKEN,
    "portal POST /activation/<token>/nouveau-lien": FORM_WITHOUT_TOKEN,
    "portal GET /actualites": row("301 301 301 301 301 301"),
    "portal GET /agent/activites": AGENT_PAGE,
    "portal GET /agent/activites/<activity_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/activites/<activity_id>": FORM_WITHOUT_TOKEN,
    "portal GET /agent/activites/nouvelle": AGENT_PAGE,
    "portal POST /agent/activites/nouvelle": FORM_WITHOUT_TOKEN,
    "portal GET /agent/actualites": AGENT_PAGE,
    "portal POST /agent/actualites": FORM_WITHOUT_TOKEN,
    "portal GET /agent/annulations": AGENT_PAGE,
    "portal POST /agent/annulations/<cancellation_id>/decision": FORM_WITHOUT_TOKEN,
    "portal GET /agent/calendrier": AGENT_PAGE,
    "portal POST /agent/calendrier/annees": FORM_WITHOUT_TOKEN,
    "portal POST /agent/calendrier/exceptions": FORM_WITHOUT_TOKEN,
    "portal POST /agent/calendrier/exceptions/<exception_id>/supprimer": FORM_WITHOUT_TOKEN,
    "portal POST /agent/calendrier/zone": FORM_WITHOUT_TOKEN,
    "portal GET /agent/categories": AGENT_PAGE,
    "portal GET /agent/categories/<category_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/categories/<category_id>": FORM_WITHOUT_TOKEN,
    "portal GET /agent/categories/nouvelle": AGENT_PAGE,
    "portal POST /agent/categories/nouvelle": FORM_WITHOUT_TOKEN,
    "portal GET /agent/demandes": AGENT_PAGE,
    "portal GET /agent/demandes/<request_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/demandes/<request_id>/attribution": FORM_WITHOUT_TOKEN,
    "portal POST /agent/demandes/<request_id>/dossier": FORM_WITHOUT_TOKEN,
    "portal POST /agent/demandes/<request_id>/message": FORM_WITHOUT_TOKEN,
    "portal POST /agent/demandes/<request_id>/question": FORM_WITHOUT_TOKEN,
    "portal POST /agent/demandes/<request_id>/statut": FORM_WITHOUT_TOKEN,
    "portal GET /agent/facturation": AGENT_PAGE,
    "portal POST /agent/facturation": FORM_WITHOUT_TOKEN,
    "portal GET /agent/facturation/<run_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/facturation/<run_id>/valider": FORM_WITHOUT_TOKEN,
    "portal GET /agent/factures": AGENT_PAGE,
    "portal GET /agent/factures/<invoice_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/factures/<invoice_id>/avoir": FORM_WITHOUT_TOKEN,
    "portal POST /agent/factures/<invoice_id>/paiement": FORM_WITHOUT_TOKEN,
    "portal GET /agent/factures/nouvelle": AGENT_PAGE,
    "portal POST /agent/factures/nouvelle": FORM_WITHOUT_TOKEN,
    "portal GET /agent/familles": AGENT_PAGE,
    "portal GET /agent/familles/<family_id>": AGENT_PAGE,
    "portal POST /agent/familles/<family_id>/invitation": FORM_WITHOUT_TOKEN,
    "portal GET /agent/familles/nouvelle": AGENT_PAGE,
    "portal POST /agent/familles/nouvelle": FORM_WITHOUT_TOKEN,
    "portal GET /agent/inscriptions": AGENT_PAGE,
    "portal POST /agent/inscriptions/<enrolment_id>/decision": FORM_WITHOUT_TOKEN,
    "portal GET /agent/occupation": AGENT_PAGE,
    "portal GET /agent/paiements": AGENT_PAGE,
    "portal GET /agent/pointage": AGENT_PAGE,
    "portal POST /agent/pointage": FORM_WITHOUT_TOKEN,
    "portal POST /agent/pointage/ajouter": FORM_WITHOUT_TOKEN,
    "portal POST /agent/pointage/verrouiller": FORM_WITHOUT_TOKEN,
    "portal GET /agent/services": AGENT_PAGE,
    "portal POST /agent/services": FORM_WITHOUT_TOKEN,
    "portal GET /agent/services/<service_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/services/<service_id>": FORM_WITHOUT_TOKEN,
    "portal GET /agent/sites": AGENT_PAGE,
    "portal POST /agent/sites": FORM_WITHOUT_TOKEN,
    "portal GET /agent/sites/<site_id>": AGENT_OBJECT_PAGE,
    "portal POST /agent/sites/<site_id>": FORM_WITHOUT_TOKEN,
    "portal GET /agent/tarifs": AGENT_PAGE,
    "portal GET /agent/tarifs/<code>": AGENT_OBJECT_PAGE,
    "portal POST /agent/tarifs/<code>": FORM_WITHOUT_TOKEN,
    "portal GET /api/portal/healthz": NOT_FOUND,
    "portal GET /api/portal/readyz": NOT_FOUND,
    "portal POST /commune": FORM_WITHOUT_TOKEN,
    "portal GET /connexion": PUBLIC_PAGE,
    "portal POST /connexion": FORM_WITHOUT_TOKEN,
    "portal GET /connexion/double-authentification": row("login login login login login login"),
    "portal POST /connexion/double-authentification": FORM_WITHOUT_TOKEN,
    "portal GET /connexion/secours": ACCOUNT_PAGE,
    "portal POST /connexion/secours": FORM_WITHOUT_TOKEN,
    "portal GET /connexion/verification": ACCOUNT_PAGE,
    "portal POST /connexion/verification": FORM_WITHOUT_TOKEN,
    "portal POST /deconnexion": FORM_WITHOUT_TOKEN,
    "portal GET /demandes": FAMILY_PAGE,
    "portal GET /demandes/<request_id>": FAMILY_OBJECT_PAGE,
    "portal POST /demandes/<request_id>/reponse": FORM_WITHOUT_TOKEN,
    "portal GET /demandes/nouvelle/<category_id>": FAMILY_PAGE,
    "portal POST /demandes/nouvelle/<category_id>": FORM_WITHOUT_TOKEN,
    "portal GET /dev/mail": PUBLIC_PAGE,
    "portal GET /dev/mail/<message_id>": NOT_FOUND,
    "portal GET /factures": FAMILY_PAGE,
    "portal GET /factures/<invoice_id>": FAMILY_OBJECT_PAGE,
    "portal POST /factures/<invoice_id>/afficher": FORM_WITHOUT_TOKEN,
    "portal POST /factures/<invoice_id>/masquer": FORM_WITHOUT_TOKEN,
    "portal GET /factures/paiement": row("303 303 303 303 303 303"),
    "portal POST /factures/paiement": FORM_WITHOUT_TOKEN,
    "portal POST /factures/paiement/confirmer": FORM_WITHOUT_TOKEN,
    "portal GET /factures/paiement/retour": row("login 404 404 404 404 404"),
    "portal POST /factures/rattacher": FORM_WITHOUT_TOKEN,
    "portal GET /healthz": PUBLIC_PAGE,
    "portal GET /metrics": PUBLIC_PAGE,
    "portal GET /mot-de-passe/oublie": PUBLIC_PAGE,
    "portal POST /mot-de-passe/oublie": FORM_WITHOUT_TOKEN,
    "portal GET /mot-de-passe/reinitialiser": NOT_FOUND,
    "portal GET /mot-de-passe/reinitialiser/<token>": NOT_FOUND,
    "portal POST /mot-de-passe/reinitialiser/<token>": FORM_WITHOUT_TOKEN,
    "portal GET /profil": ACCOUNT_PAGE,
    "portal GET /profil/communes": FAMILY_PAGE,
    "portal POST /profil/communes": FORM_WITHOUT_TOKEN,
    "portal GET /profil/mot-de-passe": ACCOUNT_PAGE,
    "portal POST /profil/mot-de-passe": FORM_WITHOUT_TOKEN,
    "portal GET /profil/responsables/<guardian_id>": FAMILY_OBJECT_PAGE,
    "portal POST /profil/responsables/<guardian_id>": FORM_WITHOUT_TOKEN,
    "portal GET /readyz": PUBLIC_PAGE,
    "portal GET /reservations": FAMILY_PAGE,
    "portal POST /reservations/absence": FORM_WITHOUT_TOKEN,
    "portal POST /reservations/ajouter": FORM_WITHOUT_TOKEN,
    "portal POST /reservations/attente/<entry_id>/accepter": FORM_WITHOUT_TOKEN,
    "portal POST /reservations/attente/<entry_id>/retirer": FORM_WITHOUT_TOKEN,
    "portal GET /reservations/panier": FAMILY_PAGE,
    "portal POST /reservations/panier/lignes/<item_id>/retirer": FORM_WITHOUT_TOKEN,
    "portal GET /reservations/panier/retour": row("login 404 404 404 404 404"),
    "portal GET /reservations/panier/valider": row("303 303 303 303 303 303"),
    "portal POST /reservations/panier/valider": FORM_WITHOUT_TOKEN,
    "portal GET /reservations/periode": FAMILY_PAGE,
    "portal POST /reservations/periode": FORM_WITHOUT_TOKEN,
    "portal GET /reservations/reservations": FAMILY_PAGE,
    "portal GET /static/<path:filename>": NOT_FOUND,}

# The gateway's own routes. Its proxies are covered by the tables they lead to: /api/<service>/
# by matrix.py (the services decide, the gateway only authenticates and mints the token), the
# portal's pages by PORTAL; GATEWAY_CHECKS below runs a few calls through each for real.
GATEWAY: dict[str, dict[str, str | int] | str] = {
    "gateway GET /.well-known/jwks.json": PUBLIC_PAGE,
    "gateway GET /healthz": PUBLIC_PAGE,
    "gateway GET /readyz": PUBLIC_PAGE,
    "gateway GET /metrics": PUBLIC_PAGE,
    "gateway GET /api/gateway/healthz": PUBLIC_PAGE,
    "gateway GET /api/gateway/readyz": PUBLIC_PAGE,
    "gateway GET /auth/me": row("401 200 200 200 200 200"),
    "gateway POST /auth/login": "GATEWAY_CHECKS (public: the credentials are the check)",
    "gateway POST /auth/logout": "tests/gateway/test_auth.py (closes the caller's own session)",
    # only a session waiting for its second factor; a complete one: 409
    "gateway POST /auth/second-factor": row("401 409 409 409 409 409"),
    "gateway POST /auth/second-factor/enrolment": row("401 409 409 409 409 409"),
    "gateway POST /auth/second-factor/enrolment/confirm": row("401 409 409 409 409 409"),
    "gateway GET /": "PORTAL",
    "gateway POST /": "PORTAL",
    "gateway GET /<path:rest>": "PORTAL",
    "gateway POST /<path:rest>": "PORTAL",
    **{f"gateway {m} /api/<service>/{tail}": "matrix.py and GATEWAY_CHECKS"
       for m in ("GET", "POST", "PUT", "PATCH", "DELETE") for tail in ("", "<path:rest>")},
    "gateway GET /payments/callback/<provider>": "matrix.py (billing: public, signed)",
    "gateway POST /payments/callback/<provider>": "matrix.py (billing: public, signed)",
    "gateway GET /payments/redirect/<path:rest>": "matrix.py (billing: public)",
    "gateway GET /payments/simulator/<path:rest>": "matrix.py (billing: public)",
    "gateway POST /payments/simulator/<path:rest>": "matrix.py (billing: public)",
}

# Calls through the gateway's proxy: (method, path with {kind} placeholders, expected row).
GATEWAY_CHECKS = [
    ("GET", "/api/billing/invoices/{invoice}", row("401 200 404 200 404 200")),
    ("GET", "/api/requests/communes/jolieville/requests/{request}",
     row("401 200 404 200 403 200")),
    ("GET", "/api/reservations/communes/jolieville/children/{child}/calendar",
     row("401 200 404 200 403 200")),
    ("GET", "/api/accounts/communes/jolieville/families/{family}",
     row("401 404 404 200 403 200")),
    # the services' internal routes are never reachable from outside
    ("POST", "/api/accounts/../internal/authenticate", NOT_FOUND),
    ("POST", "/api/accounts/%2e%2e/internal/authenticate", NOT_FOUND),
    ("GET", "/api/nowhere/healthz", NOT_FOUND),
]
