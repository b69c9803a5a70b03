"""The reservations worker: publishes its outbox and handles its events."""

from services.common.runtime import run_worker

from .app import build_runtime


def main() -> None:
    run_worker(build_runtime())
