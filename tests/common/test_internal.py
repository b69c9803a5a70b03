"""Service-to-service calls: service tokens open internal routes, and nothing else does."""

from __future__ import annotations

import pytest
from flask import Blueprint, jsonify

from services.common.app import create_app
from services.common.auth import KeySet, Principal, Signer, ensure_dev_keys
from services.common.config import Settings
from services.common.internal import (
    ServiceClient,
    ServiceTokens,
    ServiceUnavailable,
    require_service,
    service_key,
)
from tests.common.servers import Served, closed_port


@pytest.fixture
def settings(tmp_path):
    return Settings(service="billing", env="dev", data_dir=tmp_path, secret_key="x" * 32)


@pytest.fixture
def billing(settings, tmp_path):
    bp = Blueprint("internal", __name__)

    @bp.post("/internal/checkouts")
    def checkout():
        caller = require_service("reservations")
        return jsonify(caller=caller)

    tokens = ServiceTokens(service_key(settings))
    app = create_app("billing", settings, blueprints=[bp],
                     keyset=KeySet(ensure_dev_keys(tmp_path)[1]), service_tokens=tokens)
    served = Served(app)
    yield served.url, tokens
    served.stop()


def test_a_service_token_of_an_allowed_caller_opens_the_internal_route(billing):
    url, tokens = billing
    client = ServiceClient("reservations", tokens, {"billing": url})
    answer = client.call("billing", "POST", "/internal/checkouts", json={},
                         idempotency_key="basket-1")
    assert answer.status_code == 200
    assert answer.json() == {"caller": "reservations"}


def test_another_service_is_refused(billing):
    url, tokens = billing
    answer = ServiceClient("requests", tokens, {"billing": url}).call(
        "billing", "POST", "/internal/checkouts", json={})
    assert answer.status_code == 403


def test_a_person_token_never_passes_for_a_service(billing, tmp_path):
    """Even an admin's token minted by the gateway for billing is not a service token."""
    import requests

    url, _ = billing
    admin = Signer(ensure_dev_keys(tmp_path)[0]).mint(
        Principal(account_id="service:reservations", platform_admin=True), audience="billing")
    answer = requests.post(f"{url}/internal/checkouts", json={},
                           headers={"Authorization": f"Bearer {admin}"}, timeout=5)
    assert answer.status_code == 401
    assert requests.post(f"{url}/internal/checkouts", json={}, timeout=5).status_code == 401


def test_a_token_for_another_audience_is_refused(billing, settings):
    import requests

    url, tokens = billing
    token = tokens.mint("reservations", audience="requests")
    answer = requests.post(f"{url}/internal/checkouts", json={},
                           headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert answer.status_code == 401


def test_a_dead_service_is_a_clear_french_503(settings):
    tokens = ServiceTokens(service_key(settings))
    client = ServiceClient("reservations", tokens,
                           {"billing": f"http://127.0.0.1:{closed_port()}"},
                           connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(ServiceUnavailable) as raised:
        client.call("billing", "POST", "/internal/checkouts", json={})
    assert raised.value.code == 503
    assert "ne répond pas" in raised.value.detail


def test_production_requires_the_key(tmp_path):
    from services.common.config import ConfigError

    with pytest.raises(ConfigError):
        service_key(Settings(service="billing", env="production", data_dir=tmp_path))
