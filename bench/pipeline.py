"""Scenario 2, the event pipeline: outbox -> relay -> RabbitMQ -> consumer -> inbox.

    python -m bench pipeline [--quick]

On the real PostgreSQL and RabbitMQ (two scratch databases, a bus prefix of its own, all
removed at the end), a producer commits business transactions (a ``communes`` row and its
outbox row in one commit, as the services do). ONE relay process publishes the outbox
(``OutboxRelay`` + ``Publisher`` with their production defaults) and ONE consumer process
handles the queue (``EventConsumer`` as built by ``Runtime.consumer()``): its handler inserts a
small ``effects`` row, committed with the inbox row. Both are separate processes, like
``portail worker`` of two services.

1. Backlog: N events are committed while the workers are idle, then the relay and consumer
   are told to go; throughput = N / (go -> last handler commit).
2. Fixed rate: 1,000 events/s offered for ~20 s with the workers running; latency = the
   consumer's commit time minus the producer's commit time, per event.
3. Baseline, same run, same broker: raw pika, the same payloads, publisher confirms (async,
   windowed) on a quorum queue, a consumer process with manual acks.

Correctness afterwards (violations fail the run, quick mode too): every event handled exactly
once (effects == events, no duplicate, none missing), the inbox likewise, the outbox fully
marked sent, the queue, its retry queues and its DLQ empty.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import psycopg
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url

from bench import infra, report
from services.common import outbox
from services.common.bus import EventConsumer, Publisher, Topology, connect
from services.common.db import Database
from services.common.events import Event
from services.common.logging import configure_logging
from services.common.outbox import OutboxRelay

SERVICE = "benchsink"  # the consuming service's name: queue <prefix>benchsink.events
TYPE = "accounts.commune.created"
SPAWN = multiprocessing.get_context("spawn")

PRODUCER_META = MetaData()
outbox.OUTBOX.to_metadata(PRODUCER_META)
COMMUNES = Table(
    "communes", PRODUCER_META,
    Column("id", String(36), primary_key=True),
    Column("name", Text, nullable=False),
)
CONSUMER_META = MetaData()
outbox.INBOX.to_metadata(CONSUMER_META)
EFFECTS = Table(
    "effects", CONSUMER_META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Deliberately not unique: only the inbox may absorb a duplicate, and the check counts.
    Column("event_id", String(36), nullable=False, index=True),
    Column("name", Text, nullable=False),
)


# --- scratch resources ------------------------------------------------------------------------
def _admin_url(server: str) -> str:
    return make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server: str, name: str) -> str:
    with psycopg.connect(_admin_url(server), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(server).set(drivername="postgresql+psycopg", database=name) \
        .render_as_string(hide_password=False)


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(_admin_url(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pika_parameters(amqp_url: str):
    # pika reads kombu's "//" (the "/" virtual host) as an empty vhost: let kombu parse it.
    import pika
    from kombu import Connection

    conn = Connection(amqp_url)
    return pika.ConnectionParameters(
        host=conn.hostname, port=conn.port or 5672, virtual_host=conn.virtual_host or "/",
        credentials=pika.PlainCredentials(conn.userid or "guest", conn.password or "guest"))


class BrokerView:
    """A pika connection to look at (and finally delete) the scenario's queues; reopened when
    the broker dropped it (a blocking connection misses heartbeats while the bench waits)."""

    def __init__(self, amqp_url: str):
        self.amqp_url = amqp_url
        self.connection = None
        self._channel = None

    @property
    def channel(self):
        import pika

        if self.connection is None or self.connection.is_closed or self._channel.is_closed:
            self.close()
            self.connection = pika.BlockingConnection(pika_parameters(self.amqp_url))
            self._channel = self.connection.channel()
        return self._channel

    def _declare(self, queue: str):
        import pika

        try:
            return self.channel.queue_declare(queue, passive=True).method
        except pika.exceptions.AMQPConnectionError:
            self.close()
            return self.channel.queue_declare(queue, passive=True).method

    def depth(self, queue: str) -> int:
        return self._declare(queue).message_count

    def consumers(self, queue: str) -> int:
        return self._declare(queue).consumer_count

    def delete(self, queues: list[str], exchanges: list[str]) -> None:
        for name in queues:
            with suppress(Exception):
                self.channel.queue_delete(name)
        for name in exchanges:
            with suppress(Exception):
                self.channel.exchange_delete(name)

    def close(self) -> None:
        if self.connection is not None:
            with suppress(Exception):
                self.connection.close()
        self.connection = None


# --- the producing side -------------------------------------------------------------------------
def make_event(n: int) -> Event:
    commune_id = str(uuid.uuid4())
    return Event.new(TYPE, {"commune_id": commune_id, "slug": f"c-{commune_id[:8]}",
                            "name": f"Commune {n}",
                            "settings": {"modules": ["reservations", "invoices"]}},
                     producer="accounts", commune_id=commune_id)


def commit_one(db: Database, ev: Event) -> float:
    """One business transaction: the state change and its outbox row; returns the commit time."""
    with db.transaction() as session:
        session.execute(COMMUNES.insert().values(id=ev.data["commune_id"], name=ev.data["name"]))
        outbox.add(session, ev)
    return time.time()


def commit_backlog(db: Database, count: int, threads: int = 8) -> dict[str, float]:
    """``count`` events, one business transaction each, from a few threads (as web workers)."""
    stamps: dict[str, float] = {}
    events = [make_event(n) for n in range(count)]

    def work(chunk: list[Event]) -> None:
        for ev in chunk:
            stamps[ev.id] = commit_one(db, ev)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, [events[i::threads] for i in range(threads)]))
    return stamps


def commit_at_rate(db: Database, rate: float, seconds: float, threads: int = 8
                   ) -> tuple[dict[str, float], float]:
    """Offer ``rate`` events/s for ``seconds``: event k is due at start + k/rate.

    Returns the commit times and the achieved rate. A few threads so that one slow commit
    does not hold the schedule back (latency is measured from each event's own commit); an
    event more than a second late is not committed at all, so the phase lasts ``seconds``
    even when the database cannot keep up (the achieved rate says so).
    """
    total = int(rate * seconds)
    events = [make_event(n) for n in range(total)]  # built beforehand: only commits are paced
    stamps: dict[str, float] = {}
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.monotonic() + 0.05

    def work() -> None:
        while True:
            with lock:
                k = next(counter, None)
            if k is None:
                return
            ev = events[k]
            delay = start + k / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif -delay > 1.0:
                return  # more than a second behind: the database cannot take this rate
            stamps[ev.id] = commit_one(db, ev)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()
    elapsed = max(stamps.values()) - min(stamps.values()) if stamps else 0.0
    return stamps, (len(stamps) - 1) / elapsed if elapsed > 0 else 0.0


# --- child processes (spawned: they import this module) ------------------------------------------
def _worker_setup(workdir: str, name: str):
    """Production logging (JSON at INFO, one line per event handled) into a file instead of the
    bench's terminal; py-spy on this process when ``BENCH_PIPELINE_PROFILE`` names a folder."""
    log = os.open(os.path.join(workdir, f"{name}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1)
    os.dup2(log, 2)
    configure_logging("INFO", "json")
    folder = os.environ.get("BENCH_PIPELINE_PROFILE")
    if not folder:
        return None
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "--pid", str(os.getpid()), "--rate", "200",
                             "--format", "speedscope", "--nonblocking",
                             "-o", os.path.join(folder, f"{name}.speedscope.json")])


def _worker_teardown(spy) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def _bridge(mp_event) -> threading.Event:
    local = threading.Event()
    threading.Thread(target=lambda: (mp_event.wait(), local.set()), daemon=True).start()
    return local


def relay_process(pg_url: str, amqp_url: str, prefix: str, go, stop, workdir: str) -> None:
    """The producing service's relay, as ``Runtime.relay()`` builds it."""
    db = Database(pg_url)
    relay = OutboxRelay(db, Publisher(amqp_url, Topology(prefix=prefix)))
    go.wait()
    spy = _worker_setup(workdir, "relay")
    relay.run(_bridge(stop))
    _worker_teardown(spy)
    relay.publish.close()
    db.dispose()


def consumer_process(pg_url: str, amqp_url: str, prefix: str, go, stop,
                     workdir: str) -> None:
    """The consuming service's consumer, as ``Runtime.consumer()`` builds it; writes the commit
    time of every handled event to ``stamps_path`` when stopped."""
    db = Database(pg_url)
    stamps: dict[str, float] = {}

    def handle(session, ev: Event, data: dict) -> None:
        session.execute(EFFECTS.insert().values(event_id=ev.id, name=data["name"]))
        session.info.setdefault("bench_ids", []).append(ev.id)

    @event.listens_for(db.sessions, "after_commit")
    def _stamp(session) -> None:
        ids = session.info.pop("bench_ids", None)
        if ids:
            now = time.time()
            for event_id in ids:
                stamps.setdefault(event_id, now)

    @event.listens_for(db.sessions, "after_soft_rollback")
    def _forget(session, _previous) -> None:
        session.info.pop("bench_ids", None)

    consumer = EventConsumer(amqp_url, service=SERVICE, db=db, handlers={TYPE: handle},
                             topology=Topology(prefix=prefix))
    go.wait()
    spy = _worker_setup(workdir, "consumer")
    consumer.run_until(_bridge(stop))
    _worker_teardown(spy)
    Path(workdir, "consumer-stamps.json").write_text(json.dumps(stamps))
    db.dispose()


def raw_consumer_process(amqp_url: str, queue: str, expected: int, prefetch: int,
                         result_path: str) -> None:
    """Baseline consumer: plain pika, manual ack per message, until ``expected`` arrived."""
    import pika

    connection = pika.BlockingConnection(pika_parameters(amqp_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    state = {"count": 0, "first": None, "last": None}

    def on_message(ch, method, _props, _body) -> None:
        ch.basic_ack(method.delivery_tag)
        state["count"] += 1
        state["last"] = time.time()
        state["first"] = state["first"] or state["last"]
        if state["count"] >= expected:
            ch.stop_consuming()

    channel.basic_consume(queue, on_message, auto_ack=False)
    channel.start_consuming()
    Path(result_path).write_text(json.dumps(state))
    connection.close()


# --- the raw pika baseline ------------------------------------------------------------------------
def raw_publish(amqp_url: str, queue: str, bodies: list[bytes], window: int = 1000) -> float:
    """Publish every body with publisher confirms (async, at most ``window`` unconfirmed) to
    the default exchange -> ``queue``; returns the time the first publish went out."""
    import pika

    state = {"next": 0, "acked": 0, "first": 0.0, "nacked": 0}
    tags: dict[int, int] = {}  # delivery tag -> 1 while unconfirmed
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)

    def publish_more(channel) -> None:
        while state["next"] < len(bodies) and len(tags) < window:
            channel.basic_publish("", queue, bodies[state["next"]], props)
            state["next"] += 1
            tags[state["next"]] = 1
        state["first"] = state["first"] or time.time()

    def on_confirm(frame) -> None:
        method = frame.method
        done = [t for t in tags if t <= method.delivery_tag] if method.multiple \
            else [method.delivery_tag]
        for tag in done:
            if tags.pop(tag, None):
                state["acked"] += 1
                if isinstance(method, pika.spec.Basic.Nack):
                    state["nacked"] += 1
        if state["acked"] >= len(bodies):
            connection.close()
        else:
            publish_more(channel_ref["channel"])

    channel_ref: dict = {}

    def on_channel(channel) -> None:
        channel_ref["channel"] = channel
        channel.confirm_delivery(on_confirm)
        publish_more(channel)

    connection = pika.SelectConnection(
        pika_parameters(amqp_url),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_open_error_callback=lambda conn, err: conn.ioloop.stop(),
        on_close_callback=lambda conn, reason: conn.ioloop.stop())
    connection.ioloop.start()
    if state["acked"] < len(bodies) or state["nacked"]:
        raise RuntimeError(f"raw baseline: {state['acked']} confirmed of {len(bodies)}, "
                           f"{state['nacked']} refused")
    return state["first"]


def raw_baseline(amqp_url: str, prefix: str, count: int, workdir: Path) -> float:
    """Events/s of the raw pika publish-and-consume of ``count`` envelopes."""
    queue = f"{prefix}raw.events"
    view = BrokerView(amqp_url)
    view.channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    bodies = [make_event(n).to_json().encode() for n in range(count)]
    result = workdir / "raw.json"
    child = SPAWN.Process(target=raw_consumer_process,
                          args=(amqp_url, queue, count, 200, str(result)))
    child.start()
    try:
        deadline = time.monotonic() + 20
        while view.consumers(queue) < 1:
            if time.monotonic() > deadline or not child.is_alive():
                raise RuntimeError("the raw consumer did not start")
            time.sleep(0.05)
        first = raw_publish(amqp_url, queue, bodies)
        child.join(timeout=120)
        state = json.loads(result.read_text())
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        view.delete([queue], [])
        view.close()
    if state["count"] != count:
        raise RuntimeError(f"raw baseline: {state['count']} consumed of {count}")
    return count / (state["last"] - first)


# --- the scenario ---------------------------------------------------------------------------------
class Pipeline:
    """The scratch databases, the bus names and the two worker processes."""

    def __init__(self, quick: bool):
        self.server = infra.pg_server()
        self.amqp_url = infra.amqp_url()
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"bench-{tag}."
        self.topology = Topology(prefix=self.prefix)
        self.db_names = (f"bench_pipeline_{tag}_out", f"bench_pipeline_{tag}_in")
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        self.producer_url = create_database(self.server, self.db_names[0])
        self.consumer_url = create_database(self.server, self.db_names[1])
        self.producer = Database(self.producer_url, pool_size=8)  # 8 + overflow
        self.consumer_db = Database(self.consumer_url)
        PRODUCER_META.create_all(self.producer.engine)
        CONSUMER_META.create_all(self.consumer_db.engine)
        conn = connect(self.amqp_url)
        try:
            self.topology.declare(conn, SERVICE, [TYPE])
        finally:
            conn.release()
        self.view = BrokerView(self.amqp_url)
        self.go, self.stop = SPAWN.Event(), SPAWN.Event()
        self.stamps_path = self.workdir / "consumer-stamps.json"
        self.children: list = []

    @property
    def queues(self) -> list[str]:
        return [self.topology.queue_name(SERVICE), self.topology.dlq_name(SERVICE),
                *(self.topology.retry_name(SERVICE, n)
                  for n in range(1, len(self.topology.retry_delays) + 1))]

    def start_workers(self) -> None:
        self.children = [
            SPAWN.Process(target=relay_process, name="relay",
                          args=(self.producer_url, self.amqp_url, self.prefix, self.go,
                                self.stop, str(self.workdir))),
            SPAWN.Process(target=consumer_process, name="consumer",
                          args=(self.consumer_url, self.amqp_url, self.prefix, self.go,
                                self.stop, str(self.workdir))),
        ]
        for child in self.children:
            child.start()

    def release(self) -> float:
        """Let the workers go; wait until the consumer is attached to its queue."""
        started = time.time()
        self.go.set()
        deadline = time.monotonic() + 30
        while self.view.consumers(self.topology.queue_name(SERVICE)) < 1:
            if time.monotonic() > deadline or not all(c.is_alive() for c in self.children):
                raise RuntimeError("the consumer process did not attach to its queue")
            time.sleep(0.02)
        return started

    def handled(self) -> int:
        with self.consumer_db.sessions() as session:
            return session.scalar(select(func.count()).select_from(EFFECTS))

    def wait_handled(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.handled() >= count:
                return True
            if not all(c.is_alive() for c in self.children):
                return False
            time.sleep(0.05)
        return False

    def stop_workers(self) -> dict[str, float]:
        self.stop.set()
        for child in self.children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
                child.join()
        return json.loads(self.stamps_path.read_text()) if self.stamps_path.exists() else {}

    def check(self, produced: set[str]) -> list[str]:
        violations = []
        with self.consumer_db.sessions() as session:
            effects = Counter(session.scalars(select(EFFECTS.c.event_id)))
            inbox = Counter(session.scalars(select(outbox.INBOX.c.event_id)))
        with self.producer.sessions() as session:
            pending = outbox.pending_count(session)
            sent = session.scalar(select(func.count()).select_from(outbox.OUTBOX))
        duplicated = sum(1 for n in effects.values() if n > 1)
        missing = len(produced - set(effects))
        unexpected = len(set(effects) - produced)
        if duplicated:
            violations.append(f"{duplicated} events handled more than once")
        if missing:
            violations.append(f"{missing} of {len(produced)} events never handled")
        if unexpected:
            violations.append(f"{unexpected} effects for events never produced")
        if set(inbox) != set(effects) or any(n != 1 for n in inbox.values()):
            violations.append("the inbox does not match the effects one for one")
        if pending or sent != len(produced):
            violations.append(f"outbox: {pending} rows still pending, {sent} rows "
                              f"for {len(produced)} events")
        for queue in self.queues:
            depth = self.view.depth(queue)
            if depth:
                violations.append(f"{depth} messages left in {queue}")
        return violations

    def close(self) -> None:
        for child in self.children:
            if child.is_alive():
                child.kill()
                child.join()
        self.view.delete(self.queues, [self.topology.exchange.name, self.topology.dlx.name])
        self.view.close()
        self.producer.dispose()
        self.consumer_db.dispose()
        for name in self.db_names:
            with suppress(Exception):
                drop_database(self.server, name)
        for path in self.workdir.iterdir():
            path.unlink()
        self.workdir.rmdir()


def run(quick: bool) -> report.Result:
    backlog = 300 if quick else int(os.environ.get("BENCH_PIPELINE_BACKLOG", 60_000))
    rate = 1_000.0
    seconds = 0.5 if quick else float(os.environ.get("BENCH_PIPELINE_SECONDS", 20))
    raw_count = 0 if quick else backlog
    result = report.Result(
        scenario="pipeline",
        description="outbox -> one relay process -> RabbitMQ (quorum) -> one consumer "
                    "process -> inbox and effect committed together",
        params={"backlog_events": backlog, "offered_rate": rate, "rate_seconds": seconds,
                "raw_baseline_messages": raw_count},
    )
    pipeline = Pipeline(quick)
    try:
        pipeline.start_workers()
        # 1. backlog: committed while the workers wait, then drained
        clock = time.monotonic()
        produced = commit_backlog(pipeline.producer, backlog)
        backlog_ids = list(produced)
        fill_s = time.monotonic() - clock
        report.log(f"pipeline: {backlog} events committed in {fill_s:.1f} s, workers go")
        go_at = pipeline.release()
        if not pipeline.wait_handled(backlog, timeout=60 if quick else 600):
            result.violations.append(f"backlog not drained: {pipeline.handled()} of {backlog}")
        report.log(f"pipeline: backlog handled in {time.time() - go_at:.1f} s")
        # 2. fixed offered rate, workers running
        offered, achieved = commit_at_rate(pipeline.producer, rate, seconds)
        produced.update(offered)
        if not pipeline.wait_handled(len(produced), timeout=60 if quick else 300):
            result.violations.append(
                f"rate phase not drained: {pipeline.handled()} of {len(produced)}")
        stamps = pipeline.stop_workers()
        result.violations += pipeline.check(set(produced))
        # figures (from the consumer's own commit stamps)
        backlog_done = [stamps[e] for e in backlog_ids if e in stamps]
        if backlog_done:
            throughput = len(backlog_done) / (max(backlog_done) - go_at)
            result.figures["backlog throughput (events/s)"] = round(throughput, 1)
        result.figures["producer commits/s while filling the backlog"] = round(backlog / fill_s)
        latencies = [(stamps[e] - t) * 1000 for e, t in offered.items() if e in stamps]
        pct = report.percentiles(latencies)
        result.figures["offered rate achieved (events/s)"] = round(achieved, 1)
        for key in ("p50", "p95", "p99", "mean"):
            result.figures[f"latency {key} at {rate:.0f}/s (ms)"] = round(pct[key], 1)
        result.figures["latency max (ms)"] = round(max(latencies), 1) if latencies else 0.0
        # 3. baseline (not in quick mode: it checks correctness only, and has 25 s for it)
        if not quick:
            raw = raw_baseline(pipeline.amqp_url, pipeline.prefix, raw_count, pipeline.workdir)
            result.baselines["raw pika publish+consume (msgs/s)"] = round(raw, 1)
        if backlog_done and not quick:
            result.ratios["pipeline / raw pika throughput"] = round(throughput / raw, 3)
            # The database's own pace in the same run: one business transaction per event.
            result.ratios["pipeline / producer commits per second"] = round(
                throughput / (backlog / fill_s), 2)
        measured = not quick
        result.goals = [
            report.Goal("sustained throughput, 1 relay + 1 consumer", ">= 3,000 events/s",
                        f"{throughput:,.0f} events/s" if backlog_done else "n/a",
                        (throughput >= 3000) if measured and backlog_done else None),
            report.Goal(f"p99 commit-to-handled at {rate:,.0f} events/s", "< 500 ms",
                        f"{pct['p99']:.0f} ms", (pct["p99"] < 500) if measured else None),
        ]
        result.notes.append(
            "Throughput: the backlog is committed first (one business transaction per event, "
            "8 producer threads), then the relay and consumer processes are released; the "
            "clock runs from that moment to the consumer's last commit.")
        result.notes.append(
            "Latency: producer commit (time after COMMIT returned) to consumer commit (time "
            "after the inbox+effect COMMIT returned), same machine clock.")
    finally:
        pipeline.close()
    return result
