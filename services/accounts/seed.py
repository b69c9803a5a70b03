"""Demo data of DESIGN section 7 owned by accounts; idempotent (run at every `portail seed`)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common import outbox
from services.common.db import Database
from services.common.events import Event

from . import NAME, events
from .domain import CommuneSettings, hash_password, search_text, sort_key
from .models import (
    Account,
    AgentRole,
    Child,
    Commune,
    Family,
    Guardian,
    Membership,
    News,
    SecondFactor,
)
from .totp import DEMO_KEY_ID, demo_sealed

DEMO_PASSWORD = "portail-demo"
_NS = uuid.UUID("6f0b8a4e-6d43-4c36-9b62-6a1f0c2f3e11")


def demo_id(kind: str, key: str) -> str:
    """Stable ids, so that every service's demo data refers to the same commune or family."""
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


COMMUNES = [
    ("jolieville", "JolieVille Test", "mairie@jolieville.test", "01 60 00 00 00"),
    ("dammartin", "Dammartin-sur-Tigeaux", "mairie@dammartin.test", "01 64 00 00 00"),
]


def seed(db: Database) -> list[str]:
    """Create what is missing; returns what was created, for the command's output."""
    created: list[str] = []
    password_hash = hash_password(DEMO_PASSWORD)
    with db.transaction() as session:
        for slug, name, email, phone in COMMUNES:
            if session.scalar(select(Commune).where(Commune.slug == slug)):
                continue
            settings = CommuneSettings(contact_email=email, phone=phone).as_dict()
            commune = Commune(id=demo_id("commune", slug), slug=slug, name=name,
                              settings=settings, version=1)
            session.add(commune)
            session.flush()
            outbox.add(session, Event.new(
                "accounts.commune.created",
                {"commune_id": commune.id, "slug": slug, "name": name, "settings": settings},
                producer=NAME, commune_id=commune.id))
            created.append(f"commune {slug}")
        people = [
            ("admin@portail.test", True, None, None),
            ("agent@jolieville.test", False, "jolieville", ["agent", "agent-admin"]),
            # Not in DESIGN section 7: a second commune's agent, so that joining a second
            # commune with its family code can be shown end to end.
            ("agent@dammartin.test", False, "dammartin", ["agent"]),
            # Issue 8: JolieVille's data-protection officer, who reads the agents' access log.
            ("dpo@jolieville.test", False, "jolieville", ["agent", "dpo"]),
            ("parent@famille.test", False, None, None),
        ]
        for email, admin, agent_of, roles in people:
            if session.scalar(select(Account).where(Account.email == email)):
                continue
            account = Account(id=demo_id("account", email), email=email,
                              password_hash=password_hash, status="active",
                              platform_admin=admin,
                              family_id=demo_id("family", "CASSEREAU")
                              if email.startswith("parent") else None)
            session.add(account)
            session.flush()
            if agent_of:
                session.add(AgentRole(account_id=account.id,
                                      commune_id=demo_id("commune", agent_of), roles=roles))
            created.append(f"compte {email}")
        for email, admin, agent_of, _roles in people:
            # Agents and the admin log in with a second factor: the demo ones share the public
            # demo secret (README), already confirmed, so `make run` works at once.
            account_id = demo_id("account", email)
            if ((admin or agent_of) and session.get(Account, account_id) is not None
                    and session.get(SecondFactor, account_id) is None):
                session.add(SecondFactor(account_id=account_id, key_id=DEMO_KEY_ID,
                                         secret_sealed=demo_sealed(), failures=0,
                                         confirmed_at=datetime.now(UTC)))
                created.append(f"double authentification de démonstration {email}")
        created.extend(_seed_family(session))
        created.extend(_seed_news(session))
    return created


FAMILY = "CASSEREAU"
ADDRESS = {"line1": "12 rue des Écoles", "line2": None, "postal_code": "77000",
           "city": "JolieVille"}
GUARDIANS = [
    # first name, relation, e-mail, phones, pays
    ("Marie", "mère", "parent@famille.test", ["06 12 34 56 78"], True),
    ("Paul", "père", "paul.cassereau@famille.test", ["06 98 76 54 32"], False),
]
CHILDREN = [
    # first name, birth date, school, class, allergies, notes
    ("Léa", date(2017, 3, 14), "École Jules Ferry", "CM1", False, None),
    ("Hugo", date(2020, 9, 2), "École Jules Ferry", "GS", True,
     "Allergie à l'arachide (PAI en cours)."),
]
# The family code each commune gave the CASSEREAU household (CODE_ALPHABET: no 0/O, 1/I).
MEMBERSHIPS = [("jolieville", "JV7CASSE"), ("dammartin", "DM7CASSE")]
NEWS = [
    ("jolieville-inscriptions", 12, "Inscriptions au centre de loisirs des vacances d'hiver",
     "Les inscriptions au centre de loisirs pour les vacances d'hiver sont ouvertes sur le "
     "portail jusqu'au 15 janvier. Pensez à réserver les mercredis en même temps."),
    ("jolieville-menus", 3, "Les menus de la restauration scolaire sont en ligne",
     "Retrouvez les menus du mois sur le site de la mairie. Un repas végétarien est servi "
     "chaque semaine."),
]


def _seed_family(session: Session) -> list[str]:
    """The CASSEREAU household, member of both demo communes (ids from demo_id)."""
    created: list[str] = []
    family_id = demo_id("family", FAMILY)
    family = session.get(Family, family_id)
    changed = False
    if family is None:
        family = Family(id=family_id, family_name=FAMILY, sort_key=sort_key(FAMILY),
                        search_text=search_text(FAMILY, [
                            {"first_name": c[0], "last_name": FAMILY} for c in CHILDREN]),
                        address=ADDRESS, version=1)
        family.guardians = [
            Guardian(id=demo_id("guardian", f"{FAMILY}:{first}"), position=i,
                     first_name=first, last_name=FAMILY, relation=relation, email=email,
                     phones=phones, pays=pays)
            for i, (first, relation, email, phones, pays) in enumerate(GUARDIANS)]
        family.children = [
            Child(id=demo_id("child", f"{FAMILY}:{first}"), position=i, first_name=first,
                  last_name=FAMILY, birth_date=born, school=school, class_name=class_name,
                  allergies=allergies, allergy_notes=notes)
            for i, (first, born, school, class_name, allergies, notes) in enumerate(CHILDREN)]
        session.add(family)
        created.append(f"famille {FAMILY}")
        changed = True
    session.flush()
    now = datetime.now(UTC)
    for order, (slug, code) in enumerate(MEMBERSHIPS):
        joined = now + timedelta(seconds=order)
        commune = session.scalar(select(Commune).where(Commune.slug == slug))
        if commune is None or any(m.commune_id == commune.id for m in family.memberships):
            continue
        membership = Membership(id=demo_id("membership", f"{FAMILY}:{slug}"), family=family,
                                commune=commune, family_code=code, status="active",
                                created_at=joined, joined_at=joined)
        session.add(membership)
        session.flush()
        outbox.add(session, events.membership_created(membership, commune))
        created.append(f"adhésion {FAMILY} à {slug}")
        if family.version and not changed:
            family.version += 1
        changed = True
    if changed:
        session.flush()
        outbox.add(session, events.family_updated(family))
    return created


def _seed_news(session: Session) -> list[str]:
    created: list[str] = []
    commune = session.scalar(select(Commune).where(Commune.slug == "jolieville"))
    if commune is None:
        return created
    for key, days_ago, title, body in NEWS:
        news_id = demo_id("news", key)
        if session.get(News, news_id) is not None:
            continue
        session.add(News(id=news_id, commune_id=commune.id, title=title, body=body,
                         published_at=datetime.now(UTC) - timedelta(days=days_ago)))
        created.append(f"actualité {key}")
    return created
