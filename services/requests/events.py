"""What requests publishes (built here from its rows) and the events it handles.

| event | when |
| --- | --- |
| requests.request.submitted | a household sends a request |
| requests.request.status_changed | an agent moves a request along its category's transitions, or the family's reply brings it back from waiting_for_family to in_progress |

``status_changed`` carries ``category_kind`` and, for the kinds that act elsewhere,
``payload`` (see ``domain.effect_payload``): reservations excuses the days of an accepted
``absence_justification``. Recipients are the household's guardians (read model).

Consumed: the communes (``services.common.tenancy``) and the households
(``services.common.households``), both from accounts.
"""  # noqa: E501

from __future__ import annotations

from typing import Any

from services.common.bus import Handler
from services.common.events import Event
from services.common.households import HOUSEHOLD_HANDLERS
from services.common.tenancy import COMMUNE_HANDLERS

from . import NAME
from .domain import effect_payload
from .models import Request
from .privacy import erased_handler

PUBLISHES: tuple[str, ...] = (
    "requests.request.submitted",
    "requests.request.status_changed",
    "requests.access.recorded",  # issue 8: agents' reads, for the audit log
)

HANDLERS: dict[str, Handler] = {
    **COMMUNE_HANDLERS,
    **HOUSEHOLD_HANDLERS,
    # issue 8: rows only here; build_runtime binds the store, so files go at once too
    "accounts.household.erased": erased_handler(None),
}


def answer_values(request: Request) -> dict[str, Any]:
    return {row["name"]: row["value"] for row in request.answers or []}


def request_submitted(request: Request, recipients: list[str]) -> Event:
    return Event.new(
        "requests.request.submitted",
        {"request_id": request.id, "family_id": request.family_id,
         "category_id": request.category_id, "category_label": request.category_label,
         "recipients": recipients, "category_kind": request.category_kind,
         "reference": request.reference},
        producer=NAME, commune_id=request.commune_id)


def status_changed(request: Request, old_status: str, new_status: str, recipients: list[str],
                   agent_message: str | None) -> Event:
    return Event.new(
        "requests.request.status_changed",
        {"request_id": request.id, "family_id": request.family_id,
         "old_status": old_status, "new_status": new_status, "recipients": recipients,
         "agent_message": agent_message, "category_kind": request.category_kind,
         "payload": effect_payload(request.category_kind, answer_values(request)),
         "category_id": request.category_id, "category_label": request.category_label},
        producer=NAME, commune_id=request.commune_id)
