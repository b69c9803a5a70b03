"""The Flask application factory every service, the gateway and the portal build on."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

import marshmallow as ma
from flask import Blueprint, Flask, g, jsonify, request
from flask_smorest import Api
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, InternalServerError

from .auth import KeySet
from .config import Settings
from .db import Database
from .errors import PROBLEM_TYPE, Problem, from_http_exception, problem, validation_problem
from .logging import bind_contextvars, clear_contextvars, configure_logging, get_logger
from .metrics import HTTP_LATENCY, HTTP_REQUESTS, render

# Seconds a client is asked to wait when the database is unreachable or every connection busy.
DATABASE_RETRY_AFTER = 5

log = get_logger(__name__)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# Bounds on what a request may carry before any view sees it (issue 8, "bad input"). A JSON
# body of the API is a few kilobytes; uploads (multipart) keep MAX_CONTENT_LENGTH.
MAX_JSON_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_QUERY_BYTES = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024


@dataclass
class ServiceContext:
    """What a running app knows about itself; at ``app.extensions["portail"]``."""

    name: str
    settings: Settings
    db: Database | None = None
    keyset: KeySet | None = None
    ready_checks: list[Callable[[], None]] = field(default_factory=list)


def current_context() -> ServiceContext:
    from flask import current_app

    return current_app.extensions["portail"]


class ProblemSchema(ma.Schema):
    """What every error answer carries (RFC 9457), for the OpenAPI documents only."""

    class Meta:
        unknown = ma.INCLUDE  # some problems add members (``checks``, ``retry_after``…)

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    errors = ma.fields.Dict(keys=ma.fields.String(),
                            values=ma.fields.List(ma.fields.String()))


class ProblemApi(Api):
    """flask-smorest, answering every HTTP error as problem+json in French."""

    # flask-smorest documents its own error body ({code, status: "Not Found", message}) as
    # application/json; the services answer problem+json: the documents said otherwise
    # (found by schemathesis, tests/fuzz).
    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self):
        for status in HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["content"] = {PROBLEM_TYPE: {"schema": self.ERROR_SCHEMA}}
            self.spec.components.response(status.name, response, lazy=True)
        self.spec.components.response("DEFAULT_ERROR", {
            "description": "Erreur (application/problem+json, message en français)",
            "content": {PROBLEM_TYPE: {"schema": self.ERROR_SCHEMA}},
        }, lazy=True)

    def handle_http_exception(self, error):
        return from_http_exception(error)


def _request_id() -> str:
    given = request.headers.get("X-Request-ID", "")
    # Fix: fullmatch, not match: "$" also matches before a final newline, and an id ending in
    # "\n" was then accepted and made every response fail (a header value cannot hold one).
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def create_app(
    name: str,
    settings: Settings,
    *,
    blueprints: Iterable[Blueprint] = (),
    api_blueprints: Iterable[Blueprint] = (),
    db: Database | None = None,
    keyset: KeySet | None = None,
    title: str | None = None,
    description: str = "",
    ready_checks: Iterable[Callable[[], None]] = (),
    service_tokens=None,
    static_folder: str | None = "static",
) -> Flask:
    """An app with the operational endpoints, error handling, ids in logs, and its API.

    ``api_blueprints`` are flask-smorest blueprints documented in the OpenAPI document served
    at ``/api/<name>/openapi.json``; ``blueprints`` are plain Flask ones (pages, proxies).
    ``static_folder=None`` removes Flask's own ``/static/...`` route (the gateway: those paths
    belong to the portal behind it).
    """
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(name, static_folder=static_folder)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=32 * 1024 * 1024,
        API_TITLE=title or f"Portail Famille — {name}",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX=f"/api/{name}",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={"info": {"description": description}} if description else {},
    )
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    context = ServiceContext(name, settings, db, keyset, list(ready_checks))
    app.extensions["portail"] = context
    if service_tokens is not None:
        app.extensions["portail_service_tokens"] = service_tokens

    api_blueprints = list(api_blueprints)
    if api_blueprints:
        api = ProblemApi(app)
        for bp in api_blueprints:
            api.register_blueprint(bp)
        app.extensions["portail_api"] = api
    for bp in blueprints:
        app.register_blueprint(bp)
    app.register_blueprint(_operations_blueprint(name))
    _install_request_hooks(app, name)
    _install_error_handlers(app)
    return app


def _operations_blueprint(name: str) -> Blueprint:
    bp = Blueprint("operations", __name__)

    def healthz():
        return jsonify(status="ok", service=name)

    def readyz():
        ctx = current_context()
        failures = {}
        checks: list[tuple[str, Callable[[], None]]] = []
        if ctx.db is not None:
            checks.append(("database", ctx.db.ping))
        checks.extend((getattr(c, "__name__", "check"), c) for c in ctx.ready_checks)
        for label, check in checks:
            try:
                check()
            except Exception as exc:  # any failure means "not ready", with the reason
                failures[label] = str(exc)[:300]
        if failures:
            return problem(503, "Le service n'est pas prêt.", checks=failures)
        return jsonify(status="ready", service=name, checks=[label for label, _ in checks])

    def metrics():
        body, content_type = render()
        return body, 200, {"Content-Type": content_type}

    for prefix in ("", f"/api/{name}"):
        bp.add_url_rule(f"{prefix}/healthz", f"healthz{prefix}", healthz)
        bp.add_url_rule(f"{prefix}/readyz", f"readyz{prefix}", readyz)
    bp.add_url_rule("/metrics", "metrics", metrics)
    return bp


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def _install_request_hooks(app: Flask, name: str) -> None:
    @app.before_request
    def _start():
        g.request_id = _request_id()
        g.started = time.perf_counter()
        clear_contextvars()
        bind_contextvars(
            request_id=g.request_id,
            correlation_id=request.headers.get("X-Correlation-ID") or g.request_id,
            service=name,
        )

    @app.before_request
    def _guard():
        _check_request()

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id") or _request_id()
        response.headers["X-Request-ID"] = request_id
        # Defaults for every answer (a view may set its own); the content security policy is
        # the gateway's and the portal's, which know the pages (tests/security).
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        HTTP_REQUESTS.labels(name, request.method, endpoint, response.status_code).inc()
        HTTP_LATENCY.labels(name, endpoint).observe(elapsed)
        if endpoint not in ("/healthz", "/readyz", "/metrics"):
            log.info("http_request", method=request.method, path=request.path,
                     status=response.status_code, duration_ms=round(elapsed * 1000, 1))
        return response


def _json_depth(value) -> int:
    """How deeply arrays and objects nest in a decoded body (iteratively: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _check_request() -> None:
    """Refuse, in French and as problem+json, what no view should have to parse."""
    if len(request.query_string) > MAX_QUERY_BYTES:
        raise Problem(414, f"L'adresse demandée est trop longue ({MAX_QUERY_BYTES // 1024} Ko "
                           "au plus pour les paramètres).")
    if sum(len(k) + len(v) for k, v in request.headers.items()) > MAX_HEADER_BYTES:
        raise Problem(431, "Les en-têtes de la requête sont trop volumineux.")
    try:
        # PATH_INFO arrives percent-decoded, as latin-1 (PEP 3333); the query string raw.
        request.environ.get("PATH_INFO", "").encode("latin-1").decode()
        unquote_to_bytes(request.query_string).decode()
    except UnicodeError as exc:
        raise Problem(400, "L'adresse contient des caractères invalides (UTF-8 attendu).") \
            from exc
    if not request.is_json:
        return
    too_large = Problem(413, "Le corps JSON dépasse la taille autorisée "
                             f"({MAX_JSON_BYTES // (1024 * 1024)} Mo).")
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise too_large
    # A body sent without Content-Length (chunked) is read one byte past the limit at most:
    # werkzeug stops there silently, so more than the limit means too large.
    request.max_content_length = MAX_JSON_BYTES + 1
    body = request.get_data(cache=True)
    if len(body) > MAX_JSON_BYTES:
        raise too_large
    if not body:
        return
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "Le corps de la requête n'est pas du texte UTF-8 valide.") from exc
    # Decoded once here, where a RecursionError (100,000 nested arrays) is caught and answered,
    # rather than in a view where it would be a 500; what passes nests little enough for the
    # view's own decoding, deeper in the stack.
    try:
        decoded = json.loads(text)
    except RecursionError:
        decoded = None
        nested_too_deep = True
    except ValueError as exc:
        raise Problem(400, "Le corps de la requête n'est pas du JSON valide.") from exc
    else:
        nested_too_deep = _json_depth(decoded) > MAX_JSON_DEPTH
    if nested_too_deep:
        raise Problem(400, f"Le corps JSON est trop imbriqué ({MAX_JSON_DEPTH} niveaux au "
                           "plus).")


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return from_http_exception(error)

    @app.errorhandler(ma.ValidationError)
    def _validation(error: ma.ValidationError):
        return validation_problem(error)

    @app.errorhandler(sa_exc.TimeoutError)
    @app.errorhandler(sa_exc.OperationalError)
    def _database_unavailable(error: Exception):
        # Every pooled connection busy for pool_timeout (an overload), or the database
        # unreachable, restarting or breaking a deadlock: nothing was committed, and the same
        # call a moment later will most likely succeed. Say so (503, Retry-After) rather than
        # a 500 that tells the family something is broken.
        log.warning("database_unavailable", error=type(error).__name__,
                    reason=str(getattr(error, "orig", error))[:200])
        return problem(503, "Le service est momentanément surchargé ou indisponible. "
                            "Réessayez dans quelques instants.",
                       headers={"Retry-After": str(DATABASE_RETRY_AFTER)})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if isinstance(error, HTTPException):
            return from_http_exception(error)
        log.exception("unhandled_error")
        return from_http_exception(InternalServerError())
