"""After the faults: drain, then check every operation against the databases and the bus.

Per operation the client was told succeeded (``accepted``): it exists exactly once in its
final state (a booking confirmed, a payment and its invoice paid, a request with its
document). Per operation without an answer (``unknown``): at most once. Across the suite:
every outbox row published, every event a service consumes recorded in its inbox, the
dead-letter queues empty (or each message listed), every e-mail recorded sent and found in
the mailbox (a second copy with the same Message-ID is counted as a duplicate).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from pathlib import Path

from sqlalchemy import create_engine, text

from services.accounts.events import HANDLERS as ACCOUNTS
from services.billing.events import HANDLERS as BILLING
from services.notifications.events import HANDLERS as NOTIFICATIONS
from services.requests.events import HANDLERS as REQUESTS
from services.reservations.events import HANDLERS as RESERVATIONS
from tests import infra
from tests.faults.stream import Op

CONSUMED = {"accounts": set(ACCOUNTS), "reservations": set(RESERVATIONS),
            "billing": set(BILLING), "requests": set(REQUESTS),
            "notifications": set(NOTIFICATIONS)}


@dataclass
class Verdict:
    op: Op
    found: int  # how many times it exists
    done: bool  # in its final state (paid, confirmed...)

    @property
    def lost(self) -> bool:
        return self.op.outcome == "accepted" and (self.found == 0 or not self.done)

    @property
    def duplicated(self) -> bool:
        return self.found > 1


@dataclass
class Report:
    verdicts: list[Verdict] = field(default_factory=list)
    unpublished: dict[str, int] = field(default_factory=dict)
    not_consumed: dict[str, list[str]] = field(default_factory=dict)
    dead_letters: dict[str, list[str]] = field(default_factory=dict)
    mail_not_sent: list[str] = field(default_factory=list)
    mail_missing: list[str] = field(default_factory=list)
    mail_duplicates: dict[str, int] = field(default_factory=dict)
    drained_in: float = 0.0

    @property
    def lost(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.lost]

    @property
    def duplicated(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.duplicated]

    def problems(self) -> list[str]:
        out = [f"perdue : {v.op.kind} {v.op.key} {v.op.ids} (trouvée {v.found} fois, "
               f"terminée : {v.done})" for v in self.lost]
        out += [f"en double : {v.op.kind} {v.op.key} {v.op.ids} ({v.found} fois)"
                for v in self.duplicated]
        out += [f"{db} : {n} événements jamais publiés" for db, n in self.unpublished.items()
                if n]
        out += [f"{svc} n'a pas traité {ids[:5]}…" for svc, ids in self.not_consumed.items()
                if ids]
        out += [f"file des lettres mortes {q} : {msgs}" for q, msgs in self.dead_letters.items()
                if msgs]
        out += [f"courriel jamais envoyé : {m}" for m in self.mail_not_sent]
        out += [f"courriel absent de la boîte : {m}" for m in self.mail_missing]
        return out


class Checker:
    def __init__(self, topology, family_id: str):
        self.topology = topology
        self.family_id = family_id
        self.engines = {
            name: create_engine(topology.env[f"{name.upper()}_DATABASE_URL"], pool_size=2,
                                pool_pre_ping=True)
            for name in ("accounts", "reservations", "billing", "requests", "notifications")}

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def scalar(self, db: str, sql: str, **params):
        with self.engines[db].connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, db: str, sql: str, **params) -> list:
        with self.engines[db].connect() as conn:
            return list(conn.execute(text(sql), params))

    # draining ------------------------------------------------------------------------------
    def backlog(self) -> int:
        """Work still in flight: unpublished events, unsent e-mails, queued messages."""
        return sum(self.backlog_parts().values())

    def backlog_parts(self, before: datetime | None = None) -> dict[str, int]:
        """In flight, by kind; with ``before``, only the events and e-mails recorded before
        then (while the stream goes on, new ones are always in flight)."""
        since = " AND created_at < :before" if before is not None else ""
        parts = {f"outbox {db}": self.scalar(
            db, "SELECT count(*) FROM outbox WHERE published_at IS NULL" + since,
            before=before) for db in self.engines}
        parts["courriels en attente"] = self.scalar(
            "notifications", "SELECT count(*) FROM messages WHERE status = 'pending'" + since,
            before=before)
        if before is None:
            parts.update(self.queue_depths())
        return {name: count for name, count in parts.items() if count}

    def queue_depths(self) -> dict[str, int]:
        import pika

        depths = {}
        conn = pika.BlockingConnection(infra.pika_parameters(self.topology.amqp_url))
        try:
            channel = conn.channel()
            for svc in CONSUMED:
                base = f"{self.topology.prefix}{svc}.events"
                for name in (base, *(f"{base}.retry.{i}" for i in (1, 2, 3))):
                    try:
                        depths[name] = channel.queue_declare(
                            name, passive=True).method.message_count
                    except Exception:  # no such queue (fewer retries): the channel closed
                        channel = conn.channel()
        finally:
            conn.close()
        return depths

    def drain(self, ops: list[Op], timeout: float) -> float:
        """Wait until nothing is in flight and every accepted operation is done."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            try:
                if self.backlog() == 0 and not [v for v in self.verdicts(ops) if v.lost]:
                    return time.monotonic() - started
            except Exception:  # a server still coming back
                pass
            time.sleep(1.0)
        return time.monotonic() - started

    # per operation -------------------------------------------------------------------------
    def verdicts(self, ops: list[Op]) -> list[Verdict]:
        return [self.verdict(op) for op in ops if op.outcome in ("accepted", "unknown")]

    def verdict(self, op: Op) -> Verdict:
        ids = op.ids
        if op.kind in ("monthly_booking", "prepaid_booking"):
            if "date" not in ids:
                return Verdict(op, 0, False)
            rows = self.rows("reservations", """
                SELECT status FROM bookings WHERE child_id = :c AND activity_id = :a
                AND date = :d AND status IN ('pending_payment', 'confirmed')""",
                             c=ids["child_id"], a=ids["activity_id"], d=ids["date"])
            done = bool(rows) and all(r.status == "confirmed" for r in rows)
            if op.kind == "prepaid_booking" and ids.get("payment_id"):
                done = done and self.payment_paid(ids["payment_id"])
                # one payment and one invoice per basket
                payments = self.scalar("billing", "SELECT count(*) FROM payments "
                                       "WHERE basket_id = :b", b=ids["basket_id"])
                invoices = self.scalar("billing", "SELECT count(*) FROM invoices "
                                       "WHERE basket_id = :b", b=ids["basket_id"])
                return Verdict(op, max(len(rows), payments, invoices), done)
            return Verdict(op, len(rows), done)
        if op.kind == "invoice_payment":
            found = self.scalar("billing", "SELECT count(*) FROM invoices WHERE label = :l",
                                l=f"Sortie {op.key}")
            done = found > 0 and self.scalar(
                "billing", "SELECT count(*) FROM invoices WHERE label = :l AND status = 'paid'",
                l=f"Sortie {op.key}") > 0
            return Verdict(op, found, done)
        if op.kind == "request":
            rows = self.rows("requests", "SELECT id FROM requests WHERE family_id = :f AND "
                             "idempotency_key = :k", f=self.family_id, k=f"faults-{op.key}")
            done = bool(rows) and self.scalar(
                "requests", "SELECT count(*) FROM documents WHERE request_id = :r",
                r=rows[0].id) == 1
            return Verdict(op, len(rows), done)
        raise ValueError(op.kind)

    def payment_paid(self, payment_id: str) -> bool:
        return self.scalar("billing", "SELECT status FROM payments WHERE id = :p",
                           p=payment_id) == "paid"

    # across the suite ----------------------------------------------------------------------
    def report(self, ops: list[Op], mailbox: Path) -> Report:
        report = Report(verdicts=self.verdicts(ops))
        for db in self.engines:
            report.unpublished[db] = self.scalar(
                db, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        events = {db: self.rows(db, "SELECT event_id, type FROM outbox")
                  for db in self.engines}
        for consumer, types in CONSUMED.items():
            handled = {r.event_id for r in self.rows(
                consumer, "SELECT event_id FROM inbox WHERE consumer = :c", c=consumer)}
            report.not_consumed[consumer] = [
                f"{row.type} {row.event_id}" for producer, rows in events.items()
                if producer != consumer for row in rows
                if row.type in types and row.event_id not in handled]
        report.dead_letters = self.dead_letters()
        for row in self.rows("notifications", "SELECT id, status, kind, last_error FROM "
                             "messages"):
            if row.status != "sent":
                report.mail_not_sent.append(f"{row.kind} {row.id} {row.status} "
                                            f"{(row.last_error or '')[:80]}")
        sent = {r.id for r in self.rows("notifications",
                                        "SELECT id FROM messages WHERE status = 'sent'")}
        copies = Counter(mailbox_ids(mailbox))
        report.mail_missing = sorted(sent - set(copies))
        report.mail_duplicates = {mid: n for mid, n in copies.items() if n > 1}
        return report

    def dead_letters(self) -> dict[str, list[str]]:
        """Each dead-lettered message, with its type and why (then put back)."""
        import pika

        found: dict[str, list[str]] = {}
        conn = pika.BlockingConnection(infra.pika_parameters(self.topology.amqp_url))
        try:
            channel = conn.channel()
            for svc in CONSUMED:
                name = f"{self.topology.prefix}{svc}.events.dlq"
                try:
                    count = channel.queue_declare(name, passive=True).method.message_count
                except Exception:
                    channel = conn.channel()
                    continue
                messages = []
                for _ in range(count):
                    method, props, _body = channel.basic_get(name, auto_ack=False)
                    if method is None:
                        break
                    reason = (props.headers or {}).get("x-death-reason", "?")
                    messages.append(f"{props.type} {props.message_id} : {reason}")
                channel.basic_recover(requeue=True)
                found[name] = messages
        finally:
            conn.close()
        return found


def mailbox_ids(folder: Path) -> list[str]:
    """The Message-ID local part of every mail in the Maildir (``new`` and ``cur``)."""
    ids = []
    for sub in ("new", "cur"):
        for path in (folder / sub).glob("*") if (folder / sub).exists() else []:
            with open(path, "rb") as handle:
                header = message_from_bytes(handle.read()).get("Message-ID", "")
            ids.append(header.strip("<>").split("@")[0])
    return ids
