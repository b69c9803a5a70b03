from __future__ import annotations

from contextlib import suppress

import pytest

from tests.bus.support import Broker, Probe


@pytest.fixture
def probe(pg_url, amqp_url, bus_prefix):
    """The probe service on a fresh database, its queues declared under the test's prefix."""
    probe = Probe(pg_url, amqp_url, bus_prefix)
    yield probe
    probe.close()


@pytest.fixture
def broker(probe, amqp_url, bus_prefix):
    """A pika view of the broker; its side queues and the probe's names are deleted afterwards.

    (The ``bus_prefix`` fixture's own clean-up goes through ``pika.URLParameters``, which cannot
    reach the ``//`` virtual host of kombu-style URLs, so the probe's names are removed here.)
    """
    broker = Broker(amqp_url, bus_prefix)
    yield broker
    with suppress(Exception):
        broker.delete([probe.queue, probe.dlq, *probe.retry_queues],
                      [probe.exchange, probe.topology.dlx.name])
    broker.close()
