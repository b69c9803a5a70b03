"""The authorization matrix, generated from the routes of every service (see matrix.py).

Run alone: ``.venv/bin/python -m pytest -q tests/security/test_authorization_matrix.py``.
"""

from __future__ import annotations

import io
import re

import pytest

from services.common.auth import Principal
from suite.registry import SERVICES
from tests.security.matrix import ACTORS, CROSS, INTERNAL_CALLERS, KINDS, ROUTES, Entry
from tests.security.world import World, fresh, resolver

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
REFUSED = {401, 403, 404, 405}
# Tables a refused call may write whatever the route: trails of who looked (GDPR audit logs),
# the agents requests remembers from their tokens (for assignment).
ALWAYS_MAY_WRITE = ("agents", "audit_entries", "access_log", "audit_log")


def routes_of(app, service: str) -> list[str]:
    """``"service METHOD rule"`` for every method of every rule of the app."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append(f"{service} {method} {rule.rule}")
    return sorted(found)


def _service_routes(world: World) -> list[str]:
    return [key for name in SERVICES for key in routes_of(world.app(name), name)]


def test_every_route_is_decided(world):
    """A route without an entry fails here, by name: decide who may call it in matrix.py."""
    routes = _service_routes(world)
    missing = [key for key in routes if key not in ROUTES]
    assert not missing, ("routes sans décision d'autorisation dans tests/security/matrix.py :\n"
                         + "\n".join(missing))
    stale = sorted(set(ROUTES) - set(routes))
    assert not stale, "entrées pour des routes qui n'existent plus :\n" + "\n".join(stale)


def test_matrix_size(world):
    routes = _service_routes(world)
    cross = sum(len(ROUTES[key].variants()) for key in routes if key in ROUTES)
    cells = len(routes) * len(ACTORS)
    print(f"\nmatrice d'autorisation : {len(routes)} routes × {len(ACTORS)} acteurs = {cells} "
          f"cas, plus {cross} cas objet / commune (autre foyer, autre commune)")
    assert len(routes) >= 150


# --- running one call -------------------------------------------------------------------------

def _path(rule: str, entry: Entry, ref) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(2)
        value = entry.path[name]
        if value in KINDS:
            return str(ref(value))
        return value  # a literal (a token, a year, a file name)

    return re.sub(r"<(?:([a-z]+):)?([a-z_]+)>", fill, rule)


def call(world: World, key: str, entry: Entry, actor: str, ref):
    service, method, rule = key.split(" ", 2)
    kwargs = {}
    if entry.query is not None:
        kwargs["query_string"] = entry.query(ref)
    if entry.body is not None:
        kwargs["json"] = entry.body(ref)
    elif entry.form is not None:
        data = {k: (io.BytesIO(v[0]), *v[1:]) if isinstance(v, tuple) else v
                for k, v in entry.form(ref).items()}
        kwargs.update(data=data, content_type="multipart/form-data")
    return world.call(service, method, _path(rule, entry, ref), actor, **kwargs)


def matches(expected, status: int) -> bool:
    if expected == "ok":
        return 200 <= status < 300
    if expected == "pass":
        return status not in REFUSED and status < 500
    if isinstance(expected, set):
        return status in expected
    return status == expected


# Whose objects an answer to each actor may never name: other households' (a parent), those of
# the household and the commune an agent of X has nothing to do with (household C, commune Y).
FOREIGN = {"parent_a": ("B", "C"), "parent_b": ("A", "C"), "agent_x": ("C", "Y")}


def foreign_ids(world: World, owners: tuple[str, ...]) -> dict[str, str]:
    """``{id: "kind of owner"}`` for the UUIDs of the owners' objects."""
    return {value: f"{kind} de {owner}" for (kind, owner), value in world.ids.items()
            if owner in owners and kind != "commune" and isinstance(value, str)
            and re.fullmatch(r"[0-9a-f-]{36}", value)}


def leaks(world: World, answer, owners: tuple[str, ...]) -> list[str]:
    if not owners or answer.status_code >= 300:
        return []
    text = answer.get_data().decode(errors="replace")
    return [label for value, label in foreign_ids(world, owners).items() if value in text]


def run_cell(world: World, key: str, entry: Entry, actor: str, expected, ref) -> str | None:
    """Make the call; returns what went wrong, or None."""
    service, method, _ = key.split(" ", 2)
    check_unchanged = method in MUTATING and not (expected in ("ok", "pass") or (
        isinstance(expected, int) and expected < 400))
    ignore = (*ALWAYS_MAY_WRITE, *entry.may_write)
    before = world.fingerprint(service, ignore) if check_unchanged else None
    answer = call(world, key, entry, actor, ref)
    body = answer.get_data()[:300].decode(errors="replace")
    if not matches(expected, answer.status_code):
        return f"{actor}: attendu {expected}, obtenu {answer.status_code} {body}"
    if check_unchanged and world.fingerprint(service, ignore) != before:
        return f"{actor}: refusé ({answer.status_code}) mais la base de {service} a changé"
    leaked = leaks(world, answer, FOREIGN.get(actor, ()))
    if leaked:
        return f"{actor}: la réponse nomme {', '.join(sorted(leaked))}"
    return None


def _refused_first(entry: Entry) -> list[str]:
    # Refused callers first: an allowed call may change the state the others are checked on.
    allowed = [a for a in ACTORS if entry.expect[a] in ("ok", "pass")
               or (isinstance(entry.expect[a], int) and entry.expect[a] < 400)]
    return [a for a in ACTORS if a not in allowed] + allowed


@pytest.mark.parametrize("key", sorted(ROUTES))
def test_who_may_call(world, key):
    """Each actor gets the outcome the table declares, and a refused call changes nothing."""
    entry = ROUTES[key]
    if key not in _service_routes(world):
        pytest.skip("route absente de cette version")
    problems = []
    first_allowed = True
    for actor in _refused_first(entry):
        expected = entry.expect[actor]
        allowed = expected in ("ok", "pass") or (isinstance(expected, int) and expected < 400)
        if allowed and entry.renew and not first_allowed:
            fresh(world, entry.renew)
        first_allowed = first_allowed and not allowed
        problem = run_cell(world, key, entry, actor, expected, resolver(world, actor))
        if problem:
            problems.append(problem)
    assert not problems, f"{key}\n" + "\n".join(problems)


def _cross_expected(entry: Entry, variant: str):
    if variant in entry.cross:
        return entry.cross[variant]
    actor = CROSS[variant]["actor"]
    own = entry.expect[actor]
    if variant == "parent_b_in_y" and own != 401:
        return 404  # a commune the household does not belong to: not theirs to know
    if own in (401, 403, 405):
        return own  # refused anyway, whatever the ids
    if CROSS[variant]["slug"] == "Y":
        return 403  # an agent of X in commune Y
    if variant in ("parent_a_with_y_ids", "agent_x_with_c"):
        return {403, 404, 422}  # as for an unknown id (422 when it is in the body)
    return 404 if actor.startswith("parent") else {403, 404}


def _cross_cases() -> list[tuple[str, str]]:
    return [(key, variant) for key, entry in sorted(ROUTES.items())
            for variant in entry.variants()]


@pytest.mark.parametrize(("key", "variant"), _cross_cases())
def test_other_households_and_communes_objects(world, key, variant):
    """Parent A naming household B's objects gets 404 (as for an id that does not exist); agent
    X naming commune Y's objects, or Y's slug, gets 403 or 404; nothing changes."""
    entry = ROUTES[key]
    if key not in _service_routes(world):
        pytest.skip("route absente de cette version")
    spec = CROSS[variant]
    expected = _cross_expected(entry, variant)
    service, method, _ = key.split(" ", 2)
    ref = resolver(world, spec["actor"], spec["household"], spec["commune"], spec["slug"])
    # Refused is refused: compare the whole database, whatever the method.
    before = world.fingerprint(service, (*ALWAYS_MAY_WRITE, *entry.may_write))
    answer = call(world, key, entry, spec["actor"], ref)
    assert matches(expected, answer.status_code), (
        f"{key} [{variant}] : attendu {expected}, obtenu {answer.status_code} "
        f"{answer.get_data()[:300].decode(errors='replace')}")
    owners = FOREIGN.get(spec["actor"], ())
    leaked = leaks(world, answer, owners)
    assert not leaked, f"{key} [{variant}] : la réponse nomme {', '.join(sorted(leaked))}"
    if answer.status_code >= 400:
        assert world.fingerprint(service, (*ALWAYS_MAY_WRITE, *entry.may_write)) == before, (
            f"{key} [{variant}] : refusé mais la base de {service} a changé")


def test_dev_mailbox_is_absent_in_production(world):
    """The dev mailbox answers anyone in the embedded dev suite (the matrix says so); in
    production it does not exist."""
    import dataclasses

    from services.notifications.app import create_app

    runtime = world.suite.runtimes["notifications"]
    production = dataclasses.replace(
        runtime, settings=dataclasses.replace(runtime.settings, env="production"))
    client = create_app(production).test_client()
    for path in ("/api/notifications/dev/mailbox", "/api/notifications/dev/mailbox/absent"):
        assert client.get(path).status_code == 404, path
    assert world.call("notifications", "GET", "/api/notifications/dev/mailbox").status_code \
        == 200


def _internal_routes(world: World) -> list[str]:
    return [key for key in _service_routes(world) if key.split(" ", 2)[2].startswith("/internal/")]


def test_every_internal_route_names_its_caller(world):
    missing = sorted(set(_internal_routes(world)) - set(INTERNAL_CALLERS))
    assert not missing, "routes internes sans appelant déclaré (matrix.py, INTERNAL_CALLERS) " \
                        ":\n" + "\n".join(missing)


@pytest.mark.parametrize("key", sorted(INTERNAL_CALLERS))
def test_internal_routes_refuse_other_services(world, key):
    """Each /internal/ route refuses every other service's token (403) and nothing changes;
    its own caller gets past authorization."""
    if key not in _service_routes(world):
        pytest.skip("route absente de cette version")
    entry = ROUTES[key]
    service, method, rule = key.split(" ", 2)
    tokens = world.app(service).extensions["portail_service_tokens"]
    path = _path(rule, entry, resolver(world, "anonymous"))
    body = entry.body(resolver(world, "anonymous")) if entry.body else None
    problems = []
    for caller in ("accounts", "reservations", "billing", "requests", "notifications",
                   "gateway"):
        allowed = caller == INTERNAL_CALLERS[key]
        if caller == "gateway":  # the gateway signs with its own key, as a principal
            token = world.signer.mint(Principal(account_id="service:gateway"), service)
            headers = {"Authorization": f"Bearer {token}"}
        else:
            headers = {"Authorization": f"Bearer {tokens.mint(caller, service)}"}
        if service == "billing" and method == "POST":
            headers["Idempotency-Key"] = "authz-matrix"
        before = world.fingerprint(service, ALWAYS_MAY_WRITE)
        answer = world.app(service).test_client().open(path, method=method, headers=headers,
                                                       json=body)
        if allowed and answer.status_code in (401, 403):
            problems.append(f"{caller} (l'appelant prévu) refusé : {answer.status_code}")
        if not allowed:
            if answer.status_code not in (401, 403):
                problems.append(f"{caller} : attendu 401/403, obtenu {answer.status_code}")
            elif world.fingerprint(service, ALWAYS_MAY_WRITE) != before:
                problems.append(f"{caller} : refusé mais la base de {service} a changé")
    assert not problems, f"{key}\n" + "\n".join(problems)


# One call naming objects of two owners at once: the caller's own and someone else's. Refused
# as a whole (nothing done for the caller's own part either) and naming nothing of the other's.
MIXED = [
    ("requests", "GET",
     "/api/requests/communes/jolieville/requests/{request A}/documents/{document B}",
     "parent_a", None, {404}),
    ("requests", "GET",
     "/api/requests/communes/jolieville/requests/{request A}/documents/{document C}",
     "agent_x", None, {403, 404}),
    ("billing", "POST", "/api/billing/payments", "parent_a",
     lambda ids, url: {"invoice_ids": [ids["invoice_paid", "A"], ids["invoice", "B"]],
                       "return_url": url}, {404, 422}),
    ("reservations", "POST", "/api/reservations/communes/jolieville/cancellations", "parent_a",
     lambda ids, url: {"booking_ids": [ids["booking", "A"], ids["booking", "B"]]}, {404, 422}),
    ("billing", "POST", "/api/billing/communes/jolieville/credit-notes", "agent_x",
     lambda ids, url: {"family_id": ids["family", "A"], "amount": "1.00", "reason": "Geste",
                       "invoice_id": ids["invoice_paid", "B"]}, {404, 422}),
    ("reservations", "PUT",
     "/api/reservations/communes/jolieville/attendance?site={site X}&date=2031-03-03",
     "agent_x",
     lambda ids, url: {"marks": [
         {"child_id": ids["child", "A"], "activity_id": ids["activity", "X"],
          "status": "present"},
         {"child_id": ids["child", "C"], "activity_id": ids["activity", "X"],
          "status": "present"}]}, {404, 422}),
]


@pytest.mark.parametrize(("service", "method", "path", "actor", "body", "expected"), MIXED,
                         ids=[f"{m[1]} {m[2]} {m[3]}" for m in MIXED])
def test_mixed_ids_are_refused_as_a_whole(world, service, method, path, actor, body, expected):
    filled = re.sub(r"\{([a-z_]+) ([A-Z])\}",
                    lambda m: world.ids[m.group(1), m.group(2)], path)
    before = world.fingerprint(service, ALWAYS_MAY_WRITE)
    answer = world.call(service, method, filled, actor,
                        json=body(world.ids, world.return_url) if body else None)
    assert answer.status_code in expected, answer.get_data()[:300]
    assert world.fingerprint(service, ALWAYS_MAY_WRITE) == before
    assert not leaks(world, answer, FOREIGN[actor])


def test_the_dpo_reads_the_audit_log_of_their_commune_only(world):
    """The seventh role of the audit log: the demo DPO of X (not one of the six actors)."""
    from tests.security.world import PASSWORD, _principal

    world.principals["dpo_x"] = _principal(world, "dpo@jolieville.test", PASSWORD)
    audit = "/api/accounts/communes/{}/audit"
    assert world.call("accounts", "GET", audit.format("jolieville"), "dpo_x").status_code == 200
    assert world.call("accounts", "GET", audit.format("dammartin"), "dpo_x").status_code == 403
