"""create_app for the reservations service, and its runtime (worker threads + hold sweeper)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask

from services.common.app import create_app as create_service_app
from services.common.logging import get_logger
from services.common.runtime import Runtime

from . import NAME
from .api import API_BLUEPRINTS
from .domain.opening import warm
from .events import build_handlers, system_clock
from .operations import Operations, ServiceBilling
from .privacy import privacy_blueprint

log = get_logger(__name__)

DEFAULT_HOLD_MINUTES = 60
DEFAULT_SWEEP_SECONDS = 5.0


def _number(settings, name: str, default, kind=int):
    raw = settings.extra.get(name)
    try:
        return kind(raw) if raw not in (None, "") else default
    except ValueError:
        log.warning("invalid_setting", name=name, value=raw)
        return default


@dataclass
class ReservationsRuntime(Runtime):
    """The common runtime, plus the sweeper among the worker's threads: it releases the holds
    whose time ran out (``reservations.basket.expired``) and the waiting-list offers nobody
    answered, giving their places to the next in line."""

    clock: Callable[[], datetime] = field(default=system_clock)
    _operations: Operations | None = None

    def now(self) -> datetime:
        return self.clock()

    def operations(self) -> Operations:
        if self._operations is None:
            self._operations = Operations(
                db=self.db, billing=ServiceBilling(self.client),
                public_url=self.settings.public_url.rstrip("/"),
                hold_minutes=_number(self.settings, "BOOKING_HOLD_MINUTES",
                                     DEFAULT_HOLD_MINUTES),
                clock=self.now)
        return self._operations

    @property
    def sweep_interval(self) -> float:
        return _number(self.settings, "BOOKING_SWEEP_SECONDS", DEFAULT_SWEEP_SECONDS, float)

    def sweep_loop(self, stop: threading.Event) -> None:
        operations = self.operations()
        while not stop.is_set():
            try:
                done = operations.sweep()
                if any(done.values()):
                    log.info("reservations_swept", **done)
            except Exception as exc:  # the database is down: try again at the next round
                log.warning("reservations_sweep_failed", error=repr(exc))
            stop.wait(self.sweep_interval)

    def start_worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        threads = super().start_worker_threads(stop)
        thread = threading.Thread(target=self.sweep_loop, args=(stop,),
                                  name=f"{self.name}-sweeper", daemon=True)
        thread.start()
        threads.append(thread)
        return threads


def build_runtime(**kwargs) -> ReservationsRuntime:
    holder: list[ReservationsRuntime] = []
    handlers = build_handlers(lambda: holder[0].now())
    runtime = ReservationsRuntime.build(NAME, handlers, internal_calls=True, **kwargs)
    holder.append(runtime)
    return runtime


def create_app(runtime: Runtime | None = None) -> Flask:
    runtime = runtime or build_runtime()
    app = create_service_app(
        NAME,
        runtime.settings,
        api_blueprints=API_BLUEPRINTS,
        # issue 8: the household's export and erasure checks, for accounts only
        blueprints=[privacy_blueprint(getattr(runtime, "now", system_clock))],
        db=runtime.db,
        keyset=runtime.keyset,
        service_tokens=runtime.service_tokens,
        description="Activités, calendriers, panier, réservations, annulations, liste "
                    "d'attente et pointage.",
        ready_checks=[runtime.broker_check],
    )
    # The holiday tables every booking rule reads, built before the first request needs them.
    warm(getattr(runtime, "now", system_clock)().date())
    if isinstance(runtime, ReservationsRuntime):
        app.extensions["reservations"] = runtime.operations()
    else:  # a plain runtime (tools): the same use cases, on the system clock
        app.extensions["reservations"] = Operations(
            db=runtime.db, billing=ServiceBilling(runtime.client),
            public_url=runtime.settings.public_url.rstrip("/"))
    return app
