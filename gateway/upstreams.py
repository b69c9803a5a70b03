"""Calling the services: pooled connections, timeouts, and French errors when one is down."""

from __future__ import annotations

import http.cookiejar
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from services.common.errors import Problem

# Headers that describe one hop, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "proxy-connection",
})


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie, request) -> bool:
        return False

    def return_ok(self, cookie, request) -> bool:
        return False


@dataclass(frozen=True)
class Timeouts:
    connect: float = 3.0
    read: float = 10.0


# Calls in flight to one upstream from one gateway process, at most: half of the gateway's
# threads (GATEWAY_THREADS, 32 by default, see deploy/gunicorn.conf.py). One hung service then
# holds at most half of them, each until UPSTREAM_TIMEOUT, and the others keep answering.
MAX_IN_FLIGHT = 16
# How long a call waits for a place when the upstream's are all taken (GATEWAY_QUEUE_WAIT).
QUEUE_WAIT = 5.0


class Bulkhead:
    """The places of one upstream in one gateway process.

    A full upstream is not necessarily a sick one: on the morning bookings open, every place
    of reservations is taken and given back many times a second, and a family's call should
    wait its turn rather than get a 503. A hung upstream gives nothing back: once no place has
    come back for ``wait`` seconds, calls beyond are refused at once, so the threads stay free
    for the other services (each waiting call also gives up after ``wait`` seconds).
    """

    def __init__(self, size: int, wait: float = QUEUE_WAIT):
        self._places = threading.BoundedSemaphore(size)
        self.wait = wait
        self._last_return = time.monotonic()

    def acquire(self) -> bool:
        if self._places.acquire(blocking=False):
            return True
        if self.wait <= 0 or time.monotonic() - self._last_return > self.wait:
            return False
        return self._places.acquire(timeout=self.wait)

    def release(self) -> None:
        self._last_return = time.monotonic()
        self._places.release()


class Upstreams:
    """One pooled HTTP session for every upstream: base URLs by name."""

    def __init__(self, urls: Mapping[str, str], timeouts: Timeouts, *, pool_size: int = 50,
                 max_in_flight: int = MAX_IN_FLIGHT, queue_wait: float = QUEUE_WAIT):
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.timeouts = timeouts
        self.max_in_flight = max_in_flight
        self.in_flight = {name: Bulkhead(max_in_flight, queue_wait) for name in self.urls}
        self.http = requests.Session()
        adapter = HTTPAdapter(pool_connections=len(self.urls) or 1, pool_maxsize=pool_size,
                              max_retries=0)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        # The gateway sets every header itself; proxies from the environment must not apply.
        self.http.trust_env = False
        # One session serves every visitor: a cookie an upstream sets for one (the portal's
        # login answer) must never be remembered and sent on with another visitor's calls.
        self.http.cookies.set_policy(_NoCookies())

    def url(self, name: str, path: str) -> str:
        return f"{self.urls[name]}{path}"

    def request(self, name: str, method: str, path: str, *, headers: Mapping[str, str],
                data=None, json=None, params=None, stream: bool = False) -> requests.Response:
        """One call; with ``stream``, the slot it takes in the upstream's limit is given back
        when ``body_chunks`` has sent the body (or ``release`` is called)."""
        slot = self.in_flight.get(name)
        if slot is not None and not slot.acquire():
            raise Problem(503, "Ce service du portail est surchargé. Réessayez dans quelques "
                               "instants.", service=name)
        try:
            response = self._call(
                name, method, path, headers=dict(headers), data=data, json=json,
                params=params, stream=stream, allow_redirects=False,
                timeout=(self.timeouts.connect, self.timeouts.read),
            )
        except BaseException:
            if slot is not None:
                slot.release()
            raise
        if slot is not None:
            if stream:
                response.portail_release = _once(slot.release)
            else:
                slot.release()
        return response

    def _call(self, name: str, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return self.http.request(method, self.url(name, path), **kwargs)
        except requests.Timeout as exc:
            raise Problem(504, "Le service a mis trop de temps à répondre. Réessayez plus tard.",
                          service=name) from exc
        except requests.ConnectionError as exc:
            raise Problem(502, "Ce service du portail est momentanément indisponible. "
                               "Réessayez dans quelques instants.", service=name) from exc


def _once(release: Callable[[], None]) -> Callable[[], None]:
    done = threading.Event()

    def once() -> None:
        if not done.is_set():
            done.set()
            release()

    return once


def forwardable(headers: Mapping[str, str], drop: frozenset[str] = frozenset()) -> dict[str, str]:
    return dict(forwardable_pairs(headers, drop))


def forwardable_pairs(headers, drop: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """The end-to-end headers as (name, value) pairs, repeated names kept apart.

    A response may set several cookies: each ``Set-Cookie`` must stay its own line (folding
    them into one comma-separated value, as a dict does, loses all but the first).
    """
    connection_tokens = {
        token.strip().lower() for token in headers.get("Connection", "").split(",") if token
    }
    return [
        (key, value) for key, value in headers.items()
        if key.lower() not in HOP_BY_HOP and key.lower() not in connection_tokens
        and key.lower() not in drop
    ]


def body_chunks(response: requests.Response, size: int = 64 * 1024) -> Iterator[bytes]:
    """The upstream body as it arrives (PDFs, downloads), released when done."""
    try:
        # Fix: requests reads the whole body of a redirect itself, even with
        # allow_redirects=False (to free the connection for a next hop it will not make), so
        # the raw stream was empty and every 302/303 went out with its Content-Length and no
        # body: clients waited for the promised bytes until keep-alive closed the connection
        # (5 s after each payment in the simulator, each login of the portal).
        if response._content_consumed:
            if response.content:
                yield response.content
            return
        yield from response.raw.stream(size, decode_content=False)
    finally:
        response.close()
        getattr(response, "portail_release", lambda: None)()
