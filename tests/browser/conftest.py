"""Browser tests: the system Chromium driven by Playwright, against the embedded suite.

Chromium comes from the system (`apt-get install chromium`), never from Playwright's own
download. Without it the tests are skipped with one line saying why, or fail when
``PORTAIL_REQUIRE_SERVICES=1`` (CI installs it).
"""

from __future__ import annotations

import os
import shutil

import pytest

from suite.embedded import EmbeddedSuite
from suite.registry import SERVICES
from tests import infra

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        infra.unavailable("Chromium", "installer le paquet système chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        infra.unavailable("Playwright", "installer les dépendances de test")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def wait_for_demo_data(base: str) -> None:
    """Until every service has received the demo communes and households over the bus: the
    journeys start as a person would, on a portal whose data has settled."""
    from tests.e2e.support import eventually, login

    admin = login(base, "admin@portail.test")
    parent = login(base, "parent@famille.test")
    for service in ("reservations", "billing", "requests", "notifications"):
        for slug in ("jolieville", "dammartin"):
            eventually(lambda s=service, c=slug: admin.get(
                f"{base}/api/{s}/communes/{c}", timeout=5).status_code == 200, timeout=60)
    children = parent.get(f"{base}/api/accounts/me/family", timeout=5).json()["children"]
    for child in children:  # the household reached reservations
        eventually(lambda c=child: parent.get(
            f"{base}/api/reservations/communes/jolieville/children/{c['id']}/calendar",
            timeout=5).status_code == 200, timeout=60)
    eventually(lambda: parent.get(f"{base}/api/requests/communes/jolieville/categories",
                                  timeout=5).status_code == 200, timeout=60)
    admin.post(f"{base}/auth/logout", timeout=5)
    parent.post(f"{base}/auth/logout", timeout=5)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def suite(request, tmp_path_factory):
    """The journey runs on both topologies: ``portail dev`` in one process, and every process
    separate against PostgreSQL, RabbitMQ and an SMTP server (as ``portail up``)."""
    if request.param == "distributed":
        from tests.e2e.topology import DistributedTopology

        topology = DistributedTopology(request.getfixturevalue("pg_server"),
                                       request.getfixturevalue("amqp_url"),
                                       tmp_path_factory.mktemp("browser-distributed"),
                                       mode="dev")
        topology.start(web=("gateway", "portal", *SERVICES), workers=SERVICES, smtp=True)
        try:
            wait_for_demo_data(topology.url)
            yield topology
        finally:
            topology.stop()
        return
    saved = dict(os.environ)
    suite = EmbeddedSuite("127.0.0.1", 0, tmp_path_factory.mktemp("browser"))
    try:
        suite.start(fresh=True)
        wait_for_demo_data(suite.url)
        yield suite
    finally:  # also when setting up failed: no consumer thread may outlive its suite
        suite.shutdown()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def new_page(browser):
    contexts = []

    def make():
        context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
