"""The households a service knows, as a read model fed by ``accounts.family.updated``.

Reservations books for children, billing invoices the paying guardian, requests shows the
household to the agent: none reads the accounts database. Each keeps this small model, filled
by the events accounts publishes (full snapshots, with a version: an older snapshot arriving
late never overwrites a newer one).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
)
from sqlalchemy.orm import Session

from .events import Event

_meta = MetaData()

HOUSEHOLDS = Table(
    "households",
    _meta,
    Column("family_id", String(36), primary_key=True),
    Column("family_name", String(200), nullable=False),
    # The raw data of the latest accounts.family.updated: guardians, address, communes...
    Column("snapshot", JSON, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now(),
           onupdate=func.now()),
)

HOUSEHOLD_COMMUNES = Table(
    "household_communes",
    _meta,
    Column("family_id", String(36), primary_key=True),
    Column("commune_id", String(36), primary_key=True, index=True),
    Column("family_code", String(40), nullable=True),
)

CHILDREN = Table(
    "children",
    _meta,
    Column("id", String(36), primary_key=True),
    Column("family_id", String(36), nullable=False, index=True),
    Column("first_name", String(100), nullable=False),
    Column("last_name", String(100), nullable=False),
    Column("birth_date", String(10), nullable=False),  # ISO date, as in the event
    Column("school", String(200), nullable=True),
    Column("class_name", String(50), nullable=True),
    Column("allergies", Boolean, nullable=False, default=False),
)


def household_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """Copy the household tables into a service's own metadata (for its migrations)."""
    return (HOUSEHOLDS.to_metadata(metadata), HOUSEHOLD_COMMUNES.to_metadata(metadata),
            CHILDREN.to_metadata(metadata))


def on_family_updated(session: Session, event: Event, data: dict[str, Any]) -> None:
    raw = event.data  # JSON as published, to keep as the snapshot
    version = int(raw["version"])
    current = session.execute(
        select(HOUSEHOLDS.c.version).where(HOUSEHOLDS.c.family_id == raw["family_id"])
    ).scalar()
    if current is not None and current >= version:
        return  # a late or repeated snapshot
    values = {"family_name": raw["family_name"], "snapshot": raw, "version": version}
    if current is None:
        session.execute(HOUSEHOLDS.insert().values(family_id=raw["family_id"], **values))
    else:
        session.execute(HOUSEHOLDS.update()
                        .where(HOUSEHOLDS.c.family_id == raw["family_id"]).values(**values))
    session.execute(delete(CHILDREN).where(CHILDREN.c.family_id == raw["family_id"]))
    for child in raw["children"]:
        session.execute(CHILDREN.insert().values(
            id=child["id"], family_id=raw["family_id"], first_name=child["first_name"],
            last_name=child["last_name"], birth_date=child["birth_date"],
            school=child.get("school"), class_name=child.get("class_name"),
            allergies=bool(child.get("allergies"))))
    for membership in raw["communes"]:
        _ensure_membership(session, raw["family_id"], membership["commune_id"],
                           membership.get("family_code"))


def on_membership_created(session: Session, event: Event, data: dict[str, Any]) -> None:
    raw = event.data
    if is_erased(session, raw["family_id"]):
        return  # a late membership of an erased household
    _ensure_membership(session, raw["family_id"], raw["commune_id"], raw.get("family_code"))


def _ensure_membership(session: Session, family_id: str, commune_id: str,
                       family_code: str | None) -> None:
    exists = session.execute(select(HOUSEHOLD_COMMUNES.c.family_id).where(
        HOUSEHOLD_COMMUNES.c.family_id == family_id,
        HOUSEHOLD_COMMUNES.c.commune_id == commune_id)).first()
    if exists is None:
        session.execute(HOUSEHOLD_COMMUNES.insert().values(
            family_id=family_id, commune_id=commune_id, family_code=family_code))


ERASED_NAME = "Foyer supprimé"


def forget(session: Session, family_id: str, version: int) -> None:
    """The household was erased (``accounts.household.erased``): its children and communes
    go, and its row stays as a tombstone without any personal data, at the final ``version``,
    so that a late ``accounts.family.updated`` never brings the names back."""
    tombstone = {"family_id": family_id, "family_name": ERASED_NAME, "guardians": [],
                 "children": [], "address": None, "communes": [], "version": version,
                 "erased": True}
    session.execute(delete(CHILDREN).where(CHILDREN.c.family_id == family_id))
    session.execute(delete(HOUSEHOLD_COMMUNES).where(HOUSEHOLD_COMMUNES.c.family_id == family_id))
    current = session.execute(select(HOUSEHOLDS.c.version).where(
        HOUSEHOLDS.c.family_id == family_id)).scalar()
    values = {"family_name": ERASED_NAME, "snapshot": tombstone,
              "version": max(version, current or 0)}
    if current is None:
        session.execute(HOUSEHOLDS.insert().values(family_id=family_id, **values))
    else:
        session.execute(HOUSEHOLDS.update().where(HOUSEHOLDS.c.family_id == family_id)
                        .values(**values))


def is_erased(session: Session, family_id: str) -> bool:
    row = household(session, family_id)
    return bool(row and (row["snapshot"] or {}).get("erased"))


HOUSEHOLD_HANDLERS = {
    "accounts.family.updated": on_family_updated,
    "accounts.membership.created": on_membership_created,
}


def household(session: Session, family_id: str) -> dict[str, Any] | None:
    row = session.execute(select(HOUSEHOLDS).where(HOUSEHOLDS.c.family_id == family_id)
                          ).mappings().first()
    return dict(row) if row else None


def children_of(session: Session, family_id: str) -> list[dict[str, Any]]:
    rows = session.execute(select(CHILDREN).where(CHILDREN.c.family_id == family_id)
                           .order_by(CHILDREN.c.birth_date, CHILDREN.c.first_name)).mappings()
    return [dict(r) for r in rows]


def child(session: Session, child_id: str) -> dict[str, Any] | None:
    row = session.execute(select(CHILDREN).where(CHILDREN.c.id == child_id)).mappings().first()
    return dict(row) if row else None


def belongs_to(session: Session, family_id: str, commune_id: str) -> bool:
    return session.execute(select(HOUSEHOLD_COMMUNES.c.family_id).where(
        HOUSEHOLD_COMMUNES.c.family_id == family_id,
        HOUSEHOLD_COMMUNES.c.commune_id == commune_id)).first() is not None


def recipients(snapshot: dict[str, Any]) -> list[str]:
    """The guardians' e-mail addresses, payer first, without duplicates."""
    guardians = sorted(snapshot.get("guardians", []), key=lambda g: not g.get("pays"))
    seen: list[str] = []
    for guardian in guardians:
        email = (guardian.get("email") or "").strip().lower()
        if email and email not in seen:
            seen.append(email)
    return seen
