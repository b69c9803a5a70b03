"""GDPR kit shared by the services (issue 8): the internal routes accounts calls to assemble a
household's archive or to check its erasure, and the audit record of agents' reads.

Each service keeps its own rules (what it exports, what blocks an erasure, what it erases);
this module only gives them the same shape:

- ``GET /internal/households/{family_id}/export`` → ``{service, data, files: [{path,
  document_id}]}`` (accounts' service token only);
- ``GET /internal/households/{family_id}/erasure-blockers`` → ``{blockers: [{code,
  message}]}``: what must be settled before the household can be erased (French);
- ``GET /internal/households/{family_id}/documents/{document_id}`` → the file's bytes.

``record_access`` puts ``<service>.access.recorded`` in the outbox, in the transaction of
the read: accounts keeps one audit log for each commune's data-protection officer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.orm import Session

from . import outbox
from .auth import Principal
from .errors import Problem
from .events import Event
from .internal import require_service


def _iso(value: Any) -> str:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)  # Decimal amounts and the like


Exporter = Callable[[str], dict[str, Any]]
Blockers = Callable[[str], list[dict[str, str]]]
DocumentReader = Callable[[str, str], tuple[bytes, str] | None]


def internal_blueprint(service: str, exporter: Exporter, *, blockers: Blockers | None = None,
                       document: DocumentReader | None = None) -> Blueprint:
    bp = Blueprint(f"{service}_privacy_internal", __name__,
                   url_prefix="/internal/households/<family_id>")

    @bp.get("/export")
    def export(family_id: str):
        require_service("accounts")
        # ISO dates (Flask's own JSON would write them as HTTP dates): the archive is read
        # by people and by programs.
        body = json.dumps({"service": service, **exporter(family_id)}, ensure_ascii=False,
                          default=_iso)
        return Response(body, content_type="application/json")

    @bp.get("/erasure-blockers")
    def erasure_blockers(family_id: str):
        require_service("accounts")
        return jsonify({"blockers": blockers(family_id) if blockers else []})

    @bp.get("/documents/<document_id>")
    def read_document(family_id: str, document_id: str):
        require_service("accounts")
        found = document(family_id, document_id) if document else None
        if found is None:
            raise Problem(404)
        data, content_type = found
        return Response(data, content_type=content_type)

    return bp


def record_access(session: Session, principal: Principal, *, service: str,
                  commune_id: str | None, family_id: str | None, action: str,
                  object_id: str | None = None) -> None:
    """Record an agent's (or platform admin's) read of a household's data; a family reading
    its own data is not recorded. ``action`` is short and stable: ``invoices.list``,
    ``request.read``, ``document.download``..."""
    if not family_id or (principal.family_id == family_id and not principal.is_agent()):
        return
    outbox.add(session, Event.new(
        f"{service}.access.recorded",
        {"account_id": principal.account_id, "email": principal.email or None,
         "family_id": family_id, "action": action, "object_id": object_id,
         "at": datetime.now(UTC).isoformat()},
        producer=service, commune_id=commune_id))


def record_read(principal: Principal, *, service: str, slug: str, family_id: str | None,
                action: str, object_id: str | None = None) -> None:
    """``record_access`` in a transaction of its own, after an agent's read route answered
    (its view opened none); the commune is this service's copy of ``slug``."""
    if not family_id or not principal.is_agent() and not principal.platform_admin:
        return
    from .app import current_context
    from .tenancy import find_commune

    with current_context().db.transaction() as session:
        commune = find_commune(session, slug)
        record_access(session, principal, service=service,
                      commune_id=commune["id"] if commune else None, family_id=family_id,
                      action=action, object_id=object_id)
