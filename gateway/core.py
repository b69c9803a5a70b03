"""The gateway object the views share: sessions, upstreams, token minting, principal freshness."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from flask import request

from services.common.auth import Principal, Signer
from services.common.config import Settings
from services.common.errors import Problem

from .accounts_client import AccountsClient
from .sessions import COOKIE, NOT_REQUIRED, PENDING, SessionStore
from .upstreams import Upstreams

# Sent by accounts on a response that changes who the caller is; consumed here, never
# forwarded to the client (docs/contract.md).
PRINCIPAL_CHANGED = "X-Portail-Principal-Changed"
END_OTHER_SESSIONS = "X-Portail-End-Other-Sessions"


def needs_second_factor(principal: Principal) -> bool:
    """Agents and platform admins reach back-office data: they log in with a second factor."""
    return principal.platform_admin or principal.is_agent()


def without_back_office(principal: Principal) -> Principal:
    """The principal with no agent role and no admin right: what a session waiting for its
    second factor may show the services (identity still comes from the token only)."""
    communes = {}
    for slug, info in principal.communes.items():
        roles = [role for role in info.get("roles", []) if not role.startswith("agent")]
        if roles:
            communes[slug] = {**info, "roles": roles}
    return replace(principal, platform_admin=False, communes=communes)


def effective(principal: Principal, second_factor: str | None) -> Principal:
    # NOT_REQUIRED with agent roles: roles granted after the login; they wait for a new login.
    if second_factor == PENDING or (second_factor == NOT_REQUIRED
                                    and needs_second_factor(principal)):
        return without_back_office(principal)
    return principal


@dataclass
class Gateway:
    settings: Settings
    upstreams: Upstreams
    sessions: SessionStore
    signer: Signer
    accounts: AccountsClient
    # Roles and memberships granted or withdrawn elsewhere reach open sessions this soon.
    principal_ttl: timedelta = timedelta(minutes=5)

    @property
    def dev(self) -> bool:
        return self.settings.dev

    def token_from_request(self) -> str | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[7:].strip() or None
        return request.cookies.get(COOKIE) or None

    def authenticate(self) -> Principal | None:
        """The caller's principal, None when anonymous; 401 for a dead or forged token."""
        token = self.token_from_request()
        if not token:
            return None
        found = self.sessions.find(token)
        if found is None:
            raise Problem(401, "Votre session a expiré : veuillez vous reconnecter.")
        principal = found.principal
        if found.age >= self.principal_ttl:
            principal = self.refresh(token, principal.account_id)
        return effective(principal, found.second_factor)

    def refresh(self, token: str, account_id: str) -> Principal:
        principal = self.accounts.principal(account_id)
        if principal is None:  # disabled or deleted since: the session ends now
            self.sessions.close_all(account_id)
            raise Problem(401, "Votre session a expiré : veuillez vous reconnecter.")
        self.sessions.replace_principal(token, principal)
        return principal

    def apply_account_signals(self, headers) -> None:
        """React to what accounts says about the caller after a proxied call succeeded.

        ``X-Portail-End-Other-Sessions`` names the account: after a password reset the caller
        has no session, and every session of that account ends; otherwise all but the caller's.
        """
        ending = headers.get(END_OTHER_SESSIONS)
        if not ending and not headers.get(PRINCIPAL_CHANGED):
            return  # nearly every answer: no second session lookup for nothing
        token = self.token_from_request()
        found = self.sessions.find(token) if token else None
        if ending:
            account_id = found[0].account_id if found else ending
            if ending in (account_id, "1"):
                self.sessions.close_all(account_id, keep=token if found else None)
        if found and headers.get(PRINCIPAL_CHANGED):
            self.refresh(token, found[0].account_id)
