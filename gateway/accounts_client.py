"""The gateway's two questions to accounts: who has these credentials, who is this account."""

from __future__ import annotations

from flask import g

from services.common.auth import Principal, Signer
from services.common.errors import Problem

from .upstreams import Upstreams


def principal_from_claims(body: dict) -> Principal:
    return Principal.from_claims({**body, "sub": body["account_id"], "fam": body.get("family_id"),
                                  "adm": body.get("platform_admin")})


class AccountsClient:
    def __init__(self, upstreams: Upstreams, signer: Signer):
        self.upstreams = upstreams
        self.signer = signer

    def _headers(self) -> dict[str, str]:
        token = self.signer.mint(Principal(account_id="service:gateway"), audience="accounts")
        return {"Authorization": f"Bearer {token}", "X-Request-ID": g.get("request_id", "")}

    def authenticate(self, email: str, password: str) -> tuple[Principal, dict] | None:
        """The principal and its second factor state ``{required, enrolled}``; None for bad
        credentials."""
        answer = self.upstreams.request("accounts", "POST", "/internal/authenticate",
                                        headers=self._headers(),
                                        json={"email": email, "password": password})
        if answer.status_code == 401:
            return None
        if answer.status_code != 200:
            raise Problem(502, "La connexion est momentanément impossible. Réessayez plus tard.")
        body = answer.json()
        return principal_from_claims(body), dict(body.get("second_factor") or {})

    def second_factor(self, account_id: str, action: str, code: str | None = None) -> dict:
        """``enrolment``, ``enrolment/confirm``, ``verify`` or ``recover`` for that account.

        Accounts' refusals (401 wrong code, 409, 429 locked) come back as they are, in French.
        """
        answer = self.upstreams.request(
            "accounts", "POST", f"/internal/second-factor/{account_id}/{action}",
            headers=self._headers(), json={} if code is None else {"code": code})
        if answer.status_code in (401, 404, 409, 422, 429):
            body = answer.json() if answer.content else {}
            raise Problem(answer.status_code if answer.status_code != 404 else 401,
                          body.get("detail") if isinstance(body, dict) else None,
                          errors=body.get("errors") if isinstance(body, dict) else None)
        if answer.status_code != 200:
            raise Problem(502, "La connexion est momentanément impossible. Réessayez plus tard.")
        return answer.json()

    def principal(self, account_id: str) -> Principal | None:
        """The account's current principal; None when it no longer may log in."""
        answer = self.upstreams.request("accounts", "GET", f"/internal/principals/{account_id}",
                                        headers=self._headers())
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise Problem(502, "Le service des comptes est momentanément indisponible.")
        return principal_from_claims(answer.json())
