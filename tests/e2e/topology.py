"""The distributed topology for tests: every process separate, PostgreSQL and RabbitMQ.

Processes are started with the commands of the Procfile and Kubernetes (``portail serve`` under
gunicorn with deploy/gunicorn.conf.py, ``portail worker``, ``portail smtp-sink``), each test run
with its own databases, bus prefix, ports and data dir, all removed at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from services.common.auth import generate_private_key_pem, jwks_of
from suite.registry import MIGRATED, SERVICES
from tests import infra
from tests.e2e.support import eventually

ROOT = Path(__file__).resolve().parents[2]
PORTAIL = str(Path(sys.executable).parent / "portail")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DistributedTopology:
    def __init__(self, pg_server: str, amqp_url: str, data_dir: Path, *, mode: str,
                 extra_env: Mapping[str, str] | None = None):
        self.pg_server = pg_server
        self.amqp_url = amqp_url
        self.data_dir = data_dir
        run = uuid.uuid4().hex[:6]
        self.databases = {name: f"portail_e2e_{run}_{name}" for name in MIGRATED}
        self.prefix = f"e2e-{run}."
        self.ports = {name: free_port() for name in (*SERVICES, "gateway", "portal", "smtp")}
        # name ("serve-accounts", "worker-billing", "smtp-sink") -> its process, so a test or a
        # benchmark can kill, restart or measure one of them.
        self.processes: dict[str, subprocess.Popen] = {}
        self._argv: dict[str, tuple[tuple[str, ...], int | None]] = {}
        pem = generate_private_key_pem()
        self.env = {
            **os.environ,
            "PORTAIL_ENV": mode,
            "PORTAIL_SECRET_KEY": uuid.uuid4().hex * 2,
            "PORTAIL_DATA_DIR": str(data_dir),
            "AMQP_URL": amqp_url,
            "BUS_PREFIX": self.prefix,
            "BUS_RETRY_DELAYS": "0.5,1",
            "JWT_PRIVATE_KEY": pem,
            "JWT_PUBLIC_KEYS": jwks_of(pem),
            "SERVICE_TOKEN_KEY": generate_private_key_pem(),
            # accounts seals the agents' second-factor secrets with it (required in production)
            "TOTP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "SMTP_URL": f"smtp://127.0.0.1:{self.ports['smtp']}",
            "WEB_CONCURRENCY": "1",
            "LOG_LEVEL": "WARNING",
            "PUBLIC_URL": self.url,
            "GATEWAY_URL": self.url,
        }
        for name in (*SERVICES, "gateway", "portal"):
            self.env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{self.ports[name]}"
        self.env.update(extra_env or {})  # e.g. the fault suite's short holds and retries
        self.web: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def start(self, web: tuple[str, ...], workers: tuple[str, ...], *, smtp: bool = False,
              seed: bool = True) -> None:
        self.web = web
        for name, db in self.databases.items():
            self.env[f"{name.upper()}_DATABASE_URL"] = infra.create_database(self.pg_server, db)
        subprocess.run([PORTAIL, "migrate"], env=self.env, check=True, cwd=ROOT, timeout=180)
        if seed:
            subprocess.run([PORTAIL, "seed"], env=self.env, check=True, cwd=ROOT, timeout=120)
        if smtp:
            self._start("smtp-sink", "--port", str(self.ports["smtp"]))
        for name in web:
            self._start("serve", name, port=self.ports[name])
        for name in workers:
            self._start("worker", name)
        try:
            eventually(lambda: self._ready(web), timeout=90, interval=0.3)
            assert self.alive(), "un processus s'est arrêté au démarrage"
        except AssertionError:
            tails = {p.name: p.read_text(errors="replace")[-1500:]
                     for p in self.data_dir.glob("*.log")}
            self.stop()
            raise AssertionError(f"la topologie ne démarre pas : {tails}") from None

    def _start(self, *argv: str, port: int | None = None) -> None:
        name = "-".join(argv[:2]) if argv[0] != "smtp-sink" else "smtp-sink"
        self._argv[name] = (argv, port)
        env = {**self.env, "PORT": str(port)} if port else self.env
        log = open(self.data_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.processes[name] = subprocess.Popen([PORTAIL, *argv], env=env, cwd=ROOT,
                                                stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal one process and its children (gunicorn's workers) and wait for it."""
        proc = self.processes[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=30)

    def pause(self, name: str) -> None:
        """Freeze one process and its children (SIGSTOP): it accepts connections (the kernel
        does) and answers nothing, as a hung service does, until ``resume``."""
        os.killpg(self.processes[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.killpg(self.processes[name].pid, signal.SIGCONT)

    def restart(self, name: str, *, wait: bool = False, timeout: float = 60) -> None:
        """Start again a process stopped by ``kill``, with the same command and port; with
        ``wait``, return once the gateway and every web process answer ready again."""
        argv, port = self._argv[name]
        self._start(*argv, port=port)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        eventually(lambda: self._ready(self.web), timeout=timeout, interval=0.3)

    def _ready(self, web: tuple[str, ...]) -> bool:
        try:
            return all(
                requests.get(f"{self.url}/api/{name}/readyz", timeout=2).status_code == 200
                for name in web if name in SERVICES
            ) and requests.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or slow while starting
            return False

    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self.processes.values())

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for db in self.databases.values():
            infra.drop_database(self.pg_server, db)
        infra.delete_bus_names(self.amqp_url, self.prefix, SERVICES)
