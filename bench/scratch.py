"""A scratch PostgreSQL database per scenario run, and a fast ``COPY`` loader.

The database is created on the benchmark server (``bench.infra.pg_server``) under a unique
name and dropped when the block ends, failure or not (``WITH (FORCE)``: a connection left
open by the scenario never keeps it alive).
"""

from __future__ import annotations

import io
import uuid
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

from bench.infra import pg_server


@contextmanager
def scratch_database(prefix: str):
    server = make_url(pg_server())
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(drivername="postgresql+psycopg", database=name) \
            .render_as_string(hide_password=False), \
            server.set(drivername="postgresql", database=name) \
            .render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tsv(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def copy_rows(conn: psycopg.Connection, table: str, columns: list[str], rows) -> int:
    """COPY ``rows`` (tuples, or lines already in COPY's text format) into ``table``, written
    as text blocks (much faster in Python than one call per row)."""
    count = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
        buffer = io.StringIO()
        for row in rows:
            buffer.write(row if isinstance(row, str) else "\t".join(tsv(v) for v in row) + "\n")
            count += 1
            if count % 20_000 == 0:
                cp.write(buffer.getvalue())
                buffer = io.StringIO()
        cp.write(buffer.getvalue())
    return count
