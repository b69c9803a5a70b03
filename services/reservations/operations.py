"""Reservations' use cases: each one a unit of work (rows, rules of ``domain``, the places
under their lock, events in the outbox). ``api`` parses and authorises, then calls one method
here; nothing here knows Flask requests. Errors are ``Problem`` (French, problem+json).

Checkout (docs/contract.md, "Checkout of prepaid lines"): one transaction checks every line
under the places' locks and books all or nothing (409 naming each refused child, day and
rule); a full day goes to the waiting list when the activity has one. Monthly lines are
confirmed at once, prepaid ones held (``pending_payment``, ``BOOKING_HOLD_MINUTES``). Then,
outside the transaction, billing is asked for a payment (``POST /internal/checkouts``,
``Idempotency-Key`` = the basket id). A basket validated again answers what the first
validation did (and asks billing again, with the same key, if billing had not answered).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.common.db import Database
from services.common.errors import Problem
from services.common.households import CHILDREN, HOUSEHOLD_COMMUNES, HOUSEHOLDS
from services.common.logging import get_logger
from services.common.tenancy import commune_or_404

from . import domain, events, store
from .domain.deadlines import DeadlineRule, InvalidRule, label_for
from .domain.opening import days_between
from .domain.text import PARIS, fr_date, fr_datetime, fr_month
from .models import (
    OPEN,
    Activity,
    AttendanceLock,
    Basket,
    BasketItem,
    Booking,
    CalendarExceptionRow,
    Cancellation,
    CommuneCalendarRow,
    Enrolment,
    SchoolYearRow,
    Service,
    Site,
    WaitingEntry,
    utc,
)

log = get_logger(__name__)

PAGE = 200
MAX_CALENDAR_DAYS = 366
MAX_OCCUPANCY_DAYS = 92
CHILD_NOT_FOUND = "Cet enfant est introuvable."
BOOKING_NOT_FOUND = "Cette réservation est introuvable."


class Billing(Protocol):
    def create_checkout(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        """``{payment_id, payment_url, invoice_id}``; raises ``Problem`` (503 when down)."""


class ServiceBilling:
    """Billing through the services' internal route (docs/contract.md)."""

    def __init__(self, client_factory: Callable[[], Any]):
        self.client_factory = client_factory
        self._client = None

    def create_checkout(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        if self._client is None:
            self._client = self.client_factory()
        answer = self._client.call("billing", "POST", "/internal/checkouts", json=body,
                                   idempotency_key=key)
        if answer.status_code not in (200, 201):
            log.warning("billing_checkout_refused", status=answer.status_code,
                        body=answer.text[:500])
            raise Problem(502, "Le service de paiement n'a pas accepté la demande : vos "
                               "réservations restent en attente ; réessayez dans quelques "
                               "instants.", service="billing")
        data = answer.json()
        if not data.get("payment_id") or not data.get("payment_url"):
            raise Problem(502, "Le service de paiement a répondu sans lien de paiement.",
                          service="billing")
        return data


@dataclass(frozen=True)
class Caller:
    """Who calls, as ``api`` established it: an agent of the commune, or a family."""

    account_id: str
    family_id: str | None = None
    agent: bool = False

    def family(self) -> str:
        if not self.family_id:
            raise Problem(403, "Réservé aux comptes famille.")
        return self.family_id


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "Le curseur de pagination est invalide.") from exc
    if not isinstance(values, list) or len(values) != size:
        raise Problem(400, "Le curseur de pagination est invalide.")
    return values


def _conflict(refusals: list[domain.Refusal], intro: str, status: int = 409,
              names: dict[str, str] | None = None) -> Problem:
    messages = [r.message for r in refusals]
    detail = messages[0] if len(messages) == 1 else (
        f"{intro} : " + " ".join(messages[:3])
        + (f" (et {len(messages) - 3} autres)" if len(messages) > 3 else ""))
    conflicts = []
    for refusal in refusals:
        item = refusal.as_dict()
        if names:
            item["child_first_name"] = names.get(refusal.child_id)
        conflicts.append(item)
    return Problem(status, detail, conflicts=conflicts,
                   dates=sorted({r.day.isoformat() for r in refusals}))


def _iso(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _span(start: date | None, end: date | None, today: date, default_days: int,
          max_days: int) -> tuple[date, date]:
    start = start or today
    end = end or start + timedelta(days=default_days - 1)
    if end < start:
        raise Problem(422, "La fin de la période doit suivre son début.",
                      errors={"to": ["La fin doit suivre le début."]})
    if (end - start).days >= max_days:
        raise Problem(422, f"Au plus {max_days} jours à la fois.",
                      errors={"to": [f"Au plus {max_days} jours."]})
    return start, end


# --- views ------------------------------------------------------------------------------------

def activity_view(row: Activity) -> dict[str, Any]:
    eligibility = domain.Eligibility(row.min_age, row.max_age, row.min_class, row.max_class)
    booking = DeadlineRule.from_dict(row.booking_deadline)
    cancellation = DeadlineRule.from_dict(row.cancellation_deadline)
    return {
        "id": row.id, "code": row.code, "label": row.label,
        "service_id": row.service_id, "service_name": row.service.name,
        "site_id": row.site_id, "site_name": row.site.name,
        "payment_mode": row.payment_mode, "unit_price_cents": row.unit_price_cents,
        "capacity": row.capacity, "waiting_list_size": row.waiting_list_size,
        "waiting_list_mode": row.waiting_list_mode, "offer_hours": row.offer_hours,
        "eligibility": {"min_age": row.min_age, "max_age": row.max_age,
                        "min_class": row.min_class, "max_class": row.max_class,
                        "label": eligibility.label()},
        "booking_deadline": booking.as_dict() if booking else None,
        "booking_deadline_label": label_for(booking),
        "cancellation_deadline": cancellation.as_dict() if cancellation else None,
        "cancellation_deadline_label": label_for(cancellation),
        "late_cancellation": row.late_cancellation,
        "calendar": {"weekdays": list(row.weekdays or []), "periods": list(row.periods or []),
                     "school_holidays": row.school_holidays,
                     "public_holidays": row.public_holidays},
        "active": row.active,
    }


def service_view(row: Service) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "kind": row.kind,
            "enrolment_mode": row.enrolment_mode}


def site_view(row: Site) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "address": row.address}


def booking_state(booking: Booking) -> str:
    if booking.attendance and booking.status in (*domain.HOLDING, domain.CANCELLED):
        return booking.attendance
    return {domain.CONFIRMED: "booked"}.get(booking.status, booking.status)


def booking_view(booking: Booking, activities: dict[str, Activity],
                 pending: set[str] = frozenset()) -> dict[str, Any]:
    activity = activities.get(booking.activity_id)
    return {
        "id": booking.id, "child_id": booking.child_id,
        "child_first_name": booking.child_first_name, "activity_id": booking.activity_id,
        "activity_label": activity.label if activity else "", "date": booking.date,
        "status": booking.status, "state": booking_state(booking),
        "payment_mode": booking.payment_mode, "unit_price_cents": booking.unit_price_cents,
        "basket_id": booking.basket_id, "hold_expires_at": utc(booking.hold_expires_at),
        "attendance": booking.attendance, "cancellation_id": booking.cancellation_id,
        "cancellation_pending": booking.cancellation_id in pending,
        "refund_cents": booking.refund_cents, "source": booking.source,
        "created_at": utc(booking.created_at), "confirmed_at": utc(booking.confirmed_at),
        "ended_at": utc(booking.ended_at),
    }


def waiting_view(entry: WaitingEntry, activities: dict[str, Activity],
                 positions: dict[str, int]) -> dict[str, Any]:
    activity = activities.get(entry.activity_id)
    return {
        "id": entry.id, "child_id": entry.child_id, "child_first_name": entry.child_first_name,
        "activity_id": entry.activity_id, "activity_label": activity.label if activity else "",
        "date": entry.date, "status": entry.status, "position": positions.get(entry.id),
        "offer_expires_at": utc(entry.offer_expires_at), "booking_id": entry.booking_id,
        "created_at": utc(entry.created_at),
    }


def cancellation_view(row: Cancellation, activities: dict[str, Activity]) -> dict[str, Any]:
    activity = activities.get(row.activity_id)
    return {
        "id": row.id, "child_id": row.child_id, "child_first_name": row.child_first_name,
        "family_id": row.family_id, "activity_id": row.activity_id,
        "activity_label": activity.label if activity else "",
        "booking_ids": list(row.booking_ids), "dates": list(row.dates), "reason": row.reason,
        "status": row.status, "within_deadline": row.within_deadline,
        "refund_cents": row.refund_cents, "created_at": utc(row.created_at),
        "decided_at": utc(row.decided_at), "agent_message": row.agent_message,
    }


def _pending_cancellations(session: Session, ids: set[str | None]) -> set[str]:
    ids = {i for i in ids if i}
    if not ids:
        return set()
    return set(session.scalars(select(Cancellation.id).where(
        Cancellation.id.in_(ids), Cancellation.status == "pending")))


@dataclass
class Operations:
    db: Database
    billing: Billing
    public_url: str = "http://127.0.0.1:8000"
    hold_minutes: int = 60
    clock: Callable[[], datetime] = field(default=events.system_clock)

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def today(self) -> date:
        return self.now().astimezone(PARIS).date()

    # --- helpers ------------------------------------------------------------------------------
    @staticmethod
    def _commune(session: Session, slug: str) -> dict[str, Any]:
        return commune_or_404(session, slug)

    @staticmethod
    def _activity(session: Session, commune_id: str, activity_id: str) -> Activity:
        row = session.get(Activity, activity_id)
        if row is None or row.commune_id != commune_id:
            raise Problem(404, "Cette activité est introuvable.")
        return row

    @staticmethod
    def _child(session: Session, caller: Caller, commune_id: str,
               child_id: str) -> dict[str, Any]:
        """The child, if the caller may see it: a parent their own, an agent any child of a
        household of the commune. Someone else's child is 404, as any unknown id."""
        row = session.execute(select(CHILDREN).where(CHILDREN.c.id == child_id)
                              ).mappings().first()
        if row is None:
            raise Problem(404, CHILD_NOT_FOUND)
        if caller.agent:
            if not store.family_in_commune(session, row["family_id"], commune_id):
                raise Problem(404, CHILD_NOT_FOUND)
        elif row["family_id"] != caller.family_id:
            raise Problem(404, CHILD_NOT_FOUND)
        return dict(row)

    # --- configuration: services, sites, activities -------------------------------------------
    def list_activities(self, slug: str, service_id: str | None = None,
                        site_id: str | None = None,
                        include_inactive: bool = False) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = select(Activity).where(Activity.commune_id == commune["id"])
            if service_id:
                query = query.where(Activity.service_id == service_id)
            if site_id:
                query = query.where(Activity.site_id == site_id)
            if not include_inactive:
                query = query.where(Activity.active.is_(True))
            rows = list(session.scalars(query))
            services = list(session.scalars(select(Service).where(
                Service.commune_id == commune["id"]).order_by(Service.name)))
            sites = list(session.scalars(select(Site).where(
                Site.commune_id == commune["id"]).order_by(Site.name)))
            rows.sort(key=lambda a: (a.service.name, a.site.name, a.label))
            return {"items": [activity_view(a) for a in rows],
                    "services": [service_view(s) for s in services],
                    "sites": [site_view(s) for s in sites], "next": None}

    def get_activity(self, slug: str, activity_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            return activity_view(self._activity(session, commune["id"], activity_id))

    def create_service(self, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        return service_view(self._create_named(slug, Service, payload))

    def update_service(self, slug: str, service_id: str, payload: dict) -> dict[str, Any]:
        return service_view(self._update_named(slug, Service, service_id, payload,
                                               "Ce service est introuvable."))

    def create_site(self, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        return site_view(self._create_named(slug, Site, payload))

    def update_site(self, slug: str, site_id: str, payload: dict) -> dict[str, Any]:
        return site_view(self._update_named(slug, Site, site_id, payload,
                                            "Ce site est introuvable."))

    def _create_named(self, slug: str, model, payload: dict[str, Any]):
        """A service or a site: named uniquely within the commune."""
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            self._unique_name(session, model, commune["id"], payload["name"])
            row = model(commune_id=commune["id"], **payload)
            session.add(row)
            session.flush()
            return row

    def _update_named(self, slug: str, model, row_id: str, payload: dict, missing: str):
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = session.get(model, row_id)
            if row is None or row.commune_id != commune["id"]:
                raise Problem(404, missing)
            if "name" in payload and payload["name"] != row.name:
                self._unique_name(session, model, commune["id"], payload["name"])
            for key, value in payload.items():
                setattr(row, key, value)
            session.flush()
            return row

    @staticmethod
    def _unique_name(session: Session, model, commune_id: str, name: str) -> None:
        taken = session.scalar(select(model.id).where(model.commune_id == commune_id,
                                                      model.name == name))
        if taken:
            raise Problem(409, f"« {name} » existe déjà dans cette commune.",
                          errors={"name": ["Ce nom est déjà utilisé."]})

    @staticmethod
    def _activity_values(payload: dict[str, Any], current: Activity | None = None) -> dict:
        """Columns from a (possibly partial) payload, nested parts merged with ``current``."""
        values: dict[str, Any] = {}
        for key in ("service_id", "site_id", "code", "label", "payment_mode", "capacity",
                    "waiting_list_size", "waiting_list_mode", "offer_hours",
                    "late_cancellation", "active"):
            if key in payload:
                values[key] = payload[key]
        if "unit_price" in payload:
            values["unit_price_cents"] = payload["unit_price"]
        if "eligibility" in payload:
            base = ({"min_age": current.min_age, "max_age": current.max_age,
                     "min_class": current.min_class, "max_class": current.max_class}
                    if current else {})
            merged = {**base, **(payload["eligibility"] or {})}
            for key in ("min_age", "max_age", "min_class", "max_class"):
                values[key] = merged.get(key)
        for key in ("booking_deadline", "cancellation_deadline"):
            if key in payload:
                try:
                    rule = DeadlineRule.from_dict(payload[key])
                except InvalidRule as exc:
                    raise Problem(422, str(exc), errors={key: [str(exc)]}) from exc
                values[key] = rule.as_dict() if rule else None
        if "calendar" in payload:
            opening = payload["calendar"] or {}
            base = ({"weekdays": current.weekdays, "periods": current.periods,
                     "school_holidays": current.school_holidays,
                     "public_holidays": current.public_holidays} if current else {})
            merged = {**base, **opening}
            if not merged.get("weekdays"):
                raise Problem(422, errors={"calendar.weekdays": ["Au moins un jour."]})
            values["weekdays"] = sorted(set(merged["weekdays"]))
            values["periods"] = [{"from": _iso(p.get("from_", p.get("from"))),
                                  "to": _iso(p["to"])} for p in merged.get("periods") or []]
            values["school_holidays"] = merged.get("school_holidays") or "closed"
            values["public_holidays"] = merged.get("public_holidays") or "closed"
        return values

    def _check_scope(self, session: Session, commune_id: str, values: dict) -> None:
        errors = {}
        if "service_id" in values:
            service = session.get(Service, values["service_id"])
            if service is None or service.commune_id != commune_id:
                errors["service_id"] = ["Service inconnu dans cette commune."]
        if "site_id" in values:
            site = session.get(Site, values["site_id"])
            if site is None or site.commune_id != commune_id:
                errors["site_id"] = ["Site inconnu dans cette commune."]
        if errors:
            raise Problem(422, errors=errors)

    def create_activity(self, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            values = self._activity_values(payload)
            self._check_scope(session, commune["id"], values)
            self._unique_code(session, values["site_id"], values["code"])
            row = Activity(commune_id=commune["id"], **values)
            session.add(row)
            session.flush()
            session.refresh(row)
            return activity_view(row)

    @staticmethod
    def _unique_code(session: Session, site_id: str, code: str, own: str | None = None) -> None:
        taken = session.scalar(select(Activity.id).where(Activity.site_id == site_id,
                                                         Activity.code == code))
        if taken and taken != own:
            raise Problem(409, f"Le code {code} est déjà utilisé sur ce site.",
                          errors={"code": ["Code déjà utilisé sur ce site."]})

    def update_activity(self, slug: str, activity_id: str,
                        payload: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = self._activity(session, commune["id"], activity_id)
            values = self._activity_values(payload, row)
            self._check_scope(session, commune["id"], values)
            if "code" in values or "site_id" in values:
                self._unique_code(session, values.get("site_id", row.site_id),
                                  values.get("code", row.code), own=row.id)
            if values.get("waiting_list_size") and values.get(
                    "capacity", row.capacity) is None:
                raise Problem(422, errors={"waiting_list_size": [
                    "Une liste d'attente suppose une capacité."]})
            more_room = "capacity" in values and (
                values["capacity"] is None or (row.capacity or 0) < values["capacity"])
            newly_capped = row.capacity is None and values.get("capacity") is not None
            for key, value in values.items():
                setattr(row, key, value)
            session.flush()
            if newly_capped:
                # Checkouts keep no count for days without a capacity: count them now.
                counted = [(row.id, day) for day in session.scalars(
                    select(Booking.date).distinct().where(
                        Booking.activity_id == row.id, Booking.date >= self.today(),
                        Booking.status.in_(domain.HOLDING)))]
                store.lock(session, counted)
                store.recount(session, counted)
            if more_room:
                # New places go to the first in line, as a freed place would.
                pairs = sorted(set(session.execute(select(
                    WaitingEntry.activity_id, WaitingEntry.date).where(
                    WaitingEntry.activity_id == row.id, WaitingEntry.status == domain.WAITING,
                    WaitingEntry.date >= self.today())).all()))
                pairs = [tuple(p) for p in pairs]
                if pairs:
                    store.lock(session, pairs)
                    events.places_freed(session, pairs, now)
            session.refresh(row)
            return activity_view(row)

    # --- configuration: the commune's calendar --------------------------------------------------
    def calendar_settings(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            settings = session.get(CommuneCalendarRow, commune["id"])
            years = session.scalars(select(SchoolYearRow).where(
                SchoolYearRow.commune_id == commune["id"]).order_by(SchoolYearRow.starts_on))
            exceptions = session.scalars(select(CalendarExceptionRow).where(
                CalendarExceptionRow.commune_id == commune["id"])
                .order_by(CalendarExceptionRow.starts_on))
            return {"zone": settings.zone if settings else "C", "school_years": list(years),
                    "exceptions": list(exceptions)}

    def set_zone(self, slug: str, zone: str) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = session.get(CommuneCalendarRow, commune["id"])
            if row is None:
                session.add(CommuneCalendarRow(commune_id=commune["id"], zone=zone))
            else:
                row.zone = zone
        return self.calendar_settings(slug)

    def add_school_year(self, slug: str, payload: dict[str, Any]) -> SchoolYearRow:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            overlapping = session.scalar(select(SchoolYearRow.label).where(
                SchoolYearRow.commune_id == commune["id"],
                SchoolYearRow.starts_on <= payload["ends_on"],
                SchoolYearRow.ends_on >= payload["starts_on"]))
            if overlapping:
                raise Problem(409, f"Ces dates chevauchent l'année scolaire {overlapping}.")
            row = SchoolYearRow(commune_id=commune["id"], **payload)
            session.add(row)
            session.flush()
            return row

    def add_exception(self, slug: str, payload: dict[str, Any]) -> CalendarExceptionRow:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            scope = {k: payload.get(k) for k in ("service_id", "site_id")}
            self._check_scope(session, commune["id"], {k: v for k, v in scope.items() if v})
            if payload.get("activity_id"):
                self._activity(session, commune["id"], payload["activity_id"])
            row = CalendarExceptionRow(
                commune_id=commune["id"], kind=payload["kind"], starts_on=payload["from_"],
                ends_on=payload.get("to") or payload["from_"], label=payload["label"],
                service_id=payload.get("service_id"), site_id=payload.get("site_id"),
                activity_id=payload.get("activity_id"))
            session.add(row)
            session.flush()
            return row

    def delete_exception(self, slug: str, exception_id: str) -> None:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = session.get(CalendarExceptionRow, exception_id)
            if row is None or row.commune_id != commune["id"]:
                raise Problem(404, "Cette exception de calendrier est introuvable.")
            session.delete(row)

    def calendar_days(self, slug: str, start: date | None, end: date | None) -> dict:
        start, end = _span(start, end, self.today(), 31, MAX_CALENDAR_DAYS)
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            calendar = store.load_calendar(session, commune["id"])
            return {"zone": calendar.zone,
                    "days": [calendar.describe(d) for d in days_between(start, end)]}

    # --- enrolments ---------------------------------------------------------------------------
    def _enrolment_view(self, session: Session, rows: list[Enrolment]) -> list[dict]:
        children = store.children_by_id(session, [r.child_id for r in rows])
        services = {s.id: s for s in session.scalars(select(Service).where(
            Service.id.in_({r.service_id for r in rows})))} if rows else {}
        years = {y.id: y for y in session.scalars(select(SchoolYearRow).where(
            SchoolYearRow.id.in_({r.school_year_id for r in rows})))} if rows else {}
        out = []
        for row in rows:
            child = children.get(row.child_id) or {}
            out.append({
                "id": row.id, "child_id": row.child_id,
                "child_first_name": child.get("first_name"),
                "child_last_name": child.get("last_name"), "family_id": row.family_id,
                "service_id": row.service_id, "service_name": services[row.service_id].name,
                "school_year_id": row.school_year_id,
                "school_year": years[row.school_year_id].label, "status": row.status,
                "message": row.message, "created_at": utc(row.created_at),
                "decided_at": utc(row.decided_at)})
        return out

    def create_enrolment(self, caller: Caller, slug: str, payload: dict) -> dict[str, Any]:
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            child = self._child(session, caller, commune["id"], payload["child_id"])
            service = session.get(Service, payload["service_id"])
            if service is None or service.commune_id != commune["id"]:
                raise Problem(422, errors={"service_id": ["Service inconnu dans cette "
                                                          "commune."]})
            year = session.get(SchoolYearRow, payload["school_year_id"])
            if year is None or year.commune_id != commune["id"]:
                raise Problem(422, errors={"school_year_id": ["Année scolaire inconnue."]})
            existing = session.scalar(select(Enrolment).where(
                Enrolment.child_id == child["id"], Enrolment.service_id == service.id,
                Enrolment.school_year_id == year.id))
            if existing is not None:
                raise Problem(409, f"{child['first_name']} a déjà une inscription au service "
                                   f"« {service.name} » pour {year.label} "
                                   f"({ENROLMENT_LABELS[existing.status]}).",
                              enrolment_id=existing.id)
            automatic = service.enrolment_mode == "automatic" or caller.agent
            row = Enrolment(commune_id=commune["id"], family_id=child["family_id"],
                            child_id=child["id"], service_id=service.id,
                            school_year_id=year.id,
                            status="validated" if automatic else "pending", created_at=now,
                            decided_at=now if automatic else None,
                            decided_by=caller.account_id if automatic else None)
            session.add(row)
            session.flush()
            return self._enrolment_view(session, [row])[0]

    def list_enrolments(self, caller: Caller, slug: str, filters: dict) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = select(Enrolment).where(Enrolment.commune_id == commune["id"])
            if not caller.agent:
                query = query.where(Enrolment.family_id == caller.family())
            for key in ("status", "child_id", "service_id"):
                if filters.get(key):
                    query = query.where(getattr(Enrolment, key) == filters[key])
            rows = list(session.scalars(query.order_by(Enrolment.created_at, Enrolment.id)))
            return {"items": self._enrolment_view(session, rows), "next": None}

    def decide_enrolment(self, caller: Caller, slug: str, enrolment_id: str, accept: bool,
                         message: str | None) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = session.get(Enrolment, enrolment_id)
            if row is None or row.commune_id != commune["id"]:
                raise Problem(404, "Cette inscription est introuvable.")
            if row.status != "pending":
                raise Problem(409, "Cette inscription a déjà été traitée "
                                   f"({ENROLMENT_LABELS[row.status]}).")
            row.status = "validated" if accept else "refused"
            row.message, row.decided_at, row.decided_by = message, self.now(), caller.account_id
            session.flush()
            return self._enrolment_view(session, [row])[0]

    # --- calendar of a child ------------------------------------------------------------------
    def child_calendar(self, caller: Caller, slug: str, child_id: str,
                       activity_id: str | None, start: date | None,
                       end: date | None) -> dict[str, Any]:
        now = self.now()
        start, end = _span(start, end, self.today(), 31, MAX_CALENDAR_DAYS)
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            child_row = self._child(session, caller, commune["id"], child_id)
            child = store.to_child(child_row)
            calendar = store.load_calendar(session, commune["id"])
            if activity_id:
                rows = [self._activity(session, commune["id"], activity_id)]
            else:
                rows = self._activities_of_child(session, commune["id"], child.id, start, end)
            activities = {r.id: store.to_activity(r) for r in rows}
            ids = list(activities)
            statuses = store.enrolment_statuses(session, [child.id],
                                                {r.service_id for r in rows})
            bookings = session.scalars(select(Booking).where(
                Booking.child_id == child.id, Booking.activity_id.in_(ids),
                Booking.date >= start, Booking.date <= end).order_by(Booking.created_at))
            shown: dict[tuple[str, date], Booking] = {}
            for booking in bookings:
                key = (booking.activity_id, booking.date)
                current = shown.get(key)
                if (current is None or booking.status in domain.HOLDING
                        or current.status not in domain.HOLDING):
                    shown[key] = booking
            pending = _pending_cancellations(session, {b.cancellation_id
                                                       for b in shown.values()})
            occupancy = store.occupancy_map(session, ids, start, end)
            entries = list(session.scalars(select(WaitingEntry).where(
                WaitingEntry.child_id == child.id, WaitingEntry.activity_id.in_(ids),
                WaitingEntry.date >= start, WaitingEntry.date <= end,
                WaitingEntry.status.in_(domain.IN_LINE))))
            positions = store.waiting_positions(session, entries)
            waiting = {(e.activity_id, e.date): {
                "id": e.id, "position": positions.get(e.id), "status": e.status,
                "offer_expires_at": utc(e.offer_expires_at)} for e in entries}
            days = []
            for day in days_between(start, end):
                cells = []
                for row in rows:
                    activity = activities[row.id]
                    booking = shown.get((row.id, day))
                    taken, in_line = occupancy.get((row.id, day), (0, 0))
                    slot = domain.Slot(
                        booking_id=booking.id if booking else None,
                        status=booking.status if booking else None,
                        attendance=booking.attendance if booking else None,
                        hold_expires_at=utc(booking.hold_expires_at) if booking else None,
                        cancellation_pending=bool(booking and booking.cancellation_id
                                                  in pending),
                        taken=taken, waiting_count=in_line, waiting=waiting.get((row.id, day)))
                    cell = domain.cell(child, activity, day, now, calendar,
                                       statuses.get((child.id, row.service_id), {}), slot)
                    if cell["deadline"] is not None:
                        cell["deadline"] = cell["deadline"].astimezone(PARIS)
                    cells.append(cell)
                days.append({"date": day, "activities": cells})
            return {
                "child_id": child.id, "child_first_name": child.first_name, "from_": start,
                "to": end, "days": days,
                "activities": [activity_view(r) for r in rows],
            }

    @staticmethod
    def _activities_of_child(session: Session, commune_id: str, child_id: str, start: date,
                             end: date) -> list[Activity]:
        """The activities of the services the child is enrolled in (any status) for a school
        year touching the span, and those the child has bookings for in it.

        Of a service the child already used this school year, only the activities of the
        sites where it did (its school's canteen, not the 120 canteens of a city: a city's
        calendar would otherwise list every school, and take seconds); of a service not used
        yet, those of every site, to choose from."""
        enrolled = select(Enrolment.service_id, SchoolYearRow.starts_on,
                          SchoolYearRow.ends_on).join(
            SchoolYearRow, SchoolYearRow.id == Enrolment.school_year_id).where(
            Enrolment.child_id == child_id, Enrolment.commune_id == commune_id,
            SchoolYearRow.starts_on <= end, SchoolYearRow.ends_on >= start)
        services: dict[str, tuple[date, date]] = {}
        for service_id, starts_on, ends_on in session.execute(enrolled):
            known = services.get(service_id, (starts_on, ends_on))
            services[service_id] = (min(known[0], starts_on), max(known[1], ends_on))
        used: dict[str, set[str]] = defaultdict(set)
        if services:
            first = min(span[0] for span in services.values())
            last = max(span[1] for span in services.values())
            for service_id, site_id in session.execute(
                    select(Activity.service_id, Activity.site_id).join(
                        Booking, Booking.activity_id == Activity.id).where(
                        Booking.child_id == child_id, Booking.date >= first,
                        Booking.date <= last, Activity.service_id.in_(list(services)))
                    .distinct()):
                used[service_id].add(site_id)
        booked = select(Booking.activity_id).where(
            Booking.child_id == child_id, Booking.date >= start, Booking.date <= end)
        offered = []
        for service_id in services:
            condition = and_(Activity.service_id == service_id, Activity.active.is_(True))
            if service_id in used:
                condition = and_(condition, Activity.site_id.in_(sorted(used[service_id])))
            offered.append(condition)
        rows = list(session.scalars(select(Activity).where(
            Activity.commune_id == commune_id, or_(Activity.id.in_(booked), *offered))))
        rows.sort(key=lambda a: (a.service.name, a.site.name, a.label))
        return rows

    # --- basket -------------------------------------------------------------------------------
    @staticmethod
    def _open_basket(session: Session, commune_id: str, family_id: str) -> Basket | None:
        return session.scalar(select(Basket).where(
            Basket.commune_id == commune_id, Basket.family_id == family_id,
            Basket.status == OPEN))

    def _basket_view(self, session: Session, basket: Basket | None) -> dict[str, Any]:
        view: dict[str, Any] = {"id": None, "status": OPEN, "items": [], "total_cents": 0,
                                "to_pay_now_cents": 0, "to_invoice_cents": 0,
                                "hold_minutes": self.hold_minutes}
        if basket is None:
            return view
        items = list(basket.items)
        activities = store.activities_by_id(session, [i.activity_id for i in items])
        children = store.children_by_id(session, [i.child_id for i in items])
        lines = []
        for item in items:
            activity = activities[item.activity_id]
            count = len(item.dates)
            amount = activity.unit_price_cents * count
            lines.append({
                "id": item.id, "child_id": item.child_id,
                "child_first_name": (children.get(item.child_id) or {}).get("first_name", ""),
                "activity_id": activity.id, "activity_label": activity.label,
                "service_name": activity.service.name, "site_name": activity.site.name,
                "payment_mode": activity.payment_mode,
                "pay_now": activity.payment_mode == "prepaid",
                "unit_price_cents": activity.unit_price_cents,
                "dates": [date.fromisoformat(d) for d in item.dates], "count": count,
                "amount_cents": amount})
            view["total_cents"] += amount
            key = "to_pay_now_cents" if activity.payment_mode == "prepaid" else \
                "to_invoice_cents"
            view[key] += amount
        view.update(id=basket.id, status=basket.status, items=lines)
        return view

    def basket(self, caller: Caller, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            return self._basket_view(session, self._open_basket(session, commune["id"],
                                                                caller.family()))

    def add_item(self, caller: Caller, slug: str, payload: dict[str, Any]) -> dict[str, Any]:
        family = caller.family()
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            child_row = self._child(session, caller, commune["id"], payload["child_id"])
            child = store.to_child(child_row)
            row = self._activity(session, commune["id"], payload["activity_id"])
            if not row.active:
                raise Problem(422, f"L'activité « {row.label} » n'est plus proposée.")
            activity = store.to_activity(row)
            calendar = store.load_calendar(session, commune["id"])
            statuses = store.enrolment_statuses(session, [child.id], [row.service_id]).get(
                (child.id, row.service_id), {})
            basket = self._open_basket(session, commune["id"], family)
            item = None
            if basket is not None:
                item = next((i for i in basket.items if i.child_id == child.id
                             and i.activity_id == activity.id), None)
            in_basket = {date.fromisoformat(d) for d in (item.dates if item else [])}
            explicit = "dates" in payload
            if explicit:
                candidates = sorted(set(payload["dates"]))
            else:
                period = payload["period"]
                weekdays = set(period["weekdays"])
                candidates = [d for d in days_between(period["from_"], period["to"])
                              if d.isoweekday() in weekdays]
            live = store.live_keys(session, [(child.id, activity.id, d) for d in candidates])
            added, refused = [], []
            for day in candidates:
                if day in in_basket:
                    continue
                refusal = domain.booking_refusal(child, activity, day, now, calendar, statuses)
                if refusal is None and (child.id, activity.id, day) in live:
                    refusal = domain.already_booked_refusal(child, activity, day)
                if refusal is None:
                    added.append(day)
                elif explicit or refusal.rule != "closed":
                    refused.append(refusal)
            if explicit and refused:
                raise _conflict(refused, "Ces dates ne peuvent pas être ajoutées au panier",
                                status=422)
            if not added:
                if refused:
                    raise _conflict(refused, "Aucun jour de cette période ne peut être "
                                             "réservé", status=422)
                if candidates and all(d in in_basket for d in candidates):
                    raise Problem(422, "Ces jours sont déjà dans votre panier.")
                raise Problem(422, f"L'activité « {activity.label} » n'a lieu aucun des jours "
                                   "demandés.")
            if basket is None:
                basket = Basket(commune_id=commune["id"], family_id=family, status=OPEN,
                                created_at=now)
                session.add(basket)
                try:
                    with session.begin_nested():
                        session.flush()
                except IntegrityError as exc:  # a concurrent request opened it first
                    raise Problem(409, "Votre panier vient d'être modifié : réessayez.") from exc
            if item is None:
                item = BasketItem(basket=basket, child_id=child.id, activity_id=activity.id,
                                  dates=[], created_at=now)
                session.add(item)
            item.dates = sorted({*item.dates, *(d.isoformat() for d in added)})
            session.flush()
            session.refresh(basket)
            view = self._basket_view(session, basket)
            view["added"] = added
            view["skipped"] = [{"date": r.day.isoformat(), "rule": r.rule,
                                "message": r.message} for r in refused]
            return view

    def remove_item(self, caller: Caller, slug: str, item_id: str) -> None:
        family = caller.family()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            item = session.get(BasketItem, item_id)
            if (item is None or item.basket.family_id != family
                    or item.basket.commune_id != commune["id"]):
                raise Problem(404, "Cette ligne du panier est introuvable.")
            if item.basket.status != OPEN:
                raise Problem(409, "Ce panier est déjà validé : il ne peut plus changer.")
            session.delete(item)

    # --- checkout -----------------------------------------------------------------------------
    def checkout(self, caller: Caller, slug: str, basket_id: str | None = None,
                 return_url: str | None = None) -> dict[str, Any]:
        family = caller.family()
        if return_url and not return_url.startswith(self.public_url + "/"):
            raise Problem(422, errors={"return_url": [
                f"L'adresse de retour doit être sur le portail ({self.public_url})."]})
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            basket = self._basket_to_check_out(session, commune["id"], family, basket_id)
            if basket.status == OPEN:
                self._check_out(session, basket,
                                return_url or self._return_url(commune["slug"], basket.id))
            basket_id = basket.id
        return self._after_checkout(basket_id)

    def _return_url(self, slug: str, basket_id: str) -> str:
        """Where the payment page sends the parent back (billing uses it as it is)."""
        return f"{self.public_url}/reservations/panier/retour?commune={slug}&basket={basket_id}"

    def _basket_to_check_out(self, session: Session, commune_id: str, family: str,
                             basket_id: str | None) -> Basket:
        if basket_id is None:
            basket_id = session.scalar(select(Basket.id).where(
                Basket.commune_id == commune_id, Basket.family_id == family,
                Basket.status == OPEN))
        if basket_id is None:
            # Validated a second time (a double click, a retry after a timeout or while
            # billing was down): the basket validated last, within the hold, answers again.
            recent = self.now() - timedelta(minutes=self.hold_minutes)
            basket_id = session.scalar(select(Basket.id).where(
                Basket.commune_id == commune_id, Basket.family_id == family,
                Basket.status != OPEN, Basket.checked_out_at >= recent)
                .order_by(Basket.checked_out_at.desc()).limit(1))
        if basket_id is None:
            raise Problem(422, "Votre panier est vide.")
        basket = session.scalar(select(Basket).where(Basket.id == basket_id)
                                .with_for_update().execution_options(populate_existing=True))
        if basket is None or basket.family_id != family or basket.commune_id != commune_id:
            raise Problem(404, "Ce panier est introuvable.")
        return basket

    def _check_out(self, session: Session, basket: Basket, return_url: str) -> None:
        now = self.now()
        items = sorted(basket.items, key=lambda i: (i.created_at, i.id))
        if not items or not any(i.dates for i in items):
            raise Problem(422, "Votre panier est vide.")
        rows = store.activities_by_id(session, [i.activity_id for i in items])
        activities = {a: store.to_activity(r) for a, r in rows.items()}
        children_rows = store.children_by_id(session, [i.child_id for i in items])
        calendar = store.load_calendar(session, basket.commune_id)
        statuses = store.enrolment_statuses(session, children_rows,
                                            {r.service_id for r in rows.values()})
        refusals: list[domain.Refusal] = []
        lines: list[tuple[domain.Child, domain.Activity, date, BasketItem]] = []
        seen: set[tuple] = set()
        for item in items:
            child_row = children_rows.get(item.child_id)
            if child_row is None or child_row["family_id"] != basket.family_id:
                raise Problem(409, "Un enfant du panier n'est plus rattaché à votre foyer : "
                                   "retirez sa ligne du panier.", item_id=item.id)
            child = store.to_child(child_row)
            for raw in item.dates:
                day = date.fromisoformat(raw)
                key = (child.id, item.activity_id, day)
                if key not in seen:
                    seen.add(key)
                    lines.append((child, activities[item.activity_id], day, item))
        refused: set[tuple] = set()
        for child, activity, day, _ in lines:
            service_id = rows[activity.id].service_id
            refusal = domain.booking_refusal(child, activity, day, now, calendar,
                                             statuses.get((child.id, service_id), {}))
            if refusal is not None:
                refusals.append(refusal)
                refused.add((child.id, activity.id, day))
        live = store.live_keys(session, seen)
        for child, activity, day, _ in lines:
            key = (child.id, activity.id, day)
            if key in live and key not in refused:
                refusals.append(domain.already_booked_refusal(child, activity, day))
                refused.add(key)
        # The places: locked in (activity, date) order, then counted from the bookings. Only
        # days with a capacity: a day without one (the canteen) takes every child, and locking
        # it made every basket of the morning bookings open wait for all the others (the surge
        # benchmark); its occupancy row is counted when a capacity is set (update_activity).
        pairs = sorted({(a.id, d) for _, a, d, _ in lines if a.capacity is not None})
        store.lock(session, pairs)
        found = store.counts(session, pairs)
        taken = {p: v[0] for p, v in found.items()}
        in_line = {p: v[1] for p, v in found.items()}
        already_waiting = store.in_line_keys(session, seen)
        to_book: list[tuple[domain.Child, domain.Activity, date]] = []
        to_wait: list[tuple[domain.Child, domain.Activity, date]] = []
        for child, activity, day, _ in sorted(lines, key=lambda x: (x[1].id, x[2],
                                                                    x[3].created_at)):
            key, pair = (child.id, activity.id, day), (activity.id, day)
            if key in refused:
                continue
            if activity.capacity is not None and taken[pair] >= activity.capacity:
                if key in already_waiting:
                    continue
                if activity.has_waiting_list and in_line[pair] < activity.waiting_list_size:
                    to_wait.append((child, activity, day))
                    in_line[pair] += 1
                else:
                    refusals.append(domain.full_refusal(child, activity, day,
                                                        activity.has_waiting_list))
                continue
            if activity.capacity is not None:
                taken[pair] += 1
            to_book.append((child, activity, day))
        if refusals:
            names = {c.id: c.first_name for c, _, _, _ in lines}
            raise _conflict(sorted(refusals, key=lambda r: (r.day, r.child_id)),
                            "Votre panier ne peut pas être validé", names=names)
        hold_until = now + timedelta(minutes=self.hold_minutes)
        bookings: list[Booking] = []
        for child, activity, day in to_book:
            prepaid = activity.payment_mode == "prepaid"
            bookings.append(Booking(
                commune_id=basket.commune_id, family_id=basket.family_id, child_id=child.id,
                child_first_name=child.first_name, activity_id=activity.id, date=day,
                status=domain.PENDING_PAYMENT if prepaid else domain.CONFIRMED,
                payment_mode=activity.payment_mode,
                unit_price_cents=activity.unit_price_cents, basket_id=basket.id,
                hold_expires_at=hold_until if prepaid else None, source="basket",
                created_at=now, confirmed_at=None if prepaid else now))
        for child, activity, day in to_wait:
            session.add(WaitingEntry(
                commune_id=basket.commune_id, family_id=basket.family_id, child_id=child.id,
                child_first_name=child.first_name, activity_id=activity.id, date=day,
                status=domain.WAITING, rank=store.next_rank(session, (activity.id, day)),
                basket_id=basket.id, created_at=now))
        session.add_all(bookings)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError as exc:
            raise Problem(409, "Une de ces réservations vient d'être faite par ailleurs : "
                               "actualisez le calendrier et réessayez.") from exc
        store.recount(session, pairs)
        monthly = [b for b in bookings if b.payment_mode == "monthly"]
        if monthly:
            events.booking_confirmed(session, monthly, rows, basket_id=basket.id)
        if bookings:
            events.basket_checked_out(session, basket, bookings, rows)
        due = sum(b.unit_price_cents for b in bookings if b.payment_mode == "prepaid")
        basket.amount_due_cents = due
        basket.status = "checked_out" if due else "confirmed"
        basket.checked_out_at = now
        basket.closed_at = None if due else now
        basket.return_url = return_url
        log.info("basket_checked_out", basket_id=basket.id, bookings=len(bookings),
                 waiting=len(to_wait), amount_due=due)

    def _billing_body(self, session: Session, basket: Basket) -> dict[str, Any] | None:
        held = list(session.scalars(select(Booking).where(
            Booking.basket_id == basket.id, Booking.status == domain.PENDING_PAYMENT)
            .order_by(Booking.child_id, Booking.activity_id, Booking.date)))
        if not held:
            return None
        activities = store.activities_by_id(session, [b.activity_id for b in held])
        children = store.children_by_id(session, [b.child_id for b in held])
        groups: dict[tuple, list[Booking]] = defaultdict(list)
        for booking in held:
            groups[(booking.child_id, booking.activity_id, booking.unit_price_cents)].append(
                booking)
        lines = []
        for (child_id, activity_id, unit), group in sorted(groups.items()):
            child = children.get(child_id) or {}
            name = " ".join(p for p in (group[0].child_first_name, child.get("last_name")) if p)
            lines.append({
                "booking_ids": [b.id for b in group], "child_id": child_id,
                "child_name": name, "activity_id": activity_id,
                "activity_name": activities[activity_id].label,
                "dates": [b.date.isoformat() for b in group],
                "unit_price": domain.euros(unit), "amount": domain.euros(unit * len(group))})
        return {"basket_id": basket.id, "family_id": basket.family_id,
                "commune_id": basket.commune_id, "lines": lines,
                "amount": domain.euros(sum(b.unit_price_cents for b in held)),
                "return_url": basket.return_url}

    def _after_checkout(self, basket_id: str) -> dict[str, Any]:
        """Ask billing for the payment if it is not known yet, then answer."""
        with self.db.sessions() as session:
            basket = session.get(Basket, basket_id)
            body = (self._billing_body(session, basket)
                    if basket.status == "checked_out" and basket.payment_id is None else None)
        if body is not None:
            try:
                payment = self.billing.create_checkout(body, basket_id)
            except Problem as exc:  # the holds stay; validating this basket again retries
                raise Problem(exc.code, exc.detail, **{**exc.extra, "basket_id": basket_id}
                              ) from exc
            with self.db.transaction() as session:
                basket = events.lock_basket(session, basket_id)
                if basket.payment_id is None:
                    basket.payment_id = payment["payment_id"]
                if basket.payment_url is None:
                    basket.payment_url = payment["payment_url"]
                    basket.invoice_id = payment.get("invoice_id")
        with self.db.sessions() as session:
            return self._checkout_answer(session, session.get(Basket, basket_id))

    def _checkout_answer(self, session: Session, basket: Basket) -> dict[str, Any]:
        bookings = list(session.scalars(select(Booking).where(Booking.basket_id == basket.id)
                                        .order_by(Booking.date, Booking.child_id)))
        entries = store.waiting_entries_of_basket(session, basket.id)
        activities = store.activities_by_id(session, [b.activity_id for b in bookings]
                                            + [e.activity_id for e in entries])
        pending = _pending_cancellations(session, {b.cancellation_id for b in bookings})
        answer: dict[str, Any] = {
            "basket_id": basket.id, "basket_status": basket.status,
            "bookings": [booking_view(b, activities, pending) for b in bookings],
            "waiting_list": [waiting_view(e, activities, store.waiting_positions(
                session, entries)) for e in entries],
            "amount_cents": basket.amount_due_cents,
        }
        if basket.status == "checked_out":
            holds = [utc(b.hold_expires_at) for b in bookings if b.hold_expires_at]
            answer.update(status="payment_required", payment_url=basket.payment_url,
                          payment_id=basket.payment_id,
                          hold_expires_at=min(holds) if holds else None)
            return answer
        if basket.status in ("paid", "confirmed"):
            answer["status"] = "confirmed"
            if basket.payment_id:
                answer["payment_id"] = basket.payment_id
            return answer
        if basket.status == "expired":
            raise Problem(409, "Le délai de paiement de ce panier est dépassé : les places "
                               "réservées ont été libérées. Refaites votre panier.",
                          basket_id=basket.id)
        if basket.status == "failed":
            raise Problem(409, "Le paiement de ce panier n'a pas abouti : les places réservées "
                               "ont été libérées. Refaites votre panier.", basket_id=basket.id)
        raise Problem(409, "Ce panier n'est pas encore validé.", basket_id=basket.id)

    def basket_record(self, caller: Caller, slug: str, basket_id: str) -> dict[str, Any]:
        """A validated basket as its checkout answered (the return page after payment)."""
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            basket = session.get(Basket, basket_id)
            if (basket is None or basket.commune_id != commune["id"]
                    or (not caller.agent and basket.family_id != caller.family())):
                raise Problem(404, "Ce panier est introuvable.")
            if basket.status == OPEN:
                return {"basket_id": basket.id, "basket_status": OPEN, "status": "open",
                        "bookings": [], "waiting_list": [], "amount_cents": 0}
            try:
                return self._checkout_answer(session, basket)
            except Problem as problem:
                if problem.code != 409:
                    raise
                return {"basket_id": basket.id, "basket_status": basket.status,
                        "status": basket.status, "bookings": [], "waiting_list": [],
                        "amount_cents": basket.amount_due_cents}

    def basket_by_payment(self, caller: Caller, slug: str, payment_id: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            basket_id = session.scalar(select(Basket.id).where(
                Basket.commune_id == commune["id"], Basket.payment_id == payment_id))
        if basket_id is None:
            raise Problem(404, "Aucun panier ne correspond à ce paiement.")
        return self.basket_record(caller, slug, basket_id)

    # --- bookings -----------------------------------------------------------------------------
    def bookings(self, caller: Caller, slug: str, filters: dict[str, Any]) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = select(Booking).where(Booking.commune_id == commune["id"])
            if not caller.agent:
                query = query.where(Booking.family_id == caller.family())
            if filters.get("child_id"):
                query = query.where(Booking.child_id == filters["child_id"])
            if filters.get("activity"):
                query = query.where(Booking.activity_id == filters["activity"])
            if filters.get("status"):
                query = query.where(Booking.status == filters["status"])
            if filters.get("from_"):
                query = query.where(Booking.date >= filters["from_"])
            if filters.get("to"):
                query = query.where(Booking.date <= filters["to"])
            if filters.get("cursor"):
                day, booking_id = decode_cursor(filters["cursor"], 2)
                try:
                    day = date.fromisoformat(day)
                except (TypeError, ValueError) as exc:
                    raise Problem(400, "Le curseur de pagination est invalide.") from exc
                query = query.where(tuple_(Booking.date, Booking.id) > (day, booking_id))
            rows = list(session.scalars(query.order_by(Booking.date, Booking.id)
                                        .limit(PAGE + 1)))
            page = rows[:PAGE]
            activities = store.activities_by_id(session, [b.activity_id for b in page])
            pending = _pending_cancellations(session, {b.cancellation_id for b in page})
            next_cursor = (encode_cursor([page[-1].date.isoformat(), page[-1].id])
                           if len(rows) > PAGE else None)
            return {"items": [booking_view(b, activities, pending) for b in page],
                    "next": next_cursor}

    # --- cancellations ------------------------------------------------------------------------
    def cancel(self, caller: Caller, slug: str, booking_ids: list[str],
               reason: str | None) -> dict[str, Any]:
        family = caller.family()
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            ids = sorted(set(booking_ids))
            bookings = list(session.scalars(select(Booking).where(Booking.id.in_(ids))))
            if len(bookings) != len(ids) or any(
                    b.family_id != family or b.commune_id != commune["id"] for b in bookings):
                raise Problem(404, BOOKING_NOT_FOUND)
            rows = store.activities_by_id(session, [b.activity_id for b in bookings])
            calendar = store.load_calendar(session, commune["id"])
            pending = _pending_cancellations(session, {b.cancellation_id for b in bookings})
            immediate, requested, already, refusals = [], [], [], []
            for booking in sorted(bookings, key=lambda b: (b.date, b.activity_id)):
                activity = store.to_activity(rows[booking.activity_id])
                child = domain.Child(booking.child_id, booking.child_first_name)
                what = (f"{booking.child_first_name} le {fr_date(booking.date)} "
                        f"(« {activity.label} »)")
                if booking.status in (domain.CANCELLED, domain.RELEASED):
                    already.append(booking.id)
                    continue
                if booking.status == domain.PENDING_PAYMENT:
                    refusals.append(self._refusal(booking, "pending_payment", (
                        f"Annulation impossible pour {what} : la réservation attend son "
                        "paiement ; sans paiement elle sera libérée d'elle-même.")))
                    continue
                if booking.cancellation_id in pending:
                    refusals.append(self._refusal(booking, "pending_request", (
                        f"Une demande d'annulation est déjà en cours pour {what}.")))
                    continue
                if booking.attendance:
                    refusals.append(self._refusal(booking, "attendance_recorded", (
                        f"Annulation impossible pour {what} : la présence a déjà été "
                        "pointée.")))
                    continue
                check = domain.cancellation_check(child, activity, booking.date, now, calendar)
                if check.mode == "immediate":
                    immediate.append(booking)
                elif check.mode == "request":
                    requested.append(booking)
                else:
                    refusals.append(self._refusal(booking, "deadline", check.message,
                                                  check.deadline))
            if refusals:
                raise _conflict(refusals, "Ces réservations ne peuvent pas être annulées")
            cancellations: list[Cancellation] = []
            if immediate:
                pairs = sorted({(b.activity_id, b.date) for b in immediate})
                store.lock(session, pairs)
                # Read again under the days' locks: a concurrent cancellation may have won.
                immediate = list(session.scalars(
                    select(Booking).where(Booking.id.in_([b.id for b in immediate]),
                                          Booking.status == domain.CONFIRMED)
                    .execution_options(populate_existing=True)))
                for group in events.group_bookings(immediate):
                    for booking in group:
                        booking.status, booking.ended_at = domain.CANCELLED, now
                        booking.end_reason = "cancelled"
                        booking.refund_cents = (booking.unit_price_cents
                                                if booking.payment_mode == "prepaid" else 0)
                    cancellation = self._cancellation(session, group, "done", True, reason,
                                                      caller, now)
                    cancellations.append(cancellation)
                    events.booking_cancelled(session, group, rows, within_deadline=True,
                                             cancellation_id=cancellation.id, reason=reason)
                events.places_freed(session, pairs, now)
            requests = []
            for group in events.group_bookings(requested):
                cancellation = self._cancellation(session, group, "pending", False, reason,
                                                  caller, now)
                requests.append(cancellation)
            session.flush()
            return {
                "cancelled": [booking_view(b, rows) for b in immediate],
                "requests": [cancellation_view(c, rows) for c in requests],
                "cancellations": [cancellation_view(c, rows) for c in cancellations],
                "already_cancelled": already,
                "refund_cents": sum(b.refund_cents for b in immediate),
            }

    @staticmethod
    def _refusal(booking: Booking, rule: str, message: str,
                 deadline: datetime | None = None) -> domain.Refusal:
        return domain.Refusal(rule, message, message, booking.date, booking.child_id,
                              booking.activity_id, deadline.astimezone(PARIS) if deadline
                              else None)

    @staticmethod
    def _cancellation(session: Session, group: list[Booking], status: str, within: bool,
                      reason: str | None, caller: Caller, now: datetime) -> Cancellation:
        first = group[0]
        row = Cancellation(
            commune_id=first.commune_id, family_id=first.family_id, child_id=first.child_id,
            child_first_name=first.child_first_name, activity_id=first.activity_id,
            booking_ids=[b.id for b in group], dates=[b.date.isoformat() for b in group],
            reason=reason, status=status, within_deadline=within,
            refund_cents=sum(b.refund_cents for b in group), requested_by=caller.account_id,
            created_at=now)
        session.add(row)
        session.flush()
        for booking in group:
            booking.cancellation_id = row.id
        return row

    def cancellations(self, caller: Caller, slug: str, status: str | None,
                      cursor: str | None) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = select(Cancellation).where(Cancellation.commune_id == commune["id"])
            if not caller.agent:
                query = query.where(Cancellation.family_id == caller.family())
            if status:
                query = query.where(Cancellation.status == status)
            if cursor:
                created, cancellation_id = decode_cursor(cursor, 2)
                try:
                    created = datetime.fromisoformat(created)
                except (TypeError, ValueError) as exc:
                    raise Problem(400, "Le curseur de pagination est invalide.") from exc
                query = query.where(or_(Cancellation.created_at > created, and_(
                    Cancellation.created_at == created, Cancellation.id > cancellation_id)))
            rows = list(session.scalars(query.order_by(Cancellation.created_at,
                                                       Cancellation.id).limit(PAGE + 1)))
            page = rows[:PAGE]
            activities = store.activities_by_id(session, [c.activity_id for c in page])
            next_cursor = (encode_cursor([utc(page[-1].created_at).isoformat(), page[-1].id])
                           if len(rows) > PAGE else None)
            return {"items": [cancellation_view(c, activities) for c in page],
                    "next": next_cursor}

    def decide_cancellation(self, caller: Caller, slug: str, cancellation_id: str,
                            accept: bool, message: str | None) -> dict[str, Any]:
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = session.scalar(select(Cancellation).where(
                Cancellation.id == cancellation_id).with_for_update())
            if row is None or row.commune_id != commune["id"]:
                raise Problem(404, "Cette demande d'annulation est introuvable.")
            if row.status != "pending":
                raise Problem(409, "Cette demande d'annulation a déjà été traitée.")
            row.status = "accepted" if accept else "refused"
            row.decided_at, row.decided_by, row.agent_message = now, caller.account_id, message
            activities = store.activities_by_id(session, [row.activity_id])
            if accept:
                bookings = list(session.scalars(select(Booking).where(
                    Booking.id.in_(row.booking_ids), Booking.status == domain.CONFIRMED)))
                if bookings:
                    pairs = sorted({(b.activity_id, b.date) for b in bookings})
                    store.lock(session, pairs)
                    bookings = list(session.scalars(
                        select(Booking).where(Booking.id.in_([b.id for b in bookings]),
                                              Booking.status == domain.CONFIRMED)
                        .execution_options(populate_existing=True)))
                    for booking in bookings:
                        booking.status, booking.ended_at = domain.CANCELLED, now
                        booking.end_reason = "cancelled_late"
                        booking.refund_cents = (booking.unit_price_cents
                                                if booking.payment_mode == "prepaid" else 0)
                    row.refund_cents = sum(b.refund_cents for b in bookings)
                    events.booking_cancelled(session, bookings, activities,
                                             within_deadline=False, cancellation_id=row.id,
                                             reason=row.reason, agent_message=message)
                    events.places_freed(session, pairs, now)
            session.flush()
            return cancellation_view(row, activities)

    # --- waiting list -------------------------------------------------------------------------
    def waiting_list(self, caller: Caller, slug: str, filters: dict) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = select(WaitingEntry).where(WaitingEntry.commune_id == commune["id"])
            if not caller.agent:
                query = query.where(WaitingEntry.family_id == caller.family())
            if filters.get("child_id"):
                query = query.where(WaitingEntry.child_id == filters["child_id"])
            if filters.get("activity"):
                query = query.where(WaitingEntry.activity_id == filters["activity"])
            if filters.get("status"):
                query = query.where(WaitingEntry.status == filters["status"])
            else:
                query = query.where(WaitingEntry.status.in_(domain.IN_LINE))
            rows = list(session.scalars(query.order_by(WaitingEntry.date,
                                                       WaitingEntry.activity_id,
                                                       WaitingEntry.rank)
                                        .limit(1000)))
            activities = store.activities_by_id(session, [e.activity_id for e in rows])
            positions = store.waiting_positions(session, rows)
            return {"items": [waiting_view(e, activities, positions) for e in rows],
                    "next": None}

    def _entry(self, session: Session, caller: Caller, commune_id: str,
               entry_id: str) -> WaitingEntry:
        """The entry, read again once its day's places are locked (the lock order is always
        the day first, then the rows: no deadlock with a promotion of the same day)."""
        entry = session.get(WaitingEntry, entry_id)
        if (entry is None or entry.commune_id != commune_id
                or (not caller.agent and entry.family_id != caller.family_id)):
            raise Problem(404, "Cette inscription en liste d'attente est introuvable.")
        store.lock(session, [(entry.activity_id, entry.date)])
        session.refresh(entry)
        return entry

    def accept_offer(self, caller: Caller, slug: str, entry_id: str) -> dict[str, Any]:
        family = caller.family()
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            entry = self._entry(session, caller, commune["id"], entry_id)
            activity = self._activity(session, commune["id"], entry.activity_id)
            what = f"{entry.child_first_name} le {fr_date(entry.date)} (« {activity.label} »)"
            if entry.status != domain.OFFERED:
                raise Problem(409, f"Aucune place n'est proposée pour {what}.")
            if utc(entry.offer_expires_at) < now:
                raise Problem(409, f"La place proposée pour {what} n'est plus disponible : la "
                                   f"réponse était attendue avant le "
                                   f"{fr_datetime(utc(entry.offer_expires_at))}.")
            pair = (entry.activity_id, entry.date)
            prepaid = activity.payment_mode == "prepaid"
            basket = Basket(commune_id=commune["id"], family_id=family,
                            status="checked_out" if prepaid else "confirmed", created_at=now,
                            checked_out_at=now, closed_at=None if prepaid else now,
                            amount_due_cents=activity.unit_price_cents if prepaid else 0)
            session.add(basket)
            session.flush()
            basket.return_url = self._return_url(commune["slug"], basket.id)
            booking = Booking(
                commune_id=commune["id"], family_id=family, child_id=entry.child_id,
                child_first_name=entry.child_first_name, activity_id=activity.id,
                date=entry.date,
                status=domain.PENDING_PAYMENT if prepaid else domain.CONFIRMED,
                payment_mode=activity.payment_mode, unit_price_cents=activity.unit_price_cents,
                basket_id=basket.id, source="waiting_list", created_at=now,
                hold_expires_at=now + timedelta(minutes=self.hold_minutes) if prepaid else None,
                confirmed_at=None if prepaid else now)
            session.add(booking)
            try:
                with session.begin_nested():
                    session.flush()
            except IntegrityError as exc:
                raise Problem(409, f"{what} : une réservation existe déjà.") from exc
            entry.status, entry.booking_id, entry.ended_at = domain.PROMOTED, booking.id, now
            store.recount(session, [pair])
            activities = {activity.id: activity}
            if not prepaid:
                events.booking_confirmed(session, [booking], activities, basket_id=basket.id)
            events.basket_checked_out(session, basket, [booking], activities)
            basket_id = basket.id
        return self._after_checkout(basket_id)

    def withdraw(self, caller: Caller, slug: str, entry_id: str) -> None:
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            entry = self._entry(session, caller, commune["id"], entry_id)
            if entry.status not in domain.IN_LINE:
                return
            offered = entry.status == domain.OFFERED
            pair = (entry.activity_id, entry.date)
            entry.status, entry.ended_at = domain.WITHDRAWN, now
            if offered:
                events.places_freed(session, [pair], now)
            else:
                store.recount(session, [pair])

    # --- background work (the worker's sweeper) ------------------------------------------------
    def expire_holds(self, now: datetime | None = None, limit: int = 100) -> int:
        """Release the holds whose time ran out, basket by basket; returns how many baskets."""
        now = (now or self.now()).astimezone(UTC)
        with self.db.sessions() as session:
            basket_ids = list(session.scalars(select(Booking.basket_id).where(
                Booking.status == domain.PENDING_PAYMENT, Booking.hold_expires_at <= now)
                .distinct().limit(limit)))
        done = 0
        for basket_id in basket_ids:
            if basket_id is None:
                continue
            with self.db.transaction() as session:
                basket = events.lock_basket(session, basket_id)
                due = session.scalar(select(func.count()).select_from(Booking).where(
                    Booking.basket_id == basket_id, Booking.status == domain.PENDING_PAYMENT,
                    Booking.hold_expires_at <= now))
                if basket is None or not due:
                    continue  # paid or released meanwhile
                released = events.release_holds(session, basket, "hold_expired", now)
                if basket.status == "checked_out":
                    basket.status, basket.closed_at = "expired", now
                events.basket_expired(session, basket, [b.id for b in released])
                done += 1
                log.info("basket_expired", basket_id=basket_id, released=len(released))
        return done

    def lapse_offers(self, now: datetime | None = None, limit: int = 100) -> int:
        """Offers not answered in time: the place goes to the next in line."""
        now = (now or self.now()).astimezone(UTC)
        with self.db.sessions() as session:
            ids = list(session.scalars(select(WaitingEntry.id).where(
                WaitingEntry.status == domain.OFFERED, WaitingEntry.offer_expires_at <= now)
                .limit(limit)))
        for entry_id in ids:
            with self.db.transaction() as session:
                entry = session.get(WaitingEntry, entry_id)
                pair = (entry.activity_id, entry.date)
                store.lock(session, [pair])
                session.refresh(entry)
                if entry.status != domain.OFFERED or utc(entry.offer_expires_at) > now:
                    continue
                entry.status, entry.ended_at = domain.LAPSED, now
                events.places_freed(session, [pair], now)
        return len(ids)

    def sweep(self, now: datetime | None = None) -> dict[str, int]:
        return {"expired_baskets": self.expire_holds(now), "lapsed_offers": self.lapse_offers(now)}

    # --- attendance ---------------------------------------------------------------------------
    def _site(self, session: Session, commune_id: str, site_id: str) -> Site:
        site = session.get(Site, site_id)
        if site is None or site.commune_id != commune_id:
            raise Problem(404, "Ce site est introuvable.")
        return site

    @staticmethod
    def _locked(session: Session, commune_id: str, day: date) -> bool:
        return session.get(AttendanceLock, (commune_id, f"{day:%Y-%m}")) is not None

    def attendance(self, slug: str, site_id: str, day: date) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            return self._attendance(session, commune["id"], site_id, day)

    def _attendance(self, session: Session, commune_id: str, site_id: str,
                    day: date) -> dict[str, Any]:
        site = self._site(session, commune_id, site_id)
        activities = {a.id: a for a in session.scalars(select(Activity).where(
            Activity.site_id == site.id))}
        bookings = list(session.scalars(select(Booking).where(
            Booking.activity_id.in_(list(activities)), Booking.date == day,
            or_(Booking.status == domain.CONFIRMED,
                and_(Booking.status == domain.CANCELLED, Booking.attendance.is_not(None))))))
        children = store.children_by_id(session, [b.child_id for b in bookings])
        items = []
        for booking in bookings:
            child = children.get(booking.child_id) or {}
            activity = activities[booking.activity_id]
            items.append({
                "booking_id": booking.id, "child_id": booking.child_id,
                "first_name": child.get("first_name") or booking.child_first_name,
                "last_name": child.get("last_name"), "class_name": child.get("class_name"),
                "school": child.get("school"), "allergies": bool(child.get("allergies")),
                "family_id": booking.family_id, "activity_id": activity.id,
                "activity_code": activity.code, "activity_label": activity.label,
                "status": booking.attendance, "expected": booking.source != "attendance",
                "recorded_at": utc(booking.attendance_recorded_at)})
        items.sort(key=lambda i: (i["activity_label"], (i["last_name"] or "").lower(),
                                  i["first_name"].lower()))
        totals = []
        for activity in sorted(activities.values(), key=lambda a: a.label):
            mine = [i for i in items if i["activity_id"] == activity.id]
            if not mine and not activity.active:
                continue
            totals.append({
                "activity_id": activity.id, "code": activity.code, "label": activity.label,
                "expected": sum(1 for i in mine if i["status"] != "excused"),
                "present": sum(1 for i in mine if i["status"] == "present"),
                "absent": sum(1 for i in mine if i["status"] == "absent"),
                "excused": sum(1 for i in mine if i["status"] == "excused"),
                "unmarked": sum(1 for i in mine if i["status"] is None),
                "allergies": sum(1 for i in mine if i["allergies"]
                                 and i["status"] != "excused")})
        return {"site_id": site.id, "site_name": site.name, "date": day,
                "locked": self._locked(session, commune_id, day), "items": items,
                "totals": totals, "next": None}

    def record_attendance(self, caller: Caller, slug: str, site_id: str, day: date,
                          marks: list[dict[str, Any]]) -> dict[str, Any]:
        now = self.now()
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            site = self._site(session, commune["id"], site_id)
            if self._locked(session, commune["id"], day):
                raise Problem(409, f"Le pointage de {fr_month(day.year, day.month)} est "
                                   "verrouillé : il ne peut plus être modifié.")
            activities = {a.id: a for a in session.scalars(select(Activity).where(
                Activity.site_id == site.id))}
            errors: dict[str, list[str]] = {}
            for index, mark in enumerate(marks):
                if mark["activity_id"] not in activities:
                    errors[f"marks.{index}.activity_id"] = ["Cette activité n'a pas lieu sur "
                                                            "ce site."]
            if errors:
                raise Problem(422, errors=errors)
            new: list[Booking] = []
            for index, mark in enumerate(marks):
                activity = activities[mark["activity_id"]]
                booking = store.live_booking(session, mark["child_id"], activity.id, day)
                if booking is None:
                    booking = self._unexpected(session, commune["id"], activity, day,
                                               mark["child_id"], now, index)
                    new.append(booking)
                if booking.attendance != mark["status"]:
                    booking.attendance = mark["status"]
                    booking.attendance_recorded_at = now
                    booking.attendance_by = caller.account_id
                    session.flush()
                    events.attendance_recorded(session, booking, now)
            if new:
                store.recount(session, sorted({(b.activity_id, b.date) for b in new}))
                events.booking_confirmed(session, new, activities)
            return self._attendance(session, commune["id"], site.id, day)

    def _unexpected(self, session: Session, commune_id: str, activity: Activity, day: date,
                    child_id: str, now: datetime, index: int) -> Booking:
        """A child the agent adds to the day's list without a booking."""
        child = session.execute(select(CHILDREN).where(CHILDREN.c.id == child_id)
                                ).mappings().first()
        if child is None or not store.family_in_commune(session, child["family_id"],
                                                        commune_id):
            raise Problem(422, errors={f"marks.{index}.child_id": [
                "Enfant inconnu dans cette commune."]})
        store.lock(session, [(activity.id, day)])
        booking = Booking(
            commune_id=commune_id, family_id=child["family_id"], child_id=child["id"],
            child_first_name=child["first_name"], activity_id=activity.id, date=day,
            status=domain.CONFIRMED, payment_mode=activity.payment_mode,
            unit_price_cents=activity.unit_price_cents, source="attendance", created_at=now,
            confirmed_at=now)
        session.add(booking)
        session.flush()
        return booking

    def lock_month(self, caller: Caller, slug: str, month: str) -> dict[str, Any]:
        with self.db.transaction() as session:
            commune = self._commune(session, slug)
            row = session.get(AttendanceLock, (commune["id"], month))
            if row is None:
                row = AttendanceLock(commune_id=commune["id"], month=month,
                                     locked_at=self.now(), locked_by=caller.account_id)
                session.add(row)
                session.flush()
            return {"month": row.month, "locked_at": utc(row.locked_at)}

    def locks(self, slug: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            rows = session.scalars(select(AttendanceLock).where(
                AttendanceLock.commune_id == commune["id"]).order_by(AttendanceLock.month))
            return {"items": [{"month": r.month, "locked_at": utc(r.locked_at)} for r in rows],
                    "next": None}

    def attendance_csv(self, slug: str, site_id: str, day: date) -> str:
        """The day's list for the kitchen: one line per child, then the meal counts."""
        sheet = self.attendance(slug, site_id, day)
        out = io.StringIO()
        out.write("\ufeff")  # spreadsheets read the accents right
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow([f"{sheet['site_name']} — {fr_date(day)}"])
        writer.writerow(["Activité", "Code", "Nom", "Prénom", "Classe", "Allergie / PAI",
                         "Pointage"])
        labels = {"present": "présent", "absent": "absent", "excused": "excusé", None: ""}
        for item in sheet["items"]:
            writer.writerow([item["activity_label"], item["activity_code"],
                             item["last_name"] or "", item["first_name"],
                             item["class_name"] or "", "oui" if item["allergies"] else "",
                             labels[item["status"]]])
        writer.writerow([])
        writer.writerow(["Activité", "Code", "Attendus", "dont allergie / PAI", "Présents",
                         "Absents", "Excusés"])
        for total in sheet["totals"]:
            writer.writerow([total["label"], total["code"], total["expected"],
                             total["allergies"], total["present"], total["absent"],
                             total["excused"]])
        return out.getvalue()

    # --- occupancy ----------------------------------------------------------------------------
    def occupancy(self, slug: str, activity_id: str | None, site_id: str | None,
                  start: date | None, end: date | None) -> dict[str, Any]:
        start, end = _span(start, end, self.today(), 7, MAX_OCCUPANCY_DAYS)
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = select(Activity).where(Activity.commune_id == commune["id"])
            if activity_id:
                query = query.where(Activity.id == activity_id)
            if site_id:
                query = query.where(Activity.site_id == site_id)
            rows = sorted(session.scalars(query), key=lambda a: (a.site.name, a.label))
            ids = [a.id for a in rows]
            calendar = store.load_calendar(session, commune["id"])
            counts: dict[tuple, int] = defaultdict(int)
            for activity, day, status, attendance, n in session.execute(
                    select(Booking.activity_id, Booking.date, Booking.status,
                           Booking.attendance, func.count())
                    .where(Booking.activity_id.in_(ids), Booking.date >= start,
                           Booking.date <= end)
                    .group_by(Booking.activity_id, Booking.date, Booking.status,
                              Booking.attendance)):
                counts[(activity, day, status)] += n
                if attendance and status in (*domain.HOLDING, domain.CANCELLED):
                    counts[(activity, day, attendance)] += n
            for activity, day, status, n in session.execute(
                    select(WaitingEntry.activity_id, WaitingEntry.date, WaitingEntry.status,
                           func.count())
                    .where(WaitingEntry.activity_id.in_(ids), WaitingEntry.date >= start,
                           WaitingEntry.date <= end, WaitingEntry.status.in_(domain.IN_LINE))
                    .group_by(WaitingEntry.activity_id, WaitingEntry.date,
                              WaitingEntry.status)):
                counts[(activity, day, f"line:{status}")] += n
            items = []
            for row in rows:
                activity = store.to_activity(row)
                for day in days_between(start, end):
                    if calendar.closed_reason(day, activity.place, activity.opening):
                        continue
                    booked = counts[(row.id, day, domain.CONFIRMED)]
                    pending = counts[(row.id, day, domain.PENDING_PAYMENT)]
                    offered = counts[(row.id, day, f"line:{domain.OFFERED}")]
                    available = (None if row.capacity is None
                                 else max(row.capacity - booked - pending - offered, 0))
                    items.append({
                        "activity_id": row.id, "activity_label": row.label,
                        "site_id": row.site_id, "date": day, "capacity": row.capacity,
                        "booked": booked, "pending_payment": pending, "offered": offered,
                        "waiting": counts[(row.id, day, f"line:{domain.WAITING}")] + offered,
                        "available": available, "present": counts[(row.id, day, "present")],
                        "absent": counts[(row.id, day, "absent")],
                        "excused": counts[(row.id, day, "excused")]})
            return {"items": items, "next": None}

    # --- children of the commune (agents: adding an unexpected child, enrolling) --------------
    def children(self, slug: str, q: str) -> dict[str, Any]:
        with self.db.sessions() as session:
            commune = self._commune(session, slug)
            query = (select(CHILDREN, HOUSEHOLDS.c.family_name)
                     .join(HOUSEHOLD_COMMUNES,
                           HOUSEHOLD_COMMUNES.c.family_id == CHILDREN.c.family_id)
                     .join(HOUSEHOLDS, HOUSEHOLDS.c.family_id == CHILDREN.c.family_id,
                           isouter=True)
                     .where(HOUSEHOLD_COMMUNES.c.commune_id == commune["id"]))
            for word in (q or "").split()[:4]:
                pattern = f"%{word.lower()}%"
                query = query.where(or_(func.lower(CHILDREN.c.first_name).like(pattern),
                                        func.lower(CHILDREN.c.last_name).like(pattern)))
            rows = session.execute(query.order_by(CHILDREN.c.last_name, CHILDREN.c.first_name)
                                   .limit(PAGE)).mappings()
            return {"items": [dict(r) for r in rows], "next": None}


ENROLMENT_LABELS = {"pending": "en attente de validation", "validated": "validée",
                    "refused": "refusée"}
