"""Child processes for the batching tests (a ``spawn`` child imports its target from here)."""

from __future__ import annotations

import os
import threading
import time

from services.common.bus import EventConsumer, Publisher
from services.common.db import Database
from services.common.events import Event
from services.common.outbox import OutboxRelay
from tests.bus.support import CREATED, PROBE, effect_handler, probe_topology

RELAY_DIED_AFTER_BATCH = 18


def consumer_hanging_in_batch(pg_url: str, amqp_url: str, prefix: str, hang_on: str,
                              after_commit: bool, reached) -> None:
    """A probe consumer (worker "doomed") that hangs, to be killed, either inside the handler
    of the event named ``hang_on`` (its batch not committed yet) or, with ``after_commit``,
    right after the commit of the first batch holding more than one event (nothing acked)."""
    db = Database(pg_url)

    def hang(*_args) -> None:
        reached.set()
        while True:
            time.sleep(60)

    def then(_event: Event, data: dict) -> None:
        if not after_commit and data["name"] == hang_on:
            hang()

    consumer = EventConsumer(amqp_url, service=PROBE, db=db,
                             handlers={CREATED: effect_handler("doomed", then)},
                             topology=probe_topology(prefix))
    if after_commit:
        handle_batch = consumer.handle_batch

        def handle_then_hang(items):
            outcomes = handle_batch(items)  # committed when it returns
            hang()
            return outcomes

        consumer.handle_batch = handle_then_hang
    consumer.run_until(threading.Event())


def relay_dying_after_batch(pg_url: str, amqp_url: str, prefix: str) -> None:
    """A relay with the AMQP publisher whose process dies once a whole batch was published and
    confirmed, before its transaction marking the rows sent could commit."""
    db = Database(pg_url)
    publisher = Publisher(amqp_url, probe_topology(prefix))

    class DiesAfterConfirms:
        def __call__(self, event: Event) -> None:
            raise AssertionError("the relay must publish a claimed batch in one call")

        def publish_batch(self, events: list[Event]) -> None:
            publisher.publish_batch(events)  # returns once the broker confirmed all of them
            os._exit(RELAY_DIED_AFTER_BATCH)

    OutboxRelay(db, DiesAfterConfirms()).run_once()
    os._exit(0)
