"""Requests' own tables.

A commune's agents define ``Category`` rows (the form, the documents it asks for, the
statuses it goes through); a household sends a ``Request`` in one category, with its answers
and ``Document`` rows (the files themselves live in the document store, named by the SHA-256
of their content, see ``storage``). ``Message`` rows are what the family and the agents write
to each other; ``HistoryEntry`` rows are every step of a request (who, when, what), appended
and never changed (a trigger refuses any UPDATE of them, see the migration). ``Agent`` rows are
the commune's agents this service has seen in tokens (for assignment). ``CommuneSettings``
holds what a commune sets here (how long requests are kept).

The households and their children are the read model of ``services.common.households``, the
communes that of ``services.common.tenancy``; both are fed by accounts' events.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from services.common.households import household_tables
from services.common.outbox import messaging_tables
from services.common.tenancy import communes_table


class Base(DeclarativeBase):
    metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """A point in time, stored in UTC and always read back as an aware datetime (SQLite keeps
    no time zone: values are converted to UTC before they are written)."""

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


def now() -> datetime:
    return datetime.now(UTC)


class Category(Base):
    """A thématique of requests in one commune, with its form and workflow.

    ``fields``: ``[{name, label, type, required, help, options}]``;
    ``documents``: ``[{name, label, required, accepted_types, max_size, max_files, help}]``;
    ``statuses``: the statuses it goes through; ``transitions``: ``{status: [status, ...]}``.
    ``kind`` ties it to an effect elsewhere (``absence_justification``, ``address_change``,
    ``allergy``). The commune is the one of accounts' events; no foreign key, since the demo
    seed creates categories before the commune's event has arrived.
    """

    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("commune_id", "label", name="uq_categories_commune_label"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36), index=True)
    label: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    fields: Mapped[list] = mapped_column(JSON, default=list)
    documents: Mapped[list] = mapped_column(JSON, default=list)
    statuses: Mapped[list] = mapped_column(JSON, default=list)
    transitions: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Request(Base):
    """A household's request. ``answers`` keeps the form as it was when sent (the category may
    change afterwards): ``[{name, label, type, value, display}]``."""

    __tablename__ = "requests"
    __table_args__ = (
        UniqueConstraint("commune_id", "reference", name="uq_requests_commune_reference"),
        UniqueConstraint("family_id", "idempotency_key", name="uq_requests_family_idempotency"),
        Index("ix_requests_commune_created", "commune_id", "created_at"),
        Index("ix_requests_family_created", "family_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    commune_id: Mapped[str] = mapped_column(String(36))
    family_id: Mapped[str] = mapped_column(String(36))
    reference: Mapped[str] = mapped_column(String(20))
    category_id: Mapped[str] = mapped_column(ForeignKey("categories.id"), index=True)
    category_label: Mapped[str] = mapped_column(String(200))
    category_kind: Mapped[str | None] = mapped_column(String(40), nullable=True)
    category_version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(30), index=True)
    answers: Mapped[list] = mapped_column(JSON, default=list)
    submitted_by: Mapped[str] = mapped_column(String(64))
    assigned_to: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # SHA-256 of the category, the answers and the files' digests: the same request sent
    # twice within a few minutes is recognised (double click, retried upload).
    fingerprint: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # When the current status was entered (the retention period counts from a decision).
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Message(Base):
    """What the family or an agent wrote about a request (a transition's message included)."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_request_created", "request_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    author_kind: Mapped[str] = mapped_column(String(10))  # family | agent
    author_id: Mapped[str] = mapped_column(String(64))
    author_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    body: Mapped[str] = mapped_column(Text, default="")
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class Document(Base):
    """A file of a request: a category's document (``slot`` = its name) or one added to a
    message. ``storage_key`` is the SHA-256 of the content (the store's key); ``filename`` is
    the sanitised name shown to people, never used on disk."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"),
                                            index=True)
    message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), nullable=True, index=True)
    slot: Mapped[str | None] = mapped_column(String(40), nullable=True)
    label: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(160))
    file_type: Mapped[str] = mapped_column(String(10))  # pdf | jpeg | png | heic
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by_kind: Mapped[str] = mapped_column(String(10))  # family | agent
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class HistoryEntry(Base):
    """One step of a request: submitted, status_changed, message, assigned. Append only."""

    __tablename__ = "request_history"
    __table_args__ = (Index("ix_request_history_request", "request_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    actor_kind: Mapped[str] = mapped_column(String(10))  # family | agent | system
    actor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    action: Mapped[str] = mapped_column(String(30))
    old_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    new_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class Agent(Base):
    """An agent of a commune, as seen in the tokens of their calls (for assignment)."""

    __tablename__ = "agents"

    commune_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)


class CommuneSettings(Base):
    """What a commune sets in this service: how many months decided requests are kept."""

    __tablename__ = "commune_settings"

    commune_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    retention_months: Mapped[int] = mapped_column(Integer, default=36)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, server_default=func.now())


communes = communes_table(Base.metadata)
households, household_communes, children = household_tables(Base.metadata)
outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
