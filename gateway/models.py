"""The gateway's own table: server-side sessions (portal cookie and API bearer tokens)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    metadata = MetaData()


class Session(Base):
    __tablename__ = "sessions"

    # Only a hash of the token is stored: a leaked table does not open anyone's session.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(36), index=True)
    principal: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the principal (roles, memberships) was last read from accounts.
    refreshed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True),
                                                          nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "pending" (password checked, the second factor not yet: no agent or admin rights),
    # "verified", "not_required" (opened for an account without one); NULL for sessions
    # opened directly in the store (tests, tools), taken as they are.
    second_factor: Mapped[str | None] = mapped_column(String(16), nullable=True)


metadata = Base.metadata
