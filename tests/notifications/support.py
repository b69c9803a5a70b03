"""Helpers for the notifications tests: events from the catalogue examples, an SMTP server."""

from __future__ import annotations

import copy
import socket
import threading
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import select

from services.common import catalogue
from services.common.bus import EventConsumer, Topology
from services.common.db import Database
from services.common.events import Event
from services.notifications.domain import NotifierConfig
from services.notifications.events import build_handlers
from services.notifications.models import Message
from tests.test_catalogue import COMMUNE, COMMUNE_2, EXAMPLES, FAMILY

PUBLIC_URL = "https://portail.jolieville.test"
CONFIG = NotifierConfig(public_url=PUBLIC_URL)
OTHER_FAMILY = "f0000000-0000-4000-8000-000000000002"

__all__ = ["COMMUNE", "COMMUNE_2", "EXAMPLES", "FAMILY", "OTHER_FAMILY"]


def example(event_type: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLES[event_type])
    data.update(changes)
    return data


def event(event_type: str, data: dict[str, Any] | None = None, *,
          commune_id: str | None = COMMUNE, **changes: Any) -> Event:
    """A valid event of ``event_type`` (the catalogue example unless ``data`` is given)."""
    payload = data if data is not None else example(event_type, **changes)
    return Event.new(event_type, payload, producer=event_type.split(".")[0],
                     commune_id=commune_id)


def consumer(db: Database, config: NotifierConfig = CONFIG) -> EventConsumer:
    """The notifications consumer, without a broker: tests call ``handle`` on it."""
    return EventConsumer(url="memory://", service="notifications", db=db,
                         handlers=build_handlers(config), topology=Topology(prefix="unused."))


def handle(cons: EventConsumer, ev: Event) -> str:
    """What the consumer does with a delivery once the envelope is read: validate, handle."""
    data = catalogue.validate(ev.type, ev.version, ev.data, strict=False)
    return cons.handle(ev, data, cons.handlers[ev.type])


def messages(db: Database, **where: Any) -> list[Message]:
    with db.sessions() as session:
        query = select(Message).order_by(Message.created_at, Message.recipient)
        for name, value in where.items():
            query = query.where(getattr(Message, name) == value)
        return list(session.scalars(query))


def now() -> datetime:
    return datetime.now(UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


class Recorder:
    """An aiosmtpd handler keeping what it receives; ``refuse[address]`` is an SMTP reply
    given to RCPT TO for that address (e.g. "550 5.1.1 Utilisateur inconnu")."""

    def __init__(self):
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def emails(self) -> list[EmailMessage]:
        with self.lock:
            return [parse(raw) for _, _, raw in self.received]


class SmtpServer:
    """A real SMTP server on a port chosen in advance, so that it can be down, then up."""

    def __init__(self, port: int | None = None, **options: Any):
        self.port = port or free_port()
        self.recorder = Recorder()
        self.options = options
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                     **self.options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


class ListTransport:
    """A transport keeping what it is given (thread-safe), for tests of the claim."""

    def __init__(self):
        self.sent: list[tuple[str, EmailMessage]] = []
        self.lock = threading.Lock()

    def connect(self):
        import contextlib

        @contextlib.contextmanager
        def connection():
            def send(message: EmailMessage, recipient: str) -> None:
                with self.lock:
                    self.sent.append((recipient, message))

            yield send

        return connection()
