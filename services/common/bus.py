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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import catalogue
from .db import Database, mark
from .events import Event, InvalidEnvelope
from .logging import bind_contextvars, clear_contextvars, get_logger
from .metrics import EVENTS_HANDLED, EVENTS_PUBLISHED
from .outbox import INBOX

log = get_logger(__name__)

Handler = Callable[[Session, Event, dict[str, Any]], None]

DEFAULT_RETRY_DELAYS = (1.0, 10.0, 60.0)


class PermanentError(Exception):
    """Raised by a handler when retrying can never help: the message goes to the DLQ at once."""


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


def connect(url: str, *, heartbeat: int = 30) -> Connection:
    """A kombu connection with publisher confirms and heartbeats (AMQP), or the memory bus."""
    if url.startswith("memory"):
        return Connection(url)
    return Connection(
        url,
        heartbeat=heartbeat,
        connect_timeout=5,
        transport_options={"confirm_publish": True},
    )


def uses_ttl(connection: Connection) -> bool:
    return connection.transport.driver_type == "amqp"


class Publisher:
    """Publishes envelopes to the topic exchange; returns only once the broker confirmed."""

    def __init__(self, url: str, topology: Topology, *, confirm_timeout: float = 5.0):
        self.url = url
        self.topology = topology
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ensure(self) -> Producer:
        if self._producer is None:
            self._connection = connect(self.url)
            self._connection.ensure_connection(max_retries=1, timeout=5)
            self.topology.declare(self._connection)
            self._producer = Producer(self._connection.channel(), exchange=self.topology.exchange)
        return self._producer

    def __call__(self, event: Event) -> None:
        try:
            producer = self._ensure()
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
                confirm_timeout=self.confirm_timeout,
                timeout=self.confirm_timeout,
            )
        except Exception:
            # Whatever went wrong, the next publish starts from a fresh connection.
            self.close()
            raise
        EVENTS_PUBLISHED.labels(event.producer, event.type).inc()

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
    prefetch: int = 16
    heartbeat_file: Path | None = None
    should_stop: bool = False
    _held: list[_Held] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.connection = connect(self.url)

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

    def on_connection_revived(self) -> None:
        # Messages held for a retry belonged to the dead channel: the broker redelivers them.
        self._held.clear()
        log.info("bus_connected", service=self.service)

    def on_connection_error(self, exc, interval) -> None:
        log.warning("bus_connection_lost", service=self.service, error=str(exc),
                    retry_in=interval)

    # handling ------------------------------------------------------------------------------
    def on_message(self, message) -> None:
        try:
            event = Event.from_json(message.body)
        except InvalidEnvelope as exc:
            self._dead_letter(message, f"enveloppe invalide : {exc}")
            return
        clear_contextvars()
        bind_contextvars(event_id=event.id, event_type=event.type,
                         correlation_id=event.correlation_id, service=self.service)
        handler = self.handlers.get(event.type)
        if handler is None:
            log.info("event_ignored", reason="no handler")
            message.ack()
            return
        try:
            data = catalogue.validate(event.type, event.version, event.data, strict=False)
        except catalogue.InvalidEvent as exc:
            self._dead_letter(message, f"données invalides : {exc.errors}")
            return
        try:
            outcome = self.handle(event, data, handler)
        except PermanentError as exc:
            self._dead_letter(message, f"refus définitif : {exc}")
            return
        except Exception as exc:
            log.warning("event_handler_failed", error=repr(exc))
            self._retry(message, str(exc))
            return
        EVENTS_HANDLED.labels(self.service, event.type, outcome).inc()
        message.ack()

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
