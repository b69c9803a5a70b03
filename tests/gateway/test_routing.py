"""What the gateway forwards where, and which headers cross it (DESIGN sections 1 and 6)."""

from __future__ import annotations

import http.client
import re
import time
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from gateway import SERVICES
from services.common.auth import InvalidToken, KeySet, Principal, ensure_dev_keys
from services.common.errors import PROBLEM_TYPE

from .conftest import UPSTREAM_DATE, UPSTREAM_SERVER

PARENT = Principal(account_id="acc-parent", email="parent@famille.test", family_id="fam-1",
                   communes={"jolieville": {"id": "c-1", "name": "JolieVille Test",
                                            "roles": ["parent"]}})


def raw_request(base: str, method: str, target: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """A request sent exactly as written (no client-side normalisation of the target)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def assert_problem(response: requests.Response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM_TYPE
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    return body


def others_called(upstreams, *names) -> list[str]:
    return [name for name, fake in upstreams.items() if fake.calls and name not in names]


# routing ----------------------------------------------------------------------------------
@pytest.mark.parametrize("service", SERVICES)
def test_api_calls_go_to_their_service_unchanged(gateway, upstreams, service):
    target = f"/api/{service}/communes/jolieville/things/42?from=2026-09-01&to=2026-09-30&x=1&x=2"
    response = requests.get(gateway.url + target)
    assert response.status_code == 200
    assert response.json() == {"upstream": service,
                               "path": f"/api/{service}/communes/jolieville/things/42"}
    call = upstreams[service].last
    assert call.method == "GET"
    assert call.target == target
    assert others_called(upstreams, service) == []


@pytest.mark.parametrize("target", [
    "/api/requests/files/a%2Fb%3Fc.pdf?name=%C3%A9t%C3%A9&q=a%26b%3Dc&empty=",
    "/api/requests/files/caf%C3%A9%20cr%C3%A8me?x=%2F",
    "/api/requests/files/100%25",
    "/api/requests/",
])
def test_encoded_paths_and_query_strings_reach_the_service_byte_for_byte(
        gateway, upstreams, target):
    response, _ = raw_request(gateway.url, "GET", target)
    assert response.status == 200
    assert upstreams["requests"].last.target == target


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_methods_and_bodies_are_forwarded(gateway, upstreams, method):
    response = requests.request(method, gateway.url + "/api/billing/invoices/7?dry=1",
                                json={"montant": "82.00"})
    assert response.status_code == 200
    call = upstreams["billing"].last
    assert call.method == method
    assert call.target == "/api/billing/invoices/7?dry=1"
    assert call.header("Content-Type") == "application/json"
    assert call.length == len(b'{"montant": "82.00"}')


def test_unknown_service_is_a_404_problem(gateway, upstreams):
    body = assert_problem(requests.get(gateway.url + "/api/nosuchservice/x"), 404)
    assert body["detail"] == "Aucun service ne répond à cette adresse."
    assert others_called(upstreams) == []


@pytest.mark.parametrize("target", [
    "/api/accounts/../../internal/principals/x",
    "/api/accounts/%2e%2e/%2e%2e/internal/authenticate",
    "/api/accounts/..%2F..%2Finternal/principals/x",
    "/api/billing/./x",
    "/api/billing/x/..",
])
def test_dot_segments_never_leave_the_service_api(gateway, upstreams, target):
    # Without this, urllib3 resolves ".." and the services' /internal routes are reached.
    response, body = raw_request(gateway.url, "GET", target)
    assert response.status == 404
    assert response.getheader("Content-Type") == PROBLEM_TYPE
    assert others_called(upstreams) == []


@pytest.mark.parametrize("target", ["/", "/familles/inscription?etape=2", "/static/portail.css"])
def test_other_paths_go_to_the_portal_with_their_cookies(gateway, upstreams, target):
    token = gateway.login(PARENT)
    response = requests.get(gateway.url + target, headers={
        "Cookie": f"portail_session={token}; csrf_token=abc; theme=dark",
        "Authorization": "Bearer something",
    })
    assert response.status_code == 200
    call = upstreams["portal"].last
    assert call.target == target
    assert call.header("Cookie") == f"portail_session={token}; csrf_token=abc; theme=dark"
    assert call.header("Authorization") is None  # no internal token either
    assert others_called(upstreams, "portal") == []


def test_portal_forms_are_posted_through(gateway, upstreams):
    response = requests.post(gateway.url + "/connexion", data={"email": "a@b.test"})
    assert response.status_code == 200
    call = upstreams["portal"].last
    assert call.method == "POST"
    assert call.header("Content-Type") == "application/x-www-form-urlencoded"


# credentials ------------------------------------------------------------------------------
def _internal_token(call) -> str:
    header = call.header("Authorization")
    assert header and header.startswith("Bearer ")
    return header[len("Bearer "):]


@pytest.mark.parametrize("how", ["bearer", "cookie"])
def test_logged_in_calls_carry_an_internal_jwt_for_that_service_only(gateway, upstreams, how):
    token = gateway.login(PARENT)
    headers = ({"Authorization": f"Bearer {token}"} if how == "bearer"
               else {"Cookie": f"portail_session={token}; theme=dark"})
    response = requests.get(gateway.url + "/api/reservations/communes/jolieville/basket",
                            headers=headers)
    assert response.status_code == 200
    call = upstreams["reservations"].last

    internal = _internal_token(call)
    assert internal != token
    assert call.header("Cookie") is None
    keyset = KeySet(ensure_dev_keys(gateway.data_dir)[1])
    assert keyset.verify(internal, audience="reservations") == PARENT
    with pytest.raises(InvalidToken):
        keyset.verify(internal, audience="billing")
    claims = jwt.decode(internal, options={"verify_signature": False})
    assert claims["exp"] - time.time() <= 60


def test_each_service_gets_a_token_for_itself(gateway, upstreams):
    token = gateway.login(PARENT)
    keyset = KeySet(ensure_dev_keys(gateway.data_dir)[1])
    for service in SERVICES:
        requests.get(f"{gateway.url}/api/{service}/x", headers={"Authorization": f"Bearer {token}"})
        keyset.verify(_internal_token(upstreams[service].last), audience=service)


def test_anonymous_calls_carry_no_credentials(gateway, upstreams):
    response = requests.get(gateway.url + "/api/accounts/communes/jolieville",
                            headers={"Cookie": "theme=dark; other=1"})
    assert response.status_code == 200
    call = upstreams["accounts"].last
    assert call.header("Authorization") is None
    assert call.header("Cookie") is None


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer not-a-session"},
    {"Cookie": "portail_session=not-a-session"},
])
def test_a_dead_token_is_401_and_never_forwarded_as_anonymous(gateway, upstreams, headers):
    body = assert_problem(requests.get(gateway.url + "/api/billing/invoices", headers=headers),
                          401)
    assert body["detail"] == "Votre session a expiré : veuillez vous reconnecter."
    assert others_called(upstreams) == []


def test_the_forwarded_for_chain_is_the_gateways_own(gateway, upstreams):
    requests.get(gateway.url + "/api/billing/x", headers={
        "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https", "Host": "portail.example"})
    call = upstreams["billing"].last
    assert call.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"
    assert call.header("X-Forwarded-Host") == "portail.example"
    assert call.header("X-Forwarded-Proto") == "http"
    assert call.header("Host") == urlsplit(upstreams["billing"].url).netloc


# hop-by-hop -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/billing/x", "/page"])
def test_hop_by_hop_request_headers_stop_at_the_gateway(gateway, upstreams, path):
    response, _ = raw_request(gateway.url, "GET", path, headers={
        "Connection": "keep-alive, X-Hop-Secret",
        "X-Hop-Secret": "1",
        "Keep-Alive": "timeout=5",
        "TE": "trailers",
        "Upgrade": "h2c",
        "Proxy-Authorization": "Basic c2VjcmV0",
        "X-End-To-End": "kept",
    })
    assert response.status == 200
    name = "billing" if path.startswith("/api/") else "portal"
    call = upstreams[name].last
    for header in ("X-Hop-Secret", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization"):
        assert call.header(header) is None, header
    assert "x-hop-secret" not in (call.header("Connection") or "").lower()
    assert call.header("X-End-To-End") == "kept"


@pytest.mark.parametrize("path", ["/api/notifications/_hop", "/_hop"])
def test_hop_by_hop_response_headers_stop_at_the_gateway(gateway, upstreams, path):
    response, _ = raw_request(gateway.url, "GET", path)
    assert response.status == 200
    names = {name.lower() for name, _ in response.getheaders()}
    for header in ("x-up-hop", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert header not in names, header
    assert "x-up-hop" not in (response.getheader("Connection") or "").lower()
    assert response.getheader("X-End-To-End") == "kept"


def test_server_and_date_are_the_gateways_own_and_not_duplicated(gateway, upstreams):
    response, _ = raw_request(gateway.url, "GET", "/api/billing/x")
    headers = response.getheaders()
    servers = [v for k, v in headers if k.lower() == "server"]
    dates = [v for k, v in headers if k.lower() == "date"]
    assert len(servers) == 1 and servers[0] != UPSTREAM_SERVER
    assert len(dates) == 1 and dates[0] != UPSTREAM_DATE
    # Also at the WSGI level, where a production server (gunicorn) would add its own.
    wsgi = gateway.app.test_client().get("/api/billing/x")
    assert "Server" not in wsgi.headers
    assert "Date" not in wsgi.headers


# request ids ------------------------------------------------------------------------------
def test_a_client_request_id_reaches_the_upstream_and_comes_back(gateway, upstreams):
    response = requests.get(gateway.url + "/api/billing/x", headers={"X-Request-ID": "rid-42.a"})
    assert upstreams["billing"].last.header("X-Request-ID") == "rid-42.a"
    assert response.headers["X-Request-ID"] == "rid-42.a"


def test_a_request_id_is_generated_when_absent(gateway, upstreams):
    response = requests.get(gateway.url + "/page")
    given = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", given)
    assert upstreams["portal"].last.header("X-Request-ID") == given


def test_an_invalid_request_id_is_replaced_before_forwarding(gateway, upstreams):
    response = requests.get(gateway.url + "/api/billing/x", headers={"X-Request-ID": "a b" * 200})
    given = response.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", given)
    assert upstreams["billing"].last.header("X-Request-ID") == given


def test_the_upstreams_own_request_id_does_not_replace_the_gateways(gateway, upstreams):
    response, _ = raw_request(gateway.url, "GET", "/api/billing/_rid",
                              headers={"X-Request-ID": "from-client"})
    assert [v for k, v in response.getheaders() if k.lower() == "x-request-id"] == [
        "from-client"]


# edge -------------------------------------------------------------------------------------
def test_security_headers_on_proxied_answers(gateway, upstreams):
    response = requests.get(gateway.url + "/api/billing/x")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_gateways_own_operations_are_not_proxied(gateway, upstreams):
    assert requests.get(gateway.url + "/healthz").json() == {"status": "ok",
                                                             "service": "gateway"}
    assert requests.get(gateway.url + "/readyz").status_code == 200
    assert "portail_http_requests_total" in requests.get(gateway.url + "/metrics").text
    assert others_called(upstreams) == []


def test_several_cookies_set_by_an_upstream_stay_separate(gateway, upstreams):
    """The portal sets its session cookie and clears its CSRF cookie in one answer."""
    import requests as http

    answer = http.get(f"{gateway.url}/_two_cookies", timeout=5)
    assert answer.status_code == 200
    cookies = answer.raw.headers.getlist("Set-Cookie")
    assert len(cookies) == 2, cookies
    assert {c.split("=", 1)[0] for c in cookies} == {"portail_session", "portail_csrf"}


def test_a_cookie_set_for_one_visitor_never_reaches_another(gateway, upstreams):
    """The gateway's pooled connection to the portal must not keep a cookie jar: the portal's
    login answer sets the visitor's session cookie, and a jar would replay it on the next
    visitor's calls (who would then be seen as logged in as the first)."""
    import requests as http

    first = http.get(f"{gateway.url}/_two_cookies", timeout=5)
    assert len(first.raw.headers.getlist("Set-Cookie")) == 2
    http.get(f"{gateway.url}/someone-else", timeout=5)  # a new visitor, no cookie
    assert upstreams["portal"].last.header("Cookie") is None


@pytest.mark.parametrize("path", ["/payments/callback/payfip", "/payments/simulator/abc",
                                  "/payments/redirect/abc"])
def test_payment_pages_and_callbacks_go_to_billing_without_credentials(gateway, upstreams,
                                                                      path):
    import requests as http

    token = gateway.login(Principal(account_id="a1", family_id="f1"))
    method = "GET" if "/redirect/" in path else "POST"
    answer = http.request(method, f"{gateway.url}{path}", data=b"x=1",
                          headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code == 200
    assert upstreams["billing"].last.path == path
    assert upstreams["billing"].last.header("Authorization") is None
