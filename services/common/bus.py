"""The bus of DESIGN section 4 on kombu: topology, confirmed publishing, reliable consuming.

RabbitMQ topology, per consuming service ``svc`` (names prefixed by ``BUS_PREFIX``):

- ``portail.events`` (topic): every event, routing key = event type;
- ``svc.events``: the service's queue, bound to the types it handles; a rejected message
  dead-letters to ``portail.dlx`` / ``svc.events.dlq``;
- ``svc.events.retry.N``: one queue per retry delay; a message waits there for the delay, then
  expires back into ``svc.events`` (through the default exchange);
- ``svc.events.dlq``: what failed for good, with the reason in its headers.

On kombu's ``memory://`` transport (embedded mode) there are no TTLs: a failed message is held
unacknowledged by the consumer for its delay and then put back, which keeps the same
at-least-once behaviour within the one process.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange, Producer, Queue
from kombu.mixins import ConsumerMixin
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from . import catalogue
from .db import Database, mark
from .events import Event, InvalidEnvelope
from .logging import bind_contextvars, clear_contextvars, get_logger
from .metrics import EVENTS_HANDLED, EVENTS_PUBLISHED
from .outbox import INBOX, NotConfirmed

log = get_logger(__name__)

Handler = Callable[[Session, Event, dict[str, Any]], None]

DEFAULT_RETRY_DELAYS = (1.0, 10.0, 60.0)


def database_unreachable(error: object) -> bool:
    """Whether ``error`` is the database connection failing (refused, cut, restarted), not
    something about the work itself (a deadlock, a constraint, a bug)."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    text = str(error.orig).lower()
    return isinstance(error, OperationalError) and (
        "connection" in text or "server closed" in text or "terminating" in text)


class PermanentError(Exception):
    """Raised by a handler when retrying can never help: the message goes to the DLQ at once."""


class BatchEventFailed(Exception):
    """The handler of item ``index`` of a batch raised ``error`` (the batch is rolled back)."""

    def __init__(self, index: int, error: Exception):
        super().__init__(f"événement {index} du lot : {error!r}")
        self.index = index
        self.error = error


def retry_delays_from_env() -> tuple[float, ...]:
    raw = os.environ.get("BUS_RETRY_DELAYS", "")
    if not raw:
        return DEFAULT_RETRY_DELAYS
    return tuple(float(x) for x in raw.split(",") if x.strip())


@dataclass(frozen=True)
class Topology:
    prefix: str = ""
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    queue_type: str = "quorum"

    @property
    def exchange(self) -> Exchange:
        return Exchange(f"{self.prefix}portail.events", type="topic", durable=True)

    @property
    def dlx(self) -> Exchange:
        return Exchange(f"{self.prefix}portail.dlx", type="direct", durable=True)

    def queue_name(self, service: str) -> str:
        return f"{self.prefix}{service}.events"

    def dlq_name(self, service: str) -> str:
        return f"{self.queue_name(service)}.dlq"

    def retry_name(self, service: str, attempt: int) -> str:
        return f"{self.queue_name(service)}.retry.{attempt}"

    def _args(self, **extra: Any) -> dict[str, Any]:
        args: dict[str, Any] = {"x-queue-type": self.queue_type}
        args.update(extra)
        return args

    def queue(self, service: str, routing_keys: list[str]) -> Queue:
        from kombu import binding

        return Queue(
            self.queue_name(service),
            bindings=[binding(self.exchange, routing_key=key) for key in sorted(routing_keys)],
            durable=True,
            queue_arguments=self._args(**{
                "x-dead-letter-exchange": self.dlx.name,
                "x-dead-letter-routing-key": self.dlq_name(service),
                # A message that keeps killing its consumer (redelivered without ever being
                # acked) is dead-lettered by the broker itself after this many deliveries.
                **({"x-delivery-limit": 20} if self.queue_type == "quorum" else {}),
            }),
        )

    def dlq(self, service: str) -> Queue:
        return Queue(self.dlq_name(service), exchange=self.dlx, routing_key=self.dlq_name(service),
                     durable=True, queue_arguments=self._args())

    def retry_queues(self, service: str) -> list[Queue]:
        return [
            Queue(
                self.retry_name(service, attempt),
                durable=True,
                queue_arguments=self._args(**{
                    "x-message-ttl": int(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.queue_name(service),
                }),
            )
            for attempt, delay in enumerate(self.retry_delays, start=1)
        ]

    def declare(self, connection: Connection, service: str | None = None,
                routing_keys: list[str] | None = None) -> None:
        """Declare the exchanges, and the queues of ``service`` when given (idempotent)."""
        with connection.channel() as channel:
            self.declare_on(channel, service, routing_keys)

    def declare_on(self, channel, service: str | None = None,
                   routing_keys: list[str] | None = None) -> None:
        self.exchange.bind(channel).declare()
        self.dlx.bind(channel).declare()
        if service is None:
            return
        for queue in [self.queue(service, routing_keys or []), self.dlq(service),
                      *self.retry_queues(service)]:
            queue.bind(channel).declare()


def connect(url: str, *, heartbeat: int = 30, confirm_publish: bool = True) -> Connection:
    """A kombu connection with publisher confirms and heartbeats (AMQP), or the memory bus.

    ``confirm_publish=False``: the channel does not wait after each publish; the caller turns
    confirms on itself and waits for them (``Publisher.publish_batch``).
    """
    if url.startswith("memory"):
        return Connection(url)
    return Connection(
        url,
        heartbeat=heartbeat,
        connect_timeout=5,
        transport_options={"confirm_publish": True} if confirm_publish else {},
    )


def uses_ttl(connection: Connection) -> bool:
    return connection.transport.driver_type == "amqp"


class Publisher:
    """Publishes envelopes to the topic exchange; returns only once the broker confirmed.

    On AMQP a batch is written in one go and its confirms are awaited once (the broker confirms
    a quorum queue's messages as its log is synced, so waiting per message costs one sync each).
    """

    def __init__(self, url: str, topology: Topology, *, confirm_timeout: float = 5.0):
        self.url = url
        self.topology = topology
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._amqp = not url.startswith("memory")
        # Publisher confirms on the AMQP channel: delivery tags count publishes from 1.
        self._sent = 0
        self._unconfirmed: set[int] = set()
        self._refused: set[int] = set()

    def _ensure(self) -> Producer:
        if self._producer is None:
            self._connection = connect(self.url, confirm_publish=False)
            self._connection.ensure_connection(max_retries=1, timeout=5)
            self.topology.declare(self._connection)
            channel = self._connection.channel()
            if self._amqp:
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
                channel.confirm_select()
                self._sent = 0
                self._unconfirmed.clear()
                self._refused.clear()
            self._producer = Producer(channel, exchange=self.topology.exchange)
        return self._producer

    def _settle(self, tag: int, multiple: bool) -> set[int]:
        done = {t for t in self._unconfirmed if t <= tag} if multiple else {tag}
        self._unconfirmed -= done
        return done

    def _on_ack(self, tag: int, multiple: bool) -> None:
        self._settle(tag, multiple)

    def _on_nack(self, tag: int, multiple: bool) -> None:
        self._refused |= self._settle(tag, multiple)

    def __call__(self, event: Event) -> None:
        try:
            self.publish_batch([event])
        except NotConfirmed as exc:
            raise (exc.__cause__ or exc) from None

    def publish_batch(self, events: list[Event]) -> None:
        """Publish ``events`` in order; return once the broker confirmed every one of them, or
        raise ``NotConfirmed`` telling how many of the first ones it did confirm."""
        tags: list[int] = []
        try:
            producer = self._ensure()
            for event in events:
                producer.publish(
                    event.to_json().encode(),
                    routing_key=event.type,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=event.id,
                    type=event.type,
                    correlation_id=event.correlation_id,
                    headers={"version": event.version, "producer": event.producer},
                    timeout=self.confirm_timeout,
                )
                if self._amqp:
                    self._sent += 1
                    tags.append(self._sent)
                    self._unconfirmed.add(self._sent)
            self._wait_confirms(tags)
        except Exception as exc:
            # Whatever went wrong, the next publish starts from a fresh connection.
            confirmed = self._confirmed_prefix(tags) if self._amqp else 0
            self.close()
            raise NotConfirmed(confirmed, exc) from exc
        for event in events:
            EVENTS_PUBLISHED.labels(event.producer, event.type).inc()

    def _wait_confirms(self, tags: list[int]) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        pending = set(tags)
        while pending & self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("pas de confirmation du broker à temps")
            try:
                self._connection.drain_events(timeout=remaining)
            except TimeoutError:
                continue  # socket.timeout: the deadline check above decides
        refused = pending & self._refused
        if refused:
            raise RuntimeError(f"le broker a refusé {len(refused)} message(s)")

    def _confirmed_prefix(self, tags: list[int]) -> int:
        count = 0
        for tag in tags:
            if tag in self._unconfirmed or tag in self._refused:
                break
            count += 1
        return count

    def close(self) -> None:
        if self._connection is not None:
            # A broken connection may fail to release; there is nothing more to free then.
            with contextlib.suppress(Exception):
                self._connection.release()
        self._connection = None
        self._producer = None


@dataclass
class _Held:
    due: float
    message: Any
    attempt: int


@dataclass
class EventConsumer(ConsumerMixin):
    """Consumes one service's queue: validate, handle once (inbox), retry, dead-letter.

    Effects and the inbox row are committed together; the message is acknowledged only after
    that commit (or after it has been safely copied to a retry queue or the DLQ), so a crash at
    any point means a redelivery, and a redelivery means nothing new.
    """

    url: str
    service: str
    db: Database
    handlers: dict[str, Handler]
    topology: Topology
    prefetch: int = 256
    # Up to this many messages already delivered are handled in one transaction (one commit,
    # one WAL sync and one inbox statement for the lot); 1 handles each message in a
    # transaction of its own. Only on AMQP with PostgreSQL: the memory bus holds messages for
    # their retry delay, and SQLite writers would wait on each other's longer transactions.
    batch_size: int = 100
    heartbeat_file: Path | None = None
    # Seconds before a message is put back while the service's database is unreachable.
    database_pause: float = 2.0
    should_stop: bool = False
    _held: list[_Held] = field(default_factory=list)
    _batch: list[Any] = field(default_factory=list)
    _schemas: dict[tuple[str, int], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.connection = connect(self.url)
        self._batched = (self.batch_size > 1 and uses_ttl(self.connection)
                         and not self.db.is_sqlite)

    # kombu's ConsumerMixin API -------------------------------------------------------------
    def get_consumers(self, consumer_cls, channel):
        # On the channel kombu consumes from (a clone of self.connection), so that no second,
        # heartbeat-less connection is opened just to declare.
        self.topology.declare_on(channel, self.service, list(self.handlers))
        return [consumer_cls(
            queues=[self.topology.queue(self.service, list(self.handlers))],
            on_message=self.on_message,
            prefetch_count=self.prefetch,
            no_ack=False,
        )]

    def on_iteration(self) -> None:
        self._release_due()
        if self.heartbeat_file is not None:
            self.heartbeat_file.touch()

    def consume(self, limit=None, timeout=None, safety_interval=1, **kwargs):
        """kombu's loop, but what arrived together is handled together (see ``batch_size``)."""
        if not self._batched:
            yield from super().consume(limit=limit, timeout=timeout,
                                       safety_interval=safety_interval, **kwargs)
            return
        with self.consumer_context(**kwargs) as (conn, _channel, _consumers):
            while not self.should_stop:
                self.on_iteration()
                try:
                    conn.drain_events(timeout=safety_interval)
                except TimeoutError:
                    conn.heartbeat_check()
                    continue
                except OSError:
                    if not self.should_stop:
                        raise
                    continue
                # The messages the broker has already sent join the batch, without waiting.
                while len(self._batch) < self.batch_size:
                    try:
                        conn.drain_events(timeout=0)
                    except TimeoutError:
                        break
                self._flush()
                yield

    def on_connection_revived(self) -> None:
        # Messages held for a retry, or gathered for a batch, belonged to the dead channel: the
        # broker redelivers them.
        self._held.clear()
        self._batch.clear()
        log.info("bus_connected", service=self.service)

    def on_connection_error(self, exc, interval) -> None:
        log.warning("bus_connection_lost", service=self.service, error=str(exc),
                    retry_in=interval)

    # handling ------------------------------------------------------------------------------
    def on_message(self, message) -> None:
        if self._batched:
            self._batch.append(message)
            return
        prepared = self._prepare(message)
        if prepared is not None:
            self._process(message, *prepared)

    def _prepare(self, message) -> tuple[Event, dict[str, Any], Handler] | None:
        """The event, its validated data and its handler; None when the message was settled
        here (invalid: dead-lettered; no handler: acknowledged)."""
        try:
            event = Event.from_json(message.body)
        except InvalidEnvelope as exc:
            self._dead_letter(message, f"enveloppe invalide : {exc}")
            return None
        self._bind(event)
        handler = self.handlers.get(event.type)
        if handler is None:
            log.info("event_ignored", reason="no handler")
            message.ack()
            return None
        try:
            # One schema per type and version for the consumer's life: building it costs as
            # much as the check itself (a sixth of the consumer's time in the profile).
            key = (event.type, event.version)
            schema = self._schemas.get(key)
            if schema is None:
                schema = self._schemas[key] = catalogue.schema_for(event.type, event.version)
            data = catalogue.validate(event.type, event.version, event.data, strict=False,
                                      schema=schema)
        except catalogue.InvalidEvent as exc:
            self._dead_letter(message, f"données invalides : {exc.errors}")
            return None
        return event, data, handler

    def _bind(self, event: Event) -> None:
        clear_contextvars()
        bind_contextvars(event_id=event.id, event_type=event.type,
                         correlation_id=event.correlation_id, service=self.service)

    def _process(self, message, event: Event, data: dict[str, Any], handler: Handler) -> None:
        """One message in a transaction of its own."""
        try:
            outcome: str | Exception = self.handle(event, data, handler)
        except Exception as exc:
            outcome = exc
        self._finish(message, event, outcome)

    def _finish(self, message, event: Event, outcome: str | Exception) -> None:
        """Acknowledge a handled message, or send a failed one to a retry queue or the DLQ."""
        if isinstance(outcome, PermanentError):
            self._dead_letter(message, f"refus définitif : {outcome}")
        elif database_unreachable(outcome):
            # Fix (found by the fault suite: a PostgreSQL restart dead-lettered the events
            # that arrived meanwhile, and their e-mails were never sent): the service's own
            # database being away says nothing about the event, so it does not use up the
            # event's retries. It goes back to the queue after a pause, until the database
            # is back.
            log.warning("event_deferred_database_unreachable", error=repr(outcome)[:300])
            time.sleep(self.database_pause)
            message.requeue()
        elif isinstance(outcome, Exception):
            log.warning("event_handler_failed", error=repr(outcome))
            self._retry(message, str(outcome))
        else:
            EVENTS_HANDLED.labels(self.service, event.type, outcome).inc()
            message.ack()

    def _flush(self) -> None:
        batch, self._batch = self._batch, []
        ready = []
        for message in batch:
            prepared = self._prepare(message)
            if prepared is not None:
                ready.append((message, *prepared))
        while len(ready) > 1:
            try:
                outcomes = self.handle_batch([(event, data, handler)
                                              for _, event, data, handler in ready])
            except BatchEventFailed as failed:
                # Nothing of the batch was committed. The failing event goes to a retry queue
                # or the DLQ, as it would alone (its handler ran once for this delivery); the
                # others are handled again without it (their first run left no trace).
                message, event, _data, _handler = ready.pop(failed.index)
                self._bind(event)
                self._finish(message, event, failed.error)
                continue
            except Exception as exc:
                # The transaction failed as a whole (database away, commit refused): each
                # message is taken again in a transaction of its own, as without batching.
                # Should the commit have gone through after all, the inbox makes duplicates.
                log.warning("event_batch_failed", error=repr(exc), size=len(ready))
                break
            # Acknowledged only now that the batch is committed.
            for (message, event, _data, _handler), outcome in zip(ready, outcomes, strict=True):
                self._bind(event)
                self._finish(message, event, outcome)
            return
        for item in ready:
            self._process(*item)

    def handle_batch(self, items: list[tuple[Event, dict[str, Any], Handler]]) -> list[str]:
        """Run each handler once per event id, all in one transaction: returns, per item,
        "handled" or "duplicate". Nothing is committed when anything fails; a failing handler
        raises ``BatchEventFailed`` telling which item it was."""
        outcomes: list[str] = []
        with self.db.transaction() as session:
            rows = {event.id: {"consumer": self.service, "event_id": event.id,
                               "type": event.type} for event, _data, _handler in items}
            # One statement for the batch's inbox rows. As in handle(), a concurrent delivery
            # of the same id waits on its key; a conflict, then or now, means handled already.
            fresh = set(session.scalars(
                pg_insert(INBOX).values(list(rows.values()))
                .on_conflict_do_nothing().returning(INBOX.c.event_id)))
            for event, data, handler in items:
                if event.id not in fresh:
                    outcomes.append("duplicate")
                    continue
                fresh.discard(event.id)  # a second copy further in this batch is a duplicate
                self._bind(event)
                try:
                    handler(session, event, data)
                except Exception as exc:
                    raise BatchEventFailed(len(outcomes), exc) from exc
                outcomes.append("handled")
            if "handled" in outcomes:
                mark(session, "inbox")
        for (event, _data, _handler), outcome in zip(items, outcomes, strict=True):
            self._bind(event)
            log.info("event_handled" if outcome == "handled" else "event_duplicate")
        return outcomes

    def handle(self, event: Event, data: dict[str, Any], handler: Handler) -> str:
        """Run ``handler`` once per event id: returns "handled" or "duplicate"."""
        try:
            with self.db.transaction() as session:
                # Inserted first: a concurrent delivery of the same id blocks on this key and
                # then fails, instead of applying the effects a second time.
                session.execute(INBOX.insert().values(
                    consumer=self.service, event_id=event.id, type=event.type))
                session.flush()
                mark(session, "inbox")
                handler(session, event, data)
        except IntegrityError:
            if self._already_handled(event.id):
                log.info("event_duplicate")
                return "duplicate"
            raise  # a conflict in the handler's own effects: worth another try
        log.info("event_handled")
        return "handled"

    def _already_handled(self, event_id: str) -> bool:
        with self.db.sessions() as session:
            return session.execute(
                INBOX.select().where(INBOX.c.consumer == self.service,
                                     INBOX.c.event_id == event_id)
            ).first() is not None

    # retry and dead-letter -----------------------------------------------------------------
    def _attempt(self, message) -> int:
        return int((message.headers or {}).get("x-retries", 0))

    def _copy(self, message, *, exchange: str, routing_key: str, headers: dict) -> None:
        props = message.properties or {}
        # The consuming channel itself: it is kept alive by the consumer's heartbeats, and the
        # copy is confirmed on it before the original is acknowledged on it.
        producer = Producer(message.channel)
        # The key the event was first routed with (its type). A retried message comes back
        # through the default exchange keyed by the queue name, so the first copy records the
        # key and later copies keep it: the DLQ then always shows the event's own routing key.
        original_key = ((message.headers or {}).get("x-original-routing-key")
                        or message.delivery_info.get("routing_key"))
        producer.publish(
            message.body,
            exchange=exchange,
            routing_key=routing_key,
            content_type=message.content_type or "application/json",
            content_encoding=message.content_encoding or "utf-8",
            delivery_mode=2,
            headers={**(message.headers or {}), "x-original-routing-key": original_key,
                     **headers},
            message_id=props.get("message_id"),
            type=props.get("type"),
            correlation_id=props.get("correlation_id"),
            confirm_timeout=5,
        )

    def _retry(self, message, reason: str) -> None:
        attempt = self._attempt(message) + 1
        if attempt > len(self.topology.retry_delays):
            self._dead_letter(message, f"échec après {attempt - 1} nouvelles tentatives : {reason}")
            return
        EVENTS_HANDLED.labels(self.service, _type_of(message), "retry").inc()
        if uses_ttl(self.connection):
            self._copy(message, exchange="",
                       routing_key=self.topology.retry_name(self.service, attempt),
                       headers={"x-retries": attempt, "x-last-error": reason[:500]})
            message.ack()
        else:
            delay = self.topology.retry_delays[attempt - 1]
            self._held.append(_Held(time.monotonic() + delay, message, attempt))

    def _release_due(self) -> None:
        now = time.monotonic()
        due = [h for h in self._held if h.due <= now]
        for held in due:
            self._copy(held.message, exchange="",
                       routing_key=self.topology.queue_name(self.service),
                       headers={"x-retries": held.attempt})
            held.message.ack()
            self._held.remove(held)

    def _dead_letter(self, message, reason: str) -> None:
        log.error("event_dead_lettered", reason=reason)
        EVENTS_HANDLED.labels(self.service, _type_of(message), "dead_lettered").inc()
        self._copy(message, exchange=self.topology.dlx.name,
                   routing_key=self.topology.dlq_name(self.service),
                   headers={"x-death-reason": reason[:1000]})
        message.ack()

    def run_until(self, stop: threading.Event) -> None:
        watcher = threading.Thread(target=self._watch_stop, args=(stop,), daemon=True)
        watcher.start()
        self.run()

    def _watch_stop(self, stop: threading.Event) -> None:
        stop.wait()
        self.should_stop = True


def _type_of(message) -> str:
    props = message.properties or {}
    kind = props.get("type")
    if kind:
        return str(kind)
    try:
        return str(json.loads(message.body).get("type", "?"))
    except Exception:
        return "?"
