"""Every process of the suite, by name: the one place that knows them all."""

from __future__ import annotations

import importlib
from types import ModuleType

SERVICES = ("accounts", "reservations", "billing", "requests", "notifications")
WEB = (*SERVICES, "gateway", "portal")
# Packages with their own database and migrations.
MIGRATED = {**{name: f"services.{name}" for name in SERVICES}, "gateway": "gateway"}
LOCAL_PORTS = {"gateway": 8000, "accounts": 8001, "reservations": 8002, "billing": 8003,
               "requests": 8004, "notifications": 8005, "portal": 8010}


def package(name: str) -> str:
    if name in SERVICES:
        return f"services.{name}"
    if name in ("gateway", "portal"):
        return name
    raise KeyError(name)


def app_module(name: str) -> ModuleType:
    return importlib.import_module(f"{package(name)}.app")


def wsgi_spec(name: str) -> str:
    """What gunicorn is given for ``portail serve NAME``."""
    return f"{package(name)}.app:create_app()"


def events_module(name: str) -> ModuleType:
    return importlib.import_module(f"services.{name}.events")


def seed_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"services.{name}.seed")
    except ModuleNotFoundError:
        return None
