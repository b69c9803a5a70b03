"""The accounts worker: publishes its outbox (it consumes no event yet)."""

from services.common.runtime import run_worker

from .app import build_runtime


def main() -> None:
    run_worker(build_runtime())
