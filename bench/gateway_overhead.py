"""Scenario 3, gateway overhead: one authenticated API read through the gateway, and the same
read straight to the service, in the same run.

The read is ``GET /api/accounts/me/family`` (a parent's household: guardians and children), a
real query of the accounts service. Through the gateway the parent presents the session token
(bearer); straight to the service it presents the internal JWT the gateway would have minted
for that session (same principal, audience ``accounts``, signed with the gateway's key), so
the service does the same work both ways and the difference is the gateway's: session lookup,
token minting, forwarding, the extra hop.

Measured with the asyncio client (bench/load.py), direct and gateway alternated in rounds so
that the machine's noise falls on both alike:
- one client at a time (concurrency 1): the latency the gateway adds, at the median;
- ``concurrency`` clients (closed loop): throughput through the gateway over direct.
"""

from __future__ import annotations

import asyncio
import statistics
import uuid

from bench import load, stack
from bench.report import Goal, Result, log
from bench.surge import create_households
from services.common.auth import Signer

PATH = "/api/accounts/me/family"


async def _measure(urls: dict[str, str], headers: dict[str, dict], concurrency: int,
                   duration: float, rounds: int) -> dict[str, dict]:
    out: dict[str, dict] = {name: {"rps": [], "rec": load.Recorder()} for name in urls}
    async with load.session() as http:
        for name in urls:  # warm the connections and the pools
            for _ in range(20):
                await load.call(http, load.Recorder(), "warm", "GET", urls[name],
                                headers=headers[name]())
        for _ in range(rounds):
            for name in urls:
                rec, hdrs = out[name]["rec"], headers[name]()

                async def one(name=name, rec=rec, hdrs=hdrs):
                    await load.call(http, rec, name, "GET", urls[name], headers=hdrs)

                done, elapsed = await load.closed_loop(one, concurrency, duration)
                out[name]["rps"].append(done / elapsed)
    return out


def run(quick: bool) -> Result:
    concurrency = 8
    duration, rounds = (1.5, 2) if quick else (8.0, 3)
    result = Result("gateway", "gateway overhead: an authenticated API read through the "
                               "gateway versus straight to the service")
    result.params = {"read": f"GET {PATH}", "concurrency": f"1 and {concurrency}",
                     "seconds per round": duration, "rounds (alternated)": rounds,
                     **stack.PRODUCTION}
    topology = stack.shared()
    household = create_households(topology, 1, uuid.uuid4().hex[:6])[0]
    from gateway.sessions import SessionStore

    gateway_db = stack.database(topology, "gateway")
    principal = SessionStore(gateway_db).principal(household.token)
    gateway_db.engine.dispose()
    signer = Signer(topology.env["JWT_PRIVATE_KEY"])
    urls = {"direct": topology.env["ACCOUNTS_URL"] + PATH, "gateway": topology.url + PATH}
    headers = {
        # A fresh internal token per round: they live 60 s.
        "direct": lambda: {"Authorization": f"Bearer {signer.mint(principal, 'accounts')}"},
        "gateway": lambda: {"Authorization": f"Bearer {household.token}"},
    }
    log("gateway: une requête à la fois")
    serial = asyncio.run(_measure(urls, headers, 1, duration, rounds))
    log(f"gateway: {concurrency} clients")
    loaded = asyncio.run(_measure(urls, headers, concurrency, duration, rounds))

    for phase in (serial, loaded):
        for name, measured in phase.items():
            for call, bad in measured["rec"].failures().items():
                result.violations.append(f"{call}: {dict(bad)}")
            other = {s for s in measured["rec"].statuses[name] if s != 200}
            if other:
                result.violations.append(f"{name}: statuts inattendus {other}")
    p = {name: serial[name]["rec"].summary(name) for name in urls}
    q = {name: loaded[name]["rec"].summary(name) for name in urls}
    added = p["gateway"]["p50"] - p["direct"]["p50"]
    rps = {name: statistics.median(loaded[name]["rps"]) for name in urls}
    ratio = rps["gateway"] / rps["direct"]
    result.figures.update({
        "through the gateway, 1 client: p50 ms": p["gateway"]["p50"],
        "through the gateway, 1 client: p99 ms": p["gateway"]["p99"],
        f"through the gateway, {concurrency} clients: requests/s": rps["gateway"],
        f"through the gateway, {concurrency} clients: p50 ms": q["gateway"]["p50"],
        f"through the gateway, {concurrency} clients: p99 ms": q["gateway"]["p99"],
        "added at the median, 1 client (ms)": added,
        f"added at the median, {concurrency} clients (ms)": q["gateway"]["p50"]
        - q["direct"]["p50"],
    })
    result.baselines.update({
        "straight to accounts, 1 client: p50 ms": p["direct"]["p50"],
        "straight to accounts, 1 client: p99 ms": p["direct"]["p99"],
        f"straight to accounts, {concurrency} clients: requests/s": rps["direct"],
        f"straight to accounts, {concurrency} clients: p50 ms": q["direct"]["p50"],
    })
    result.ratios.update({
        "gateway ÷ direct throughput": ratio,
        "gateway ÷ direct p50 latency, 1 client": p["gateway"]["p50"] / p["direct"]["p50"],
    })
    result.goals += [
        Goal("latency added at the median (1 client)", "≤ 3 ms", f"{added:.2f} ms",
             None if quick else added <= 3.0),
        Goal(f"throughput through the gateway ({concurrency} clients)", "≥ 60 % of direct",
             f"{ratio:.0%}", None if quick else ratio >= 0.6),
    ]
    result.tables += ["One client at a time (all rounds):",
                      _merged(serial), f"{concurrency} clients (all rounds):", _merged(loaded)]
    result.notes.append("Rounds alternate direct and gateway; requests/s is the median of the "
                        "rounds. Client, gateway, service and PostgreSQL share the 2 cores.")
    return result


def _merged(phase: dict[str, dict]) -> str:
    rec = load.Recorder()
    for name, measured in phase.items():
        rec.latencies[name] = measured["rec"].latencies[name]
        rec.statuses[name] = measured["rec"].statuses[name]
    return rec.table()
