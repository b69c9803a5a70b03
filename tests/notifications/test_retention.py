"""Retention of sent e-mails (issue 8), per commune, with time travel: ``purge(now=...)``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from services.notifications.models import FAILED, PENDING, SENT, Message
from services.notifications.privacy import purge
from tests.notifications.support import COMMUNE, FAMILY, consumer, event, handle

NOW = datetime(2027, 6, 15, 9, tzinfo=UTC)


def _message(db, *, age: timedelta, status: str = SENT, commune_id: str | None = COMMUNE):
    with db.transaction() as session:
        message = Message(event_id=str(uuid.uuid4()), event_type="billing.invoice.issued",
                          kind="invoice_issued", recipient="parent@famille.test",
                          family_id=FAMILY, commune_id=commune_id, from_name="JolieVille",
                          subject="Votre facture", text_body="Bonjour", html_body="<p>B</p>",
                          status=status, created_at=NOW - age)
        session.add(message)
    return message.id


def _left(db) -> set[str]:
    with db.sessions() as session:
        return set(session.scalars(select(Message.id)))


def test_sent_mails_go_after_the_default_year_pending_ones_never(jolieville):
    db = jolieville
    old = _message(db, age=timedelta(days=400))
    old_failed = _message(db, age=timedelta(days=400), status=FAILED)
    old_pending = _message(db, age=timedelta(days=400), status=PENDING)
    recent = _message(db, age=timedelta(days=200))
    no_commune = _message(db, age=timedelta(days=400), commune_id=None)
    assert purge(db, NOW) == 3
    assert _left(db) == {old_pending, recent}
    assert not {old, old_failed, no_commune} & _left(db)
    # Time passes: the recent one's year is up too; running again is harmless.
    assert purge(db, NOW + timedelta(days=200)) == 1
    assert _left(db) == {old_pending}
    assert purge(db, NOW + timedelta(days=200)) == 0


def test_a_commune_sets_a_shorter_period(jolieville):
    db = jolieville
    settings = {"modules": ["reservations", "invoices", "requests"],
                "retention": {"notifications_months": 3}}
    handle(consumer(db), event("accounts.commune.updated", settings=settings, version=9))
    four_months = _message(db, age=timedelta(days=125))
    two_months = _message(db, age=timedelta(days=60))
    assert purge(db, NOW) == 1
    assert _left(db) == {two_months}
    assert four_months not in _left(db)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1
