"""Notifications' HTTP API."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from flask import jsonify
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import and_, or_, select

from services.common.app import current_context
from services.common.auth import current_principal, require_commune
from services.common.errors import Problem
from services.common.mailbox import get_message, list_messages, mailbox_dir
from services.common.tenancy import commune_blueprint, commune_or_404

from . import NAME
from .models import Message
from .schemas import (
    AgentMessagePageSchema,
    CommuneMessagesQuerySchema,
    MessagePageSchema,
    PageQuerySchema,
)
from .sender import utc

PAGE_SIZE = 50

communes = commune_blueprint(NAME)

me = ApiBlueprint("my_messages", __name__, url_prefix=f"/api/{NAME}/me",
                  description="Les messages envoyés au foyer")

agents = ApiBlueprint("commune_messages", __name__, url_prefix=f"/api/{NAME}/communes",
                      description="Les messages d'une commune (agents)")

dev = ApiBlueprint("dev_mailbox", __name__, url_prefix=f"/api/{NAME}/dev/mailbox",
                   description="Boîte aux lettres de développement (mode dev uniquement)")


# --- pages of messages, newest first -------------------------------------------------------

def encode_cursor(message: Message) -> str:
    raw = json.dumps([utc(message.created_at).isoformat(), message.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, message_id = json.loads(raw)
        return utc(datetime.fromisoformat(created_at)), str(message_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise Problem(400, "Le curseur de pagination est invalide.") from exc


def _page(query, cursor: str | None) -> dict[str, Any]:
    if cursor:
        created_at, message_id = decode_cursor(cursor)
        query = query.where(or_(
            Message.created_at < created_at,
            and_(Message.created_at == created_at, Message.id < message_id),
        ))
    query = query.order_by(Message.created_at.desc(), Message.id.desc()).limit(PAGE_SIZE + 1)
    with current_context().db.sessions() as session:
        rows = list(session.scalars(query))
    for row in rows:
        for name in ("created_at", "sent_at", "next_attempt_at", "failed_at"):
            setattr(row, name, utc(getattr(row, name)))
    items = rows[:PAGE_SIZE]
    return {"items": items,
            "next": encode_cursor(items[-1]) if len(rows) > PAGE_SIZE else None}


@me.route("/messages")
@me.arguments(PageQuerySchema, location="query")
@me.response(200, MessagePageSchema)
def my_messages(args):
    """Ce qui a été envoyé au foyer, du plus récent au plus ancien (50 par page)."""
    principal = current_principal()
    if not principal.family_id:
        raise Problem(403, "Réservé aux familles : ce compte n'est rattaché à aucun foyer.")
    return _page(select(Message).where(Message.family_id == principal.family_id),
                 args["cursor"])


@agents.route("/<slug>/messages")
@agents.arguments(CommuneMessagesQuerySchema, location="query")
@agents.response(200, AgentMessagePageSchema)
def commune_messages(args, slug: str):
    """Les messages de la commune (agents), filtrables par statut : `?status=failed` montre
    ceux qui n'ont pas pu être remis, avec l'erreur."""
    require_commune(slug, agent=True)
    with current_context().db.sessions() as session:
        commune = commune_or_404(session, slug)
    query = select(Message).where(Message.commune_id == commune["id"])
    if args["status"]:
        query = query.where(Message.status == args["status"])
    return _page(query, args["cursor"])


# --- the dev mailbox --------------------------------------------------------------------------

def _folder():
    settings = current_context().settings
    if not settings.dev:
        raise Problem(404)
    return mailbox_dir(settings.data_dir, dict(settings.extra))


# Documented by hand: the messages are the mailbox's own JSON, not one of our schemas.
_MAILBOX_MESSAGE = {"type": "object", "additionalProperties": True}


@dev.route("")
@dev.doc(responses={"200": {"description": "OK", "content": {"application/json": {"schema": {
    "type": "object", "required": ["items"],
    "properties": {"items": {"type": "array", "items": _MAILBOX_MESSAGE},
                   "next": {"type": ["string", "null"]}}}}}}})
def mailbox():
    """Les messages de la boîte de développement, du plus récent au plus ancien."""
    return jsonify(items=list_messages(_folder()), next=None)


@dev.route("/<key>")
@dev.doc(responses={"200": {"description": "OK", "content": {
    "application/json": {"schema": _MAILBOX_MESSAGE}}}})
def message(key: str):
    """Un message de la boîte de développement."""
    item = get_message(_folder(), key)
    if item is None:
        raise Problem(404, "Ce message n'existe pas.")
    return jsonify(item)


API_BLUEPRINTS = [communes, me, agents, dev]
