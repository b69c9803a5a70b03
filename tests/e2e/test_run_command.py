"""The README's run command as a newcomer meets it: `portail dev` starts, answers, stops."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.support import eventually
from tests.e2e.topology import free_port

PORTAIL = str(Path(sys.executable).parent / "portail")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_portail_dev_starts_with_demo_data_and_stops_cleanly(tmp_path, stop_signal):
    port = free_port()
    process = subprocess.Popen(
        [PORTAIL, "dev", "--port", str(port), "--data-dir", str(tmp_path / "var")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                return all(requests.get(f"{base}/api/{s}/healthz", timeout=2).status_code == 200
                           for s in ("accounts", "reservations", "billing", "requests",
                                     "notifications"))
            except requests.RequestException:
                return False

        eventually(healthy, timeout=60)
        login = requests.post(f"{base}/auth/login", timeout=10,
                              json={"email": "parent@famille.test", "password": "portail-demo"})
        assert login.status_code == 200
        assert requests.get(f"{base}/", timeout=5).status_code == 200
    finally:
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output[-2000:]
    assert "Portail Famille est prêt sur" in output
    assert "parent@famille.test" in output
    assert "Portail Famille arrêté." in output
    assert (tmp_path / "var" / "accounts.sqlite3").exists()
