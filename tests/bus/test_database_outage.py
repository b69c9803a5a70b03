"""The consumer's database goes away (restart, failover): events wait, none is dead-lettered.

Found by the fault suite: during a PostgreSQL restart, an event's retries (1, 10, 60 s in
production; fewer in tests) ran out while the database was still away, and the event went to
the DLQ: its e-mail was never sent. A handler failing because the database cannot be reached
now puts the message back after a pause without using up a retry.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from services.common.bus import database_unreachable
from tests.bus.support import EFFECTS, RETRY_DELAYS, wait_for

pytestmark = [pytest.mark.services, pytest.mark.timeout(60)]


def test_an_event_outlives_more_database_cuts_than_it_has_retries(probe, broker):
    event = probe.emit("Coupée")
    relay = probe.relay()
    probe.drain_outbox(relay)
    cuts: list[int] = []
    wanted = len(RETRY_DELAYS) + 3  # more failures than retries: without the fix, the DLQ

    def handler(session, ev, data) -> None:
        if len(cuts) < wanted:
            cuts.append(1)
            pid = session.scalar(text("SELECT pg_backend_pid()"))
            with probe.db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            session.execute(text("SELECT 1"))  # the connection is gone: OperationalError
        session.execute(EFFECTS.insert().values(event_id=ev.id, worker="main"))

    consumer = probe.consumer(handler)
    consumer.database_pause = 0.1
    with probe.running(consumer):
        wait_for(lambda: probe.effects()[event.id] == 1, timeout=30, what="the effect")
        probe.settle(broker)
    assert len(cuts) == wanted
    assert broker.depth(probe.dlq) == 0
    for queue in [probe.queue, *probe.retry_queues]:
        assert broker.depth(queue) == 0


def test_only_connection_failures_count_as_an_unreachable_database():
    refused = OperationalError("SELECT 1", {}, Exception(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        "Connection refused"))
    closed = OperationalError("SELECT 1", {}, Exception(
        "consuming input failed: server closed the connection unexpectedly"))
    deadlock = OperationalError("UPDATE x", {}, Exception("deadlock detected"))
    duplicate = IntegrityError("INSERT", {}, Exception("duplicate key value"))
    assert database_unreachable(refused) and database_unreachable(closed)
    assert not database_unreachable(deadlock)
    assert not database_unreachable(duplicate)
    assert not database_unreachable(ValueError("connection"))
