"""``portail dev``: the whole suite in one process, on the embedded defaults.

Each app is served on its own loopback port by a thread, the gateway on the public port, so
the gateway reaches the services over HTTP exactly as in the distributed topology; the
workers' relays and consumers run as threads on kombu's in-memory bus.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from werkzeug.serving import BaseWSGIServer, make_server

from services.common.runtime import Runtime

from . import environment, operations, registry

DEMO_LOGINS = [
    ("administrateur de la plateforme", "admin@portail.test"),
    ("agent de JolieVille", "agent@jolieville.test"),
    ("agent de Dammartin-sur-Tigeaux", "agent@dammartin.test"),
    ("déléguée à la protection des données de JolieVille", "dpo@jolieville.test"),
    ("parent (famille CASSEREAU)", "parent@famille.test"),
]


@dataclass
class EmbeddedSuite:
    host: str
    port: int
    data_dir: Path
    stop: threading.Event = field(default_factory=threading.Event)
    servers: dict[str, BaseWSGIServer] = field(default_factory=dict)
    runtimes: dict[str, Runtime] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def gateway_port(self) -> int:
        return self.servers["gateway"].server_port

    def _serve(self, name: str, app, host: str = "127.0.0.1", port: int = 0) -> str:
        server = self.servers.get(name) or make_server(host, port, app, threaded=True)
        server.app = app
        self.servers[name] = server
        thread = threading.Thread(target=server.serve_forever, name=f"{name}-web", daemon=True)
        thread.start()
        self.threads.append(thread)
        return f"http://127.0.0.1:{server.server_port}"

    def start(self, *, fresh: bool = False, seed: bool = True) -> list[str]:
        if fresh and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Bound first (port 0 means any free port) so that every link uses the real address.
        self.servers["gateway"] = make_server(self.host, self.port, _starting, threaded=True)
        os.environ.update(environment.embedded(self.data_dir, self.url))
        os.environ["GATEWAY_URL"] = self.url
        # kombu's memory:// broker is one per process: a suite of its own names keeps it apart
        # from anything else that ran in this process before (tests start several suites).
        os.environ["BUS_PREFIX"] = f"embedded-{uuid.uuid4().hex[:8]}."
        operations.migrate()
        operations.declare_bus()
        # Before anything answers, so that nobody meets a half-seeded portal; the events the
        # seed wrote wait in the outboxes until the relays start below.
        created = operations.seed() if seed else []
        for name in registry.SERVICES:
            module = registry.app_module(name)
            runtime = module.build_runtime()
            self.runtimes[name] = runtime
            os.environ[f"{name.upper()}_URL"] = self._serve(name, module.create_app(runtime))
        os.environ["PORTAL_URL"] = self._serve("portal", registry.app_module("portal").create_app())
        self._serve("gateway", registry.app_module("gateway").create_app())
        for runtime in self.runtimes.values():
            self.threads.extend(runtime.start_worker_threads(self.stop))
        return created

    def shutdown(self) -> None:
        self.stop.set()
        serving = {t.name.removesuffix("-web") for t in self.threads if t.name.endswith("-web")}
        for name, server in self.servers.items():
            if name in serving:  # shutdown() waits for serve_forever, which may never have run
                server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=5)
        for runtime in self.runtimes.values():
            runtime.db.dispose()


def _starting(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain; charset=utf-8")])
    return ["Le portail démarre…".encode()]


def run(host: str, port: int, data_dir: Path, fresh: bool) -> None:
    started = time.perf_counter()
    suite = EmbeddedSuite(host, port, data_dir.resolve())
    created = suite.start(fresh=fresh)
    elapsed = time.perf_counter() - started
    print(f"\nPortail Famille est prêt sur {suite.url}  (démarré en {elapsed:.1f} s)")
    print(f"Données : {suite.data_dir}")
    if created:
        print("Données de démonstration créées : " + ", ".join(created))
    print("Comptes de démonstration (mot de passe : portail-demo) :")
    for role, email in DEMO_LOGINS:
        print(f"  - {email:<24} {role}")
    from services.accounts.totp import DEMO_SECRET as DEMO_TOTP_SECRET

    print("Double authentification des agents et de l'administrateur : clé TOTP de "
          f"démonstration {DEMO_TOTP_SECRET} (la page du code affiche le code actuel)")
    print(f"Courriels envoyés : {suite.url}/dev/mail")
    print("Ctrl-C pour arrêter.\n", flush=True)

    def _stop(signum, _frame):
        print("\nArrêt en cours…", flush=True)
        suite.stop.set()

    # Explicit handlers: a shell starting `portail dev &` without job control ignores SIGINT,
    # and a process manager stops it with SIGTERM; both must stop it cleanly.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        suite.stop.wait()
    finally:
        suite.shutdown()
    print("Portail Famille arrêté.", flush=True)
