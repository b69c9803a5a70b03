"""An upstream that is down or too slow: a French problem, quickly (DESIGN section 1)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from gateway.app import create_app
from services.common.config import ConfigError
from services.common.errors import PROBLEM_TYPE
from tests.common.servers import closed_port

from .conftest import TIMEOUT, UPSTREAMS, gateway_settings


@pytest.mark.parametrize("path", ["/api/billing/invoices", "/"])
def test_upstream_down_is_a_quick_french_502(make_gateway, upstreams, path):
    name = "billing" if path.startswith("/api/") else "portal"
    urls = {n: fake.url for n, fake in upstreams.items()}
    urls[name] = f"http://127.0.0.1:{closed_port()}"
    gateway = make_gateway(urls)

    started = time.monotonic()
    response = requests.get(gateway.url + path, timeout=10)
    elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.headers["Content-Type"] == PROBLEM_TYPE
    body = response.json()
    assert body["title"] == "Service indisponible"
    assert body["detail"] == ("Ce service du portail est momentanément indisponible. "
                              "Réessayez dans quelques instants.")
    assert body["service"] == name
    assert elapsed < 2
    assert response.headers["X-Request-ID"]


def test_upstream_slower_than_the_timeout_is_a_french_504(gateway, upstreams):
    started = time.monotonic()
    response = requests.get(gateway.url + "/api/reservations/_slow", timeout=10)
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.headers["Content-Type"] == PROBLEM_TYPE
    body = response.json()
    assert body["title"] == "Le service ne répond pas"
    assert body["detail"] == "Le service a mis trop de temps à répondre. Réessayez plus tard."
    assert body["service"] == "reservations"
    assert TIMEOUT <= elapsed < TIMEOUT + 1
    assert upstreams["reservations"].calls  # it was asked, and did not answer in time


def test_other_upstreams_answer_while_one_hangs(gateway, upstreams):
    slow = threading.Thread(target=requests.get,
                            args=(gateway.url + "/api/reservations/_slow",),
                            kwargs={"timeout": 10})
    slow.start()
    try:
        started = time.monotonic()
        assert requests.get(gateway.url + "/api/billing/x", timeout=10).status_code == 200
        assert time.monotonic() - started < TIMEOUT
    finally:
        upstreams["reservations"].release.set()
        slow.join(timeout=10)


def test_missing_upstream_urls_are_all_reported_at_start(tmp_path):
    settings = gateway_settings(tmp_path, f"sqlite:///{tmp_path / 'g.sqlite3'}", {})
    with pytest.raises(ConfigError) as info:
        create_app(settings)
    missing = {p.split()[0] for p in info.value.problems}
    assert missing == {f"{name.upper()}_URL" for name in UPSTREAMS}


def test_a_bad_upstream_timeout_is_reported_at_start(tmp_path, upstreams):
    urls = {n: fake.url for n, fake in upstreams.items()}
    settings = gateway_settings(tmp_path, f"sqlite:///{tmp_path / 'g.sqlite3'}", urls,
                                extra={"UPSTREAM_TIMEOUT": "dix"})
    with pytest.raises(ConfigError) as info:
        create_app(settings)
    assert info.value.problems == ["UPSTREAM_TIMEOUT doit être un nombre (reçu 'dix')"]
