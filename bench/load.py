"""The benchmarks' HTTP load client: asyncio and aiohttp, thousands of clients in one process.

Every call is recorded under a name ("checkout", "healthz"...) with its latency and its
status (or the exception's name when no answer came), so a scenario reports percentiles and
status counts per kind of call and checks that no 5xx and no transport error happened.

Two shapes of load:
- ``open_loop``: one coroutine per client, started at its own moment (arrivals spread over a
  window, as families arriving the morning bookings open), each running its own journey;
- ``closed_loop``: ``concurrency`` clients calling again as soon as answered, for a duration
  (the throughput ceiling of an endpoint).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.report import percentiles


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.first: float | None = None
        self.last: float | None = None

    def add(self, name: str, status: int | str, started: float, ended: float) -> None:
        self.latencies[name].append(ended - started)
        self.statuses[name][status] += 1
        self.first = started if self.first is None else min(self.first, started)
        self.last = ended if self.last is None else max(self.last, ended)

    def summary(self, name: str) -> dict[str, float]:
        """Latency percentiles in milliseconds and the count of calls."""
        stats = percentiles([s * 1000 for s in self.latencies[name]])
        return {**stats, "n": len(self.latencies[name])}

    def failures(self) -> dict[str, Counter]:
        """Per call name: the 5xx statuses and transport errors (str statuses)."""
        out: dict[str, Counter] = {}
        for name, counts in self.statuses.items():
            bad = Counter({s: n for s, n in counts.items()
                           if isinstance(s, str) or s >= 500})
            if bad:
                out[name] = bad
        return out

    def table(self) -> str:
        lines = ["| call | n | p50 ms | p95 ms | p99 ms | statuses |", "|---|---|---|---|---|---|"]
        for name in self.latencies:
            s = self.summary(name)
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted(
                self.statuses[name].items(), key=lambda kv: str(kv[0])))
            lines.append(f"| {name} | {s['n']} | {s['p50']:.1f} | {s['p95']:.1f} | "
                         f"{s['p99']:.1f} | {statuses} |")
        return "\n".join(lines)


def session(*, timeout: float = 120.0) -> aiohttp.ClientSession:
    """A client with no connection limit (every family its own connection when needed),
    keep-alive, and no cookie jar (the bearer token says who calls)."""
    return aiohttp.ClientSession(
        # Idle connections are dropped before gunicorn's keep-alive (5 s) closes them: a
        # request sent on a connection the server is closing gets a reset, not an answer.
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=None, keepalive_timeout=3),
        timeout=aiohttp.ClientTimeout(total=timeout),
        cookie_jar=aiohttp.DummyCookieJar())


async def call(http: aiohttp.ClientSession, rec: Recorder, name: str, method: str, url: str,
               **kwargs: Any) -> tuple[int, Any]:
    """One request, recorded; returns (status, parsed JSON or text), status 0 without answer."""
    started = time.perf_counter()
    try:
        async with http.request(method, url, allow_redirects=False, **kwargs) as response:
            raw = await response.read()
            status = response.status
            kind = response.headers.get("Content-Type", "")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        rec.add(name, type(exc).__name__, started, time.perf_counter())
        return 0, None
    rec.add(name, status, started, time.perf_counter())
    if "json" in kind:
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None
    return status, raw.decode(errors="replace")


async def open_loop(journeys: list[Callable[[], Awaitable[Any]]], window: float,
                    *, seed: int = 7) -> list[Any]:
    """Start each journey at a uniformly random moment of ``window`` seconds; their results."""
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, window) for _ in journeys) if window > 0 else \
        [0.0] * len(journeys)
    start = time.perf_counter()

    async def later(offset: float, journey):
        delay = start + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        return await journey()

    return await asyncio.gather(*(later(o, j) for o, j in zip(offsets, journeys, strict=True)))


async def closed_loop(one: Callable[[], Awaitable[Any]], concurrency: int,
                      duration: float) -> tuple[int, float]:
    """``concurrency`` clients repeating ``one`` for ``duration`` s; (calls, elapsed s)."""
    done = 0
    deadline = time.perf_counter() + duration

    async def client():
        nonlocal done
        while time.perf_counter() < deadline:
            await one()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return done, time.perf_counter() - start
