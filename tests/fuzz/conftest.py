"""One embedded suite (every service, the gateway, demo data) for the fuzzing tests, and a
bearer token per role, obtained by logging in through the gateway as a client would."""

from __future__ import annotations

import os

import pytest

from suite.embedded import EmbeddedSuite
from tests.e2e.support import eventually, login

ROLES = {
    "parent": "parent@famille.test",
    "agent": "agent@jolieville.test",
    "admin": "admin@portail.test",
}


@pytest.fixture(scope="package")
def suite(tmp_path_factory):
    saved = dict(os.environ)
    # Thousands of requests: one INFO line each would cost more than the requests.
    os.environ["LOG_LEVEL"] = "WARNING"
    suite = EmbeddedSuite("127.0.0.1", 0, tmp_path_factory.mktemp("fuzz"))
    try:
        suite.start(fresh=True)
        admin = login(suite.url, ROLES["admin"])
        # Every service knows the demo communes before anything is thrown at it.
        for service in ("reservations", "billing", "requests", "notifications"):
            eventually(lambda s=service: admin.get(
                f"{suite.url}/api/{s}/communes/jolieville", timeout=10).status_code == 200)
        yield suite
    finally:
        suite.shutdown()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="package")
def tokens(suite) -> dict[str, str]:
    return {role: login(suite.url, email).headers["Authorization"].removeprefix("Bearer ")
            for role, email in ROLES.items()}


def service_url(suite, name: str) -> str:
    """Where one service answers on its own, behind the gateway's back."""
    return f"http://127.0.0.1:{suite.servers[name].server_port}"
