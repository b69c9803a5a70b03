"""Billing's own tables."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from services.common.outbox import messaging_tables
from services.common.tenancy import communes_table


class Base(DeclarativeBase):
    metadata = MetaData()


communes = communes_table(Base.metadata)
outbox, inbox = messaging_tables(Base.metadata)
metadata = Base.metadata
