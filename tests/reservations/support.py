"""A reservations app on its own database with the demo seed, the communes and the CASSEREAU
household fed through the handlers as the bus would, a clock the tests move, tokens minted as
the gateway would, a fake billing answering ``/internal/checkouts``, and the outbox read back
as the events it will publish (checked against the catalogue)."""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, jsonify, request
from sqlalchemy import select

from services.common import catalogue
from services.common.app import create_app as create_service_app
from services.common.auth import KeySet, Principal, Signer, ensure_dev_keys
from services.common.config import Settings
from services.common.events import Event
from services.common.internal import ServiceTokens, require_service, service_key
from services.common.migrate import upgrade
from services.common.outbox import OUTBOX
from services.reservations.app import build_runtime, create_app
from services.reservations.seed import demo_id, seed
from tests.common.servers import Served
from tests.test_catalogue import EXAMPLES

PARIS = ZoneInfo("Europe/Paris")
PUBLIC_URL = "https://portail.example.fr"
JOLIEVILLE = demo_id("commune", "jolieville")
DAMMARTIN = demo_id("commune", "dammartin")
CASSEREAU = demo_id("family", "CASSEREAU")
LEA = demo_id("child", "CASSEREAU:Léa")
HUGO = demo_id("child", "CASSEREAU:Hugo")
REPAS = demo_id("activity", "jolieville:REPAS")
MATIN = demo_id("activity", "jolieville:MATIN")
SOIR = demo_id("activity", "jolieville:SOIR")
MERCREDI = demo_id("activity", "jolieville:MERCREDI")
ETUDE = demo_id("activity", "jolieville:ETUDE")
DAMMARTIN_REPAS = demo_id("activity", "dammartin:REPAS")
JULES_FERRY = demo_id("site", "jolieville:jules-ferry")
TILLEULS = demo_id("site", "jolieville:tilleuls")
SCHOOL_YEAR = demo_id("school-year", "jolieville:2026-2027")
LOISIRS = demo_id("service", "jolieville:loisirs")
RESTAURATION = demo_id("service", "jolieville:restauration")

OTHER_FAMILY = "f1000000-0000-4000-8000-000000000001"
OTHER_CHILD = "c1000000-0000-4000-8000-000000000001"

PARENT = Principal(account_id=demo_id("account", "parent@famille.test"),
                   email="parent@famille.test", family_id=CASSEREAU,
                   communes={"jolieville": {"id": JOLIEVILLE, "roles": ["parent"]},
                             "dammartin": {"id": DAMMARTIN, "roles": ["parent"]}})
OTHER_PARENT = Principal(account_id="acc10000-0000-4000-8000-000000000001",
                         email="dupont@exemple.fr", family_id=OTHER_FAMILY,
                         communes={"jolieville": {"id": JOLIEVILLE, "roles": ["parent"]}})
AGENT = Principal(account_id=demo_id("account", "agent@jolieville.test"),
                  email="agent@jolieville.test",
                  communes={"jolieville": {"id": JOLIEVILLE, "roles": ["agent", "agent-admin"]}})
DAMMARTIN_AGENT = Principal(account_id=demo_id("account", "agent@dammartin.test"),
                            email="agent@dammartin.test",
                            communes={"dammartin": {"id": DAMMARTIN, "roles": ["agent"]}})


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS)


@dataclass
class Clock:
    """The time the service sees; tests move it."""

    now: datetime = field(default_factory=lambda: paris(2026, 11, 30, 8, 0))

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)


def household(family_id: str = CASSEREAU, version: int = 1, children=None,
              communes=None, name: str = "CASSEREAU") -> dict[str, Any]:
    """An ``accounts.family.updated`` snapshot (the catalogue's example, with our ids)."""
    data = copy.deepcopy(EXAMPLES["accounts.family.updated"])
    data.update(family_id=family_id, family_name=name, version=version)
    for guardian in data["guardians"]:
        guardian["id"] = str(uuid.uuid5(uuid.NAMESPACE_OID, family_id + guardian["id"]))
    if family_id != CASSEREAU:
        data["guardians"][0]["email"] = "dupont@exemple.fr"
    data["children"] = children if children is not None else [
        {"id": LEA, "first_name": "Léa", "last_name": "CASSEREAU", "birth_date": "2017-03-14",
         "school": "École Jules Ferry", "class_name": "CM1", "allergies": False},
        {"id": HUGO, "first_name": "Hugo", "last_name": "CASSEREAU",
         "birth_date": "2020-09-02", "school": "École Jules Ferry", "class_name": "GS",
         "allergies": True},
    ]
    data["communes"] = communes if communes is not None else [
        {"commune_id": JOLIEVILLE, "slug": "jolieville", "family_code": "JV7CASSE"},
        {"commune_id": DAMMARTIN, "slug": "dammartin", "family_code": "DM7CASSE"}]
    return data


def commune_created(commune_id: str, slug: str, name: str) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLES["accounts.commune.created"])
    data.update(commune_id=commune_id, slug=slug, name=name)
    return data


class FakeBilling:
    """Billing's internal checkout route, served for real: records the calls, answers the
    same payment for the same idempotency key, and can play dead."""

    def __init__(self, tmp_path: Path):
        settings = Settings(service="billing", env="dev", data_dir=tmp_path,
                            secret_key="x" * 32)
        self.calls: list[dict[str, Any]] = []
        self.down = False
        self.lock = threading.Lock()
        self.payments: dict[str, str] = {}
        bp = Blueprint("internal", __name__)

        @bp.post("/internal/checkouts")
        def checkout():
            require_service("reservations")
            if self.down:
                return jsonify(title="indisponible"), 503
            key = request.headers.get("Idempotency-Key")
            with self.lock:
                self.calls.append({"key": key, "body": request.get_json()})
                repeated = key in self.payments
                payment = self.payments.setdefault(key, str(uuid.uuid4()))
            return jsonify(payment_id=payment,
                           payment_url=f"{PUBLIC_URL}/payments/simulator/{payment}",
                           invoice_id=str(uuid.uuid5(uuid.NAMESPACE_OID, payment))), (
                200 if repeated else 201)

        app = create_service_app("billing", settings, blueprints=[bp],
                                 keyset=KeySet(ensure_dev_keys(tmp_path)[1]),
                                 service_tokens=ServiceTokens(service_key(settings)))
        self.served = Served(app)
        self.url = self.served.url

    def stop(self) -> None:
        self.served.stop()


@dataclass
class Reservations:
    app: Any
    runtime: Any
    signer: Signer
    clock: Clock

    @property
    def db(self):
        return self.runtime.db

    @property
    def ops(self):
        return self.app.extensions["reservations"]

    def client(self):
        return self.app.test_client()

    def headers(self, principal: Principal | None) -> dict[str, str]:
        if principal is None:
            return {}
        return {"Authorization": f"Bearer {self.signer.mint(principal, 'reservations')}"}

    def call(self, method: str, path: str, as_: Principal | None = None, **kwargs):
        headers = {**self.headers(as_), **kwargs.pop("headers", {})}
        if not path.startswith("/"):
            path = f"/api/reservations/communes/{path}"
        return self.client().open(path, method=method, headers=headers, **kwargs)

    def get(self, path, as_=PARENT, **kwargs):
        return self.call("GET", path, as_, **kwargs)

    def post(self, path, as_=PARENT, **kwargs):
        return self.call("POST", path, as_, **kwargs)

    def put(self, path, as_=AGENT, **kwargs):
        return self.call("PUT", path, as_, **kwargs)

    def patch(self, path, as_=AGENT, **kwargs):
        return self.call("PATCH", path, as_, **kwargs)

    def delete(self, path, as_=PARENT, **kwargs):
        return self.call("DELETE", path, as_, **kwargs)

    # the bus, as the consumer would run it (inbox included)
    def feed(self, event_type: str, data: dict[str, Any], *, event_id: str | None = None,
             commune_id: str | None = None) -> str:
        producer = event_type.split(".")[0]
        event = Event.new(event_type, data, producer=producer, commune_id=commune_id)
        if event_id:
            event = Event(**{**event.to_dict(), "id": event_id})
        loaded = catalogue.validate(event_type, 1, event.data, strict=False)
        consumer = self.runtime.consumer()
        try:
            return consumer.handle(event, loaded, self.runtime.handlers[event_type])
        finally:
            consumer.connection.release()

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
            assert envelope["producer"] == "reservations"
        return envelopes

    # shortcuts
    def add(self, child_id: str, activity_id: str, dates: list[str], as_=PARENT,
            slug: str = "jolieville"):
        return self.post(f"{slug}/basket/items", as_,
                         json={"child_id": child_id, "activity_id": activity_id,
                               "dates": dates})

    def checkout(self, as_=PARENT, slug: str = "jolieville", **body):
        return self.post(f"{slug}/basket/checkout", as_, json=body)

    def book(self, child_id: str, activity_id: str, dates: list[str], as_=PARENT,
             slug: str = "jolieville") -> dict[str, Any]:
        added = self.add(child_id, activity_id, dates, as_, slug)
        assert added.status_code == 201, added.get_json()
        answer = self.checkout(as_, slug)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()

    def pay(self, checkout: dict[str, Any], *, event_id: str | None = None) -> str:
        data = copy.deepcopy(EXAMPLES["billing.payment.succeeded"])
        data.update(payment_id=checkout["payment_id"], family_id=CASSEREAU, invoice_ids=[],
                    basket_id=checkout["basket_id"], amount=checkout["amount"])
        return self.feed("billing.payment.succeeded", data, event_id=event_id,
                         commune_id=JOLIEVILLE)

    def calendar(self, child_id: str, start: str, end: str | None = None, activity=None,
                 as_=PARENT) -> dict[str, dict[str, dict[str, Any]]]:
        """``{date: {activity_id: cell}}``."""
        query = {"from": start, "to": end or start}
        if activity:
            query["activity"] = activity
        answer = self.get(f"jolieville/children/{child_id}/calendar", as_, query_string=query)
        assert answer.status_code == 200, answer.get_json()
        return {day["date"]: {c["activity_id"]: c for c in day["activities"]}
                for day in answer.get_json()["days"]}


def build(tmp_path: Path, url: str, clock: Clock | None = None, **extra: str) -> Reservations:
    upgrade("services.reservations", url)
    settings = Settings(service="reservations", env="dev", data_dir=tmp_path, database_url=url,
                        amqp_url="memory://", public_url=PUBLIC_URL, log_format="console",
                        log_level="WARNING", extra=extra)
    runtime = build_runtime(settings=settings)
    runtime.clock = clock or Clock()
    seed(runtime.db)
    app = create_app(runtime)
    app.config["TESTING"] = True
    built = Reservations(app, runtime, Signer(ensure_dev_keys(tmp_path)[0]), runtime.clock)
    built.feed("accounts.commune.created",
               commune_created(JOLIEVILLE, "jolieville", "JolieVille Test"))
    built.feed("accounts.commune.created",
               commune_created(DAMMARTIN, "dammartin", "Dammartin-sur-Tigeaux"))
    built.feed("accounts.family.updated", household())
    built.feed("accounts.family.updated", household(
        OTHER_FAMILY, name="DUPONT",
        children=[{"id": OTHER_CHILD, "first_name": "Jules", "last_name": "DUPONT",
                   "birth_date": "2018-01-10", "school": "École Jules Ferry",
                   "class_name": "CE2", "allergies": False}],
        communes=[{"commune_id": JOLIEVILLE, "slug": "jolieville", "family_code": "JVDUPONT"}]))
    return built


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
