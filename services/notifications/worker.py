"""The notifications worker: publishes its outbox, handles its events, sends the e-mails."""

from services.common.runtime import run_worker

from .app import build_runtime


def main() -> None:
    run_worker(build_runtime())
