"""Scenario 5, the monthly invoicing run: a commune's month drafted and finalised, against a
plain bulk insert of the same rows, and its memory as the number of households grows.

    python -m bench invoicing [--quick]

Each measure gets its own scratch PostgreSQL database (created, migrated with billing's own
Alembic migrations, dropped at the end even on failure), filled by ``COPY`` as billing's read
models would be by the events: households with one to three children, the canteen booked on
every school day of October 2026, attendance marked for each booked day (90 % present, 5 %
absent, 5 % excused), a quotient-familial tariff with a reduced rate from the third child.

Measured, through ``Billing`` (the methods the API's ``POST …/invoicing-runs`` and
``…/finalise`` call, without the JSON answer of the whole draft: ``detail=False``):
1. the draft (``start_run``) and the finalisation (``finalise_run``), 10,000 households;
2. the baseline, in the same run: the same invoice, line and outbox rows inserted again in one
   transaction by a plain multi-row insert (``executemany``): the floor of writing them;
3. the memory of draft + finalisation at 2,500, 5,000 and 10,000 households (each on its own
   database): the peak of Python allocations (``tracemalloc``) and of the resident set.
Checked after the run (any failure is a violation): every invoice's total is the sum of its
lines; one invoice per household with bookings; numbers 1..n without gap or duplicate, each
matching its reference; one ``billing.invoice.issued`` in the outbox per invoice; the totals
equal those of the same month computed at once, in memory (the former, unstreamed way).
"""

from __future__ import annotations

import json
import logging
import os
import random
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
from sqlalchemy import delete, insert, select, text

from bench import report
from bench.scratch import copy_rows, scratch_database

COMMUNE = "0b6a3c1e-5d7f-4e21-9a3b-1c2d3e4f5a01"
SLUG = "jolieville"
CANTEEN = "ac000000-0000-4000-8000-0000000000aa"
PERIOD = "2026-10"
MEMORY_SIZES = (2_500, 5_000, 10_000)


def school_days() -> list[date]:
    day, out = date(2026, 10, 1), []
    while day.month == 10:
        if day.weekday() in (0, 1, 3, 4):
            out.append(day)
        day += timedelta(days=1)
    return out


def fill(raw_url: str, households: int, seed: int = 7) -> int:
    """The read models of ``households`` households (COPY); returns the booked days."""
    rng = random.Random(seed)
    days = school_days()
    now = datetime.now(UTC).isoformat()
    homes, kids, members, quotients, bookings, marks = [], [], [], [], [], []
    for h in range(households):
        family = str(uuid.UUID(int=h + 1))
        name = f"FAMILLE{h:06d}"
        snapshot = {"family_id": family, "family_name": name, "guardians": [{
            "id": str(uuid.UUID(int=(1 << 100) + h)), "first_name": "A", "last_name": name,
            "email": f"f{h}@exemple.fr", "phones": [], "pays": True}], "children": [],
            "communes": [], "version": 1}
        homes.append((family, name, json.dumps(snapshot), 1, now))
        members.append((family, COMMUNE, f"J{h:06d}"))
        if h % 3:
            quotients.append((COMMUNE, family, rng.choice((450, 800, 1200)), now))
        for c in range(rng.choice((1, 1, 2, 2, 3))):
            child = str(uuid.UUID(int=(1 << 64) + h * 8 + c))
            kids.append((child, family, f"E{c}", name, f"201{c}-01-01", None, None, "f"))
            for day in days:
                booking = str(uuid.UUID(int=(1 << 80) + len(bookings)))
                bookings.append(f"{booking}\t{COMMUNE}\t{family}\t{child}\t{CANTEEN}\t{day}\t"
                                f"monthly\t410\tE{c}\tRestauration scolaire\t\\N\tconfirmed\t"
                                f"{now}\n")
                status = rng.choices(("present", "absent", "excused"), (90, 5, 5))[0]
                marks.append(f"{child}\t{CANTEEN}\t{day}\t{COMMUNE}\t{family}\t{booking}\t"
                             f"{status}\t{now}\n")
    with psycopg.connect(raw_url) as conn:
        conn.execute("INSERT INTO communes (id, slug, name, settings, version, updated_at) "
                     "VALUES (%s, %s, 'JolieVille', '{}', 1, now())", (COMMUNE, SLUG))
        conn.execute(
            "INSERT INTO tariffs (id, commune_id, activity_code, activity_id, label, "
            "unit_price, brackets, reduced_from_child, reduced_rate_bp, unbooked_surcharge, "
            "updated_at) VALUES (%s, %s, 'REPAS', %s, 'Restauration scolaire', NULL, %s, 3, "
            "2000, 100, now())",
            (str(uuid.uuid4()), COMMUNE, CANTEEN, json.dumps([
                {"max_quotient": 600, "price": "2.10"}, {"max_quotient": 1000, "price": "3.20"},
                {"max_quotient": None, "price": "4.10"}])))
        copy_rows(conn, "households", ["family_id", "family_name", "snapshot", "version",
                                       "updated_at"], homes)
        copy_rows(conn, "household_communes", ["family_id", "commune_id", "family_code"],
                  members)
        copy_rows(conn, "household_quotients", ["commune_id", "family_id", "quotient",
                                                "updated_at"], quotients)
        copy_rows(conn, "children", ["id", "family_id", "first_name", "last_name",
                                     "birth_date", "school", "class_name", "allergies"], kids)
        copy_rows(conn, "booked_days", [
            "booking_id", "commune_id", "family_id", "child_id", "activity_id", "date",
            "payment_mode", "unit_price", "child_first_name", "activity_name", "basket_id",
            "status", "updated_at"], bookings)
        copy_rows(conn, "attendance", ["child_id", "activity_id", "date", "commune_id",
                                       "family_id", "booking_id", "status", "recorded_at"],
                  marks)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    return len(bookings)


class Billing:
    """billing's use cases on a scratch database."""

    def __init__(self, url: str, workdir: Path):
        from services.billing.operations import Billing as Operations
        from services.common.auth import Principal
        from services.common.config import Settings
        from services.common.db import Database

        self.db = Database(url)
        settings = Settings(service="billing", env="dev", data_dir=workdir, database_url=url,
                            log_level="WARNING", log_format="console")
        self.ops = Operations.of(self.db, settings)
        self.agent = Principal(account_id="bench", platform_admin=True)

    def draft(self) -> dict:
        return self.ops.start_run(self.agent, SLUG, PERIOD, detail=False)[0]

    def finalise(self, run_id: str) -> dict:
        return self.ops.finalise_run(self.agent, SLUG, run_id, detail=False)


def peak_rss_reset() -> bool:
    """Reset the kernel's peak resident set of this process (VmHWM), where allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def vm(field: str) -> float:
    """VmRSS / VmHWM of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_of_run(households: int, workdir: Path) -> dict[str, float]:
    from services.common.migrate import upgrade

    with scratch_database("bench_invoicing_mem") as (url, raw_url):
        upgrade("services.billing", url)
        fill(raw_url, households)
        billing = Billing(url, workdir)
        try:
            billing.draft()  # warm: imports, caches, pool (then asked again, measured)
            rss_before = vm("VmRSS")
            reset = peak_rss_reset()
            tracemalloc.start()
            run = billing.draft()
            billing.finalise(run["id"])
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return {"python_peak_mib": peak / 2**20,
                    "rss_peak_growth_mib": (vm("VmHWM") - rss_before) if reset
                    else float("nan"),
                    "invoices": run["invoice_count"]}
        finally:
            billing.db.dispose()


def expected_totals(billing: Billing) -> dict[str, Decimal]:
    """The month computed at once, in memory, as the run did before it was streamed."""
    from services.billing import domain, runs
    from services.billing.operations import settings_of
    from services.common.households import CHILDREN, HOUSEHOLDS

    first, last = domain.period_bounds(PERIOD)
    with billing.db.sessions() as session:
        bookings, marks = [], []
        for _, chunk_bookings, chunk_marks in runs.household_chunks(
                session, COMMUNE, first, last, size=10**9):
            bookings, marks = chunk_bookings, chunk_marks
        names = dict(session.execute(
            select(HOUSEHOLDS.c.family_id, HOUSEHOLDS.c.family_name)).all())
        order, child_names = {}, {}
        for child_id, born, first_name in session.execute(
                select(CHILDREN.c.id, CHILDREN.c.birth_date, CHILDREN.c.first_name)):
            order[child_id], child_names[child_id] = (born, child_id), first_name
        quotients = dict(session.execute(text(
            "SELECT family_id, quotient FROM household_quotients")).all())
        found = settings_of(session, COMMUNE)
        result = domain.compute_run(
            bookings, marks, tariffs=runs._tariffs(session, COMMUNE), quotients=quotients,
            birth_order=order, names=names, child_names=child_names,
            settings=domain.RunSettings(found.bill_unjustified_absence,
                                        found.bill_unrecorded_bookings))
    return {i.family_id: i.total for i in result.invoices}


def check(billing: Billing, run: dict, households_with_bookings: int,
          expected: dict[str, Decimal]) -> list[str]:
    from services.billing import domain

    violations = []
    with billing.db.engine.connect() as conn:
        bad_totals = conn.execute(text(
            "SELECT i.number FROM invoices i LEFT JOIN invoice_lines l ON l.invoice_id = i.id "
            "WHERE i.run_id = :run GROUP BY i.id, i.number, i.total "
            "HAVING i.total <> coalesce(sum(l.amount), -1)"), {"run": run["id"]}).all()
        if bad_totals:
            violations.append(f"{len(bad_totals)} factures dont le total n'est pas la somme "
                              f"des lignes (ex. {bad_totals[0][0]})")
        invoices = conn.execute(text(
            "SELECT id, family_id, number, sequence, year, total FROM invoices "
            "WHERE run_id = :run"), {"run": run["id"]}).all()
        per_family = Counter(r.family_id for r in invoices)
        if len(per_family) != households_with_bookings or max(per_family.values(),
                                                              default=1) != 1:
            violations.append(f"{len(invoices)} factures pour {len(per_family)} foyers ; "
                              f"{households_with_bookings} foyers ont des réservations")
        sequences = sorted(r.sequence for r in invoices)
        if sequences != list(range(1, len(invoices) + 1)):
            violations.append("numérotation avec trou ou doublon")
        code = domain.commune_code(SLUG)
        if any(r.number != domain.invoice_reference(r.year, code, r.sequence)
               for r in invoices) or len({r.number for r in invoices}) != len(invoices):
            violations.append("références de facture incohérentes ou en double")
        issued = Counter(
            (e if isinstance(e, dict) else json.loads(e))["data"]["invoice_id"]
            for e in conn.execute(text("SELECT envelope FROM outbox WHERE "
                                       "type = 'billing.invoice.issued'")).scalars())
        if set(issued) != {r.id for r in invoices} or any(n != 1 for n in issued.values()):
            violations.append(f"{sum(issued.values())} événements billing.invoice.issued pour "
                              f"{len(invoices)} factures")
        if run["invoice_count"] != len(invoices):
            violations.append(f"la campagne annonce {run['invoice_count']} factures, "
                              f"{len(invoices)} émises")
        amounts = {r.family_id: Decimal(r.total) / 100 for r in invoices}
        if amounts != expected:
            differing = [f for f in set(amounts) | set(expected)
                         if amounts.get(f) != expected.get(f)]
            violations.append(f"{len(differing)} foyers dont le montant diffère du calcul en "
                              "mémoire de tout le mois")
        if Decimal(run["total"]) != sum(amounts.values(), Decimal(0)):
            violations.append("le total de la campagne n'est pas la somme des factures")
    return violations


def bulk_insert_baseline(billing: Billing) -> tuple[float, dict[str, int]]:
    """The same invoices, lines and outbox rows, deleted then inserted again in one
    transaction by a plain executemany: what writing them costs at least."""
    from services.billing.models import Invoice, InvoiceLine
    from services.common.outbox import OUTBOX

    with billing.db.engine.begin() as conn:
        invoices = [dict(r._mapping) for r in conn.execute(select(Invoice.__table__))]
        lines = [dict(r._mapping) for r in conn.execute(select(InvoiceLine.__table__))]
        events = [dict(r._mapping) for r in conn.execute(select(OUTBOX))]
        conn.execute(delete(InvoiceLine.__table__))
        conn.execute(delete(Invoice.__table__))
        conn.execute(delete(OUTBOX))
    for event in events:
        event.pop("id")
    start, cpu = time.perf_counter(), time.process_time()
    with billing.db.engine.begin() as conn:
        conn.execute(insert(Invoice.__table__), invoices)
        conn.execute(insert(InvoiceLine.__table__), lines)
        conn.execute(insert(OUTBOX), events)
    return time.perf_counter() - start, {"invoices": len(invoices), "lines": len(lines),
                                         "events": len(events),
                                         "cpu_s": time.process_time() - cpu}


def run(quick: bool) -> report.Result:
    from services.common.migrate import upgrade

    households = 300 if quick else 10_000
    result = report.Result(
        scenario="invoicing",
        description=f"monthly invoicing run of {households:,} households (draft + "
                    "finalisation) against a bulk insert of its rows; memory as households "
                    "grow",
        params={"households": households, "period": PERIOD,
                "memory_sizes": [] if quick else list(MEMORY_SIZES)})
    workdir = Path(tempfile.mkdtemp(prefix="bench-invoicing-"))
    logging.disable(logging.INFO)
    with scratch_database("bench_invoicing") as (url, raw_url):
        upgrade("services.billing", url)
        clock = time.perf_counter()
        booked = fill(raw_url, households)
        result.figures["fill (COPY) s"] = time.perf_counter() - clock
        billing = Billing(url, workdir)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            draft = billing.draft()
            drafted = time.perf_counter() - start
            start = time.perf_counter()
            done = billing.finalise(draft["id"])
            finalised = time.perf_counter() - start
            run_cpu = time.process_time() - cpu
            report.log(f"invoicing: draft {drafted:.2f} s, finalisation {finalised:.2f} s")
            with billing.db.engine.connect() as conn:
                with_bookings = conn.execute(text(
                    "SELECT count(DISTINCT family_id) FROM booked_days WHERE "
                    "status = 'confirmed'")).scalar()
            result.violations += check(billing, done, with_bookings, expected_totals(billing))
            baseline, rows = bulk_insert_baseline(billing)
        finally:
            billing.db.dispose()
    total = drafted + finalised
    result.figures.update({"booked days": booked, "invoices": rows["invoices"],
                           "invoice lines": rows["lines"], "draft s": drafted,
                           "finalisation s": finalised, "draft + finalisation s": total})
    result.figures["draft + finalisation, CPU of this process s"] = run_cpu
    result.baselines["bulk insert of the invoices, lines and outbox rows s"] = baseline
    result.baselines["bulk insert, CPU of this process s"] = rows["cpu_s"]
    ratio = total / baseline
    result.ratios["(draft + finalisation) / bulk insert"] = ratio
    result.ratios["CPU of this process: run / bulk insert"] = run_cpu / rows["cpu_s"]
    met = None if quick else total < 60
    result.goals.append(report.Goal("draft + finalisation, 10,000 households", "< 60 s",
                                    f"{total:.1f} s", met))
    result.goals.append(report.Goal("ratio to a bulk insert of the same rows", "≤ 5x",
                                    f"{ratio:.1f}x", None if quick else ratio <= 5))
    if not quick:
        table = ["| households | invoices | Python peak (tracemalloc) MiB | "
                 "resident set peak growth MiB |", "|---|---|---|---|"]
        measured = {}
        for size in MEMORY_SIZES:
            report.log(f"invoicing: memory at {size:,} households")
            measured[size] = memory_of_run(size, workdir)
            m = measured[size]
            table.append(f"| {size:,} | {m['invoices']:,} | {m['python_peak_mib']:.1f} | "
                         f"{m['rss_peak_growth_mib']:.1f} |")
            result.figures[f"memory at {size:,}: Python peak MiB"] = m["python_peak_mib"]
            result.figures[f"memory at {size:,}: RSS peak growth MiB"] = \
                m["rss_peak_growth_mib"]
        result.tables.append("Memory of draft + finalisation (each size on its own "
                             "database):\n\n" + "\n".join(table))
        small, large = measured[MEMORY_SIZES[0]], measured[MEMORY_SIZES[-1]]
        growth = large["python_peak_mib"] / small["python_peak_mib"]
        result.ratios["Python peak at 10,000 / at 2,500 households"] = growth
        result.goals.append(report.Goal(
            "memory flat as households grow (Python peak, 4x the households)", "< 1.5x",
            f"{growth:.2f}x", growth < 1.5))
    result.notes.append(
        "Through the billing use cases the API calls (Billing.start_run / finalise_run, "
        "detail=False: the POST answers of the API still carry the whole draft for review).")
    result.notes.append(f"Machine load before the run: {os.getloadavg()}.")
    return result
