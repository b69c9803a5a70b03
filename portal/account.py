"""Who is looking at the page, as the gateway says (``GET /auth/me``), once per request.

Also the commune the visitor is looking at: the one named by the ``portail_commune`` cookie
when it is one of theirs (anything else is ignored), else their first; and the modules that
commune subscribes to, from its public settings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import quote

from flask import abort, current_app, g, request

from .client import SESSION_COOKIE, GatewayError, LoginRequired, gateway, json_body

COMMUNE_COOKIE = "portail_commune"
MODULES = ("reservations", "invoices", "requests")
COMMUNE_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Commune:
    slug: str
    name: str
    roles: tuple[str, ...] = ()

    @property
    def is_agent(self) -> bool:
        return "agent" in self.roles


@dataclass(frozen=True)
class Account:
    account_id: str
    email: str
    family_id: str | None
    communes: tuple[Commune, ...] = field(default_factory=tuple)
    platform_admin: bool = False

    def commune(self, slug: str | None) -> Commune | None:
        return next((c for c in self.communes if c.slug == slug), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        return cls(
            account_id=str(data["account_id"]),
            email=str(data["email"]),
            family_id=data.get("family_id"),
            platform_admin=data.get("platform_admin") is True,
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
            body = json_body(response) if response.status_code == 200 else None
            # A session waiting for its second factor is nobody yet, for the pages.
            if body is not None and not (isinstance(body, dict)
                                         and body.get("second_factor") == "pending"):
                account = _parse(body)
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


def current_commune() -> Commune | None:
    """The commune the visitor looks at: the cookie's when it is one of theirs, else the first.

    The cookie holds only a slug and is never trusted: a slug the gateway does not list for
    this account is ignored.
    """
    account = current_account()
    if account is None or not account.communes:
        return None
    return account.commune(request.cookies.get(COMMUNE_COOKIE)) or account.communes[0]


def commune_modules(slug: str | None) -> tuple[str, ...]:
    """The modules the commune subscribes to; all of them when nobody can tell.

    Unknown is not a reason to hide a page: each module's own pages ask the service anyway.
    """
    if not slug:
        return MODULES
    settings = (commune_info(slug) or {}).get("settings")
    modules = settings.get("modules") if isinstance(settings, dict) else None
    if not isinstance(modules, list):
        return MODULES
    return tuple(m for m in MODULES if m in modules)


def commune_info(slug: str) -> dict[str, Any] | None:
    """``GET /api/accounts/communes/{c}`` (public), kept a minute: every page's menu needs it."""
    cache: dict[str, tuple[float, dict[str, Any]]] = current_app.extensions.setdefault(
        "portal_communes", {})
    now = time.monotonic()
    hit = cache.get(slug)
    if hit and hit[0] > now:
        return hit[1]
    try:
        response = gateway().get(f"/api/accounts/communes/{quote(slug, safe='')}")
        data = json_body(response) if response.status_code == 200 else None
    except GatewayError:
        return None
    if not isinstance(data, dict):
        return None
    cache[slug] = (now + COMMUNE_CACHE_SECONDS, data)
    return data


def login_required(view: Callable) -> Callable:
    """The page needs someone logged in; the login form brings them back afterwards."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        if current_account() is None:
            raise LoginRequired()
        return view(*args, **kwargs)

    return wrapper


def agent_commune() -> Commune:
    """The current commune, when the visitor is one of its agents; otherwise a 403 page."""
    if current_account() is None:
        raise LoginRequired()
    commune = current_commune()
    if commune is None or not commune.is_agent:
        abort(403)
    return commune


def agent_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):
        agent_commune()
        return view(*args, **kwargs)

    return wrapper
