"""Fixtures of the requests tests (see support.py)."""

from __future__ import annotations

import pytest

from tests.requests.support import Requests, build


@pytest.fixture
def requests_app(tmp_path) -> Requests:
    built = build(tmp_path, f"sqlite:///{tmp_path}/requests.db")
    yield built
    built.db.dispose()


@pytest.fixture
def pg_requests_app(tmp_path, pg_url) -> Requests:
    built = build(tmp_path, pg_url)
    yield built
    built.db.dispose()
