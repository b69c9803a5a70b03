"""Who is looking at the page, as the gateway says (``GET /auth/me``), once per request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import g, request

from .client import SESSION_COOKIE, GatewayError, gateway, json_body


@dataclass(frozen=True)
class Commune:
    slug: str
    name: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Account:
    account_id: str
    email: str
    family_id: str | None
    communes: tuple[Commune, ...] = field(default_factory=tuple)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            account_id=str(data["account_id"]),
            email=str(data["email"]),
            family_id=data.get("family_id"),
            communes=tuple(
                Commune(str(c["slug"]), str(c.get("name") or c["slug"]),
                        tuple(c.get("roles") or ()))
                for c in data.get("communes") or ()
            ),
        )


_UNSET = object()


def current_account() -> Account | None:
    """The logged-in account, or None; raises GatewayError when nobody can tell.

    Without the session cookie nobody is logged in, so the gateway is not asked: an anonymous
    visitor's pages keep working while the services are down.
    """
    cached = g.get("_account", _UNSET)
    if isinstance(cached, GatewayError):
        raise cached
    if cached is not _UNSET:
        return cached  # type: ignore[return-value]
    account: Account | None = None
    if request.cookies.get(SESSION_COOKIE):
        try:
            response = gateway().get("/auth/me")
            if response.status_code == 200:
                account = _parse(json_body(response))
        except GatewayError as exc:
            g._account = exc  # ask once per request, even when it fails
            raise
    g._account = account
    return account


def layout_account() -> tuple[Account | None, bool]:
    """For the layout: ``(account, unknown)``; a page renders even when nobody can tell."""
    try:
        return current_account(), False
    except GatewayError:
        return None, True


def _parse(data: Any) -> Account:
    try:
        return Account.from_json(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise GatewayError("Les services du portail ont renvoyé une réponse inattendue. "
                           "Réessayez dans quelques instants.", 502) from exc
