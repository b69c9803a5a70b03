"""Demo data of DESIGN section 7 owned by reservations; idempotent (run at every `portail seed`).

JolieVille: the services, sites and activities of section 7 on the school year 2026-2027 of
zone C, and the CASSEREAU children's enrolments; Dammartin-sur-Tigeaux: a canteen. The ids are
those accounts gives the same communes and children (the same uuid5 namespace and keys), so
nothing here waits for the household read model, which arrives later by events.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from services.common.db import Database

from .models import (
    Activity,
    CommuneCalendarRow,
    Enrolment,
    SchoolYearRow,
    Service,
    Site,
)

_NS = uuid.UUID("6f0b8a4e-6d43-4c36-9b62-6a1f0c2f3e11")  # the same as accounts.seed


def demo_id(kind: str, key: str) -> str:
    """Stable ids, so that every service's demo data refers to the same commune or child."""
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


FAMILY = "CASSEREAU"
LEA = demo_id("child", f"{FAMILY}:Léa")
HUGO = demo_id("child", f"{FAMILY}:Hugo")
SCHOOL_YEAR = ("2026-2027", date(2026, 9, 1), date(2027, 8, 31))
SCHOOL_DAYS = [1, 2, 4, 5]  # lundi, mardi, jeudi, vendredi
VEILLE_9H = {"kind": "days_before", "days": 1, "time": "09:00"}

# commune slug -> services (key, name, kind, enrolment mode)
SERVICES = {
    "jolieville": [
        ("restauration", "Restauration scolaire", "restauration", "automatic"),
        ("periscolaire", "Accueil périscolaire", "periscolaire", "automatic"),
        ("loisirs", "Centre de loisirs", "loisirs", "validated"),
        ("etude", "Étude surveillée", "etude", "automatic"),
    ],
    "dammartin": [
        ("restauration", "Restauration scolaire", "restauration", "automatic"),
    ],
}
SITES = {
    "jolieville": [("jules-ferry", "École Jules Ferry", "2 rue de l'École, 77000 JolieVille"),
                   ("tilleuls", "Centre de loisirs Les Tilleuls",
                    "8 allée des Tilleuls, 77000 JolieVille")],
    "dammartin": [("coquelicots", "École Les Coquelicots",
                   "1 place de la Mairie, 77580 Dammartin-sur-Tigeaux")],
}
ACTIVITIES: dict[str, list[dict[str, Any]]] = {
    "jolieville": [
        {"key": "REPAS", "service": "restauration", "site": "jules-ferry",
         "label": "Repas (restauration scolaire)", "payment_mode": "monthly",
         "unit_price_cents": 410, "weekdays": SCHOOL_DAYS, "booking_deadline": VEILLE_9H,
         "cancellation_deadline": VEILLE_9H, "late_cancellation": "refuse"},
        {"key": "MATIN", "service": "periscolaire", "site": "jules-ferry",
         "label": "Accueil périscolaire du matin", "payment_mode": "prepaid",
         "unit_price_cents": 250, "weekdays": SCHOOL_DAYS, "booking_deadline": VEILLE_9H,
         "cancellation_deadline": VEILLE_9H, "late_cancellation": "request"},
        {"key": "SOIR", "service": "periscolaire", "site": "jules-ferry",
         "label": "Accueil périscolaire du soir", "payment_mode": "prepaid",
         "unit_price_cents": 320, "weekdays": SCHOOL_DAYS,
         "booking_deadline": {"kind": "days_before", "days": 0, "time": "10:00"},
         "cancellation_deadline": {"kind": "days_before", "days": 0, "time": "10:00"},
         "late_cancellation": "request"},
        {"key": "MERCREDI", "service": "loisirs", "site": "tilleuls",
         "label": "Centre de loisirs du mercredi", "payment_mode": "prepaid",
         "unit_price_cents": 1400, "capacity": 24, "waiting_list_size": 5,
         "weekdays": [3],
         "booking_deadline": {"kind": "weekly", "weekday": 4, "time": "12:00"},
         "cancellation_deadline": {"kind": "working_days_before", "days": 2, "time": "12:00"},
         "late_cancellation": "request", "min_age": 3, "max_age": 12},
        {"key": "ETUDE", "service": "etude", "site": "jules-ferry",
         "label": "Étude surveillée", "payment_mode": "monthly", "unit_price_cents": 200,
         "weekdays": SCHOOL_DAYS, "booking_deadline": VEILLE_9H,
         "cancellation_deadline": VEILLE_9H, "late_cancellation": "refuse",
         "min_class": "CP", "max_class": "CM2"},
    ],
    "dammartin": [
        {"key": "REPAS", "service": "restauration", "site": "coquelicots",
         "label": "Repas (restauration scolaire)", "payment_mode": "monthly",
         "unit_price_cents": 390, "weekdays": SCHOOL_DAYS,
         "booking_deadline": {"kind": "weekly", "weekday": 4, "time": "12:00"},
         "cancellation_deadline": {"kind": "working_days_before", "days": 2, "time": "10:00"},
         "late_cancellation": "refuse"},
    ],
}
# commune slug -> (child, service key)
ENROLMENTS = {
    "jolieville": [(LEA, "restauration"), (LEA, "periscolaire"), (LEA, "loisirs"),
                   (LEA, "etude"), (HUGO, "restauration"), (HUGO, "periscolaire"),
                   (HUGO, "loisirs")],
    "dammartin": [(LEA, "restauration"), (HUGO, "restauration")],
}


def seed(db: Database) -> list[str]:
    """Create what is missing; returns what was created, for the command's output."""
    created: list[str] = []
    with db.transaction() as session:
        for slug in ("jolieville", "dammartin"):
            created.extend(_seed_commune(session, slug))
    return created


def _seed_commune(session: Session, slug: str) -> list[str]:
    created: list[str] = []
    commune_id = demo_id("commune", slug)
    if session.get(CommuneCalendarRow, commune_id) is None:
        session.add(CommuneCalendarRow(commune_id=commune_id, zone="C"))
        created.append(f"calendrier {slug} (zone C)")
    label, starts_on, ends_on = SCHOOL_YEAR
    year_id = demo_id("school-year", f"{slug}:{label}")
    if session.get(SchoolYearRow, year_id) is None:
        session.add(SchoolYearRow(id=year_id, commune_id=commune_id, label=label,
                                  starts_on=starts_on, ends_on=ends_on))
        created.append(f"année scolaire {label} à {slug}")
    for key, name, kind, mode in SERVICES[slug]:
        service_id = demo_id("service", f"{slug}:{key}")
        if session.get(Service, service_id) is None:
            session.add(Service(id=service_id, commune_id=commune_id, name=name, kind=kind,
                                enrolment_mode=mode))
            created.append(f"service {name} à {slug}")
    for key, name, address in SITES[slug]:
        site_id = demo_id("site", f"{slug}:{key}")
        if session.get(Site, site_id) is None:
            session.add(Site(id=site_id, commune_id=commune_id, name=name, address=address))
            created.append(f"site {name}")
    session.flush()
    for spec in ACTIVITIES[slug]:
        activity_id = demo_id("activity", f"{slug}:{spec['key']}")
        if session.get(Activity, activity_id) is not None:
            continue
        values = {k: v for k, v in spec.items() if k not in ("key", "service", "site")}
        session.add(Activity(
            id=activity_id, commune_id=commune_id, code=spec["key"],
            service_id=demo_id("service", f"{slug}:{spec['service']}"),
            site_id=demo_id("site", f"{slug}:{spec['site']}"), periods=[],
            school_holidays="closed", public_holidays="closed", **values))
        created.append(f"activité {spec['label']} à {slug}")
    session.flush()
    for child_id, service_key in ENROLMENTS[slug]:
        enrolment_id = demo_id("enrolment", f"{slug}:{child_id}:{service_key}:{label}")
        if session.get(Enrolment, enrolment_id) is not None:
            continue
        session.add(Enrolment(
            id=enrolment_id, commune_id=commune_id, family_id=demo_id("family", FAMILY),
            child_id=child_id, service_id=demo_id("service", f"{slug}:{service_key}"),
            school_year_id=year_id, status="validated", decided_by="seed"))
        created.append(f"inscription {'Léa' if child_id == LEA else 'Hugo'} "
                       f"({service_key}, {slug})")
    return created
