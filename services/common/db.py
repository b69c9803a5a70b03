"""One SQLAlchemy engine and session factory per service, and the unit of work around them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the relay read while a request writes; the busy timeout turns lock contention
    # between threads of the embedded mode into waiting instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn) -> None:
    # SQLite upgrades a read transaction to a write one lazily and fails with SQLITE_BUSY when
    # another thread wrote in between; taking the write lock at BEGIN serialises writers cleanly.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "isolation_level": None},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    if parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def mark(session: Session, topic: str) -> None:
    """Note that this unit of work did something ``topic`` listeners wait for."""
    session.info.setdefault("commit_topics", set()).add(topic)


class Database:
    """A service's database: engine, sessions, and hooks run after each successful commit."""

    def __init__(self, url: str, *, pool_size: int = 5):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._after_commit: list[tuple[str, Callable[[], None]]] = []
        self._lock = threading.Lock()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def on_commit(self, topic: str, callback: Callable[[], None]) -> None:
        """Run ``callback`` after each commit, made through :meth:`transaction`, of a unit of
        work that :func:`mark` marked with ``topic`` (e.g. one that wrote to the outbox)."""
        with self._lock:
            self._after_commit.append((topic, callback))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """The unit of work: commit when the block ends normally, roll back otherwise."""
        session = self.sessions()
        try:
            yield session
            session.commit()
            topics = set(session.info.get("commit_topics", ()))
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        for topic, callback in list(self._after_commit):
            if topic in topics:
                callback()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
