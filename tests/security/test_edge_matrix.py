"""The portal's pages and the gateway's own routes, decided in edge.py, called for real through
the gateway (HTTP, sessions from ``/auth/login``, second factor for agents and the admin)."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest

from tests.security.edge import GATEWAY, GATEWAY_CHECKS, PARAMS, PORTAL, ROUTE_PARAMS
from tests.security.matrix import ACTORS, KINDS
from tests.security.world import World, gateway_session, resolver


def rules_of(app, name: str) -> set[str]:
    return {f"{name} {method} {rule.rule}" for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


@pytest.fixture(scope="module")
def sessions(world: World):
    opened = {actor: gateway_session(world, actor) for actor in ACTORS}
    yield opened
    for opened_session in opened.values():
        opened_session.close()


def test_every_portal_and_gateway_route_is_decided(world):
    missing = sorted(rules_of(world.app("portal"), "portal") - set(PORTAL)) + sorted(
        rules_of(world.app("gateway"), "gateway") - set(GATEWAY))
    assert not missing, ("routes sans décision dans tests/security/edge.py :\n"
                         + "\n".join(missing))
    stale = sorted(set(PORTAL) - rules_of(world.app("portal"), "portal")) + sorted(
        set(GATEWAY) - rules_of(world.app("gateway"), "gateway"))
    assert not stale, "entrées pour des routes qui n'existent plus :\n" + "\n".join(stale)


def outcome(answer) -> str | int:
    location = answer.headers.get("Location", "")
    if answer.status_code in (302, 303) and location.startswith("/connexion"):
        return "login"
    return answer.status_code


def fill(rule: str, ref) -> str:
    params = {**PARAMS, **ROUTE_PARAMS.get(rule, {})}

    def one(match: re.Match) -> str:
        value = params[match.group(2)]
        return str(ref(value)) if value in KINDS else value

    return re.sub(r"<(?:([a-z]+):)?([a-z_]+)>", one, rule)


@pytest.mark.parametrize("key", sorted(PORTAL))
def test_portal_page(world, sessions, key):
    """Each actor gets the declared outcome; forms without their CSRF token change nothing."""
    _, method, rule = key.split(" ", 2)
    path = fill(rule, resolver(world, "parent_a"))
    before = {name: world.fingerprint(name, ("agents", "audit_entries"))
              for name in ("accounts", "billing", "requests", "reservations")} \
        if method == "POST" else None
    problems = []
    for actor in ACTORS:
        answer = sessions[actor].request(method, f"{world.suite.url}{path}",
                                         allow_redirects=False, timeout=30)
        if outcome(answer) != PORTAL[key][actor]:
            problems.append(f"{actor}: attendu {PORTAL[key][actor]}, obtenu {outcome(answer)} "
                            f"{answer.headers.get('Location', '')}")
    if before is not None:
        for name, digest in before.items():
            if world.fingerprint(name, ("agents", "audit_entries")) != digest:
                problems.append(f"la base de {name} a changé")
    assert not problems, f"{key} ({path})\n" + "\n".join(problems)


@pytest.mark.parametrize("key", sorted(k for k, v in GATEWAY.items() if isinstance(v, dict)))
def test_gateway_route(world, sessions, key):
    _, method, path = key.split(" ", 2)
    got = {actor: outcome(sessions[actor].request(method, f"{world.suite.url}{path}",
                                                  allow_redirects=False, timeout=30))
           for actor in ACTORS}
    assert got == GATEWAY[key], key


def raw(world: World, method: str, path: str, headers: dict[str, str]) -> int:
    """A request whose path is sent byte for byte (no client-side dot-segment removal)."""
    parts = urlsplit(world.suite.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None,
                           headers={"Content-Type": "application/json", **headers})
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "template", "expected"), GATEWAY_CHECKS,
                         ids=[f"{m} {t}" for m, t, _ in GATEWAY_CHECKS])
def test_through_the_gateway(world, sessions, method, template, expected):
    path = re.sub(r"\{([a-z_]+)\}", lambda m: str(resolver(world, "parent_a")(m.group(1))),
                  template)
    got = {}
    for actor in ACTORS:
        cookie = sessions[actor].cookies.get("portail_session")
        headers = {"Authorization": f"Bearer {cookie}"} if cookie else {}
        got[actor] = raw(world, method, path, headers)
    assert got == expected, path
