"""create_app for the requests service, and its runtime (worker threads + retention job)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask

from services.common.app import create_app as create_service_app
from services.common.config import ConfigError, Settings, load_settings
from services.common.logging import get_logger
from services.common.runtime import Runtime

from . import NAME
from .api import API_BLUEPRINTS, RequestsConfig
from .domain import MB
from .events import HANDLERS
from .operations import Operations
from .privacy import erased_handler, privacy_blueprint
from .storage import DocumentStore, store_from_settings

log = get_logger(__name__)

DEFAULT_MAX_UPLOAD_MB = 25
MAX_FORM_PARTS = 60
RETENTION_INTERVAL = 6 * 3600  # seconds between two runs of the retention job
RETENTION_FIRST_DELAY = 60


def max_upload(settings: Settings) -> int:
    raw = settings.extra.get("REQUESTS_MAX_UPLOAD_MB") or str(DEFAULT_MAX_UPLOAD_MB)
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError([f"REQUESTS_MAX_UPLOAD_MB doit être un nombre (reçu {raw!r})"]
                          ) from exc
    if value <= 0:
        raise ConfigError(["REQUESTS_MAX_UPLOAD_MB doit être positif"])
    return int(value * MB)


@dataclass
class RequestsRuntime(Runtime):
    """The common runtime, plus the document store and the retention job among the
    worker's threads."""

    store: DocumentStore | None = None

    def operations(self) -> Operations:
        return Operations(self.db, self.store, max_upload(self.settings))

    def retention_interval(self) -> float:
        raw = self.settings.extra.get("REQUESTS_RETENTION_INTERVAL")
        try:
            return float(raw) if raw not in (None, "") else RETENTION_INTERVAL
        except ValueError:
            return RETENTION_INTERVAL

    def run_retention(self, stop: threading.Event) -> None:
        """Delete what is past the communes' retention periods, then sweep orphan files;
        every REQUESTS_RETENTION_INTERVAL seconds (0 turns it off)."""
        interval = self.retention_interval()
        if interval <= 0:
            return
        wait = min(RETENTION_FIRST_DELAY, interval)
        while not stop.wait(wait):
            wait = interval
            try:
                ops = self.operations()
                ops.purge_expired()
                ops.sweep_files()
            except Exception as exc:  # the database is down: the next run tries again
                log.warning("retention_failed", error=str(exc))

    def start_worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        threads = super().start_worker_threads(stop)
        if self.retention_interval() <= 0:
            return threads  # turned off (run_worker stops when one of its threads ends)
        thread = threading.Thread(target=self.run_retention, args=(stop,),
                                  name=f"{self.name}-retention", daemon=True)
        thread.start()
        threads.append(thread)
        return threads


def build_runtime(**kwargs) -> RequestsRuntime:
    settings = kwargs.pop("settings", None) or load_settings(NAME, kwargs.pop("environ", None))
    max_upload(settings)  # a wrong value stops the process at start
    # internal_calls: accounts asks for a household's requests and documents (archive, erasure).
    runtime = RequestsRuntime.build(NAME, HANDLERS, settings=settings, internal_calls=True,
                                   **kwargs)
    runtime.store = store_from_settings(settings)
    runtime.handlers["accounts.household.erased"] = erased_handler(runtime.store)
    return runtime


def create_app(runtime: RequestsRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime()
    store = getattr(runtime, "store", None) or store_from_settings(runtime.settings)

    def documents() -> None:
        """Readiness: the document store can be written to."""
        store.check()

    app = create_service_app(
        NAME,
        runtime.settings,
        api_blueprints=API_BLUEPRINTS,
        blueprints=[privacy_blueprint()],  # issue 8: export for accounts only
        db=runtime.db,
        keyset=runtime.keyset,
        service_tokens=runtime.service_tokens,
        description="Catégories de demandes, demandes des familles avec leurs documents, "
                    "traitement par les agents.",
        ready_checks=[runtime.broker_check, documents],
    )
    limit = max_upload(runtime.settings)
    # The whole body of one call (a submission with its documents), its number of parts, and
    # the text parts together: werkzeug answers 413 beyond, which api turns into French.
    app.config["MAX_CONTENT_LENGTH"] = limit
    app.config["MAX_FORM_PARTS"] = MAX_FORM_PARTS
    app.config["MAX_FORM_MEMORY_SIZE"] = 1 * MB
    app.extensions["requests"] = RequestsConfig(store, limit, MAX_FORM_PARTS)
    return app
