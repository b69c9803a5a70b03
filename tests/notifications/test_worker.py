"""The worker process: the sender runs beside the relay and the consumer."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from services.common.auth import generate_private_key_pem
from services.common.bus import Publisher
from services.common.config import ConfigError
from services.common.mailbox import list_messages
from services.notifications.app import NotificationsRuntime, build_runtime
from tests.notifications.conftest import service_environ
from tests.notifications.support import event


def wait_for(probe, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"toujours rien après {timeout} s")


def test_an_invitation_crosses_the_bus_and_lands_in_the_dev_mailbox(tmp_path, db_url):
    environ = service_environ(tmp_path, db_url, BUS_PREFIX=f"test-{uuid.uuid4().hex[:8]}.")
    runtime = build_runtime(environ=environ)
    assert isinstance(runtime, NotificationsRuntime)
    runtime.declare_bus()
    stop = threading.Event()
    threads = runtime.start_worker_threads(stop)
    try:
        assert "notifications-sender" in {t.name for t in threads}
        publish = Publisher("memory://", runtime.topology)
        publish(event("accounts.commune.created"))
        invited = event("accounts.family.invited")
        publish(invited)
        publish(invited)  # redelivered: still one mail
        [mail] = wait_for(lambda: list_messages(tmp_path / "mailbox"))
        assert mail["subject"] == "Activez votre compte sur le portail famille de JolieVille Test"
        assert "http://localhost:8000/activation?token=abc123" in mail["text"]
        time.sleep(0.5)
        assert len(list_messages(tmp_path / "mailbox")) == 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        runtime.db.dispose()
    assert not any(t.is_alive() for t in threads)


def test_a_worker_without_smtp_url_in_production_does_not_start(tmp_path, db_url):
    environ = service_environ(tmp_path, db_url, PORTAIL_ENV="production", SMTP_URL="",
                              PORTAIL_SECRET_KEY="s", JWT_PUBLIC_KEYS='{"keys": []}',
                              SERVICE_TOKEN_KEY=generate_private_key_pem())
    runtime = build_runtime(environ=environ)
    stop = threading.Event()
    with pytest.raises(ConfigError, match="SMTP_URL"):
        runtime.start_worker_threads(stop)
    stop.set()
    runtime.db.dispose()
