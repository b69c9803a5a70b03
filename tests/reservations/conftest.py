"""Fixtures of the reservations tests (see support.py)."""

from __future__ import annotations

import pytest

from tests.reservations.support import Clock, FakeBilling, Reservations, build


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def billing(tmp_path, monkeypatch) -> FakeBilling:
    fake = FakeBilling(tmp_path)
    monkeypatch.setenv("BILLING_URL", fake.url)
    yield fake
    fake.stop()


@pytest.fixture
def reservations(tmp_path, clock, billing) -> Reservations:
    built = build(tmp_path, f"sqlite:///{tmp_path}/reservations.db", clock)
    yield built
    built.db.dispose()


@pytest.fixture
def pg_reservations(tmp_path, pg_url, clock, billing) -> Reservations:
    built = build(tmp_path, pg_url, clock)
    yield built
    built.db.dispose()
