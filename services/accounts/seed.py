"""Demo data of DESIGN section 7 owned by accounts; idempotent (run at every `portail seed`)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from services.common import outbox
from services.common.db import Database
from services.common.events import Event

from . import NAME
from .domain import CommuneSettings, hash_password
from .models import Account, AgentRole, Commune

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
    return created
