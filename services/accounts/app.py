"""create_app for the accounts service."""

from __future__ import annotations

import threading

from flask import Flask

from services.common.app import create_app as create_service_app
from services.common.runtime import Runtime

from . import NAME
from .api import API_BLUEPRINTS, internal
from .events import HANDLERS
from .privacy_api import PRIVACY_BLUEPRINTS
from .retention import DEFAULT_INTERVAL, retention_loop
from .totp import SecretBox


class AccountsRuntime(Runtime):
    """The common runtime, plus the retention job (issue 8) among the worker's threads."""

    def start_worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        threads = super().start_worker_threads(stop)
        raw = self.settings.extra.get("PRIVACY_RETENTION_INTERVAL")
        interval = float(raw) if raw not in (None, "") else DEFAULT_INTERVAL
        if interval > 0:
            thread = threading.Thread(target=retention_loop, args=(self.db, interval, stop),
                                      name=f"{self.name}-retention", daemon=True)
            thread.start()
            threads.append(thread)
        return threads


def build_runtime(**kwargs) -> Runtime:
    # internal_calls: the household's archive and erasure checks call the other services.
    return AccountsRuntime.build(NAME, HANDLERS, internal_calls=True, **kwargs)


def create_app(runtime: Runtime | None = None) -> Flask:
    runtime = runtime or build_runtime()
    # Built now so that production without TOTP_ENCRYPTION_KEY stops at start, not at login.
    box = SecretBox.of(runtime.settings)
    app = create_service_app(
        NAME,
        runtime.settings,
        api_blueprints=[*API_BLUEPRINTS, *PRIVACY_BLUEPRINTS],
        blueprints=[internal],
        db=runtime.db,
        keyset=runtime.keyset,
        service_tokens=runtime.service_tokens,
        description="Identité, communes, foyers, agents, adhésions et actualités.",
        ready_checks=[runtime.broker_check],
    )
    app.extensions["totp_box"] = box
    return app
