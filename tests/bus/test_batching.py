"""Batching on the bus keeps every guarantee: the relay publishes a claimed batch and waits for
its confirms once; the consumer handles what arrived together in one transaction, and takes
each message on its own when that fails. Against the real RabbitMQ and PostgreSQL, like
test_guarantees.py.
"""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import text

from services.common.outbox import NotConfirmed, OutboxRelay
from tests.bus.batch_support import (
    RELAY_DIED_AFTER_BATCH,
    consumer_hanging_in_batch,
    relay_dying_after_batch,
)
from tests.bus.support import CREATED, EFFECTS, effect_handler, handled_total, wait_for

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]

SPAWN = multiprocessing.get_context("spawn")


def _only_once(counter, events) -> None:
    counts = {event.id: counter[event.id] for event in events}
    assert set(counts.values()) == {1}, {k: v for k, v in counts.items() if v != 1}


def _queued(probe, broker, events) -> None:
    """Everything published and waiting in the probe queue before any consumer starts, so
    that the consumer receives it in one burst."""
    probe.drain_outbox(probe.relay())
    wait_for(lambda: broker.depth(probe.queue) == len(events), what="the events in the queue")


def _inbox_commits(probe) -> list[int]:
    commits: list[int] = []
    probe.db.on_commit("inbox", lambda: commits.append(1))
    return commits


def test_events_that_arrive_together_are_committed_together(probe, broker):
    events = probe.emit_many(40)
    _queued(probe, broker, events)
    commits = _inbox_commits(probe)
    with probe.running(probe.consumer()):
        wait_for(lambda: len(probe.effects()) == len(events), what="every effect")
        probe.settle(broker)
    _only_once(probe.effects(), events)
    _only_once(probe.inbox(), events)
    assert len(commits) < len(events), "the events were not handled in batches"
    assert broker.depth(probe.queue) == 0


def test_one_failing_event_in_a_batch_neither_loses_nor_duplicates_the_others(probe, broker):
    before = probe.emit_many(20, "Before")
    flaky = probe.emit("flaky")
    after = probe.emit_many(20, "After")
    events = [*before, flaky, *after]
    _queued(probe, broker, events)
    failures: list[str] = []

    def then(event, data) -> None:
        if data["name"] == "flaky" and not failures:
            failures.append(event.id)
            raise RuntimeError("first attempt fails")

    retries = handled_total("retry")
    with probe.running(probe.consumer(effect_handler(then=then))):
        wait_for(lambda: len(probe.effects()) == len(events), what="every effect")
        probe.settle(broker)
    assert failures == [flaky.id]
    assert handled_total("retry") - retries == 1
    effects = probe.effects()
    # The failed attempt's effect was undone, and the others' were applied once.
    _only_once(effects, events)
    _only_once(probe.inbox(), events)
    for queue in [probe.queue, probe.dlq, *probe.retry_queues]:
        assert broker.depth(queue) == 0


def test_the_same_event_twice_in_one_batch_is_handled_once(probe, broker):
    twice = probe.emit("Twice")
    others = probe.emit_many(10, "Other")
    probe.drain_outbox(probe.relay())
    broker.publish(twice, exchange=probe.exchange, routing_key=CREATED)  # a relay's duplicate
    wait_for(lambda: broker.depth(probe.queue) == 12, what="the events in the queue")
    duplicates = handled_total("duplicate")
    with probe.running(probe.consumer()):
        wait_for(lambda: len(probe.effects()) == 11, what="every effect")
        probe.settle(broker)
    _only_once(probe.effects(), [twice, *others])
    _only_once(probe.inbox(), [twice, *others])
    assert handled_total("duplicate") - duplicates == 1
    assert broker.depth(probe.queue) == 0
    assert broker.depth(probe.dlq) == 0


@pytest.mark.parametrize("after_commit", [False, True], ids=["mid_batch", "after_batch_commit"])
def test_consumer_killed_during_a_batch_loses_and_doubles_nothing(
        probe, broker, pg_url, amqp_url, bus_prefix, after_commit):
    events = [*probe.emit_many(15, "Early"), probe.emit("Doomed"), *probe.emit_many(14, "Late")]
    _queued(probe, broker, events)
    reached = SPAWN.Event()
    child = SPAWN.Process(target=consumer_hanging_in_batch,
                          args=(pg_url, amqp_url, bus_prefix, "Doomed", after_commit, reached))
    child.start()
    try:
        assert reached.wait(30), "the child never reached the point where it is killed"
        committed = probe.effects()
        child.kill()  # SIGKILL: no rollback, no ack
        child.join(timeout=10)
        assert child.exitcode == -9
    finally:
        if child.is_alive():
            child.kill()
            child.join(timeout=10)
    if after_commit:
        assert len(committed) >= 2, "a batch of several events was committed before the kill"
    else:
        # Handled in the batch yet not committed when it died.
        assert len(committed) < 15, "the kill did not happen inside a batch"

    duplicates = handled_total("duplicate")
    with probe.running(probe.consumer(effect_handler("fresh"))):
        wait_for(lambda: len(probe.effects()) == len(events), what="every effect")
        probe.settle(broker)
    effects = probe.effects()
    _only_once(effects, events)
    _only_once(probe.inbox(), events)
    for event in events:
        worker = probe.effect_workers(event.id)
        assert worker == ["doomed" if event.id in committed else "fresh"], (event.id, worker)
    if after_commit:
        # Committed but never acknowledged: redelivered, recognised, not applied again.
        assert handled_total("duplicate") - duplicates >= len(committed)
    assert broker.depth(probe.queue) == 0
    assert broker.depth(probe.dlq) == 0


def test_database_connection_lost_mid_batch_falls_back_to_one_transaction_each(probe, broker):
    events = [*probe.emit_many(10, "Early"), probe.emit("Cut"), *probe.emit_many(10, "Late")]
    _queued(probe, broker, events)
    cuts: list[str] = []

    def handler(session, event, data) -> None:
        session.execute(EFFECTS.insert().values(event_id=event.id, worker="main"))
        if data["name"] == "Cut":
            cuts.append(event.id)
            if len(cuts) == 1:  # the first time only: the connection dies under the batch
                pid = session.scalar(text("SELECT pg_backend_pid()"))
                with probe.db.engine.connect() as admin:
                    admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    with probe.running(probe.consumer(handler)):
        wait_for(lambda: len(probe.effects()) == len(events), what="every effect")
        probe.settle(broker)
    assert len(cuts) >= 2, "the event whose batch lost its connection was handled again"
    _only_once(probe.effects(), events)
    _only_once(probe.inbox(), events)
    for queue in [probe.queue, probe.dlq, *probe.retry_queues]:
        assert broker.depth(queue) == 0


def test_relay_dying_after_a_confirmed_batch_duplicates_but_effects_once(
        probe, broker, pg_url, amqp_url, bus_prefix):
    tap = broker.tap(probe.exchange, CREATED)
    events = probe.emit_many(25)
    child = SPAWN.Process(target=relay_dying_after_batch, args=(pg_url, amqp_url, bus_prefix))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == RELAY_DIED_AFTER_BATCH
    assert probe.pending() == len(events)  # confirmed, never marked: the commit never came
    assert broker.depth(tap) == len(events)

    duplicates = handled_total("duplicate")
    with probe.running(probe.consumer()):
        probe.drain_outbox(probe.relay())
        probe.settle(broker)
    on_the_wire = [props.message_id for props, _ in broker.take_all(tap)]
    assert sorted(on_the_wire) == sorted([e.id for e in events] * 2)
    _only_once(probe.effects(), events)
    _only_once(probe.inbox(), events)
    assert handled_total("duplicate") - duplicates == len(events)
    assert broker.depth(probe.dlq) == 0


def test_partly_confirmed_batch_marks_the_confirmed_rows_only(probe, broker):
    events = probe.emit_many(6)
    real = probe.relay()

    class ThreeThenFail:
        def __call__(self, event):
            raise AssertionError("the relay must publish a claimed batch in one call")

        def publish_batch(self, batch):
            real.publish.publish_batch(batch[:3])
            raise NotConfirmed(3, "broker gone")

    relay = OutboxRelay(probe.db, ThreeThenFail())
    with pytest.raises(NotConfirmed):
        relay.run_once()
    assert probe.pending() == 3
    assert probe.failed_attempts() == 1
    assert broker.depth(probe.queue) == 3
    assert real.run_once() == 3  # the rest, in order
    with probe.running(probe.consumer()):
        probe.settle(broker)
    _only_once(probe.effects(), events)
