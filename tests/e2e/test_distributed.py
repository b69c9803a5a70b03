"""The distributed topology in production mode: an event crosses between processes.

Keys, URLs and secrets come from the environment as in production, and an event is seen
crossing from accounts' processes to reservations' processes through the gateway's public API.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from services.common.auth import Principal, Signer, generate_private_key_pem
from tests.e2e.support import eventually, login
from tests.e2e.topology import DistributedTopology

pytestmark = [pytest.mark.services, pytest.mark.slow]


@pytest.fixture(scope="module")
def topology(pg_server, amqp_url, tmp_path_factory):
    topology = DistributedTopology(pg_server, amqp_url, tmp_path_factory.mktemp("distributed"),
                                   mode="production")
    topology.start(web=("gateway", "accounts", "reservations"),
                   workers=("accounts", "reservations"))
    yield topology
    topology.stop()


def test_an_event_crosses_between_processes_through_the_public_api(topology):
    base = topology.url
    admin = login(base, "admin@portail.test")
    for slug in ("jolieville", "dammartin"):  # the seed's events, relayed by accounts-worker
        eventually(lambda c=slug: admin.get(f"{base}/api/reservations/communes/{c}",
                                            timeout=5).status_code == 200, timeout=30)
    slug = f"distrib-{uuid.uuid4().hex[:6]}"
    created = admin.post(f"{base}/api/accounts/communes",
                         json={"slug": slug, "name": "Ville-Distribuée"}, timeout=10)
    assert created.status_code == 201, created.text

    def known_to_reservations():
        response = admin.get(f"{base}/api/reservations/communes/{slug}", timeout=5)
        return response if response.status_code == 200 else None

    seen = eventually(known_to_reservations, timeout=30)
    assert seen.json()["id"] == created.json()["id"]
    assert topology.alive(), "un processus est mort"


def test_a_service_process_verifies_the_token_itself(topology):
    """Reached directly (bypassing the gateway), a service refuses a forged admin token."""
    forged = Signer(generate_private_key_pem()).mint(
        Principal(account_id="intrus", platform_admin=True), audience="accounts")
    response = requests.post(f"{topology.env['ACCOUNTS_URL']}/api/accounts/communes",
                             json={"slug": "pirate", "name": "Pirate"},
                             headers={"Authorization": f"Bearer {forged}"}, timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
