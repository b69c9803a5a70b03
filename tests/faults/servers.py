"""Private PostgreSQL and RabbitMQ servers for the fault suite, which restarts them.

The shared servers on 127.0.0.1 serve other people and must never be restarted: the suite
starts its own instances on free ports in a temporary directory (PostgreSQL with ``initdb`` and
``pg_ctl``, trust authentication, run as the ``postgres`` user when we are root; RabbitMQ as a
node of its own, with its own name, ports and data directory). Where a private instance cannot
be started (no binaries), :class:`CuttingProxy` stands in front of the shared server instead and
a "restart" becomes a cut: every connection closed, new ones refused for the fault's duration,
which is what the services see of a restart.
"""

from __future__ import annotations

import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path

from tests.e2e.topology import free_port

PG_BIN = Path(os.environ.get("PORTAIL_FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_user(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


def wait_port(port: int, timeout: float = 60.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(f"rien n'écoute sur {host}:{port} après {timeout} s")


class PrivatePostgres:
    """A throwaway PostgreSQL cluster: ``url`` is its ``postgres`` database (trust)."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.data = root / "pgdata"
        self.user = "postgres" if os.geteuid() == 0 else None  # initdb refuses root

    @staticmethod
    def available() -> bool:
        return (PG_BIN / "initdb").exists() and (os.geteuid() != 0 or _has_user("postgres"))

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        subprocess.run([*_as_user(self.user), *argv], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self) -> None:
        if not self.data.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            if self.user:
                shutil.chown(self.root, self.user)
            self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust",
                      "-U", "postgres", "-E", "UTF8", "--no-sync")
        # fsync off: the suite kills processes, not the machine; max_connections for 13
        # processes' pools and the checks.
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "pg.log"),
                  "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                  "-c fsync=off -c max_connections=300", "start")

    def stop(self, mode: str = "fast") -> None:
        with suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, down_for: float = 0.0) -> None:
        """Stop immediately (connections cut, as a crash), stay down, start again."""
        self.stop("immediate")
        time.sleep(down_for)
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data), started detached, stopped by
    ``rabbitmqctl``; a restart keeps its data (durable queues, persistent messages)."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"portail-fault-{uuid.uuid4().hex[:6]}@localhost"
        root.mkdir(parents=True, exist_ok=True)
        (root / "enabled_plugins").write_text("[].\n")
        # Its own configuration: the system's (/etc/rabbitmq/rabbitmq.conf) may pin the
        # listener to the shared server's port.
        (root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        # rabbitmq-server drops root privileges to the rabbitmq user: it must own its files.
        if os.geteuid() == 0 and _has_user("rabbitmq"):
            for path in (root, root / "enabled_plugins", root / "rabbitmq.conf"):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {**os.environ, "RABBITMQ_NODENAME": self.node,
                    "RABBITMQ_NODE_PORT": str(self.port),
                    "RABBITMQ_DIST_PORT": str(self.dist_port),
                    "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(root / "log"),
                    "RABBITMQ_PID_FILE": str(root / "node.pid"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
                    "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf")}

    @staticmethod
    def available() -> bool:
        return bool(shutil.which("rabbitmq-server") and shutil.which("rabbitmqctl"))

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["rabbitmqctl", "-n", self.node, *argv], env=self.env,
                              timeout=timeout, capture_output=True, text=True)

    def start(self, timeout: float = 90) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # -detached returns before the node registers: await_startup fails at once until then.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ctl("await_startup", "--timeout", "30").returncode == 0:
                wait_port(self.port, timeout=30)
                return
            time.sleep(0.5)
        raise RuntimeError(f"le nœud RabbitMQ {self.node} ne démarre pas "
                           f"(journaux dans {self.root / 'log'})")

    def stop(self) -> None:
        with suppress(subprocess.TimeoutExpired):
            self._ctl("stop", timeout=60)

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def destroy(self) -> None:
        self.stop()
        pid_file = self.root / "node.pid"
        with suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


class CuttingProxy:
    """A TCP proxy in front of a shared server; ``cut()`` closes every connection and refuses
    new ones until ``restore()`` (what a restart looks like from the clients)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._open_listener()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="cutting-proxy")
        self._thread.start()

    def _open_listener(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            if not self._up.is_set():
                time.sleep(0.1)
                continue
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):  # ValueError: select() on a socket `cut` closed meanwhile
            return
        finally:
            for sock in (a, b):
                with suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        self._up.clear()
        with suppress(OSError):
            self._listener.close()  # new connections refused
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for sock in (a, b):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()

    def restore(self) -> None:
        self._open_listener()
        self._up.set()

    def restart(self, down_for: float = 0.0) -> None:
        self.cut()
        time.sleep(down_for)
        self.restore()

    def destroy(self) -> None:
        self._stop.set()
        self.cut()


def private_root(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))
