"""Every service's Alembic migrations: they run on SQLite and PostgreSQL, run twice without
effect, run concurrently on PostgreSQL, and build exactly what the models describe."""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine

from services.common.db import make_engine
from services.common.migrate import alembic_config, upgrade
from suite.registry import MIGRATED

PACKAGES = sorted(MIGRATED.values())
_WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


def _sqlite_url(tmp_path, package: str) -> str:
    return f"sqlite:///{tmp_path / (package.replace('.', '_') + '.sqlite3')}"


def _metadata(package: str) -> sa.MetaData:
    return importlib.import_module(f"{package}.models").metadata


def _head(package: str) -> str:
    return ScriptDirectory.from_config(alembic_config(package, "sqlite://")).get_current_head()


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url, pool_size=1)
    try:
        yield engine
    finally:
        engine.dispose()


def _diff(url: str, package: str) -> list:
    with _engine(url) as engine, engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, _metadata(package))


def _version(url: str) -> str | None:
    with _engine(url) as engine, engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs inside the block."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement.strip())

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _check_fresh_upgrade(url: str, package: str) -> None:
    upgrade(package, url)
    assert _version(url) == _head(package)
    with _engine(url) as engine:
        tables = set(inspect(engine).get_table_names())
    assert set(_metadata(package).tables) <= tables
    assert _diff(url, package) == []


def _check_second_upgrade_is_a_no_op(url: str, package: str) -> None:
    with _statements() as seen:
        upgrade(package, url)
    writes = [s for s in seen if s.upper().startswith(_WRITES)]
    assert writes == []
    assert _version(url) == _head(package)


# SQLite -----------------------------------------------------------------------------------
@pytest.mark.parametrize("package", PACKAGES)
def test_upgrade_on_a_fresh_sqlite_file_matches_the_models(tmp_path, package):
    _check_fresh_upgrade(_sqlite_url(tmp_path, package), package)


@pytest.mark.parametrize("package", PACKAGES)
def test_second_upgrade_on_sqlite_changes_nothing(tmp_path, package):
    url = _sqlite_url(tmp_path, package)
    upgrade(package, url)
    _check_second_upgrade_is_a_no_op(url, package)


def test_the_comparison_sees_a_model_that_drifted(tmp_path):
    # Guards the tests above against comparing nothing: a column the migrations lack is seen.
    url = _sqlite_url(tmp_path, "gateway")
    upgrade("gateway", url)
    drifted = sa.MetaData()
    for table in _metadata("gateway").tables.values():
        table.to_metadata(drifted)
    drifted.tables["sessions"].append_column(sa.Column("user_agent", sa.String(200)))
    with _engine(url) as engine, engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), drifted)
    assert [d[0] for d in diff] == ["add_column"]


# PostgreSQL -------------------------------------------------------------------------------
@pytest.mark.services
@pytest.mark.parametrize("package", PACKAGES)
def test_upgrade_on_a_fresh_postgresql_database_matches_the_models(pg_url, package):
    _check_fresh_upgrade(pg_url, package)
    _check_second_upgrade_is_a_no_op(pg_url, package)


@pytest.mark.services
@pytest.mark.parametrize("package", PACKAGES)
def test_two_concurrent_upgrades_on_postgresql_both_succeed(pg_url, package):
    start = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def migrate():
        try:
            start.wait()
            upgrade(package, pg_url)
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "une migration est restée bloquée"
    assert errors == []
    assert _version(pg_url) == _head(package)
    assert _diff(pg_url, package) == []


@pytest.mark.services
def test_a_failing_migration_reports_its_own_error_and_leaves_nothing(pg_url, tmp_path,
                                                                       monkeypatch):
    # A throwaway package whose only migration fails half-way, after creating a table.
    name = f"broken_{uuid.uuid4().hex[:8]}"
    versions = tmp_path / name / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "models.py").write_text("from sqlalchemy import MetaData\n"
                                               "metadata = MetaData()\n")
    (tmp_path / name / "migrations" / "env.py").write_text(
        f"from {name}.models import metadata\n"
        "from services.common.migrate import run_env\n"
        "run_env(metadata)\n")
    (versions / "0001_broken.py").write_text(
        "from alembic import op\n"
        "revision = '0001'\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n"
        "def upgrade():\n"
        "    op.execute('CREATE TABLE half_done (id int)')\n"
        "    op.execute('SELECT * FROM no_such_table')\n"
        "def downgrade():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(sa.exc.ProgrammingError, match="no_such_table"):
        upgrade(name, pg_url)
    with _engine(pg_url) as engine, engine.connect() as conn:
        assert conn.execute(sa.text("SELECT to_regclass('half_done')")).scalar() is None
    assert _version(pg_url) is None
    # The lock was released: a real migration runs at once.
    upgrade("gateway", pg_url)
    assert _version(pg_url) == _head("gateway")
