"""Every operation of every service's OpenAPI document, through the gateway, as each role.

Checks: no 5xx, the status code is documented, the content type is documented, the body
matches the documented schema. Short by default (a few derandomized cases per operation and
mode); ``PORTAIL_FUZZ_EXAMPLES=1000`` for the long run, ``PORTAIL_FUZZ_SEED=N`` for another
walk, ``PORTAIL_FUZZ_REPORT=path.json`` to keep the figures.
"""

from __future__ import annotations

import json
import os

import pytest

from suite.registry import SERVICES
from tests.fuzz import harness
from tests.fuzz.conftest import ROLES

REPORTS: list[harness.Report] = []


@pytest.fixture(scope="module")
def pool():
    # Shared across services and roles: ids one role saw are aimed at by the others.
    return harness.IdPool(["jolieville", "dammartin"])


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    target = os.environ.get("PORTAIL_FUZZ_REPORT")
    if target and REPORTS:
        with open(target, "w", encoding="utf-8") as out:
            out.write(harness.summary(REPORTS))


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("service", SERVICES)
def test_no_server_error_and_answers_as_documented(suite, tokens, pool, service, role):
    report = harness.fuzz_service(suite.url, service, role, tokens[role], pool)
    REPORTS.append(report)
    statuses = dict(sorted(report.statuses.items()))
    print(f"\n{service}/{role}: {report.cases} cas, statuts {statuses}")
    assert report.cases > 0
    assert not report.failures, json.dumps([vars(f) for f in report.failures.values()],
                                           ensure_ascii=False, indent=1)
