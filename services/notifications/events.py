"""What notifications publishes and the events it handles."""

from __future__ import annotations

from services.common.bus import Handler
from services.common.tenancy import COMMUNE_HANDLERS

PUBLISHES: tuple[str, ...] = ()

HANDLERS: dict[str, Handler] = {
    **COMMUNE_HANDLERS,
}
