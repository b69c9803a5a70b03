from __future__ import annotations

import pytest

from tests.bus.support import Broker, Probe


@pytest.fixture
def probe(pg_url, amqp_url, bus_prefix):
    """The probe service on a fresh database, its queues declared under the test's prefix."""
    probe = Probe(pg_url, amqp_url, bus_prefix)
    yield probe
    probe.close()


@pytest.fixture
def broker(amqp_url, bus_prefix):
    """A pika view of the broker; its side queues are deleted afterwards."""
    broker = Broker(amqp_url, bus_prefix)
    yield broker
    broker.close()
