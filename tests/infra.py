"""Where the tests find a real PostgreSQL and RabbitMQ, and how each run stays isolated.

Order: ``PORTAIL_TEST_DATABASE_URL`` / ``PORTAIL_TEST_AMQP_URL`` when set; otherwise a
testcontainers container when a Docker engine answers; otherwise the usual local ports when
something listens there (a developer's machine); otherwise the tests that need them are
skipped with one line saying why, or fail when ``PORTAIL_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import os
import socket
import uuid
from contextlib import suppress

import pytest

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672//"
RUN_ID = uuid.uuid4().hex[:8]


def _listening(host: str, port: int) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


def unavailable(what: str, why: str):
    message = f"{what} indisponible pour les tests : {why}"
    if os.environ.get("PORTAIL_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (PORTAIL_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


class Containers:
    """Lazily started testcontainers, stopped at the end of the session."""

    def __init__(self):
        self.started = []

    def postgres(self) -> str:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
        self.started.append(container)
        return container.get_connection_url()

    def rabbitmq(self) -> str:
        from testcontainers.rabbitmq import RabbitMqContainer

        container = RabbitMqContainer("rabbitmq:3.13-alpine")
        container.start()
        self.started.append(container)
        params = container.get_connection_params()
        return f"amqp://guest:guest@{params.host}:{params.port}//"

    def stop(self) -> None:
        for container in self.started:
            with suppress(Exception):
                container.stop()


def find_postgres(containers: Containers) -> str:
    url = os.environ.get("PORTAIL_TEST_DATABASE_URL")
    if url:
        return url
    if _docker_available():
        return containers.postgres()
    if _listening("127.0.0.1", 5432):
        return LOCAL_PG
    unavailable("PostgreSQL", "ni PORTAIL_TEST_DATABASE_URL, ni moteur Docker, ni serveur local")


def find_rabbitmq(containers: Containers) -> str:
    url = os.environ.get("PORTAIL_TEST_AMQP_URL")
    if url:
        return url
    if _docker_available():
        return containers.rabbitmq()
    if _listening("127.0.0.1", 5672):
        return LOCAL_AMQP
    unavailable("RabbitMQ", "ni PORTAIL_TEST_AMQP_URL, ni moteur Docker, ni serveur local")


def create_database(server_url: str, name: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server_url)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server_url).set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pika_parameters(amqp_url: str):
    """pika parameters for a kombu-style URL.

    ``pika.URLParameters`` reads the ``//`` of ``amqp://host:5672//`` (kombu's spelling of the
    ``/`` virtual host) as the empty vhost, which the broker refuses: let kombu parse it.
    """
    import pika
    from kombu import Connection

    conn = Connection(amqp_url)
    return pika.ConnectionParameters(
        host=conn.hostname, port=conn.port or 5672, virtual_host=conn.virtual_host or "/",
        credentials=pika.PlainCredentials(conn.userid or "guest", conn.password or "guest"))


def delete_bus_names(amqp_url: str, prefix: str, services: tuple[str, ...],
                     retries: int = 3) -> None:
    """Remove what a test declared under its own prefix (queues first, then exchanges)."""
    import pika

    conn = pika.BlockingConnection(pika_parameters(amqp_url))
    try:
        ch = conn.channel()
        for svc in services:
            base = f"{prefix}{svc}.events"
            for name in [base, f"{base}.dlq", *(f"{base}.retry.{i}" for i in
                                                  range(1, retries + 1))]:
                ch.queue_delete(name)
        for name in ("portail.events", "portail.dlx"):
            ch.exchange_delete(f"{prefix}{name}")
    finally:
        conn.close()
