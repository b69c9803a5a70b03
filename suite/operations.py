"""What several commands share: migrate every database, declare the bus, seed the demo data."""

from __future__ import annotations

import os

from services.common.bus import Topology, connect, retry_delays_from_env
from services.common.config import load_settings
from services.common.db import Database
from services.common.migrate import upgrade

from . import registry


def migrate(names: list[str] | None = None) -> list[str]:
    done = []
    for name in names or list(registry.MIGRATED):
        settings = load_settings(name, needs_bus=False)
        upgrade(registry.MIGRATED[name], settings.database_url)
        done.append(name)
    return done


def declare_bus(amqp_url: str | None = None) -> None:
    """Exchanges and every consuming service's queues, so no event is published unrouted."""
    url = amqp_url or os.environ.get("AMQP_URL", "memory://")
    topology = Topology(prefix=os.environ.get("BUS_PREFIX", ""),
                        retry_delays=retry_delays_from_env(),
                        queue_type=os.environ.get("BUS_QUEUE_TYPE", "quorum"))
    conn = connect(url)
    try:
        for name in registry.SERVICES:
            handlers = registry.events_module(name).HANDLERS
            topology.declare(conn, name if handlers else None, list(handlers))
    finally:
        conn.release()


def seed() -> list[str]:
    created: list[str] = []
    for name in registry.SERVICES:
        module = registry.seed_module(name)
        if module is None:
            continue
        db = Database(load_settings(name, needs_bus=False).database_url)
        try:
            created.extend(module.seed(db))
        finally:
            db.dispose()
    return created
