"""What notifications publishes and the events it handles.

Every event of DESIGN section 5 that concerns a person becomes e-mails: the handler records
them (rendered, ``pending``) in the consumer's transaction, and the worker's sender loop
delivers them. The communes read model (tenancy) gives the sender identity.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from services.common.bus import Handler
from services.common.events import Event
from services.common.tenancy import COMMUNE_HANDLERS

from .domain import KINDS, NotifierConfig, record
from .privacy import on_household_erased

PUBLISHES: tuple[str, ...] = ()


def build_handlers(config: NotifierConfig | None = None) -> dict[str, Handler]:
    """The handlers, rendering with ``config`` (read from the environment when None)."""

    def notify(session: Session, event: Event, data: dict[str, Any]) -> None:
        record(session, event, data, config or NotifierConfig.from_environ())

    return {**COMMUNE_HANDLERS, **dict.fromkeys(KINDS, notify),
            "accounts.household.erased": on_household_erased}  # issue 8


HANDLERS: dict[str, Handler] = build_handlers()
