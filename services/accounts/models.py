"""Accounts' own tables.

A household (``Family``) has guardians and children, and belongs to communes through
``Membership`` rows, each with the family code that commune gave it. A parent's ``Account``
points to its household (``family_id``); agents have an ``AgentRole`` in exactly one commune.
Every id is a UUID string that never changes (other services key their read models on them).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from services.common.outbox import messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """A point in time, stored in UTC and always read back as an aware datetime.

    SQLite keeps no time zone: values are converted to UTC before they are written, so the
    stored text compares in time order, and marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Commune(Base):
    __tablename__ = "communes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # invited (no password yet), active, disabled: only active accounts log in.
    status: Mapped[str] = mapped_column(String(16), default="invited")
    platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # The household of a parent's account. No foreign key: accounts seeded before households
    # existed carry the demo family's id, which the seed now creates.
    family_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AgentRole(Base):
    """An agent belongs to exactly one commune, with one or more roles there."""

    __tablename__ = "agent_roles"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    commune_id: Mapped[str] = mapped_column(ForeignKey("communes.id"), index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)


class Family(Base):
    """A household (foyer). ``version`` increases at each change of its snapshot."""

    __tablename__ = "families"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_name: Mapped[str] = mapped_column(String(100))
    # Lower case, without accents: the order of the agents' list and its search.
    sort_key: Mapped[str] = mapped_column(String(100), index=True)
    # The same for the family name and the children's names: what the agents' search reads.
    search_text: Mapped[str] = mapped_column(Text, default="")
    # {line1, line2, postal_code, city} or null
    address: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())

    guardians: Mapped[list[Guardian]] = relationship(
        back_populates="family", order_by="Guardian.position", cascade="all, delete-orphan")
    children: Mapped[list[Child]] = relationship(
        back_populates="family", order_by="Child.position", cascade="all, delete-orphan")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="family", order_by="Membership.created_at", cascade="all, delete-orphan")


class Guardian(Base):
    """A responsable légal of the household; ``pays`` marks who receives the invoices."""

    __tablename__ = "guardians"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(ForeignKey("families.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    relation: Mapped[str | None] = mapped_column(String(60), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phones: Mapped[list] = mapped_column(JSON, default=list)
    pays: Mapped[bool] = mapped_column(Boolean, default=False)

    family: Mapped[Family] = relationship(back_populates="guardians")


class Child(Base):
    __tablename__ = "children"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(ForeignKey("families.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    school: Mapped[str | None] = mapped_column(String(200), nullable=True)
    class_name: Mapped[str | None] = mapped_column(String(60), nullable=True)
    allergies: Mapped[bool] = mapped_column(Boolean, default=False)
    allergy_notes: Mapped[str | None] = mapped_column(Text, nullable=True)

    family: Mapped[Family] = relationship(back_populates="children")


class Membership(Base):
    """A household's link to a commune, with the family code that commune gave it.

    ``pending`` is an offer: an agent registered, in their commune, a household whose e-mail
    already had an account; the parent accepts it with the code (``POST /me/communes``), which
    only works for the account it was made to (``account_id``). ``active`` memberships are the
    household's communes.
    """

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("commune_id", "family_code", name="uq_memberships_commune_code"),
        UniqueConstraint("family_id", "commune_id", name="uq_memberships_family_commune"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(ForeignKey("families.id"), index=True)
    commune_id: Mapped[str] = mapped_column(ForeignKey("communes.id"), index=True)
    family_code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    family: Mapped[Family] = relationship(back_populates="memberships")
    commune: Mapped[Commune] = relationship()


class Token(Base):
    """A single-use link sent by e-mail (activation or password reset); only its SHA-256."""

    __tablename__ = "tokens"
    __table_args__ = (Index("ix_tokens_account_kind", "account_id", "kind"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16))  # activation | reset
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    commune_id: Mapped[str | None] = mapped_column(ForeignKey("communes.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SecondFactor(Base):
    """An agent's or admin's TOTP secret (``totp``): encrypted, confirmed by a first code.

    ``last_step`` is the last 30-second step accepted: a code is only accepted for a later
    step, so none works twice. ``failures`` counts consecutive wrong codes (lock at 10).
    """

    __tablename__ = "second_factors"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RecoveryCode(Base):
    """A single-use recovery code of the second factor; only its SHA-256."""

    __tablename__ = "recovery_codes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class News(Base):
    """An actualité of a commune, written by an agent, shown on the portal's home page."""

    __tablename__ = "news"
    __table_args__ = (Index("ix_news_commune_published", "commune_id", "published_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(ForeignKey("communes.id"))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    author_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class ErasureRequest(Base):
    """A household's request to erase its data (GDPR art. 17), decided by each of its communes.

    ``decisions``: ``{commune_id: {accepted, account_id, reason, at}}``. ``status``:
    ``pending`` until every commune of the household accepted (then ``completed``: the
    household is erased and ``accounts.household.erased`` published) or one refused
    (``refused``, with its reason; the family may ask again).
    """

    __tablename__ = "erasure_requests"
    __table_args__ = (Index("ix_erasure_requests_family", "family_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    commune_ids: Mapped[list] = mapped_column(JSON, default=list)
    decisions: Mapped[dict] = mapped_column(JSON, default=dict)
    refusal_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditEntry(Base):
    """An agent's access to a household's data or documents (who, when, which household,
    what, in which commune), for the commune's data-protection officer. Recorded by accounts
    itself, or received from the other services' ``<service>.access.recorded`` events
    (``event_id`` unique: a redelivered event adds nothing)."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_commune_at", "commune_id", "at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_id: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    commune_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    service: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(60))
    object_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
