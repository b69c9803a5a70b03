"""The portal's one way out: the public API, through the gateway, with the visitor's session.

The portal holds no business data and no credentials of its own: every call carries the
browser's ``portail_session`` cookie and the current ``X-Request-ID``, so the gateway
authenticates the visitor and the logs of one page view line up across services.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from flask import Response, abort, current_app, g, has_request_context, request
from requests.adapters import HTTPAdapter

from services.common.logging import get_logger

log = get_logger(__name__)

SESSION_COOKIE = "portail_session"
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0


class GatewayError(Exception):
    """The gateway is unreachable, too slow or broken: pages show a notice, not a traceback."""

    def __init__(self, message: str, status: int = 503):
        super().__init__(message)
        self.message = message
        self.status = status


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """The pooled session is shared by every visitor: it must never remember anyone's cookie."""

    def set_ok(self, cookie, request) -> bool:
        return False

    def return_ok(self, cookie, request) -> bool:
        return False


def _pooled_session() -> requests.Session:
    session = requests.Session()
    session.cookies.set_policy(_NoCookies())
    session.trust_env = False  # a stray HTTP(S)_PROXY must not reroute calls to the gateway
    # No automatic retries: a login or a logout must not be sent twice behind the user's back.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class GatewayClient:
    """A small client of the gateway: pooled connections, timeouts, French errors."""

    def __init__(self, base_url: str, session: requests.Session | None = None,
                 timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)):
        self.base_url = base_url.rstrip("/")
        self.session = session or _pooled_session()
        self.timeout = timeout

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, str] | None = None, data: Any = None, files: Any = None,
                headers: Mapping[str, str] | None = None,
                timeout: tuple[float, float] | None = None) -> requests.Response:
        """Send ``method path`` for the current visitor; 4xx come back, the rest raises.

        ``data`` with ``files`` is a multipart body (an upload); ``headers`` come on top of
        the forwarded ones (an ``Idempotency-Key``); ``timeout`` replaces the usual one.
        """
        sent = {**self._forwarded_headers(), **(headers or {})}
        try:
            response = self._send(method, self.base_url + path, headers=sent, json=json,
                                  params=params, data=data, files=files,
                                  timeout=timeout or self.timeout, allow_redirects=False)
        except requests.Timeout as exc:
            log.warning("gateway_timeout", method=method, path=path)
            raise GatewayError("Les services du portail mettent trop de temps à répondre. "
                               "Réessayez dans quelques instants.", 504) from exc
        except requests.RequestException as exc:
            log.warning("gateway_unreachable", method=method, path=path, error=str(exc)[:200])
            raise GatewayError("Les services du portail sont momentanément injoignables. "
                               "Réessayez dans quelques instants.", 503) from exc
        if response.status_code >= 500:
            log.warning("gateway_error", method=method, path=path, status=response.status_code)
            raise GatewayError("Les services du portail rencontrent un problème. "
                               "Réessayez dans quelques instants.", 502)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """The only line that touches the network (tests replace the session's adapter)."""
        return self.session.request(method, url, **kwargs)

    @staticmethod
    def _forwarded_headers() -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if not has_request_context():
            return headers
        if g.get("request_id"):
            headers["X-Request-ID"] = g.request_id
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        # The gateway rate-limits logins per client; without this every visitor would share
        # the portal's address. The gateway decides whether it trusts the header.
        chain = [request.headers.get("X-Forwarded-For", ""), request.remote_addr or ""]
        forwarded = ", ".join(part for part in chain if part)
        if forwarded:
            headers["X-Forwarded-For"] = forwarded
        return headers


def json_body(response: requests.Response) -> Any:
    """The JSON of a gateway answer; anything else means the gateway is not itself."""
    try:
        return response.json()
    except ValueError as exc:
        raise GatewayError("Les services du portail ont renvoyé une réponse inattendue. "
                           "Réessayez dans quelques instants.", 502) from exc


def session_set_cookies(response: requests.Response) -> list[str]:
    """The gateway's ``Set-Cookie`` lines for the session cookie, verbatim.

    Copied as they are so the browser gets exactly the attributes the gateway chose (Path,
    Max-Age, Secure, SameSite); ``response.headers`` would fold several lines into one.
    """
    raw_headers = getattr(response.raw, "headers", None)
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        lines = raw_headers.getlist("Set-Cookie")
    else:
        lines = [response.headers["Set-Cookie"]] if "Set-Cookie" in response.headers else []
    return [line for line in lines if line.split("=", 1)[0].strip() == SESSION_COOKIE]


def gateway() -> GatewayClient:
    return current_app.extensions["portal_client"]


class LoginRequired(Exception):
    """Nobody is logged in, or the gateway no longer knows the session (401): go and log in."""


@dataclass(frozen=True)
class Answer:
    """A gateway answer a page can act on: a success, or a 4xx its form explains in French."""

    status: int
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def data(self) -> dict[str, Any]:
        return self.body if isinstance(self.body, dict) else {}

    @property
    def detail(self) -> str | None:
        detail = self.data.get("detail")
        return detail if isinstance(detail, str) and detail.strip() else None

    @property
    def errors(self) -> dict[str, list[str]]:
        """The problem's ``errors``, keyed by field (``guardians.0.email``), as lists of text."""
        raw = self.data.get("errors")
        out: dict[str, list[str]] = {}
        if not isinstance(raw, dict):
            return out
        for key, value in raw.items():
            if isinstance(value, str):
                out[str(key)] = [value]
            elif isinstance(value, list | tuple):
                out[str(key)] = [str(m) for m in value if isinstance(m, str | int | float)]
            elif value:
                out[str(key)] = [str(value)]
        return out

    def items(self) -> list[dict[str, Any]]:
        """A collection's ``items`` (only the objects among them)."""
        items = self.data.get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def call(method: str, path: str, *, json: Any = None,
         params: Mapping[str, str] | None = None, accept: tuple[int, ...] = (),
         **upload: Any) -> Answer:
    """One call of the public API for the current visitor, mapped for the pages.

    401 raises LoginRequired (the pages redirect to the login form), 403 and 404 become the
    French error pages; 5xx and an unreachable gateway raise GatewayError (a degraded notice).
    Every other answer comes back as an Answer, successes and the 4xx a form explains, as do
    403 and 404 when listed in ``accept`` (a form field naming an unknown commune, say).
    A session cookie the gateway renews on the way is passed on to the browser.
    ``upload``: ``data``, ``files``, ``headers``, ``timeout`` for GatewayClient.request.
    """
    response = gateway().request(method, path, json=json, params=params, **upload)
    g.setdefault("_session_cookies", []).extend(session_set_cookies(response))
    status = response.status_code
    if status == 401:
        raise LoginRequired()
    if status in (403, 404) and status not in accept:
        abort(status)
    if 300 <= status < 400:
        log.warning("gateway_redirect", method=method, path=path, status=status)
        raise GatewayError("Les services du portail ont renvoyé une réponse inattendue. "
                           "Réessayez dans quelques instants.", 502)
    if not response.content:
        return Answer(status)
    if 200 <= status < 300:
        return Answer(status, json_body(response))
    try:  # a 4xx without a problem document is still explained, by its status alone
        return Answer(status, response.json())
    except ValueError:
        return Answer(status)


def forward_session_cookies(response: Response) -> Response:
    """after_request: the session cookie lines the gateway sent during this request."""
    lines = g.get("_session_cookies") or []
    already = any(line.startswith(f"{SESSION_COOKIE}=")
                  for line in response.headers.getlist("Set-Cookie"))
    if not already:
        for line in lines:
            response.headers.add("Set-Cookie", line)
    return response
