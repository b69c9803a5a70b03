from __future__ import annotations

import pytest

from .support import FakeGateway, build


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def app(fake):
    return build(fake)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def parent(client, fake):
    """A client logged in as the demo parent (two communes)."""
    fake.parent()
    client.set_cookie("portail_session", "s3cr3t")
    return client


@pytest.fixture
def agent(client, fake):
    """A client logged in as JolieVille's agent."""
    fake.agent()
    client.set_cookie("portail_session", "s3cr3t")
    return client
