"""From an event to the e-mails it causes: who, from whom, what (no Flask, no SMTP here).

A handler records one ``Message`` per (event, recipient), rendered, status ``pending``, in the
consumer's transaction; the sender loop (``sender.py``) delivers it later. Nothing is sent
from a handler, so a rolled-back transaction never leaves a mail behind it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from services.common.events import Event
from services.common.logging import get_logger
from services.common.tenancy import COMMUNES

from .models import PENDING, Message, new_id
from .rendering import render

log = get_logger(__name__)

PLATFORM_NAME = "Portail Famille"
HIDDEN_LINK = "[lien personnel, masqué dans l'historique]"

# Set once a transaction that recorded messages has committed: wakes the sender loop of this
# process at once (it also polls, for the messages other processes record).
MESSAGES_RECORDED = threading.Event()

# Where the links of the e-mails lead, under PUBLIC_URL (the portal's pages).
PORTAL_PATHS = {
    "home": "/",
    "login": "/connexion",
    "reservations": "/reservations",
    "invoices": "/factures",
    "requests": "/demandes",
}

# Shown in French as DESIGN section 6 says.
REQUEST_STATUSES = {
    "submitted": "nouvelle",
    "in_progress": "en cours",
    "waiting_for_family": "en attente de votre réponse",
    "accepted": "acceptée",
    "refused": "refusée",
    "closed": "clôturée",
}
PAYMENT_FAILURES = {
    "denied": "a été refusé",
    "cancelled": "a été annulé",
    "expired": "a expiré",
    "error": "a été interrompu par une erreur technique",
}
CREDIT_NOTE_ORIGINS = {
    "booking_cancellation": "l'annulation d'une réservation",
    "invoice_correction": "la correction d'une facture",
    "manual": "une décision de la mairie",
}


@dataclass(frozen=True)
class NotifierConfig:
    """What rendering needs to know about the deployment."""

    public_url: str = "http://127.0.0.1:8000"

    @classmethod
    def from_settings(cls, settings) -> NotifierConfig:
        return cls(public_url=settings.public_url.rstrip("/"))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> NotifierConfig:
        environ = os.environ if environ is None else environ
        return cls(public_url=(environ.get("PUBLIC_URL") or cls.public_url).rstrip("/"))

    def portal(self, page: str) -> str:
        return self.public_url + PORTAL_PATHS[page]


@dataclass(frozen=True)
class Commune:
    """The sender identity: the commune the event belongs to, as the read model knows it."""

    id: str | None
    name: str | None
    slug: str | None = None
    contact_email: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None
    timezone: str = "Europe/Paris"

    @property
    def sender_name(self) -> str:
        if not self.name:
            return PLATFORM_NAME
        if self.name.lower().startswith(("mairie", "ville de", "commune")):
            return self.name
        return f"Mairie de {self.name}"

    @property
    def phrase(self) -> str:
        """How a sentence names it: "la mairie de JolieVille", or "votre mairie"."""
        if not self.name:
            return "votre mairie"
        if self.name.lower().startswith(("mairie", "ville de", "commune")):
            return "la " + self.name[0].lower() + self.name[1:]
        return f"la mairie de {self.name}"

    @property
    def address_line(self) -> str:
        if not self.address:
            return ""
        parts = [self.address.get("line1"), self.address.get("line2"),
                 " ".join(p for p in (self.address.get("postal_code"),
                                      self.address.get("city")) if p)]
        return ", ".join(p for p in parts if p)


def load_commune(session: Session, commune_id: str | None,
                 fallback_name: str | None = None) -> Commune:
    """The commune from the tenancy read model; when it has not arrived yet (events are not
    ordered across types), what the event itself says, else the platform's own name."""
    if commune_id:
        row = session.execute(
            select(COMMUNES.c.id, COMMUNES.c.slug, COMMUNES.c.name, COMMUNES.c.settings)
            .where(COMMUNES.c.id == commune_id)
        ).first()
        if row is not None:
            settings = dict(row.settings or {})
            return Commune(id=row.id, name=row.name, slug=row.slug,
                           contact_email=settings.get("contact_email"),
                           phone=settings.get("phone"),
                           address=settings.get("address") or None,
                           timezone=settings.get("timezone") or "Europe/Paris")
    return Commune(id=commune_id, name=fallback_name)


# --- what each kind says --------------------------------------------------------------------

ContextBuilder = Callable[[dict[str, Any], NotifierConfig], dict[str, Any]]


def _invitation(data, config):
    return {"link": data["activation_url"], "expires_at": data.get("expires_at")}


def _welcome(data, config):
    return {"link": config.portal("login")}


def _password_reset(data, config):
    return {"link": data["reset_url"], "expires_at": data.get("expires_at")}


def _booking_confirmed(data, config):
    dates = sorted(data["dates"])
    unit = Decimal(data["unit_price"])
    return {"link": config.portal("reservations"), "dates": dates,
            "total": unit * len(dates)}


def _booking_cancelled(data, config):
    return {"link": config.portal("reservations"), "dates": sorted(data["dates"]),
            "refund": Decimal(data["refund_due"])}


def _invoice_issued(data, config):
    return {"link": config.portal("invoices")}


def _payment_succeeded(data, config):
    return {"link": config.portal("invoices"),
            "invoice_numbers": [n for n in data.get("invoice_numbers") or [] if n]}


def _payment_failed(data, config):
    return {"link": config.portal("invoices" if data.get("invoice_ids") else "reservations"),
            "status_label": PAYMENT_FAILURES.get(data["status"], data["status"])}


def _credit_note_issued(data, config):
    return {"link": config.portal("invoices"),
            "origin_label": CREDIT_NOTE_ORIGINS.get(data["origin"], data["origin"])}


def _request_submitted(data, config):
    return {"link": config.portal("requests")}


def _request_status_changed(data, config):
    return {"link": config.portal("requests"),
            "old_label": REQUEST_STATUSES.get(data["old_status"], data["old_status"]),
            "new_label": REQUEST_STATUSES.get(data["new_status"], data["new_status"])}


@dataclass(frozen=True)
class Kind:
    name: str  # the template name
    context: ContextBuilder
    personal: bool = False  # addressed to ``data.email`` rather than ``data.recipients``
    secret_link: bool = False  # ``link`` is a credential: hidden in the household's history


KINDS: dict[str, Kind] = {
    "accounts.family.invited": Kind(
        "invitation", _invitation, personal=True, secret_link=True),
    "accounts.family.activated": Kind("welcome", _welcome, personal=True),
    "accounts.password_reset.requested": Kind(
        "password_reset", _password_reset, personal=True, secret_link=True),
    "reservations.booking.confirmed": Kind("booking_confirmed", _booking_confirmed),
    "reservations.booking.cancelled": Kind("booking_cancelled", _booking_cancelled),
    "billing.invoice.issued": Kind("invoice_issued", _invoice_issued),
    "billing.payment.succeeded": Kind("payment_succeeded", _payment_succeeded),
    "billing.payment.failed": Kind("payment_failed", _payment_failed),
    "billing.credit_note.issued": Kind("credit_note_issued", _credit_note_issued),
    "requests.request.submitted": Kind("request_submitted", _request_submitted),
    "requests.request.status_changed": Kind("request_status_changed", _request_status_changed),
}


def recipients_of(kind: Kind, data: dict[str, Any]) -> list[str]:
    """The addresses to write to, each once (compared without case), in the event's order."""
    raw = [data["email"]] if kind.personal else list(data.get("recipients") or [])
    seen: set[str] = set()
    out = []
    for address in raw:
        address = (address or "").strip()
        if address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


def commune_of(event: Event, data: dict[str, Any]) -> tuple[str | None, str | None]:
    """The commune id of the event and the name it gives, if any."""
    return (event.commune_id or data.get("commune_id"), data.get("commune_name"))


def context_for(kind: Kind, event: Event, data: dict[str, Any], commune: Commune,
                config: NotifierConfig) -> dict[str, Any]:
    return {
        "data": data,
        "commune": commune,
        "tz": commune.timezone,
        "sender_name": commune.sender_name,
        "portal_url": config.portal("home"),
        "platform_name": PLATFORM_NAME,
        **kind.context(data, config),
    }


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping those whose (event_id, recipient) exists; returns how many
    were inserted (counted from RETURNING: rowcount is not reliable for every driver)."""
    table = Message.__table__
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = pg_insert(table).on_conflict_do_nothing(index_elements=["event_id", "recipient"])
    elif dialect == "sqlite":
        stmt = sqlite_insert(table).on_conflict_do_nothing(
            index_elements=["event_id", "recipient"])
    else:  # pragma: no cover - the two databases the project supports
        stmt = insert(table)
    created = 0
    for row in rows:
        inserted = session.execute(stmt.values(**row).returning(table.c.id)).first()
        created += inserted is not None
    return created


def _wake_sender(_session: Session) -> None:
    MESSAGES_RECORDED.set()


def record(session: Session, event: Event, data: dict[str, Any], config: NotifierConfig,
           *, now: datetime | None = None) -> int:
    """Record the messages ``event`` causes; returns how many are new (0 on a redelivery)."""
    kind = KINDS[event.type]
    recipients = recipients_of(kind, data)
    if not recipients:
        log.info("notification_without_recipient", kind=kind.name)
        return 0
    commune_id, commune_name = commune_of(event, data)
    commune = load_commune(session, commune_id, commune_name)
    context = context_for(kind, event, data, commune, config)
    rendered = render(kind.name, context)
    history_text = None
    if kind.secret_link:
        history_text = rendered.text.replace(context["link"], HIDDEN_LINK)
    now = now or datetime.now(UTC)
    rows = [
        {
            "id": new_id(),
            "event_id": event.id,
            "event_type": event.type,
            "kind": kind.name,
            "recipient": recipient,
            "family_id": data.get("family_id"),
            "commune_id": commune_id,
            "from_name": commune.sender_name,
            "reply_to": commune.contact_email,
            "subject": rendered.subject,
            "text_body": rendered.text,
            "history_text": history_text,
            "html_body": rendered.html,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for recipient in recipients
    ]
    created = _insert_ignoring_duplicates(session, rows)
    if created:
        sa_event.listen(session, "after_commit", _wake_sender, once=True)
    log.info("notification_recorded", kind=kind.name, messages=created,
             duplicates=len(rows) - created)
    return created
