"""Requests' part of the GDPR rights (issue 8): the household's export (every request with
its answers, messages, history and documents) and the erasure (``accounts.household.erased``).

Nothing here blocks an erasure: ongoing requests go with the rest. Once erased, the
household's requests, messages, history and document rows are deleted in the consumer's
transaction, and their files are removed from the store right after it commits (a file is
content-addressed: it is removed only when no other document refers to it); the retention
sweep would remove any left over (a crash between the two) once a day old.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from services.common import households
from services.common.app import current_context
from services.common.events import Event
from services.common.logging import get_logger
from services.common.privacy import internal_blueprint
from services.common.tenancy import COMMUNES

from . import NAME
from .models import Document, HistoryEntry, Message, Request
from .storage import DocumentStore

log = get_logger(__name__)


def _store() -> DocumentStore:
    return current_app.extensions["requests"].store


def export(family_id: str) -> dict[str, Any]:
    with current_context().db.sessions() as session:
        slugs = dict(session.execute(select(COMMUNES.c.id, COMMUNES.c.slug)).all())
        rows = list(session.scalars(select(Request).where(Request.family_id == family_id)
                                    .order_by(Request.created_at)))
        items, files = [], []
        for row in rows:
            documents = list(session.scalars(select(Document).where(
                Document.request_id == row.id).order_by(Document.created_at)))
            messages = session.scalars(select(Message).where(Message.request_id == row.id)
                                       .order_by(Message.created_at))
            history = session.scalars(select(HistoryEntry).where(
                HistoryEntry.request_id == row.id).order_by(HistoryEntry.id))
            folder = f"{slugs.get(row.commune_id, 'commune')}-{row.reference}"
            docs = []
            for document in documents:
                path = f"{folder}/{document.id[:8]}-{document.filename}"
                docs.append({"id": document.id, "piece": document.label,
                             "fichier": f"documents/{path}", "type": document.content_type,
                             "taille": document.size, "ajoute_par": document.uploaded_by_kind,
                             "ajoute_le": document.created_at})
                files.append({"path": path, "document_id": document.id})
            items.append({
                "reference": row.reference, "commune": slugs.get(row.commune_id),
                "categorie": row.category_label, "statut": row.status,
                "envoyee_le": row.created_at, "reponses": list(row.answers or []),
                "documents": docs,
                "echanges": [{"de": "famille" if m.author_kind == "family" else "mairie",
                              "message": m.body, "le": m.created_at} for m in messages],
                "historique": [{"le": h.at, "action": h.action, "ancien_statut": h.old_status,
                                "nouveau_statut": h.new_status, "message": h.message}
                               for h in history],
            })
    return {"data": {"demandes": items}, "files": files}


def read_document(family_id: str, document_id: str) -> tuple[bytes, str] | None:
    with current_context().db.sessions() as session:
        document = session.get(Document, document_id) if len(document_id) <= 36 else None
        request = session.get(Request, document.request_id) if document else None
        if request is None or request.family_id != family_id:
            return None
    try:
        with _store().open(document.storage_key) as stream:
            return stream.read(), document.content_type
    except LookupError:
        return None


def erase(session: Session, family_id: str, version: int,
          store: DocumentStore | None) -> None:
    ids = list(session.scalars(select(Request.id).where(Request.family_id == family_id)))
    keys = set(session.scalars(select(Document.storage_key).where(
        Document.request_id.in_(ids)))) if ids else set()
    if ids:
        session.execute(delete(Document).where(Document.request_id.in_(ids)))
        session.execute(delete(Message).where(Message.request_id.in_(ids)))
        # The history is append-only while its request exists: it goes by the cascade.
        session.execute(delete(Request).where(Request.id.in_(ids)))
        session.flush()
    households.forget(session, family_id, version)
    if store is None or not keys:
        return
    still_used = set(session.scalars(select(Document.storage_key).where(
        Document.storage_key.in_(keys))))
    gone = sorted(keys - still_used)

    def remove_files(_session: Session) -> None:
        for key in gone:
            try:
                store.delete(key)
            except Exception as exc:  # the sweep removes it later (an orphan a day old)
                log.warning("erased_document_not_removed", key=key, error=str(exc))

    event.listen(session, "after_commit", remove_files, once=True)


def erased_handler(store: DocumentStore | None):
    def on_household_erased(session: Session, event_: Event, data: dict[str, Any]) -> None:
        erase(session, data["family_id"], data["version"], store)
    return on_household_erased


def privacy_blueprint() -> Blueprint:
    return internal_blueprint(NAME, export, document=read_document)


def family_of_request(request_id: str) -> str | None:
    """For the audit of a document download (the view returns the file, not its request)."""
    with current_context().db.sessions() as session:
        row = session.get(Request, request_id) if len(request_id) <= 36 else None
        return row.family_id if row else None
