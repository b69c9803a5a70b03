"""Forwarding ``/api/<service>/...``, the payment callbacks, and the portal's pages."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request

from services.common.errors import Problem

from . import SERVICES
from .core import END_OTHER_SESSIONS, PRINCIPAL_CHANGED
from .upstreams import body_chunks, forwardable, forwardable_pairs

bp = Blueprint("proxy", __name__)

# What the caller sent that the gateway replaces: its own credentials become the internal JWT.
_DROP_TO_SERVICES = frozenset({"host", "authorization", "cookie", "content-length",
                               "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
_DROP_TO_PORTAL = frozenset({"host", "content-length", "authorization",
                             "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
# The gateway's own server writes these; the upstream's copies would be duplicates.
_DROP_FROM_UPSTREAM = frozenset({"content-length", "server", "date",
                                 PRINCIPAL_CHANGED.lower(), END_OTHER_SESSIONS.lower()})


class _SizedStream:
    """The client's body as a file of known length, so that requests streams it upstream
    with the same Content-Length instead of buffering it or switching to chunked encoding."""

    def __init__(self, stream, length: int):
        self.stream = stream
        self.length = length

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)


def _body():
    # JSON bodies are small, and the rate limits may already have read them: buffered. Anything
    # else (uploads) is streamed.
    if request.is_json:
        return request.get_data() or None
    if request.content_length:
        return _SizedStream(request.stream, request.content_length)
    # No declared length (chunked): read whole, within MAX_CONTENT_LENGTH.
    return request.get_data() or None


def _target() -> str:
    """The path and query string to ask the upstream for: what the client sent, unchanged.

    Fix: the URL was rebuilt from ``request.path``, which the server has percent-decoded, so
    ``/a%2Fb`` reached the service as ``/a/b`` and ``/a%3Fb`` as ``/a?b``. The raw request
    target is used when the server gives it (werkzeug, gunicorn).
    """
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if raw.startswith("/") and not request.script_root:
        return raw
    return request.full_path.rstrip("?") if request.query_string else request.path


def _forward(upstream: str, *, drop: frozenset[str], token: str | None) -> Response:
    gw = current_app.extensions["gateway"]
    # Fix: urllib3 resolves "." and ".." segments (requests first decodes %2E), so
    # /api/accounts/../../internal/... reached the services' internal routes, which the gateway
    # must never forward to. Such paths answer 404 here.
    if any(segment in (".", "..") for segment in request.path.split("/")):
        raise Problem(404, "Aucun service ne répond à cette adresse.")
    headers = forwardable(request.headers, drop)
    headers["X-Request-ID"] = g.request_id
    headers["X-Forwarded-For"] = ", ".join(filter(None, [
        request.headers.get("X-Forwarded-For"), request.remote_addr]))
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    if token:
        headers["Authorization"] = f"Bearer {token}"
    upstream_response = gw.upstreams.request(
        upstream, request.method, _target(), headers=headers, data=_body(), stream=True)
    # The call's slot in the upstream's limit is given back once the body is sent, or now if
    # anything fails before (upstreams.py: one hung service never takes every thread).
    release = getattr(upstream_response, "portail_release", None) or (lambda: None)
    try:
        if upstream == "accounts" and upstream_response.status_code < 400:
            gw.apply_account_signals(upstream_response.headers)
        # The raw (urllib3) headers keep repeated names as separate pairs; requests' own
        # mapping folds them.
        response_headers = forwardable_pairs(upstream_response.raw.headers,
                                             _DROP_FROM_UPSTREAM | {"x-request-id"})
        length = upstream_response.headers.get("Content-Length")
        if length is not None:
            response_headers.append(("Content-Length", length))
        response = Response(body_chunks(upstream_response), status=upstream_response.status_code,
                            headers=response_headers, direct_passthrough=True)
    except BaseException:
        upstream_response.close()
        release()
        raise
    response.call_on_close(release)
    return response


@bp.route("/api/<service>/", defaults={"rest": ""},
          methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@bp.route("/api/<service>/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def api(service: str, rest: str):
    if service not in SERVICES:
        raise Problem(404, "Aucun service ne répond à cette adresse.")
    gw = current_app.extensions["gateway"]
    principal = gw.authenticate()
    token = gw.signer.mint(principal, audience=service) if principal else None
    return _forward(service, drop=_DROP_TO_SERVICES, token=token)


@bp.route("/payments/callback/<provider>", methods=["GET", "POST"])
def payment_callback(provider: str):
    # Public by nature: billing checks the provider's signature itself.
    return _forward("billing", drop=_DROP_TO_SERVICES, token=None)


@bp.route("/payments/redirect/<path:rest>", methods=["GET"])
@bp.route("/payments/simulator/<path:rest>", methods=["GET", "POST"])
def payment_simulator(rest: str):
    # The built-in payment simulator's pages, and the page posting a provider's signed form
    # (billing); like a provider, they know the payment by its id, not by the parent's session.
    return _forward("billing", drop=_DROP_TO_SERVICES, token=None)


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
@bp.route("/<path:rest>", methods=["GET", "POST"])
def portal(rest: str):
    # The portal is a client of the gateway like any other: it receives the browser's cookies
    # (its own CSRF cookie and the session cookie it sends back to /api with each call).
    return _forward("portal", drop=_DROP_TO_PORTAL, token=None)
