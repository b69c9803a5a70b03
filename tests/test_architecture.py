"""The architecture stays visible: services independent, the kit small and service-free."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.common import catalogue
from suite import registry

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_linter_contracts_hold():
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_import_linter_catches_a_service_importing_another(tmp_path):
    """The contract is not vacuous: a service importing another service breaks it."""
    culprit = ROOT / "services" / "billing" / "_contract_probe.py"
    culprit.write_text("from services.accounts import models  # noqa: F401\n")
    try:
        result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
    finally:
        culprit.unlink()
    assert result.returncode != 0
    assert "services.billing" in result.stdout


@pytest.mark.parametrize("service", registry.SERVICES)
def test_each_service_has_the_same_few_files(service):
    folder = ROOT / "services" / service
    for name in ("app.py", "models.py", "api.py", "events.py", "worker.py", "migrations"):
        assert (folder / name).exists(), f"services/{service}/{name} manque"


def _events(service):
    return registry.events_module(service)


def test_every_consumed_event_has_a_schema_and_an_owning_producer():
    """A consumer may handle a type its producer does not publish yet (the catalogue is the
    contract both sides are written against), but never a type outside the catalogue."""
    for service in registry.SERVICES:
        for event_type in _events(service).HANDLERS:
            assert event_type in catalogue.SCHEMAS, f"{event_type} absent du catalogue"
            producer = event_type.split(".", 1)[0]
            assert producer in registry.SERVICES and producer != service, event_type


def test_every_published_event_has_a_schema():
    for service in registry.SERVICES:
        for event_type in getattr(_events(service), "PUBLISHES", ()):
            assert event_type.startswith(f"{service}."), event_type
            assert 1 in catalogue.SCHEMAS[event_type], event_type


def test_demo_tariffs_price_the_demo_activities():
    """Billing prices what reservations books: the demo tariffs' activity ids are the demo
    activities' ids (both derive them from the commune and the activity code)."""
    import importlib

    billing_seed = importlib.import_module("services.billing.seed")
    reservations_seed = importlib.import_module("services.reservations.seed")
    booked = {spec["key"] for specs in reservations_seed.ACTIVITIES.values() for spec in specs}
    priced = {row[0] for row in billing_seed.TARIFFS}
    assert booked <= priced, f"activités sans tarif : {sorted(booked - priced)}"
