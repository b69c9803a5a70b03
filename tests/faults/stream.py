"""The stream of operations the fault suite runs through the gateway, and what it was told.

A parent books (a canteen day, monthly: confirmed at once; a morning care day, prepaid: paid
in the payment simulator), pays invoices an agent issues, and sends requests with a document.
Each operation is recorded with what the client was told: ``accepted`` (success: it must exist
exactly once after the drain), ``refused`` (a clear failure: it may not exist) or ``unknown``
(no answer: it may exist, at most once).

The client behaves as a careful person would: it retries what is safe to repeat (validating
the basket again, paying on the bank's page again, sending a request again with the same
``Idempotency-Key``) for a while after an error, and never repeats what is not (an agent's
invoice without an idempotency key, adding to the basket without clearing it first).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import requests

C = "jolieville"
RETRY_FOR = 30.0  # seconds a step is retried after errors before the client gives up
PAUSE = 0.3  # between two operations (a person, not a load test)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Op:
    kind: str  # monthly_booking | prepaid_booking | invoice_payment | request
    key: str
    started: float
    lost_notification: bool = False
    outcome: str = "pending"  # accepted | refused | unknown
    finished: float = 0.0
    ids: dict[str, str] = field(default_factory=dict)
    error: str = ""


class Retryable(Exception):
    pass


class Client:
    """An HTTP client of the gateway for one account, logging in again when needed."""

    def __init__(self, base: str, email: str):
        self.base = base
        self.email = email
        self.http = requests.Session()
        self.http.trust_env = False

    def login(self) -> None:
        answer = self.http.post(f"{self.base}/auth/login",
                                json={"email": self.email, "password": "portail-demo"},
                                timeout=15)
        if answer.status_code != 200:
            raise Retryable(f"connexion {answer.status_code}")
        body = answer.json()
        if body.get("second_factor") == "totp":  # agents: the demo authenticator's code
            from tests.common.second_factor import code_for

            answer = self.http.post(f"{self.base}/auth/second-factor", timeout=15,
                                    json={"code": code_for(f"{self.base} {self.email}")},
                                    headers={"Authorization": f"Bearer {body['access_token']}"})
            if answer.status_code != 200:
                raise Retryable(f"second facteur {answer.status_code}")
            body = answer.json()
        self.http.headers["Authorization"] = f"Bearer {body['access_token']}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        """One attempt; a transport error or a 5xx/429 raises Retryable."""
        if "Authorization" not in self.http.headers:
            self.login()
        url = path if path.startswith("http") else f"{self.base}{path}"
        try:
            answer = self.http.request(method, url, timeout=kwargs.pop("timeout", 15),
                                       allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise Retryable(type(exc).__name__) from exc
        if answer.status_code == 401:
            self.http.headers.pop("Authorization", None)
            raise Retryable("401")
        if answer.status_code >= 500 or answer.status_code == 429:
            raise Retryable(f"{answer.status_code} {answer.text[:120]}")
        return answer


def retrying(step: Callable[[], requests.Response], stop: threading.Event | None = None,
             budget: float = RETRY_FOR) -> requests.Response:
    deadline = time.monotonic() + budget
    while True:
        try:
            return step()
        except Retryable:
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                raise
            time.sleep(0.3)


class Stream:
    """Runs operations one after another (one household: one basket) until stopped."""

    def __init__(self, base: str):
        self.base = base
        self.parent = Client(base, "parent@famille.test")
        self.agent = Client(base, "agent@jolieville.test")
        self.ops: list[Op] = []
        self.stop = threading.Event()
        self.lose_notifications = threading.Event()  # the "notification never arrives" fault
        self.lock = threading.Lock()
        self.slots: dict[str, list[tuple[str, str, str]]] = {}
        self.family_id = ""
        self._thread: threading.Thread | None = None

    # preparation ---------------------------------------------------------------------------
    def prepare(self) -> None:
        family = retrying(lambda: self.parent.call("GET", "/api/accounts/me/family")).json()
        self.family_id = family["id"]
        children = [c["id"] for c in family["children"]]
        activities = retrying(lambda: self.parent.call(
            "GET", f"/api/reservations/communes/{C}/activities")).json()["items"]
        by_code = {a["code"]: a["id"] for a in activities}
        self.slots = {"monthly": [], "prepaid": []}
        start = date.today() + timedelta(days=10)
        for child in children:
            for code, mode in (("REPAS", "monthly"), ("ETUDE", "monthly"), ("MATIN", "prepaid"),
                               ("SOIR", "prepaid")):
                calendar = retrying(lambda c=child, a=by_code[code]: self.parent.call(
                    "GET", f"/api/reservations/communes/{C}/children/{c}/calendar",
                    params={"activity": a, "from": start.isoformat(),
                            "to": (start + timedelta(days=240)).isoformat()})).json()
                for day in calendar["days"]:
                    for cell in day["activities"]:
                        if cell["can_book"] and cell["state"] == "available":
                            self.slots[mode].append((child, by_code[code], day["date"]))
        for mode in self.slots:  # interleave children and activities
            self.slots[mode].sort(key=lambda slot: (slot[2], slot[0], slot[1]))
        assert self.slots["monthly"] and self.slots["prepaid"], "aucun jour réservable"

    # the loop ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="fault-stream", daemon=True)
        self._thread.start()

    def join(self) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RETRY_FOR * 4)

    def run(self) -> None:
        kinds = itertools.cycle(("monthly_booking", "prepaid_booking", "request",
                                 "monthly_booking", "invoice_payment", "prepaid_booking"))
        while not self.stop.is_set():
            kind = next(kinds)
            mode = {"monthly_booking": "monthly", "prepaid_booking": "prepaid"}.get(kind)
            if mode and not self.slots[mode]:
                kind = "request"  # every bookable day is booked: other operations go on
            self.run_one(kind)
            self.stop.wait(PAUSE)

    def run_one(self, kind: str) -> Op:
        op = Op(kind=kind, key=uuid.uuid4().hex[:12], started=time.monotonic(),
                lost_notification=self.lose_notifications.is_set()
                and kind in ("prepaid_booking", "invoice_payment"))
        with self.lock:
            self.ops.append(op)
        try:
            getattr(self, kind)(op)
            if op.outcome == "pending":
                op.outcome = "accepted"
        except Retryable as exc:
            op.outcome, op.error = "unknown", str(exc)
        except Exception as exc:  # an unexpected answer: recorded, the stream goes on
            op.outcome, op.error = "refused", repr(exc)[:300]
        op.finished = time.monotonic()
        return op

    def accepted_since(self, when: float) -> bool:
        with self.lock:
            return any(op.outcome == "accepted" and op.started >= when for op in self.ops)

    # operations ----------------------------------------------------------------------------
    def _clear_basket(self) -> None:
        basket = retrying(lambda: self.parent.call(
            "GET", f"/api/reservations/communes/{C}/basket"), self.stop).json()
        for item in basket.get("items", []):
            retrying(lambda i=item: self.parent.call(
                "DELETE", f"/api/reservations/communes/{C}/basket/items/{i['id']}"), self.stop)

    def _book(self, op: Op, mode: str) -> dict:
        with self.lock:
            child, activity, day = self.slots[mode].pop(0)
        op.ids.update(child_id=child, activity_id=activity, date=day)
        self._clear_basket()
        added = self.parent.call("POST", f"/api/reservations/communes/{C}/basket/items",
                                 json={"child_id": child, "activity_id": activity,
                                       "dates": [day]})
        if added.status_code != 201:
            op.outcome, op.error = "refused", f"panier {added.status_code} {added.text[:200]}"
            return {}
        answer = retrying(lambda: self.parent.call(
            "POST", f"/api/reservations/communes/{C}/basket/checkout", json={}), self.stop)
        if answer.status_code != 200:
            op.outcome, op.error = "refused", f"validation {answer.status_code} {answer.text[:200]}"
            return {}
        body = answer.json()
        op.ids["basket_id"] = body.get("basket_id", "")
        return body

    def monthly_booking(self, op: Op) -> None:
        body = self._book(op, "monthly")
        if body and body.get("status") != "confirmed":
            op.outcome, op.error = "refused", f"statut {body.get('status')}"

    def prepaid_booking(self, op: Op) -> None:
        body = self._book(op, "prepaid")
        if not body:
            return
        if body.get("status") != "payment_required":
            op.outcome, op.error = "refused", f"statut {body.get('status')}"
            return
        op.ids["payment_id"] = body["payment_id"]
        self._pay(op, body["payment_url"])

    def invoice_payment(self, op: Op) -> None:
        # The agent's invoice has no idempotency key: never sent twice.
        created = self.agent.call("POST", f"/api/billing/communes/{C}/invoices", json={
            "family_id": self.family_id, "label": f"Sortie {op.key}",
            "lines": [{"label": f"Sortie {op.key}", "quantity": 1, "unit_price": "7.50"}]})
        if created.status_code != 201:
            op.outcome, op.error = "refused", f"facture {created.status_code}"
            return
        op.ids["invoice_id"] = created.json()["id"]
        started = retrying(lambda: self.parent.call("POST", "/api/billing/payments", json={
            "invoice_ids": [op.ids["invoice_id"]], "return_url": f"{self.base}/factures"}),
            self.stop)
        if started.status_code != 201:
            op.outcome, op.error = "refused", f"paiement {started.status_code}"
            return
        op.ids["payment_id"] = started.json()["payment_id"]
        self._pay(op, started.json()["payment_url"])

    def _pay(self, op: Op, url: str) -> None:
        """The bank's page: read its form, pay (the same decision if sent again)."""
        page = retrying(lambda: self.parent.call("GET", url), self.stop)
        token = re.search(r'name="token" value="([0-9a-f]+)"', page.text)
        if token is None:
            op.outcome, op.error = "refused", f"page de paiement {page.status_code}"
            return
        form = {"token": token.group(1), "action": "pay"}
        if op.lost_notification:
            form["deliver"] = "0"
        paid = retrying(lambda: self.parent.call("POST", url, data=form), self.stop)
        if paid.status_code != 303:
            op.outcome, op.error = "refused", f"paiement {paid.status_code}"

    def request(self, op: Op) -> None:
        categories = retrying(lambda: self.parent.call(
            "GET", f"/api/requests/communes/{C}/categories"), self.stop).json()["items"]
        category = next(c for c in categories
                        if c["label"] == "Autorisation de récupération d'un enfant")
        family = retrying(lambda: self.parent.call("GET", "/api/accounts/me/family"),
                          self.stop).json()
        fields = {"category": category["id"], "child": family["children"][0]["id"],
                  "person_name": f"Personne {op.key}", "relation": "voisine",
                  "phone": "0601020304",
                  "from": (date.today() + timedelta(days=7)).isoformat()}

        def send() -> requests.Response:
            return self.parent.call(
                "POST", f"/api/requests/communes/{C}/requests",
                headers={"Idempotency-Key": f"faults-{op.key}"},
                files={**{k: (None, v) for k, v in fields.items()},
                       "identity_document": ("identite.pdf", PDF, "application/pdf")})

        sent = retrying(send, self.stop)
        if sent.status_code not in (200, 201):
            op.outcome, op.error = "refused", f"demande {sent.status_code} {sent.text[:200]}"
            return
        op.ids["request_id"] = sent.json()["id"]
