"""What the bus-guarantee tests share: a probe service, a look at the broker, polling, a proxy.

The probe is a tiny test-only service: its own metadata (outbox, inbox, a ``communes`` table
for the producing side, an ``effects`` table for the consuming side), one handler for
``accounts.commune.created`` that inserts one ``effects`` row per handled event. ``effects``
has deliberately no unique key on the event id: only the inbox may absorb a duplicate.

The child-process entry points (``relay_that_dies``, ``consumer_child``) live here so that a
``spawn`` child can import them.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
from prometheus_client import REGISTRY
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

from services.common import outbox
from services.common.bus import EventConsumer, Handler, Publisher, Topology, connect
from services.common.db import Database
from services.common.events import Event
from services.common.outbox import OUTBOX, OutboxRelay
from tests.infra import pika_parameters

PROBE = "probe"
CREATED = "accounts.commune.created"
RETRY_DELAYS = (0.3, 0.6)
RELAY_DIED = 17  # exit code of the relay child that dies between publish and commit

METADATA = MetaData()
outbox.messaging_tables(METADATA)
COMMUNES = Table(
    "communes", METADATA,
    Column("id", String(36), primary_key=True),
    Column("name", Text, nullable=False),
)
EFFECTS = Table(
    "effects", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, index=True),  # not unique, on purpose
    Column("worker", String(60), nullable=False),
    Column("handled_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


# --- waiting -----------------------------------------------------------------------------------
def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, what: str = "condition",
             interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it is truthy (returned) or ``timeout`` passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"still waiting after {timeout:.0f} s for {what}"
                                 f" (last: {value!r})")
        time.sleep(interval)


def handled_total(outcome: str) -> float:
    """The probe consumer's EVENTS_HANDLED counter for ``outcome`` (this process only)."""
    return REGISTRY.get_sample_value(
        "portail_events_handled_total",
        {"service": PROBE, "type": CREATED, "outcome": outcome},
    ) or 0.0


# --- the probe service -------------------------------------------------------------------------
def probe_topology(prefix: str) -> Topology:
    return Topology(prefix=prefix, retry_delays=RETRY_DELAYS)


def commune_event(name: str = "Probeville", *, correlation_id: str | None = None) -> Event:
    commune_id = str(uuid.uuid4())
    return Event.new(
        CREATED,
        {
            "commune_id": commune_id,
            "slug": f"c-{commune_id[:8]}",
            "name": name,
            "settings": {"modules": ["reservations", "invoices"]},
        },
        producer="accounts",
        commune_id=commune_id,
        correlation_id=correlation_id,
    )


def effect_handler(worker: str = "main",
                   then: Callable[[Event, dict], None] | None = None) -> Handler:
    """Insert one effects row for the event, then call ``then`` (still inside the transaction)."""

    def handle(session, event: Event, data: dict) -> None:
        session.execute(EFFECTS.insert().values(event_id=event.id, worker=worker))
        if then is not None:
            then(event, data)

    return handle


class Probe:
    """One test's probe service: database tables, bus topology, and ways to look at both."""

    def __init__(self, pg_url: str, amqp_url: str, prefix: str):
        self.pg_url = pg_url
        self.amqp_url = amqp_url
        self.prefix = prefix
        self.topology = probe_topology(prefix)
        self.db = Database(pg_url)
        METADATA.create_all(self.db.engine)
        conn = connect(amqp_url)
        try:
            self.topology.declare(conn, PROBE, [CREATED])
        finally:
            conn.release()
        self._cleanups: list[Callable[[], None]] = []

    # names
    @property
    def exchange(self) -> str:
        return self.topology.exchange.name

    @property
    def queue(self) -> str:
        return self.topology.queue_name(PROBE)

    @property
    def dlq(self) -> str:
        return self.topology.dlq_name(PROBE)

    @property
    def retry_queues(self) -> list[str]:
        return [self.topology.retry_name(PROBE, n) for n in range(1, len(RETRY_DELAYS) + 1)]

    # producing side
    def emit(self, name: str = "Probeville", *, rollback: bool = False,
             correlation_id: str | None = None) -> Event:
        """State change and event in one transaction (rolled back when asked)."""
        event = commune_event(name, correlation_id=correlation_id)
        try:
            with self.db.transaction() as session:
                session.execute(COMMUNES.insert().values(id=event.data["commune_id"], name=name))
                outbox.add(session, event)
                if rollback:
                    raise _Rollback
        except _Rollback:
            pass
        return event

    def emit_many(self, count: int, name: str = "Probeville") -> list[Event]:
        events = [commune_event(f"{name} {n}") for n in range(count)]
        with self.db.transaction() as session:
            for event in events:
                session.execute(COMMUNES.insert().values(id=event.data["commune_id"],
                                                         name=event.data["name"]))
                outbox.add(session, event)
        return events

    def relay(self, amqp_url: str | None = None, **options) -> OutboxRelay:
        publisher = Publisher(amqp_url or self.amqp_url, self.topology)
        self._cleanups.append(publisher.close)
        return OutboxRelay(self.db, publisher, **options)

    def drain_outbox(self, relay: OutboxRelay, timeout: float = 10.0) -> None:
        wait_for(lambda: relay.run_once() == 0 and self.pending() == 0, timeout=timeout,
                 what="the outbox to be published")

    # consuming side
    def consumer(self, handler: Handler | None = None, amqp_url: str | None = None
                 ) -> EventConsumer:
        consumer = EventConsumer(
            amqp_url or self.amqp_url,
            service=PROBE,
            db=self.db,
            handlers={CREATED: handler or effect_handler()},
            topology=self.topology,
        )
        self._cleanups.append(consumer.connection.release)
        return consumer

    @contextmanager
    def running(self, *workers: EventConsumer | OutboxRelay) -> Iterator[None]:
        """Run consumers (``run_until``) and relays (``run``) in threads for the block."""
        stop = threading.Event()
        threads = []
        for worker in workers:
            target = worker.run_until if isinstance(worker, EventConsumer) else worker.run
            thread = threading.Thread(target=target, args=(stop,), daemon=True)
            thread.start()
            threads.append(thread)
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=15)
            assert not any(t.is_alive() for t in threads), "a bus worker thread did not stop"

    def settle(self, broker: Broker, timeout: float = 10.0) -> None:
        """Wait until the single running consumer got through everything queued before now.

        A sentinel goes to the back of the probe queue; one consumer handles its queue in
        order, so once the sentinel's effect exists every earlier message has been dealt with.
        """
        sentinel = commune_event("sentinel")
        broker.publish(sentinel, exchange="", routing_key=self.queue)
        wait_for(lambda: self.effects()[sentinel.id], timeout=timeout, what="the sentinel")

    # looking at the database
    def effects(self) -> Counter[str]:
        with self.db.sessions() as session:
            return Counter(session.scalars(select(EFFECTS.c.event_id)))

    def workers(self) -> Counter[str]:
        with self.db.sessions() as session:
            return Counter(session.scalars(select(EFFECTS.c.worker)))

    def effect_workers(self, event_id: str) -> list[str]:
        with self.db.sessions() as session:
            return list(session.scalars(
                select(EFFECTS.c.worker).where(EFFECTS.c.event_id == event_id)))

    def inbox(self) -> Counter[str]:
        with self.db.sessions() as session:
            return Counter(session.scalars(select(outbox.INBOX.c.event_id)))

    def outbox_ids(self) -> list[str]:
        with self.db.sessions() as session:
            return list(session.scalars(select(OUTBOX.c.event_id)))

    def pending(self) -> int:
        with self.db.sessions() as session:
            return outbox.pending_count(session)

    def failed_attempts(self) -> int:
        with self.db.sessions() as session:
            return session.scalar(select(func.coalesce(func.sum(OUTBOX.c.attempts), 0)))

    def close(self) -> None:
        for cleanup in reversed(self._cleanups):
            with suppress(Exception):
                cleanup()
        self.db.dispose()


class _Rollback(Exception):
    pass


# --- the broker as pika sees it ----------------------------------------------------------------
class Broker:
    """A plain pika connection to look at queues and to publish by hand."""

    def __init__(self, amqp_url: str, prefix: str):
        self.prefix = prefix
        self.connection = pika.BlockingConnection(pika_parameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()
        self._taps: list[str] = []

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those delivered and not yet acked)."""
        return self.channel.queue_declare(queue, passive=True).method.message_count

    def consumers(self, queue: str) -> int:
        return self.channel.queue_declare(queue, passive=True).method.consumer_count

    def tap(self, exchange: str, routing_key: str) -> str:
        """A side queue bound like the probe's: a copy of every message on the wire."""
        name = f"{self.prefix}wiretap.{len(self._taps)}"
        self.channel.queue_declare(name, durable=False)
        self.channel.queue_bind(name, exchange, routing_key=routing_key)
        self._taps.append(name)
        return name

    def take_all(self, queue: str) -> list[tuple[pika.spec.BasicProperties, dict | bytes]]:
        """Remove and return every ready message of ``queue`` (JSON bodies decoded)."""
        messages = []
        while True:
            method, props, body = self.channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            with suppress(ValueError):
                body = json.loads(body)
            messages.append((props, body))

    def publish(self, event: Event | bytes, *, exchange: str, routing_key: str) -> None:
        """Publish like the kit does (envelope and AMQP properties), or raw bytes."""
        if isinstance(event, Event):
            body = event.to_json().encode()
            props = pika.BasicProperties(
                content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                message_id=event.id, type=event.type, correlation_id=event.correlation_id,
                headers={"version": event.version, "producer": event.producer})
        else:
            body, props = event, pika.BasicProperties(delivery_mode=2)
        self.channel.basic_publish(exchange, routing_key, body, props, mandatory=True)

    def delete(self, queues: list[str], exchanges: list[str]) -> None:
        for name in queues:
            self.channel.queue_delete(name)
        for name in exchanges:
            self.channel.exchange_delete(name)

    def close(self) -> None:
        with suppress(Exception):
            self.delete(self._taps, [])
            self.connection.close()


# --- a TCP proxy that can be cut -------------------------------------------------------------
class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``cut()`` resets every connection and refuses
    new ones (accepts and resets them) until ``restore()``."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._up = True
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.accepted = 0
        self.refused = 0
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def url_for(self, amqp_url: str) -> str:
        """``amqp_url`` with its host and port replaced by the proxy's."""
        parts = urlsplit(amqp_url)
        credentials = parts.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{self.port}" if credentials else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                up = self._up
                if up:
                    self.accepted += 1
                else:
                    self.refused += 1
            if not up:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._sockets.discard(sock)
                _reset(sock)

    def cut(self) -> None:
        with self._lock:
            self._up = False
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self._up = True

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()
        self._thread.join(timeout=5)


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a dropped network path looks to the peer."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()


# --- child processes (multiprocessing, "spawn") --------------------------------------------------
def relay_that_dies(pg_url: str, amqp_url: str, prefix: str, die_after: int) -> None:
    """A relay whose process dies (``os._exit``) once ``die_after`` rows were published and
    confirmed, before its transaction marking them sent could commit."""
    db = Database(pg_url)
    publisher = Publisher(amqp_url, probe_topology(prefix))
    published = 0

    def publish(event: Event) -> None:
        nonlocal published
        publisher(event)  # returns once the broker confirmed
        published += 1
        if published == die_after:
            os._exit(RELAY_DIED)

    OutboxRelay(db, publish).run_once()
    os._exit(0)


def consumer_child(pg_url: str, amqp_url: str, prefix: str, worker: str, mode: str,
                   reached, stop) -> None:
    """A probe consumer in its own process.

    ``mode``: ``"normal"`` (runs until ``stop`` is set), ``"block_before_commit"`` (the handler
    inserts the effect, sets ``reached`` and hangs inside the transaction), or
    ``"block_after_commit"`` (the effects and inbox row are committed, then the process sets
    ``reached`` and hangs before acknowledging). The blocking modes wait to be killed.
    """
    db = Database(pg_url)

    def hang(*_args) -> None:
        reached.set()
        while True:
            time.sleep(60)

    then = hang if mode == "block_before_commit" else None
    if mode == "block_after_commit":
        db.on_commit("inbox", hang)
    consumer = EventConsumer(amqp_url, service=PROBE, db=db,
                             handlers={CREATED: effect_handler(worker, then)},
                             topology=probe_topology(prefix))
    halt = threading.Event()
    threading.Thread(target=lambda: (stop.wait(), halt.set()), daemon=True).start()
    consumer.run_until(halt)
