"""The monthly invoicing run for many households, against a plain bulk insert of its rows.

    python -m bench.billing_bench [--households 10000] [--database-url postgresql://...]

Fills billing's read models as the events would (households, one to three children each,
a month of canteen bookings, attendance with a few absences), then times, in one run:
1. the draft (``POST .../invoicing-runs``: reading the month, tariffs, quotients, computing);
2. the finalisation (numbering, invoices, lines, one ``billing.invoice.issued`` per invoice);
3. the baseline: a plain bulk insert (executemany) of the same invoice, line and outbox rows.
It prints the times and the ratio (run / baseline) as JSON. SQLite in a temporary file unless
``--database-url`` names a PostgreSQL database (which it fills: use a scratch one).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select

from services.billing.models import Attendance, BookedDay, Invoice, InvoiceLine, Tariff
from services.billing.operations import Billing
from services.common.auth import Principal
from services.common.config import Settings
from services.common.db import Database
from services.common.households import CHILDREN, HOUSEHOLDS
from services.common.migrate import upgrade
from services.common.outbox import OUTBOX
from services.common.tenancy import COMMUNES

COMMUNE = "0b6a3c1e-5d7f-4e21-9a3b-1c2d3e4f5a01"
CANTEEN = "ac000000-0000-4000-8000-0000000000aa"
PERIOD = "2026-10"


def school_days() -> list[date]:
    day, out = date(2026, 10, 1), []
    while day.month == 10:
        if day.weekday() in (0, 1, 3, 4):
            out.append(day)
        day += timedelta(days=1)
    return out


def fill(db: Database, households: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    days = school_days()
    now = datetime.now(UTC)
    with db.transaction() as session:
        session.execute(insert(COMMUNES).values(id=COMMUNE, slug="jolieville",
                                                name="JolieVille", settings={}, version=1))
        session.add(Tariff(commune_id=COMMUNE, activity_code="REPAS", activity_id=CANTEEN,
                           label="Restauration scolaire", brackets=[
                               {"max_quotient": 600, "price": "2.10"},
                               {"max_quotient": None, "price": "4.10"}],
                           reduced_from_child=3, reduced_rate_bp=2000))
    homes, kids, bookings, marks = [], [], [], []
    for h in range(households):
        family = str(uuid.UUID(int=h + 1))
        snapshot = {"family_id": family, "family_name": f"FAMILLE{h}", "guardians": [{
            "id": str(uuid.uuid4()), "first_name": "A", "last_name": f"FAMILLE{h}",
            "email": f"f{h}@exemple.fr", "phones": [], "pays": True}], "children": [],
            "communes": [], "version": 1}
        homes.append({"family_id": family, "family_name": f"FAMILLE{h}", "snapshot": snapshot,
                      "version": 1})
        for c in range(rng.choice((1, 1, 2, 2, 3))):
            child = str(uuid.uuid4())
            kids.append({"id": child, "family_id": family, "first_name": f"E{c}",
                         "last_name": f"FAMILLE{h}", "birth_date": f"201{c}-01-01",
                         "allergies": False})
            for day in days:
                booking = str(uuid.uuid4())
                bookings.append({"booking_id": booking, "commune_id": COMMUNE,
                                 "family_id": family, "child_id": child,
                                 "activity_id": CANTEEN, "date": day,
                                 "payment_mode": "monthly", "unit_price": 410,
                                 "child_first_name": f"E{c}",
                                 "activity_name": "Restauration scolaire",
                                 "status": "confirmed", "updated_at": now})
                status = rng.choices(("present", "absent", "excused"), (90, 5, 5))[0]
                marks.append({"child_id": child, "activity_id": CANTEEN, "date": day,
                              "commune_id": COMMUNE, "family_id": family,
                              "booking_id": booking, "status": status, "recorded_at": now})
    with db.engine.begin() as conn:
        conn.execute(insert(HOUSEHOLDS), homes)
        conn.execute(insert(CHILDREN), kids)
        # Money is stored as cents: the raw tables take the integers directly.
        conn.execute(insert(BookedDay.__table__), bookings)
        conn.execute(insert(Attendance.__table__), marks)
    return len(bookings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="billing-bench-"))
    url = args.database_url or f"sqlite:///{folder}/billing.db"
    upgrade("services.billing", url)
    db = Database(url)
    settings = Settings(service="billing", env="dev", data_dir=folder, database_url=url,
                        log_level="WARNING", log_format="console")
    ops = Billing.of(db, settings)
    agent = Principal(account_id="bench", platform_admin=True)
    rows = fill(db, args.households)

    start = time.perf_counter()
    draft, _ = ops.start_run(agent, "jolieville", PERIOD)
    drafted = time.perf_counter() - start
    start = time.perf_counter()
    ops.finalise_run(agent, "jolieville", draft["id"])
    finalised = time.perf_counter() - start

    with db.engine.begin() as conn:
        invoices = [dict(r._mapping) for r in conn.execute(select(Invoice.__table__))]
        lines = [dict(r._mapping) for r in conn.execute(select(InvoiceLine.__table__))]
        events = [dict(r._mapping) for r in conn.execute(select(OUTBOX))]
        conn.execute(delete(InvoiceLine.__table__))
        conn.execute(delete(Invoice.__table__))
        conn.execute(delete(OUTBOX))
    for event in events:
        event.pop("id")
    start = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(insert(Invoice.__table__), invoices)
        conn.execute(insert(InvoiceLine.__table__), lines)
        conn.execute(insert(OUTBOX), events)
    baseline = time.perf_counter() - start
    db.dispose()
    run = drafted + finalised
    print(json.dumps({
        "households": args.households, "booked_days": rows, "invoices": len(invoices),
        "lines": len(lines), "database": db.engine.dialect.name,
        "draft_s": round(drafted, 2), "finalise_s": round(finalised, 2),
        "run_s": round(run, 2), "bulk_insert_s": round(baseline, 2),
        "ratio_run_to_bulk_insert": round(run / baseline, 1),
        "python": platform.python_version(), "machine": platform.machine(),
    }, indent=2))


if __name__ == "__main__":
    main()
