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
