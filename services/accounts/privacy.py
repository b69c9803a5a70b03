"""GDPR in accounts (issue 8): a household's archive, its erasure, the audit log.

Why here: accounts owns the household and the identity of the caller, and is the one service
every other keys its data on. The archive is assembled here, from each service's internal
export (``services/common/privacy.py``), with service tokens: the parent waits for it (a
synchronous call is allowed where a person waits, DESIGN section 1) and an API client gets
exactly what the portal offers, from one endpoint. No service imports another.

Erasure: the family asks; an agent of each of its communes accepts or refuses (with a
reason). It is accepted only when nothing blocks it: invoices left to pay, credit left to
refund, a payment under way (billing), bookings to come (reservations) — the family is told
which, in French, before it even asks. Once every commune accepted, accounts erases its own
copy and publishes ``accounts.household.erased`` in the same transaction; every service
erases or anonymises the rest. Billing keeps invoices, payments and credit notes for the
accounting retention period (10 years, Code de commerce L123-22; public accounting rules),
with the payer's name only.
"""

from __future__ import annotations

import html
import json
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, BinaryIO

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from services.common import outbox
from services.common.auth import Principal
from services.common.db import Database
from services.common.errors import Problem
from services.common.events import Event
from services.common.internal import ServiceClient

from . import NAME, domain
from .models import Account, AuditEntry, Commune, ErasureRequest, Family, Membership, Token
from .operations import Operations, child_view, guardian_view

SERVICES = ("reservations", "billing", "requests", "notifications")
# What can block an erasure lives in these two; requests and notifications erase everything.
BLOCKING_SERVICES = ("billing", "reservations")
ARCHIVE_NAMES = {"reservations": "reservations.json", "billing": "factures.json",
                 "requests": "demandes.json", "notifications": "messages.json"}
SECTION_TITLES = {
    "compte": "Compte et foyer (responsables, enfants, adresse, communes)",
    "reservations": "Réservations, présences, annulations, inscriptions, liste d'attente",
    "billing": "Factures, avoirs et paiements",
    "requests": "Demandes, leurs échanges, leur historique et leurs documents",
    "notifications": "E-mails envoyés à votre foyer",
}
ERASED_NAME = "Foyer supprimé"
AUDIT_PAGE = 50
PENDING, REFUSED, COMPLETED = "pending", "refused", "completed"


def now() -> datetime:
    return datetime.now(UTC)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)


@dataclass
class Privacy:
    db: Database
    client: Callable[[], ServiceClient]

    # ---- export ------------------------------------------------------------------------------
    def _own_export(self, session: Session, principal: Principal) -> dict[str, Any]:
        family = Operations._family(session, principal.family_id)
        account = session.get(Account, principal.account_id)
        erasures = session.scalars(select(ErasureRequest).where(
            ErasureRequest.family_id == family.id).order_by(ErasureRequest.created_at))
        return {
            "compte": {"email": account.email if account else principal.email,
                       "statut": account.status if account else None,
                       "cree_le": account.created_at if account else None,
                       "active_le": account.activated_at if account else None},
            "foyer": {"id": family.id, "nom": family.family_name, "adresse": family.address,
                      "responsables": [guardian_view(g) for g in family.guardians],
                      "enfants": [child_view(c) for c in family.children]},
            "communes": [{"commune": m.commune.name, "slug": m.commune.slug,
                          "code_famille": m.family_code, "statut": m.status,
                          "rejointe_le": m.joined_at or m.created_at}
                         for m in family.memberships],
            "demandes_de_suppression": [self._view(session, e) for e in erasures],
        }

    def export(self, principal: Principal) -> tuple[BinaryIO, str]:
        """The household's archive: ``(zip file, file name)``. Identity from the token only.

        The archive is written to a spooled temporary file (memory up to 8 MB, then disk):
        a household's documents may weigh far more than a request should hold in memory."""
        with self.db.sessions() as session:
            own = self._own_export(session, principal)
        family_id = own["foyer"]["id"]
        client = self.client()
        parts: dict[str, dict[str, Any]] = {}
        for service in SERVICES:
            answer = client.call(service, "GET", f"/internal/households/{family_id}/export")
            if answer.status_code != 200:
                raise Problem(503, "Votre archive n'a pas pu être préparée : un service du "
                                   "portail ne répond pas. Réessayez dans quelques instants.",
                              service=service)
            parts[service] = answer.json()
        buffer = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("compte.json", _dump(own))
            counts = {"compte": len(own["foyer"]["enfants"]) + len(own["foyer"]["responsables"])}
            files: list[str] = []
            for service, part in parts.items():
                archive.writestr(ARCHIVE_NAMES[service], _dump(part.get("data", {})))
                counts[service] = sum(len(v) for v in part.get("data", {}).values()
                                      if isinstance(v, list))
                for item in part.get("files", []):
                    got = client.call(service, "GET", f"/internal/households/{family_id}"
                                                      f"/documents/{item['document_id']}")
                    if got.status_code != 200:
                        continue  # removed meanwhile (retention): the JSON still lists it
                    path = f"documents/{item['path']}"
                    archive.writestr(path, got.content)
                    got.close()
                    files.append(path)
            archive.writestr("LISEZMOI.html", readme(own, counts, files))
        stamp = now().strftime("%Y-%m-%d")
        buffer.seek(0)
        return buffer, f"mes-donnees-portail-famille-{stamp}.zip"

    # ---- erasure -----------------------------------------------------------------------------
    def blockers(self, family_id: str) -> list[dict[str, str]]:
        client = self.client()
        found: list[dict[str, str]] = []
        for service in BLOCKING_SERVICES:
            answer = client.call(service, "GET",
                                 f"/internal/households/{family_id}/erasure-blockers")
            if answer.status_code != 200:
                raise Problem(503, "La vérification n'a pas pu être faite : un service du "
                                   "portail ne répond pas. Réessayez dans quelques instants.")
            found.extend({**b, "service": service} for b in answer.json()["blockers"])
        return found

    @staticmethod
    def _view(session: Session, request: ErasureRequest) -> dict[str, Any]:
        communes = []
        for commune_id in request.commune_ids:
            commune = session.get(Commune, commune_id)
            decision = (request.decisions or {}).get(commune_id) or {}
            communes.append({
                "slug": commune.slug if commune else None,
                "name": commune.name if commune else None,
                "decision": (None if not decision else
                             "accepted" if decision.get("accepted") else "refused"),
                "reason": decision.get("reason"), "decided_at": decision.get("at")})
        return {"id": request.id, "family_id": request.family_id, "status": request.status,
                "reason": request.reason, "created_at": request.created_at,
                "decided_at": request.decided_at, "refusal_reason": request.refusal_reason,
                "communes": communes}

    def my_erasure(self, principal: Principal) -> dict[str, Any]:
        with self.db.sessions() as session:
            family = Operations._family(session, principal.family_id)
            latest = session.scalar(select(ErasureRequest).where(
                ErasureRequest.family_id == family.id)
                .order_by(ErasureRequest.created_at.desc()).limit(1))
            view = self._view(session, latest) if latest else None
        return {"request": view, "blockers": self.blockers(principal.family_id)}

    def ask_erasure(self, principal: Principal, reason: str | None) -> dict[str, Any]:
        with self.db.transaction() as session:
            family = Operations._family(session, principal.family_id, lock=True)
            pending = session.scalar(select(ErasureRequest.id).where(
                ErasureRequest.family_id == family.id, ErasureRequest.status == PENDING))
            if pending is not None:
                raise Problem(409, "Votre demande de suppression est déjà en cours "
                                   "d'examen par la mairie.")
            communes = [m.commune_id for m in family.memberships if m.status == "active"]
            request = ErasureRequest(family_id=family.id, status=PENDING, reason=reason,
                                     commune_ids=communes, decisions={}, created_at=now())
            session.add(request)
            session.flush()
            if not communes:  # no commune left to decide: nothing keeps the data
                self._erase(session, family, request)
            return self._view(session, request)

    def _request_in(self, session: Session, slug: str, request_id: str,
                    *, lock: bool = False) -> tuple[ErasureRequest, Commune]:
        commune = Operations._commune(session, slug)
        query = select(ErasureRequest).where(ErasureRequest.id == request_id)
        if lock:
            query = query.with_for_update()
        request = session.scalar(query)
        if request is None or commune.id not in (request.commune_ids or []):
            raise Problem(404, "Cette demande de suppression n'existe pas dans cette commune.")
        return request, commune

    def list_erasures(self, slug: str, status: str | None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = Operations._commune(session, slug)
            query = select(ErasureRequest).order_by(ErasureRequest.created_at.desc())
            if status:
                query = query.where(ErasureRequest.status == status)
            rows = [r for r in session.scalars(query.limit(500))
                    if commune.id in (r.commune_ids or [])]
            items = []
            for row in rows:
                view = self._view(session, row)
                family = session.get(Family, row.family_id)
                code = session.scalar(select(Membership.family_code).where(
                    Membership.family_id == row.family_id,
                    Membership.commune_id == commune.id))
                items.append({**view, "family_name": family.family_name if family else None,
                              "family_code": code})
        return {"items": items, "next": None}

    def erasure_for_agent(self, slug: str, request_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            request, commune = self._request_in(session, slug, request_id)
            view = self._view(session, request)
            family = session.get(Family, request.family_id)
            view["family_name"] = family.family_name if family else None
        view["blockers"] = self.blockers(request.family_id) if request.status == PENDING else []
        return view

    def decide(self, principal: Principal, slug: str, request_id: str, accept: bool,
               reason: str | None) -> dict[str, Any]:
        reason = (reason or "").strip() or None
        if not accept and not reason:
            raise Problem(422, "Indiquez à la famille la raison du refus.",
                          errors={"reason": ["Indiquez la raison du refus."]})
        with self.db.sessions() as session:
            request, _ = self._request_in(session, slug, request_id)
            family_id = request.family_id
        # Checked before the transaction (calls to other services), and again just before
        # the erasure itself below would be too late to tell the agent anything useful.
        blockers = self.blockers(family_id) if accept else []
        if blockers:
            raise Problem(409, "La suppression n'est pas possible pour l'instant : "
                          + " ".join(b["message"] for b in blockers), blockers=blockers)
        with self.db.transaction() as session:
            request, commune = self._request_in(session, slug, request_id, lock=True)
            if request.status != PENDING:
                raise Problem(409, "Cette demande a déjà été traitée.")
            moment = now()
            decisions = dict(request.decisions or {})
            decisions[commune.id] = {"accepted": accept, "reason": reason,
                                     "account_id": principal.account_id,
                                     "at": moment.isoformat()}
            request.decisions = decisions
            if not accept:
                request.status, request.refusal_reason = REFUSED, reason
                request.decided_at = moment
            elif all((decisions.get(c) or {}).get("accepted") for c in request.commune_ids):
                family = Operations._family(session, request.family_id, lock=True)
                self._erase(session, family, request)
            session.flush()
            return self._view(session, request)

    @staticmethod
    def _erase(session: Session, family: Family, request: ErasureRequest) -> None:
        """Accounts' part of the erasure, and the event for every other service, together."""
        moment = now()
        commune_ids = list(request.commune_ids or [])
        family.family_name = ERASED_NAME
        family.sort_key = domain.sort_key(ERASED_NAME)
        family.search_text = ""
        family.address = None
        family.guardians.clear()
        family.children.clear()
        family.memberships.clear()
        family.version += 1
        family.updated_at = moment
        accounts = list(session.scalars(select(Account).where(Account.family_id == family.id)))
        for account in accounts:
            session.execute(delete(Token).where(Token.account_id == account.id))
            account.email = f"supprime-{account.id}@invalid"
            account.password_hash = None
            account.status = "erased"
        request.status = COMPLETED
        request.reason = None  # the family's own words may name people
        request.decided_at = moment
        outbox.add(session, Event.new(
            "accounts.household.erased",
            {"family_id": family.id, "commune_ids": commune_ids, "version": family.version,
             "erased_at": moment.isoformat(), "request_id": request.id},
            producer=NAME))

    # ---- audit log -----------------------------------------------------------------------------
    def audit_log(self, slug: str, *, account: str | None, family_id: str | None,
                  date_from: date | None, date_to: date | None,
                  cursor: str | None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = Operations._commune(session, slug)
            query = (select(AuditEntry, Family.family_name)
                     .outerjoin(Family, Family.id == AuditEntry.family_id)
                     .where(AuditEntry.commune_id == commune.id)
                     .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                     .limit(AUDIT_PAGE + 1))
            if account:
                query = query.where((AuditEntry.account_id == account)
                                    | (AuditEntry.email == account.strip().lower()))
            if family_id:
                query = query.where(AuditEntry.family_id == family_id)
            if date_from:
                query = query.where(AuditEntry.at >= datetime.combine(date_from, time(), UTC))
            if date_to:
                query = query.where(AuditEntry.at < datetime.combine(
                    date.fromordinal(date_to.toordinal() + 1), time(), UTC))
            if cursor:
                try:
                    at, entry_id = domain.decode_cursor(cursor, 2)
                except domain.RuleError as exc:
                    raise Problem(422, exc.detail, errors=exc.errors) from exc
                query = query.where(tuple_(AuditEntry.at, AuditEntry.id)
                                    < (datetime.fromisoformat(at), entry_id))
            rows = session.execute(query).all()
        items = [{"id": e.id, "at": e.at, "service": e.service, "account_id": e.account_id,
                  "email": e.email, "family_id": e.family_id, "family_name": name,
                  "action": e.action, "object_id": e.object_id}
                 for e, name in rows[:AUDIT_PAGE]]
        next_cursor = None
        if len(rows) > AUDIT_PAGE:
            last = rows[AUDIT_PAGE - 1][0]
            next_cursor = domain.encode_cursor([last.at.isoformat(), last.id])
        return {"items": items, "next": next_cursor}


# ---- the archive's summary ---------------------------------------------------------------------
def readme(own: dict[str, Any], counts: dict[str, int], files: list[str]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><th scope=\"row\">{e(SECTION_TITLES[key])}</th><td>{e(name)}</td>"
        f"<td>{counts.get(key, 0)}</td></tr>"
        for key, name in [("compte", "compte.json"),
                          *((s, ARCHIVE_NAMES[s]) for s in SERVICES)])
    children = "".join(f"<li>{e(c['first_name'])} {e(c['last_name'])}</li>"
                       for c in own["foyer"]["enfants"]) or "<li>Aucun</li>"
    documents = "".join(f"<li>{e(f)}</li>" for f in files) or "<li>Aucun document</li>"
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Vos données — Portail Famille</title></head>
<body>
<h1>Vos données sur le Portail Famille</h1>
<p>Archive préparée le {e(now().strftime('%d/%m/%Y à %H:%M'))} (UTC) pour le foyer
{e(own['foyer']['nom'])} (compte {e(own['compte']['email'] or '')}), à votre demande
(droit d'accès et droit à la portabilité, articles 15 et 20 du RGPD).</p>
<h2>Contenu</h2>
<table><thead><tr><th scope="col">Données</th><th scope="col">Fichier</th>
<th scope="col">Éléments</th></tr></thead><tbody>{rows}</tbody></table>
<p>Les fichiers <code>.json</code> se lisent avec un éditeur de texte ou un tableur ; les
montants sont en euros, les dates au format AAAA-MM-JJ.</p>
<h2>Enfants</h2><ul>{children}</ul>
<h2>Documents joints à vos demandes</h2><ul>{documents}</ul>
<h2>Vos droits</h2>
<p>Vous pouvez demander la rectification de vos données à la mairie, ou leur suppression
depuis la page « Mes données » du portail. Les factures, paiements et avoirs sont conservés
dix ans pour les obligations comptables de la commune (article L123-22 du Code de commerce,
règles de la comptabilité publique). Pour toute question, contactez le délégué à la protection
des données de votre commune ; vous pouvez aussi saisir la CNIL (www.cnil.fr).</p>
</body></html>
"""
