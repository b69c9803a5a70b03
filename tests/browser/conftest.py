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
from tests.e2e.support import wait_for_demo_data

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
