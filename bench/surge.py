"""Scenario 1, the opening-day surge: households with open sessions validate a basket at once.

Data, through the services' own paths (nothing a service would not have known by itself):
- households are created by accounts' own use case (``Operations.create_family``, as an agent
  registering a family), so accounts' outbox carries ``accounts.family.updated`` /
  ``membership.created`` / ``family.invited`` and its worker relays them: reservations and
  billing learn the households from their read models, notifications sends the invitations;
- the accounts are then activated in accounts' database (one password hash for all: argon2
  2,500 times would only measure argon2, which bench/login_throughput.py does);
- each parent's session is opened in the gateway's own session store, with the principal
  accounts computes for that account (``principal_claims``), exactly what ``POST /auth/login``
  stores; the token is then used as a bearer, as the API clients do. A few real logins through
  the gateway check that path too;
- the children's enrolments (canteen, leisure centre) are written in reservations' database,
  as an agent's validation would (no event comes of it);
- the leisure-centre Wednesday gets a capacity far below the number of households.

Load, through the gateway, with an asyncio client (bench/load.py):
1. the wave: every household arrives at a random moment of a window (a minute in the full
   run), adds a week of canteen for each child and the Wednesday for the first child, and
   validates its basket; when the Wednesday is full (its waiting list too), the answer is 409
   and the family removes that line and validates again, as the page asks it to;
2. the burst: other households all at the same moment, on the following week: the ceiling of
   basket validation, next to the ceiling of a trivial call (``/api/reservations/healthz``)
   through the same gateway at the same concurrency (the baseline);
3. every basket that asked for a payment is paid in the payment simulator.

Then, once the bus has drained: zero 5xx and no transport error; what each family was told
equals what reservations holds (no booking lost, none duplicated); the Wednesday's places
exactly min(capacity, demand) and its waiting list exactly what was promised; every confirmed
booking once in billing's booked days, and every ``reservations.booking.confirmed`` event once
in notifications' messages.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import requests
from sqlalchemy import func, select, update

from bench import load, stack
from bench.report import Goal, Result, log
from services.common.auth import Principal

SLUG = "jolieville"
PASSWORD = "portail-bench-2026"


@dataclass
class Params:
    households: int  # the wave
    window: float  # seconds over which the wave arrives
    burst: int  # households validating at the same moment
    capacity: int  # places on the Wednesday
    waiting_list: int
    drain_timeout: float


FULL = Params(households=2500, window=60.0, burst=300, capacity=250, waiting_list=5,
              drain_timeout=240.0)
# Gentle enough that even a slow CI machine stays below the gateway's per-upstream limit of
# calls in flight (gateway/upstreams.py answers 503 beyond it): quick checks correctness.
QUICK = Params(households=30, window=6.0, burst=8, capacity=5, waiting_list=2,
               drain_timeout=60.0)


@dataclass
class Household:
    index: int
    email: str
    family_id: str = ""
    account_id: str = ""
    children: list[str] = field(default_factory=list)
    token: str = ""
    # What the API told this family at its last checkout.
    outcome: str = ""  # confirmed | payment_required | error
    told: dict[str, str] = field(default_factory=dict)  # booking id -> status
    waiting: list[str] = field(default_factory=list)
    full: bool = False  # the Wednesday was refused (full with its waiting list)
    payment_url: str | None = None
    paid: bool = False  # the simulator took the payment (303)
    has_place: bool = False  # told it has the Wednesday


@dataclass
class Plan:
    canteen: str  # activity ids
    wednesday: str
    weeks: list[tuple[list[date], date]]  # (canteen days, Wednesday) per phase


# --- data --------------------------------------------------------------------------------------

_weeks_used = 0  # a second surge on the same suite (the footprint's) books later weeks


def surges_run() -> bool:
    """Whether a surge already ran in this process (the footprint measures after it)."""
    return _weeks_used > 0


def _open_weeks(topology, count: int) -> Plan:
    """The first ``count`` weeks, two weeks ahead at least (every deadline still open),
    where the canteen's four days and the centre's Wednesday are all open."""
    from services.reservations import store
    from services.reservations.models import Activity
    from services.reservations.seed import demo_id

    db = stack.database(topology, "reservations")
    commune_id = demo_id("commune", SLUG)
    with db.sessions() as session:
        rows = {a.code: a for a in session.scalars(
            select(Activity).where(Activity.commune_id == commune_id))}
        calendar = store.load_calendar(session, commune_id)
        canteen, centre = store.to_activity(rows["REPAS"]), store.to_activity(rows["MERCREDI"])
    db.engine.dispose()
    monday = date.today() + timedelta(days=14 - date.today().weekday())
    weeks: list[tuple[list[date], date]] = []
    global _weeks_used
    skip = _weeks_used
    _weeks_used += count
    while len(weeks) < count:
        days = [monday + timedelta(days=d) for d in (0, 1, 3, 4)]
        wednesday = monday + timedelta(days=2)
        if (all(calendar.closed_reason(d, canteen.place, canteen.opening) is None for d in days)
                and calendar.closed_reason(wednesday, centre.place, centre.opening) is None):
            if skip:
                skip -= 1
            else:
                weeks.append((days, wednesday))
        monday += timedelta(days=7)
        if monday > date.today() + timedelta(days=300):
            raise RuntimeError("aucune semaine ouverte trouvée pour le scénario")
    return Plan(canteen=rows["REPAS"].id, wednesday=rows["MERCREDI"].id, weeks=weeks)


def create_households(topology, count: int, run: str, start: int = 0) -> list[Household]:
    """``count`` households through accounts' own use case, activated, with open sessions."""
    from gateway.accounts_client import principal_from_claims
    from gateway.sessions import SessionStore
    from services.accounts.domain import hash_password
    from services.accounts.models import Account, Child
    from services.accounts.operations import Operations, principal_claims

    accounts_db = stack.database(topology, "accounts")
    gateway_db = stack.database(topology, "gateway")
    ops = Operations(accounts_db, topology.url, timedelta(days=7))
    with accounts_db.sessions() as session:
        agent_id = session.scalar(select(Account.id).where(
            Account.email == "agent@jolieville.test"))
    agent = Principal(account_id=agent_id, communes={SLUG: {"roles": ["agent"]}})
    households = [Household(index=start + i, email=f"famille{start + i:05d}.{run}@bench.test")
                  for i in range(count)]

    def create(h: Household) -> None:
        name = f"BENCH{h.index:05d}"
        children = [{"first_name": first, "last_name": name, "birth_date": date(2017, 3, 14),
                     "school": "École Jules Ferry", "class_name": "CM1"}
                    for first in (["Alix", "Noé"] if h.index % 3 == 0 else ["Alix"])]
        view = ops.create_family(agent, SLUG, {
            "family_name": name, "email": h.email, "address": None, "children": children,
            "guardians": [{"first_name": "Camille", "last_name": name, "email": h.email,
                           "phones": [], "pays": True}]})
        assert view, h.email

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(create, households))
    password_hash = hash_password(PASSWORD)
    emails = [h.email for h in households]
    now = datetime.now(UTC)
    with accounts_db.transaction() as session:
        session.execute(update(Account).where(Account.email.in_(emails)).values(
            status="active", password_hash=password_hash, activated_at=now,
            password_changed_at=now))
    sessions = SessionStore(gateway_db)
    by_email = {h.email: h for h in households}
    with accounts_db.sessions() as session:
        for account in session.scalars(select(Account).where(Account.email.in_(emails))):
            h = by_email[account.email]
            h.account_id = account.id
            h.family_id = account.family_id
            h.token = sessions.open(principal_from_claims(principal_claims(session, account)))
    by_family = {h.family_id: h for h in households}
    with accounts_db.sessions() as session:
        for child_id, family_id in session.execute(select(Child.id, Child.family_id).where(
                Child.family_id.in_(list(by_family))).order_by(Child.family_id, Child.position)):
            by_family[family_id].children.append(child_id)
    accounts_db.engine.dispose()
    gateway_db.engine.dispose()
    return households


def wait_for_read_models(topology, households: list[Household], timeout: float) -> None:
    """Until reservations and billing know every household and child (their read models)."""
    from services.common.households import CHILDREN, HOUSEHOLDS

    families = [h.family_id for h in households]
    children = sum(len(h.children) for h in households)
    deadline = time.monotonic() + timeout
    for name in ("reservations", "billing"):
        db = stack.database(topology, name)
        try:
            while True:
                with db.sessions() as session:
                    known = session.scalar(select(func.count()).select_from(HOUSEHOLDS).where(
                        HOUSEHOLDS.c.family_id.in_(families)))
                    kids = session.scalar(select(func.count()).select_from(CHILDREN).where(
                        CHILDREN.c.family_id.in_(families))) if name == "reservations" else None
                if known == len(families) and kids in (None, children):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} ne connaît que {known}/{len(families)} foyers")
                time.sleep(0.5)
        finally:
            db.engine.dispose()


def enrol(topology, households: list[Household]) -> None:
    """Canteen and leisure centre, validated, for every child (as the agent would)."""
    from services.reservations.models import Enrolment, SchoolYearRow
    from services.reservations.seed import demo_id

    db = stack.database(topology, "reservations")
    commune_id = demo_id("commune", SLUG)
    with db.transaction() as session:
        years = list(session.scalars(select(SchoolYearRow).where(
            SchoolYearRow.commune_id == commune_id)))
        rows = [{"id": str(uuid.uuid4()), "commune_id": commune_id, "family_id": h.family_id,
                 "child_id": child, "service_id": demo_id("service", f"{SLUG}:{service}"),
                 "school_year_id": year.id, "status": "validated", "decided_by": "bench",
                 "created_at": datetime.now(UTC), "decided_at": datetime.now(UTC)}
                for h in households for child in h.children
                for service in ("restauration", "loisirs") for year in years]
        for start in range(0, len(rows), 2000):
            session.execute(Enrolment.__table__.insert(), rows[start:start + 2000])
    db.engine.dispose()


def set_capacity(topology, activity_id: str, capacity: int, waiting_list: int) -> None:
    from services.reservations.models import Activity

    db = stack.database(topology, "reservations")
    with db.transaction() as session:
        session.execute(update(Activity).where(Activity.id == activity_id).values(
            capacity=capacity, waiting_list_size=waiting_list))
    db.engine.dispose()


# --- load ---------------------------------------------------------------------------------------

def journey(http, rec: load.Recorder, base: str, plan: Plan, week: int, h: Household):
    """Fill the basket and validate it, as the page does; returns the household."""
    days, wednesday = plan.weeks[week]
    headers = {"Authorization": f"Bearer {h.token}"}
    api = f"{base}/api/reservations/communes/{SLUG}"

    async def run() -> Household:
        for child in h.children:
            status, _ = await load.call(http, rec, "add canteen week", "POST",
                                        f"{api}/basket/items", headers=headers, json={
                                            "child_id": child, "activity_id": plan.canteen,
                                            "dates": [d.isoformat() for d in days]})
            if status != 201:
                h.outcome = f"error: add canteen {status}"
                return h
        status, body = await load.call(http, rec, "add Wednesday", "POST",
                                       f"{api}/basket/items", headers=headers, json={
                                           "child_id": h.children[0],
                                           "activity_id": plan.wednesday,
                                           "dates": [wednesday.isoformat()]})
        if status != 201:
            h.outcome = f"error: add Wednesday {status}"
            return h
        line = next(i["id"] for i in body["items"] if i["activity_id"] == plan.wednesday)
        status, body = await validate(http, rec, "checkout", f"{api}/basket/checkout", headers)
        if status == 409:  # full, waiting list too: the family drops that line and goes on
            h.full = True
            status, _ = await load.call(http, rec, "remove Wednesday", "DELETE",
                                        f"{api}/basket/items/{line}", headers=headers)
            if status != 204:
                h.outcome = f"error: remove {status}"
                return h
            status, body = await validate(http, rec, "checkout again",
                                          f"{api}/basket/checkout", headers)
        if status != 200:
            h.outcome = f"error: checkout {status}"
            return h
        h.outcome = body["status"]
        h.told.update({b["id"]: b["status"] for b in body["bookings"]})
        h.has_place = any(b["activity_id"] == plan.wednesday and b["date"] == wednesday.isoformat()
                          for b in body["bookings"])
        h.waiting += [w["id"] for w in body["waiting_list"]]
        h.payment_url = body.get("payment_url")
        return h

    return run


async def validate(http, rec: load.Recorder, name: str, url: str, headers: dict):
    """Validate the basket; after a 5xx or no answer, press again (at most 3 times, 1 s
    apart), as a family would: the service answers a basket validated meanwhile again, so
    what the family is finally told can be compared with what was booked."""
    for attempt in range(4):
        status, body = await load.call(http, rec, name if attempt == 0 else f"{name} (retry)",
                                       "POST", url, headers=headers, json={})
        if 0 < status < 500:
            break
        await asyncio.sleep(1.0)
    return status, body


async def pay(http, rec: load.Recorder, h: Household) -> None:
    """In the payment simulator, as the parent would: open the page, press « Payer »."""
    status, page = await load.call(http, rec, "simulator page", "GET", h.payment_url)
    found = re.search(r'name="token" value="([0-9a-f]+)"', page or "") if status == 200 else None
    if found is None:
        h.outcome = f"error: simulator page {status}"
        return
    status, _ = await load.call(http, rec, "simulator pay", "POST", h.payment_url,
                                data={"token": found.group(1), "action": "pay"})
    if status != 303:
        h.outcome = f"error: simulator pay {status}"
    else:
        h.paid = True


async def drive(topology, plan: Plan, wave: list[Household], burst: list[Household],
                window: float) -> dict:
    base = topology.url
    out: dict = {}
    async with load.session() as http:
        rec = load.Recorder()
        await load.open_loop([journey(http, rec, base, plan, 0, h) for h in wave], window)
        out["wave"] = rec
        # Baseline first (a cold gateway does not favour the burst): the trivial call, the
        # burst's concurrency, as many calls as the burst will make.
        trivial = load.Recorder()
        calls_per_basket = 3 + sum(len(h.children) - 1 for h in burst) / max(len(burst), 1)
        per_client = max(1, round(calls_per_basket))

        async def trivial_client(h: Household):
            for _ in range(per_client):
                await load.call(http, trivial, "healthz", "GET",
                                f"{base}/api/reservations/healthz",
                                headers={"Authorization": f"Bearer {h.token}"})

        started = time.perf_counter()
        await asyncio.gather(*(trivial_client(h) for h in burst))
        out["trivial_elapsed"] = time.perf_counter() - started
        out["trivial"] = trivial
        brec = load.Recorder()
        started = time.perf_counter()
        await load.open_loop([journey(http, brec, base, plan, 1, h) for h in burst], 0)
        out["burst_elapsed"] = time.perf_counter() - started
        out["burst"] = brec
        prec = load.Recorder()
        await asyncio.gather(*(pay(http, prec, h) for h in wave + burst if h.payment_url))
        out["payments"] = prec
    return out


def check_logins(topology, households: list[Household]) -> list[str]:
    """A few real logins through the gateway: the sessions minted above are what they make."""
    problems = []
    for h in households[:3]:
        answer = requests.post(f"{topology.url}/auth/login",
                               json={"email": h.email, "password": PASSWORD}, timeout=30)
        if answer.status_code != 200:
            problems.append(f"connexion réelle refusée pour {h.email}: {answer.status_code}")
            continue
        me = requests.get(f"{topology.url}/auth/me", timeout=10, headers={
            "Authorization": f"Bearer {answer.json()['access_token']}"}).json()
        mine = requests.get(f"{topology.url}/auth/me", timeout=10, headers={
            "Authorization": f"Bearer {h.token}"}).json()
        if me != mine:
            problems.append(f"session ouverte par le banc différente d'une vraie connexion: "
                            f"{me} != {mine}")
    return problems


# --- correctness --------------------------------------------------------------------------------

def drain_and_check(topology, plan: Plan, groups: dict[str, list[Household]], params: Params,
                    timeout: float) -> tuple[list[str], dict]:
    from services.billing.models import BookedDay
    from services.common.outbox import OUTBOX
    from services.notifications.models import Message
    from services.reservations.models import Booking, WaitingEntry

    everyone = [h for hs in groups.values() for h in hs]
    families = [h.family_id for h in everyone]
    res, bil, notif = (stack.database(topology, n)
                       for n in ("reservations", "billing", "notifications"))
    violations: list[str] = []
    facts: dict = {}
    try:
        # 1. The bus drains: no booking left waiting for its payment's event, every outbox
        # empty, billing and notifications have seen every confirmation.
        deadline = time.monotonic() + timeout
        while True:
            with res.sessions() as s:
                bookings = list(s.execute(select(
                    Booking.id, Booking.family_id, Booking.child_id, Booking.activity_id,
                    Booking.date, Booking.status).where(Booking.family_id.in_(families))))
                events = {row.event_id: row.envelope for row in s.execute(select(
                    OUTBOX.c.event_id, OUTBOX.c.envelope).where(
                    OUTBOX.c.type == "reservations.booking.confirmed"))}
                pending_res = s.scalar(select(func.count()).select_from(OUTBOX).where(
                    OUTBOX.c.published_at.is_(None)))
            events = {k: v for k, v in events.items() if v["data"]["family_id"] in set(families)}
            confirmed = {b.id for b in bookings if b.status == "confirmed"}
            with bil.sessions() as s:
                booked = list(s.execute(select(BookedDay.booking_id, BookedDay.status).where(
                    BookedDay.family_id.in_(families))))
            with notif.sessions() as s:
                messages = list(s.execute(select(Message.event_id, Message.recipient).where(
                    Message.event_type == "reservations.booking.confirmed",
                    Message.family_id.in_(families))))
            unpaid = {h.family_id for h in everyone if h.payment_url and not h.paid}
            settled = (not any(b.status == "pending_payment" and b.family_id not in unpaid
                               for b in bookings)
                       and pending_res == 0 and {b for b, _ in booked} >= confirmed
                       and {e for e, _ in messages} >= set(events))
            if settled or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if not settled:
            violations.append(f"le bus ne s'est pas vidé en {timeout:.0f} s")
        # 2. What each family was told is what reservations holds: nothing lost, nothing more.
        by_family: dict[str, set[str]] = defaultdict(set)
        for b in bookings:
            if b.status in ("confirmed", "pending_payment"):
                by_family[b.family_id].add(b.id)
        for h in everyone:
            if h.outcome.startswith("error") or not h.outcome:
                violations.append(f"foyer {h.index}: {h.outcome or 'pas de réponse'}")
            if set(h.told) != by_family.get(h.family_id, set()):
                lost = set(h.told) - by_family.get(h.family_id, set())
                extra = by_family.get(h.family_id, set()) - set(h.told)
                violations.append(f"foyer {h.index}: {len(lost)} réservation(s) annoncée(s) "
                                  f"absente(s), {len(extra)} non annoncée(s)")
            expected = len(h.children) * 4 + (0 if h.full or h.waiting else 1)
            if h.outcome in ("confirmed", "payment_required") and len(h.told) != expected:
                violations.append(f"foyer {h.index}: {len(h.told)} réservations, "
                                  f"{expected} attendues")
        live = Counter((b.child_id, b.activity_id, b.date) for b in bookings
                       if b.status in ("confirmed", "pending_payment"))
        dupes = [k for k, n in live.items() if n > 1]
        if dupes:
            violations.append(f"{len(dupes)} réservation(s) en double")
        still_held = sum(b.status == "pending_payment" and b.family_id not in unpaid
                         for b in bookings)
        if still_held:
            violations.append(f"{still_held} réservation(s) payée(s) restée(s) en attente")
        # 3. The Wednesday's places: exactly min(capacity, demand), the line exactly the rest.
        with res.sessions() as s:
            in_line = Counter(s.execute(select(WaitingEntry.date).where(
                WaitingEntry.activity_id == plan.wednesday,
                WaitingEntry.family_id.in_(families),
                WaitingEntry.status.in_(("waiting", "offered")))).scalars())
        for week, (name, hs) in enumerate(groups.items()):
            wednesday = plan.weeks[week][1]
            taken = sum(n for (_, a, d), n in live.items()
                        if a == plan.wednesday and d == wednesday)
            told_place = sum(h.has_place for h in hs)
            told_line = sum(bool(h.waiting) for h in hs)
            refused = sum(h.full for h in hs)
            facts[f"{name}: Wednesday places taken"] = taken
            facts[f"{name}: Wednesday waiting list"] = in_line[wednesday]
            facts[f"{name}: families refused (full)"] = refused
            # Exact count; never above capacity; nobody refused while a place or a line was
            # free; the line exactly those told they are in it.
            if taken > params.capacity:
                violations.append(f"{name}: capacité dépassée ({taken} > {params.capacity})")
            if taken != told_place:
                violations.append(f"{name}: {taken} places prises, {told_place} annoncées")
            if in_line[wednesday] != told_line:
                violations.append(f"{name}: {in_line[wednesday]} en liste d'attente, "
                                  f"{told_line} annoncés")
            if refused and (taken < params.capacity or in_line[wednesday] < params.waiting_list):
                violations.append(f"{name}: {refused} refus « complet » avec {taken} places "
                                  f"prises et {in_line[wednesday]} en attente")
        # 4. Billing saw every confirmed booking once (its key is the booking id), and nothing
        # else; notifications one message per confirmation event and recipient.
        seen = Counter(b for b, _ in booked)
        missing = confirmed - set(seen)
        unknown = set(seen) - confirmed
        if missing:
            violations.append(f"billing: {len(missing)} réservation(s) confirmée(s) non vue(s)")
        if unknown:
            violations.append(f"billing: {len(unknown)} jour(s) réservé(s) inconnu(s)")
        not_confirmed = sum(1 for b, status in booked if b in confirmed and status != "confirmed")
        if not_confirmed:
            violations.append(f"billing: {not_confirmed} jour(s) réservé(s) non confirmé(s)")
        in_events = sum(len(e["data"]["booking_ids"]) for e in events.values())
        if in_events != len(confirmed):
            violations.append(f"reservations: {in_events} réservations dans les événements de "
                              f"confirmation pour {len(confirmed)} confirmées")
        per_event = Counter(e for e, _ in messages)
        if set(per_event) != set(events):
            violations.append(f"notifications: {len(set(events) - set(per_event))} "
                              f"confirmation(s) sans message, "
                              f"{len(set(per_event) - set(events))} message(s) sans confirmation")
        twice = [e for e, n in per_event.items() if n != 1]
        if twice:
            violations.append(f"notifications: {len(twice)} confirmation(s) avec plus d'un "
                              f"message")
        facts.update({"bookings confirmed": len(confirmed), "billing booked days": len(booked),
                      "confirmation events": len(events), "confirmation messages":
                      len(messages)})
    finally:
        for db in (res, bil, notif):
            db.engine.dispose()
    return violations, facts


# --- the scenario -------------------------------------------------------------------------------

def prepare(topology, params: Params, run: str) -> tuple[Plan, list[Household], list[Household]]:
    clock = time.perf_counter()
    plan = _open_weeks(topology, 2)
    wave = create_households(topology, params.households, run)
    burst = create_households(topology, params.burst, run, start=params.households)
    log(f"surge: {len(wave) + len(burst)} foyers créés en {time.perf_counter() - clock:.1f} s")
    enrol(topology, wave + burst)
    set_capacity(topology, plan.wednesday, params.capacity, params.waiting_list)
    wait_for_read_models(topology, wave + burst, timeout=max(60.0, params.households / 10))
    log(f"surge: données prêtes en {time.perf_counter() - clock:.1f} s")
    return plan, wave, burst


def exercise(topology, params: Params):
    """Data, load and checks on a running suite: (measured, facts, violations, wave, burst)."""
    plan, wave, burst = prepare(topology, params, uuid.uuid4().hex[:6])
    violations = check_logins(topology, wave)
    log("surge: vague")
    measured = asyncio.run(drive(topology, plan, wave, burst, params.window))
    log("surge: contrôle après vidange du bus")
    found, facts = drain_and_check(topology, plan, {"wave": wave, "burst": burst}, params,
                                   params.drain_timeout)
    per_family = [v for v in found if v.startswith("foyer ")]
    violations += [v for v in found if not v.startswith("foyer ")] + per_family[:20]
    if len(per_family) > 20:
        violations.append(f"… et {len(per_family) - 20} autres constats par foyer")
    if not topology.alive():
        violations.append("un processus s'est arrêté pendant le scénario")
    return measured, facts, violations, wave, burst


def run(quick: bool) -> Result:
    params = QUICK if quick else FULL
    result = Result("surge", "opening-day surge: households with open sessions validate a "
                             "basket (canteen week + a limited leisure-centre Wednesday)")
    result.params = {**params.__dict__, "processes": "every web process and worker, separate",
                     **stack.PRODUCTION}
    measured, facts, violations, wave, burst = exercise(stack.shared(), params)
    result.violations += violations
    summarize(result, params, measured, facts, wave, burst)
    return result


def summarize(result: Result, params: Params, measured: dict, facts: dict,
              wave: list[Household], burst: list[Household]) -> None:
    wave_rec, burst_rec, trivial = measured["wave"], measured["burst"], measured["trivial"]
    for name, rec in (("wave", wave_rec), ("burst", burst_rec), ("baseline", trivial),
                      ("payments", measured["payments"])):
        for call, bad in rec.failures().items():
            result.violations.append(f"{name} / {call}: {dict(bad)}")
    checkout = wave_rec.summary("checkout")
    validated = sum(h.outcome in ("confirmed", "payment_required") for h in wave)
    makespan = (wave_rec.last - wave_rec.first) if wave_rec.first else float("nan")
    burst_validated = sum(h.outcome in ("confirmed", "payment_required") for h in burst)
    burst_calls = sum(len(v) for v in burst_rec.latencies.values())
    trivial_calls = sum(len(v) for v in trivial.latencies.values())
    burst_rate = burst_validated / measured["burst_elapsed"]
    trivial_rate = trivial_calls / measured["trivial_elapsed"]
    basket_calls_rate = burst_calls / measured["burst_elapsed"]
    every_checkout = [s for name in ("checkout", "checkout again")
                      for s in wave_rec.latencies.get(name, [])]
    from bench.report import percentiles
    both = percentiles([s * 1000 for s in every_checkout])
    result.figures.update({
        "wave: validated baskets": validated,
        "wave: validated baskets/s (arrivals over the window)": validated / makespan,
        "wave: checkout p50 ms": checkout["p50"],
        "wave: checkout p95 ms": checkout["p95"],
        "wave: checkout p99 ms": checkout["p99"],
        "wave: every checkout (incl. again) p99 ms": both["p99"],
        "burst: validated baskets/s (all at once)": burst_rate,
        "burst: HTTP calls/s": basket_calls_rate,
        "burst: checkout p50 ms": burst_rec.summary("checkout")["p50"],
        "burst: checkout p99 ms": burst_rec.summary("checkout")["p99"],
        **{k: float(v) for k, v in facts.items()},
    })
    result.baselines.update({
        "trivial GET /api/reservations/healthz through the gateway, same concurrency: calls/s":
            trivial_rate,
        "trivial GET p50 ms": trivial.summary("healthz")["p50"],
        "trivial GET p99 ms": trivial.summary("healthz")["p99"],
    })
    result.ratios.update({
        "burst HTTP calls/s ÷ trivial calls/s": basket_calls_rate / trivial_rate,
        "burst validated baskets/s ÷ trivial calls/s": burst_rate / trivial_rate,
    })
    quick = params is QUICK
    result.goals += [
        Goal("5xx and transport errors", "0", str(sum(
            sum(c.values()) for r in (wave_rec, burst_rec, measured["payments"])
            for c in r.failures().values())), None if quick else not any(
            r.failures() for r in (wave_rec, burst_rec, measured["payments"]))),
        Goal("p99 validation (checkout) latency, wave",
             "< 2 s", f"{checkout['p99'] / 1000:.2f} s",
             None if quick else checkout["p99"] < 2000),
        Goal("households validated within about a minute",
             f"{params.households} in ~{params.window:.0f} s",
             f"{validated} in {makespan:.1f} s",
             None if quick else validated == params.households and makespan < 90),
    ]
    result.tables += ["Wave (households arriving over the window):", wave_rec.table(),
                      "Burst (households all at the same moment):", burst_rec.table(),
                      "Baseline (trivial call, burst concurrency):", trivial.table(),
                      "Payments in the simulator:", measured["payments"].table()]
    result.notes.append(
        "Sessions are opened in the gateway's session store with the principal accounts "
        "computes (what /auth/login stores); three real logins are compared with them.")
