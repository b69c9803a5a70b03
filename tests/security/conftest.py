"""The world of the authorization tests (tests/security/world.py), built once for the folder."""

from __future__ import annotations

import os

import pytest

from tests.security.world import World, build


@pytest.fixture(scope="package")
def world(tmp_path_factory) -> World:
    saved = dict(os.environ)
    built = build(tmp_path_factory.mktemp("authz"))
    try:
        yield built
    finally:
        built.suite.shutdown()
        os.environ.clear()
        os.environ.update(saved)
