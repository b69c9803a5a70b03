"""The guarantees of DESIGN section 4 ("Bus"), each against the real RabbitMQ and PostgreSQL.

Every test drives the probe service of ``tests/bus/support.py`` (outbox, relay, consumer with
its inbox, one ``effects`` row per handled event) and looks at the broker with pika.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from urllib.parse import urlsplit

import pytest

from services.common.events import Event
from tests.bus.support import (
    CREATED,
    RELAY_DIED,
    RETRY_DELAYS,
    TcpProxy,
    commune_event,
    consumer_child,
    effect_handler,
    handled_total,
    relay_that_dies,
    wait_for,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

SPAWN = multiprocessing.get_context("spawn")


def _only_once(effects, events) -> None:
    counts = {event.id: effects[event.id] for event in events}
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}


# 1 ----------------------------------------------------------------------------------------------
def test_committed_event_is_published_with_amqp_properties_and_handled_once(probe, broker):
    tap = broker.tap(probe.exchange, CREATED)
    event = probe.emit("Alpha", correlation_id="corr-alpha")
    assert probe.pending() == 1
    assert broker.depth(tap) == 0, "nothing may be published before the relay runs"

    assert probe.relay().run_once() == 1
    assert probe.pending() == 0

    [(props, body)] = broker.take_all(tap)
    assert props.message_id == event.id
    assert props.type == CREATED
    assert props.correlation_id == "corr-alpha"
    assert props.delivery_mode == 2  # persistent
    assert props.content_type == "application/json"
    assert body == event.to_dict()

    before = handled_total("handled")
    with probe.running(probe.consumer()):
        wait_for(lambda: probe.effects()[event.id], what="the effect")
        probe.settle(broker)
    assert probe.effects()[event.id] == 1
    assert probe.inbox()[event.id] == 1
    assert handled_total("handled") - before == 2  # the event and the sentinel
    assert broker.depth(probe.queue) == 0
    assert broker.depth(probe.dlq) == 0


# 2 ----------------------------------------------------------------------------------------------
def test_rolled_back_transaction_publishes_nothing(probe, broker):
    tap = broker.tap(probe.exchange, CREATED)
    rolled_back = probe.emit("Ghost", rollback=True)
    assert probe.outbox_ids() == []

    relay = probe.relay()
    assert relay.run_once() == 0
    assert broker.depth(tap) == 0
    assert broker.depth(probe.queue) == 0

    # The same path does carry a committed event: the emptiness above is not vacuous.
    committed = probe.emit("Real")
    assert relay.run_once() == 1
    assert [props.message_id for props, _ in broker.take_all(tap)] == [committed.id]
    assert broker.depth(probe.queue) == 1
    assert rolled_back.id not in probe.outbox_ids()


# 3 (a) ------------------------------------------------------------------------------------------
def test_relay_dying_between_publish_and_commit_duplicates_but_effects_once(
        probe, broker, pg_url, amqp_url, bus_prefix):
    tap = broker.tap(probe.exchange, CREATED)
    events = probe.emit_many(10)
    die_after = 6

    child = SPAWN.Process(target=relay_that_dies,
                          args=(pg_url, amqp_url, bus_prefix, die_after))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == RELAY_DIED
    # Published and confirmed, yet never marked sent: the transaction died with the process.
    assert probe.pending() == len(events)
    assert broker.depth(tap) == die_after

    duplicates_before = handled_total("duplicate")
    with probe.running(probe.consumer()):
        probe.drain_outbox(probe.relay())  # a restarted relay publishes every row again
        probe.settle(broker)

    on_the_wire = [props.message_id for props, _ in broker.take_all(tap)]
    assert len(on_the_wire) == len(events) + die_after
    assert sorted(on_the_wire.count(e.id) for e in events) == [1] * 4 + [2] * die_after
    _only_once(probe.effects(), events)
    _only_once(probe.inbox(), events)
    assert handled_total("duplicate") - duplicates_before == die_after
    assert broker.depth(probe.queue) == 0
    assert broker.depth(probe.dlq) == 0


# 4 (b) ------------------------------------------------------------------------------------------
def test_broker_connection_drop_mid_stream_recovers_by_itself(probe, broker, amqp_url):
    target = urlsplit(amqp_url)
    # One proxy each, so that the test sees both sides try to reconnect during the outage.
    relay_proxy = TcpProxy(target.hostname, target.port or 5672)
    consumer_proxy = TcpProxy(target.hostname, target.port or 5672)
    proxies = (relay_proxy, consumer_proxy)
    total = 200
    events: list[Event] = []
    cut_done = threading.Event()

    def write_stream() -> None:
        for n in range(total):
            if n == total // 2:
                cut_done.wait(15)  # the second half is written while the broker is away
            events.append(probe.emit(f"Stream {n}"))
            time.sleep(0.002)

    writer = threading.Thread(target=write_stream, daemon=True)
    consumer = probe.consumer(amqp_url=consumer_proxy.url_for(amqp_url))
    relay = probe.relay(amqp_url=relay_proxy.url_for(amqp_url))
    try:
        with probe.running(consumer, relay):
            writer.start()
            wait_for(lambda: len(probe.effects()) >= total // 4, what="the stream to flow")
            effects_at_cut = len(probe.effects())
            for proxy in proxies:
                proxy.cut()
            cut_done.set()
            # The outage lasts until both sides met it: the relay failed a publish (recorded
            # on its row) and each side had a reconnection attempt refused.
            wait_for(probe.failed_attempts, what="a failed publish")
            for proxy in proxies:
                wait_for(lambda p=proxy: p.refused, what="a refused reconnection")
            accepted_before = [proxy.accepted for proxy in proxies]
            for proxy in proxies:
                proxy.restore()
            writer.join(timeout=15)
            assert len(events) == total
            wait_for(lambda: len(probe.effects()) >= total, timeout=20,
                     what=f"{total} effects after the drop")
            wait_for(lambda: probe.pending() == 0, what="the outbox to be fully sent")
            wait_for(lambda: broker.depth(probe.queue) == 0, what="the queue to empty")
    finally:
        for proxy in proxies:
            proxy.close()
    assert effects_at_cut < total // 2, "the drop did not happen mid-stream"
    for proxy, before in zip(proxies, accepted_before, strict=True):
        assert proxy.accepted > before, "a side did not reconnect through the proxy"
    effects = probe.effects()
    _only_once(effects, events)
    assert len(effects) == total
    assert broker.depth(probe.dlq) == 0


# 5 (c) ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["block_before_commit", "block_after_commit"])
def test_consumer_killed_before_ack_is_redelivered_and_handled_once(
        probe, broker, pg_url, amqp_url, bus_prefix, mode):
    reached, stop = SPAWN.Event(), SPAWN.Event()
    child = SPAWN.Process(target=consumer_child,
                          args=(pg_url, amqp_url, bus_prefix, "doomed", mode, reached, stop))
    child.start()
    try:
        wait_for(lambda: broker.consumers(probe.queue) == 1, timeout=15,
                 what="the child consumer")
        event = probe.emit("Doomed")
        probe.relay().run_once()
        assert reached.wait(10), "the child never reached its handler"
        committed = mode == "block_after_commit"
        assert probe.effects()[event.id] == int(committed)
        child.kill()  # SIGKILL: no cleanup, no ack
        child.join(timeout=10)
        assert child.exitcode == -9
    finally:
        if child.is_alive():
            child.kill()
            child.join(timeout=10)

    outcome = "duplicate" if committed else "handled"
    before = handled_total(outcome)
    with probe.running(probe.consumer(effect_handler("fresh"))):
        wait_for(lambda: handled_total(outcome) - before >= 1,
                 what=f"the redelivered event ({outcome}) in the fresh consumer")
        probe.settle(broker)
    assert probe.effects()[event.id] == 1
    assert probe.inbox()[event.id] == 1
    assert probe.effect_workers(event.id) == ["doomed" if committed else "fresh"]
    assert broker.depth(probe.queue) == 0
    assert broker.depth(probe.dlq) == 0


# 6 ----------------------------------------------------------------------------------------------
def test_poison_message_is_retried_then_dead_lettered_without_blocking(probe, broker):
    attempts: list[float] = []
    handled_at: dict[str, float] = {}

    def then(event, data) -> None:
        if data["name"] == "poison":
            attempts.append(time.monotonic())
            raise RuntimeError("handler always fails")
        handled_at[event.id] = time.monotonic()

    poison = probe.emit("poison")
    behind = [probe.emit(f"Behind {n}") for n in range(10)]
    assert probe.relay().run_once() == 11

    with probe.running(probe.consumer(effect_handler(then=then))):
        wait_for(lambda: broker.depth(probe.dlq) == 1, what="the poison in the DLQ")
        [(props, body)] = broker.take_all(probe.dlq)

    assert len(attempts) == 1 + len(RETRY_DELAYS)
    effects = probe.effects()
    assert effects[poison.id] == 0, "the failed handler's effect must be rolled back"
    _only_once(effects, behind)
    # Not blocked: everything behind the poison was handled before the poison came back from
    # its first retry queue (an order of events, not a duration: a busy machine may take
    # longer than the retry delay to handle the ten, as a batch rolled back and handled again).
    assert max(handled_at.values()) < attempts[1], "blocked by the poison"
    assert props.message_id == poison.id
    assert props.type == CREATED
    assert props.correlation_id == poison.correlation_id
    assert props.delivery_mode == 2
    assert body == poison.to_dict()
    headers = props.headers
    assert headers["x-retries"] == len(RETRY_DELAYS)
    assert "handler always fails" in headers["x-death-reason"]
    assert headers["x-original-routing-key"] == CREATED
    # Each retry really waited in the broker's delay queues.
    assert {d["queue"] for d in headers["x-death"]} == set(probe.retry_queues)
    for queue in [probe.queue, *probe.retry_queues]:
        assert broker.depth(queue) == 0
    assert probe.inbox()[poison.id] == 0


def test_invalid_payload_goes_straight_to_the_dlq(probe, broker):
    calls: list[str] = []
    valid = commune_event("Valid")
    invalid = Event(**{**valid.to_dict(), "id": commune_event().id,
                       "data": {**valid.data, "commune_id": "not-a-uuid"}})
    with probe.running(probe.consumer(effect_handler(then=lambda e, d: calls.append(e.id)))):
        broker.publish(invalid, exchange=probe.exchange, routing_key=CREATED)
        broker.publish(b"not an envelope", exchange=probe.exchange, routing_key=CREATED)
        broker.publish(valid, exchange=probe.exchange, routing_key=CREATED)
        wait_for(lambda: broker.depth(probe.dlq) == 2, what="two messages in the DLQ")
        wait_for(lambda: probe.effects()[valid.id], what="the valid event")

    dead = broker.take_all(probe.dlq)
    reasons = sorted(props.headers["x-death-reason"] for props, _ in dead)
    assert reasons[0].startswith("données invalides") and "commune_id" in reasons[0]
    assert reasons[1].startswith("enveloppe invalide")
    for props, _ in dead:
        assert "x-retries" not in props.headers, "an invalid payload must not be retried"
        assert "x-death" not in props.headers, "it never waited in a retry queue"
    assert [props.message_id for props, _ in dead if props.message_id] == [invalid.id]
    assert calls == [valid.id]
    assert probe.effects()[invalid.id] == 0
    for queue in [probe.queue, *probe.retry_queues]:
        assert broker.depth(queue) == 0


# 7 ----------------------------------------------------------------------------------------------
def test_two_consumer_processes_share_the_queue(probe, broker, pg_url, amqp_url, bus_prefix):
    # Every Event stays referenced here: Process.start() drops its args before a spawned child
    # has reopened the named semaphores, and a collected Event unlinks them.
    stop, unused = SPAWN.Event(), SPAWN.Event()
    children = [
        SPAWN.Process(target=consumer_child,
                      args=(pg_url, amqp_url, bus_prefix, worker, "normal", unused, stop))
        for worker in ("w1", "w2")
    ]
    for child in children:
        child.start()
    try:
        wait_for(lambda: broker.consumers(probe.queue) == 2, timeout=15,
                 what="both child consumers")
        events = probe.emit_many(300)
        probe.drain_outbox(probe.relay())
        wait_for(lambda: len(probe.effects()) >= len(events), timeout=15,
                 what="every effect")
        stop.set()
        for child in children:
            child.join(timeout=15)
            assert child.exitcode == 0
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
                child.join(timeout=10)
    # Both consumers stopped cleanly: whatever they held would be back in the queue.
    assert broker.depth(probe.queue) == 0
    effects = probe.effects()
    _only_once(effects, events)
    assert len(effects) == len(events)
    workers = probe.workers()
    assert set(workers) == {"w1", "w2"}, workers
    assert workers["w1"] + workers["w2"] == len(events)


# 8 ----------------------------------------------------------------------------------------------
def test_redelivered_event_changes_nothing(probe, broker):
    event = commune_event("Twice")
    duplicates_before = handled_total("duplicate")
    with probe.running(probe.consumer()):
        broker.publish(event, exchange=probe.exchange, routing_key=CREATED)
        broker.publish(event, exchange=probe.exchange, routing_key=CREATED)
        probe.settle(broker)
    assert probe.effects()[event.id] == 1
    assert probe.inbox()[event.id] == 1
    assert handled_total("duplicate") - duplicates_before == 1
    assert broker.depth(probe.queue) == 0
    assert broker.depth(probe.dlq) == 0

