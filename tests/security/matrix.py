"""The authorization matrix: one entry per route of every service, deciding who may call it.

A route of a service's Flask app without an entry here fails ``test_every_route_is_decided``:
a new endpoint cannot ship before someone decides who may call it.

Each entry gives the expected outcome for the six actors, in this order::

    anonymous  parent_a  parent_b  agent_x  agent_y  admin

where X = jolieville, Y = dammartin, household A = CASSEREAU (member of X and Y), B = a
household of X only, and the path is filled with X's slug and household A's objects (or X's
objects: activities, sites, categories, runs...). An outcome is:

- a status code (``200``, ``201``, ``204``, ``401``, ``403``, ``404``, ``405``, ``410``...);
- ``ok``: any 2xx;
- ``pass``: the call got past authorization (not 401, 403, 404 or 405, and not a 5xx): used
  where the body is valid but the state makes the call fail after the check (a 409 because an
  earlier actor already cancelled the invoice, a 422 from a business rule inside the view).
  Bodies are always valid for the schema: flask-smorest validates the body *before* the view
  runs, so a 422 from a schema would prove nothing about authorization.

Every refused call (401, 403, 404, 405) on a mutating method is checked to have changed
nothing: every row of every table of the service's database is the same afterwards.

Entries with household or commune objects (in the path, the body or the query) are also run
as object-level and tenant checks (see ``CROSS``): parent A with household B's objects must
get 404 (as for an id that does not exist), and agent X with commune Y's objects, under X's
slug or Y's, 403 or 404; neither changes anything.

Bodies and queries are functions of ``ref``: ``ref("booking")`` is the booking of the
household the variant uses, ``ref("slug")`` its commune, ``ref("actor")`` the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ACTORS = ("anonymous", "parent_a", "parent_b", "agent_x", "agent_y", "admin")

# Kinds of objects a path, body or query may name: those of a household, those of a commune.
HOUSEHOLD_KINDS = {"family", "child", "booking", "basket", "basket_item", "cancellation",
                   "enrolment", "invoice", "invoice_paid", "payment", "credit_note", "request",
                   "document", "waiting", "invoice_number", "invoice_paid_number", "erasure",
                   "guardian"}
COMMUNE_KINDS = {"activity", "service", "site", "school_year", "exception", "run", "tariff",
                 "category", "absence_category", "absence_reason"}

KINDS = HOUSEHOLD_KINDS | COMMUNE_KINDS | {"slug", "account", "unknown"}

Ref = Callable[[str], Any]


@dataclass(frozen=True)
class Entry:
    expect: dict[str, str | int]
    path: dict[str, str] = field(default_factory=dict)   # path variable -> kind
    body: Callable[[Ref], Any] | None = None              # JSON body
    form: Callable[[Ref], dict[str, Any]] | None = None   # multipart body
    query: Callable[[Ref], dict[str, Any]] | None = None
    # Tables a refused call may legitimately write (throttling counters, audit trails).
    may_write: tuple[str, ...] = ()
    note: str = ""
    # Override the object-level checks: variant -> expected outcome, or None to skip one.
    cross: dict[str, Any] = field(default_factory=dict)
    # A kind the call destroys: each allowed caller gets a fresh one (World.fresh).
    renew: str | None = None

    def kinds(self) -> set[str]:
        """The kinds of objects the call names, in its path, body or query."""
        used = set(self.path.values())

        def ref(kind: str) -> str:
            used.add(kind)
            return "00000000-0000-4000-8000-000000000000"

        for make in (self.body, self.form, self.query):
            if make is not None:
                make(ref)
        return used

    def variants(self) -> list[str]:
        """The object-level and tenant checks that apply (see CROSS)."""
        kinds = self.kinds()
        found = []
        if kinds & HOUSEHOLD_KINDS:
            found.append("parent_a_with_b")
        if kinds & COMMUNE_KINDS:
            found.append("parent_a_with_y_ids")
        if kinds & HOUSEHOLD_KINDS:
            found.append("agent_x_with_c")
        if kinds & (HOUSEHOLD_KINDS | COMMUNE_KINDS):
            found.append("agent_x_with_y_ids")
            if "slug" in kinds:
                found.extend(("agent_x_in_y", "parent_b_in_y"))
        return [v for v in found if self.cross.get(v, "") is not None]


def E(outcomes: str, **kwargs: Any) -> Entry:
    """``E("401 ok 404 ok 403 ok", ...)``: outcomes in ACTORS order."""
    values = outcomes.split()
    assert len(values) == len(ACTORS), outcomes
    return Entry(expect={actor: int(v) if v.isdigit() else v
                         for actor, v in zip(ACTORS, values, strict=True)}, **kwargs)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Lists filtered by another household's or commune's id: 200 (naming nothing of theirs: every
# answer is checked for foreign ids) or 404.
FILTERED = {variant: {200, 404} for variant in ("parent_a_with_b", "agent_x_with_y_ids",
                                                "parent_a_with_y_ids", "agent_x_with_c")}

# Profiles, read as a row of the table --------------------------------------------------------
PUBLIC = "200 200 200 200 200 200"
MEMBERS = "401 200 200 200 403 200"        # members and agents of X, platform admin
AGENTS_READ = "401 403 403 200 403 200"    # agents of X and platform admin
AGENTS_WRITE = "401 403 403 ok 403 ok"
FAMILY_OWN = "401 ok 404 403 403 403"      # household A itself; other households 404
SLUG = {"slug": "slug"}

RES = "/api/reservations/communes/<slug>"
BIL = "/api/billing/communes/<slug>"
REQ = "/api/requests/communes/<slug>"


def _household_body(ref: Ref) -> dict[str, Any]:
    return {"family_name": "DURAND", "email": f"{unique('durand')}@exemple.fr",
            "guardians": [{"first_name": "Anne", "last_name": "DURAND", "relation": "mère"}]}


def _operations(service: str) -> dict[str, Entry]:
    ops = f"/api/{service}"
    return {
        f"{service} GET /healthz": E(PUBLIC),
        f"{service} GET /readyz": E(PUBLIC),
        f"{service} GET /metrics": E(PUBLIC, note="métriques Prometheus, sans donnée "
                                                 "personnelle"),
        f"{service} GET {ops}/healthz": E(PUBLIC),
        f"{service} GET {ops}/readyz": E(PUBLIC),
        f"{service} GET {ops}/openapi.json": E(PUBLIC),
        f"{service} GET /static/<path:filename>": E("404 404 404 404 404 404",
                                                    path={"filename": "absent.css"},
                                                    note="Flask's own static route; the "
                                                         "services have no static file"),
    }


ROUTES: dict[str, Entry] = {}
for _service in ("accounts", "reservations", "billing", "requests", "notifications"):
    ROUTES.update(_operations(_service))

# --- accounts ----------------------------------------------------------------------------------
ROUTES.update({
    "accounts POST /api/accounts/communes": E(
        "401 403 403 403 403 201",
        body=lambda ref: {"slug": unique("commune"), "name": "Saint-Essai"}),
    "accounts GET /api/accounts/communes/<slug>": E(
        PUBLIC, path=SLUG, note="public: the login page shows the commune's name"),
    "accounts PATCH /api/accounts/communes/<slug>": E(
        "401 403 403 200 403 200", path=SLUG,
        body=lambda ref: {"name": "JolieVille Test" if ref("slug") == "jolieville"
                          else "Dammartin-sur-Tigeaux"},
        note="agent-admin of the commune or platform admin"),
    "accounts POST /api/accounts/communes/<slug>/families": E(
        "401 403 403 201 403 201", path=SLUG, body=_household_body),
    "accounts GET /api/accounts/communes/<slug>/families": E(AGENTS_READ, path=SLUG),
    "accounts GET /api/accounts/communes/<slug>/families/<family_id>": E(
        "401 404 404 200 403 200", path={"slug": "slug", "family_id": "family"},
        note="a member of the commune who is not its agent gets 404, as for any household"),
    "accounts PATCH /api/accounts/communes/<slug>/families/<family_id>": E(
        "401 404 404 200 403 200", path={"slug": "slug", "family_id": "family"},
        body=lambda ref: {"address": {"line1": "12 rue des Écoles", "postal_code": "77000",
                                      "city": "JolieVille"}}),
    "accounts POST /api/accounts/communes/<slug>/families/<family_id>/invitation": E(
        "401 404 404 pass 403 pass", path={"slug": "slug", "family_id": "family"},
        note="household A is active: 409 once past authorization"),
    "accounts GET /api/accounts/communes/<slug>/news": E(MEMBERS, path=SLUG),
    "accounts POST /api/accounts/communes/<slug>/news": E(
        "401 403 403 201 403 201", path=SLUG,
        body=lambda ref: {"title": "Fermeture", "body": "La mairie est fermée lundi."}),
    # public token routes: the token is the credential, whoever calls
    "accounts POST /api/accounts/activation": E(
        "404 404 404 404 404 404",
        body=lambda ref: {"token": "jeton-inconnu", "password": "un cheval bleu mange"},
        note="public: the invitation token is the credential"),
    "accounts POST /api/accounts/activation/renew": E(
        "202 202 202 202 202 202", body=lambda ref: {"token": "jeton-inconnu"}),
    "accounts GET /api/accounts/activation/<token>": E(
        "404 404 404 404 404 404", path={"token": "jeton-inconnu"}),
    "accounts POST /api/accounts/password-reset": E(
        "202 202 202 202 202 202", body=lambda ref: {"email": "personne@exemple.fr"},
        note="same answer whether the address exists or not"),
    "accounts POST /api/accounts/password-reset/confirm": E(
        "404 404 404 404 404 404",
        body=lambda ref: {"token": "jeton-inconnu", "password": "un cheval bleu mange"}),
    "accounts GET /api/accounts/password-reset/<token>": E(
        "404 404 404 404 404 404", path={"token": "jeton-inconnu"}),
    "accounts GET /api/accounts/me": E("401 200 200 200 200 200"),
    "accounts GET /api/accounts/me/communes": E("401 200 200 403 403 403"),
    "accounts POST /api/accounts/me/communes": E(
        "401 pass pass 403 403 403",
        body=lambda ref: {"commune": "dammartin", "family_code": "AAAAAAAA"},
        note="a wrong family code: refused after authorization, nothing joined"),
    "accounts GET /api/accounts/me/family": E("401 200 200 403 403 403"),
    "accounts PATCH /api/accounts/me/family": E("401 200 200 403 403 403",
                                                body=lambda ref: {}),
    "accounts POST /api/accounts/me/password": E(
        "401 pass pass pass pass pass",
        body=lambda ref: {"current_password": "pas le bon", "new_password": "x" * 20},
        note="every account has a password; a wrong current one is refused, nothing changes"),
    "accounts POST /internal/authenticate": E(
        "401 403 403 403 403 403",
        body=lambda ref: {"email": "parent@famille.test", "password": "portail-demo"},
        note="the gateway's service token only"),
    "accounts GET /internal/principals/<account_id>": E(
        "401 403 403 403 403 403", path={"account_id": "account"}),
})

# --- accounts: GDPR (« Mes données », erasure requests, audit log) and second factor -----------
ROUTES.update({
    "accounts GET /api/accounts/me/export": E("401 200 200 403 403 403",
                                              note="the household's own archive only"),
    "accounts GET /api/accounts/me/erasure": E("401 200 200 403 403 403"),
    "accounts POST /api/accounts/me/erasure": E(
        "401 pass pass 403 403 403", body=lambda ref: {"reason": "Nous partons."},
        note="already asked in the world: 409 once past authorization"),
    "accounts GET /api/accounts/communes/<slug>/erasure-requests": E(
        "401 404 404 200 403 200", path=SLUG),
    "accounts GET /api/accounts/communes/<slug>/erasure-requests/<request_id>": E(
        "401 404 404 200 403 200", path={"slug": "slug", "request_id": "erasure"}),
    "accounts POST /api/accounts/communes/<slug>/erasure-requests/<request_id>/decision": E(
        "401 404 404 pass 403 pass", path={"slug": "slug", "request_id": "erasure"},
        body=lambda ref: {"accept": False, "reason": "Une facture reste à payer."}),
    "accounts GET /api/accounts/communes/<slug>/audit": E(
        "401 404 404 403 403 200", path=SLUG,
        note="the commune's data-protection officer (role dpo: demo dpo@jolieville.test, not "
             "one of the six actors) or a platform admin; an agent who is not the DPO: 403"),
    "accounts POST /internal/second-factor/<account_id>/enrolment": E(
        "401 403 403 403 403 403", path={"account_id": "account"},
        note="the gateway's service token only"),
    "accounts POST /internal/second-factor/<account_id>/enrolment/confirm": E(
        "401 403 403 403 403 403", path={"account_id": "account"},
        body=lambda ref: {"code": "123456"}),
    "accounts POST /internal/second-factor/<account_id>/verify": E(
        "401 403 403 403 403 403", path={"account_id": "account"},
        body=lambda ref: {"code": "123456"}),
    "accounts POST /internal/second-factor/<account_id>/recover": E(
        "401 403 403 403 403 403", path={"account_id": "account"},
        body=lambda ref: {"code": "ABCD-EFGH"}),
})
for _service in ("reservations", "billing", "requests", "notifications"):
    # GDPR: what accounts gathers for a household's archive or erasure; accounts' service
    # token only (a person's token, even the household's own, is not a service token: 401).
    for _tail in ("export", "erasure-blockers", "documents/<document_id>"):
        ROUTES[f"{_service} GET /internal/households/<family_id>/{_tail}"] = E(
            "401 401 401 401 401 401",
            path={"family_id": "family", "document_id": "document"})

# --- reservations ------------------------------------------------------------------------------
ROUTES.update({
    f"reservations GET {RES}": E(MEMBERS, path=SLUG),
    f"reservations GET {RES}/activities": E(MEMBERS, path=SLUG),
    f"reservations POST {RES}/activities": E(
        AGENTS_WRITE, path=SLUG,
        body=lambda ref: {"service_id": ref("service"), "site_id": ref("site"),
                          "code": unique("ACT").upper(), "label": "Atelier",
                          "payment_mode": "monthly", "unit_price": "2.00",
                          "calendar": {"weekdays": [3]}},
        cross={"agent_x_with_y_ids": 422}, note="another commune's service or site: 422, as "
                                                "for an unknown one"),
    f"reservations GET {RES}/activities/<activity_id>": E(
        MEMBERS, path={"slug": "slug", "activity_id": "activity"}),
    f"reservations PATCH {RES}/activities/<activity_id>": E(
        AGENTS_WRITE, path={"slug": "slug", "activity_id": "activity"},
        body=lambda ref: {"label": "Repas (restauration scolaire)"}),
    f"reservations POST {RES}/services": E(AGENTS_WRITE, path=SLUG,
                                           body=lambda ref: {"name": unique("Service")}),
    f"reservations PATCH {RES}/services/<service_id>": E(
        AGENTS_WRITE, path={"slug": "slug", "service_id": "service"},
        body=lambda ref: {"kind": "restauration"}),
    f"reservations POST {RES}/sites": E(AGENTS_WRITE, path=SLUG,
                                        body=lambda ref: {"name": unique("Site")}),
    f"reservations PATCH {RES}/sites/<site_id>": E(
        AGENTS_WRITE, path={"slug": "slug", "site_id": "site"},
        body=lambda ref: {"address": "1 rue de l'École"}),
    f"reservations GET {RES}/calendar": E(MEMBERS, path=SLUG),
    f"reservations PUT {RES}/calendar": E(AGENTS_WRITE, path=SLUG,
                                          body=lambda ref: {"zone": "C"}),
    f"reservations GET {RES}/calendar/days": E(MEMBERS, path=SLUG),
    f"reservations GET {RES}/school-years": E(MEMBERS, path=SLUG),
    f"reservations POST {RES}/school-years": E(
        "401 403 403 pass 403 pass", path=SLUG,
        body=lambda ref: {"label": "2030-2031", "starts_on": "2030-09-01",
                          "ends_on": "2031-08-31"},
        note="the second allowed caller meets the year the first opened (409)"),
    f"reservations POST {RES}/calendar/exceptions": E(
        AGENTS_WRITE, path=SLUG,
        body=lambda ref: {"kind": "closure", "label": "Travaux", "from": "2031-03-02",
                          "activity_id": ref("activity")}),
    f"reservations DELETE {RES}/calendar/exceptions/<exception_id>": E(
        "401 403 403 204 403 204", path={"slug": "slug", "exception_id": "exception"},
        renew="exception"),
    f"reservations GET {RES}/enrolments": E(
        MEMBERS, path=SLUG, query=lambda ref: {"child_id": ref("child")}, cross=FILTERED),
    f"reservations POST {RES}/enrolments": E(
        "401 pass 404 pass 403 pass", path=SLUG,
        body=lambda ref: {"child_id": ref("child"), "service_id": ref("service"),
                          "school_year_id": ref("school_year")},
        note="household B may not enrol household A's child"),
    f"reservations POST {RES}/enrolments/<enrolment_id>/decision": E(
        "401 403 403 pass 403 pass", path={"slug": "slug", "enrolment_id": "enrolment"},
        body=lambda ref: {"accept": True}),
    f"reservations GET {RES}/children/<child_id>/calendar": E(
        "401 200 404 200 403 200", path={"slug": "slug", "child_id": "child"}),
    f"reservations GET {RES}/basket": E("401 200 200 403 403 403", path=SLUG),
    f"reservations POST {RES}/basket/items": E(
        "401 pass 404 403 403 403", path=SLUG,
        body=lambda ref: {"child_id": ref("child"), "activity_id": ref("activity"),
                          "dates": ["2031-03-03"]},
        note="a family books for its own children only"),
    f"reservations DELETE {RES}/basket/items/<item_id>": E(
        "401 204 404 403 403 403", path={"slug": "slug", "item_id": "basket_item"},
        renew="basket_item"),
    f"reservations POST {RES}/basket/checkout": E(
        "401 pass 404 403 403 403", path=SLUG,
        body=lambda ref: {"basket_id": ref("basket")},
        note="a basket already checked out gives its answer again; another's: 404"),
    f"reservations GET {RES}/baskets/<basket_id>": E(
        "401 200 404 200 403 200", path={"slug": "slug", "basket_id": "basket"}),
    f"reservations GET {RES}/payments/<payment_id>/basket": E(
        "401 404 404 404 403 404", path={"slug": "slug", "payment_id": "payment"},
        note="an invoice payment has no basket: 404 for everyone past authorization"),
    f"reservations GET {RES}/bookings": E(
        MEMBERS, path=SLUG, query=lambda ref: {"child_id": ref("child")},
        cross=FILTERED, note="filtered by another household's child: nothing of theirs"),
    f"reservations POST {RES}/cancellations": E(
        "401 pass 404 403 403 403", path=SLUG,
        body=lambda ref: {"booking_ids": [ref("booking")], "reason": "Malade"}),
    f"reservations GET {RES}/cancellations": E(MEMBERS, path=SLUG),
    f"reservations POST {RES}/cancellations/<cancellation_id>/decision": E(
        "401 403 403 pass 403 pass", path={"slug": "slug", "cancellation_id": "cancellation"},
        body=lambda ref: {"accept": False, "message": "Hors délai."}),
    f"reservations GET {RES}/waiting-list": E(
        MEMBERS, path=SLUG, query=lambda ref: {"child_id": ref("child")}, cross=FILTERED),
    f"reservations POST {RES}/waiting-list/<entry_id>/accept": E(
        "401 pass 404 403 403 403", path={"slug": "slug", "entry_id": "waiting"},
        note="A's entry is waiting, not offered: 409 once past authorization"),
    f"reservations DELETE {RES}/waiting-list/<entry_id>": E(
        "401 204 404 204 403 204", path={"slug": "slug", "entry_id": "waiting"},
        note="the family withdraws; an agent may remove an entry too; again: 204"),
    f"reservations GET {RES}/attendance": E(
        AGENTS_READ, path=SLUG, query=lambda ref: {"site": ref("site"), "date": "2031-03-03"}),
    f"reservations PUT {RES}/attendance": E(
        AGENTS_WRITE, path=SLUG, query=lambda ref: {"site": ref("site"), "date": "2031-03-03"},
        body=lambda ref: {"marks": [{"child_id": ref("child"), "activity_id": ref("activity"),
                                     "status": "present"}]}),
    f"reservations GET {RES}/attendance/export": E(
        AGENTS_READ, path=SLUG, query=lambda ref: {"site": ref("site"), "date": "2031-03-03"}),
    f"reservations POST {RES}/attendance/lock": E(
        "401 403 403 pass 403 pass", path=SLUG, body=lambda ref: {"month": "2026-01"}),
    f"reservations GET {RES}/attendance/locks": E(AGENTS_READ, path=SLUG),
    f"reservations GET {RES}/occupancy": E(AGENTS_READ, path=SLUG),
    f"reservations GET {RES}/children": E(AGENTS_READ, path=SLUG),
})

# --- billing -----------------------------------------------------------------------------------
ROUTES.update({
    f"billing GET {BIL}": E(MEMBERS, path=SLUG),
    f"billing GET {BIL}/invoices": E(
        MEMBERS, path=SLUG, query=lambda ref: {"family_id": ref("family")}, cross=FILTERED,
        note="a parent's ``family_id`` filter is ignored: the token's household only"),
    f"billing POST {BIL}/invoices": E(
        AGENTS_WRITE, path=SLUG,
        body=lambda ref: {"family_id": ref("family"),
                          "lines": [{"label": "Divers", "unit_price": "3.00"}]},
        cross={"agent_x_with_y_ids": 422},
        note="another commune's household: 422, as for an unknown one (was 201: fixed)"),
    f"billing POST {BIL}/invoices/<invoice_id>/cancel": E(
        "401 403 403 pass 403 pass", path={"slug": "slug", "invoice_id": "invoice"}),
    f"billing POST {BIL}/invoices/<invoice_id>/payments": E(
        "401 403 403 pass 403 pass", path={"slug": "slug", "invoice_id": "invoice"},
        body=lambda ref: {"amount": "1.00", "method": "cash"}),
    f"billing GET {BIL}/attestations/<int:year>/pdf": E(
        "401 200 200 403 403 403", path={"slug": "slug", "year": "2026"},
        note="a household's yearly attestation; an agent has no household"),
    f"billing GET {BIL}/invoicing-runs": E(AGENTS_READ, path=SLUG),
    f"billing POST {BIL}/invoicing-runs": E(
        AGENTS_WRITE, path=SLUG, body=lambda ref: {"period": "2026-08"}),
    f"billing GET {BIL}/invoicing-runs/<run_id>": E(
        AGENTS_READ, path={"slug": "slug", "run_id": "run"}),
    f"billing POST {BIL}/invoicing-runs/<run_id>/finalise": E(
        AGENTS_WRITE, path={"slug": "slug", "run_id": "run"}),
    f"billing GET {BIL}/tariffs": E(AGENTS_READ, path=SLUG),
    f"billing PUT {BIL}/tariffs/<code>": E(
        AGENTS_WRITE, path={"slug": "slug", "code": "tariff"},
        body=lambda ref: {"label": "Atelier", "unit_price": "2.50"},
        cross={"agent_x_with_y_ids": None},
        note="a code names a tariff within the commune (Y's code under X's slug would create "
             "X's own tariff of that code): no object of Y's to protect"),
    f"billing DELETE {BIL}/tariffs/<code>": E(
        "401 403 403 204 403 204", path={"slug": "slug", "code": "tariff"}, renew="tariff"),
    f"billing GET {BIL}/settings": E(AGENTS_READ, path=SLUG),
    f"billing PUT {BIL}/settings": E(AGENTS_WRITE, path=SLUG,
                                     body=lambda ref: {"due_days": 30}),
    f"billing PATCH {BIL}/settings": E(AGENTS_WRITE, path=SLUG,
                                       body=lambda ref: {"due_days": 30}),
    f"billing PUT {BIL}/households/<family_id>/quotient": E(
        AGENTS_WRITE, path={"slug": "slug", "family_id": "family"},
        body=lambda ref: {"quotient": 800}),
    f"billing GET {BIL}/credit-notes": E(
        MEMBERS, path=SLUG, query=lambda ref: {"family_id": ref("family")}, cross=FILTERED),
    f"billing POST {BIL}/credit-notes": E(
        AGENTS_WRITE, path=SLUG,
        body=lambda ref: {"family_id": ref("family"), "amount": "1.00", "reason": "Geste",
                          "invoice_id": ref("invoice")},
        cross={"agent_x_with_y_ids": 422}),
    f"billing POST {BIL}/credit-notes/<note_id>/refund": E(
        "401 403 403 pass 403 pass", path={"slug": "slug", "note_id": "credit_note"}),
    f"billing GET {BIL}/payments": E(AGENTS_READ, path=SLUG),
    f"billing GET {BIL}/exports/invoices.csv": E(AGENTS_READ, path=SLUG),
    "billing GET /api/billing/invoices/<invoice_id>": E(
        "401 200 404 200 404 200", path={"invoice_id": "invoice"}),
    "billing GET /api/billing/invoices/<invoice_id>/pdf": E(
        "401 200 404 200 404 200", path={"invoice_id": "invoice"}),
    "billing POST /api/billing/invoices/<invoice_id>/hide": E(
        "401 200 404 403 403 403", path={"invoice_id": "invoice"},
        note="families only"),
    "billing POST /api/billing/invoices/<invoice_id>/unhide": E(
        "401 200 404 403 403 403", path={"invoice_id": "invoice"}),
    "billing POST /api/billing/invoices/claim": E(
        "401 200 404 403 403 403",
        body=lambda ref: {"reference": ref("invoice_paid_number"), "amount": "30.00"},
        may_write=("claim_attempts",),
        note="A's own invoice by its reference and amount: 200; another household's: the "
             "same 404 as an unknown reference; attempts are counted even when refused"),
    "billing GET /api/billing/credit-notes/<note_id>/pdf": E(
        "401 200 404 200 404 200", path={"note_id": "credit_note"}),
    "billing POST /api/billing/payments": E(
        "401 pass 404 403 403 403",
        body=lambda ref: {"invoice_ids": [ref("invoice")], "return_url": ref("return_url")}),
    "billing GET /api/billing/payments/<payment_id>": E(
        "401 200 404 200 404 200", path={"payment_id": "payment"}),
    # outside /api: the payment provider and its pages, and the internal checkout
    "billing POST /payments/callback/<provider>": E(
        "pass pass pass pass pass pass", path={"provider": "simulator"},
        note="public: the provider's signature is the credential, not a token"),
    "billing GET /payments/redirect/<payment_id>": E(
        "404 404 404 404 404 404", path={"payment_id": "payment"},
        note="public: the page sending the browser to the provider, for a payment id "
             "(an unguessable UUID) the payer was given"),
    "billing GET /payments/simulator/<payment_id>": E(
        "200 200 200 200 200 200", path={"payment_id": "payment"},
        cross={"parent_a_with_b": None, "agent_x_with_y_ids": None, "agent_x_with_c": None},
        note="public: the simulated bank page (dev), for a payment id (an unguessable UUID) "
             "the payer was given"),
    "billing POST /payments/simulator/<payment_id>": E(
        "403 403 403 403 403 403", path={"payment_id": "payment"},
        form=lambda ref: {"token": "faux", "action": "pay"},
        cross={"parent_a_with_b": None, "agent_x_with_y_ids": None, "agent_x_with_c": None},
        note="the form's token is the credential, whoever calls"),
    "billing POST /internal/checkouts": E(
        "401 401 401 401 401 401",
        body=lambda ref: {"family_id": ref("family"), "lines": []},
        note="reservations' service token only"),
})

# --- requests ----------------------------------------------------------------------------------
ROUTES.update({
    f"requests GET {REQ}": E(MEMBERS, path=SLUG),
    f"requests GET {REQ}/categories": E(MEMBERS, path=SLUG),
    f"requests POST {REQ}/categories": E(
        AGENTS_WRITE, path=SLUG, body=lambda ref: {"label": unique("Catégorie")}),
    f"requests GET {REQ}/categories/<category_id>": E(
        MEMBERS, path={"slug": "slug", "category_id": "category"}),
    f"requests PATCH {REQ}/categories/<category_id>": E(
        AGENTS_WRITE, path={"slug": "slug", "category_id": "category"},
        body=lambda ref: {"description": "Signaler votre nouvelle adresse."}),
    f"requests GET {REQ}/requests": E(MEMBERS, path=SLUG),
    f"requests POST {REQ}/requests": E(
        "401 pass pass 403 403 403", path=SLUG,
        form=lambda ref: {"category": ref("absence_category"), "child": ref("child"),
                          "from": "2031-03-03", "reason": ref("absence_reason")},
        cross={"parent_a_with_b": {404, 422}},
        note="families only, for their own children (« Absence justifiée » names a child; "
             "another household's: 422 « Choisissez un enfant de votre foyer », as for an "
             "unknown one)"),
    f"requests GET {REQ}/requests/<request_id>": E(
        "401 200 404 200 403 200", path={"slug": "slug", "request_id": "request"}),
    f"requests POST {REQ}/requests/<request_id>/messages": E(
        "401 201 404 201 403 201", path={"slug": "slug", "request_id": "request"},
        body=lambda ref: {"body": "Bonjour"}),
    f"requests POST {REQ}/requests/<request_id>/transition": E(
        "401 403 403 pass 403 pass", path={"slug": "slug", "request_id": "request"},
        body=lambda ref: {"status": "in_progress"}),
    f"requests POST {REQ}/requests/<request_id>/assign": E(
        "401 403 403 200 403 200", path={"slug": "slug", "request_id": "request"},
        body=lambda ref: {"agent_account_id": None}),
    f"requests GET {REQ}/requests/<request_id>/documents/<document_id>": E(
        "401 200 404 200 403 200",
        path={"slug": "slug", "request_id": "request", "document_id": "document"}),
    f"requests GET {REQ}/agents": E(AGENTS_READ, path=SLUG),
    f"requests GET {REQ}/settings": E(AGENTS_READ, path=SLUG),
    f"requests PATCH {REQ}/settings": E(
        "401 403 403 200 403 200", path=SLUG, body=lambda ref: {"retention_months": 36},
        note="agent-admin of the commune or platform admin"),
})

# --- notifications -----------------------------------------------------------------------------
ROUTES.update({
    "notifications GET /api/notifications/communes/<slug>": E(MEMBERS, path=SLUG),
    "notifications GET /api/notifications/communes/<slug>/messages": E(AGENTS_READ, path=SLUG),
    "notifications GET /api/notifications/me/messages": E("401 200 200 403 403 403"),
    "notifications GET /api/notifications/dev/mailbox": E(
        PUBLIC, note="dev mode only (the matrix runs the embedded dev suite); 404 in "
                     "production, see test_dev_mailbox_is_absent_in_production"),
    "notifications GET /api/notifications/dev/mailbox/<key>": E(
        "404 404 404 404 404 404", path={"key": "absent"}),
})

# Variants of the object-level and tenant checks: who calls, with whose objects, under which
# commune. Expected: parents 404 (as for an id that does not exist); agents 403 or 404.
CROSS = {
    # parent A with household B's objects, in commune X where both live
    "parent_a_with_b": {"actor": "parent_a", "household": "B", "commune": "X", "slug": "X"},
    # parent A (a member of X and Y) with commune Y's objects (activities, categories...)
    # under X's slug
    "parent_a_with_y_ids": {"actor": "parent_a", "household": "A", "commune": "Y",
                            "slug": "X"},
    # parent B (a member of X only) in commune Y, with Y's objects: Y is not theirs to know
    "parent_b_in_y": {"actor": "parent_b", "household": "C", "commune": "Y", "slug": "Y"},
    # agent X with commune Y's objects (household C), under X's slug
    "agent_x_with_y_ids": {"actor": "agent_x", "household": "C", "commune": "Y", "slug": "X"},
    # agent X with household C's objects (C belongs to Y only) and X's own objects: a
    # household of another commune put into X's booking, attendance, invoice...
    "agent_x_with_c": {"actor": "agent_x", "household": "C", "commune": "X", "slug": "X"},
    # agent X with commune Y's objects under Y's slug
    "agent_x_in_y": {"actor": "agent_x", "household": "C", "commune": "Y", "slug": "Y"},
}

# Who may call each service's /internal/ routes: the one service named (its service token,
# SERVICE_TOKEN_KEY), or the gateway (accounts' routes: the gateway's own key). Any other
# service's token is refused (403), a person's token too (401 or 403).
INTERNAL_CALLERS = {
    "billing POST /internal/checkouts": "reservations",
    **{f"{s} GET /internal/households/<family_id>/{tail}": "accounts"
       for s in ("reservations", "billing", "requests", "notifications")
       for tail in ("export", "erasure-blockers", "documents/<document_id>")},
    "accounts POST /internal/authenticate": "gateway",
    "accounts GET /internal/principals/<account_id>": "gateway",
    **{f"accounts POST /internal/second-factor/<account_id>/{tail}": "gateway"
       for tail in ("enrolment", "enrolment/confirm", "verify", "recover")},
}
