"""Delivering the recorded messages: SMTP or the dev mailbox, retried with backoff, never lost.

The sender loop runs in the worker process beside the relay and the consumer. Each round it
claims a batch of due ``pending`` messages (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that
several workers share the work) and leases them (``next_attempt_at`` pushed forward) in one
short transaction, then sends them one by one over one SMTP connection and records each
outcome at once:

- accepted by the server → ``sent`` with ``sent_at``;
- a transient failure (connection refused, timeout, 4xx) → still ``pending``, ``attempts`` + 1,
  ``next_attempt_at`` after 10 s, 30 s, 2 min, 5 min, 15 min, 30 min, then every hour; when
  the server cannot be reached, the rest of the batch waits too (no use trying each);
- a permanent failure (5xx: recipient refused, message rejected), or still failing 24 h after
  the message was recorded → ``failed``, with the error, in the log and the agents' API.

A worker dying between the server's acceptance and the ``sent`` mark leaves the lease to
expire, and the message is sent again with the same ``Message-ID``: at least once, like the
bus. Sending is the only place that talks to the outside, so nothing here holds a database
transaction open while waiting for the SMTP server.
"""

from __future__ import annotations

import contextlib
import shutil
import smtplib
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select, update

from services.common.config import ConfigError, Settings
from services.common.db import Database
from services.common.logging import get_logger
from services.common.mailbox import deliver, mailbox_dir

from .domain import MESSAGES_RECORDED
from .models import FAILED, PENDING, SENT, Message

log = get_logger(__name__)

DEFAULT_MAIL_FROM = "no-reply@portail-famille.test"
DEFAULT_TIMEOUT = 10.0
# Seconds before the n-th new attempt (n = attempts so far); the last one repeats.
BACKOFF = (10, 30, 120, 300, 900, 1800, 3600)
GIVE_UP_AFTER = timedelta(hours=24)
# Longer than a batch can take (batch size × SMTP timeout), so a lease never runs out while
# its messages are still being sent.
LEASE = timedelta(minutes=10)
BATCH_SIZE = 20


def backoff(attempts: int, delays: tuple[float, ...] = BACKOFF) -> timedelta:
    """The delay before the next attempt, after ``attempts`` failed ones (>= 1)."""
    return timedelta(seconds=delays[min(max(attempts, 1), len(delays)) - 1])


def utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes back; everything here is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- failures --------------------------------------------------------------------------------


class DeliveryError(Exception):
    """Why a message was not delivered; ``permanent``: retrying can never help;
    ``unreachable``: the server itself is out of reach (the rest of the batch waits too)."""

    def __init__(self, reason: str, *, permanent: bool = False, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.unreachable = unreachable


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def classify(exc: BaseException) -> DeliveryError:
    """A failure while sending one message, as permanent or transient."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = list(exc.recipients.values())
        permanent = bool(replies) and all(code >= 500 for code, _ in replies)
        detail = "; ".join(_reply(code, text) for code, text in replies)
        return DeliveryError(f"destinataire refusé par le serveur SMTP : {detail}",
                             permanent=permanent)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        # The server refuses our own address: a configuration problem, fixed by an operator;
        # the message waits for it instead of being given up at once.
        return DeliveryError(f"expéditeur refusé par le serveur SMTP : "
                             f"{_reply(exc.smtp_code, exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPDataError):
        return DeliveryError(f"message refusé par le serveur SMTP : "
                             f"{_reply(exc.smtp_code, exc.smtp_error)}",
                             permanent=exc.smtp_code >= 500)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"connexion SMTP perdue : {exc}", unreachable=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(f"réponse du serveur SMTP : {_reply(exc.smtp_code, exc.smtp_error)}",
                             unreachable=exc.smtp_code == 421)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # e.g. an address that needs SMTPUTF8, which the server does not offer
        return DeliveryError(f"message impossible à transmettre à ce serveur : {exc}",
                             permanent=True)
    if isinstance(exc, OSError):  # refused, reset, unreachable, timed out, TLS errors
        return DeliveryError(f"serveur SMTP injoignable : {exc!r}", unreachable=True)
    if isinstance(exc, ValueError | UnicodeError):
        return DeliveryError(f"message invalide : {exc}", permanent=True)
    return DeliveryError(f"erreur inattendue : {exc!r}")


# --- transports ------------------------------------------------------------------------------

Send = Callable[[EmailMessage, str], None]


class Transport(Protocol):
    def connect(self) -> contextlib.AbstractContextManager[Send]: ...


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str = "none"  # none, starttls, tls
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT


SCHEMES = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


def parse_smtp_url(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> SmtpConfig:
    """``smtp://host:port``, ``smtp+starttls://user:pass@host:587``, ``smtps://user:pass@host``
    (``?timeout=`` in seconds optional). ValueError with a French message otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"SMTP_URL : schéma {parts.scheme!r} inconnu (smtp, smtp+starttls, "
                         "smtps ou maildir)")
    if not parts.hostname:
        raise ValueError("SMTP_URL : il manque le nom du serveur")
    security, default_port = SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
        timeout = float(parse_qs(parts.query).get("timeout", [timeout])[0])
    except ValueError as exc:
        raise ValueError(f"SMTP_URL invalide : {exc}") from exc
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
    )


class SmtpTransport:
    """One SMTP connection per batch, with a timeout on every operation."""

    def __init__(self, config: SmtpConfig, *, mail_from: str = DEFAULT_MAIL_FROM):
        self.config = config
        self.mail_from = mail_from

    def _open(self) -> smtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        if cfg.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                                    context=context)
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            client.ehlo()
            if cfg.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if cfg.username:
                client.login(cfg.username, cfg.password or "")
        except BaseException:
            with contextlib.suppress(Exception):
                client.close()
            raise
        return client

    @contextlib.contextmanager
    def connect(self) -> Iterator[Send]:
        try:
            client = self._open()
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"authentification SMTP refusée : "
                                f"{_reply(exc.smtp_code, exc.smtp_error)}",
                                unreachable=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"serveur SMTP injoignable : {exc!r}", unreachable=True) from exc

        def send(message: EmailMessage, recipient: str) -> None:
            client.send_message(message, from_addr=self.mail_from, to_addrs=[recipient])

        try:
            yield send
        finally:
            try:
                client.quit()
            except Exception:
                with contextlib.suppress(Exception):
                    client.close()


class MaildirTransport:
    """The dev mailbox (``SMTP_URL=maildir``): each message becomes a file the portal shows."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _ensure_folder(self) -> None:
        """The Maildir with its tmp/new/cur, appearing at once for its readers.

        mailbox.Maildir(create=True) makes tmp/new/cur only when the folder itself is new, and
        common.mailbox.deliver creates the folder first; a reader (the portal's /dev/mail)
        must not see the folder without its subfolders either: it is built aside, then
        renamed into place.
        """
        subs = ("tmp", "new", "cur")
        if all((self.folder / sub).is_dir() for sub in subs):
            return
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        if not self.folder.exists():
            staging = Path(tempfile.mkdtemp(prefix=".maildir-", dir=self.folder.parent))
            for sub in subs:
                (staging / sub).mkdir()
            try:
                staging.rename(self.folder)
            except OSError:  # created meanwhile by another process: use theirs
                shutil.rmtree(staging, ignore_errors=True)
        for sub in subs:
            (self.folder / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def connect(self) -> Iterator[Send]:
        try:
            self._ensure_folder()
        except OSError as exc:
            raise DeliveryError(f"boîte de développement inaccessible : {exc!r}",
                                unreachable=True) from exc

        def send(message: EmailMessage, recipient: str) -> None:
            try:
                deliver(self.folder, message.as_bytes())
            except OSError as exc:
                raise DeliveryError(f"boîte de développement inaccessible : {exc!r}",
                                    unreachable=True) from exc

        yield send


def mail_from_of(settings: Settings) -> str:
    address = parseaddr(settings.extra.get("MAIL_FROM") or DEFAULT_MAIL_FROM)[1]
    return address or DEFAULT_MAIL_FROM


def transport_from_settings(settings: Settings) -> Transport:
    """The transport ``SMTP_URL`` names; ``maildir`` by default in dev, required otherwise."""
    url = (settings.extra.get("SMTP_URL") or "").strip()
    if not url:
        if not settings.dev:
            raise ConfigError(["SMTP_URL est obligatoire (smtp://hôte:port, "
                               "smtp+starttls://…, smtps://… ou maildir)"])
        url = "maildir"
    if url == "maildir":
        return MaildirTransport(mailbox_dir(settings.data_dir, dict(settings.extra)))
    try:
        timeout = float(settings.extra.get("SMTP_TIMEOUT") or DEFAULT_TIMEOUT)
        config = parse_smtp_url(url, timeout=timeout)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from exc
    return SmtpTransport(config, mail_from=mail_from_of(settings))


# --- the sender ------------------------------------------------------------------------------


class Sender:
    """Claims due pending messages and delivers them; ``run_once(now=...)`` is one round."""

    def __init__(
        self,
        db: Database,
        transport: Transport,
        *,
        mail_from: str = DEFAULT_MAIL_FROM,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = 1.0,
        lease: timedelta = LEASE,
        give_up_after: timedelta = GIVE_UP_AFTER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry_delays: tuple[float, ...] = BACKOFF,
        send_timeout: float | None = None,
    ):
        self.db = db
        self.transport = transport
        self.mail_from = mail_from
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.give_up_after = give_up_after
        self.clock = clock
        self.retry_delays = retry_delays
        # With the transport's timeout known, each message of a batch is leased only until it
        # can have been tried (its rank × the timeout, plus a margin): a worker killed while
        # sending leaves its messages to another sender within a minute, not ``lease`` later.
        self.send_timeout = send_timeout
        # Claimed in the current round and not yet recorded: when the round dies (the
        # database going away while the outcome was being written), they are released at
        # the next round instead of waiting for their lease. One the server had accepted is
        # then sent again, with the same Message-ID (at least once, as documented above).
        self._unsettled: set[str] = set()
        self.wakeup = MESSAGES_RECORDED

    # composing ---------------------------------------------------------------------------
    def compose(self, message: Message) -> EmailMessage:
        """The e-mail of ``message``: text and HTML alternatives, stable Message-ID."""
        local, _, domain = self.mail_from.partition("@")
        email = EmailMessage()
        email["From"] = Address(display_name=message.from_name, username=local,
                                domain=domain or "localhost")
        email["To"] = message.recipient
        if message.reply_to:
            email["Reply-To"] = message.reply_to
        email["Subject"] = message.subject
        email["Date"] = format_datetime(utc(message.created_at))
        email["Message-ID"] = f"<{message.id}@{domain or 'localhost'}>"
        email["X-Portail-Event"] = message.event_id
        email["X-Portail-Kind"] = message.kind
        email["Auto-Submitted"] = "auto-generated"
        email["Content-Language"] = "fr"
        email.set_content(message.text_body)
        email.add_alternative(message.html_body, subtype="html")
        return email

    # claiming ----------------------------------------------------------------------------
    def due_query(self, now: datetime, limit: int):
        """Due pending messages, oldest first, locked and skipping locked ones (PostgreSQL)."""
        query = (
            select(Message)
            .where(Message.status == PENDING, Message.next_attempt_at <= now)
            .order_by(Message.next_attempt_at, Message.created_at, Message.id)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        return query

    def claim(self, now: datetime | None = None) -> list[Message]:
        """Take a batch: due messages no other sender holds, leased until ``now + lease``."""
        now = utc(now or self.clock())
        # Not db.transaction(): its commit hooks would wake this very loop up again.
        with self.db.sessions() as session, session.begin():
            messages = list(session.scalars(self.due_query(now, self.batch_size)))
            if messages and self.send_timeout is None:
                session.execute(
                    update(Message)
                    .where(Message.id.in_([m.id for m in messages]))
                    .values(next_attempt_at=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
            elif messages:
                for rank, message in enumerate(messages, start=1):
                    lease = min(self.lease, timedelta(seconds=rank * self.send_timeout + 30))
                    session.execute(
                        update(Message).where(Message.id == message.id)
                        .values(next_attempt_at=now + lease)
                        .execution_options(synchronize_session=False))
            for message in messages:
                session.expunge(message)
        return messages

    # recording outcomes ------------------------------------------------------------------
    def _record(self, message: Message, **values) -> None:
        with self.db.sessions() as session, session.begin():
            session.execute(
                update(Message)
                .where(Message.id == message.id, Message.status == PENDING)
                .values(attempts=Message.attempts + 1, **values)
                .execution_options(synchronize_session=False)
            )
        self._unsettled.discard(message.id)

    def _release_unsettled(self, now: datetime) -> None:
        """Give back, due at once, what a round that died had claimed and not recorded."""
        if not self._unsettled:
            return
        with self.db.sessions() as session, session.begin():
            session.execute(
                update(Message)
                .where(Message.id.in_(sorted(self._unsettled)), Message.status == PENDING)
                .values(next_attempt_at=now)
                .execution_options(synchronize_session=False))
        log.warning("notification_leases_released", count=len(self._unsettled))
        self._unsettled.clear()

    def _sent(self, message: Message, now: datetime) -> None:
        self._record(message, status=SENT, sent_at=now, next_attempt_at=None, last_error=None)
        log.info("notification_sent", message_id=message.id, kind=message.kind,
                 event_id=message.event_id, attempts=message.attempts + 1)

    def _failed(self, message: Message, reason: str, now: datetime) -> None:
        self._record(message, status=FAILED, failed_at=now, next_attempt_at=None,
                     last_error=reason[:2000])
        log.error("notification_failed", message_id=message.id, kind=message.kind,
                  event_id=message.event_id, commune_id=message.commune_id,
                  attempts=message.attempts + 1, error=reason)

    def _deferred(self, message: Message, reason: str, now: datetime) -> None:
        attempts = message.attempts + 1
        if now - utc(message.created_at) >= self.give_up_after:
            hours = round(self.give_up_after.total_seconds() / 3600)
            self._failed(message, f"abandon après {attempts} tentatives en {hours} h : {reason}",
                         now)
            return
        retry_at = now + backoff(attempts, self.retry_delays)
        self._record(message, next_attempt_at=retry_at, last_error=reason[:2000])
        log.warning("notification_deferred", message_id=message.id, kind=message.kind,
                    attempts=attempts, retry_at=retry_at.isoformat(), error=reason)

    # one round ---------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> int:
        """Deliver one batch of due messages; returns how many were handled (any outcome)."""
        fixed = utc(now) if now is not None else None

        def clock() -> datetime:
            return fixed or utc(self.clock())

        self._release_unsettled(clock())
        messages = self.claim(clock())
        if not messages:
            return 0
        self._unsettled = {m.id for m in messages}
        pending = list(messages)
        try:
            with self.transport.connect() as send:
                while pending:
                    message = pending[0]
                    try:
                        email = self.compose(message)
                    except Exception as exc:
                        pending.pop(0)
                        self._failed(message, f"message impossible à composer : {exc!r}",
                                     clock())
                        continue
                    try:
                        send(email, message.recipient)
                    except Exception as exc:
                        error = classify(exc)
                        if error.unreachable:
                            raise error from exc
                        pending.pop(0)
                        if error.permanent:
                            self._failed(message, error.reason, clock())
                        else:
                            self._deferred(message, error.reason, clock())
                        continue
                    pending.pop(0)
                    self._sent(message, clock())
        except DeliveryError as error:  # the server is out of reach: the rest of the batch waits
            for index, message in enumerate(pending):
                reason = error.reason if index == 0 else f"non tenté : {error.reason}"
                self._deferred(message, reason, clock())
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        """Until ``stop``: deliver what is due, wake up when a handler records messages."""
        pause = 0.5
        while not stop.is_set():
            try:
                count = self.run_once()
                pause = 0.5
            except Exception as exc:  # the database is down: wait, retry
                log.warning("notification_sender_failed", error=repr(exc), retry_in=pause)
                stop.wait(pause)
                pause = min(pause * 2, 30.0)
                continue
            if count < self.batch_size:
                self.wakeup.wait(self.poll_interval)
                self.wakeup.clear()


def retry_delays_of(settings: Settings) -> tuple[float, ...]:
    """``SMTP_RETRY_DELAYS``: seconds between attempts, the last one repeating (BACKOFF)."""
    raw = (settings.extra.get("SMTP_RETRY_DELAYS") or "").strip()
    if not raw:
        return BACKOFF
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or any(d <= 0 for d in delays):
        raise ConfigError(["SMTP_RETRY_DELAYS doit être une liste de secondes positives "
                           "séparées par des virgules (10,30,120)"])
    return delays


def sender_from_settings(db: Database, settings: Settings) -> Sender:
    transport = transport_from_settings(settings)
    timeout = transport.config.timeout if isinstance(transport, SmtpTransport) else None
    return Sender(db, transport, mail_from=mail_from_of(settings),
                  retry_delays=retry_delays_of(settings), send_timeout=timeout)
