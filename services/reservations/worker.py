"""The reservations worker: publishes its outbox, handles its events, and sweeps expired
payment holds and unanswered waiting-list offers (``ReservationsRuntime``)."""

from services.common.runtime import run_worker

from .app import build_runtime


def main() -> None:
    run_worker(build_runtime())
