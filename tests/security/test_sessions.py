"""Sessions, second factor, CSRF, security headers, dependencies and secrets (issue 8).

The second factor and session tests run the real accounts service (SQLite, seeded) behind a
real gateway, as ``tests/gateway/test_auth.py`` does; the CSRF and header tests walk the
portal's own ``url_map`` against the fake gateway of ``tests/portal/support.py``, so a new
POST route or page is covered without editing this file.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pyotp
import pytest
import requests
from sqlalchemy import select

from gateway.app import create_app as create_gateway_app
from services.accounts import totp
from services.accounts.app import build_runtime
from services.accounts.app import create_app as create_accounts_app
from services.accounts.domain import hash_password
from services.accounts.models import Account, AgentRole, RecoveryCode, SecondFactor
from services.accounts.second_factor import SecondFactors
from services.accounts.seed import DEMO_PASSWORD, demo_id, seed
from services.common.auth import ensure_dev_keys
from services.common.config import ConfigError, Settings, load_settings
from services.common.db import Database
from services.common.errors import Problem
from services.common.migrate import upgrade
from tests.common.second_factor import code_for
from tests.common.servers import Served, closed_port
from tests.gateway.conftest import UPSTREAMS, gateway_settings

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin@portail.test"
AGENT = "agent@jolieville.test"
PARENT = "parent@famille.test"
NEW_AGENT_PASSWORD = "une phrase de passe assez longue"


# the real accounts service behind a real gateway ------------------------------------------
@dataclass
class Accounts:
    url: str
    data_dir: Path
    db: Database


@pytest.fixture(scope="module")
def accounts(tmp_path_factory) -> Iterator[Accounts]:
    data_dir = tmp_path_factory.mktemp("accounts")
    url = f"sqlite:///{data_dir / 'accounts.sqlite3'}"
    upgrade("services.accounts", url)
    runtime = build_runtime(settings=Settings(service="accounts", env="dev", data_dir=data_dir,
                                              database_url=url, amqp_url="memory://"))
    seed(runtime.db)
    served = Served(create_accounts_app(runtime))
    yield Accounts(served.url, data_dir, runtime.db)
    served.stop()
    runtime.db.dispose()


@dataclass
class Gateway:
    url: str
    db: Database


@pytest.fixture
def make_gateway(accounts, tmp_path) -> Iterator:
    started: list[tuple[Served, Database]] = []

    def make(env: str = "dev") -> Gateway:
        url = f"sqlite:///{tmp_path / f'gateway-{len(started)}.sqlite3'}"
        upgrade("gateway", url)
        db = Database(url)
        down = f"http://127.0.0.1:{closed_port()}"
        urls = {name: down for name in UPSTREAMS} | {"accounts": accounts.url}
        extra = {"JWT_PRIVATE_KEY": ensure_dev_keys(accounts.data_dir)[0],
                 "UPSTREAM_TIMEOUT": "10"}  # argon2 on a busy machine
        app = create_gateway_app(gateway_settings(accounts.data_dir, url, urls, env=env,
                                                  extra=extra), db)
        served = Served(app)
        started.append((served, db))
        return Gateway(served.url, db)

    yield make
    for served, db in started:
        served.stop()
        db.dispose()


@pytest.fixture
def gateway(make_gateway) -> Gateway:
    return make_gateway()


def post(gw: Gateway, path: str, token: str | None = None, *, headers: dict | None = None,
         **kwargs) -> requests.Response:
    headers = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    return requests.post(gw.url + path, headers=headers, timeout=10, **kwargs)


def get(gw: Gateway, path: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(gw.url + path, headers=headers, timeout=10)


def login(gw: Gateway, email: str, password: str = DEMO_PASSWORD, **kwargs) -> requests.Response:
    return post(gw, "/auth/login", json={"email": email, "password": password}, **kwargs)


def pending_token(gw: Gateway, email: str = AGENT, password: str = DEMO_PASSWORD) -> str:
    answer = login(gw, email, password)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def cookie_of(response: requests.Response) -> tuple[str, dict]:
    cookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = cookie["portail_session"]
    return morsel.value, morsel


def new_agent(accounts: Accounts, email: str) -> str:
    """An agent of jolieville without a second factor yet (as a newly created agent is)."""
    with accounts.db.transaction() as session:
        account = Account(email=email, password_hash=hash_password(NEW_AGENT_PASSWORD),
                          status="active")
        session.add(account)
        session.flush()
        session.add(AgentRole(account_id=account.id, commune_id=demo_id("commune", "jolieville"),
                              roles=["agent"]))
        return account.id


def families(gw: Gateway, token: str) -> int:
    """An agent-only route of the real accounts service, through the gateway."""
    return get(gw, "/api/accounts/communes/jolieville/families", token).status_code


# second factor: login ----------------------------------------------------------------------
def test_a_parent_logs_in_without_a_second_factor(gateway):
    answer = login(gateway, PARENT)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "second_factor" not in body and body["expires_in"] == 12 * 3600
    me = get(gateway, "/auth/me", body["access_token"]).json()
    assert me["second_factor"] == "not_required"
    assert {c["slug"] for c in me["communes"]} == {"jolieville", "dammartin"}


@pytest.mark.parametrize("email", [AGENT, ADMIN])
def test_the_password_alone_gives_no_agent_or_admin_right(gateway, email):
    answer = login(gateway, email)
    assert answer.status_code == 200
    body = answer.json()
    assert body["second_factor"] == "totp"
    assert body["expires_in"] == 600  # ten minutes to type the code
    me = get(gateway, "/auth/me", body["access_token"]).json()
    assert me["second_factor"] == "pending"
    assert me["communes"] == [] and me["platform_admin"] is False
    # The token minted for the services carries no role: the agents' routes refuse.
    assert families(gateway, body["access_token"]) in (403, 404)


def test_the_code_opens_a_new_session_with_the_roles(gateway, accounts):
    pending = pending_token(gateway)
    answer = post(gateway, "/auth/second-factor", pending,
                  json={"code": code_for(f"{accounts.url} {AGENT}")})
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    assert token != pending  # a new session id at the second factor: no fixation
    value, morsel = cookie_of(answer)
    assert value == token and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert answer.json()["expires_in"] == 12 * 3600
    assert get(gateway, "/auth/me", pending).status_code == 401  # the pending one is closed
    me = get(gateway, "/auth/me", token).json()
    assert me["second_factor"] == "verified"
    assert me["communes"][0]["roles"] == ["agent", "agent-admin"]
    assert families(gateway, token) == 200


def test_a_wrong_code_is_refused_and_the_session_stays_pending(gateway):
    pending = pending_token(gateway)
    answer = post(gateway, "/auth/second-factor", pending, json={"code": "000000"})
    assert answer.status_code == 401
    assert answer.json()["detail"].startswith("Code incorrect")
    assert get(gateway, "/auth/me", pending).json()["second_factor"] == "pending"
    for bad in ({"code": "12345"}, {"code": "abcdef"}, {}):
        assert post(gateway, "/auth/second-factor", pending, json=bad).status_code in (401, 422)


def test_a_code_cannot_be_used_twice(gateway, accounts):
    email = "rejeu@jolieville.test"
    new_agent(accounts, email)
    secret = enrol(gateway, email)["secret"]
    step = totp.current_step() + 1  # the next step's code: within the ±1 window
    code = pyotp.TOTP(secret).generate_otp(step)
    first = post(gateway, "/auth/second-factor", pending_token(gateway, email, NEW_AGENT_PASSWORD),
                 json={"code": code})
    assert first.status_code == 200, first.text
    again = post(gateway, "/auth/second-factor", pending_token(gateway, email, NEW_AGENT_PASSWORD),
                 json={"code": code})
    assert again.status_code == 401  # replayed
    # An earlier step, still inside the window, is refused too once a later one was used.
    earlier = pyotp.TOTP(secret).generate_otp(step - 1)
    late = post(gateway, "/auth/second-factor", pending_token(gateway, email, NEW_AGENT_PASSWORD),
                json={"code": earlier})
    assert late.status_code == 401


def test_second_factor_steps_need_a_pending_session(gateway):
    assert post(gateway, "/auth/second-factor", json={"code": "123456"}).status_code == 401
    parent = login(gateway, PARENT).json()["access_token"]
    answer = post(gateway, "/auth/second-factor", parent, json={"code": "123456"})
    assert answer.status_code == 409
    assert post(gateway, "/auth/second-factor/enrolment", parent).status_code == 409


# second factor: enrolment and recovery codes -----------------------------------------------
def enrol(gw: Gateway, email: str) -> dict:
    """Log a new agent in, add the secret, confirm it: ``{secret, recovery_codes, token}``."""
    pending = pending_token(gw, email, NEW_AGENT_PASSWORD)
    started = post(gw, "/auth/second-factor/enrolment", pending)
    assert started.status_code == 200, started.text
    secret = started.json()["secret"]
    confirmed = post(gw, "/auth/second-factor/enrolment/confirm", pending,
                     json={"code": code_for(f"{gw.url} {email}", secret)})
    assert confirmed.status_code == 200, confirmed.text
    return {"secret": secret, **confirmed.json()}


def test_enrolment_shows_the_secret_until_confirmed_then_never(gateway, accounts):
    email = "nouvel.agent@jolieville.test"
    account_id = new_agent(accounts, email)
    first = login(gateway, email, NEW_AGENT_PASSWORD)
    assert first.json()["second_factor"] == "enrolment"
    pending = first.json()["access_token"]
    # No code is asked before the app is added.
    assert post(gateway, "/auth/second-factor", pending, json={"code": "123456"}).status_code \
        == 409
    started = post(gateway, "/auth/second-factor/enrolment", pending).json()
    secret = started["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert started["otpauth_uri"].startswith("otpauth://totp/Portail%20Famille:")
    assert f"secret={secret}" in started["otpauth_uri"]
    # Asked again before confirmation: the same secret (the page may be reloaded).
    assert post(gateway, "/auth/second-factor/enrolment", pending).json()["secret"] == secret
    wrong = post(gateway, "/auth/second-factor/enrolment/confirm", pending,
                 json={"code": "000000"})
    assert wrong.status_code == 401
    confirmed = post(gateway, "/auth/second-factor/enrolment/confirm", pending,
                     json={"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert len(body["recovery_codes"]) == 10 and len(set(body["recovery_codes"])) == 10
    assert body["access_token"] != pending
    assert families(gateway, body["access_token"]) == 200
    # Enrolled: the next login asks for the code, and the secret is never given out again.
    again = login(gateway, email, NEW_AGENT_PASSWORD).json()
    assert again["second_factor"] == "totp"
    assert post(gateway, "/auth/second-factor/enrolment", again["access_token"]).status_code \
        == 409
    # At rest: the secret encrypted, the recovery codes hashed.
    with accounts.db.sessions() as session:
        stored = session.get(SecondFactor, account_id)
        hashes = set(session.scalars(select(RecoveryCode.code_hash).where(
            RecoveryCode.account_id == account_id)))
    assert secret not in stored.secret_sealed and stored.key_id == totp.KEY_ID
    assert not any(code in hashes for code in body["recovery_codes"])
    assert {totp.recovery_hash(code) for code in body["recovery_codes"]} == hashes


def test_a_recovery_code_works_once(gateway, accounts):
    email = "secours@jolieville.test"
    new_agent(accounts, email)
    codes = enrol(gateway, email)["recovery_codes"]
    pending = pending_token(gateway, email, NEW_AGENT_PASSWORD)
    used = post(gateway, "/auth/second-factor", pending,
                json={"recovery_code": codes[0].upper()})  # case and dashes do not matter
    assert used.status_code == 200, used.text
    assert used.json()["recovery_codes_left"] == 9
    assert families(gateway, used.json()["access_token"]) == 200
    pending = pending_token(gateway, email, NEW_AGENT_PASSWORD)
    again = post(gateway, "/auth/second-factor", pending, json={"recovery_code": codes[0]})
    assert again.status_code == 401
    assert again.json()["detail"] == "Ce code de secours n'est pas valable ou a déjà servi."


# second factor: throttling -----------------------------------------------------------------
def test_wrong_codes_are_throttled_per_account_across_logins(gateway, accounts):
    email = "limite@jolieville.test"
    new_agent(accounts, email)
    secret = enrol(gateway, email)["secret"]
    for attempt in range(5):
        # A new login each time: the count follows the account, not the session.
        pending = pending_token(gateway, email, NEW_AGENT_PASSWORD)
        answer = post(gateway, "/auth/second-factor", pending, json={"code": "000000"})
        assert answer.status_code == 401, attempt
    pending = pending_token(gateway, email, NEW_AGENT_PASSWORD)
    right = pyotp.TOTP(secret).generate_otp(totp.current_step() + 1)
    stopped = post(gateway, "/auth/second-factor", pending, json={"code": right})
    assert stopped.status_code == 429  # even the right code waits now
    assert int(stopped.headers["Retry-After"]) > 0
    # Recovery codes share the limit.
    assert post(gateway, "/auth/second-factor", pending,
                json={"recovery_code": "x"}).status_code == 429


def test_accounts_locks_the_second_factor_after_ten_wrong_codes(accounts):
    email = "verrou@jolieville.test"
    account_id = new_agent(accounts, email)
    factors = SecondFactors(accounts.db, totp.SecretBox("clé de test"))
    secret = factors.start_enrolment(account_id)["secret"]
    assert factors.confirm_enrolment(account_id, pyotp.TOTP(secret).now())["ok"]
    for _ in range(totp.MAX_FAILURES):
        assert factors.verify(account_id, "000000") == {"ok": False}
    right = pyotp.TOTP(secret).generate_otp(totp.current_step() + 1)
    with pytest.raises(Problem) as locked:
        factors.verify(account_id, right)
    assert locked.value.code == 429 and "bloquée" in locked.value.detail
    with pytest.raises(Problem):
        factors.recover(account_id, "n'importe quoi")


def test_totp_window_is_one_step_each_side():
    secret = pyotp.random_base32()
    at = 1_800_000_000.0
    now = totp.current_step(at)
    otp = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, otp.generate_otp(now + offset), after=None, at=at) \
            == now + offset
    for offset in (-3, -2, 2, 3):
        assert totp.matching_step(secret, otp.generate_otp(now + offset), after=None,
                                  at=at) is None
    assert totp.matching_step(secret, otp.generate_otp(now), after=now, at=at) is None
    assert totp.matching_step(secret, "12 34", after=None, at=at) is None


def test_the_portal_and_the_readme_give_the_seeded_demo_secret():
    from portal.second_factor import DEMO_SECRET as PORTAL_DEMO_SECRET

    assert PORTAL_DEMO_SECRET == totp.DEMO_SECRET
    assert totp.DEMO_SECRET in (ROOT / "README.md").read_text()
    box = totp.SecretBox("any configured key")
    assert box.open(totp.demo_sealed(), totp.DEMO_KEY_ID) == totp.DEMO_SECRET


# sessions ----------------------------------------------------------------------------------
def test_the_session_id_changes_at_login_and_at_the_second_factor(gateway, accounts):
    before = pending_token(gateway, PARENT)  # a session the browser already had
    after = login(gateway, PARENT, headers={"Cookie": f"portail_session={before}"})
    assert after.json()["access_token"] != before
    assert get(gateway, "/auth/me", before).status_code == 401
    pending = pending_token(gateway)
    verified = post(gateway, "/auth/second-factor", pending,
                    json={"code": code_for(f"{accounts.url} {AGENT}")}).json()["access_token"]
    assert verified != pending and get(gateway, "/auth/me", pending).status_code == 401


@pytest.mark.parametrize("email", [PARENT, AGENT])
def test_logout_closes_the_session_on_the_server(gateway, accounts, email):
    token = pending_token(gateway, email)
    if email == AGENT:
        token = post(gateway, "/auth/second-factor", token,
                     json={"code": code_for(f"{accounts.url} {email}")}).json()["access_token"]
    assert get(gateway, "/auth/me", token).status_code == 200
    out = requests.post(gateway.url + "/auth/logout", timeout=10,
                        headers={"Cookie": f"portail_session={token}"})
    assert out.status_code == 204
    value, _ = cookie_of(out)
    assert value == ""
    # The old cookie, replayed as it was: the server no longer knows it.
    replay = requests.get(gateway.url + "/auth/me", timeout=10,
                          headers={"Cookie": f"portail_session={token}"})
    assert replay.status_code == 401
    assert get(gateway, "/api/accounts/me", token).status_code == 401
    with gateway.db.sessions() as session:
        from gateway.models import Session

        assert session.scalar(select(Session).where(Session.account_id.is_not(None))
                              .where(Session.token_hash == _hash(token))) is None


def _hash(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("env, secure", [("dev", False), ("production", True)])
def test_session_cookie_flags(make_gateway, env, secure):
    gw = make_gateway(env)
    for response in (login(gw, PARENT), login(gw, AGENT)):
        _, morsel = cookie_of(response)
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "Lax"
        assert morsel["path"] == "/"
        assert bool(morsel["secure"]) is secure
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("env, secure", [("dev", False), ("production", True)])
def test_portal_csrf_cookie_flags(env, secure):
    from tests.portal.support import FakeGateway, build

    client = build(FakeGateway(), env).test_client()
    response = client.get("/connexion")
    line = next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("portail_csrf="))
    attributes = {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}
    assert "httponly" in attributes and "samesite=lax" in line.lower()
    assert ("secure" in attributes) is secure


# CSRF on every state-changing form of the portal -------------------------------------------
def _portal_post_routes():
    from tests.portal.support import FakeGateway, build

    app = build(FakeGateway())
    routes = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint == "static":
            continue
        values = {arg: "x1" for arg in rule.arguments}
        with app.test_request_context():
            from flask import url_for

            routes.append(url_for(rule.endpoint, **values))
    return sorted(set(routes))


PORTAL_POST_ROUTES = _portal_post_routes()


def test_the_portal_has_state_changing_forms_to_check():
    # The generated list is not empty by accident (a broken url_map walk would pass below).
    assert len(PORTAL_POST_ROUTES) >= 40
    assert "/connexion" in PORTAL_POST_ROUTES and "/connexion/verification" in PORTAL_POST_ROUTES


@pytest.mark.parametrize("path", PORTAL_POST_ROUTES)
def test_every_portal_post_refuses_a_missing_or_wrong_csrf_token(path):
    from tests.portal.support import ME, FakeGateway, build

    fake = FakeGateway()
    fake.parent(ME)
    client = build(fake).test_client()
    client.set_cookie("portail_session", "s3cr3t")
    client.get("/connexion")  # the CSRF session exists: a wrong token is really compared
    fake.seen.clear()
    for data in ({}, {"csrf_token": "not-the-token"}, {"csrf_token": ""}):
        response = client.post(path, data={**data, "x": "y"})
        assert response.status_code == 400, (path, data, response.status_code)
        assert "Le formulaire a expiré" in response.get_data(as_text=True)
    # Refused before the view: nothing reached the gateway.
    assert [r for r in fake.seen if r.method != "GET"] == []


# security headers --------------------------------------------------------------------------
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def _assert_headers(response, *, production: bool) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Permissions-Policy"] == PERMISSIONS
    assert ("Strict-Transport-Security" in headers) is production
    if production:
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")


@pytest.mark.parametrize("env", ["dev", "production"])
def test_portal_pages_carry_the_security_headers(env):
    from tests.portal.support import FakeGateway, build

    client = build(FakeGateway(), env).test_client()
    for path in ("/", "/connexion", "/mot-de-passe/oublie", "/page-inconnue"):
        _assert_headers(client.get(path), production=env == "production")


@pytest.mark.parametrize("env", ["dev", "production"])
def test_api_answers_carry_the_security_headers(make_gateway, env):
    gw = make_gateway(env)
    parent = login(gw, PARENT).json()["access_token"]
    for response in (get(gw, "/api/accounts/me", parent),           # proxied, 200
                     get(gw, "/api/accounts/communes/nulle-part"),  # proxied, 404
                     get(gw, "/api/billing/healthz"),               # upstream down, 502
                     login(gw, PARENT, "mauvais"), get(gw, "/auth/me", parent)):
        _assert_headers(response, production=env == "production")


def test_services_answer_with_safe_defaults_even_without_the_gateway(accounts):
    response = requests.get(f"{accounts.url}/api/accounts/communes/jolieville", timeout=10)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Permissions-Policy"] == PERMISSIONS


# secrets -----------------------------------------------------------------------------------
def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("pas de dépôt git")
    return [ROOT / name for name in out.decode().split("\0") if name]


PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----\s*\n\s*[A-Za-z0-9+/=]{20,}")
AWS_KEY = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
AWS_SECRET = re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}", re.I)
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://([^:/\s@'\"]+):([^@/\s'\"]+)@", re.I)
# Credentials in URLs that are documented dev/demo values or placeholders, not secrets.
ALLOWED_URL_PASSWORDS = {
    "guest",            # RabbitMQ's local default (README, tests)
    "REPLACE_ME",       # deploy/k8s/secret.yaml template
    "pass", "password", "secret", "pw", "x", "p",  # examples in docs and fake URLs in tests
    "portail",          # docker-compose's local PostgreSQL and RabbitMQ
    "postgres", "test",
    "p%40ss%3Aword", "s%2Fcret",  # percent-decoding cases of tests/notifications/test_sender.py
}


def _scan(text: str) -> list[str]:
    found = []
    if PRIVATE_KEY.search(text):
        found.append("clé privée")
    if AWS_KEY.search(text) or AWS_SECRET.search(text):
        found.append("clé AWS")
    for match in URL_PASSWORD.finditer(text):
        password = match.group(2)
        if password not in ALLOWED_URL_PASSWORDS and not password.startswith(("$", "{", "<")):
            found.append(f"mot de passe dans une URL ({match.group(0)[:60]})")
    return found


def test_the_scanner_finds_what_it_looks_for():
    # Assembled here, so that this file does not hold what the scan looks for.
    key = "-----BEGIN " + "PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFakeFakeFakeFakeFake\n"
    assert _scan(key) == ["clé privée"]
    assert _scan("AWS_ACCESS_KEY_ID=" + "AKIA" + "ABCDEFGHIJKLMNOP") == ["clé AWS"]
    assert _scan("amqp://portail:" + "tr0ub4dor@rabbit:5672//")
    assert _scan("postgresql://postgres@127.0.0.1:5432/postgres") == []
    assert _scan("amqp://guest:guest@127.0.0.1:5672//") == []


def test_no_secret_in_tracked_files():
    problems = []
    for path in _tracked_files():
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (images, fonts, PDFs)
        problems.extend(f"{path.relative_to(ROOT)} : {what}" for what in _scan(text))
    assert problems == []


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    """Each process in production stops at start, listing the secrets it lacks."""
    from gateway.app import signing_key
    from services.billing.providers.simulator import simulator_key
    from services.common.internal import service_key

    env = {"PORTAIL_ENV": "production", "PORTAIL_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError) as missing:
        load_settings("accounts", env)
    problems = " ".join(missing.value.problems)
    for name in ("PORTAIL_SECRET_KEY", "ACCOUNTS_DATABASE_URL", "AMQP_URL"):
        assert name in problems

    settings = Settings(service="gateway", env="production", data_dir=tmp_path,
                        secret_key="s" * 32)
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEY"):
        signing_key(settings)
    with pytest.raises(ConfigError, match="SERVICE_TOKEN_KEY"):
        service_key(settings)
    with pytest.raises(ConfigError, match="TOTP_ENCRYPTION_KEY"):
        totp.SecretBox.of(settings)
    with pytest.raises(ConfigError, match="PAYMENT_SIMULATOR_KEY"):
        simulator_key(Settings(service="billing", env="production", data_dir=tmp_path))
    # And nothing was written in place of a missing secret.
    assert not (tmp_path / "keys").exists()


def test_dev_keys_are_generated_not_committed(tmp_path):
    settings = Settings(service="accounts", env="dev", data_dir=tmp_path)
    box = totp.SecretBox.of(settings)
    key_file = tmp_path / "keys" / "totp.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert box.open(box.seal("ABC"), totp.KEY_ID) == "ABC"
    assert totp.SecretBox.of(settings).open(box.seal("ABC"), totp.KEY_ID) == "ABC"  # kept


# dependency audit (.ci/audit.py, run by `make test`) ---------------------------------------
def _audit_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(*deps):
    return {"dependencies": list(deps), "fixes": []}


CLEAN = {"name": "flask", "version": "3.1.3", "vulns": []}
VULNERABLE = {"name": "jinja2", "version": "3.1.0", "vulns": [
    {"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": [], "description": ""}]}
SKIPPED = {"name": "urllib3", "skip_reason": "Dependency not found on PyPI and could not be "
                                            "audited: urllib3 (2.8.0)"}


@pytest.mark.parametrize("answers, required, code, said", [
    ({"pypi": _report(CLEAN)}, False, 0, "aucune vulnérabilité connue dans les 1 paquets"),
    ({"pypi": _report(CLEAN, VULNERABLE)}, False, 1, "VULNÉRABILITÉ jinja2 3.1.0"),
    ({"pypi": _report(VULNERABLE), "osv": None}, True, 1, "GHSA-h5c8-rqwp-cp95"),
    # The database unreachable: pip-audit alone would say "No known vulnerabilities found".
    ({"pypi": _report(SKIPPED), "osv": None}, False, 0, "AUDIT NON EFFECTUÉ"),
    ({"pypi": _report(SKIPPED), "osv": None}, True, 2, "AUDIT NON EFFECTUÉ"),
    ({"pypi": None, "osv": None}, True, 2, "AUDIT NON EFFECTUÉ"),
    # OSV answers when PyPI does not.
    ({"pypi": _report(SKIPPED), "osv": _report({**CLEAN, "name": "urllib3"})}, True, 0,
     "aucune vulnérabilité"),
])
def test_the_audit_fails_on_a_vulnerability_and_says_when_it_could_not_run(
        monkeypatch, capsys, answers, required, code, said):
    audit = _audit_module()
    monkeypatch.setattr(audit, "run", lambda service: answers.get(service))
    monkeypatch.setenv("PORTAIL_REQUIRE_AUDIT", "1" if required else "0")
    assert audit.main() == code
    assert said in capsys.readouterr().out


# the portal's second-factor pages (against the fake gateway) -------------------------------
NEW_SESSION = "portail_session=n3w; Path=/; HttpOnly; SameSite=Lax; Max-Age=43200"


def _portal(fake=None, env: str = "dev"):
    from tests.portal.support import FakeGateway, build

    fake = fake or FakeGateway()
    return fake, build(fake, env).test_client()


def _csrf(client, path: str) -> str:
    from tests.portal.support import csrf_token

    return csrf_token(client, path)


def test_portal_login_of_an_agent_goes_to_the_code_page_then_home():
    from tests.portal.support import AGENT, SESSION_LINE

    fake, client = _portal()
    fake.on("POST", "/auth/login", 200, {"access_token": "p", "second_factor": "totp"},
            {"Set-Cookie": SESSION_LINE})
    answer = client.post("/connexion?suivant=/agent/familles", data={
        "email": AGENT["email"], "password": "portail-demo", "csrf_token": _csrf(client,
                                                                                   "/connexion")})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/connexion/verification?suivant=/agent/familles"
    assert any(line.startswith("portail_session=s3cr3t") for line in
               answer.headers.getlist("Set-Cookie"))
    # While pending, the pages see nobody (the gateway says so).
    fake.on("GET", "/auth/me", body={**AGENT, "communes": [], "second_factor": "pending"})
    assert "Se déconnecter" not in client.get("/").get_data(as_text=True)
    page = client.get("/connexion/verification?suivant=/agent/familles")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Code à 6 chiffres" in text
    assert pyotp.TOTP(totp.DEMO_SECRET).now() in text  # the dev hint (dev mode only)
    token = _csrf(client, "/connexion/verification")
    fake.on("POST", "/auth/second-factor", 401,
            {"status": 401, "detail": "Code incorrect ou déjà utilisé."})
    wrong = client.post("/connexion/verification?suivant=/agent/familles",
                        data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 422 and "Code incorrect" in wrong.get_data(as_text=True)
    fake.on("POST", "/auth/second-factor", 200, {"access_token": "n3w"},
            {"Set-Cookie": NEW_SESSION})
    right = client.post("/connexion/verification?suivant=/agent/familles",
                        data={"code": "123 456", "csrf_token": token})
    assert right.status_code == 303 and right.headers["Location"] == "/agent/familles"
    assert NEW_SESSION in right.headers.getlist("Set-Cookie")
    assert fake.last_json("POST", "/auth/second-factor") == {"code": "123456"}


def test_portal_code_page_in_production_gives_no_hint_and_an_expired_session_logs_in_again():
    fake, client = _portal(env="production")
    client.set_cookie("portail_session", "p")
    text = client.get("/connexion/verification").get_data(as_text=True)
    assert "Mode démonstration" not in text
    fake.on("POST", "/auth/second-factor", 401, {"status": 401, "detail": "Votre session a "
                                                 "expiré : veuillez vous reconnecter."})
    answer = client.post("/connexion/verification",
                         data={"code": "123456",
                               "csrf_token": _csrf(client, "/connexion/verification")})
    assert answer.status_code == 303 and answer.headers["Location"].startswith("/connexion")


def test_portal_enrolment_shows_qr_and_key_then_the_recovery_codes_once():
    fake, client = _portal()
    client.set_cookie("portail_session", "p")
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    fake.on("POST", "/auth/second-factor/enrolment", 200, {
        "secret": secret,
        "otpauth_uri": f"otpauth://totp/Portail%20Famille:a%40b.fr?secret={secret}"})
    page = client.get("/connexion/double-authentification")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in text and "JBSW Y3DP EHPK 3PXP" in text
    assert page.headers["Cache-Control"] == "private, no-store"
    codes = [f"aaaa-bbbb-cccc-{i:04d}" for i in range(10)]
    fake.on("POST", "/auth/second-factor/enrolment/confirm", 200,
            {"access_token": "n3w", "recovery_codes": codes}, {"Set-Cookie": NEW_SESSION})
    done = client.post("/connexion/double-authentification", data={
        "code": "123456", "csrf_token": _csrf(client, "/connexion/double-authentification")})
    text = done.get_data(as_text=True)
    assert done.status_code == 200 and all(code in text for code in codes)
    assert NEW_SESSION in done.headers.getlist("Set-Cookie")
    assert done.headers["Cache-Control"] == "no-store"
    # Already enrolled: the page sends to the code page instead.
    fake.on("POST", "/auth/second-factor/enrolment", 409, {"status": 409})
    again = client.get("/connexion/double-authentification")
    assert again.status_code == 303 and "/connexion/verification" in again.headers["Location"]


def test_portal_recovery_code_page():
    fake, client = _portal()
    client.set_cookie("portail_session", "p")
    fake.on("POST", "/auth/second-factor", 200, {"access_token": "n3w",
                                                 "recovery_codes_left": 4},
            {"Set-Cookie": NEW_SESSION})
    answer = client.post("/connexion/secours", data={
        "recovery_code": " abcd-efgh-jkmn-pqrs ",
        "csrf_token": _csrf(client, "/connexion/secours")})
    assert answer.status_code == 303
    assert fake.last_json("POST", "/auth/second-factor") == {
        "recovery_code": "abcd-efgh-jkmn-pqrs"}
    assert "Il vous en reste 4" in client.get("/").get_data(as_text=True)
