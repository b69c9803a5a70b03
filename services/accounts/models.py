"""Accounts' own tables."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.outbox import messaging_tables


class Base(DeclarativeBase):
    metadata = MetaData()


def new_id() -> str:
    return str(uuid.uuid4())


class Commune(Base):
    __tablename__ = "communes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="invited")
    platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    family_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True),
                                                 server_default=func.now())


class AgentRole(Base):
    """An agent belongs to exactly one commune, with one or more roles there."""

    __tablename__ = "agent_roles"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    commune_id: Mapped[str] = mapped_column(ForeignKey("communes.id"), index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)


outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
