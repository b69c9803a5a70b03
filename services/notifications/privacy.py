"""Notifications' part of the GDPR rights (issue 8): the e-mails sent to a household, in its
export, and their erasure (``accounts.household.erased``): every message recorded for the
household goes (subject, bodies, address), pending ones included — they are never sent.
And the retention job of sent e-mails, per commune."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.common.app import current_context
from services.common.db import Database
from services.common.events import Event
from services.common.logging import get_logger
from services.common.privacy import internal_blueprint
from services.common.tenancy import COMMUNES

from . import NAME
from .models import FAILED, SENT, Message

log = get_logger(__name__)


def export(family_id: str) -> dict[str, Any]:
    with current_context().db.sessions() as session:
        rows = session.scalars(select(Message).where(Message.family_id == family_id)
                               .order_by(Message.created_at))
        # history_text, when set, hides a secret link (activation, reset): never given back.
        items = [{"le": m.created_at, "a": m.recipient, "objet": m.subject,
                  "texte": m.history_text if m.history_text is not None else m.text_body,
                  "statut": m.status, "envoye_le": m.sent_at} for m in rows]
    return {"data": {"messages": items}, "files": []}


def on_household_erased(session: Session, event: Event, data: dict[str, Any]) -> None:
    session.execute(delete(Message).where(Message.family_id == data["family_id"]))


def privacy_blueprint() -> Blueprint:
    return internal_blueprint(NAME, export)


# --- retention (issue 8) --------------------------------------------------------------------------
DEFAULT_MONTHS = 12  # sent e-mails: a year answers "did you tell us?", then they go
DEFAULT_INTERVAL = 6 * 3600


def _months_before(moment: datetime, months: int) -> datetime:
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month + 1, day=day)
        except ValueError:
            day -= 1


def purge(db: Database, now: datetime | None = None) -> int:
    """Delete the e-mails sent (or given up) longer ago than their commune's
    ``retention.notifications_months``; pending ones are never touched."""
    now = now or datetime.now(UTC)
    deleted = 0
    with db.transaction() as session:
        communes = dict(session.execute(select(COMMUNES.c.id, COMMUNES.c.settings)).all())
        for commune_id in [*communes, None]:
            retention = ((communes.get(commune_id) or {}).get("retention") or {})
            months = retention.get("notifications_months") or DEFAULT_MONTHS
            where = (Message.commune_id == commune_id if commune_id
                     else Message.commune_id.is_(None))
            deleted += session.execute(delete(Message).where(
                where, Message.status.in_((SENT, FAILED)),
                Message.created_at < _months_before(now, int(months)))).rowcount
    if deleted:
        log.info("notifications_retention", deleted=deleted)
    return deleted


def retention_loop(db: Database, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            purge(db)
        except Exception as exc:  # the database is down: the next round tries again
            log.warning("notifications_retention_failed", error=str(exc))
