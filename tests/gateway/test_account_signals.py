"""What accounts tells the gateway about the caller reaches the open sessions.

A fake accounts upstream answers the gateway's internal questions from a mutable table, and
sends the signals of docs/contract.md on its public routes, so that each behaviour is
observed without the real accounts service.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from flask import Flask, jsonify

from services.common.auth import KeySet, Principal, ensure_dev_keys
from tests.common.servers import Served

from .conftest import UPSTREAMS

ACCOUNT = "acc-1"


class FakeAccounts:
    def __init__(self):
        self.claims = {
            "account_id": ACCOUNT, "email": "parent@famille.test", "family_id": "fam-1",
            "platform_admin": False,
            "communes": {"jolieville": {"id": "c1", "name": "JolieVille", "roles": ["parent"]}},
        }
        self.active = True

    def app(self) -> Flask:
        app = Flask("fake-accounts")

        @app.post("/internal/authenticate")
        def authenticate():
            return jsonify(self.claims)

        @app.get("/internal/principals/<account_id>")
        def principal(account_id):
            if not self.active:
                return jsonify(status=404), 404
            return jsonify(self.claims)

        @app.post("/api/accounts/me/communes")
        def join():
            self.claims["communes"]["dammartin"] = {"id": "c2", "name": "Dammartin",
                                                    "roles": ["parent"]}
            response = jsonify(joined=True)
            response.headers["X-Portail-Principal-Changed"] = "1"
            return response

        @app.post("/api/accounts/me/password")
        def password():
            response = jsonify(changed=True)
            response.headers["X-Portail-End-Other-Sessions"] = ACCOUNT
            return response

        @app.post("/api/accounts/password-reset/confirm")
        def confirm():
            response = jsonify(account_id=ACCOUNT)
            response.headers["X-Portail-End-Other-Sessions"] = ACCOUNT
            return response

        @app.post("/api/accounts/password-reset")
        def reset():
            return jsonify(accepted=True), 202

        return app


@pytest.fixture
def accounts():
    fake = FakeAccounts()
    served = Served(fake.app())
    yield fake, served.url
    served.stop()


@pytest.fixture
def gw(make_gateway, upstreams, accounts):
    fake, url = accounts
    urls = {name: upstreams[name].url for name in UPSTREAMS} | {"accounts": url}
    return make_gateway(urls)


def login(gw) -> str:
    answer = requests.post(f"{gw.url}/auth/login",
                           json={"email": "parent@famille.test", "password": "x" * 12},
                           timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def me(gw, token):
    return requests.get(f"{gw.url}/auth/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=5)


def test_joining_a_commune_reaches_the_session_at_once(gw):
    token = login(gw)
    assert [c["slug"] for c in me(gw, token).json()["communes"]] == ["jolieville"]
    joined = requests.post(f"{gw.url}/api/accounts/me/communes", json={},
                           headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert joined.status_code == 200
    assert "X-Portail-Principal-Changed" not in joined.headers  # internal, never forwarded
    assert [c["slug"] for c in me(gw, token).json()["communes"]] == ["dammartin", "jolieville"]


def test_a_password_change_ends_the_other_sessions_only(gw):
    here, elsewhere = login(gw), login(gw)
    changed = requests.post(f"{gw.url}/api/accounts/me/password", json={},
                            headers={"Authorization": f"Bearer {here}"}, timeout=5)
    assert changed.status_code == 200
    assert "X-Portail-End-Other-Sessions" not in changed.headers
    assert me(gw, here).status_code == 200
    assert me(gw, elsewhere).status_code == 401


def test_a_password_reset_ends_every_session_of_the_account(gw):
    sessions = [login(gw), login(gw)]
    confirmed = requests.post(f"{gw.url}/api/accounts/password-reset/confirm",
                              json={"token": "t", "password": "p" * 12}, timeout=5)
    assert confirmed.status_code == 200
    assert all(me(gw, token).status_code == 401 for token in sessions)


def test_a_stale_principal_is_reloaded_and_a_disabled_account_logged_out(gw, accounts):
    fake, _ = accounts
    token = login(gw)
    core = gw.app.extensions["gateway"]
    core.principal_ttl = timedelta(0)  # every call re-reads the principal
    fake.claims["communes"]["dammartin"] = {"id": "c2", "name": "Dammartin",
                                            "roles": ["parent"]}
    assert [c["slug"] for c in me(gw, token).json()["communes"]] == ["dammartin", "jolieville"]
    # An agent role granted since the login waits for a login with the second factor.
    fake.claims["communes"]["jolieville"]["roles"] = ["parent", "agent"]
    assert me(gw, token).json()["communes"][1]["roles"] == ["parent"]
    fake.active = False
    gone = me(gw, token)
    assert gone.status_code == 401
    assert gone.headers["Content-Type"] == "application/problem+json"


def test_the_jwks_publishes_the_signing_key(gw):
    jwks = requests.get(f"{gw.url}/.well-known/jwks.json", timeout=5)
    assert jwks.status_code == 200
    keys = KeySet(jwks.json())
    token = gw.app.extensions["gateway"].signer.mint(Principal(account_id="x"),
                                                    audience="billing")
    assert keys.verify(token, audience="billing").account_id == "x"
    assert KeySet(ensure_dev_keys(gw.data_dir)[1]).keys.keys() == keys.keys.keys()


def test_password_reset_requests_are_rate_limited_per_email(gw):
    def ask(email):
        return requests.post(f"{gw.url}/api/accounts/password-reset", json={"email": email},
                             timeout=5)

    answers = [ask("Parent@Famille.test") for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [202] * 5
    assert answers[5].status_code == 429
    assert int(answers[5].headers["Retry-After"]) > 0
    assert answers[5].headers["Content-Type"] == "application/problem+json"
    assert ask("someone-else@famille.test").status_code == 202


def test_a_service_learns_a_rotated_key_from_the_jwks_url(make_gateway, upstreams, tmp_path):
    """Rotation without logging anyone out: the old key stays published, the new one signs."""
    from services.common.auth import RemoteKeySet, generate_private_key_pem

    old, new = generate_private_key_pem(), generate_private_key_pem()
    urls = {name: upstreams[name].url for name in UPSTREAMS}
    before = make_gateway(urls, env="production", extra={"JWT_PRIVATE_KEY": old})
    keys = RemoteKeySet(f"{before.url}/.well-known/jwks.json", min_refetch=0)
    old_token = before.app.extensions["gateway"].signer.mint(Principal(account_id="a"),
                                                            audience="billing")
    assert keys.verify(old_token, "billing").account_id == "a"
    after = make_gateway(urls, env="production",
                         extra={"JWT_PRIVATE_KEY": new, "JWT_PREVIOUS_KEYS": old})
    keys.url = f"{after.url}/.well-known/jwks.json"
    new_token = after.app.extensions["gateway"].signer.mint(Principal(account_id="b"),
                                                           audience="billing")
    assert keys.verify(new_token, "billing").account_id == "b"  # fetched on the unknown kid
    assert keys.verify(old_token, "billing").account_id == "a"  # still trusted
