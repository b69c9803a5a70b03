"""Fixtures of the accounts tests (see support.py)."""

from __future__ import annotations

import pytest

from tests.accounts.support import Accounts, build


@pytest.fixture
def accounts(tmp_path) -> Accounts:
    built = build(tmp_path, f"sqlite:///{tmp_path}/a.db")
    yield built
    built.db.dispose()


@pytest.fixture
def pg_accounts(tmp_path, pg_url) -> Accounts:
    built = build(tmp_path, pg_url)
    yield built
    built.db.dispose()
