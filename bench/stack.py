"""The suite the HTTP scenarios measure: the distributed topology as deployed, and its memory.

Every process separate (``portail serve NAME`` under gunicorn with deploy/gunicorn.conf.py,
``portail worker NAME``, the SMTP sink), with the worker and thread counts of the production
configuration (deploy/k8s/configmap.yaml: ``WEB_CONCURRENCY=2``, ``GUNICORN_THREADS=4``), in
production mode, on scratch databases and bus names removed afterwards.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from bench.infra import amqp_url, pg_server
from services.common.db import Database
from tests.e2e.topology import DistributedTopology

PRODUCTION = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4",
              # Production's default is no online payment; the benchmark pays in the simulator.
              "PAYMENT_PROVIDER": "simulator", "LOG_LEVEL": "WARNING"}


@contextmanager
def distributed(web: tuple[str, ...], workers: tuple[str, ...], *, smtp: bool = False,
                env: dict[str, str] | None = None) -> Iterator[DistributedTopology]:
    data_dir = Path(tempfile.mkdtemp(prefix="portail-bench-"))
    topology = DistributedTopology(pg_server(), amqp_url(), data_dir, mode="production")
    _quiet_ports(topology)
    topology.env.update({**PRODUCTION, **(env or {})})
    # Required in production since agents have two-factor authentication.
    topology.env.setdefault("TOTP_ENCRYPTION_KEY", Fernet.generate_key().decode())
    topology.start(web=web, workers=workers, smtp=smtp)  # stops what it started on failure
    try:
        yield topology
    finally:
        topology.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


WEB = ("gateway", "portal", "accounts", "reservations", "billing", "requests", "notifications")
WORKERS = ("accounts", "reservations", "billing", "requests", "notifications")
_shared: dict[str, object] = {}


def shared() -> DistributedTopology:
    """The whole suite (every web process and worker, the SMTP sink), started once per run of
    ``python -m bench`` and shared by the HTTP scenarios (each works on its own households), so
    that the quick run starts the 13 processes once. Its memory at rest is noted right after
    start, before any scenario, for the footprint. Stopped when the run exits."""
    if "topology" not in _shared:
        context = distributed(WEB, WORKERS, smtp=True)
        topology = context.__enter__()
        atexit.register(context.__exit__, None, None, None)
        time.sleep(2)  # let the workers finish their first polls
        _shared.update(topology=topology, rest=process_memory(topology))
    return _shared["topology"]  # type: ignore[return-value]


def memory_at_rest() -> dict[str, Memory]:
    shared()
    return _shared["rest"]  # type: ignore[return-value]


def _quiet_ports(topology: DistributedTopology) -> None:
    """Listening ports below the ephemeral range: a port freed by ``free_port`` in that range
    was taken, before gunicorn could bind it, by one of the thousands of client connections a
    load run opens (the gateway then never started and the run measured nothing)."""
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
              .split()) if Path("/proc/sys/net/ipv4/ip_local_port_range").exists() else (32768, 0)
    rng = random.Random()
    for name in list(topology.ports):
        while True:
            port = rng.randint(max(1024, low - 12000), low - 1)
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            break
        topology.ports[name] = port
    for name in topology.ports:
        if name != "smtp":
            topology.env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{topology.ports[name]}"
    topology.env.update(SMTP_URL=f"smtp://127.0.0.1:{topology.ports['smtp']}",
                        PUBLIC_URL=topology.url, GATEWAY_URL=topology.url)


def database(topology: DistributedTopology, name: str) -> Database:
    return Database(topology.env[f"{name.upper()}_DATABASE_URL"], pool_size=8)


# --- memory ------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _status_kb(pid: int, path: str, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(key):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid``, in MB (VmRSS; 0 when it is gone)."""
    return _status_kb(pid, "status", "VmRSS:") / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages divided among the processes sharing them."""
    return _status_kb(pid, "smaps_rollup", "Pss:") / 1024


def _tree(pid: int) -> list[int]:
    seen, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.append(current)
            todo += _children(current)
    return seen


def tree_rss_mb(pid: int) -> tuple[float, int]:
    """Resident memory of a process and all its descendants (a gunicorn master and its
    workers), in MB, and how many processes that is."""
    pids = _tree(pid)
    return sum(rss_mb(p) for p in pids), len(pids)


@dataclass
class Memory:
    rss: float  # MB, summed over the process and its descendants
    pss: float  # MB, the same with shared pages shared out
    largest: float  # MB, the largest single process (a gunicorn worker)
    processes: int


def tree_memory(pid: int) -> Memory:
    pids = _tree(pid)
    rss = [rss_mb(p) for p in pids]
    return Memory(sum(rss), sum(pss_mb(p) for p in pids), max(rss, default=0.0), len(pids))


def process_memory(topology: DistributedTopology) -> dict[str, Memory]:
    """Name -> memory for every process of the topology still running."""
    return {name: tree_memory(proc.pid) for name, proc in sorted(topology.processes.items())
            if proc.poll() is None}


def machine_note() -> str:
    return f"{os.cpu_count()} cores; client, servers, PostgreSQL and RabbitMQ on one machine"
