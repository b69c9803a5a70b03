"""Secrets every service needs at start in production."""

from __future__ import annotations

import importlib

import pytest

from services.common.auth import generate_private_key_pem, jwks_of
from services.common.config import ConfigError

SERVICES = ("accounts", "reservations", "billing", "requests", "notifications")


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_needs_the_service_token_key_in_production(name, tmp_path):
    """Every service answers accounts' internal export and erasure calls, so in production it
    must not start without the key those calls are signed with."""
    pem = generate_private_key_pem()
    environ = {
        "PORTAIL_ENV": "production", "PORTAIL_SECRET_KEY": "s" * 64,
        "PORTAIL_DATA_DIR": str(tmp_path),
        f"{name.upper()}_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "AMQP_URL": "memory://", "JWT_PUBLIC_KEYS": jwks_of(pem), "JWT_PRIVATE_KEY": pem,
        "PAYMENT_SIMULATOR_KEY": "k" * 32, "TOTP_ENCRYPTION_KEY": "x" * 44,
        "PUBLIC_URL": "https://portail.example", "GATEWAY_URL": "http://gateway",
    }
    app = importlib.import_module(f"services.{name}.app")
    with pytest.raises(ConfigError, match="SERVICE_TOKEN_KEY"):
        app.build_runtime(environ=environ)
