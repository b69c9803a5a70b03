"""Server-side sessions: an opaque random token in a cookie (portal) or a bearer header (API)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, select

from services.common.auth import Principal
from services.common.db import Database

from .models import Session

COOKIE = "portail_session"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    # SQLite gives naive datetimes back even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    # Writing last_seen on every call would make every page view a database write.
    touch_every: timedelta = timedelta(seconds=60)
    # A session waiting for its second factor: long enough to open the app and type a code.
    pending: timedelta = timedelta(minutes=10)


# Second factor states of a session (models.Session.second_factor).
PENDING = "pending"
VERIFIED = "verified"
NOT_REQUIRED = "not_required"


class Found(NamedTuple):
    principal: Principal
    age: timedelta  # how old the principal is
    second_factor: str | None


class SessionStore:
    def __init__(self, db: Database, policy: SessionPolicy | None = None):
        self.db = db
        self.policy = policy or SessionPolicy()

    def open(self, principal: Principal, *, second_factor: str | None = None) -> str:
        """A new session (always a new id: no fixation); returns the token to give out.

        A ``pending`` session lives ``policy.pending`` only: the time to type the code.
        """
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        lifetime = self.policy.pending if second_factor == PENDING else self.policy.absolute
        with self.db.transaction() as s:
            s.add(Session(token_hash=_hash(token), account_id=principal.account_id,
                          principal=principal.claims(), created_at=now, last_seen_at=now,
                          refreshed_at=now, expires_at=now + lifetime,
                          second_factor=second_factor))
        return token

    def lifetime(self, second_factor: str | None) -> int:
        """Seconds a new session of that state lives (the ``expires_in`` of /auth answers)."""
        chosen = self.policy.pending if second_factor == PENDING else self.policy.absolute
        return int(chosen.total_seconds())

    def find(self, token: str) -> Found | None:
        """The live session's principal, how old that principal is, its second factor state;
        None when dead."""
        now = datetime.now(UTC)
        row = self._read(_hash(token))
        if row is None:
            return None
        last_seen = _aware(row.last_seen_at)
        if _aware(row.expires_at) <= now or last_seen + self.policy.idle <= now:
            return None
        principal = Principal.from_claims(row.principal)
        age = now - _aware(row.refreshed_at or row.created_at)
        state = row.second_factor
        if now - last_seen >= self.policy.touch_every:
            with self.db.transaction() as s:
                row = s.get(Session, _hash(token))
                if row is not None:
                    row.last_seen_at = now
        return Found(principal, age, state)

    def _read(self, digest: str):
        """The session's row, read on every proxied call: on PostgreSQL one statement in
        autocommit, without the BEGIN and ROLLBACK round trips of a transaction around it
        (the surge and gateway benchmarks showed them as most of the gateway's own time)."""
        query = select(Session.__table__).where(Session.__table__.c.token_hash == digest)
        if self.db.is_sqlite:
            with self.db.sessions() as s:
                return s.execute(query).first()
        with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return conn.execute(query).first()

    def principal(self, token: str) -> Principal | None:
        found = self.find(token)
        return found[0] if found else None

    def replace_principal(self, token: str, principal: Principal) -> None:
        with self.db.transaction() as s:
            row = s.get(Session, _hash(token))
            if row is not None:
                row.principal = principal.claims()
                row.refreshed_at = datetime.now(UTC)

    def close(self, token: str) -> None:
        with self.db.transaction() as s:
            s.execute(delete(Session).where(Session.token_hash == _hash(token)))

    def close_all(self, account_id: str, *, keep: str | None = None) -> None:
        with self.db.transaction() as s:
            query = delete(Session).where(Session.account_id == account_id)
            if keep:
                query = query.where(Session.token_hash != _hash(keep))
            s.execute(query)

    def purge_expired(self) -> int:
        now = datetime.now(UTC)
        with self.db.transaction() as s:
            result = s.execute(delete(Session).where(
                (Session.expires_at <= now) | (Session.last_seen_at <= now - self.policy.idle)))
            return result.rowcount or 0
