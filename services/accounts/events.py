"""What accounts publishes (built here from its rows), and what it consumes (nothing: it is
the source of identity).

| event | when |
| --- | --- |
| accounts.commune.created | a platform admin creates a commune (and the demo seed) |
| accounts.commune.updated | its name or settings change (``version`` + 1) |
| accounts.family.invited | an agent creates a household, re-sends its invitation, or the parent asks for a new link |
| accounts.family.activated | the invited parent sets a password |
| accounts.family.updated | a household is created or changes (profile, a commune joined): the full snapshot with ``version`` |
| accounts.membership.created | a household enters a commune (created there, or joins with a family code) |
| accounts.password_reset.requested | someone asks to reset the password of an active account |

Every event is added to the outbox in the transaction of the change it reports.
"""  # noqa: E501

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.bus import Handler
from services.common.events import Event

from . import NAME
from .audit import on_access_recorded
from .models import Account, Child, Commune, Family, Guardian, Membership

PUBLISHES = (
    "accounts.commune.created",
    "accounts.commune.updated",
    "accounts.family.invited",
    "accounts.family.activated",
    "accounts.family.updated",
    "accounts.membership.created",
    "accounts.password_reset.requested",
    "accounts.household.erased",  # issue 8: published by privacy.Privacy._erase
)

# The audit log of agents' reads in the other services (issue 8): accounts keeps it for each
# commune's data-protection officer.
HANDLERS: dict[str, Handler] = {
    f"{service}.access.recorded": on_access_recorded
    for service in ("reservations", "billing", "requests")
}


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def commune_data(commune: Commune) -> dict[str, Any]:
    return {"commune_id": commune.id, "slug": commune.slug, "name": commune.name,
            "settings": dict(commune.settings or {})}


def commune_created(commune: Commune) -> Event:
    return Event.new("accounts.commune.created", commune_data(commune), producer=NAME,
                     commune_id=commune.id)


def commune_updated(commune: Commune) -> Event:
    return Event.new("accounts.commune.updated",
                     {**commune_data(commune), "version": commune.version},
                     producer=NAME, commune_id=commune.id)


def guardian_data(guardian: Guardian) -> dict[str, Any]:
    return {"id": guardian.id, "first_name": guardian.first_name,
            "last_name": guardian.last_name, "email": guardian.email,
            "phones": list(guardian.phones or []), "pays": bool(guardian.pays)}


def child_data(child: Child) -> dict[str, Any]:
    return {"id": child.id, "first_name": child.first_name, "last_name": child.last_name,
            "birth_date": child.birth_date.isoformat(), "school": child.school,
            "class_name": child.class_name, "allergies": bool(child.allergies)}


def family_snapshot(family: Family) -> dict[str, Any]:
    """The catalogue's household snapshot: what other services keep as a read model."""
    return {
        "family_id": family.id,
        "family_name": family.family_name,
        "guardians": [guardian_data(g) for g in family.guardians],
        "children": [child_data(c) for c in family.children],
        "address": family.address,
        "communes": [{"commune_id": m.commune_id, "slug": m.commune.slug,
                      "family_code": m.family_code}
                     for m in family.memberships if m.status == "active"],
        "version": family.version,
    }


def family_updated(family: Family) -> Event:
    return Event.new("accounts.family.updated", family_snapshot(family), producer=NAME)


def membership_created(membership: Membership, commune: Commune) -> Event:
    return Event.new(
        "accounts.membership.created",
        {"family_id": membership.family_id, "commune_id": commune.id,
         "family_code": membership.family_code, "commune_slug": commune.slug},
        producer=NAME, commune_id=commune.id)


def family_invited(family: Family, account: Account, commune: Commune, family_code: str | None,
                   activation_url: str, expires_at: datetime) -> Event:
    return Event.new(
        "accounts.family.invited",
        {"family_id": family.id, "email": account.email, "activation_url": activation_url,
         "commune_id": commune.id, "commune_name": commune.name,
         "commune_slug": commune.slug, "family_name": family.family_name,
         "family_code": family_code, "expires_at": iso(expires_at)},
        producer=NAME, commune_id=commune.id)


def family_activated(account: Account) -> Event:
    return Event.new(
        "accounts.family.activated",
        {"family_id": account.family_id, "email": account.email, "account_id": account.id},
        producer=NAME)


def password_reset_requested(account: Account, reset_url: str, expires_at: datetime) -> Event:
    return Event.new(
        "accounts.password_reset.requested",
        {"email": account.email, "reset_url": reset_url, "account_id": account.id,
         "family_id": account.family_id, "expires_at": iso(expires_at)},
        producer=NAME)
