"""What one process of a service holds: settings, database, keys, bus; and the worker loop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kombu import Connection

from .auth import KeySet, RemoteKeySet, ensure_dev_keys
from .bus import EventConsumer, Handler, Publisher, Topology, connect, retry_delays_from_env
from .config import ConfigError, Settings, load_settings
from .db import Database
from .internal import ServiceClient, ServiceTokens, service_key
from .logging import configure_logging, get_logger
from .outbox import OutboxRelay

log = get_logger(__name__)


def load_keyset(settings: Settings) -> KeySet:
    if settings.extra.get("JWKS_URL"):
        return RemoteKeySet(settings.extra["JWKS_URL"])
    if settings.jwt_public_keys:
        try:
            return KeySet(settings.jwt_public_keys)
        except (ValueError, KeyError) as exc:
            raise ConfigError([f"JWT_PUBLIC_KEYS n'est pas un JWKS valide : {exc}"]) from exc
    if settings.dev:
        return KeySet(ensure_dev_keys(settings.data_dir)[1])
    raise ConfigError(["JWT_PUBLIC_KEYS ou JWKS_URL est obligatoire (clés de la passerelle)"])


def topology_for(settings: Settings) -> Topology:
    queue_type = settings.extra.get("BUS_QUEUE_TYPE", "quorum")
    return Topology(prefix=settings.bus_prefix, retry_delays=retry_delays_from_env(),
                    queue_type=queue_type)


@dataclass
class Runtime:
    name: str
    settings: Settings
    db: Database
    keyset: KeySet
    topology: Topology
    handlers: dict[str, Handler] = field(default_factory=dict)
    service_tokens: ServiceTokens | None = None

    def client(self) -> ServiceClient:
        """For the synchronous calls this service makes to another (DESIGN section 1)."""
        if self.service_tokens is None:
            raise ConfigError(["SERVICE_TOKEN_KEY manque pour les appels entre services"])
        return ServiceClient(self.name, self.service_tokens)

    @classmethod
    def build(cls, name: str, handlers: dict[str, Handler] | None = None,
              environ: Mapping[str, str] | None = None,
              settings: Settings | None = None, *, internal_calls: bool = False) -> Runtime:
        """``internal_calls``: this service makes or answers calls to or from another service
        (every service since the household's archive and erasure), so ``SERVICE_TOKEN_KEY`` is
        required at start in production; without it a service gets the tokens only when the
        key is there."""
        settings = settings or load_settings(name, environ)
        configure_logging(settings.log_level, settings.log_format)
        return cls(
            name=name,
            settings=settings,
            db=Database(settings.database_url),
            keyset=load_keyset(settings),
            topology=topology_for(settings),
            handlers=dict(handlers or {}),
            service_tokens=_service_tokens(settings, required=internal_calls),
        )

    def broker_check(self) -> None:
        """Readiness: the broker answers (the in-memory bus always does)."""
        if self.settings.amqp_url.startswith("memory"):
            return
        conn: Connection = connect(self.settings.amqp_url)
        try:
            conn.ensure_connection(max_retries=1, timeout=3)
        finally:
            conn.release()

    def declare_bus(self) -> None:
        conn = connect(self.settings.amqp_url)
        try:
            self.topology.declare(conn, self.name if self.handlers else None,
                                  list(self.handlers))
        finally:
            conn.release()

    def relay(self) -> OutboxRelay:
        return OutboxRelay(self.db, Publisher(self.settings.amqp_url, self.topology))

    def consumer(self) -> EventConsumer:
        return EventConsumer(
            url=self.settings.amqp_url,
            service=self.name,
            db=self.db,
            handlers=self.handlers,
            topology=self.topology,
            heartbeat_file=worker_heartbeat_file(self.name),
        )

    def start_worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        """The relay and, when the service consumes anything, its consumer, as threads."""
        threads = [threading.Thread(target=self.relay().run, args=(stop,),
                                    name=f"{self.name}-relay", daemon=True)]
        if self.handlers:
            threads.append(threading.Thread(target=self.consumer().run_until, args=(stop,),
                                            name=f"{self.name}-consumer", daemon=True))
        for thread in threads:
            thread.start()
        return threads


def _service_tokens(settings: Settings, *, required: bool) -> ServiceTokens | None:
    if required or settings.dev or settings.extra.get("SERVICE_TOKEN_KEY"):
        return ServiceTokens(service_key(settings))
    return None


def worker_heartbeat_file(name: str) -> Path:
    return Path("/tmp") / f"portail-worker-{name}.alive"


def run_worker(runtime: Runtime) -> None:
    """The worker process: relay and consumer until SIGTERM or SIGINT."""
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("worker_stopping", signal=signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    heartbeat = worker_heartbeat_file(runtime.name)
    threads = runtime.start_worker_threads(stop)
    log.info("worker_started", service=runtime.name, consumes=sorted(runtime.handlers))
    while not stop.wait(5):
        heartbeat.touch()
        if not all(t.is_alive() for t in threads):
            log.error("worker_thread_died")
            stop.set()
            raise SystemExit(1)
    for thread in threads:
        thread.join(timeout=10)
