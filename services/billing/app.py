"""create_app for the billing service, and its runtime (worker threads + payment expiry)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from flask import Flask

from services.common.app import create_app as create_service_app
from services.common.logging import get_logger
from services.common.runtime import Runtime

from . import NAME
from .api import API_BLUEPRINTS, BLUEPRINTS
from .events import HANDLERS, on_basket_expired
from .operations import Billing, expire_payments
from .privacy import privacy_blueprint
from .providers.pages import pages as provider_pages

log = get_logger(__name__)


@dataclass
class BillingRuntime(Runtime):
    """The common runtime, plus the loop expiring payments left pending too long (after asking
    their provider once more: reconciliation)."""

    def billing(self) -> Billing:
        return Billing.of(self.db, self.settings)

    @property
    def payment_ttl(self) -> timedelta:
        return timedelta(minutes=float(self.settings.extra.get("PAYMENT_EXPIRY_MINUTES")
                                       or 120))

    def expiry_loop(self, stop: threading.Event, providers) -> None:
        interval = float(self.settings.extra.get("PAYMENT_EXPIRY_INTERVAL") or 60)
        while not stop.is_set():
            try:
                while expire_payments(self.db, self.payment_ttl, providers=providers) >= 100:
                    pass
            except Exception as exc:  # the database is down: try again later
                log.warning("payment_expiry_failed", error=str(exc))
            stop.wait(interval)

    def start_worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        # Built first: a wrong PAYMENT_PROVIDER stops the worker at start.
        providers = self.billing().providers
        # A basket's expiry asks the provider before cancelling its payment (reconciliation).
        self.handlers["reservations.basket.expired"] = partial(on_basket_expired,
                                                               providers=providers)
        threads = super().start_worker_threads(stop)
        thread = threading.Thread(target=self.expiry_loop, args=(stop, providers),
                                  name=f"{self.name}-payment-expiry", daemon=True)
        thread.start()
        threads.append(thread)
        return threads


def build_runtime(**kwargs) -> BillingRuntime:
    return BillingRuntime.build(NAME, HANDLERS, internal_calls=True, **kwargs)


def create_app(runtime: Runtime | None = None) -> Flask:
    runtime = runtime or build_runtime()
    app = create_service_app(
        NAME,
        runtime.settings,
        api_blueprints=API_BLUEPRINTS,
        blueprints=[*BLUEPRINTS, provider_pages, privacy_blueprint()],
        db=runtime.db,
        keyset=runtime.keyset,
        service_tokens=runtime.service_tokens,
        description="Tarifs, factures, avoirs, paiements en ligne et retours des prestataires.",
        ready_checks=[runtime.broker_check],
    )
    app.extensions["billing"] = Billing.of(runtime.db, runtime.settings)
    return app
