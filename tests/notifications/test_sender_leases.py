"""A sender killed while it holds a batch, and retry delays from the environment.

Fix found by the fault suite: a batch was leased for 10 minutes as a whole, so a worker killed
with -9 while sending left its messages untouched for 10 minutes. Each message is now leased
until it can have been tried (its rank in the batch × the SMTP timeout, plus 30 s).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.common.config import ConfigError, Settings
from services.notifications.sender import BACKOFF, Sender, retry_delays_of, utc
from tests.notifications.support import ListTransport, consumer, event, handle, messages, now


def record_invoices(db, count: int) -> None:
    for _ in range(count):
        handle(consumer(db), event("billing.invoice.issued"))


def test_a_killed_senders_messages_are_free_again_within_a_minute(jolieville):
    record_invoices(jolieville, 3)
    when = now() + timedelta(seconds=1)
    dead = Sender(jolieville, ListTransport(), batch_size=10, send_timeout=10)
    assert len(dead.claim(when)) == 3  # ...and the process dies before sending anything
    other = Sender(jolieville, ListTransport(), batch_size=10, send_timeout=10)
    assert other.claim(when + timedelta(seconds=39)) == []
    assert len(other.claim(when + timedelta(seconds=41))) == 1  # the first: 10 s + 30 s
    assert len(other.claim(when + timedelta(seconds=61))) == 2
    # without a known timeout, the whole batch keeps the long lease
    record_invoices(jolieville, 1)
    slow = Sender(jolieville, ListTransport(), batch_size=10)
    (held,) = slow.claim(when + timedelta(seconds=62))
    (row,) = messages(jolieville, id=held.id)
    assert utc(row.next_attempt_at) == utc(when) + timedelta(seconds=62, minutes=10)


def settings(**extra) -> Settings:
    return Settings(service="notifications", env="dev", extra=extra)


def test_retry_delays_come_from_the_environment():
    assert retry_delays_of(settings()) == BACKOFF
    assert retry_delays_of(settings(SMTP_RETRY_DELAYS="1, 2,5")) == (1.0, 2.0, 5.0)
    with pytest.raises(ConfigError):
        retry_delays_of(settings(SMTP_RETRY_DELAYS="1,zéro"))
    with pytest.raises(ConfigError):
        retry_delays_of(settings(SMTP_RETRY_DELAYS="0"))


def test_a_round_that_dies_gives_its_messages_back_at_the_next_round(jolieville):
    """The database goes away while an outcome is being recorded: the round dies. The next
    round (the database back) sends what was left at once, not after the lease; the message
    the server had already taken goes again, with the same Message-ID (at least once)."""
    from sqlalchemy.exc import OperationalError

    record_invoices(jolieville, 3)
    transport = ListTransport()
    sender = Sender(jolieville, transport, batch_size=10, send_timeout=10)
    sent = sender._sent
    calls = []

    def database_gone(message, now):
        calls.append(message.id)
        if len(calls) == 1:
            raise OperationalError("UPDATE messages", {}, Exception("server closed the "
                                                                     "connection"))
        sent(message, now)

    sender._sent = database_gone
    when = now() + timedelta(seconds=1)
    with pytest.raises(OperationalError):
        sender.run_once(now=when)
    assert len(transport.sent) == 1
    assert sender.run_once(now=when) == 3  # the same instant: no lease to wait for
    ids = [m["Message-ID"] for _, m in transport.sent]
    assert len(ids) == 4 and len(set(ids)) == 3 and ids[0] == ids[1]
    assert sender.run_once(now=when + timedelta(minutes=20)) == 0  # all recorded sent
