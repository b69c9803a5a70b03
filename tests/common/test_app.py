"""services.common.app.create_app and services.common.errors: problem+json, ids, operations."""

from __future__ import annotations

import re

import marshmallow as ma
import pytest
from flask_smorest import Blueprint as ApiBlueprint
from sqlalchemy import exc as sa_exc

from services.common.app import create_app
from services.common.config import Settings
from services.common.db import Database
from services.common.errors import PROBLEM_TYPE

NAME = "demo"
PROBLEM_KEYS = {"type", "title", "status", "detail"}


class ThingSchema(ma.Schema):
    name = ma.fields.String(required=True)
    count = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1))


def _blueprint() -> ApiBlueprint:
    bp = ApiBlueprint("things", __name__, url_prefix=f"/api/{NAME}/things",
                      description="Des choses")

    @bp.route("", methods=["POST"])
    @bp.arguments(ThingSchema)
    @bp.response(201, ThingSchema)
    def create_thing(payload):
        """Créer une chose."""
        return payload

    @bp.route("/boom")
    def boom():
        raise RuntimeError("secret internals: password=hunter2")

    @bp.route("/pool-exhausted")
    def pool_exhausted():
        raise sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached")

    @bp.route("/database-gone")
    def database_gone():
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionError("server closed the "
                                                                      "connection"))

    return bp


def _settings(tmp_path) -> Settings:
    return Settings(service=NAME, env="dev", data_dir=tmp_path,
                    database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", secret_key="x" * 32)


def _app(tmp_path, *, db=None, ready_checks=()):
    settings = _settings(tmp_path)
    return create_app(NAME, settings, api_blueprints=[_blueprint()],
                      db=db or Database(settings.database_url), ready_checks=ready_checks)


@pytest.fixture
def client(tmp_path):
    return _app(tmp_path).test_client()


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["Content-Type"] == PROBLEM_TYPE
    body = response.get_json(force=True)
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


# errors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/nowhere", f"/api/{NAME}/nowhere", f"/api/{NAME}/things/x/y"])
def test_unknown_route_is_a_french_404_problem(client, path):
    body = assert_problem(client.get(path), 404)
    assert body["title"] == "Ressource introuvable"
    assert body["detail"] == "Ce que vous cherchez n'existe pas ou n'est pas accessible."


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.delete(f"/api/{NAME}/things")
    body = assert_problem(response, 405)
    assert body["title"] == "Méthode non autorisée"
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert "POST" in allowed
    assert "DELETE" not in allowed


def test_validation_is_a_422_problem_with_french_errors_by_field(client):
    response = client.post(f"/api/{NAME}/things", json={"count": "beaucoup"})
    body = assert_problem(response, 422)
    assert body["title"] == "Données invalides"
    assert body["errors"] == {
        "name": ["Ce champ est obligatoire."],
        "count": ["Doit être un nombre entier."],
    }


def test_validation_of_a_rule_is_translated_too(client):
    response = client.post(f"/api/{NAME}/things", json={"name": "x", "count": 0})
    assert assert_problem(response, 422)["errors"] == {"count": ["Doit être au moins 1."]}


def test_valid_body_passes(client):
    response = client.post(f"/api/{NAME}/things", json={"name": "x", "count": 2})
    assert response.status_code == 201
    assert response.get_json() == {"name": "x", "count": 2}


def test_an_exception_is_a_500_problem_without_internals(client):
    response = client.get(f"/api/{NAME}/things/boom")
    body = assert_problem(response, 500)
    assert body["title"] == "Erreur interne"
    assert body["detail"] == ("Une erreur inattendue est survenue. Elle a été enregistrée ; "
                              "réessayez plus tard.")
    text = response.get_data(as_text=True)
    for leak in ("Traceback", "RuntimeError", "hunter2", "secret internals", ".py"):
        assert leak not in text
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("path", ["pool-exhausted", "database-gone"])
def test_an_unavailable_database_is_a_503_to_retry_not_a_500(client, path):
    """Every connection busy (the opening-day surge) or the database restarting: the caller
    is told to come back, in French, without internals."""
    response = client.get(f"/api/{NAME}/things/{path}")
    body = assert_problem(response, 503)
    assert body["detail"] == ("Le service est momentanément surchargé ou indisponible. "
                              "Réessayez dans quelques instants.")
    assert response.headers["Retry-After"] == "5"
    text = response.get_data(as_text=True)
    for leak in ("QueuePool", "SELECT", "server closed"):
        assert leak not in text


# request ids ------------------------------------------------------------------------------
def test_a_valid_request_id_is_echoed(client):
    given = "abc-123_Z.9:x"
    assert client.get("/healthz", headers={"X-Request-ID": given}).headers["X-Request-ID"] == given


def test_a_missing_request_id_is_generated_fresh_each_time(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


@pytest.mark.parametrize("given", ["x" * 500, "a b", "a\tb", "<script>", "é", "x" * 129])
def test_an_invalid_request_id_is_replaced(client, given):
    response = client.get("/healthz", headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


@pytest.mark.parametrize("given", ["abc\n", "abc\r\nX-Injected: 1", "\nabc"])
def test_a_request_id_with_a_newline_is_replaced(client, given):
    # Set in the WSGI environ directly: a header object would refuse the newline itself.
    response = client.get("/healthz", environ_base={"HTTP_X_REQUEST_ID": given})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    assert "X-Injected" not in response.headers


def test_errors_carry_the_request_id_too(client):
    response = client.get("/nowhere", headers={"X-Request-ID": "req-404"})
    assert response.headers["X-Request-ID"] == "req-404"


# operations -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/healthz", f"/api/{NAME}/healthz"])
def test_healthz(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "service": NAME}


@pytest.mark.parametrize("path", ["/readyz", f"/api/{NAME}/readyz"])
def test_readyz_with_a_working_database(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "service": NAME, "checks": ["database"]}


def test_readyz_names_the_failing_check(tmp_path):
    def broker():
        raise ConnectionError("le courtier ne répond pas")

    def cache():
        pass

    client = _app(tmp_path, ready_checks=[cache, broker]).test_client()
    body = assert_problem(client.get("/readyz"), 503)
    assert body["detail"] == "Le service n'est pas prêt."
    assert body["checks"] == {"broker": "le courtier ne répond pas"}


def test_readyz_fails_when_the_database_cannot_be_reached(tmp_path):
    # A directory is not a database file: connecting fails.
    (tmp_path / "not-a-file").mkdir()
    db = Database(f"sqlite:///{tmp_path / 'not-a-file'}")
    client = _app(tmp_path, db=db).test_client()
    body = assert_problem(client.get("/readyz"), 503)
    assert set(body["checks"]) == {"database"}


def test_metrics_in_prometheus_text_format(client):
    client.get("/healthz")
    client.get("/nowhere")
    response = client.get("/metrics")
    assert response.status_code == 200
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("text/plain; version=")  # the Prometheus text format
    text = response.get_data(as_text=True)
    assert "# TYPE portail_http_requests_total counter" in text
    lines = [line for line in text.splitlines()
             if line.startswith("portail_http_requests_total{") and f'service="{NAME}"' in line]
    assert any('endpoint="/healthz"' in line and 'status="200"' in line for line in lines)
    assert any('endpoint="unmatched"' in line and 'status="404"' in line for line in lines)
    assert "portail_http_request_duration_seconds_bucket" in text


def test_openapi_document_is_3_1_with_the_blueprint_paths(client):
    response = client.get(f"/api/{NAME}/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.1.0"
    assert spec["info"]["title"] == f"Portail Famille — {NAME}"
    assert "post" in spec["paths"][f"/api/{NAME}/things"]
    assert "Thing" in spec["components"]["schemas"]


def test_problems_are_utf8_json_not_ascii_escapes(client):
    text = client.delete(f"/api/{NAME}/things").get_data(as_text=True)
    assert "Méthode non autorisée" in text
    assert "\\u00e9" not in text
