"""create_app for the notifications service, and its runtime (worker threads + sender)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flask import Flask

from services.common.app import create_app as create_service_app
from services.common.config import load_settings
from services.common.runtime import Runtime

from . import NAME
from .api import API_BLUEPRINTS
from .domain import NotifierConfig
from .events import build_handlers
from .privacy import DEFAULT_INTERVAL, privacy_blueprint, retention_loop
from .sender import Sender, sender_from_settings


@dataclass
class NotificationsRuntime(Runtime):
    """The common runtime, plus the sender loop among the worker's threads."""

    def sender(self) -> Sender:
        return sender_from_settings(self.db, self.settings)

    def start_worker_threads(self, stop: threading.Event) -> list[threading.Thread]:
        # Built first: a wrong SMTP_URL stops the worker at start, before anything runs.
        sender = self.sender()
        threads = super().start_worker_threads(stop)
        thread = threading.Thread(target=sender.run, args=(stop,), name=f"{self.name}-sender",
                                  daemon=True)
        thread.start()
        threads.append(thread)
        # Issue 8: sent e-mails go after their commune's retention period.
        raw = self.settings.extra.get("PRIVACY_RETENTION_INTERVAL")
        interval = float(raw) if raw not in (None, "") else DEFAULT_INTERVAL
        if interval > 0:
            thread = threading.Thread(target=retention_loop, args=(self.db, interval, stop),
                                      name=f"{self.name}-retention", daemon=True)
            thread.start()
            threads.append(thread)
        return threads


def build_runtime(**kwargs) -> NotificationsRuntime:
    settings = kwargs.pop("settings", None) or load_settings(NAME, kwargs.pop("environ", None))
    handlers = build_handlers(NotifierConfig.from_settings(settings))
    # internal_calls: accounts asks for a household's e-mails when it builds its archive.
    return NotificationsRuntime.build(NAME, handlers, settings=settings, internal_calls=True,
                                      **kwargs)


def create_app(runtime: Runtime | None = None) -> Flask:
    runtime = runtime or build_runtime()
    return create_service_app(
        NAME,
        runtime.settings,
        api_blueprints=API_BLUEPRINTS,
        blueprints=[privacy_blueprint()],  # issue 8: export for accounts only
        db=runtime.db,
        keyset=runtime.keyset,
        service_tokens=runtime.service_tokens,
        description="Courriels envoyés aux familles à partir des événements ; historique.",
        ready_checks=[runtime.broker_check],
    )
