"""The month calendar of a child with a year of bookings, and a checkout, against a trivial
query measured in the same run.

    python -m bench.reservations_bench [--database-url URL] [--samples 200] [--checkouts 100]
                                       [--families 200]

Without ``--database-url`` it runs on a fresh SQLite file (the embedded mode); with one it
migrates that database (give it an empty one: ``createdb portail_bench``) and adds its data
next to what is there. The reservations app is called in-process through its WSGI stack
(token verification, problem handling, JSON), as the gateway would call it; billing is a stub
served on a local port (the checkout's synchronous call is real HTTP).

Data: the demo seed (JolieVille), one child with every activity booked on every open day of
the school year 2026-2027 (canteen, morning and evening care, study, Wednesdays: about 600
bookings, a third of them cancelled or marked present), and ``--families`` other households
with the canteen booked all year, so the tables hold tens of thousands of rows.

Measured, each as median and 95th percentile in milliseconds:
1. ``SELECT 1`` on the database (the floor of any database round trip);
2. ``GET /api/reservations/healthz`` (the floor of the web stack);
3. ``GET .../children/{id}/calendar?from=2026-12-01&to=2026-12-31`` (every activity);
4. ``POST .../basket/checkout`` of a week of canteen (monthly: confirmed at once);
5. ``POST .../basket/checkout`` of a Wednesday at the centre (prepaid, capacity 24: held under
   the day's lock, billing called).
It prints one JSON object with the ratios of 3–5 to 1 and 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask, jsonify, request
from sqlalchemy import insert, select, text
from werkzeug.serving import make_server

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 8, 24, 10, 0, tzinfo=PARIS)  # before the school year: all bookable


def stats(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[max(int(round(len(ordered) * 0.95)) - 1, 0)]
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(p95 * 1000, 3)}


def timed(n: int, call, prepare=None) -> dict:
    samples = []
    for index in range(n):
        if prepare is not None:
            prepare(index)
        start = time.perf_counter()
        call(index)
        samples.append(time.perf_counter() - start)
    return stats(samples)


def billing_stub() -> tuple[str, callable]:
    app = Flask("billing-stub")
    payments: dict[str, str] = {}

    @app.post("/internal/checkouts")
    def checkout():
        key = request.headers.get("Idempotency-Key", "")
        payment = payments.setdefault(key, str(uuid.uuid4()))
        return jsonify(payment_id=payment, payment_url=f"http://bench/pay/{payment}",
                       invoice_id=str(uuid.uuid4())), 201

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--checkouts", type=int, default=100)
    parser.add_argument("--families", type=int, default=200)
    args = parser.parse_args()

    from services.common.auth import Principal, Signer, ensure_dev_keys
    from services.common.config import Settings
    from services.common.events import Event
    from services.common.households import HOUSEHOLD_HANDLERS
    from services.common.migrate import upgrade
    from services.common.tenancy import COMMUNE_HANDLERS
    from services.reservations import domain, store
    from services.reservations.app import build_runtime, create_app
    from services.reservations.models import Booking, Enrolment
    from services.reservations.seed import FAMILY, HUGO, LEA, demo_id, seed

    workdir = Path(tempfile.mkdtemp(prefix="bench-reservations-"))
    url = args.database_url or f"sqlite:///{workdir / 'reservations.sqlite3'}"
    billing_url, stop_billing = billing_stub()
    os.environ["BILLING_URL"] = billing_url
    upgrade("services.reservations", url)
    settings = Settings(service="reservations", env="dev", data_dir=workdir, database_url=url,
                        amqp_url="memory://", log_level="WARNING", log_format="console")
    runtime = build_runtime(settings=settings)
    runtime.clock = lambda: NOW
    seed(runtime.db)
    app = create_app(runtime)
    logging.disable(logging.INFO)
    signer = Signer(ensure_dev_keys(workdir)[0])
    db = runtime.db
    commune_id = demo_id("commune", "jolieville")
    year_id = demo_id("school-year", "jolieville:2026-2027")

    def feed(event_type: str, data: dict) -> None:
        event = Event.new(event_type, data, producer="accounts")
        with db.transaction() as session:
            {**COMMUNE_HANDLERS, **HOUSEHOLD_HANDLERS}[event_type](session, event, data)

    feed("accounts.commune.created", {
        "commune_id": commune_id, "slug": "jolieville", "name": "JolieVille Test",
        "settings": {"timezone": "Europe/Paris", "modules": ["reservations"]}})

    def household(family_id: str, name: str, children: list[tuple[str, str]]) -> None:
        feed("accounts.family.updated", {
            "family_id": family_id, "family_name": name, "version": 1, "address": None,
            "guardians": [{"id": str(uuid.uuid4()), "first_name": "Parent", "last_name": name,
                           "email": f"{name.lower()}@bench.test", "phones": [],
                           "pays": True}],
            "children": [{"id": cid, "first_name": first, "last_name": name,
                          "birth_date": "2017-03-14", "school": None, "class_name": "CM1",
                          "allergies": False} for cid, first in children],
            "communes": [{"commune_id": commune_id, "slug": "jolieville",
                          "family_code": name[:8]}]})

    run = uuid.uuid4().hex[:6]
    family = demo_id("family", FAMILY)
    household(family, FAMILY, [(LEA, "Léa"), (HUGO, "Hugo")])
    with db.sessions() as session:
        activities = {a.code: a for a in session.scalars(
            select(store.Activity).where(store.Activity.commune_id == commune_id))}
        calendar = store.load_calendar(session, commune_id)
    days = list(domain.days_between(date(2026, 9, 1), date(2027, 7, 3)))

    def open_days(code: str) -> list[date]:
        activity = store.to_activity(activities[code])
        return [d for d in days
                if calendar.closed_reason(d, activity.place, activity.opening) is None]

    stamp = datetime(2026, 8, 20, tzinfo=UTC)
    rows = []
    for code in ("REPAS", "MATIN", "SOIR", "ETUDE", "MERCREDI"):
        activity = activities[code]
        for index, day in enumerate(open_days(code)):
            cancelled = index % 5 == 4
            rows.append({
                "id": str(uuid.uuid4()), "commune_id": commune_id, "family_id": family,
                "child_id": LEA, "child_first_name": "Léa", "activity_id": activity.id,
                "date": day, "status": "cancelled" if cancelled else "confirmed",
                "payment_mode": activity.payment_mode,
                "unit_price_cents": activity.unit_price_cents, "source": "seed",
                "attendance": "present" if index % 5 == 1 else None,
                "created_at": stamp, "confirmed_at": stamp, "refund_cents": 0})
    child_bookings = len(rows)
    canteen = activities["REPAS"]
    canteen_days = open_days("REPAS")
    others = []
    for index in range(args.families):
        family_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
        others.append((family_id, child_id))
        for day in canteen_days:
            rows.append({
                "id": str(uuid.uuid4()), "commune_id": commune_id, "family_id": family_id,
                "child_id": child_id, "child_first_name": f"Enfant{index}",
                "activity_id": canteen.id, "date": day, "status": "confirmed",
                "payment_mode": "monthly", "unit_price_cents": canteen.unit_price_cents,
                "source": "seed", "created_at": stamp, "confirmed_at": stamp,
                "refund_cents": 0})
    with db.transaction() as session:
        for start in range(0, len(rows), 5000):
            session.execute(insert(Booking), rows[start:start + 5000])
        pairs = sorted({(r["activity_id"], r["date"]) for r in rows})
        store.lock(session, pairs)
        store.recount(session, pairs)

    # Families that check out: one child each, enrolled in the canteen and the centre.
    shoppers = []
    for index in range(args.checkouts * 2):
        family_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
        household(family_id, f"B{run}{index:04d}", [(child_id, f"Client{index}")])
        shoppers.append((Principal(account_id=str(uuid.uuid4()), family_id=family_id,
                                   communes={"jolieville": {"id": commune_id,
                                                            "roles": ["parent"]}}), child_id))
    with db.transaction() as session:
        for _, child_id in shoppers:
            with db.sessions() as lookup:
                family_id = store.children_by_id(lookup, [child_id])[child_id]["family_id"]
            for service in ("restauration", "loisirs"):
                session.add(Enrolment(commune_id=commune_id, family_id=family_id,
                                      child_id=child_id,
                                      service_id=demo_id("service", f"jolieville:{service}"),
                                      school_year_id=year_id, status="validated"))

    client = app.test_client()
    parent = Principal(account_id=demo_id("account", "parent@famille.test"), family_id=family,
                       communes={"jolieville": {"id": commune_id, "roles": ["parent"]}})

    def auth(principal: Principal) -> dict[str, str]:
        return {"Authorization": f"Bearer {signer.mint(principal, 'reservations')}"}

    def ok(answer, status=200):
        if answer.status_code != status:
            raise SystemExit(f"réponse inattendue {answer.status_code}: {answer.get_data()}")
        return answer

    def select_one(_):
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    base = "/api/reservations/communes/jolieville"
    month = {"from": "2026-12-01", "to": "2026-12-31"}
    warm = auth(parent)
    ok(client.get(f"{base}/children/{LEA}/calendar", headers=warm, query_string=month))
    select_1 = timed(args.samples, select_one)
    healthz = timed(args.samples, lambda _: ok(client.get("/api/reservations/healthz")))
    headers = {}
    calendar_month = timed(
        args.samples,
        lambda _: ok(client.get(f"{base}/children/{LEA}/calendar", headers=headers["h"],
                                query_string=month)),
        prepare=lambda _: headers.update(h=auth(parent)))
    week = ["2026-09-07", "2026-09-08", "2026-09-10", "2026-09-11"]
    # One Wednesday after the other: 24 places each, every checkout takes the day's lock.
    wednesdays = [d.isoformat() for d in open_days("MERCREDI")]

    def add(index: int, activity_code: str, dates: list[str], offset: int) -> None:
        principal, child_id = shoppers[offset + index]
        headers["h"] = auth(principal)
        ok(client.post(f"{base}/basket/items", headers=headers["h"], json={
            "child_id": child_id, "activity_id": activities[activity_code].id,
            "dates": dates}), 201)

    monthly = timed(args.checkouts,
                    lambda _: ok(client.post(f"{base}/basket/checkout", headers=headers["h"],
                                             json={})),
                    prepare=lambda i: add(i, "REPAS", week, 0))
    prepaid = timed(args.checkouts,
                    lambda _: ok(client.post(f"{base}/basket/checkout", headers=headers["h"],
                                             json={})),
                    prepare=lambda i: add(i, "MERCREDI", [wednesdays[i % len(wednesdays)]],
                                          args.checkouts))
    stop_billing()
    with db.sessions() as session:
        total = session.scalar(select(text("count(*)")).select_from(Booking))
    db.dispose()

    def ratios(measure: dict) -> dict:
        return {"p50_vs_select_1": round(measure["p50_ms"] / select_1["p50_ms"], 1),
                "p95_vs_select_1": round(measure["p95_ms"] / select_1["p95_ms"], 1),
                "p50_vs_healthz": round(measure["p50_ms"] / healthz["p50_ms"], 1),
                "p95_vs_healthz": round(measure["p95_ms"] / healthz["p95_ms"], 1)}

    print(json.dumps({
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "database": db.engine.dialect.name,
        "data": {"bookings_total": total, "bookings_of_the_child": child_bookings,
                 "families": args.families + 1 + len(shoppers)},
        "baseline": {"select_1": select_1, "healthz": healthz},
        "calendar_month": {**calendar_month, **ratios(calendar_month)},
        "checkout_monthly_week": {**monthly, **ratios(monthly)},
        "checkout_prepaid_with_billing_call": {**prepaid, **ratios(prepaid)},
    }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
