"""Small helpers for end-to-end tests: polling with a deadline, a logged-in HTTP client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import requests

from tests.common.second_factor import code_for

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.1) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"toujours pas vrai après {timeout} s (dernier résultat : {last!r})")


def login(base_url: str, email: str, password: str = "portail-demo") -> requests.Session:
    """A session logged in through /auth/login; agents and the admin answer the second factor
    with the demo secret (``tests/common/second_factor.py``)."""
    http = requests.Session()
    response = http.post(f"{base_url}/auth/login", json={"email": email, "password": password},
                         timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    if body.get("second_factor") == "totp":
        response = http.post(f"{base_url}/auth/second-factor", timeout=10,
                             json={"code": code_for(f"{base_url} {email}")},
                             headers={"Authorization": f"Bearer {body['access_token']}"})
        assert response.status_code == 200, response.text
        body = response.json()
    http.headers["Authorization"] = f"Bearer {body['access_token']}"
    return http


def wait_for_demo_data(base: str) -> None:
    """Until every service has received the demo communes and households over the bus: the
    journeys start as a person would, on a portal whose data has settled."""
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
