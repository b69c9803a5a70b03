"""``portail dev`` as a newcomer meets it: one process, demo data, every service answering."""

from __future__ import annotations

import os
import uuid

import pytest
import requests

from suite.embedded import EmbeddedSuite
from suite.registry import SERVICES
from tests.e2e.support import eventually, login


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    saved = dict(os.environ)
    suite = EmbeddedSuite("127.0.0.1", 0, tmp_path_factory.mktemp("embedded"))
    created = suite.start(fresh=True)
    suite.created = created
    try:
        yield suite
    finally:
        suite.shutdown()
        os.environ.clear()
        os.environ.update(saved)


def test_first_start_seeds_the_demo_data(suite):
    assert "commune jolieville" in suite.created
    assert "commune dammartin" in suite.created
    assert "compte parent@famille.test" in suite.created


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_healthy_through_the_gateway(suite, service):
    response = requests.get(f"{suite.url}/api/{service}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": service}
    ready = requests.get(f"{suite.url}/api/{service}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_publishes_its_openapi_document(suite, service):
    response = requests.get(f"{suite.url}/api/{service}/openapi.json", timeout=5)
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_the_portal_answers_at_the_root_in_french(suite):
    response = requests.get(f"{suite.url}/", timeout=5)
    assert response.status_code == 200
    assert '<html lang="fr"' in response.text


def test_demo_communes_reached_every_service_over_the_bus(suite):
    admin = login(suite.url, "admin@portail.test")
    for service in ("reservations", "billing", "requests", "notifications"):
        for slug in ("jolieville", "dammartin"):
            eventually(lambda s=service, c=slug: admin.get(
                f"{suite.url}/api/{s}/communes/{c}", timeout=5).status_code == 200)


def test_a_new_commune_crosses_from_accounts_to_every_service(suite):
    admin = login(suite.url, "admin@portail.test")
    slug = f"commune-{uuid.uuid4().hex[:6]}"
    created = admin.post(f"{suite.url}/api/accounts/communes",
                         json={"slug": slug, "name": "Saint-Essai"}, timeout=5)
    assert created.status_code == 201, created.text
    for service in ("reservations", "billing", "requests", "notifications"):
        seen = eventually(lambda s=service: admin.get(
            f"{suite.url}/api/{s}/communes/{slug}", timeout=5))
        assert seen.json()["id"] == created.json()["id"]
        assert seen.json()["name"] == "Saint-Essai"


def test_a_second_seed_creates_nothing(suite):
    from suite import operations

    assert operations.seed() == []
