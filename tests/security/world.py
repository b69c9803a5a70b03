"""The world the authorization matrix runs in: the embedded suite (SQLite files, in-memory bus)
with the demo data, plus two households created the way agents create them, and one object
of every kind for each household, made through the public API.

- commune X = ``jolieville``, commune Y = ``dammartin``;
- household A = CASSEREAU (demo; member of X, and of Y too), household B = a new household
  of X only, household C = a new household of Y only;
- actors: ``anonymous``, ``parent_a``, ``parent_b``, ``agent_x`` (agent and agent-admin of X),
  ``agent_y`` (agent of Y), ``admin`` (platform admin).

Principals are those accounts gives the gateway at login (``/internal/authenticate``), and the
tokens are minted with the gateway's own key: what a service receives is what it would
receive behind the gateway. Once everything is in place the workers are stopped, so that
nothing but the calls under test changes the databases.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.common.auth import Principal, Signer, ensure_dev_keys
from services.common.outbox import OUTBOX
from suite.embedded import EmbeddedSuite
from suite.registry import SERVICES

X, Y = "jolieville", "dammartin"
PASSWORD = "portail-demo"
STRONG = "un cheval bleu mange des cerises"
ACTORS = ("anonymous", "parent_a", "parent_b", "agent_x", "agent_y", "admin")
LOGINS = {"parent_a": "parent@famille.test", "agent_x": "agent@jolieville.test",
          "agent_y": "agent@dammartin.test", "admin": "admin@portail.test"}


def minimal_pdf(text: str = "Justificatif") -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("Helvetica", size=12)
    document.cell(text=text)
    return bytes(document.output())


def eventually(probe, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"toujours pas vrai après {timeout} s (dernier résultat : {last!r})")


@dataclass
class World:
    suite: EmbeddedSuite
    signer: Signer
    principals: dict[str, Principal | None] = field(default_factory=dict)
    # (kind, owner) -> id; owner is "A", "B", "C" (households) or "X", "Y" (communes)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def return_url(self) -> str:
        return f"{self.suite.url}/factures/paiement/retour"

    # --- calls ------------------------------------------------------------------------------
    def app(self, name: str):
        return self.suite.servers[name].app

    def headers(self, actor: str, service: str) -> dict[str, str]:
        principal = self.principals.get(actor)
        if principal is None:
            return {}
        return {"Authorization": f"Bearer {self.signer.mint(principal, audience=service)}"}

    def call(self, service: str, method: str, path: str, actor: str = "anonymous", **kwargs):
        headers = {**self.headers(actor, service), **kwargs.pop("headers", {})}
        return self.app(service).test_client().open(path, method=method, headers=headers,
                                                    **kwargs)

    def ok(self, service: str, method: str, path: str, actor: str, **kwargs) -> Any:
        answer = self.call(service, method, path, actor, **kwargs)
        assert answer.status_code < 300, (method, path, actor, answer.status_code,
                                          answer.get_data(as_text=True)[:500])
        return answer.get_json(silent=True)

    # --- what a refused call must leave untouched -------------------------------------------
    def fingerprint(self, service: str, ignore: tuple[str, ...] = ()) -> str:
        """A digest of every row of every table of the service's database (SQLite)."""
        url = str(self.suite.runtimes[service].db.engine.url)
        path = url.split("sqlite:///", 1)[1]
        digest = hashlib.sha256()
        with sqlite3.connect(path) as connection:
            tables = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
            for table in tables:
                if table in ignore:
                    continue
                digest.update(table.encode())
                for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                    digest.update(repr(row).encode())
        return digest.hexdigest()

    def outbox_types(self, service: str) -> list[str]:
        with self.suite.runtimes[service].db.sessions() as session:
            return list(session.scalars(select(OUTBOX.c.type).order_by(OUTBOX.c.id)))


# --- building it ------------------------------------------------------------------------------

def _principal(world: World, email: str, password: str) -> Principal:
    gateway = Principal(account_id="service:gateway")
    answer = world.app("accounts").test_client().post(
        "/internal/authenticate", json={"email": email, "password": password},
        headers={"Authorization": f"Bearer {world.signer.mint(gateway, 'accounts')}"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    return Principal.from_claims({**body, "sub": body["account_id"],
                                  "fam": body.get("family_id"),
                                  "adm": body.get("platform_admin")})


def _household(name: str, email: str, city: str) -> dict[str, Any]:
    return {
        "family_name": name, "email": email,
        "guardians": [{"first_name": "Claire", "last_name": name, "relation": "mère",
                       "phones": ["06 11 22 33 44"], "pays": True}],
        "children": [{"first_name": "Zoé", "last_name": name, "birth_date": "2018-05-02",
                      "school": "École Jules Ferry", "class_name": "CE2"}],
        "address": {"line1": "3 place de la Mairie", "postal_code": "77100", "city": city},
    }


def _invite_and_activate(world: World, slug: str, agent: str, name: str, email: str) -> str:
    created = world.ok("accounts", "POST", f"/api/accounts/communes/{slug}/families", agent,
                       json=_household(name, email, slug))
    with world.suite.runtimes["accounts"].db.sessions() as session:
        envelopes = list(session.scalars(select(OUTBOX.c.envelope).where(
            OUTBOX.c.type == "accounts.family.invited")))
    url = next(e["data"]["activation_url"] for e in envelopes
               if e["data"]["family_id"] == created["id"])
    world.ok("accounts", "POST", "/api/accounts/activation", "anonymous",
             json={"token": url.rsplit("/", 1)[1], "password": STRONG})
    return created["id"]


def school_days(world: World, slug: str, weeks_ahead: int, count: int) -> list[date]:
    """``count`` days the canteen runs in the commune (Monday, Tuesday, Thursday or Friday of
    its school year, no holiday, no closure), from ``weeks_ahead`` weeks on, or failing that
    (near the end of the demo school year) from tomorrow: the world does not depend on
    today's date."""
    found: list[date] = []
    for start in (date.today() + timedelta(weeks=weeks_ahead), date.today() + timedelta(1)):
        for month in range(6):
            first = start + timedelta(days=31 * month)
            days = world.ok("reservations", "GET",
                            f"/api/reservations/communes/{slug}/calendar/days", "admin",
                            query_string={"from": str(first),
                                          "to": str(first + timedelta(days=30))})["days"]
            for day in days:
                when = date.fromisoformat(day["date"])
                if (when.weekday() in (0, 1, 3, 4) and day["school_year"]
                        and not day["public_holiday"] and not day["school_holiday"]
                        and not day["exceptions"] and when not in found):
                    found.append(when)
                if len(found) == count:
                    return found
    raise AssertionError(f"pas assez de jours d'école ouverts à {slug}")


def _first_monday_after(day: date, weeks: int) -> date:
    day = day + timedelta(days=7 * weeks)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def build(data_dir: Path) -> World:
    suite = EmbeddedSuite("127.0.0.1", 0, data_dir)
    suite.start(fresh=True)
    world = World(suite, Signer(ensure_dev_keys(data_dir)[0]))
    try:
        _populate(world)
    except BaseException:
        suite.shutdown()
        raise
    return world


def _populate(world: World) -> None:
    p = world.principals
    p["anonymous"] = None
    for actor, email in LOGINS.items():
        p[actor] = _principal(world, email, PASSWORD)
    ids = world.ids
    ids["family", "A"] = p["parent_a"].family_id
    ids["family", "B"] = _invite_and_activate(world, X, "agent_x", "BERNARD",
                                              "bernard@exemple.fr")
    ids["family", "C"] = _invite_and_activate(world, Y, "agent_y", "CHARPENTIER",
                                              "charpentier@exemple.fr")
    p["parent_b"] = _principal(world, "bernard@exemple.fr", STRONG)
    p["parent_c"] = _principal(world, "charpentier@exemple.fr", STRONG)
    for owner, actor in (("A", "parent_a"), ("B", "parent_b"), ("C", "parent_c")):
        family = world.ok("accounts", "GET", "/api/accounts/me/family", actor)
        ids["child", owner] = family["children"][0]["id"]
        ids["guardian", owner] = family["guardians"][0]["id"]
    ids["commune", "X"] = p["agent_x"].communes[X]["id"]
    ids["commune", "Y"] = p["agent_y"].communes[Y]["id"]

    # Every service hears of the new households (over the in-memory bus).
    def known(service: str, path: str, agent: str, child: str):
        return lambda: child in world.call(service, "GET", path, agent).get_data(as_text=True)

    eventually(known("reservations", f"/api/reservations/communes/{X}/children?q=BERNARD",
                     "agent_x", ids["child", "B"]))
    eventually(known("reservations", f"/api/reservations/communes/{Y}/children?q=CHARPENTIER",
                     "agent_y", ids["child", "C"]))
    for owner, slug in (("B", X), ("C", Y)):
        actor = {"B": "parent_b", "C": "parent_c"}[owner]
        eventually(lambda a=actor, s=slug: world.call(
            "billing", "GET", f"/api/billing/communes/{s}/invoices", a).status_code == 200)
        eventually(lambda a=actor, s=slug: world.call(
            "requests", "GET", f"/api/requests/communes/{s}/requests", a).status_code == 200)

    _reservations(world)
    _waiting_list(world)
    # Lines left in open baskets (after every checkout above).
    for owner, commune in (("A", "X"), ("B", "X"), ("C", "Y")):
        fresh(world, "basket_item", owner, commune)
    _billing(world)
    _requests(world)
    _erasures(world)
    # Let the relays publish and the consumers settle, then stop every worker: from here on
    # only the calls under test change the databases.
    eventually(lambda: all(_outbox_drained(world, name) for name in SERVICES))
    world.suite.stop.set()
    for thread in world.suite.threads:
        if not thread.name.endswith("-web"):
            thread.join(timeout=10)


def _outbox_drained(world: World, service: str) -> bool:
    with world.suite.runtimes[service].db.sessions() as session:
        return session.scalar(select(OUTBOX.c.id).where(
            OUTBOX.c.published_at.is_(None)).limit(1)) is None


def _activity(world: World, slug: str, code: str) -> dict[str, Any]:
    items = world.ok("reservations", "GET", f"/api/reservations/communes/{slug}/activities",
                     "admin")["items"]
    return next(a for a in items if a["code"] == code)


def _reservations(world: World) -> None:
    ids = world.ids
    base = "/api/reservations/communes"
    today = date.today()
    for commune, slug, agent in (("X", X, "agent_x"), ("Y", Y, "agent_y")):
        repas = _activity(world, slug, "REPAS")
        ids["activity", commune] = repas["id"]
        ids["service", commune] = repas["service_id"]
        ids["site", commune] = repas["site_id"]
        years = world.ok("reservations", "GET", f"{base}/{slug}/school-years", agent)
        ids["school_year", commune] = years[0]["id"]
        exception = world.ok("reservations", "POST", f"{base}/{slug}/calendar/exceptions",
                             agent, json={"kind": "closure", "label": "Pont",
                                          "from": str(_first_monday_after(today, 20))})
        ids["exception", commune] = exception["id"]

    for owner, slug, actor in (("A", X, "parent_a"), ("B", X, "parent_b"),
                               ("C", Y, "parent_c")):
        commune = "X" if slug == X else "Y"
        child, activity = ids["child", owner], ids["activity", commune]
        enrolment = world.call("reservations", "POST", f"{base}/{slug}/enrolments", actor,
                               json={"child_id": child, "service_id": ids["service", commune],
                                     "school_year_id": ids["school_year", commune]})
        # The demo household is enrolled already: the 409 names its enrolment.
        found = enrolment.get_json()
        ids["enrolment", owner] = found.get("id") or found["enrolment_id"]
        world.ok("reservations", "POST", f"{base}/{slug}/basket/items", actor,
                 json={"child_id": child, "activity_id": activity,
                       "dates": [str(d) for d in school_days(world, slug, 2, 3)]})
        checkout = world.ok("reservations", "POST", f"{base}/{slug}/basket/checkout", actor,
                            json={})
        ids["basket", owner] = checkout.get("basket_id") or checkout.get("id")
        bookings = world.ok("reservations", "GET", f"{base}/{slug}/bookings", actor)["items"]
        ids["booking", owner] = bookings[0]["id"]
        cancelled = world.ok("reservations", "POST", f"{base}/{slug}/cancellations", actor,
                             json={"booking_ids": [bookings[-1]["id"]], "reason": "Malade"})
        ids["cancellation", owner] = (cancelled["cancellations"] or cancelled["requests"])[0]["id"]


def _billing(world: World) -> None:
    ids = world.ids
    base = "/api/billing/communes"
    for commune, slug, agent in (("X", X, "agent_x"), ("Y", Y, "agent_y")):
        run = world.ok("billing", "POST", f"{base}/{slug}/invoicing-runs", agent,
                       json={"period": "2026-09"})
        ids["run", commune] = run["id"]
        # A code only this commune has (the demo codes, REPAS..., exist in both).
        world.ok("billing", "PUT", f"{base}/{slug}/tariffs/ATELIER{commune}", agent,
                 json={"label": "Atelier", "unit_price": "1.00"})
        ids["tariff", commune] = f"ATELIER{commune}"
    for owner, slug, agent, actor in (("A", X, "agent_x", "parent_a"),
                                      ("B", X, "agent_x", "parent_b"),
                                      ("C", Y, "agent_y", "parent_c")):
        family = ids["family", owner]
        for key in ("invoice", "invoice_paid"):
            invoice = world.ok("billing", "POST", f"{base}/{slug}/invoices", agent, json={
                "family_id": family, "label": "Séjour",
                "lines": [{"label": "Séjour", "quantity": 2, "unit_price": "15.00"}]})
            ids[key, owner] = invoice["id"]
            ids[f"{key}_number", owner] = invoice["number"]
        payment = world.ok("billing", "POST", "/api/billing/payments", actor, json={
            "invoice_ids": [ids["invoice_paid", owner]],
            "return_url": world.return_url})
        ids["payment", owner] = payment["payment_id"]
        note = world.ok("billing", "POST", f"{base}/{slug}/credit-notes", agent, json={
            "family_id": family, "amount": "1.00", "reason": "Geste commercial"})
        ids["credit_note", owner] = note["id"]


def _requests(world: World) -> None:
    ids = world.ids
    base = "/api/requests/communes"
    for commune, slug, agent in (("X", X, "agent_x"), ("Y", Y, "agent_y")):
        categories = world.ok("requests", "GET", f"{base}/{slug}/categories", agent)["items"]
        ids["category", commune] = next(c["id"] for c in categories
                                        if c["kind"] == "address_change")
        absence = next(c for c in categories if c["kind"] == "absence_justification")
        ids["absence_category", commune] = absence["id"]
        ids["absence_reason", commune] = _field_value(
            next(f for f in absence["fields"] if f["name"] == "reason"))
    for owner, slug, actor in (("A", X, "parent_a"), ("B", X, "parent_b"),
                               ("C", Y, "parent_c")):
        commune = "X" if slug == X else "Y"
        category = world.ok("requests", "GET",
                            f"{base}/{slug}/categories/{ids['category', commune]}", actor)
        form: dict[str, Any] = {"category": category["id"]}
        for spec in category["fields"]:
            form[spec["name"]] = _field_value(spec)
        for spec in category["required_attachments"]:
            form[spec["name"]] = (io.BytesIO(minimal_pdf()), "preuve.pdf", "application/pdf")
        sent = world.ok("requests", "POST", f"{base}/{slug}/requests", actor, data=form,
                        content_type="multipart/form-data")
        ids["request", owner] = sent["id"]
        ids["document", owner] = sent["documents"][0]["id"]


def _field_value(spec: dict[str, Any]) -> str:
    kind = spec["type"]
    if spec.get("options"):
        option = spec["options"][0]
        return option["value"] if isinstance(option, dict) else option
    if spec["name"] == "postal_code":
        return "77100"
    return {"date": "2027-01-04", "phone": "06 12 34 56 78", "email": "x@exemple.fr",
            "yes_no": "no"}.get(kind, "Rue des Lilas")


# --- what the matrix asks of the world ---------------------------------------------------------

PARENT_OF = {"A": "parent_a", "B": "parent_b", "C": "parent_c"}
AGENT_OF = {"X": "agent_x", "Y": "agent_y"}
SLUGS = {"X": X, "Y": Y}


def resolver(world: World, actor: str, household: str = "A", commune: str = "X",
             slug: str = "X"):
    from tests.security.matrix import COMMUNE_KINDS, HOUSEHOLD_KINDS

    def ref(kind: str) -> Any:
        if kind == "slug":
            return SLUGS[slug]
        if kind == "actor":
            return actor
        if kind == "return_url":
            return world.return_url
        if kind == "unknown":
            return str(uuid.uuid4())
        if kind == "account":
            return world.principals[PARENT_OF[household]].account_id
        if kind in HOUSEHOLD_KINDS:
            return world.ids[kind, household]
        if kind in COMMUNE_KINDS:
            return world.ids[kind, commune]
        raise KeyError(kind)

    return ref


def fresh(world: World, kind: str, household: str = "A", commune: str = "X") -> None:
    """Replace the object of ``kind`` by a new one (for calls that destroy it)."""
    slug, agent = SLUGS[commune], AGENT_OF[commune]
    if kind == "exception":
        made = world.ok("reservations", "POST",
                        f"/api/reservations/communes/{slug}/calendar/exceptions", agent,
                        json={"kind": "closure", "label": "Pont", "from": "2031-05-09"})
        world.ids[kind, commune] = made["id"]
    elif kind == "tariff":
        code = f"T{uuid.uuid4().hex[:6].upper()}"
        world.ok("billing", "PUT", f"/api/billing/communes/{slug}/tariffs/{code}", agent,
                 json={"label": "Tarif d'essai", "unit_price": "1.00"})
        world.ids[kind, commune] = code
    elif kind == "basket_item":
        later = school_days(world, slug, 12, 2)
        basket = world.ok("reservations", "POST", f"/api/reservations/communes/{slug}/basket/items",
                          PARENT_OF[household],
                          json={"child_id": world.ids["child", household],
                                "activity_id": world.ids["activity", commune],
                                "dates": [str(d) for d in later]})
        known = {i["id"] for i in basket["items"]} - {world.ids.get((kind, household))}
        world.ids[kind, household] = sorted(known)[-1]
    else:
        raise KeyError(kind)


def _erasures(world: World) -> None:
    """Each household asks for its data to be erased (accounts' GDPR routes, when present)."""
    if not any(r.rule == "/api/accounts/me/erasure"
               for r in world.app("accounts").url_map.iter_rules()):
        return
    for owner, actor in PARENT_OF.items():
        asked = world.ok("accounts", "POST", "/api/accounts/me/erasure", actor,
                         json={"reason": "Nous déménageons."})
        world.ids["erasure", owner] = asked["id"]


def _waiting_list(world: World) -> None:
    """An activity with one place a day in each commune: in X, A books a day and B waits for
    it, B books the next and A waits; in Y, A books a day and C waits."""
    base = "/api/reservations/communes"
    activity = {}
    for commune, slug, agent in (("X", X, "agent_x"), ("Y", Y, "agent_y")):
        repas = _activity(world, slug, "REPAS")
        activity[slug] = world.ok("reservations", "POST", f"{base}/{slug}/activities", agent,
                                  json={"service_id": repas["service_id"],
                                        "site_id": repas["site_id"],
                                        "code": f"ATELIER{commune}",
                                        "label": "Atelier (une place)",
                                        "payment_mode": "monthly", "unit_price": "1.00",
                                        "capacity": 1, "waiting_list_size": 5,
                                        "calendar": {"weekdays": [1, 2, 3, 4, 5]}})["id"]

    def book(owner: str, slug: str, when: date) -> dict[str, Any]:
        world.ok("reservations", "POST", f"{base}/{slug}/basket/items", PARENT_OF[owner],
                 json={"child_id": world.ids["child", owner], "activity_id": activity[slug],
                       "dates": [str(when)]})
        return world.ok("reservations", "POST", f"{base}/{slug}/basket/checkout",
                        PARENT_OF[owner], json={})

    first, second = school_days(world, X, 30, 2)
    (third,) = school_days(world, Y, 30, 1)
    for booker, waiter, slug, when in (("A", "B", X, first), ("B", "A", X, second),
                                       ("A", "C", Y, third)):
        book(booker, slug, when)
        waiting = book(waiter, slug, when)["waiting_list"]
        assert waiting, f"pas de liste d'attente pour {waiter}"
        world.ids["waiting", waiter] = waiting[0]["id"]


# --- through the gateway: sessions as a browser or an API client holds them ------------------

def totp_now(secret: str, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30 s, 6 digits): what the agent's authenticator app shows."""
    import base64
    import hmac
    import struct

    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), "sha1").digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


EMAILS = {**LOGINS, "parent_b": "bernard@exemple.fr", "parent_c": "charpentier@exemple.fr"}


def gateway_session(world: World, actor: str):
    """A ``requests`` session logged in through the gateway (second factor included), with
    commune X chosen in the portal; anonymous: a session with no cookie."""
    import requests

    http = requests.Session()
    http.cookies.set("portail_commune", X)
    if actor == "anonymous":
        return http
    password = PASSWORD if actor in LOGINS else STRONG
    answer = http.post(f"{world.suite.url}/auth/login",
                       json={"email": EMAILS[actor], "password": password}, timeout=20)
    assert answer.status_code == 200, answer.text
    if answer.json().get("second_factor") == "totp":
        from services.accounts.totp import DEMO_SECRET

        verified = http.post(f"{world.suite.url}/auth/second-factor",
                             json={"code": totp_now(DEMO_SECRET)}, timeout=20)
        assert verified.status_code == 200, verified.text
    return http
