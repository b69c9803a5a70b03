"""A billing app on its own database, fed with events as the bus would, called with tokens the
gateway (people) or another service (``/internal``) would mint; the outbox read back as the
events it will publish, each checked against the catalogue."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.billing.app import build_runtime, create_app
from services.common import catalogue
from services.common.auth import Principal, Signer, ensure_dev_keys
from services.common.bus import EventConsumer, Topology
from services.common.config import Settings
from services.common.events import Event
from services.common.internal import ServiceTokens, service_key
from services.common.migrate import upgrade
from services.common.outbox import OUTBOX
from tests.test_catalogue import (
    ACTIVITY,
    ACTIVITY_2,
    CHILD_1,
    CHILD_2,
    COMMUNE,
    COMMUNE_2,
    EXAMPLES,
    FAMILY,
)

PUBLIC_URL = "https://portail.example.fr"
OTHER_FAMILY = "f0000000-0000-4000-8000-000000000002"
OTHER_CHILD = "c0000000-0000-4000-8000-000000000009"
THIRD_FAMILY = "f0000000-0000-4000-8000-000000000003"
CANTEEN = "ac000000-0000-4000-8000-0000000000aa"  # restauration scolaire (monthly)
RETURN_URL = f"{PUBLIC_URL}/factures/retour"

__all__ = ["ACTIVITY", "ACTIVITY_2", "CHILD_1", "CHILD_2", "COMMUNE", "COMMUNE_2", "FAMILY"]


def _communes(*roles_by_slug: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {slug: {"id": cid, "name": slug, "roles": roles} for slug, cid, roles in roles_by_slug}


PARENT = Principal(account_id="acc00000-0000-4000-8000-000000000001",
                   email="parent@famille.test", family_id=FAMILY,
                   communes=_communes(("jolieville", COMMUNE, ["parent"]),
                                      ("dammartin", COMMUNE_2, ["parent"])))
OTHER_PARENT = Principal(account_id="acc00000-0000-4000-8000-000000000002",
                         email="autre@famille.test", family_id=OTHER_FAMILY,
                         communes=_communes(("jolieville", COMMUNE, ["parent"])))
AGENT = Principal(account_id="acc00000-0000-4000-8000-0000000000a1",
                  email="agent@jolieville.test",
                  communes=_communes(("jolieville", COMMUNE, ["agent", "agent-admin"])))
DAMMARTIN_AGENT = Principal(account_id="acc00000-0000-4000-8000-0000000000a2",
                            email="agent@dammartin.test",
                            communes=_communes(("dammartin", COMMUNE_2, ["agent"])))


def example(event_type: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLES[event_type])
    data.update(changes)
    return data


def event(event_type: str, data: dict[str, Any] | None = None, *,
          commune_id: str | None = COMMUNE, **changes: Any) -> Event:
    payload = data if data is not None else example(event_type, **changes)
    return Event.new(event_type, payload, producer=event_type.split(".")[0],
                     commune_id=commune_id)


def other_household() -> dict[str, Any]:
    data = example("accounts.family.updated")
    data.update(family_id=OTHER_FAMILY, family_name="MARTIN", version=1,
                guardians=[{**data["guardians"][0], "id": "9a000000-0000-4000-8000-000000000009",
                            "first_name": "Zoé", "last_name": "MARTIN",
                            "email": "autre@famille.test"}],
                children=[{**data["children"][0], "id": OTHER_CHILD, "first_name": "Noé",
                           "last_name": "MARTIN"}],
                communes=[{"commune_id": COMMUNE, "slug": "jolieville",
                           "family_code": "JV-0099"}])
    return data


@dataclass
class Billing:
    app: Any
    runtime: Any
    signer: Signer
    tokens: ServiceTokens
    consumer: EventConsumer

    @property
    def db(self):
        return self.runtime.db

    @property
    def ops(self):
        return self.app.extensions["billing"]

    def client(self):
        return self.app.test_client()

    def call(self, method: str, path: str, as_: Principal | None = None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.signer.mint(as_, audience='billing')}"
        return self.client().open(path, method=method, headers=headers, **kwargs)

    def get(self, path, as_=None, **kwargs):
        return self.call("GET", path, as_, **kwargs)

    def post(self, path, as_=None, **kwargs):
        return self.call("POST", path, as_, **kwargs)

    def put(self, path, as_=None, **kwargs):
        return self.call("PUT", path, as_, **kwargs)

    def internal(self, path: str, body: dict, *, key: str | None, caller: str = "reservations"):
        headers = {"Authorization": f"Bearer {self.tokens.mint(caller, 'billing')}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client().post(path, json=body, headers=headers)

    # the bus --------------------------------------------------------------------------------------
    def handle(self, ev: Event) -> str:
        data = catalogue.validate(ev.type, ev.version, ev.data, strict=False)
        return self.consumer.handle(ev, data, self.consumer.handlers[ev.type])

    def book(self, booking_ids: list[str], dates: list[str], *, child: str = CHILD_1,
             activity: str = CANTEEN, family: str = FAMILY, mode: str = "monthly",
             price: str = "4.10", basket: str | None = None, name: str = "Restauration "
             "scolaire") -> Event:
        ev = event("reservations.booking.confirmed", booking_ids=booking_ids, dates=dates,
                   child_id=child, activity_id=activity, family_id=family, payment_mode=mode,
                   unit_price=price, basket_id=basket, activity_name=name)
        self.handle(ev)
        return ev

    def attend(self, day: str, status: str = "present", *, child: str = CHILD_1,
               activity: str = CANTEEN, family: str = FAMILY,
               recorded_at: str | None = None) -> Event:
        ev = event("reservations.attendance.recorded", child_id=child, activity_id=activity,
                   date=day, status=status, family_id=family, booking_id=None,
                   recorded_at=recorded_at or datetime.now(UTC).isoformat())
        self.handle(ev)
        return ev

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        with self.db.sessions() as session:
            query = select(OUTBOX.c.envelope).order_by(OUTBOX.c.id)
            if event_type:
                query = query.where(OUTBOX.c.type == event_type)
            envelopes = list(session.scalars(query))
        for envelope in envelopes:
            catalogue.validate(envelope["type"], envelope["version"], envelope["data"],
                               strict=True)
            catalogue.validate(envelope["type"], envelope["version"], envelope["data"],
                               strict=False)
            assert envelope["producer"] == "billing"
        return envelopes


def build(tmp_path: Path, url: str, **extra: str) -> Billing:
    upgrade("services.billing", url)
    settings = Settings(service="billing", env="dev", data_dir=tmp_path, database_url=url,
                        amqp_url="memory://", public_url=PUBLIC_URL, log_format="console",
                        log_level="WARNING", extra=extra)
    runtime = build_runtime(settings=settings)
    app = create_app(runtime)
    app.config["TESTING"] = True
    consumer = EventConsumer(url="memory://", service="billing", db=runtime.db,
                             handlers=runtime.handlers, topology=Topology(prefix="unused."))
    built = Billing(app, runtime, Signer(ensure_dev_keys(tmp_path)[0]),
                    ServiceTokens(service_key(settings)), consumer)
    built.handle(event("accounts.commune.created"))
    built.handle(event("accounts.commune.created", commune_id=COMMUNE_2,
                       data={**EXAMPLES["accounts.commune.created"], "commune_id": COMMUNE_2,
                             "slug": "dammartin", "name": "Dammartin-sur-Tigeaux"}))
    built.handle(event("accounts.family.updated", commune_id=None))
    built.handle(event("accounts.family.updated", other_household(), commune_id=None))
    return built


def finalise_month(billing: Billing, period: str = "2026-10") -> dict[str, Any]:
    started = billing.post("/api/billing/communes/jolieville/invoicing-runs", AGENT,
                           json={"period": period})
    assert started.status_code in (200, 201), started.get_json()
    run = started.get_json()
    done = billing.post(f"/api/billing/communes/jolieville/invoicing-runs/{run['id']}/finalise",
                        AGENT)
    assert done.status_code == 200, done.get_json()
    return done.get_json()


def open_invoices(billing: Billing, as_: Principal = PARENT) -> list[dict[str, Any]]:
    answer = billing.get("/api/billing/communes/jolieville/invoices?status=open", as_)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["items"]


def october_for_family(billing: Billing, days: int = 6) -> None:
    """``days`` school days of October booked and attended by Léa at the canteen."""
    ids = [f"b0000000-0000-4000-8000-0000000010{i:02d}" for i in range(days)]
    dates = [date(2026, 10, 1 + i).isoformat() for i in range(days)]
    billing.book(ids, dates)
    for day in dates:
        billing.attend(day)
