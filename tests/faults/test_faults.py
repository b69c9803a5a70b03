"""The short fault run, then timeouts and fallbacks, on one distributed topology.

The short run kills processes and loses payment notifications but restarts no server, so it
uses the shared PostgreSQL and RabbitMQ; the full run (``python -m tests.faults``, see
RELIABILITY.md) restarts them too, on servers of its own (tests/faults/servers.py).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from services.common.errors import PROBLEM_TYPE
from tests.e2e.support import eventually
from tests.faults.suite import (
    SHORT_ENV,
    run_faults,
    shared_infra,
    short_faults,
    start_topology,
    summary,
    table,
)

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def infra(pg_server, amqp_url):
    # The short run restarts no server: the shared ones serve (the full run starts its own).
    return shared_infra(pg_server, amqp_url)


@pytest.fixture(scope="module")
def topology(infra, tmp_path_factory):
    topology = start_topology(infra, tmp_path_factory.mktemp("faults"), env=SHORT_ENV)
    yield topology
    topology.stop()


def parent_session(base: str) -> requests.Session:
    http = requests.Session()
    answer = http.post(f"{base}/auth/login", json={"email": "parent@famille.test",
                                                   "password": "portail-demo"}, timeout=30)
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    # The session cookie, for the portal's pages (its Secure flag keeps requests from sending
    # the one the gateway set over plain HTTP).
    http.cookies.set("portail_session", token)
    return http


def test_a_stream_of_operations_loses_nothing_through_faults(topology, infra):
    run = run_faults(topology, infra, short_faults())
    print(table(run))
    print(summary(run))
    assert run.report.problems() == []
    assert all(row.recovered is not None for row in run.rows), table(run)
    accepted = {op.kind for op in run.stream.ops if op.outcome == "accepted"}
    assert {"monthly_booking", "prepaid_booking", "request"} <= accepted, summary(run)


def test_a_dead_service_is_a_french_502(topology):
    parent = parent_session(topology.url)
    topology.kill("serve-billing")
    try:
        answer = parent.get(f"{topology.url}/api/billing/communes/jolieville/invoices",
                            timeout=30)
        assert answer.status_code == 502
        assert answer.headers["Content-Type"] == PROBLEM_TYPE
        assert answer.json()["detail"] == ("Ce service du portail est momentanément "
                                           "indisponible. Réessayez dans quelques instants.")
        # the portal's home page shows everything else, and a notice for the invoices
        page = parent.get(f"{topology.url}/", timeout=30)
        assert page.status_code == 200
        assert "Vos factures ne peuvent pas être affichées pour le moment." in page.text
        assert "Mes prochaines réservations" in page.text
        assert "Vos prochaines réservations ne peuvent pas" not in page.text
        assert "Actualités" in page.text
    finally:
        topology.restart("serve-billing", wait=True)


def test_a_hung_service_takes_only_its_share_of_the_gateways_threads(topology):
    """Billing frozen (SIGSTOP: connections accepted, nothing answered): at most half of the
    gateway's 8 threads wait for it, each until UPSTREAM_TIMEOUT (10 s), the calls beyond are
    answered 503 (at once, or after GATEWAY_QUEUE_WAIT when billing had given a place back
    just before), and the other services keep answering through the same gateway."""
    parent = parent_session(topology.url)
    invoices = f"{topology.url}/api/billing/communes/jolieville/invoices"
    topology.pause("serve-billing")
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            calls = [pool.submit(parent.get, invoices, timeout=60) for _ in range(8)]
            # the calls beyond the limit come back first: the limit is reached
            eventually(lambda: sum(c.done() for c in calls) >= 4, timeout=30)
            # Without the limit, the gateway's 8 threads would all wait 10 s for billing and
            # these calls would wait with them: the 8 s below would not be enough.
            family = parent.get(f"{topology.url}/api/accounts/me/family", timeout=8)
            assert family.status_code == 200
            bookings = parent.get(f"{topology.url}/api/reservations/communes/jolieville/"
                                  "bookings", timeout=8)
            assert bookings.status_code == 200
            answers = [c.result() for c in calls]
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [503] * 4 + [504] * 4, statuses
        assert all(a.headers["Content-Type"] == PROBLEM_TYPE for a in answers)
        details = {a.json()["detail"] for a in answers}
        assert details == {"Ce service du portail est surchargé. Réessayez dans quelques "
                           "instants.",
                           "Le service a mis trop de temps à répondre. Réessayez plus tard."}
    finally:
        topology.resume("serve-billing")


def test_the_portal_shows_the_page_while_a_service_hangs(topology):
    parent = parent_session(topology.url)
    topology.pause("serve-billing")
    try:
        started = time.monotonic()
        page = parent.get(f"{topology.url}/", timeout=60)
        waited = time.monotonic() - started
        assert page.status_code == 200
        assert "Vos factures ne peuvent pas être affichées pour le moment." in page.text
        assert "Mes prochaines réservations" in page.text
        assert "Vos prochaines réservations ne peuvent pas" not in page.text
        print(f"page d'accueil servie en {waited:.1f} s avec la facturation figée")
    finally:
        topology.resume("serve-billing")
