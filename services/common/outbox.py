"""Transactional outbox: events are rows written with the state change, published later.

A service never publishes from inside a request: it adds the event to its ``outbox`` table in
the transaction that changes its state, so the event exists if and only if the change was
committed. The relay (in the worker process) publishes pending rows with publisher confirms
and marks them sent; a crash between the two only means the row is published again, which the
consumers' inbox absorbs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from .db import Database, mark
from .events import Event
from .logging import get_logger

log = get_logger(__name__)

_meta = MetaData()

OUTBOX = Table(
    "outbox",
    _meta,
    # BigInteger autoincrements on PostgreSQL; SQLite only autoincrements INTEGER primary keys.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("type", String(120), nullable=False),
    Column("envelope", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
)

INBOX = Table(
    "inbox",
    _meta,
    Column("consumer", String(60), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("type", String(120), nullable=False),
    Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Copy the outbox and inbox tables into a service's own metadata (for its migrations)."""
    return OUTBOX.to_metadata(metadata), INBOX.to_metadata(metadata)


def add(session: Session, event: Event) -> Event:
    """Record ``event`` in the outbox of the transaction ``session`` belongs to."""
    session.execute(
        OUTBOX.insert().values(event_id=event.id, type=event.type, envelope=event.to_dict())
    )
    mark(session, "outbox")
    return event


class NotConfirmed(Exception):
    """A batch was not fully confirmed: its first ``confirmed`` events were, the rest may or
    may not have reached the broker (publishing them again is what the inbox absorbs)."""

    def __init__(self, confirmed: int, cause: BaseException | str):
        super().__init__(f"{confirmed} confirmés avant l'échec : {cause}")
        self.confirmed = confirmed


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OUTBOX).where(
        OUTBOX.c.published_at.is_(None)))


class OutboxRelay:
    """Publishes pending outbox rows in order; several relays may run against one database.

    ``publish`` must raise unless the broker confirmed the message; when it also has
    ``publish_batch(events)`` (the AMQP ``Publisher``), a claimed batch goes out in one call
    that raises ``NotConfirmed`` unless every event was confirmed. Rows are claimed with
    ``FOR UPDATE SKIP LOCKED`` so that two relays never publish the same batch at once.
    """

    def __init__(
        self,
        db: Database,
        publish: Callable[[Event], None],
        *,
        batch_size: int = 200,
        poll_interval: float = 0.1,
        max_backoff: float = 30.0,
    ):
        self.db = db
        self.publish = publish
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        # The wake-up below only reaches a relay in the process that committed; the web
        # processes' events are found by polling, so the interval bounds their added latency
        # (a claim on an empty outbox is one index probe).
        self.wakeup = threading.Event()
        # Woken only by units of work that wrote to the outbox: its own (marking rows sent)
        # must not wake it, or it would spin.
        db.on_commit("outbox", self.wakeup.set)

    def run_once(self) -> int:
        """Publish one batch; returns how many rows were published."""
        with self.db.transaction() as session:
            query = (
                select(OUTBOX.c.id, OUTBOX.c.envelope)
                .where(OUTBOX.c.published_at.is_(None))
                .order_by(OUTBOX.c.id)
                .limit(self.batch_size)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = session.execute(query).all()
            if not rows:
                return 0
            confirmed, failure = self._publish_rows(rows)
            published = [row.id for row in rows[:confirmed]]
            # What was confirmed is marked even when a later row failed, so that a broker dying
            # in the middle of a batch does not make the whole batch go out twice.
            if published:
                session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(published))
                    .values(published_at=datetime.now(UTC))
                )
            if failure is not None:
                session.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == rows[confirmed].id)
                    .values(attempts=OUTBOX.c.attempts + 1, last_error=str(failure)[:2000])
                )
        if failure is not None:
            raise failure
        return len(published)

    def _publish_rows(self, rows) -> tuple[int, Exception | None]:
        """Publish the claimed rows in order: (how many the broker confirmed, the failure)."""
        events = [Event.from_json(row.envelope) for row in rows]
        publish_batch = getattr(self.publish, "publish_batch", None)
        if publish_batch is not None:
            # One write of the whole batch and one wait for its confirms.
            try:
                publish_batch(events)
            except NotConfirmed as exc:
                return exc.confirmed, exc
            return len(events), None
        for n, event in enumerate(events):
            try:
                self.publish(event)
            except Exception as exc:
                return n, exc
        return len(events), None

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            try:
                count = self.run_once()
                backoff = 0.5
            except Exception as exc:  # the broker or the database is down: wait, retry
                log.warning("outbox_relay_failed", error=str(exc), retry_in=backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            if count < self.batch_size:
                self.wakeup.wait(self.poll_interval)
                self.wakeup.clear()


def wait_until_drained(db: Database, timeout: float = 10.0) -> bool:
    """True once every outbox row of ``db`` is published (used by tests and tools)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.sessions() as session:
            if pending_count(session) == 0:
                return True
        time.sleep(0.05)
    return False
