"""Rate limits on what can be used to guess passwords or flood mailboxes (Flask-Limiter).

Per client address and per target (the e-mail or token in the body), moving windows, stored in
Redis when ``REDIS_URL`` is set so that every gateway process shares the counts.
"""

from __future__ import annotations

import hashlib

from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

# Public account endpoints proxied to accounts: (method, path) → body field that names the
# target of the attempt.
SENSITIVE = {
    ("POST", "/api/accounts/activation"): "token",
    ("POST", "/api/accounts/activation/renew"): "token",
    ("POST", "/api/accounts/password-reset"): "email",
    ("POST", "/api/accounts/password-reset/confirm"): "token",
    # Guessing another household's family code, or an invoice's reference and amount, one
    # session at a time.
    ("POST", "/api/accounts/me/communes"): None,
    ("POST", "/api/billing/invoices/claim"): None,
}


def _target_key() -> str:
    field = SENSITIVE.get((request.method, request.path))
    if field is None:  # the target is the caller's own session
        token = request.headers.get("Authorization", "") or request.cookies.get("portail_session")
        return f"{request.path}:{hashlib.sha256(str(token).encode()).hexdigest()}"
    body = request.get_json(silent=True)
    value = body.get(field) if isinstance(body, dict) and field else None
    return f"{request.path}:{str(value).strip().lower()[:200]}" if value else f"{request.path}:-"


def _login_key() -> str:
    body = request.get_json(silent=True)
    email = body.get("email") if isinstance(body, dict) else None
    return f"login:{str(email).strip().lower()[:254]}" if email else "login:-"


def _second_factor_key() -> str:
    """The account whose code is tried: a new login (a new session) does not reset the count."""
    from flask import current_app

    gw = current_app.extensions["gateway"]
    token = gw.token_from_request()
    found = gw.sessions.find(token) if token else None
    account = found.principal.account_id if found else hashlib.sha256(
        str(token).encode()).hexdigest()
    return f"second-factor:{account}"


def _failed(response) -> bool:
    return response.status_code >= 400


def _not_sensitive() -> bool:
    return (request.method, request.path) not in SENSITIVE


def install(app: Flask, storage_uri: str) -> Limiter:
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage_uri,
                      headers_enabled=True, strategy="moving-window")
    # Flask-Limiter (>= 4) checks a decorated limit inside the wrapper it returns, not before
    # the request: the wrapper must replace the registered view, or no limit ever applies.
    login = app.view_functions["auth.login"]
    login = limiter.limit("20 per minute", key_func=get_remote_address)(login)
    login = limiter.limit("10 per 15 minutes", key_func=_login_key)(login)
    app.view_functions["auth.login"] = login

    # Codes of the second factor: only wrong ones count, so an agent who logs in often is
    # never stopped; 5 wrong codes in 15 minutes per account (on top of accounts' own lock
    # after 10 in a row), 20 per minute per address.
    for view in ("auth.second_factor", "auth.confirm_enrolment"):
        guarded = app.view_functions[view]
        guarded = limiter.limit("20 per minute", key_func=get_remote_address,
                                scope="second-factor-address")(guarded)
        guarded = limiter.limit("5 per 15 minutes", key_func=_second_factor_key,
                                deduct_when=_failed, scope="second-factor-account")(guarded)
        app.view_functions[view] = guarded

    api = app.view_functions["proxy.api"]
    api = limiter.limit("30 per minute", key_func=get_remote_address,
                        exempt_when=_not_sensitive, scope="account-public")(api)
    api = limiter.limit("5 per 15 minutes", key_func=_target_key,
                        exempt_when=_not_sensitive, scope="account-target")(api)
    app.view_functions["proxy.api"] = api
    app.extensions["portail_limiter"] = limiter
    return limiter
