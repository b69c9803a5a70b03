"""Reservations' HTTP API."""

from __future__ import annotations

from services.common.tenancy import commune_blueprint

from . import NAME

communes = commune_blueprint(NAME)

API_BLUEPRINTS = [communes]
