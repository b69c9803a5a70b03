"""The worker's payment-expiry loop, and the simulator's key."""

from __future__ import annotations

import threading
import time

import pytest

from services.billing.providers import providers_from_settings, simulator_key
from services.common.config import ConfigError, Settings
from tests.billing.support import AGENT, PARENT, RETURN_URL, build


def test_the_worker_expires_payments_left_pending(tmp_path):
    billing = build(tmp_path, f"sqlite:///{tmp_path}/w.db", PAYMENT_EXPIRY_MINUTES="0",
                    PAYMENT_EXPIRY_INTERVAL="0.05")
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        invoice = billing.post("/api/billing/communes/jolieville/invoices", AGENT, json={
            "family_id": PARENT.family_id,
            "lines": [{"label": "Divers", "unit_price": "3.00"}]}).get_json()
        payment = billing.post("/api/billing/payments", PARENT, json={
            "invoice_ids": [invoice["id"]], "return_url": RETURN_URL}).get_json()["payment_id"]
        threads = billing.runtime.start_worker_threads(stop)
        assert any(t.name == "billing-payment-expiry" for t in threads)
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            status = billing.get(f"/api/billing/payments/{payment}", PARENT).get_json()["status"]
            if status == "expired":
                break
            time.sleep(0.05)
        assert status == "expired"
        assert [e["data"]["status"] for e in billing.events("billing.payment.failed")] == [
            "expired"]
    finally:
        stop.set()
        for thread in threads:  # consumers on the in-memory bus must not outlive the test
            thread.join(10)
        billing.db.dispose()
    assert not any(thread.is_alive() for thread in threads)


def test_simulator_key(tmp_path):
    dev = Settings(service="billing", env="dev", data_dir=tmp_path)
    assert simulator_key(dev) == simulator_key(dev)  # kept in the data dir
    assert (tmp_path / "keys" / "payment-simulator.key").exists()
    given = Settings(service="billing", env="production", secret_key="s" * 40,
                     extra={"PAYMENT_SIMULATOR_KEY": "k" * 32})
    assert simulator_key(given) == b"k" * 32
    derived = Settings(service="billing", env="production", secret_key="s" * 40)
    assert simulator_key(derived) != simulator_key(Settings(
        service="billing", env="production", secret_key="t" * 40))
    with pytest.raises(ConfigError):
        providers_from_settings(Settings(service="billing", env="dev", data_dir=tmp_path,
                                         extra={"PAYMENT_PROVIDER": "payfip"}))
