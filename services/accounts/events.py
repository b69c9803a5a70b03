"""What accounts publishes, and what it consumes (nothing yet: it is the source of identity)."""

from __future__ import annotations

from services.common.bus import Handler

PUBLISHES = (
    "accounts.commune.created",
    "accounts.commune.updated",
    "accounts.family.invited",
    "accounts.family.activated",
    "accounts.family.updated",
    "accounts.membership.created",
    "accounts.password_reset.requested",
)

HANDLERS: dict[str, Handler] = {}
