"""/auth/login, /auth/me, /auth/logout against a real accounts service (DESIGN section 6)."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
import requests

from services.accounts.app import build_runtime
from services.accounts.app import create_app as create_accounts_app
from services.accounts.seed import DEMO_PASSWORD, seed
from services.common.auth import ensure_dev_keys
from services.common.config import Settings
from services.common.errors import PROBLEM_TYPE
from services.common.migrate import upgrade
from tests.common.second_factor import code_for
from tests.common.servers import Served, closed_port

from .conftest import UPSTREAMS

ADMIN = "admin@portail.test"
AGENT = "agent@jolieville.test"
PARENT = "parent@famille.test"
# gateway/app.py: "10 per 15 minutes" per e-mail, "20 per minute" per address.
ATTEMPTS_PER_EMAIL = 10
ATTEMPTS_PER_ADDRESS = 20
SLOW_OK = {"UPSTREAM_TIMEOUT": "10"}
BAD_CREDENTIALS = {"type": "about:blank", "title": "Authentification requise", "status": 401,
                   "detail": "Adresse e-mail ou mot de passe incorrect."}


@pytest.fixture(scope="module")
def accounts(tmp_path_factory) -> Iterator[tuple[str, object]]:
    """A migrated, seeded accounts service; its data dir holds the keys the gateway signs with."""
    data_dir = tmp_path_factory.mktemp("accounts")
    url = f"sqlite:///{data_dir / 'accounts.sqlite3'}"
    upgrade("services.accounts", url)
    runtime = build_runtime(settings=Settings(service="accounts", env="dev", data_dir=data_dir,
                                              database_url=url, amqp_url="memory://"))
    seed(runtime.db)
    served = Served(create_accounts_app(runtime))
    yield served.url, data_dir
    served.stop()
    runtime.db.dispose()


@pytest.fixture
def gateway(make_gateway, accounts):
    accounts_url, data_dir = accounts
    down = f"http://127.0.0.1:{closed_port()}"
    urls = {name: down for name in UPSTREAMS} | {"accounts": accounts_url}
    # argon2 behind a 0.5 s upstream timeout answered 504 on a loaded machine (2 cores, load 29)
    return make_gateway(urls, data_dir=data_dir, extra=SLOW_OK)


def login(gateway, email: str, password: str = DEMO_PASSWORD, **kwargs) -> requests.Response:
    return requests.post(gateway.url + "/auth/login", json={"email": email, "password": password},
                         timeout=10, **kwargs)


def login_with_second_factor(gateway, email: str) -> requests.Response:
    """Password, then the demo agents' and admin's TOTP code (tests/common/second_factor.py)."""
    first = login(gateway, email)
    assert first.status_code == 200 and first.json()["second_factor"] == "totp", first.text
    return requests.post(gateway.url + "/auth/second-factor", timeout=10,
                         json={"code": code_for(f"{gateway.data_dir} {email}")},
                         headers={"Authorization": f"Bearer {first.json()['access_token']}"})


def me(gateway, token: str | None = None, *, cookie: str | None = None) -> requests.Response:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"portail_session={cookie}"
    return requests.get(gateway.url + "/auth/me", headers=headers, timeout=10)


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM_TYPE
    body = response.json()
    assert body["status"] == status
    return body


def session_cookie(response: requests.Response) -> tuple[str, dict]:
    cookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = cookie["portail_session"]
    return morsel.value, morsel


# login ------------------------------------------------------------------------------------
def test_login_answers_a_token_and_sets_the_session_cookie(gateway):
    response = login(gateway, PARENT)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 12 * 3600
    assert len(body["access_token"]) >= 40
    assert response.headers["Cache-Control"] == "no-store"

    value, morsel = session_cookie(response)
    assert value == body["access_token"]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # dev: plain http


def test_each_login_opens_a_new_session(gateway):
    first = login(gateway, ADMIN).json()["access_token"]
    second = login(gateway, ADMIN).json()["access_token"]
    assert first != second
    assert me(gateway, first).status_code == 200  # another device stays logged in
    assert me(gateway, second).status_code == 200


def test_a_session_presented_at_login_is_replaced_not_reused(gateway):
    old = login(gateway, ADMIN).json()["access_token"]
    response = login(gateway, ADMIN, headers={"Cookie": f"portail_session={old}"})
    new = response.json()["access_token"]
    assert new != old
    assert me(gateway, new).status_code == 200
    assert_problem(me(gateway, old), 401)  # no session fixation


@pytest.mark.parametrize("how", ["bearer", "cookie"])
def test_me_with_the_token_or_the_cookie(gateway, how):
    token = login_with_second_factor(gateway, AGENT).json()["access_token"]
    response = me(gateway, token) if how == "bearer" else me(gateway, cookie=token)
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == AGENT
    assert body["account_id"]
    assert body["family_id"] is None
    assert body["communes"] == [{"slug": "jolieville", "name": "JolieVille Test",
                                 "roles": ["agent", "agent-admin"]}]


def test_me_of_a_parent_carries_the_family(gateway):
    body = me(gateway, login(gateway, PARENT).json()["access_token"]).json()
    assert body["email"] == PARENT
    assert body["family_id"]


def test_login_ignores_the_case_of_the_email(gateway):
    assert login(gateway, "Admin@Portail.TEST").status_code == 200


def test_bad_password_is_a_french_401(gateway):
    response = login(gateway, ADMIN, "not-the-password")
    assert_problem(response, 401)
    assert response.json() == BAD_CREDENTIALS
    assert "Set-Cookie" not in response.headers


def test_unknown_email_is_the_same_401(gateway):
    unknown = login(gateway, "nobody@nowhere.test")
    wrong = login(gateway, ADMIN, "not-the-password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content


@pytest.mark.parametrize("payload, field", [
    ({"email": ADMIN}, "password"),
    ({"password": "x"}, "email"),
])
def test_login_without_a_field_is_a_422_by_field(gateway, payload, field):
    response = requests.post(gateway.url + "/auth/login", json=payload, timeout=10)
    body = assert_problem(response, 422)
    assert body["errors"] == {field: ["Ce champ est obligatoire."]}


def test_login_with_a_non_json_body_is_400(gateway):
    response = requests.post(gateway.url + "/auth/login", data="email=x", timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(response, 400)


def test_login_while_accounts_is_down_is_a_french_502(make_gateway, accounts):
    down = f"http://127.0.0.1:{closed_port()}"
    gateway = make_gateway({name: down for name in UPSTREAMS}, data_dir=accounts[1])
    body = assert_problem(login(gateway, ADMIN), 502)
    assert body["detail"].startswith("Ce service du portail est momentanément indisponible")


# logout and dead tokens -------------------------------------------------------------------
@pytest.mark.parametrize("how", ["bearer", "cookie"])
def test_logout_invalidates_the_session(gateway, how):
    token = login(gateway, PARENT).json()["access_token"]
    headers = ({"Authorization": f"Bearer {token}"} if how == "bearer"
               else {"Cookie": f"portail_session={token}"})
    response = requests.post(gateway.url + "/auth/logout", headers=headers, timeout=10)
    assert response.status_code == 204
    value, morsel = session_cookie(response)
    assert value == ""  # the browser drops its cookie
    assert morsel["expires"] or morsel["max-age"] == "0"

    body = assert_problem(me(gateway, token), 401)
    assert body["detail"] == "Votre session a expiré : veuillez vous reconnecter."
    assert_problem(me(gateway, cookie=token), 401)


def test_logout_without_a_session_is_harmless(gateway):
    assert requests.post(gateway.url + "/auth/logout", timeout=10).status_code == 204


@pytest.mark.parametrize("token", ["garbage", "x" * 43, "a.b.c"])
def test_a_garbage_token_is_401(gateway, token):
    assert_problem(me(gateway, token), 401)
    assert_problem(me(gateway, cookie=token), 401)


def test_me_without_credentials_is_401(gateway):
    body = assert_problem(me(gateway), 401)
    assert body["detail"] == "Veuillez vous connecter."


# rate limits ------------------------------------------------------------------------------
def test_login_attempts_for_one_email_are_limited(gateway):
    for attempt in range(ATTEMPTS_PER_EMAIL):
        # The limit follows the e-mail, whatever its case.
        email = AGENT if attempt % 2 else AGENT.upper()
        assert login(gateway, email, "wrong").status_code == 401, attempt

    response = login(gateway, AGENT, "wrong")
    body = assert_problem(response, 429)
    assert body["title"] == "Trop de requêtes"
    assert body["detail"] == ("Vous avez fait trop de demandes : réessayez dans quelques "
                              "instants.")
    assert int(response.headers["Retry-After"]) > 0
    # Even the right password waits now...
    assert login(gateway, AGENT).status_code == 429
    # ...while another e-mail is not affected.
    assert login(gateway, ADMIN).status_code == 200


def test_login_attempts_from_one_address_are_limited(gateway):
    for attempt in range(ATTEMPTS_PER_ADDRESS):
        assert login(gateway, f"nobody{attempt}@nowhere.test").status_code == 401, attempt
    response = login(gateway, "yet-another@nowhere.test")
    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0


def test_security_headers_on_auth_answers(gateway):
    for response in (login(gateway, ADMIN), login(gateway, ADMIN, "wrong"), me(gateway)):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'self'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in response.headers  # dev: plain http


def test_production_cookie_is_secure_and_hsts_is_sent(make_gateway, accounts):
    accounts_url, data_dir = accounts
    down = f"http://127.0.0.1:{closed_port()}"
    urls = {name: down for name in UPSTREAMS} | {"accounts": accounts_url}
    pem = ensure_dev_keys(data_dir)[0]  # the key the accounts service trusts
    gateway = make_gateway(urls, data_dir=data_dir, env="production",
                           extra={"JWT_PRIVATE_KEY": pem, **SLOW_OK})
    response = login(gateway, ADMIN)
    assert response.status_code == 200
    _, morsel = session_cookie(response)
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
