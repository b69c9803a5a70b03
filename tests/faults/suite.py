"""The fault suite: a stream of operations through the gateway while faults are injected one
after another, then a drain, a reconciliation and a table.

    python -m tests.faults            # every fault (about 10 minutes); writes RELIABILITY.md
    python -m tests.faults --short    # the few faults of the test command

PostgreSQL and RabbitMQ are private instances started for the run (see servers.py): they are
restarted, and the shared servers must never be.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from suite.registry import SERVICES
from tests.e2e.topology import DistributedTopology
from tests.faults.reconcile import Checker, Report
from tests.faults.servers import CuttingProxy, PrivatePostgres, PrivateRabbit, private_root
from tests.faults.stream import Stream

# Short holds, expiries and retries, so that recovery is measured in seconds, not hours.
# The hold (1 min) is shorter than the payment's expiry, as in production (60 < 120 min).
FAULT_ENV = {
    "PAYMENT_PROVIDER": "simulator",  # production mode offers no online payment otherwise
    "BOOKING_HOLD_MINUTES": "1",
    "BOOKING_SWEEP_SECONDS": "2",
    "PAYMENT_EXPIRY_MINUTES": "1.5",
    "PAYMENT_EXPIRY_INTERVAL": "2",
    "SMTP_RETRY_DELAYS": "1,2,4",
    "SMTP_TIMEOUT": "5",
    "UPSTREAM_TIMEOUT": "10",
    # Few gateway threads (one upstream may hold 4): the timeout tests saturate them cheaply.
    "GATEWAY_THREADS": "8",
    # A call waits at most 2 s for a place of a busy upstream (a hung one refuses at once).
    "GATEWAY_QUEUE_WAIT": "2",
}
# The short run reconciles a lost notification through the payment's expiry (12 s, before the
# basket's hold ends); the full one through the basket's expiry (1 min, before the payment's).
SHORT_ENV = {"PAYMENT_EXPIRY_MINUTES": "0.2"}
RECOVERY_LIMIT = 150.0  # seconds after which a fault counts as not recovered


@dataclass
class Infra:
    """Where PostgreSQL and RabbitMQ are, and how to restart them."""

    pg_url: str
    amqp_url: str
    restart_pg: Callable[[float], None]
    restart_rabbit: Callable[[float], None]
    how: str  # how they were provided (for the report)


def _server(name: str, private, prefix: str, shared: str | None, default_port: int,
            cleanups: list[Callable[[], None]], how: list[str]) -> tuple[str, Callable]:
    """One server for the suite, (url, restart): a private one, or else a cutting proxy in
    front of the shared one (its "restart" cuts every connection and refuses new ones)."""
    if private.available():
        server = private(private_root(prefix))
        cleanups.append(server.destroy)
        server.start()
        how.append(f"{name} privé ({server.url.rsplit('@', 1)[-1]})")
        return server.url, server.restart
    if not shared:
        raise RuntimeError(f"ni {name} privé possible, ni serveur partagé")
    port = urlsplit(shared).port or default_port
    proxy = CuttingProxy(urlsplit(shared).hostname, port)
    proxy.start()
    cleanups.append(proxy.destroy)
    how.append(f"{name} partagé derrière un mandataire TCP coupé")
    return shared.replace(f":{port}", f":{proxy.port}", 1), proxy.restart


@contextmanager
def private_infra(shared_pg: str | None = None, shared_amqp: str | None = None
                  ) -> Iterator[Infra]:
    """Private servers; where one cannot be started, a cutting proxy in front of the shared
    one (its "restart" cuts every connection and refuses new ones for the duration)."""
    cleanups: list[Callable[[], None]] = []
    how: list[str] = []
    try:
        pg_url, restart_pg = _server("PostgreSQL", PrivatePostgres, "portail-faults-pg-",
                                     shared_pg, 5432, cleanups, how)
        amqp_url, restart_rabbit = _server("RabbitMQ", PrivateRabbit, "portail-faults-mq-",
                                           shared_amqp, 5672, cleanups, how)
        yield Infra(pg_url, amqp_url, restart_pg, restart_rabbit, ", ".join(how))
    finally:
        for cleanup in reversed(cleanups):
            with suppress(Exception):
                cleanup()


# --- faults ------------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    inject: Callable[[Run], None]  # returns once the fault is over (restart issued)


def kill(process: str, down: float = 3.0) -> Fault:
    def inject(run: Run) -> None:
        run.topology.kill(process, signal.SIGKILL)
        time.sleep(down)
        run.topology.restart(process)

    return Fault(f"kill -9 {process}", inject)


def restart_rabbit(down: float = 5.0) -> Fault:
    return Fault("redémarrage de RabbitMQ", lambda run: run.infra.restart_rabbit(down))


def restart_postgres(down: float = 5.0) -> Fault:
    return Fault("redémarrage de PostgreSQL", lambda run: run.infra.restart_pg(down))


class _Refuse:
    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        return "451 4.3.0 Service temporairement indisponible"


def smtp_refusing(duration: float = 12.0) -> Fault:
    """The SMTP server stops (connections refused), then answers 451 to every recipient."""

    def inject(run: Run) -> None:
        from aiosmtpd.controller import Controller

        run.topology.kill("smtp-sink", signal.SIGKILL)
        time.sleep(duration / 2)
        refusing = Controller(_Refuse(), hostname="127.0.0.1",
                              port=run.topology.ports["smtp"])
        refusing.start()
        try:
            time.sleep(duration / 2)
        finally:
            refusing.stop()
        run.topology.restart("smtp-sink")

    return Fault("SMTP refuse (arrêté puis 451)", inject)


def lost_notifications(duration: float = 12.0) -> Fault:
    """Payments made meanwhile are taken by the bank but never notified to billing."""

    def inject(run: Run) -> None:
        run.stream.lose_notifications.set()
        try:
            time.sleep(duration)
        finally:
            run.stream.lose_notifications.clear()

    return Fault("notification de paiement jamais reçue", inject)


def full_faults() -> list[Fault]:
    return [
        *(kill(f"serve-{name}") for name in SERVICES),
        *(kill(f"worker-{name}") for name in SERVICES),
        kill("serve-gateway"),
        restart_rabbit(),
        restart_postgres(),
        smtp_refusing(),
        lost_notifications(),
    ]


def short_faults() -> list[Fault]:
    """No server restart: the short run can use the shared servers (no private ones to
    start), and stays a few minutes on a busy machine."""
    return [kill("serve-billing"), kill("worker-reservations"), lost_notifications(6.0)]


def shared_infra(pg_url: str, amqp_url: str) -> Infra:
    """The shared servers, for faults that never restart them."""

    def refuse(_down: float) -> None:
        raise RuntimeError("les serveurs partagés ne se redémarrent pas : private_infra()")

    return Infra(pg_url, amqp_url, refuse, refuse, "PostgreSQL et RabbitMQ partagés")


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Row:
    fault: str
    injected: float
    restored: float  # the fault is over (process restarted, server up again)
    recovered: float | None  # monotonic time, None: not within RECOVERY_LIMIT
    operations: int = 0
    lost: int = 0
    duplicated: int = 0

    @property
    def recovery(self) -> str:
        if self.recovered is None:
            return f"> {RECOVERY_LIMIT:.0f} s"
        return f"{self.recovered - self.injected:.1f} s"


@dataclass
class Run:
    topology: DistributedTopology
    infra: Infra
    stream: Stream
    checker: Checker
    rows: list[Row] = field(default_factory=list)
    report: Report | None = None
    total_ops: int = 0
    duration: float = 0.0
    waiting_on: str = ""

    def recovered(self, since: float, window_start: float, over_at: datetime) -> bool:
        """Whether the topology is back: an operation started after the fault succeeded,
        what was in flight when it ended is done (events published, e-mails sent), and so is
        every operation accepted during it. ``waiting_on`` says what it still waits for."""
        if not self.stream.accepted_since(since):
            self.waiting_on = "une opération acceptée"
            return False
        try:
            backlog = self.checker.backlog_parts(before=over_at)
            if any(backlog.values()):
                self.waiting_on = f"en cours : {backlog}"
                return False
            window = [op for op in self.stream.ops
                      if window_start <= op.started <= since and op.outcome == "accepted"]
            unfinished = [op for op in window if self.checker.verdict(op).lost]
            if unfinished:
                self.waiting_on = "inachevées : " + ", ".join(
                    f"{op.kind} {op.ids}" for op in unfinished[:3])
                return False
            return True
        except Exception as exc:  # a server still coming back
            self.waiting_on = f"vérification impossible : {exc!r}"[:200]
            return False

    def inject(self, fault: Fault) -> Row:
        injected = time.monotonic()
        fault.inject(self)
        restored = time.monotonic()
        over_at = datetime.now(UTC)
        recovered = None
        while time.monotonic() - injected < RECOVERY_LIMIT:
            if self.recovered(restored, injected, over_at):
                recovered = time.monotonic()
                break
            time.sleep(0.5)
        row = Row(fault.name, injected, restored, recovered)
        self.rows.append(row)
        return row


def start_topology(infra: Infra, data_dir: Path | None = None,
                   env: dict[str, str] | None = None) -> DistributedTopology:
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="portail-faults-"))
    topology = DistributedTopology(infra.pg_url, infra.amqp_url, data_dir, mode="production",
                                   extra_env={**FAULT_ENV, **(env or {})})
    topology.start(web=("gateway", "portal", *SERVICES), workers=SERVICES, smtp=True)
    return topology


def run_faults(topology: DistributedTopology, infra: Infra, faults: list[Fault], *,
               warmup: float = 3.0, log: Callable[[str], None] = print) -> Run:
    """The stream, the faults one after another, the drain and the reconciliation."""
    started = time.monotonic()
    stream = Stream(topology.url)
    checker = None
    try:
        stream.prepare()
        checker = Checker(topology, stream.family_id)
        run = Run(topology, infra, stream, checker)
        stream.start()
        time.sleep(warmup)
        for fault in faults:
            row = run.inject(fault)
            log(f"{row.fault} : rétabli en {row.recovery} (panne de "
                f"{row.restored - row.injected:.1f} s ; attendait en dernier : {run.waiting_on})")
        stream.join()
        drained = checker.drain(stream.ops, timeout=RECOVERY_LIMIT)
        run.report = checker.report(stream.ops, topology.data_dir / "mailbox")
        run.report.drained_in = drained
        attribute(run)
        run.total_ops = len(stream.ops)
        run.duration = time.monotonic() - started
        return run
    finally:
        stream.stop.set()
        if checker is not None:
            checker.close()


def run_suite(faults: list[Fault], *, infra: Infra, env: dict[str, str] | None = None,
              log: Callable[[str], None] = print) -> Run:
    started = time.monotonic()
    topology = start_topology(infra, env=env)
    run = None
    try:
        log(f"topologie prête en {time.monotonic() - started:.0f} s ({infra.how})")
        run = run_faults(topology, infra, faults, log=log)
        return run
    finally:
        topology.stop()
        if run is not None and not run.report.problems():  # the logs are kept otherwise
            shutil.rmtree(topology.data_dir, ignore_errors=True)
        else:
            log(f"journaux des processus : {topology.data_dir}")


def attribute(run: Run) -> None:
    """Each operation counts for the fault during which it started (until recovery)."""
    verdicts = {id(v.op): v for v in run.report.verdicts}
    for row in run.rows:
        end = row.recovered or row.injected + RECOVERY_LIMIT
        for op in run.stream.ops:
            if row.injected <= op.started <= end:
                row.operations += 1
                verdict = verdicts.get(id(op))
                if verdict is not None:
                    row.lost += verdict.lost
                    row.duplicated += verdict.duplicated


def table(run: Run) -> str:
    lines = ["| panne | durée de la panne | opérations pendant | perdues | en double | "
             "rétablie en |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in run.rows:
        lines.append(f"| {row.fault} | {row.restored - row.injected:.1f} s | {row.operations} "
                     f"| {row.lost} | {row.duplicated} | {row.recovery} |")
    return "\n".join(lines)


def summary(run: Run) -> str:
    report = run.report
    outcomes: dict[str, int] = {}
    for op in run.stream.ops:
        outcomes[op.outcome] = outcomes.get(op.outcome, 0) + 1
    kinds: dict[str, int] = {}
    for op in run.stream.ops:
        if op.outcome == "accepted":
            kinds[op.kind] = kinds.get(op.kind, 0) + 1
    lost_notified = sum(1 for op in run.stream.ops
                        if op.lost_notification and op.outcome == "accepted")
    return "\n".join([
        f"- {run.total_ops} opérations en {run.duration:.0f} s : " + ", ".join(
            f"{n} {k}" for k, n in sorted(outcomes.items())),
        "- acceptées par type : " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
        f"- paiements dont la notification a été perdue : {lost_notified}, tous rapprochés"
        if lost_notified and not report.lost else
        f"- paiements dont la notification a été perdue : {lost_notified}",
        f"- perdues au total : {len(report.lost)} ; en double : {len(report.duplicated)}",
        f"- vidage final : {report.drained_in:.1f} s ; événements non publiés : "
        f"{sum(report.unpublished.values())} ; événements non traités : "
        f"{sum(len(v) for v in report.not_consumed.values())}",
        "- files des lettres mortes : " + (", ".join(
            f"{q} : {m}" for q, m in report.dead_letters.items() if m) or "vides"),
        f"- courriels : {len(report.mail_not_sent)} non envoyés, {len(report.mail_missing)} "
        f"absents de la boîte, {sum(n - 1 for n in report.mail_duplicates.values())} "
        "copies en double (même Message-ID)",
    ])
