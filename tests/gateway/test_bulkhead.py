"""One hung service holds at most a bounded share of the gateway's threads.

Calls to one upstream in flight in one gateway process are limited (``upstreams.py``): while
the upstream keeps giving places back (a surge), the calls beyond wait their turn; once it has
given none back for a while (hung), they answer a French 503 at once instead of queueing
behind the hung ones. The places come back when the bodies have been sent, so the limit never
leaks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from gateway.upstreams import Bulkhead
from services.common.errors import PROBLEM_TYPE


@pytest.fixture
def patient(make_gateway, upstreams):
    """A gateway whose upstream timeout (5 s) outlasts the waits these tests measure."""
    return make_gateway({name: fake.url for name, fake in upstreams.items()},
                        extra={"UPSTREAM_TIMEOUT": "5"})


def limit(gateway, size: int, wait: float = 0.3) -> dict[str, Bulkhead]:
    upstreams = gateway.app.extensions["gateway"].upstreams
    upstreams.in_flight = {name: Bulkhead(size, wait) for name in upstreams.urls}
    return upstreams.in_flight


def free(slot: Bulkhead, size: int) -> bool:
    """Whether all ``size`` places come back (the server closes a response just after the
    client has read it)."""
    return all(slot._places.acquire(timeout=5) for _ in range(size))


def test_calls_beyond_the_limit_answer_503_at_once_and_others_go_on(patient, upstreams):
    gateway = patient
    slots = limit(gateway, 2)
    held = upstreams["reservations"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        hung = [pool.submit(requests.get, gateway.url + "/api/reservations/_slow", timeout=20)
                for _ in range(2)]
        try:
            # both calls are at the upstream now (their slots are taken)
            for _ in range(200):
                if len(held.calls) == 2:
                    break
                threading.Event().wait(0.05)
            assert len(held.calls) == 2
            # no place has come back for longer than the wait: the upstream is hung
            threading.Event().wait(0.5)
            third = requests.get(gateway.url + "/api/reservations/x", timeout=20)
            assert third.status_code == 503
            assert third.headers["Content-Type"] == PROBLEM_TYPE
            assert third.json()["detail"] == ("Ce service du portail est surchargé. Réessayez "
                                              "dans quelques instants.")
            assert third.json()["service"] == "reservations"
            assert len(held.calls) == 2  # not sent on
            # another service is not affected
            assert requests.get(gateway.url + "/api/billing/x", timeout=20).status_code == 200
        finally:
            held.release.set()
        assert [f.result().status_code for f in hung] == [200, 200]
    # every slot came back: the limit does not leak
    for _ in range(5):
        assert requests.get(gateway.url + "/api/reservations/x", timeout=20).status_code == 200
    assert all(free(slot, 2) for slot in slots.values())


def test_slots_come_back_after_errors_and_downloads(gateway, upstreams):
    slots = limit(gateway, 1)
    for path in ("/api/billing/_download?size=300000", "/api/billing/nothing-here",
                 "/api/billing/_redirect"):
        requests.get(gateway.url + path, timeout=20, allow_redirects=False)
    assert requests.get(gateway.url + "/api/billing/x", timeout=20).status_code == 200
    assert free(slots["billing"], 1)


def test_the_gateway_process_has_twice_the_threads_one_upstream_may_hold(monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    from gateway.upstreams import MAX_IN_FLIGHT

    conf = str(Path(__file__).resolve().parents[2] / "deploy" / "gunicorn.conf.py")
    for name in ("GATEWAY_THREADS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", conf, "gateway.app:create_app()"])
    assert runpy.run_path(conf)["threads"] == 2 * MAX_IN_FLIGHT
    monkeypatch.setattr(sys, "argv", ["gunicorn", "-c", conf,
                                      "services.billing.app:create_app()"])
    assert runpy.run_path(conf)["threads"] == 4


def test_the_limit_follows_the_gateways_threads(make_gateway, upstreams):
    urls = {name: fake.url for name, fake in upstreams.items()}
    gateway = make_gateway(urls, extra={"GATEWAY_THREADS": "6"})
    assert gateway.app.extensions["gateway"].upstreams.max_in_flight == 3
    assert make_gateway(urls).app.extensions["gateway"].upstreams.max_in_flight == 16


def test_a_busy_upstream_makes_calls_wait_their_turn_not_fail(patient, upstreams):
    gateway = patient
    """The opening-day surge: every place taken, but given back all the time."""
    limit(gateway, 1, wait=5)
    slow = upstreams["reservations"]
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = [pool.submit(requests.get, gateway.url + "/api/reservations/_slow", timeout=20)
                 for _ in range(4)]
        # one call at a time reaches the upstream; each one released lets the next in
        for n in range(1, 5):
            for _ in range(200):
                if len(slow.calls) >= n:
                    break
                threading.Event().wait(0.02)
            assert len(slow.calls) >= n
            # never more than the one place at the upstream at once
            assert len(slow.calls) <= n
            slow.release.set()
            slow.release = threading.Event()
        assert [f.result().status_code for f in calls] == [200, 200, 200, 200]


def test_a_waiting_call_gives_up_after_the_wait(patient, upstreams):
    gateway = patient
    limit(gateway, 1, wait=0.5)
    held = upstreams["reservations"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        hung = pool.submit(requests.get, gateway.url + "/api/reservations/_slow", timeout=20)
        try:
            for _ in range(200):
                if held.calls:
                    break
                threading.Event().wait(0.02)
            # within the wait of the last place given back: this call waits, then gives up
            waiting = requests.get(gateway.url + "/api/reservations/x", timeout=20)
            assert waiting.status_code == 503
            assert len(held.calls) == 1
        finally:
            held.release.set()
        assert hung.result().status_code == 200
