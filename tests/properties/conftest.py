"""Hypothesis profiles: ``ci`` (the default: derandomized, the same examples every run) and
``long`` (PORTAIL_PROPERTY_PROFILE=long: many more examples, a fresh random walk)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, derandomize=True, deadline=None,
                          database=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("PORTAIL_PROPERTY_PROFILE", "ci"))
