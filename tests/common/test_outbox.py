"""The transactional outbox on SQLite: an event exists if and only if its transaction commits."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from services.common import catalogue, outbox
from services.common.db import Database
from services.common.events import Event
from services.common.migrate import upgrade

PACKAGE = "services.accounts"


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'accounts.sqlite3'}"
    upgrade(PACKAGE, url)
    database = Database(url)
    yield database
    database.dispose()


def _commune_data(**overrides) -> dict:
    data = {"commune_id": str(uuid.uuid4()), "slug": "jolieville", "name": "JolieVille Test",
            "settings": {"modules": ["reservations", "invoices"]}}
    data.update(overrides)
    return data


def _rows(db: Database) -> list:
    with db.sessions() as session:
        return session.execute(select(outbox.OUTBOX)).all()


def _count(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(outbox.OUTBOX))


def test_a_valid_event_in_a_committed_transaction_is_one_pending_row(db):
    with db.transaction() as session:
        event = outbox.add(session, Event.new("accounts.commune.created", _commune_data(),
                                              producer="accounts"))
    rows = _rows(db)
    assert len(rows) == 1
    row = rows[0]
    assert row.event_id == event.id
    assert row.type == "accounts.commune.created"
    assert row.published_at is None
    assert row.attempts == 0
    assert Event.from_json(row.envelope) == event
    with db.sessions() as session:
        assert outbox.pending_count(session) == 1


@pytest.mark.parametrize("data", [
    {"slug": "jolieville"},                                    # required fields missing
    _commune_data(slug="Pas Un Slug"),                         # invalid value
    _commune_data(surprise="not in the catalogue"),            # unknown field (strict)
    _commune_data(settings={"modules": ["teleportation"]}),    # nested invalid value
])
def test_invalid_data_raises_and_writes_nothing(db, data):
    with pytest.raises(catalogue.InvalidEvent) as info, db.transaction() as session:
        outbox.add(session, Event.new("accounts.commune.created", data, producer="accounts"))
    assert info.value.event_type == "accounts.commune.created"
    assert info.value.errors
    assert _count(db) == 0


def test_an_unknown_type_or_version_raises(db):
    with pytest.raises(catalogue.InvalidEvent):
        Event.new("accounts.commune.teleported", _commune_data(), producer="accounts")
    with pytest.raises(catalogue.InvalidEvent):
        Event.new("accounts.commune.created", _commune_data(), producer="accounts", version=99)


def test_a_rolled_back_transaction_leaves_no_row(db):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.transaction() as session:
        outbox.add(session, Event.new("accounts.commune.created", _commune_data(),
                                      producer="accounts"))
        session.flush()
        # The row exists inside the transaction...
        assert session.scalar(select(func.count()).select_from(outbox.OUTBOX)) == 1
        raise Boom
    # ...and not after it.
    assert _count(db) == 0


def test_only_the_committed_one_of_two_transactions_is_kept(db):
    kept = Event.new("accounts.commune.created", _commune_data(slug="kept"), producer="accounts")
    lost = Event.new("accounts.commune.created", _commune_data(slug="lost"), producer="accounts")
    with db.transaction() as session:
        outbox.add(session, kept)
    with pytest.raises(RuntimeError), db.transaction() as session:
        outbox.add(session, lost)
        raise RuntimeError("the state change failed")
    assert [row.event_id for row in _rows(db)] == [kept.id]


def test_event_ids_are_unique_in_the_outbox(db):
    event = Event.new("accounts.commune.created", _commune_data(), producer="accounts")
    with db.transaction() as session:
        outbox.add(session, event)
    with pytest.raises(IntegrityError), db.transaction() as session:
        outbox.add(session, event)
    assert _count(db) == 1
