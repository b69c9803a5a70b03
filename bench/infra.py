"""Where the benchmarks find PostgreSQL and RabbitMQ.

``PORTAIL_BENCH_DATABASE_URL`` / ``PORTAIL_BENCH_AMQP_URL``, else the tests' variables, else
the usual local ports. Scenarios create their own scratch databases and bus names and remove
them afterwards, so a server shared with other work is left as it was found.
"""

from __future__ import annotations

import os

LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP = "amqp://guest:guest@127.0.0.1:5672//"


def pg_server() -> str:
    return (os.environ.get("PORTAIL_BENCH_DATABASE_URL")
            or os.environ.get("PORTAIL_TEST_DATABASE_URL") or LOCAL_PG)


def amqp_url() -> str:
    return (os.environ.get("PORTAIL_BENCH_AMQP_URL")
            or os.environ.get("PORTAIL_TEST_AMQP_URL") or LOCAL_AMQP)
