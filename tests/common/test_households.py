"""The household read model: snapshots by version, children, memberships, recipients."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import MetaData

from services.common.db import Database
from services.common.events import Event
from services.common.households import (
    HOUSEHOLD_HANDLERS,
    belongs_to,
    child,
    children_of,
    household,
    household_tables,
    recipients,
)
from tests.test_catalogue import EXAMPLES


@pytest.fixture
def db(tmp_path):
    metadata = MetaData()
    household_tables(metadata)
    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def apply(db, event_type, data):
    event = Event.new(event_type, data, producer="accounts")
    with db.transaction() as session:
        HOUSEHOLD_HANDLERS[event_type](session, event, data)


def test_a_snapshot_fills_household_children_and_communes(db):
    data = copy.deepcopy(EXAMPLES["accounts.family.updated"])
    apply(db, "accounts.family.updated", data)
    with db.sessions() as session:
        assert household(session, data["family_id"])["family_name"] == data["family_name"]
        kids = children_of(session, data["family_id"])
        assert {k["id"] for k in kids} == {c["id"] for c in data["children"]}
        assert child(session, data["children"][0]["id"])["family_id"] == data["family_id"]
        assert belongs_to(session, data["family_id"], data["communes"][0]["commune_id"])


def test_an_older_snapshot_never_overwrites_a_newer_one(db):
    newer = copy.deepcopy(EXAMPLES["accounts.family.updated"])
    newer["version"] = 5
    newer["family_name"] = "NOUVEAU"
    older = copy.deepcopy(newer)
    older["version"] = 4
    older["family_name"] = "ANCIEN"
    older["children"] = []
    apply(db, "accounts.family.updated", newer)
    apply(db, "accounts.family.updated", older)
    with db.sessions() as session:
        assert household(session, newer["family_id"])["family_name"] == "NOUVEAU"
        assert len(children_of(session, newer["family_id"])) == len(newer["children"])


def test_a_child_removed_from_the_household_disappears(db):
    data = copy.deepcopy(EXAMPLES["accounts.family.updated"])
    apply(db, "accounts.family.updated", data)
    data["version"] += 1
    gone = data["children"].pop()
    apply(db, "accounts.family.updated", data)
    with db.sessions() as session:
        assert child(session, gone["id"]) is None


def test_membership_event_adds_the_commune_once(db):
    data = copy.deepcopy(EXAMPLES["accounts.membership.created"])
    apply(db, "accounts.membership.created", data)
    apply(db, "accounts.membership.created", data)
    with db.sessions() as session:
        assert belongs_to(session, data["family_id"], data["commune_id"])


def test_recipients_put_the_payer_first_without_duplicates():
    snapshot = {"guardians": [
        {"email": "Paul@exemple.test", "pays": False},
        {"email": "marie@exemple.test", "pays": True},
        {"email": "paul@exemple.test", "pays": False},
        {"email": None, "pays": False},
    ]}
    assert recipients(snapshot) == ["marie@exemple.test", "paul@exemple.test"]
