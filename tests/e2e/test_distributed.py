"""The distributed topology: every web and worker process separate, PostgreSQL, RabbitMQ.

Processes are started with the same commands as the Procfile and Kubernetes (``portail serve``
under gunicorn with deploy/gunicorn.conf.py, ``portail worker``), in production mode with keys
and URLs from the environment, and an event is seen crossing from accounts' processes to
reservations' processes through the gateway's public API.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from services.common.auth import generate_private_key_pem, jwks_of
from tests import infra
from tests.e2e.support import eventually, login

pytestmark = [pytest.mark.services, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PORTAIL = str(Path(sys.executable).parent / "portail")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def topology(pg_server, amqp_url, tmp_path_factory):
    run = uuid.uuid4().hex[:6]
    databases = {name: f"portail_e2e_{run}_{name}" for name in
                 ("accounts", "reservations", "billing", "requests", "notifications", "gateway")}
    prefix = f"e2e-{run}."
    pem = generate_private_key_pem()
    ports = {name: free_port() for name in ("gateway", "accounts", "reservations", "portal",
                                            "billing", "requests", "notifications")}
    env = {
        **os.environ,
        "PORTAIL_ENV": "production",
        "PORTAIL_SECRET_KEY": uuid.uuid4().hex * 2,
        "PORTAIL_DATA_DIR": str(tmp_path_factory.mktemp("distributed")),
        "AMQP_URL": amqp_url,
        "BUS_PREFIX": prefix,
        "BUS_RETRY_DELAYS": "0.5,1",
        "JWT_PRIVATE_KEY": pem,
        "JWT_PUBLIC_KEYS": jwks_of(pem),
        "WEB_CONCURRENCY": "1",
        "LOG_LEVEL": "WARNING",
    }
    for name, db in databases.items():
        env[f"{name.upper()}_DATABASE_URL"] = infra.create_database(pg_server, db)
    for name, port in ports.items():
        env[f"{name.upper()}_URL"] = f"http://127.0.0.1:{port}"

    subprocess.run([PORTAIL, "migrate"], env=env, check=True, cwd=ROOT, timeout=120)
    subprocess.run([PORTAIL, "seed"], env=env, check=True, cwd=ROOT, timeout=60)
    processes = []

    logs = Path(env["PORTAIL_DATA_DIR"])

    def start(*argv: str, port: int | None = None) -> None:
        proc_env = {**env, "PORT": str(port)} if port else env
        log = open(logs / f"{'-'.join(argv)}.log", "wb")  # noqa: SIM115 (closed with the process)
        processes.append(subprocess.Popen([PORTAIL, *argv], env=proc_env, cwd=ROOT,
                                          stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))

    for name in ("gateway", "accounts", "reservations"):
        start("serve", name, port=ports[name])
    for name in ("accounts", "reservations"):
        start("worker", name)
    base = f"http://127.0.0.1:{ports['gateway']}"

    def up() -> bool:
        try:
            return all(requests.get(f"{base}/api/{s}/readyz", timeout=2).status_code == 200
                       for s in ("accounts", "reservations"))
        except requests.RequestException:  # not listening yet, or slow to answer while starting
            return False

    try:
        try:
            eventually(up, timeout=90, interval=0.3)
        except AssertionError:
            tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log")}
            raise AssertionError(f"la topologie ne démarre pas : {tails}") from None
        yield {"url": base, "processes": processes, "accounts": env["ACCOUNTS_URL"]}
    finally:
        for proc in processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for db in databases.values():
            infra.drop_database(pg_server, db)
        infra.delete_bus_names(amqp_url, prefix, ("reservations", "billing", "requests",
                                                  "notifications"), retries=2)


def test_an_event_crosses_between_processes_through_the_public_api(topology):
    base = topology["url"]
    admin = login(base, "admin@portail.test")
    for slug in ("jolieville", "dammartin"):  # the seed's events, relayed by accounts-worker
        eventually(lambda c=slug: admin.get(f"{base}/api/reservations/communes/{c}",
                                            timeout=5).status_code == 200, timeout=30)
    slug = f"distrib-{uuid.uuid4().hex[:6]}"
    created = admin.post(f"{base}/api/accounts/communes",
                         json={"slug": slug, "name": "Ville-Distribuée"}, timeout=10)
    assert created.status_code == 201, created.text

    def known_to_reservations():
        response = admin.get(f"{base}/api/reservations/communes/{slug}", timeout=5)
        return response if response.status_code == 200 else None

    seen = eventually(known_to_reservations, timeout=30)
    assert seen.json()["id"] == created.json()["id"]
    assert all(proc.poll() is None for proc in topology["processes"]), "un processus est mort"


def test_a_service_process_verifies_the_token_itself(topology):
    """Reached directly (bypassing the gateway), a service refuses a forged admin token."""
    from services.common.auth import Principal, Signer

    forged = Signer(generate_private_key_pem()).mint(
        Principal(account_id="intrus", platform_admin=True), audience="accounts")
    response = requests.post(f"{topology['accounts']}/api/accounts/communes",
                             json={"slug": "pirate", "name": "Pirate"},
                             headers={"Authorization": f"Bearer {forged}"}, timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
