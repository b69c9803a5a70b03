"""Notifications' part of the GDPR rights (issue 8): the e-mails sent to a household, in its
export, and their erasure (``accounts.household.erased``): every message recorded for the
household goes (subject, bodies, address), pending ones included — they are never sent."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.common.app import current_context
from services.common.events import Event
from services.common.privacy import internal_blueprint

from . import NAME
from .models import Message


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
