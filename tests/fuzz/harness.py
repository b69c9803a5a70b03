"""Schemathesis against every service's OpenAPI document, through the gateway, per role.

Each operation is driven by a Hypothesis ``@given`` of our own rather than schemathesis'
pytest plugin, so that one pytest test covers one service and one role, the number of cases
and the seed are ours, every failure is collected (not only the first), and the figures the
reliability report quotes come out of the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
# Cases per operation, mode and role: small in the test command, large on demand
# (PORTAIL_FUZZ_EXAMPLES=1000 python -m pytest tests/fuzz).
EXAMPLES = int(os.environ.get("PORTAIL_FUZZ_EXAMPLES", "1"))
# Derandomized (the same cases every run) unless a seed is given for a different walk.
SEED = os.environ.get("PORTAIL_FUZZ_SEED")
# GETs first: their answers fill the pool of real ids the writes then aim at; deletions last.
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Failure:
    operation: str
    check: str
    status: int
    detail: str
    curl: str


@dataclass
class Report:
    service: str
    role: str
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: dict[tuple[str, str, int], Failure] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "role": self.role, "cases": self.cases,
                "statuses": dict(sorted(self.statuses.items())),
                "failures": [vars(f) for f in self.failures.values()]}


class IdPool:
    """Real identifiers seen in answers, so that generated paths reach existing objects."""

    def __init__(self, slugs: list[str]) -> None:
        self.slugs = slugs
        self.ids: list[str] = []

    def learn(self, body: bytes) -> None:
        for found in _UUID.findall(body[:200_000].decode("utf-8", "replace")):
            if found not in self.ids and len(self.ids) < 500:
                self.ids.append(found)

    def aim(self, case, rnd: random.Random) -> None:
        params = case.path_parameters or {}
        for name in list(params):
            if name == "slug" and rnd.random() < 0.9:
                params[name] = rnd.choice(self.slugs)
            elif name.endswith("_id") and self.ids and rnd.random() < 0.7:
                params[name] = rnd.choice(self.ids)


def load_schema(base_url: str, service: str):
    document = requests.get(f"{base_url}/api/{service}/openapi.json", timeout=10).json()
    return schemathesis.openapi.from_dict(document)


def operations(schema) -> list:
    found = [result.ok() for result in schema.get_all_operations()]
    return sorted(found, key=lambda op: (_METHOD_ORDER.get(op.method.upper(), 9), op.path))


def fuzz_service(base_url: str, service: str, role: str, token: str | None, pool: IdPool,
                 examples: int = EXAMPLES) -> Report:
    schema = load_schema(base_url, service)
    report = Report(service, role)
    http = requests.Session()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for operation in operations(schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_operation(base_url, operation, mode, headers, http, pool, report, examples)
    return report


def _fuzz_operation(base_url, operation, mode, headers, http, pool, report, examples) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    rnd = random.Random(f"{SEED}:{label}:{mode}:{report.role}")

    @seed(int(SEED or 0))
    @settings(max_examples=examples, derandomize=SEED is None, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        pool.aim(case, rnd)
        report.cases += 1
        response = case.call(base_url=base_url, session=http, headers=headers, timeout=30)
        report.statuses[response.status_code] += 1
        pool.learn(response.content)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:  # every failed check of this case
            for failure in getattr(group, "exceptions", [group]):
                check = getattr(failure, "code", None) or type(failure).__name__
                key = (label, check, response.status_code)
                if key not in report.failures:
                    report.failures[key] = Failure(
                        label, check, response.status_code,
                        str(getattr(failure, "message", failure))[:600],
                        case.as_curl_command(headers=headers, base_url=base_url)[:600])

    # Negative mode on an operation with nothing to get wrong generates nothing.
    with contextlib.suppress(Unsatisfiable):
        run()


def summary(reports: list[Report]) -> str:
    return json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=1)
