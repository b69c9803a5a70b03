"""Handlers record messages, once per event and recipient, whatever the bus does."""

from __future__ import annotations

import threading

import pytest

from services.common import catalogue
from services.common.db import Database
from services.common.events import Event
from services.notifications.domain import MESSAGES_RECORDED, record
from tests.notifications.support import CONFIG, consumer, event, handle, messages


def test_an_event_delivered_twice_makes_one_message_per_recipient(jolieville):
    ev = event("reservations.booking.confirmed")
    cons = consumer(jolieville)
    assert handle(cons, ev) == "handled"
    assert handle(cons, ev) == "duplicate"
    # A redelivery through a new consumer (another worker) finds the inbox row too.
    assert handle(consumer(jolieville), ev) == "duplicate"
    recorded = messages(jolieville, event_id=ev.id)
    assert sorted(m.recipient for m in recorded) == ["parent@famille.test",
                                                     "second.parent@famille.test"]


def test_the_unique_key_holds_even_without_the_inbox(jolieville):
    """Two transactions recording the same event (e.g. an inbox lost in a restore) still
    make one message per recipient: the second insert is ignored, not an error."""
    ev = event("billing.invoice.issued")
    loaded = catalogue.validate(ev.type, 1, ev.data, strict=False)
    with jolieville.transaction() as session:
        assert record(session, ev, loaded, CONFIG) == 1
    with jolieville.transaction() as session:
        assert record(session, ev, loaded, CONFIG) == 0
    assert len(messages(jolieville, event_id=ev.id)) == 1


def test_concurrent_deliveries_of_one_event_make_one_message(db_url):
    ev = event("billing.invoice.issued")
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver():
        database = Database(db_url)
        try:
            outcomes.append(handle(consumer(database), ev))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            database.dispose()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    assert sorted(outcomes) == ["duplicate"] * 3 + ["handled"]
    database = Database(db_url)
    try:
        assert len(messages(database, event_id=ev.id)) == 1
    finally:
        database.dispose()


def test_recipients_are_deduplicated_and_may_be_empty(jolieville):
    ev = event("billing.invoice.issued",
               recipients=["parent@famille.test", "Parent@Famille.test", "autre@famille.test"])
    handle(consumer(jolieville), ev)
    assert [m.recipient for m in messages(jolieville, event_id=ev.id)] == [
        "autre@famille.test", "parent@famille.test"]
    ev = event("billing.invoice.issued", recipients=[])
    assert handle(consumer(jolieville), ev) == "handled"
    assert messages(jolieville, event_id=ev.id) == []


def test_out_of_order_events_each_make_their_message(jolieville):
    """A cancellation overtaking its confirmation still tells the family, and so does the
    confirmation arriving after it: each message says what its own event says."""
    cancelled = event("reservations.booking.cancelled")
    confirmed = event("reservations.booking.confirmed")
    cons = consumer(jolieville)
    handle(cons, cancelled)
    handle(cons, confirmed)
    assert {m.kind for m in messages(jolieville, family_id=confirmed.data["family_id"])} == {
        "booking_cancelled", "booking_confirmed"}


def test_a_failing_handler_leaves_nothing_behind(jolieville, monkeypatch):
    import services.notifications.domain as domain

    def broken(*args, **kwargs):
        raise RuntimeError("rendu impossible")

    ev = event("billing.invoice.issued")
    monkeypatch.setattr(domain, "render", broken)
    with pytest.raises(RuntimeError):
        handle(consumer(jolieville), ev)
    assert messages(jolieville, event_id=ev.id) == []
    monkeypatch.undo()
    # The redelivery (the consumer retries) then records it.
    assert handle(consumer(jolieville), ev) == "handled"
    assert len(messages(jolieville, event_id=ev.id)) == 1


def test_the_sender_is_woken_after_the_commit(jolieville):
    MESSAGES_RECORDED.clear()
    handle(consumer(jolieville), event("billing.invoice.issued"))
    assert MESSAGES_RECORDED.is_set()
    MESSAGES_RECORDED.clear()
    handle(consumer(jolieville), event("billing.invoice.issued", recipients=[]))
    assert not MESSAGES_RECORDED.is_set()


def test_unknown_fields_from_a_newer_producer_are_ignored(jolieville):
    ev = event("billing.invoice.issued")
    newer = Event(**{**ev.to_dict(), "data": {**ev.data, "pdf_url": "https://x.test/f.pdf"}})
    assert handle(consumer(jolieville), newer) == "handled"
    assert len(messages(jolieville, event_id=ev.id)) == 1
