"""Login throughput through the gateway, against the cost of argon2 alone, in one run.

    python -m bench.login_throughput [--logins 200] [--concurrency 4]

Starts the embedded suite on a free port, then measures, in the same process and run:
1. argon2id verification alone (the floor of a login's cost, parameters of accounts.domain);
2. ``GET /api/accounts/healthz`` through the gateway (the stack's ceiling for a trivial call);
3. ``POST /auth/login`` through the gateway (gateway → accounts → argon2 → session).
It prints logins per second and the ratios, with the machine and the versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests


def timed(n: int, concurrency: int, call) -> dict:
    latencies: list[float] = []

    def one(_):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"n": n, "per_second": round(n / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    from services.accounts import domain
    from suite.embedded import EmbeddedSuite

    hashed = domain.hash_password("portail-demo")
    argon = timed(args.logins, 1, lambda: domain.verify_password(hashed, "portail-demo"))

    suite = EmbeddedSuite("127.0.0.1", 0, Path(tempfile.mkdtemp(prefix="bench-login-")))
    os.environ["LOG_LEVEL"] = "WARNING"
    suite.start(fresh=True)
    try:
        http = requests.Session()
        health = timed(args.logins, args.concurrency, lambda: http.get(
            f"{suite.url}/api/accounts/healthz", timeout=10).raise_for_status())

        def login():
            answer = requests.post(f"{suite.url}/auth/login",
                                   json={"email": "parent@famille.test",
                                         "password": "portail-demo"}, timeout=30)
            # The per-e-mail limit would stop a benchmark: 429 counts as a failure here.
            answer.raise_for_status()

        limiter = suite.servers["gateway"].app.extensions.get("portail_limiter")
        if limiter is not None:
            limiter.enabled = False
        logins = timed(args.logins, args.concurrency, login)
    finally:
        suite.shutdown()
    result = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "argon2": {"time_cost": domain.HASHER.time_cost,
                   "memory_cost_kib": domain.HASHER.memory_cost,
                   "parallelism": domain.HASHER.parallelism},
        "argon2_verify_alone": argon,
        "healthz_through_gateway": health,
        "login_through_gateway": logins,
        "ratios": {
            "login_vs_healthz_throughput": round(logins["per_second"] / health["per_second"], 3),
            "login_vs_argon2_alone": round(logins["per_second"] / argon["per_second"], 3),
        },
        "command": f"python -m bench.login_throughput --logins {args.logins} "
                   f"--concurrency {args.concurrency}",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
