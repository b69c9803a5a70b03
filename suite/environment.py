"""The environment each mode gives the processes (only URLs differ between modes)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from .registry import LOCAL_PORTS, MIGRATED, SERVICES


def embedded(data_dir: Path, public_url: str) -> dict[str, str]:
    """``portail dev``: SQLite files, the in-memory bus, the dev mailbox."""
    env = {
        "PORTAIL_ENV": "dev",
        "PORTAIL_DATA_DIR": str(data_dir),
        "AMQP_URL": "memory://",
        "SMTP_URL": "maildir",
        "PAYMENT_PROVIDER": "simulator",
        "PUBLIC_URL": public_url,
        "LOG_FORMAT": "console",
    }
    for name in MIGRATED:
        env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{data_dir / f'{name}.sqlite3'}"
    return env


def database_urls(base_url: str, prefix: str = "portail_") -> dict[str, str]:
    """One database per service on the server of ``base_url`` (``DATABASE_URL``)."""
    base = make_url(base_url)
    return {
        name: base.set(database=f"{prefix}{name}").render_as_string(hide_password=False)
        for name in MIGRATED
    }


def distributed(data_dir: Path, database_url: str, amqp_url: str,
                host: str = "127.0.0.1") -> dict[str, str]:
    """``portail up``: every process separate, PostgreSQL, RabbitMQ, the local SMTP sink."""
    env = {
        "PORTAIL_ENV": "dev",
        "PORTAIL_DATA_DIR": str(data_dir),
        "AMQP_URL": amqp_url,
        "SMTP_URL": "smtp://127.0.0.1:1025",
        "PAYMENT_PROVIDER": "simulator",
        "PUBLIC_URL": f"http://{host}:{LOCAL_PORTS['gateway']}",
        "GATEWAY_URL": f"http://127.0.0.1:{LOCAL_PORTS['gateway']}",
    }
    for name, url in database_urls(database_url).items():
        env[f"{name.upper()}_DATABASE_URL"] = url
    for name in (*SERVICES, "portal"):
        env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{LOCAL_PORTS[name]}"
    return env


def ensure_databases(urls: dict[str, str]) -> None:
    """Create the per-service PostgreSQL databases that do not exist yet."""
    import psycopg

    for url in urls.values():
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            continue
        admin = parsed.set(drivername="postgresql", database="postgres")
        dsn = admin.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (parsed.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{parsed.database}"')
