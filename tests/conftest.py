from __future__ import annotations

import uuid

import pytest

from tests import infra


@pytest.fixture(scope="session")
def _containers():
    containers = infra.Containers()
    yield containers
    containers.stop()


@pytest.fixture(scope="session")
def pg_server(_containers) -> str:
    """URL of a PostgreSQL server the tests may create databases on."""
    return infra.find_postgres(_containers)


@pytest.fixture(scope="session")
def amqp_url(_containers) -> str:
    return infra.find_rabbitmq(_containers)


@pytest.fixture
def pg_url(pg_server):
    """A fresh database for one test, dropped afterwards."""
    name = f"portail_test_{infra.RUN_ID}_{uuid.uuid4().hex[:8]}"
    url = infra.create_database(pg_server, name)
    yield url
    infra.drop_database(pg_server, name)


@pytest.fixture
def bus_prefix(amqp_url):
    """A name prefix of its own for one test's exchanges and queues, removed afterwards."""
    prefix = f"test-{infra.RUN_ID}-{uuid.uuid4().hex[:6]}."
    yield prefix
    infra.delete_bus_names(amqp_url, prefix, ("accounts", "reservations", "billing",
                                              "requests", "notifications", "probe"))
