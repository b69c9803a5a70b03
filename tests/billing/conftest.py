"""Fixtures of the billing tests (see support.py).

``billing`` runs each API test on SQLite (the embedded mode) and on PostgreSQL (production).
"""

from __future__ import annotations

import pytest

from tests.billing.support import Billing, build


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def billing(request, tmp_path) -> Billing:
    url = (f"sqlite:///{tmp_path}/billing.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    built = build(tmp_path, url)
    yield built
    built.db.dispose()


@pytest.fixture
def pg_billing(tmp_path, pg_url) -> Billing:
    built = build(tmp_path, pg_url)
    yield built
    built.db.dispose()
