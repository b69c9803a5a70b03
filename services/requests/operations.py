"""Requests' use cases: each one a unit of work (rows, rules of ``domain``, events in the
outbox, files in the document store).

``api`` parses and authorises, then calls one method here; nothing here knows Flask requests.
Errors are raised as ``Problem`` (French, problem+json).

Nothing is kept from a refused submission: everything (answers, every file's content) is
checked before anything is written; the files are stored inside the transaction that records
them, and a file this call created is removed again when that transaction fails. Files no row
refers to any more (a crash between the two, requests past their retention period) are removed
by the sweep of the worker's retention job, once they are a day old.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common import outbox
from services.common.auth import Principal
from services.common.db import Database
from services.common.errors import Problem
from services.common.households import (
    HOUSEHOLD_COMMUNES,
    HOUSEHOLDS,
    children_of,
    household,
    recipients,
)
from services.common.logging import get_logger
from services.common.tenancy import commune_or_404

from . import domain, events
from .documents import DocumentError, accept_attribute, display_name, inspect
from .models import (
    Agent,
    Category,
    CommuneSettings,
    Document,
    HistoryEntry,
    Message,
    Request,
    new_id,
)
from .storage import DocumentStore

log = get_logger(__name__)

NOT_SENT = "La demande n'a pas été envoyée : corrigez les points signalés."
REPLY_NOT_SENT = "Le message n'a pas été envoyé : corrigez les points signalés."
NOT_OFFERED = "Cette commune ne propose pas de demandes en ligne."
UNKNOWN_CATEGORY = "Cette catégorie de demande n'existe pas."
UNKNOWN_DOCUMENT = "Ce document n'est pas demandé pour cette catégorie."
MESSAGE_FILES_MAX = 10
MESSAGE_DUPLICATE_WINDOW = timedelta(minutes=2)
ORPHAN_AGE = timedelta(days=1)
AGENT_SEEN_REFRESH = timedelta(hours=1)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Upload:
    """A file part as received: the name the sender gave (display only) and the bytes."""

    filename: str | None
    data: bytes


@dataclass
class CheckedFile:
    slot: str | None
    label: str
    filename: str
    file_type: str
    content_type: str
    size: int
    sha256: str
    data: bytes = field(repr=False)


# Views ---------------------------------------------------------------------------------------
def category_view(category: Category) -> dict[str, Any]:
    return {
        "id": category.id, "label": category.label, "description": category.description,
        "kind": category.kind, "fields": list(category.fields or []),
        "required_attachments": [
            {**doc, "max_size_label": domain.size_label(doc["max_size"]),
             "accept": accept_attribute(doc["accepted_types"])}
            for doc in category.documents or []],
        "statuses": list(category.statuses or []),
        "transitions": dict(category.transitions or {}),
        "active": category.active, "position": category.position,
        "version": category.version,
    }


def _definition(category: Category) -> dict[str, Any]:
    return {"label": category.label, "description": category.description,
            "kind": category.kind, "fields": category.fields,
            "required_attachments": category.documents, "statuses": category.statuses,
            "transitions": category.transitions}


def _person(kind: str, account_id: str | None, email: str | None, *, agent_view: bool):
    if kind == "agent" and not agent_view:
        # Families see "la mairie", not which agent.
        return {"kind": "agent", "account_id": None, "email": None}
    return {"kind": kind, "account_id": account_id, "email": email}


@dataclass
class Operations:
    db: Database
    store: DocumentStore
    max_upload: int

    # helpers ---------------------------------------------------------------------------------
    @staticmethod
    def _commune(session: Session, slug: str) -> dict[str, Any]:
        return commune_or_404(session, slug)

    @staticmethod
    def _offers_requests(commune: dict[str, Any]) -> bool:
        modules = (commune.get("settings") or {}).get("modules")
        return modules is None or "requests" in modules

    def _lock_family(self, session: Session, family_id: str) -> None:
        """Serialise one household's submissions (duplicate detection); SQLite's BEGIN
        IMMEDIATE already serialises every writer."""
        if not self.db.is_sqlite:
            digest = hashlib.sha256(f"requests:{family_id}".encode()).digest()
            key = int.from_bytes(digest[:8], "big", signed=True)
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def _request(self, session: Session, commune: dict[str, Any], request_id: str,
                 principal: Principal, agent: bool, *, lock: bool = False) -> Request:
        query = select(Request).where(Request.id == request_id,
                                      Request.commune_id == commune["id"])
        if not agent:
            query = query.where(Request.family_id == principal.family_id)
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        found = session.scalar(query)
        if found is None:
            raise Problem(404, "Cette demande n'existe pas.")
        return found

    def _recipients(self, session: Session, family_id: str) -> list[str]:
        snapshot = household(session, family_id)
        return recipients(snapshot["snapshot"]) if snapshot else []

    def _store_files(self, session: Session, files: list[CheckedFile], created: list[str]):
        """Put the files in the store; remembers the keys this call created (to remove them
        again if the transaction fails)."""
        for checked in files:
            existed = self.store.exists(checked.sha256)
            key = self.store.put(checked.data)
            if not existed:
                created.append(key)

    def _discard(self, keys: list[str]) -> None:
        """Remove files this call created, unless a row refers to them after all."""
        if not keys:
            return
        try:
            with self.db.sessions() as session:
                used = set(session.scalars(select(Document.storage_key).where(
                    Document.storage_key.in_(keys))))
            for key in keys:
                if key not in used:
                    self.store.delete(key)
        except Exception:  # the sweep removes them later
            log.warning("document_cleanup_failed", keys=len(keys))

    def see_agent(self, principal: Principal, slug: str) -> None:
        """Remember an agent of the commune from their token (for assignment)."""
        if not principal.is_agent_of(slug):
            return
        moment = now()
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            known = session.get(Agent, (commune["id"], principal.account_id))
            if (known is not None and known.email == principal.email
                    and known.last_seen_at > moment - AGENT_SEEN_REFRESH):
                return
        try:
            with self.db.transaction() as session:
                known = session.get(Agent, (commune["id"], principal.account_id))
                if known is None:
                    session.add(Agent(commune_id=commune["id"], account_id=principal.account_id,
                                      email=principal.email, first_seen_at=moment,
                                      last_seen_at=moment))
                else:
                    known.email = principal.email
                    known.last_seen_at = moment
        except IntegrityError:  # seen by a concurrent call at the same moment
            pass

    # categories -----------------------------------------------------------------------------
    def list_categories(self, slug: str, agent: bool, include_all: bool) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            if not agent and not self._offers_requests(commune):
                raise Problem(404, NOT_OFFERED)
            query = select(Category).where(Category.commune_id == commune["id"])
            if not (agent and include_all):
                query = query.where(Category.active.is_(True))
            rows = session.scalars(query.order_by(Category.position, Category.label))
            return {"items": [category_view(c) for c in rows], "next": None}

    def get_category(self, slug: str, category_id: str, agent: bool) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            category = session.get(Category, category_id)
            if (category is None or category.commune_id != commune["id"]
                    or (not agent and not category.active)):
                raise Problem(404, UNKNOWN_CATEGORY)
            return category_view(category)

    def create_category(self, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            checked = domain.check_category(payload, max_upload=self.max_upload)
        except domain.RuleError as exc:
            raise Problem(422, exc.detail, errors=exc.errors) from exc
        moment = now()
        try:
            with self.db.transaction() as session:
                commune = self._commune(session, slug)
                category = Category(id=new_id(), commune_id=commune["id"],
                                    label=checked["label"],
                                    description=checked["description"], kind=checked["kind"],
                                    fields=checked["fields"], documents=checked["documents"],
                                    statuses=checked["statuses"],
                                    transitions=checked["transitions"],
                                    active=payload.get("active", True),
                                    position=payload.get("position", 0), version=1,
                                    created_at=moment, updated_at=moment)
                session.add(category)
                session.flush()
                return category_view(category)
        except IntegrityError as exc:
            raise _label_taken() from exc

    def update_category(self, slug: str, category_id: str,
                        patch: dict[str, Any]) -> dict[str, Any]:
        try:
            with self.db.transaction() as session:
                commune = self._commune(session, slug)
                query = select(Category).where(Category.id == category_id,
                                               Category.commune_id == commune["id"])
                if not self.db.is_sqlite:
                    query = query.with_for_update()
                category = session.scalar(query)
                if category is None:
                    raise Problem(404, UNKNOWN_CATEGORY)
                if "version" in patch and patch["version"] != category.version:
                    raise Problem(409, "La catégorie a été modifiée entre-temps : rechargez la "
                                       "page puis recommencez.")
                definition = _definition(category)
                keys = ("label", "description", "kind", "fields", "required_attachments",
                        "statuses", "transitions")
                definition.update({k: patch[k] for k in keys if k in patch})
                if "statuses" in patch and "transitions" not in patch:
                    definition["transitions"] = None
                try:
                    checked = domain.check_category(definition, max_upload=self.max_upload)
                except domain.RuleError as exc:
                    raise Problem(422, exc.detail, errors=exc.errors) from exc
                self._check_statuses_in_use(session, category, checked["statuses"])
                changed = False
                for attribute, value in (
                        ("label", checked["label"]), ("description", checked["description"]),
                        ("kind", checked["kind"]), ("fields", checked["fields"]),
                        ("documents", checked["documents"]),
                        ("statuses", checked["statuses"]),
                        ("transitions", checked["transitions"]),
                        ("active", patch.get("active", category.active)),
                        ("position", patch.get("position", category.position))):
                    if getattr(category, attribute) != value:
                        setattr(category, attribute, value)
                        changed = True
                if changed:
                    category.version += 1
                    category.updated_at = now()
                session.flush()
                return category_view(category)
        except IntegrityError as exc:
            raise _label_taken() from exc

    @staticmethod
    def _check_statuses_in_use(session: Session, category: Category,
                               statuses: list[str]) -> None:
        removed = [s for s in category.statuses or [] if s not in statuses]
        if not removed:
            return
        in_use = sorted(set(session.scalars(select(Request.status).where(
            Request.category_id == category.id, Request.status.in_(removed)))))
        if in_use:
            message = (f"Des demandes de cette catégorie sont au statut "
                       f"{domain.quoted(in_use)} : ce statut ne peut pas être retiré.")
            raise Problem(409, message, errors={"statuses": [message]})

    # submission -------------------------------------------------------------------------------
    def submit(self, principal: Principal, slug: str, form: dict[str, list[str]],
               files: dict[str, list[Upload]],
               idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
        """A household's request; returns (its view, created). A repeat of a request already
        received (same Idempotency-Key, or same category, answers and files within
        DUPLICATE_WINDOW) returns the first one, with created False."""
        if idempotency_key is not None and not domain.IDEMPOTENCY_KEY.match(idempotency_key):
            raise Problem(400, "L'en-tête Idempotency-Key doit faire 1 à 200 caractères "
                               "imprimables.")
        family_id = principal.family_id
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            if not self._offers_requests(commune):
                raise Problem(404, NOT_OFFERED)
            category_id = _first(form.get("category"))
            if not category_id:
                raise Problem(422, NOT_SENT, errors={"category": [domain.REQUIRED]})
            category = session.get(Category, category_id) if len(category_id) <= 36 else None
            if (category is None or category.commune_id != commune["id"]
                    or not category.active):
                raise Problem(422, NOT_SENT, errors={"category": [UNKNOWN_CATEGORY]})
            kids = children_of(session, family_id)
            to = self._recipients(session, family_id)
        given = {spec["name"]: _first(form.get(spec["name"])) for spec in category.fields}
        given = {k: v for k, v in given.items() if v is not None}
        answers, errors = domain.check_answers(category.fields, given, kids, category.kind)
        checked = self._check_files(category.documents, files, errors, extra_slot=False)
        if errors:
            raise Problem(422, NOT_SENT, errors=errors)
        fingerprint = domain.fingerprint(category.id, answers.values,
                                         sorted((c.slot or "", c.sha256) for c in checked))
        created_keys: list[str] = []
        try:
            with self.db.transaction() as session:
                self._lock_family(session, family_id)
                existing = self._existing_submission(session, family_id, commune["id"],
                                                     idempotency_key, fingerprint)
                if existing is not None:
                    return self._detail(session, slug, existing, agent=False), False
                moment = now()
                request_id = new_id()
                row = Request(id=request_id, commune_id=commune["id"], family_id=family_id,
                              reference=domain.reference_for(request_id, moment),
                              category_id=category.id, category_label=category.label,
                              category_kind=category.kind, category_version=category.version,
                              status=domain.SUBMITTED, answers=answers.rows,
                              submitted_by=principal.account_id, fingerprint=fingerprint,
                              idempotency_key=idempotency_key, created_at=moment,
                              updated_at=moment, status_changed_at=moment)
                session.add(row)
                session.flush()
                documents = self._add_documents(session, row, None, checked, "family",
                                                principal.account_id, moment)
                session.add(HistoryEntry(
                    request_id=row.id, at=moment, actor_kind="family",
                    actor_id=principal.account_id, actor_email=principal.email,
                    action="submitted", new_status=domain.SUBMITTED,
                    details={"document_ids": [d.id for d in documents]}))
                self._store_files(session, checked, created_keys)
                outbox.add(session, events.request_submitted(row, to))
                session.flush()
                view = self._detail(session, slug, row, agent=False)
        except BaseException:
            self._discard(created_keys)
            raise
        return view, True

    @staticmethod
    def _existing_submission(session: Session, family_id: str, commune_id: str,
                             key: str | None, fingerprint: str) -> Request | None:
        if key is not None:
            found = session.scalar(select(Request).where(Request.family_id == family_id,
                                                         Request.idempotency_key == key))
            if found is not None:
                if found.fingerprint != fingerprint:
                    raise Problem(409, "Cette clé d'idempotence (Idempotency-Key) a déjà servi "
                                       "pour une autre demande.")
                return found
        return session.scalar(select(Request).where(
            Request.family_id == family_id, Request.commune_id == commune_id,
            Request.fingerprint == fingerprint,
            Request.created_at >= now() - domain.DUPLICATE_WINDOW,
        ).order_by(Request.created_at).limit(1))

    def _check_files(self, documents: list[dict[str, Any]], files: dict[str, list[Upload]],
                     errors: dict[str, list[str]], *, extra_slot: bool) -> list[CheckedFile]:
        """Every file against its document's rules (by content). For a reply
        (``extra_slot``), files named ``documents`` are extra documents of any type."""
        specs = {doc["name"]: doc for doc in documents}
        checked: list[CheckedFile] = []
        for name in files:
            if name not in specs and not (extra_slot and name == "documents"):
                errors.setdefault(name, []).append(UNKNOWN_DOCUMENT)
        for doc in documents:
            uploads = files.get(doc["name"], [])
            if not uploads:
                if doc["required"] and not extra_slot:
                    errors.setdefault(doc["name"], []).append(domain.DOCUMENT_REQUIRED)
                continue
            if len(uploads) > doc.get("max_files", 1):
                errors.setdefault(doc["name"], []).append(
                    "Un seul fichier pour ce document." if doc.get("max_files", 1) == 1
                    else f"Au plus {doc['max_files']} fichiers pour ce document.")
                continue
            checked.extend(self._check_uploads(doc["name"], doc["label"], uploads,
                                               doc["accepted_types"], doc["max_size"], errors))
        if extra_slot and files.get("documents"):
            extra = files["documents"]
            if len(extra) > MESSAGE_FILES_MAX:
                errors.setdefault("documents", []).append(
                    f"Au plus {MESSAGE_FILES_MAX} fichiers par message.")
            else:
                checked.extend(self._check_uploads(
                    None, "Document joint", extra, list(domain.FILE_TYPES),
                    min(domain.DEFAULT_MAX_SIZE, self.max_upload), errors))
        return checked

    @staticmethod
    def _check_uploads(slot: str | None, label: str, uploads: list[Upload], accepted: list[str],
                       max_size: int, errors: dict[str, list[str]]) -> list[CheckedFile]:
        key = slot or "documents"
        out = []
        for upload in uploads:
            try:
                found = inspect(upload.data, accepted, max_size)
            except DocumentError as exc:
                message = str(exc)
                if len(uploads) > 1:
                    message = f"{display_name(upload.filename, 'pdf').rsplit('.', 1)[0]} : " \
                              f"{message}"
                errors.setdefault(key, []).append(message)
                continue
            out.append(CheckedFile(slot, label, display_name(upload.filename, found.file_type),
                                   found.file_type, found.content_type, found.size,
                                   found.sha256, upload.data))
        return out

    @staticmethod
    def _add_documents(session: Session, row: Request, message: Message | None,
                       checked: list[CheckedFile], kind: str, account_id: str,
                       moment: datetime) -> list[Document]:
        documents = []
        for item in checked:
            document = Document(id=new_id(), request_id=row.id,
                                message_id=message.id if message else None, slot=item.slot,
                                label=item.label, filename=item.filename,
                                file_type=item.file_type, content_type=item.content_type,
                                size=item.size, storage_key=item.sha256,
                                uploaded_by_kind=kind, uploaded_by=account_id,
                                created_at=moment)
            session.add(document)
            documents.append(document)
        session.flush()
        return documents

    # reading ----------------------------------------------------------------------------------
    def list_requests(self, principal: Principal, slug: str, agent: bool,
                      query: dict[str, Any]) -> dict[str, Any]:
        limit = query.get("limit") or domain.PAGE
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            stmt = select(Request).where(Request.commune_id == commune["id"])
            if agent:
                statuses = [s.strip() for s in (query.get("status") or "").split(",")
                            if s.strip()]
                unknown = [s for s in statuses if s not in domain.STATUSES]
                if unknown:
                    raise Problem(422, errors={"status": [
                        f"Statut inconnu : {', '.join(unknown)} (valeurs : "
                        f"{', '.join(domain.STATUSES)})."]})
                if statuses:
                    stmt = stmt.where(Request.status.in_(statuses))
                if query.get("category"):
                    stmt = stmt.where(Request.category_id == query["category"])
                assigned = query.get("assigned")
                if assigned == "me":
                    stmt = stmt.where(Request.assigned_to == principal.account_id)
                elif assigned == "none":
                    stmt = stmt.where(Request.assigned_to.is_(None))
                elif assigned:
                    stmt = stmt.where(Request.assigned_to == assigned)
            else:
                stmt = stmt.where(Request.family_id == principal.family_id)
            order = (Request.created_at, Request.id)
            if query.get("cursor"):
                try:
                    created, request_id = domain.decode_cursor(query["cursor"], 2)
                    moment = datetime.fromisoformat(created)
                except (domain.RuleError, ValueError) as exc:
                    raise Problem(422, errors={"cursor": ["Curseur de pagination invalide."]}
                                  ) from exc
                key = tuple_(*order)
                stmt = stmt.where(key > (moment, request_id) if agent
                                  else key < (moment, request_id))
            if agent:
                stmt = stmt.order_by(Request.created_at, Request.id)
            else:
                stmt = stmt.order_by(Request.created_at.desc(), Request.id.desc())
            rows = list(session.scalars(stmt.limit(limit + 1)))
            agents = self._agents_by_id(session, commune["id"]) if agent else {}
            names = self._family_names(session, {r.family_id for r in rows}) if agent else {}
            items = [self._summary(r, agents, names, agent) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = domain.encode_cursor([last.created_at.isoformat(), last.id])
        return {"items": items, "next": next_cursor}

    @staticmethod
    def _agents_by_id(session: Session, commune_id: str) -> dict[str, Agent]:
        return {a.account_id: a for a in session.scalars(
            select(Agent).where(Agent.commune_id == commune_id))}

    @staticmethod
    def _family_names(session: Session, family_ids: set[str]) -> dict[str, str]:
        if not family_ids:
            return {}
        rows = session.execute(select(HOUSEHOLDS.c.family_id, HOUSEHOLDS.c.family_name)
                               .where(HOUSEHOLDS.c.family_id.in_(family_ids)))
        return {r.family_id: r.family_name for r in rows}

    @staticmethod
    def _summary(row: Request, agents: dict[str, Agent], names: dict[str, str],
                 agent: bool) -> dict[str, Any]:
        assigned = None
        if agent and row.assigned_to:
            known = agents.get(row.assigned_to)
            assigned = {"account_id": row.assigned_to, "email": known.email if known else "",
                        "last_seen_at": known.last_seen_at if known else None}
        return {
            "id": row.id, "reference": row.reference,
            "category": {"id": row.category_id, "label": row.category_label,
                         "kind": row.category_kind},
            "status": row.status, "status_label": domain.status_label(row.status),
            "created_at": row.created_at, "updated_at": row.updated_at,
            "family_id": row.family_id,
            "family_name": names.get(row.family_id) if agent else None,
            "assigned_to": assigned,
            "waiting_for_family": row.status == domain.WAITING,
        }

    def get_request(self, principal: Principal, slug: str, request_id: str,
                    agent: bool) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            row = self._request(session, commune, request_id, principal, agent)
            return self._detail(session, slug, row, agent=agent)

    def _detail(self, session: Session, slug: str, row: Request, *,
                agent: bool) -> dict[str, Any]:
        category = session.get(Category, row.category_id)
        transitions = (category.transitions or {}) if category else {}
        documents = list(session.scalars(select(Document).where(Document.request_id == row.id)
                                         .order_by(Document.created_at, Document.id)))
        messages = list(session.scalars(select(Message).where(Message.request_id == row.id)
                                        .order_by(Message.created_at, Message.id)))
        history = list(session.scalars(select(HistoryEntry)
                                       .where(HistoryEntry.request_id == row.id)
                                       .order_by(HistoryEntry.id)))
        agents = self._agents_by_id(session, row.commune_id) if agent else {}
        names = self._family_names(session, {row.family_id}) if agent else {}
        base = f"/api/requests/communes/{slug}/requests/{row.id}/documents"
        by_message: dict[str, list[str]] = {}
        for document in documents:
            if document.message_id:
                by_message.setdefault(document.message_id, []).append(document.id)
        view = self._summary(row, agents, names, agent)
        view.update({
            "fields": list(row.answers or []),
            "documents": [{
                "id": d.id, "name": d.slot, "label": d.label, "filename": d.filename,
                "content_type": d.content_type, "size": d.size,
                "uploaded_by": d.uploaded_by_kind, "uploaded_at": d.created_at,
                "message_id": d.message_id, "url": f"{base}/{d.id}"} for d in documents],
            "messages": [{
                "id": m.id, "body": m.body, "created_at": m.created_at,
                "author": _person(m.author_kind, m.author_id, m.author_email,
                                  agent_view=agent),
                "document_ids": by_message.get(m.id, [])} for m in messages],
            "history": [{
                "at": h.at, "action": h.action,
                "actor": _person(h.actor_kind, h.actor_id, h.actor_email, agent_view=agent),
                "old_status": h.old_status, "old_status_label": domain.status_label(h.old_status),
                "new_status": h.new_status, "new_status_label": domain.status_label(h.new_status),
                "message": h.message,
                "details": (h.details or {}) if agent else _family_details(h)} for h in history],
            "allowed_transitions": list(transitions.get(row.status, [])) if agent else [],
            "can_reply": bool(transitions.get(row.status)),
            "household": self._household(session, row) if agent else None,
        })
        return view

    @staticmethod
    def _household(session: Session, row: Request) -> dict[str, Any]:
        snapshot = household(session, row.family_id)
        data = snapshot["snapshot"] if snapshot else {}
        code = session.scalar(select(HOUSEHOLD_COMMUNES.c.family_code).where(
            HOUSEHOLD_COMMUNES.c.family_id == row.family_id,
            HOUSEHOLD_COMMUNES.c.commune_id == row.commune_id))
        return {
            "family_id": row.family_id,
            "family_name": snapshot["family_name"] if snapshot else None,
            "family_code": code,
            "address": data.get("address"),
            "guardians": [{k: g.get(k) for k in ("first_name", "last_name", "email", "phones",
                                                  "pays")} for g in data.get("guardians", [])],
            "children": [{k: c[k] for k in ("id", "first_name", "last_name", "birth_date",
                                            "school", "class_name", "allergies")}
                         for c in children_of(session, row.family_id)],
        }

    def open_document(self, principal: Principal, slug: str, request_id: str,
                      document_id: str, agent: bool):
        """(file object, document row) for a download by the household or an agent."""
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            row = self._request(session, commune, request_id, principal, agent)
            document = session.get(Document, document_id) if len(document_id) <= 36 else None
            if document is None or document.request_id != row.id:
                raise Problem(404, "Ce document n'existe pas.")
        try:
            return self.store.open(document.storage_key), document
        except LookupError as exc:
            log.error("document_missing", document_id=document.id)
            raise Problem(404, "Ce document n'est plus disponible.") from exc

    # the family's reply, agents' messages -------------------------------------------------
    def post_message(self, principal: Principal, slug: str, request_id: str, body: str | None,
                     files: dict[str, list[Upload]], agent: bool) -> dict[str, Any]:
        kind = "agent" if agent else "family"
        text_body = domain.clean_text(body or "", multiline=True)
        errors: dict[str, list[str]] = {}
        if len(text_body) > domain.LONG_TEXT_MAX:
            errors["body"] = [f"Au plus {domain.LONG_TEXT_MAX} caractères."]
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            row = self._request(session, commune, request_id, principal, agent)
            category = session.get(Category, row.category_id)
        transitions = category.transitions or {}
        if not agent and not transitions.get(row.status):
            raise Problem(409, "Cette demande est clôturée : faites une nouvelle demande si "
                               "besoin.")
        checked = self._check_files(category.documents or [], files, errors, extra_slot=True)
        if not text_body and not checked and not errors:
            errors["body"] = ["Écrivez un message ou joignez un document."]
        if errors:
            raise Problem(422, REPLY_NOT_SENT, errors=errors)
        fingerprint = domain.fingerprint(kind, principal.account_id, text_body,
                                         sorted((c.slot or "", c.sha256) for c in checked))
        created_keys: list[str] = []
        try:
            with self.db.transaction() as session:
                row = self._request(session, commune, request_id, principal, agent, lock=True)
                repeated = session.scalar(select(Message.id).where(
                    Message.request_id == row.id, Message.fingerprint == fingerprint,
                    Message.created_at >= now() - MESSAGE_DUPLICATE_WINDOW).limit(1))
                if repeated is not None:
                    return self._detail(session, slug, row, agent=agent)
                moment = now()
                message = Message(id=new_id(), request_id=row.id, author_kind=kind,
                                  author_id=principal.account_id, author_email=principal.email,
                                  body=text_body, fingerprint=fingerprint, created_at=moment)
                session.add(message)
                session.flush()
                documents = self._add_documents(session, row, message, checked, kind,
                                                principal.account_id, moment)
                session.add(HistoryEntry(
                    request_id=row.id, at=moment, actor_kind=kind,
                    actor_id=principal.account_id, actor_email=principal.email,
                    action="message", message=text_body or None,
                    details={"message_id": message.id,
                             "document_ids": [d.id for d in documents]}))
                row.updated_at = moment
                if (not agent and row.status == domain.WAITING
                        and domain.IN_PROGRESS in transitions.get(domain.WAITING, [])):
                    self._change_status(session, row, domain.IN_PROGRESS, principal, "family",
                                        None, moment)
                self._store_files(session, checked, created_keys)
                session.flush()
                view = self._detail(session, slug, row, agent=agent)
        except BaseException:
            self._discard(created_keys)
            raise
        return view

    # agents' workflow ------------------------------------------------------------------------
    def transition(self, principal: Principal, slug: str, request_id: str, target: str,
                   message: str | None) -> dict[str, Any]:
        text_body = domain.clean_text(message or "", multiline=True) or None
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = self._request(session, commune, request_id, principal, True, lock=True)
            category = session.get(Category, row.category_id)
            try:
                domain.check_transition(category.transitions or {}, row.status, target)
            except domain.RuleError as exc:
                raise Problem(409, exc.detail, errors=exc.errors) from exc
            if target in domain.MESSAGE_NEEDED and not text_body:
                raise Problem(422, errors={"message": [domain.MESSAGE_NEEDED[target]]})
            moment = now()
            if text_body:
                session.add(Message(id=new_id(), request_id=row.id, author_kind="agent",
                                    author_id=principal.account_id,
                                    author_email=principal.email, body=text_body,
                                    created_at=moment))
            self._change_status(session, row, target, principal, "agent", text_body, moment)
            session.flush()
            return self._detail(session, slug, row, agent=True)

    def _change_status(self, session: Session, row: Request, target: str,
                       principal: Principal, kind: str, message: str | None,
                       moment: datetime) -> None:
        old = row.status
        row.status = target
        row.status_changed_at = moment
        row.updated_at = moment
        session.add(HistoryEntry(request_id=row.id, at=moment, actor_kind=kind,
                                 actor_id=principal.account_id, actor_email=principal.email,
                                 action="status_changed", old_status=old, new_status=target,
                                 message=message, details={}))
        outbox.add(session, events.status_changed(
            row, old, target, self._recipients(session, row.family_id), message))

    def assign(self, principal: Principal, slug: str, request_id: str,
               agent_account_id: str | None) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = self._request(session, commune, request_id, principal, True, lock=True)
            target = None
            if agent_account_id is not None:
                target = session.get(Agent, (commune["id"], agent_account_id))
                if target is None:
                    raise Problem(422, errors={"agent_account_id": [
                        "Cet agent n'est pas connu dans votre commune : il doit s'être "
                        "connecté au portail au moins une fois."]})
            if row.assigned_to != agent_account_id:
                moment = now()
                session.add(HistoryEntry(
                    request_id=row.id, at=moment, actor_kind="agent",
                    actor_id=principal.account_id, actor_email=principal.email,
                    action="assigned",
                    details={"previous": row.assigned_to, "agent_account_id": agent_account_id,
                             "agent_email": target.email if target else None}))
                row.assigned_to = agent_account_id
                row.updated_at = moment
            session.flush()
            return self._detail(session, slug, row, agent=True)

    def list_agents(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            rows = session.scalars(select(Agent).where(Agent.commune_id == commune["id"])
                                   .order_by(Agent.email, Agent.account_id))
            return {"items": [{"account_id": a.account_id, "email": a.email,
                               "last_seen_at": a.last_seen_at} for a in rows]}

    # the commune's settings, retention ----------------------------------------------------
    def get_settings(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            row = session.get(CommuneSettings, commune["id"])
            return {"retention_months": row.retention_months if row
                    else domain.RETENTION_DEFAULT_MONTHS}

    def update_settings(self, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            with self.db.transaction() as session:
                commune = self._commune(session, slug)
                row = session.get(CommuneSettings, commune["id"])
                if row is None:
                    row = CommuneSettings(commune_id=commune["id"])
                    session.add(row)
                row.retention_months = payload["retention_months"]
                row.updated_at = now()
        except IntegrityError:  # created by a concurrent call: apply on top
            return self.update_settings(slug, payload)
        return {"retention_months": payload["retention_months"]}

    def purge_expired(self, moment: datetime | None = None, *, batch: int = 200) -> int:
        """Delete the decided requests (accepted, refused, closed) whose decision is older
        than their commune's retention period, with their messages, history and documents'
        rows; their files go with the next sweep. Returns how many requests were deleted."""
        moment = moment or now()
        deleted = 0
        with self.db.sessions() as session:
            communes = list(session.scalars(select(Request.commune_id).distinct()))
            months = dict(session.execute(select(CommuneSettings.commune_id,
                                                 CommuneSettings.retention_months)).all())
        for commune_id in communes:
            cutoff = domain.months_before(
                moment, months.get(commune_id, domain.RETENTION_DEFAULT_MONTHS))
            while True:
                with self.db.transaction() as session:
                    ids = list(session.scalars(select(Request.id).where(
                        Request.commune_id == commune_id,
                        Request.status.in_(domain.DECIDED),
                        Request.status_changed_at < cutoff).limit(batch)))
                    if not ids:
                        break
                    session.execute(delete(Document).where(Document.request_id.in_(ids)))
                    session.execute(delete(Message).where(Message.request_id.in_(ids)))
                    # The history is append-only (a trigger refuses to delete the steps of a
                    # request that exists): it goes with the request, by the cascade.
                    session.execute(delete(Request).where(Request.id.in_(ids)))
                deleted += len(ids)
        if deleted:
            log.info("requests_purged", count=deleted)
        return deleted

    def sweep_files(self, moment: datetime | None = None) -> int:
        """Remove stored files no document refers to, once they are ORPHAN_AGE old (a file
        stored by a submission still in flight is younger than that)."""
        moment = moment or now()
        with self.db.sessions() as session:
            used = set(session.scalars(select(Document.storage_key).distinct()))
        removed = 0
        for key, written in list(self.store.entries()):
            if key not in used and written < moment - ORPHAN_AGE:
                self.store.delete(key)
                removed += 1
        clean = getattr(self.store, "clean_temporary", None)
        if clean is not None:
            clean(moment - ORPHAN_AGE)
        if removed:
            log.info("documents_swept", count=removed)
        return removed


def _first(values: list[str] | None) -> str | None:
    for value in values or []:
        if value is not None and value.strip():
            return value
    return None


def _family_details(entry: HistoryEntry) -> dict[str, Any]:
    """What a family sees of a step's details: the documents and message it concerns, not
    which agent a request was assigned to."""
    details = entry.details or {}
    return {k: v for k, v in details.items() if k in ("document_ids", "message_id")}


def _label_taken() -> Problem:
    return Problem(409, "Une catégorie de cette commune porte déjà ce nom.",
                   errors={"label": ["Une catégorie de cette commune porte déjà ce nom."]})
