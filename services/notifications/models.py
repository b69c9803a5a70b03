"""Notifications' own tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.outbox import messaging_tables
from services.common.tenancy import communes_table

# Statuses of a message: waiting for (another) delivery attempt, delivered to the SMTP server
# (or the dev mailbox), given up for good (refused by the server, or 24 h of failures).
PENDING = "pending"
SENT = "sent"
FAILED = "failed"
STATUSES = (PENDING, SENT, FAILED)


class Base(DeclarativeBase):
    metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


class Message(Base):
    """One e-mail to one recipient, caused by one event.

    Written by the event handlers, already rendered, with status ``pending``; the sender loop
    of the worker delivers it. ``(event_id, recipient)`` is unique: a redelivered event never
    makes a second message. Times are UTC (SQLite gives them back naive).
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("event_id", "recipient", name="uq_messages_event_recipient"),
        # The sender's claim: pending messages whose next attempt is due, oldest first.
        Index("ix_messages_status_next_attempt", "status", "next_attempt_at"),
        # The household's history and the agents' list, newest first.
        Index("ix_messages_family_created", "family_id", "created_at"),
        Index("ix_messages_commune_status_created", "commune_id", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(60))  # the template name
    recipient: Mapped[str] = mapped_column(String(320))
    family_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    commune_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Sender identity: display name of From (the commune's name) and Reply-To (its contact).
    from_name: Mapped[str] = mapped_column(String(300))
    reply_to: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str] = mapped_column(String(500))
    text_body: Mapped[str] = mapped_column(Text)
    # The text part as the household's history shows it, when the mail holds a secret (an
    # activation or reset link): never given back by the API. NULL: nothing to hide.
    history_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    html_body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                             nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


communes = communes_table(Base.metadata)
outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
