"""Scenario 4, the calendar at city scale: a child's month and an agent's day list of a site,
with a large city's year of bookings in PostgreSQL.

    python -m bench calendar [--quick]

A scratch database (created, then dropped even on failure) gets the reservations schema from
its own Alembic migrations, then a city bulk-loaded with ``COPY`` (psycopg 3
``cursor.copy``): one commune, its school year 2026-2027 (zone C), one school per ~830
households (canteen, morning and evening care, study) and one leisure centre per ten schools
(Wednesdays, 60 places), households of one to three children (150,000 children for 100,000
households), the children's enrolments, and their bookings: each child has a weekly pattern
(canteen for half of them, care, study, Wednesdays), booked on every open day of the year
(the commune's real calendar: holidays and public holidays closed), 6 % cancelled, attendance
marked up to the clock's day (the 11th of January 2027). Occupancy rows are recounted from the
bookings. The bookings of one household are loaded together, as baskets write them.

While loading, the secondary indexes of ``bookings`` are dropped and rebuilt afterwards (the
usual bulk-load technique: a sorted build is much faster than ten million random insertions);
the schema at the end is exactly the migrated one. ``VACUUM ANALYZE`` follows, as autovacuum
would do on a live table.

Measured through the service's HTTP API, in-process (Flask test client: token verification,
schemas, JSON, the same ``Operations`` methods the API runs), each request with a real token
minted beforehand:
- ``GET …/children/{id}/calendar?from=…&to=…``: a random child's random month, as its parent;
- ``GET …/attendance?site=…&date=…``: a random site's random open day, as an agent;
- baselines in the same run: ``SELECT 1`` on the same engine, ``GET /healthz``.
Measured first at 10 % of the households, then again after loading the other 90 %: the growth
table. Every statement each endpoint ran on ``bookings`` is shown with ``EXPLAIN (ANALYZE,
BUFFERS)``; a sequential scan of a table of more than 10,000 rows is a violation, as is a
non-200 answer or an answer that differs from a naive SQL query of the same bookings.
"""

from __future__ import annotations

import calendar as monthly
import json
import logging
import random
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import event, text

from bench import report
from bench.scratch import copy_rows, scratch_database

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2027, 1, 11, 10, 0, tzinfo=PARIS)  # mid-year: attendance up to here
SLUG = "grandeville"
NS = uuid.UUID("4d1f7a52-33b0-4c8e-9e1a-5a0f3c2b7e61")
YEAR = ("2026-2027", date(2026, 9, 1), date(2027, 8, 31))
LAST_DAY = date(2027, 7, 3)
HOUSEHOLDS_PER_SCHOOL = 830
SCHOOLS_PER_CENTRE = 10
SCHOOL_DAYS = [1, 2, 4, 5]
# activity code -> (service key, label, payment mode, cents, share of children, share of days)
SCHOOL_ACTIVITIES = {
    "REPAS": ("restauration", "Repas (restauration scolaire)", "monthly", 410, 0.47, 0.55),
    "MATIN": ("periscolaire", "Accueil périscolaire du matin", "prepaid", 250, 0.12, 0.60),
    "SOIR": ("periscolaire", "Accueil périscolaire du soir", "prepaid", 320, 0.15, 0.55),
    "ETUDE": ("etude", "Étude surveillée", "monthly", 200, 0.06, 0.50),
}
CENTRE_ACTIVITY = ("loisirs", "Centre de loisirs du mercredi", "prepaid", 1400, 0.10, 0.70)
SERVICES = {"restauration": "Restauration scolaire", "periscolaire": "Accueil périscolaire",
            "etude": "Étude surveillée", "loisirs": "Centre de loisirs"}
FIRST_NAMES = ["Léa", "Hugo", "Emma", "Louis", "Jade", "Gabriel", "Louise", "Raphaël", "Alice",
               "Arthur", "Chloé", "Jules", "Inès", "Adam", "Lina", "Maël", "Rose", "Paul"]
CLASSES = ["PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"]
BIG_TABLE = 10_000  # rows: a sequential scan of a larger table is a violation


def ident(kind: str, key: object) -> str:
    return str(uuid.uuid5(NS, f"{kind}:{key}"))


COMMUNE = ident("commune", SLUG)
SCHOOL_YEAR = ident("school-year", YEAR[0])


@dataclass
class City:
    """What has been loaded so far (ids the measures pick from)."""

    households: int = 0
    all_children: int = 0
    # (child, family) of the children booked for something: those the measures pick from.
    children: list[tuple[str, str]] = field(default_factory=list)
    sites: list[tuple[str, str, list[date]]] = field(default_factory=list)  # (site, kind, days)
    bookings: int = 0
    next_booking: int = 0
    load_seconds: dict[str, float] = field(default_factory=dict)


# --- the database ------------------------------------------------------------------------------

def configure_city(conn: psycopg.Connection, city: City, schools: int) -> None:
    """The commune, its calendar, services, and the sites (with their activities) missing."""
    known = {row[0] for row in conn.execute("SELECT id FROM sites")}
    cur = conn.cursor()
    if not known:
        cur.execute("INSERT INTO communes (id, slug, name, settings, version, updated_at) "
                    "VALUES (%s, %s, %s, %s, 1, now())",
                    (COMMUNE, SLUG, "Grandeville",
                     json.dumps({"timezone": "Europe/Paris", "modules": ["reservations"]})))
        cur.execute("INSERT INTO commune_calendars (commune_id, zone, updated_at) "
                    "VALUES (%s, 'C', now())", (COMMUNE,))
        cur.execute("INSERT INTO school_years (id, commune_id, label, starts_on, ends_on) "
                    "VALUES (%s, %s, %s, %s, %s)", (SCHOOL_YEAR, COMMUNE, *YEAR))
        for key, name in SERVICES.items():
            cur.execute("INSERT INTO services (id, commune_id, name, kind, enrolment_mode, "
                        "created_at) VALUES (%s, %s, %s, %s, 'automatic', now())",
                        (ident("service", key), COMMUNE, name, key))
    deadline = json.dumps({"kind": "days_before", "days": 1, "time": "09:00"})
    centres = -(-schools // SCHOOLS_PER_CENTRE)
    wanted = [("school", n) for n in range(schools)] + [("centre", n) for n in range(centres)]
    for kind, n in wanted:
        site = ident(kind, n)
        if site in known:
            continue
        label = f"École {n + 1}" if kind == "school" else f"Centre de loisirs {n + 1}"
        cur.execute("INSERT INTO sites (id, commune_id, name, address, created_at) "
                    "VALUES (%s, %s, %s, NULL, now())", (site, COMMUNE, label))
        specs = SCHOOL_ACTIVITIES.items() if kind == "school" else [("MERCREDI",
                                                                      CENTRE_ACTIVITY)]
        for code, (service, title, mode, cents, _, _) in specs:
            cur.execute(
                "INSERT INTO activities (id, commune_id, service_id, site_id, code, label, "
                "payment_mode, unit_price_cents, capacity, waiting_list_size, "
                "waiting_list_mode, offer_hours, booking_deadline, cancellation_deadline, "
                "late_cancellation, weekdays, periods, school_holidays, public_holidays, "
                "active, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s, 'automatic', 24, %s, %s, 'refuse', %s, '[]', 'closed', 'closed', true, "
                "now(), now())",
                (ident("activity", f"{kind}:{n}:{code}"), COMMUNE, ident("service", service),
                 site, code, title, mode, cents, 60 if kind == "centre" else None,
                 5 if kind == "centre" else 0, deadline, deadline,
                 json.dumps([3] if kind == "centre" else SCHOOL_DAYS)))
    conn.commit()
    city.sites = [(ident(kind, n), kind, []) for kind, n in wanted]


def open_days(db_url: str) -> dict[str, list[date]]:
    """Open days of a school and of a centre, from the service's own calendar rules."""
    from services.common.db import Database
    from services.reservations import domain, store

    db = Database(db_url)
    try:
        with db.sessions() as session:
            calendar = store.load_calendar(session, COMMUNE)
            out = {}
            for kind, code in (("school", "REPAS"), ("centre", "MERCREDI")):
                row = session.get(store.Activity, ident("activity", f"{kind}:0:{code}"))
                activity = store.to_activity(row)
                out[kind] = [d for d in domain.days_between(YEAR[1], LAST_DAY)
                             if calendar.closed_reason(d, activity.place,
                                                       activity.opening) is None]
            return out
    finally:
        db.dispose()


def household_rows(rng: random.Random, start: int, stop: int, schools: int,
                   days: dict[str, list[date]], city: City, out: dict[str, list]):
    """Households ``start``..``stop``: fills ``out`` with the small tables' rows and yields
    the bookings (a generator: ten million rows never sit in memory)."""
    stamp = datetime(2026, 7, 1, 8, tzinfo=UTC).isoformat()
    today = NOW.date()
    recorded = NOW.astimezone(UTC).isoformat()
    activity_ids = {(kind, n, code): ident("activity", f"{kind}:{n}:{code}")
                    for kind, count, codes in (("school", schools, SCHOOL_ACTIVITIES),
                                               ("centre", -(-schools // SCHOOLS_PER_CENTRE),
                                                ["MERCREDI"]))
                    for n in range(count) for code in codes}
    weeks_school = _by_weekday(days["school"])
    weeks_centre = days["centre"]
    for h in range(start, stop):
        family = ident("family", h)
        name = f"FAMILLE{h:06d}"
        school = h // HOUSEHOLDS_PER_SCHOOL % schools if h < schools * HOUSEHOLDS_PER_SCHOOL \
            else rng.randrange(schools)
        centre = school // SCHOOLS_PER_CENTRE
        guardian = {"id": ident("guardian", h), "first_name": "Parent", "last_name": name,
                    "email": f"f{h}@grandeville.test", "phones": [], "pays": True}
        kids = rng.choices((1, 2, 3), (0.55, 0.40, 0.05))[0]
        children = []
        for c in range(kids):
            child = ident("child", f"{h}:{c}")
            first = FIRST_NAMES[(h + c) % len(FIRST_NAMES)]
            children.append({"id": child, "first_name": first, "last_name": name,
                             "birth_date": f"{2015 + c + h % 5}-0{1 + c}-1{h % 9}",
                             "school": f"École {school + 1}", "class_name": rng.choice(CLASSES),
                             "allergies": rng.random() < 0.08})
        snapshot = {"family_id": family, "family_name": name, "version": 1, "address": None,
                    "guardians": [guardian], "children": children,
                    "communes": [{"commune_id": COMMUNE, "slug": SLUG,
                                  "family_code": f"G{h:06d}"}]}
        out["households"].append((family, name, json.dumps(snapshot, ensure_ascii=False), 1,
                                  stamp))
        out["household_communes"].append((family, COMMUNE, f"G{h:06d}"))
        for kid in children:
            child, first = kid["id"], kid["first_name"]
            out["children"].append((child, family, kid["first_name"], name, kid["birth_date"],
                                    kid["school"], kid["class_name"],
                                    "t" if kid["allergies"] else "f"))
            city.all_children += 1
            services = set()
            plan = []
            for code, (service, _, mode, cents, share, days_share) in SCHOOL_ACTIVITIES.items():
                if rng.random() < share:
                    weekdays = [w for w in SCHOOL_DAYS if rng.random() < days_share] or \
                        [rng.choice(SCHOOL_DAYS)]
                    dates = [d for w in weekdays for d in weeks_school[w]]
                    plan.append((activity_ids[("school", school, code)], mode, cents, dates))
                    services.add(service)
            service, _, mode, cents, share, days_share = CENTRE_ACTIVITY
            if rng.random() < share:
                dates = [d for d in weeks_centre if rng.random() < days_share]
                plan.append((activity_ids[("centre", centre, "MERCREDI")], mode, cents, dates))
                services.add(service)
            if plan:  # the children whose parents look at a calendar
                city.children.append((child, family))
            for service in sorted(services):
                out["enrolments"].append((ident("enrolment", f"{child}:{service}"), COMMUNE,
                                          family, child, ident("service", service),
                                          SCHOOL_YEAR, "validated", stamp))
            for activity, mode, cents, dates in plan:
                for day in sorted(dates):
                    n = city.next_booking
                    city.next_booking += 1
                    cancelled = rng.random() < 0.06
                    attendance = None
                    if day < today and not cancelled:
                        roll = rng.random()
                        attendance = ("present" if roll < 0.92 else
                                      "absent" if roll < 0.96 else "excused")
                    # One line of COPY's text format (no value here needs escaping).
                    if cancelled:
                        tail = f"cancelled\t{mode}\t{cents}\tbasket\t\\N\t\\N\t\\N\t{stamp}" \
                               f"\t{stamp}\t{stamp}\tcancelled\t0\n"
                    elif attendance:
                        tail = f"confirmed\t{mode}\t{cents}\tbasket\t{attendance}\t" \
                               f"{recorded}\tbench\t{stamp}\t{stamp}\t\\N\t\\N\t0\n"
                    else:
                        tail = f"confirmed\t{mode}\t{cents}\tbasket\t\\N\t\\N\t\\N\t" \
                               f"{stamp}\t{stamp}\t\\N\t\\N\t0\n"
                    yield (f"{n:08x}-0000-4000-8000-0000000b0000\t{COMMUNE}\t{family}\t"
                           f"{child}\t{first}\t{activity}\t{day.isoformat()}\t{tail}")


def _by_weekday(days: list[date]) -> dict[int, list[date]]:
    out: dict[int, list[date]] = {w: [] for w in SCHOOL_DAYS}
    for day in days:
        out.setdefault(day.isoweekday(), []).append(day)
    return out


BOOKING_COLUMNS = ["id", "commune_id", "family_id", "child_id", "child_first_name",
                   "activity_id", "date", "status", "payment_mode", "unit_price_cents",
                   "source", "attendance", "attendance_recorded_at", "attendance_by",
                   "created_at", "confirmed_at", "ended_at", "end_reason", "refund_cents"]
SMALL_TABLES = {
    "households": ["family_id", "family_name", "snapshot", "version", "updated_at"],
    "household_communes": ["family_id", "commune_id", "family_code"],
    "children": ["id", "family_id", "first_name", "last_name", "birth_date", "school",
                 "class_name", "allergies"],
    "enrolments": ["id", "commune_id", "family_id", "child_id", "service_id",
                   "school_year_id", "status", "created_at"],
}


def load(conn: psycopg.Connection, rng: random.Random, city: City, households: int,
         schools: int, days: dict[str, list[date]]) -> None:
    """Add households ``city.households``..``households`` (and their bookings) by COPY."""
    clock = time.perf_counter()
    indexes = [row for row in conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'bookings' "
        "AND i.indexname NOT IN (SELECT conname FROM pg_constraint)")]
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET synchronous_commit = off")
    # The rows reference activities created just above; foreign-key triggers checked row by
    # row would double the load time (checked once, by an anti-join, after the load).
    conn.execute("SET session_replication_role = replica")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    small: dict[str, list] = {table: [] for table in SMALL_TABLES}
    city.bookings += copy_rows(conn, "bookings", BOOKING_COLUMNS, household_rows(
        rng, city.households, households, schools, days, city, small))
    for table, columns in SMALL_TABLES.items():
        copy_rows(conn, table, columns, small[table])
    conn.commit()
    copied = time.perf_counter()
    for _, definition in indexes:
        conn.execute(definition)
    conn.commit()
    indexed = time.perf_counter()
    conn.execute("SET session_replication_role = DEFAULT")
    orphans = conn.execute("SELECT count(*) FROM bookings b WHERE NOT EXISTS (SELECT 1 FROM "
                           "activities a WHERE a.id = b.activity_id)").fetchone()[0]
    if orphans:
        raise RuntimeError(f"{orphans} réservations sans activité")
    # The places taken, as the service keeps them (recount under lock) for its readers.
    conn.execute("DELETE FROM occupancy")
    conn.execute("INSERT INTO occupancy (activity_id, date, taken, waiting, last_rank) "
                 "SELECT activity_id, date, count(*) FILTER (WHERE status IN "
                 "('pending_payment', 'confirmed')), 0, 0 FROM bookings "
                 "GROUP BY activity_id, date")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE")
    conn.autocommit = False
    city.households = households
    city.load_seconds = {"copy_s": copied - clock, "index_s": indexed - copied,
                         "vacuum_analyze_s": time.perf_counter() - indexed}


# --- measures --------------------------------------------------------------------------------

class Capture:
    """The SQL statements (and parameters) an endpoint runs, for EXPLAIN."""

    def __init__(self, engine):
        self.engine, self.statements, self.on = engine, [], False
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        if self.on and not executemany:
            self.statements.append((statement, parameters))

    @contextmanager
    def recording(self):
        self.statements, self.on = [], True
        try:
            yield self.statements
        finally:
            self.on = False


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from plan_nodes(child)


def explain(engine, statements: list, title: str, sizes: dict[str, int]) -> tuple[str, list]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement reading ``bookings``; the violations."""
    parts = [f"**{title}**: every statement the endpoint ran on `bookings`", ""]
    violations: list[str] = []
    with engine.connect() as conn:
        for statement, parameters in statements:
            if "bookings" not in statement:
                continue
            raw = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters).scalar()
            tree = raw if isinstance(raw, list) else json.loads(raw)
            shown = "\n".join(r[0] for r in conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters))
            for node in plan_nodes(tree[0]["Plan"]):
                relation = node.get("Relation Name")
                if node["Node Type"] == "Seq Scan" and (
                        relation == "bookings" or sizes.get(relation, 0) > BIG_TABLE):
                    violations.append(f"{title}: Seq Scan on {relation}")
            sql = " ".join(statement.split())
            parts += [f"`{sql[:300]}{'…' if len(sql) > 300 else ''}`", "", "```",
                      shown, "```", ""]
    return "\n".join(parts), violations


def timed(samples: int, call) -> list[float]:
    out = []
    for index in range(samples):
        prepared = call(index)
        start = time.perf_counter()
        prepared()
        out.append((time.perf_counter() - start) * 1000)
    return out


def month_of(rng: random.Random) -> tuple[date, date]:
    year, month = rng.choice([(2026, m) for m in range(9, 13)] + [(2027, m) for m in
                                                                   range(1, 7)])
    return date(year, month, 1), date(year, month, monthly.monthrange(year, month)[1])


@dataclass
class Suite:
    """The reservations app in-process, on the scratch database."""

    client: object
    db: object
    signer: object
    capture: Capture

    def parent(self, family: str) -> dict[str, str]:
        from services.common.auth import Principal
        principal = Principal(account_id=ident("account", family), family_id=family,
                              communes={SLUG: {"id": COMMUNE, "roles": ["parent"]}})
        return {"Authorization": f"Bearer {self.signer.mint(principal, 'reservations')}"}

    def agent(self) -> dict[str, str]:
        from services.common.auth import Principal
        principal = Principal(account_id=ident("account", "agent"),
                              communes={SLUG: {"id": COMMUNE, "roles": ["agent"]}})
        return {"Authorization": f"Bearer {self.signer.mint(principal, 'reservations')}"}


def start_suite(url: str, workdir: Path) -> Suite:
    from services.common.auth import Signer, ensure_dev_keys
    from services.common.config import Settings
    from services.reservations.app import build_runtime, create_app

    settings = Settings(service="reservations", env="dev", data_dir=workdir, database_url=url,
                        amqp_url="memory://", log_level="WARNING", log_format="console")
    runtime = build_runtime(settings=settings)
    runtime.clock = lambda: NOW
    app = create_app(runtime)
    logging.disable(logging.INFO)
    return Suite(app.test_client(), runtime.db, Signer(ensure_dev_keys(workdir)[0]),
                 Capture(runtime.db.engine))


BASE = f"/api/reservations/communes/{SLUG}"


def calendar_call(suite: Suite, child: str, family: str, start: date, end: date):
    headers = suite.parent(family)
    return lambda: suite.client.get(f"{BASE}/children/{child}/calendar", headers=headers,
                                    query_string={"from": start.isoformat(),
                                                  "to": end.isoformat()})


def day_call(suite: Suite, site: str, day: date, headers: dict[str, str]):
    return lambda: suite.client.get(f"{BASE}/attendance", headers=headers,
                                    query_string={"site": site, "date": day.isoformat()})


def naive_calendar(conn, child: str, start: date, end: date) -> set[tuple]:
    return {(a, d.isoformat(), i, s) for i, a, d, s in conn.execute(text(
        "SELECT id, activity_id, date, status FROM bookings WHERE child_id = :c "
        "AND date BETWEEN :s AND :e"), {"c": child, "s": start, "e": end})}


def naive_day(conn, site: str, day: date) -> set[str]:
    return {r[0] for r in conn.execute(text(
        "SELECT b.id FROM bookings b JOIN activities a ON a.id = b.activity_id "
        "WHERE a.site_id = :site AND b.date = :d AND (b.status = 'confirmed' OR "
        "(b.status = 'cancelled' AND b.attendance IS NOT NULL))"), {"site": site, "d": day})}


def check_answers(suite: Suite, city: City, days: dict[str, list[date]], rng: random.Random,
                  samples: int) -> list[str]:
    """The API's answers equal a naive query of the same bookings, on a few samples."""
    violations = []
    with suite.db.engine.connect() as conn:
        for _ in range(samples):
            child, family = rng.choice(city.children)
            start, end = month_of(rng)
            answer = calendar_call(suite, child, family, start, end)()
            if answer.status_code != 200:
                violations.append(f"calendrier {child} : HTTP {answer.status_code}")
                continue
            shown = {(cell["activity_id"], day["date"], cell["booking_id"])
                     for day in answer.get_json()["days"] for cell in day["activities"]
                     if cell.get("booking_id")}
            expected = {(a, d, i) for a, d, i, _ in naive_calendar(conn, child, start, end)}
            if shown != expected:
                violations.append(f"calendrier {child} {start:%Y-%m} : {len(shown)} cases "
                                  f"réservées, {len(expected)} réservations en base")
            site, kind, _ = rng.choice(city.sites)
            day = rng.choice(days[kind])
            answer = day_call(suite, site, day, suite.agent())()
            if answer.status_code != 200:
                violations.append(f"pointage {site} {day} : HTTP {answer.status_code}")
                continue
            listed = [i["booking_id"] for i in answer.get_json()["items"]]
            expected_ids = naive_day(conn, site, day)
            if len(listed) != len(set(listed)) or set(listed) != expected_ids:
                violations.append(f"pointage {site} {day} : {len(listed)} lignes, "
                                  f"{len(expected_ids)} attendues")
    return violations


def measure(suite: Suite, city: City, days: dict[str, list[date]], rng: random.Random,
            samples: int) -> dict[str, list[float]]:
    from sqlalchemy import text as sql

    def select_one(_):
        def run():
            with suite.db.engine.connect() as conn:
                conn.execute(sql("SELECT 1"))
        return run

    def healthz(_):
        return lambda: suite.client.get("/api/reservations/healthz")

    bad: list[int] = []

    def checked(call):
        def run():
            answer = call()
            if answer.status_code != 200:
                bad.append(answer.status_code)
        return run

    def calendar(_):
        child, family = rng.choice(city.children)
        return checked(calendar_call(suite, child, family, *month_of(rng)))

    def day_list(_):
        site, kind, _ = rng.choice(city.sites)
        # A token per request (they live a minute), minted before the clock starts.
        return checked(day_call(suite, site, rng.choice(days[kind]), suite.agent()))

    # Warm the caches and the code paths first, as a running service would be.
    timed(max(5, samples // 10), calendar)
    timed(max(3, samples // 20), day_list)
    out = {"select_1": timed(samples, select_one), "healthz": timed(samples, healthz),
           "calendar": timed(samples, calendar), "day_list": timed(samples // 2, day_list)}
    if bad:
        out["errors"] = bad
    return out


def table_sizes(conn) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in conn.execute(text(
        "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace = 'public'::regnamespace"))}


def run(quick: bool) -> report.Result:
    from services.common.migrate import upgrade

    steps = [1_000, 2_000] if quick else [10_000, 100_000]
    samples = 30 if quick else 400
    result = report.Result(
        scenario="calendar",
        description="calendar at city scale: a child's month and a site's day list through "
                    "the reservations API (in-process Flask test client, real tokens), "
                    f"{steps[-1]:,} households in PostgreSQL",
        params={"households": steps, "samples": samples, "clock": NOW.isoformat(),
                "households_per_school": HOUSEHOLDS_PER_SCHOOL})
    rng = random.Random(2026)
    workdir = Path(tempfile.mkdtemp(prefix="bench-calendar-"))
    growth = ["| households | children | bookings | schools | load (COPY + index + vacuum) "
              "| calendar p50 / p95 ms | day list p50 / p95 ms | rows per day list | "
              "SELECT 1 p50 ms |", "|---|---|---|---|---|---|---|---|---|"]
    with scratch_database("bench_calendar") as (url, raw_url):
        report.log(f"calendar: migrating {url.rsplit('/', 1)[-1]}")
        upgrade("services.reservations", url)
        city = City()
        with psycopg.connect(raw_url) as conn:
            configure_city(conn, city, -(-steps[-1] // HOUSEHOLDS_PER_SCHOOL))
        days = open_days(url)
        suite = start_suite(url, workdir)
        try:
            for index, households in enumerate(steps):
                schools = -(-households // HOUSEHOLDS_PER_SCHOOL)
                with psycopg.connect(raw_url) as conn:
                    report.log(f"calendar: loading up to {households:,} households")
                    load(conn, rng, city, households, -(-steps[-1] // HOUSEHOLDS_PER_SCHOOL),
                         days)
                # Only the schools the households loaded so far attend: measure those.
                active = {ident("school", n) for n in range(schools)} | {
                    ident("centre", n) for n in range(-(-schools // SCHOOLS_PER_CENTRE))}
                city_now = City(households=city.households, all_children=city.all_children,
                                children=city.children,
                                sites=[s for s in city.sites if s[0] in active],
                                bookings=city.bookings)
                report.log(f"calendar: {city.bookings:,} bookings loaded "
                           f"({city.load_seconds}); measuring")
                result.violations += check_answers(suite, city_now, days, rng,
                                                   3 if quick else 10)
                measured = measure(suite, city_now, days, rng, samples)
                if measured.get("errors"):
                    result.violations.append(
                        f"{len(measured['errors'])} réponses en erreur : "
                        f"{sorted(set(measured['errors']))}")
                stats = {k: report.percentiles(v) for k, v in measured.items()
                         if k != "errors"}
                with suite.db.engine.connect() as conn:
                    rows_per_list = conn.execute(text(
                        "SELECT avg(n) FROM (SELECT count(*) n FROM bookings b JOIN activities "
                        "a ON a.id = b.activity_id JOIN sites s ON s.id = a.site_id WHERE "
                        "s.name LIKE 'École%' AND b.status = 'confirmed' AND b.date = :d "
                        "GROUP BY s.id) x"), {"d": days["school"][40]}).scalar()
                    sizes = table_sizes(conn)
                load_s = sum(city.load_seconds.values())
                growth.append(
                    f"| {households:,} | {city.all_children:,} | {city.bookings:,} | "
                    f"{schools} | {load_s:.0f} s | {stats['calendar']['p50']:.1f} / "
                    f"{stats['calendar']['p95']:.1f} | {stats['day_list']['p50']:.1f} / "
                    f"{stats['day_list']['p95']:.1f} | {float(rows_per_list or 0):.0f} | "
                    f"{stats['select_1']['p50']:.2f} |")
                last = index == len(steps) - 1
                prefix = "" if last else f"at {households:,}: "
                for name in ("calendar", "day_list", "select_1", "healthz"):
                    for point in ("p50", "p95", "p99"):
                        target = result.figures if name in ("calendar", "day_list") \
                            else result.baselines
                        target[f"{prefix}{name} {point} ms"] = stats[name][point]
                for key, value in city.load_seconds.items():
                    result.figures[f"{prefix}load {key}"] = value
                if last:
                    for name in ("calendar", "day_list"):
                        for point in ("p50", "p95"):
                            result.ratios[f"{name} {point} / SELECT 1 {point}"] = \
                                stats[name][point] / stats["select_1"][point]
                            result.ratios[f"{name} {point} / healthz {point}"] = \
                                stats[name][point] / stats["healthz"][point]
                    result.figures["bookings"] = city.bookings
                    result.figures["children"] = city.all_children
                    result.figures["children with bookings"] = len(city.children)
                    # One more of each, recorded, for EXPLAIN.
                    child, family = rng.choice(city_now.children)
                    with suite.capture.recording() as statements:
                        calendar_call(suite, child, family, date(2026, 12, 1),
                                      date(2026, 12, 31))()
                    table, found = explain(suite.db.engine, list(statements),
                                           "Month calendar of a child", sizes)
                    result.tables.append(table)
                    result.violations += found
                    site, kind, _ = city_now.sites[0]
                    with suite.capture.recording() as statements:
                        day_call(suite, site, days[kind][40], suite.agent())()
                    table, found = explain(suite.db.engine, list(statements),
                                           "Day list of a site (agent)", sizes)
                    result.tables.append(table)
                    result.violations += found
                    result.params["table_sizes"] = {k: v for k, v in sizes.items()
                                                    if v > BIG_TABLE}
                    stat = stats
            result.tables.insert(0, "\n".join(["Growth (same run, same machine):", "",
                                               *growth]))
        finally:
            suite.db.dispose()
    goal = None if quick else True
    for name, limit, label in (("calendar", 50, "month calendar of a child, p95"),
                               ("day_list", 200, "day list of a site, p95")):
        value = stat[name]["p95"]
        result.goals.append(report.Goal(label, f"< {limit} ms", f"{value:.1f} ms",
                                        None if goal is None else value < limit))
    result.goals.append(report.Goal(
        "indexes used (no Seq Scan on bookings or any table > 10,000 rows)", "none",
        str(sum("Seq Scan" in v for v in result.violations)),
        not any("Seq Scan" in v for v in result.violations)))
    result.notes.append(
        "Measured through the HTTP API in-process (Flask test client): token verification, "
        "schemas, JSON serialisation and the service's Operations methods, without a network "
        "hop or gunicorn; tokens minted before each timed request.")
    result.notes.append(
        f"The {steps[0]:,}-household step is the same city with fewer households (schools "
        f"keep ~{HOUSEHOLDS_PER_SCHOOL} households each), so a day list has about the same "
        "number of rows at both steps: the growth shows the effect of the table's size.")
    return result
