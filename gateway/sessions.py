"""Server-side sessions: an opaque random token in a cookie (portal) or a bearer header (API)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

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


class SessionStore:
    def __init__(self, db: Database, policy: SessionPolicy | None = None):
        self.db = db
        self.policy = policy or SessionPolicy()

    def open(self, principal: Principal) -> str:
        """A new session (always a new id: no fixation); returns the token to give out."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.db.transaction() as s:
            s.add(Session(token_hash=_hash(token), account_id=principal.account_id,
                          principal=principal.claims(), created_at=now, last_seen_at=now,
                          refreshed_at=now, expires_at=now + self.policy.absolute))
        return token

    def find(self, token: str) -> tuple[Principal, timedelta] | None:
        """The live session's principal and how old that principal is; None when dead."""
        now = datetime.now(UTC)
        with self.db.sessions() as s:
            row = s.get(Session, _hash(token))
            if row is None:
                return None
            last_seen = _aware(row.last_seen_at)
            if _aware(row.expires_at) <= now or last_seen + self.policy.idle <= now:
                return None
            principal = Principal.from_claims(row.principal)
            age = now - _aware(row.refreshed_at or row.created_at)
        if now - last_seen >= self.policy.touch_every:
            with self.db.transaction() as s:
                row = s.get(Session, _hash(token))
                if row is not None:
                    row.last_seen_at = now
        return principal, age

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
