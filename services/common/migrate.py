"""Alembic per service: each service keeps its own ``migrations/`` folder and version table."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text

from .db import make_engine

# Any constant works: it only has to be the same for every process migrating one database.
_PG_LOCK_KEY = 7_246_011


def alembic_config(package: str, url: str) -> Config:
    """An Alembic config for the service whose package is ``package`` (e.g. services.billing)."""
    module = importlib.import_module(package)
    folder = Path(module.__file__).parent / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["package"] = package
    return cfg


def upgrade(package: str, url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision``; safe when several processes do it at once.

    On PostgreSQL an advisory lock serialises concurrent migrators (several pods starting
    together); the second one finds the schema up to date and does nothing.
    """
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            is_pg = conn.dialect.name == "postgresql"
            if is_pg:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
            try:
                cfg = alembic_config(package, url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                if is_pg:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()
    finally:
        engine.dispose()


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``."""
    cfg = context.config
    connection = cfg.attributes.get("connection")
    if connection is None:
        engine = make_engine(cfg.get_main_option("sqlalchemy.url"), pool_size=1)
        with engine.connect() as conn:
            _run(conn, target_metadata)
            conn.commit()
        engine.dispose()
    else:
        _run(connection, target_metadata)


def _run(connection, target_metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables so that one migration
        # file serves both SQLite (embedded) and PostgreSQL.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
