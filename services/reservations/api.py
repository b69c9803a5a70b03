"""Reservations' HTTP API (thin: parse, authorise, call ``operations``, answer).

DESIGN section 6 and docs/contract.md. ``{slug}`` is a commune. Agents (and platform admins)
configure and run the day; a family books for its own children only (the household comes from
the token: someone else's child, booking or basket answers 404).
"""

from __future__ import annotations

from flask import Response, current_app
from flask_smorest import Blueprint as ApiBlueprint

from services.common.auth import require_commune
from services.common.tenancy import commune_blueprint

from . import NAME
from .operations import Caller, Operations
from .privacy import audit_child
from .schemas import (
    ActivityInSchema,
    ActivityPageSchema,
    ActivityPatchSchema,
    ActivityQuerySchema,
    ActivitySchema,
    AttendanceInSchema,
    AttendanceQuerySchema,
    AttendanceSchema,
    BasketItemInSchema,
    BasketRecordSchema,
    BasketSchema,
    BookingPageSchema,
    BookingQuerySchema,
    CalendarDaysSchema,
    CalendarSettingsInSchema,
    CalendarSettingsSchema,
    CancellationInSchema,
    CancellationPageSchema,
    CancellationQuerySchema,
    CancellationResultSchema,
    CancellationSchema,
    CheckoutInSchema,
    CheckoutSchema,
    ChildCalendarQuerySchema,
    ChildCalendarSchema,
    ChildPageSchema,
    ChildQuerySchema,
    DecisionSchema,
    EnrolmentInSchema,
    EnrolmentPageSchema,
    EnrolmentQuerySchema,
    EnrolmentSchema,
    ExceptionInSchema,
    ExceptionSchema,
    LockInSchema,
    LockPageSchema,
    LockSchema,
    OccupancyPageSchema,
    OccupancyQuerySchema,
    SchoolYearInSchema,
    SchoolYearSchema,
    ServiceInSchema,
    ServicePatchSchema,
    ServiceSchema,
    SiteInSchema,
    SitePatchSchema,
    SiteSchema,
    SpanQuerySchema,
    WaitingPageSchema,
    WaitingQuerySchema,
)

PREFIX = f"/api/{NAME}/communes"


def ops() -> Operations:
    return current_app.extensions["reservations"]


def agent(slug: str) -> Caller:
    principal = require_commune(slug, agent=True)
    return Caller(principal.account_id, principal.family_id, agent=True)


def member(slug: str) -> Caller:
    """A member of the commune: an agent sees the whole commune, a family its own."""
    principal = require_commune(slug)
    return Caller(principal.account_id, principal.family_id,
                  agent=principal.platform_admin or principal.is_agent_of(slug))


def family(slug: str) -> Caller:
    """A family acting for itself (baskets, cancellations): never in another's name."""
    principal = require_commune(slug)
    caller = Caller(principal.account_id, principal.family_id, agent=False)
    caller.family()
    return caller


communes = commune_blueprint(NAME)

config = ApiBlueprint("reservations_config", __name__, url_prefix=PREFIX,
                      description="Services, sites, activités et calendrier de la commune")
enrolments = ApiBlueprint("reservations_enrolments", __name__, url_prefix=PREFIX,
                          description="Inscriptions des enfants aux services, par année "
                                      "scolaire")
families = ApiBlueprint("reservations_families", __name__, url_prefix=PREFIX,
                        description="Calendrier d'un enfant, panier, réservations, "
                                    "annulations et liste d'attente")
agents = ApiBlueprint("reservations_agents", __name__, url_prefix=PREFIX,
                      description="Pointage, occupation, demandes d'annulation (agents)")


# --- configuration ------------------------------------------------------------------------------

@config.route("/<slug>/activities")
@config.arguments(ActivityQuerySchema, location="query")
@config.response(200, ActivityPageSchema)
def list_activities(query, slug: str):
    """Les services, les sites et leurs activités avec leurs règles (membres et agents)."""
    caller = member(slug)
    return ops().list_activities(slug, query["service"], query["site"],
                                 query["include_inactive"] and caller.agent)


@config.route("/<slug>/activities", methods=["POST"])
@config.arguments(ActivityInSchema)
@config.response(201, ActivitySchema)
def create_activity(payload, slug: str):
    """Créer une activité (agent)."""
    agent(slug)
    return ops().create_activity(slug, payload)


@config.route("/<slug>/activities/<activity_id>")
@config.response(200, ActivitySchema)
def get_activity(slug: str, activity_id: str):
    """Une activité et ses règles."""
    member(slug)
    return ops().get_activity(slug, activity_id)


@config.route("/<slug>/activities/<activity_id>", methods=["PATCH"])
@config.arguments(ActivityPatchSchema(partial=True))
@config.response(200, ActivitySchema)
def update_activity(payload, slug: str, activity_id: str):
    """Modifier une activité (agent) : seuls les champs envoyés changent ; ``calendar`` et
    ``eligibility`` sont fusionnés avec l'existant. Une capacité augmentée donne les places
    nouvelles aux premiers de la liste d'attente."""
    agent(slug)
    return ops().update_activity(slug, activity_id, payload)


@config.route("/<slug>/services", methods=["POST"])
@config.arguments(ServiceInSchema)
@config.response(201, ServiceSchema)
def create_service(payload, slug: str):
    """Créer un service (restauration scolaire, accueil périscolaire...) (agent)."""
    agent(slug)
    return ops().create_service(slug, payload)


@config.route("/<slug>/services/<service_id>", methods=["PATCH"])
@config.arguments(ServicePatchSchema(partial=True))
@config.response(200, ServiceSchema)
def update_service(payload, slug: str, service_id: str):
    """Modifier un service (agent)."""
    agent(slug)
    return ops().update_service(slug, service_id, payload)


@config.route("/<slug>/sites", methods=["POST"])
@config.arguments(SiteInSchema)
@config.response(201, SiteSchema)
def create_site(payload, slug: str):
    """Créer un site (école, centre de loisirs) (agent)."""
    agent(slug)
    return ops().create_site(slug, payload)


@config.route("/<slug>/sites/<site_id>", methods=["PATCH"])
@config.arguments(SitePatchSchema(partial=True))
@config.response(200, SiteSchema)
def update_site(payload, slug: str, site_id: str):
    """Modifier un site (agent)."""
    agent(slug)
    return ops().update_site(slug, site_id, payload)


@config.route("/<slug>/calendar")
@config.response(200, CalendarSettingsSchema)
def calendar_settings(slug: str):
    """Le calendrier de la commune : zone de vacances, années scolaires, fermetures et
    ouvertures exceptionnelles."""
    member(slug)
    return ops().calendar_settings(slug)


@config.route("/<slug>/calendar", methods=["PUT"])
@config.arguments(CalendarSettingsInSchema)
@config.response(200, CalendarSettingsSchema)
def set_calendar(payload, slug: str):
    """Choisir la zone de vacances scolaires (A, B ou C) (agent)."""
    agent(slug)
    return ops().set_zone(slug, payload["zone"])


@config.route("/<slug>/calendar/days")
@config.arguments(SpanQuerySchema, location="query")
@config.response(200, CalendarDaysSchema)
def calendar_days(query, slug: str):
    """Jour par jour : jours fériés, vacances scolaires de la zone, année scolaire,
    exceptions."""
    member(slug)
    return ops().calendar_days(slug, query["from_"], query["to"])


@config.route("/<slug>/school-years")
@config.response(200, SchoolYearSchema(many=True))
def school_years(slug: str):
    """Les années scolaires de la commune."""
    member(slug)
    return ops().calendar_settings(slug)["school_years"]


@config.route("/<slug>/school-years", methods=["POST"])
@config.arguments(SchoolYearInSchema)
@config.response(201, SchoolYearSchema)
def add_school_year(payload, slug: str):
    """Ouvrir une année scolaire, par exemple 2026-2027 du 2026-09-01 au 2027-08-31
    (agent)."""
    agent(slug)
    return ops().add_school_year(slug, payload)


@config.route("/<slug>/calendar/exceptions", methods=["POST"])
@config.arguments(ExceptionInSchema)
@config.response(201, ExceptionSchema)
def add_exception(payload, slug: str):
    """Une fermeture (``closure``) ou une ouverture (``opening``) exceptionnelle, pour la
    commune, un service, un site ou une activité ; elle l'emporte sur les jours fériés et les
    vacances (agent)."""
    agent(slug)
    return ops().add_exception(slug, payload)


@config.route("/<slug>/calendar/exceptions/<exception_id>", methods=["DELETE"])
@config.response(204)
def delete_exception(slug: str, exception_id: str):
    """Retirer une exception de calendrier (agent)."""
    agent(slug)
    ops().delete_exception(slug, exception_id)


# --- enrolments ---------------------------------------------------------------------------------

@enrolments.route("/<slug>/enrolments")
@enrolments.arguments(EnrolmentQuerySchema, location="query")
@enrolments.response(200, EnrolmentPageSchema)
def list_enrolments(query, slug: str):
    """Les inscriptions : celles du foyer (famille) ou de la commune (agent)."""
    return ops().list_enrolments(member(slug), slug, query)


@enrolments.route("/<slug>/enrolments", methods=["POST"])
@enrolments.arguments(EnrolmentInSchema)
@enrolments.response(201, EnrolmentSchema)
def create_enrolment(payload, slug: str):
    """Inscrire un enfant à un service pour une année scolaire : validée d'office quand le
    service est en inscription automatique ou qu'un agent la fait, sinon en attente."""
    return ops().create_enrolment(member(slug), slug, payload)


@enrolments.route("/<slug>/enrolments/<enrolment_id>/decision", methods=["POST"])
@enrolments.arguments(DecisionSchema)
@enrolments.response(200, EnrolmentSchema)
def decide_enrolment(payload, slug: str, enrolment_id: str):
    """Valider ou refuser une inscription en attente (agent)."""
    return ops().decide_enrolment(agent(slug), slug, enrolment_id, payload["accept"],
                                  payload["message"])


# --- families: calendar, basket, bookings, cancellations, waiting list -------------------------

@families.route("/<slug>/children/<child_id>/calendar")
@families.arguments(ChildCalendarQuerySchema, location="query")
@families.response(200, ChildCalendarSchema)
def child_calendar(query, slug: str, child_id: str):
    """Le calendrier d'un enfant du foyer, jour par jour et activité par activité (toutes
    ses activités sans ``activity``) ; un mois par défaut, un an au plus."""
    calendar = ops().child_calendar(member(slug), slug, child_id, query["activity"],
                                    query["from_"], query["to"])
    audit_child(slug, child_id, "calendar.read")  # issue 8: agents' reads are logged
    return calendar


@families.route("/<slug>/basket")
@families.response(200, BasketSchema)
def get_basket(slug: str):
    """Le panier ouvert du foyer (``id`` null tant qu'il est vide)."""
    return ops().basket(family(slug), slug)


@families.route("/<slug>/basket/items", methods=["POST"])
@families.arguments(BasketItemInSchema)
@families.response(201, BasketSchema)
def add_item(payload, slug: str):
    """Ajouter des jours au panier : ``dates``, ou ``period: {from, to, weekdays}`` (jours
    ISO, 1 = lundi). Une date refusée explicitement donne 422 ; dans une période, les jours
    fermés sont ignorés et les autres refus listés dans ``skipped``."""
    return ops().add_item(family(slug), slug, payload)


@families.route("/<slug>/basket/items/<item_id>", methods=["DELETE"])
@families.response(204)
def remove_item(slug: str, item_id: str):
    """Retirer une ligne du panier."""
    ops().remove_item(family(slug), slug, item_id)


@families.route("/<slug>/basket/checkout", methods=["POST"])
@families.arguments(CheckoutInSchema)
@families.response(200, CheckoutSchema)
def checkout(payload, slug: str):
    """Valider le panier : ``confirmed`` (tout est mensuel) ou ``payment_required`` avec
    ``payment_url`` ; 409 avec les dates refusées (complet, date limite, fermé, pas
    d'inscription). Valider deux fois le même panier ne réserve qu'une fois."""
    return ops().checkout(family(slug), slug, payload["basket_id"], payload["return_url"])


@families.route("/<slug>/baskets/<basket_id>")
@families.response(200, BasketRecordSchema)
def basket_record(slug: str, basket_id: str):
    """Un panier validé : son état de paiement et ses réservations (page de retour)."""
    return ops().basket_record(member(slug), slug, basket_id)


@families.route("/<slug>/payments/<payment_id>/basket")
@families.response(200, BasketRecordSchema)
def basket_of_payment(slug: str, payment_id: str):
    """Le panier d'un paiement (page de retour ``?payment=``)."""
    return ops().basket_by_payment(member(slug), slug, payment_id)


@families.route("/<slug>/bookings")
@families.arguments(BookingQuerySchema, location="query")
@families.response(200, BookingPageSchema)
def list_bookings(query, slug: str):
    """Les réservations du foyer (famille) ou de la commune (agent), par date."""
    page = ops().bookings(member(slug), slug, query)
    audit_child(slug, query["child_id"], "bookings.list")  # issue 8: agents' reads are logged
    return page


@families.route("/<slug>/cancellations", methods=["POST"])
@families.arguments(CancellationInSchema)
@families.response(200, CancellationResultSchema)
def cancel(payload, slug: str):
    """Annuler des réservations : dans le délai, annulées aussitôt (remboursement dû si
    prépayées) ; après, refusées (409, avec la date limite) ou transmises à un agent selon
    l'activité."""
    return ops().cancel(family(slug), slug, payload["booking_ids"], payload["reason"])


@families.route("/<slug>/cancellations")
@families.arguments(CancellationQuerySchema, location="query")
@families.response(200, CancellationPageSchema)
def list_cancellations(query, slug: str):
    """Les annulations et demandes d'annulation (``?status=pending`` : à traiter)."""
    return ops().cancellations(member(slug), slug, query["status"], query["cursor"])


@families.route("/<slug>/waiting-list")
@families.arguments(WaitingQuerySchema, location="query")
@families.response(200, WaitingPageSchema)
def waiting_list(query, slug: str):
    """La liste d'attente : le foyer (famille) ou la commune (agent) ; en attente et places
    proposées par défaut."""
    return ops().waiting_list(member(slug), slug, query)


@families.route("/<slug>/waiting-list/<entry_id>/accept", methods=["POST"])
@families.response(200, CheckoutSchema)
def accept_offer(slug: str, entry_id: str):
    """Accepter une place proposée : confirmée (mensuel) ou à payer comme un panier."""
    return ops().accept_offer(family(slug), slug, entry_id)


@families.route("/<slug>/waiting-list/<entry_id>", methods=["DELETE"])
@families.response(204)
def withdraw(slug: str, entry_id: str):
    """Se retirer de la liste d'attente, ou refuser la place proposée."""
    ops().withdraw(member(slug), slug, entry_id)


# --- agents -------------------------------------------------------------------------------------

@agents.route("/<slug>/cancellations/<cancellation_id>/decision", methods=["POST"])
@agents.arguments(DecisionSchema)
@agents.response(200, CancellationSchema)
def decide_cancellation(payload, slug: str, cancellation_id: str):
    """Accepter (annulation, remboursement si prépayée) ou refuser une demande (agent)."""
    return ops().decide_cancellation(agent(slug), slug, cancellation_id, payload["accept"],
                                     payload["message"])


@agents.route("/<slug>/attendance")
@agents.arguments(AttendanceQuerySchema, location="query")
@agents.response(200, AttendanceSchema)
def get_attendance(query, slug: str):
    """Le pointage d'un site pour un jour : les enfants attendus, avec allergies / PAI
    (agent)."""
    agent(slug)
    return ops().attendance(slug, query["site"], query["date"])


@agents.route("/<slug>/attendance", methods=["PUT"])
@agents.arguments(AttendanceQuerySchema, location="query")
@agents.arguments(AttendanceInSchema)
@agents.response(200, AttendanceSchema)
def put_attendance(query, payload, slug: str):
    """Pointer : ``{marks: [{child_id, activity_id, status}]}`` ; un enfant sans réservation
    est ajouté (réservation confirmée). 409 quand le mois est verrouillé (agent)."""
    return ops().record_attendance(agent(slug), slug, query["site"], query["date"],
                                   payload["marks"])


@agents.route("/<slug>/attendance/export")
@agents.arguments(AttendanceQuerySchema, location="query")
@agents.doc(responses={"200": {"description": "CSV (séparateur ;) pour la cuisine",
                               "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_attendance(query, slug: str):
    """La liste du jour pour la cuisine, avec le nombre de repas par activité (CSV)."""
    agent(slug)
    body = ops().attendance_csv(slug, query["site"], query["date"])
    name = f"pointage-{query['date'].isoformat()}.csv"
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@agents.route("/<slug>/attendance/lock", methods=["POST"])
@agents.arguments(LockInSchema)
@agents.response(201, LockSchema)
def lock_month(payload, slug: str):
    """Verrouiller le pointage d'un mois (facturé) : plus aucune modification (agent)."""
    return ops().lock_month(agent(slug), slug, payload["month"])


@agents.route("/<slug>/attendance/locks")
@agents.response(200, LockPageSchema)
def list_locks(slug: str):
    """Les mois verrouillés (agent)."""
    agent(slug)
    return ops().locks(slug)


@agents.route("/<slug>/occupancy")
@agents.arguments(OccupancyQuerySchema, location="query")
@agents.response(200, OccupancyPageSchema)
def occupancy(query, slug: str):
    """L'occupation par activité et par jour d'ouverture : capacité, réservés, en attente de
    paiement, liste d'attente, présents (agent) ; 92 jours au plus."""
    agent(slug)
    return ops().occupancy(slug, query["activity"], query["site"], query["from_"],
                           query["to"])


@agents.route("/<slug>/children")
@agents.arguments(ChildQuerySchema, location="query")
@agents.response(200, ChildPageSchema)
def children(query, slug: str):
    """Les enfants des foyers de la commune, par nom (agent)."""
    agent(slug)
    return ops().children(slug, query["q"])


API_BLUEPRINTS = [communes, config, enrolments, families, agents]
