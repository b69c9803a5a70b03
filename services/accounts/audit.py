"""The audit log of agents' access to households' data (issue 8), kept by accounts for each
commune's data-protection officer.

Why one store fed by events rather than a log per service collected on demand: the DPO
filters by agent, household and date across every service in one query, an entry survives
the service's own retention sweeps, and the transactional outbox makes a read's entry as
durable as any other event (it is written in the read's transaction). Accounts records its
own reads (the family file) straight into the table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.auth import Principal
from services.common.events import Event

from . import NAME
from .models import AuditEntry


def record(session: Session, principal: Principal, commune_id: str | None, family_id: str,
           action: str, object_id: str | None = None) -> None:
    """Accounts' own agents' reads: straight into the log (a family's own reads are not)."""
    if principal.family_id == family_id and not principal.is_agent():
        return
    session.add(AuditEntry(commune_id=commune_id, service=NAME,
                           account_id=principal.account_id, email=principal.email or None,
                           family_id=family_id, action=action, object_id=object_id,
                           at=datetime.now(UTC)))


def on_access_recorded(session: Session, event: Event, data: dict[str, Any]) -> None:
    """``<service>.access.recorded``: one line of the log (the inbox already keeps a
    redelivered event out; ``event_id`` is unique as a second guard)."""
    if session.scalar(select(AuditEntry.id).where(AuditEntry.event_id == event.id)):
        return
    session.add(AuditEntry(event_id=event.id, commune_id=event.commune_id,
                           service=event.producer, account_id=data["account_id"],
                           email=data.get("email"), family_id=data["family_id"],
                           action=data["action"], object_id=data.get("object_id"),
                           at=data["at"]))
