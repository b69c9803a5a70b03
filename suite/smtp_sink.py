"""``portail smtp-sink``: a local SMTP server that drops every message in the dev mailbox."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from aiosmtpd.controller import Controller

from services.common.mailbox import deliver


class MaildirHandler:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        deliver(self.folder, envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def start(folder: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    controller = Controller(MaildirHandler(folder), hostname=host, port=port)
    controller.start()
    return controller


def run(folder: Path, host: str, port: int) -> None:
    controller = start(folder, host, port)
    print(f"SMTP de développement sur {host}:{port}, messages dans {folder}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
