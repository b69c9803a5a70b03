"""The migrations and the concurrency-sensitive paths on PostgreSQL (production's database)."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from services.accounts.models import metadata
from services.accounts.seed import seed
from services.common.db import Database, make_engine
from services.common.migrate import alembic_config, upgrade
from tests.accounts.support import (
    AGENT,
    DAMMARTIN_AGENT,
    PARENT,
    STRONG,
    create_household,
    household,
    login_claims,
    parent_principal,
)
from tests.accounts.test_activation import assert_single_winner

pytestmark = pytest.mark.services


def schema_differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def test_the_migrations_build_the_models_schema_and_go_back(pg_url):
    upgrade("services.accounts", pg_url)
    assert schema_differences(pg_url) == []
    command.downgrade(alembic_config("services.accounts", pg_url), "0001")
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            columns = {c["name"] for c in inspect(conn).get_columns("accounts")}
    finally:
        engine.dispose()
    assert not {"families", "guardians", "children", "memberships", "tokens",
                "news"} & tables
    assert "invited_at" not in columns
    upgrade("services.accounts", pg_url)
    assert schema_differences(pg_url) == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_older_database_upgrades_and_gets_the_household(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path}/old.db" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    upgrade("services.accounts", url, "0001")
    db = Database(url)
    try:
        # What the first version of the seed left: the parent's account pointing to a
        # household that had no table yet.
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO accounts (id, email, password_hash, status, platform_admin, "
                "family_id) VALUES (:id, 'parent@famille.test', NULL, 'active', false, :f)"),
                {"id": PARENT.account_id, "f": PARENT.family_id})
        upgrade("services.accounts", url)
        created = seed(db)
        assert "famille CASSEREAU" in created
        assert "compte parent@famille.test" not in created
        assert seed(db) == []
    finally:
        db.dispose()
    assert schema_differences(url) == []


def test_the_journey_on_postgresql(pg_accounts):
    accounts = pg_accounts
    created = create_household(accounts)
    assert_single_winner(accounts, created["token"])

    listed = accounts.get("/api/accounts/communes/jolieville/families", AGENT,
                          query_string={"q": "noé"}).get_json()["items"]
    assert [i["family_name"] for i in listed] == ["MARTIN"]

    proposal = accounts.post("/api/accounts/communes/dammartin/families", DAMMARTIN_AGENT,
                             json=household()).get_json()
    winner = next(i for i in range(4)
                  if login_claims(accounts, "martin@exemple.fr", f"{STRONG} numéro {i}"))
    martin = parent_principal(login_claims(accounts, "martin@exemple.fr",
                                           f"{STRONG} numéro {winner}"))
    joined = accounts.post("/api/accounts/me/communes", martin,
                           json={"commune": "dammartin",
                                 "family_code": proposal["family_code"]})
    assert joined.status_code == 201
    assert accounts.last("accounts.family.updated")["data"]["version"] == 2

    for i in range(22):
        accounts.post("/api/accounts/communes/jolieville/news", AGENT,
                      json={"title": f"N{i}", "body": "..."})
    first = accounts.get("/api/accounts/communes/jolieville/news", PARENT).get_json()
    second = accounts.get("/api/accounts/communes/jolieville/news", PARENT,
                          query_string={"cursor": first["next"]}).get_json()
    assert len(first["items"]) + len(second["items"]) == 24

    reset = accounts.post("/api/accounts/password-reset", json={"email": "parent@famille.test"})
    assert reset.status_code == 202


def test_concurrent_profile_changes_keep_versions_distinct(pg_accounts):
    import threading

    accounts = pg_accounts
    family = accounts.get("/api/accounts/me/family", PARENT).get_json()
    marie = family["guardians"][0]["id"]
    barrier = threading.Barrier(4)

    def change(i: int) -> None:
        client = accounts.client()
        barrier.wait()
        client.patch("/api/accounts/me/family", headers=accounts.headers(PARENT),
                     json={"guardians": [{"id": marie, "phones": [f"06 00 00 00 0{i}"]}]})

    threads = [threading.Thread(target=change, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    versions = [e["data"]["version"] for e in accounts.events("accounts.family.updated")]
    assert sorted(versions[-4:]) == [2, 3, 4, 5]
    assert accounts.get("/api/accounts/me/family", PARENT).get_json()["version"] == 5
