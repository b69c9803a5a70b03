"""Accounts' retention job (issue 8), per commune, run by the worker every
``PRIVACY_RETENTION_INTERVAL`` seconds (6 hours; 0 turns it off).

- Audit log entries: after the commune's ``retention.audit_log_months`` (12 by default: a
  year is what the CNIL recommends for access logs, long enough to investigate a complaint).
- Activation and reset links: once expired or used for 30 days (they are useless then).
- Erasure requests: their record (who decided what, when; no personal data left) is proof
  that a right was honoured, kept ``retention.erasure_records_months`` (36 by default, the
  limitation period of a complaint); then it goes, and with a completed one the erased
  household's leftovers (the account and household rows, already without any name).

Every function takes ``now``: the tests travel in time with it.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select

from services.common.db import Database
from services.common.logging import get_logger

from .models import Account, AuditEntry, Commune, ErasureRequest, Family, Token

log = get_logger(__name__)

DEFAULTS = {"audit_log_months": 12, "notifications_months": 12, "erasure_records_months": 36}
TOKENS_KEPT = timedelta(days=30)
DEFAULT_INTERVAL = 6 * 3600


def months_before(moment: datetime, months: int) -> datetime:
    """The same day ``months`` earlier (the last day of a shorter month)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month += 1
    day = moment.day
    while True:
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


def duration(settings: dict[str, Any] | None, key: str) -> int:
    value = ((settings or {}).get("retention") or {}).get(key)
    return int(value) if isinstance(value, int) and value > 0 else DEFAULTS[key]


def purge(db: Database, now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    done = {"audit_entries": 0, "tokens": 0, "erasure_requests": 0, "erased_households": 0}
    with db.transaction() as session:
        communes = list(session.scalars(select(Commune)))
        for commune in communes:
            cutoff = months_before(now, duration(commune.settings, "audit_log_months"))
            done["audit_entries"] += session.execute(delete(AuditEntry).where(
                AuditEntry.commune_id == commune.id, AuditEntry.at < cutoff)).rowcount
        done["tokens"] = session.execute(delete(Token).where(or_(
            Token.expires_at < now - TOKENS_KEPT,
            Token.used_at < now - TOKENS_KEPT))).rowcount
        settings = {c.id: c.settings for c in communes}
        for request in session.scalars(select(ErasureRequest).where(
                ErasureRequest.status != "pending", ErasureRequest.decided_at.is_not(None))):
            months = max((duration(settings.get(c), "erasure_records_months")
                          for c in request.commune_ids or []),
                         default=DEFAULTS["erasure_records_months"])
            if request.decided_at >= months_before(now, months):
                continue
            if request.status == "completed":
                done["erased_households"] += session.execute(delete(Account).where(
                    Account.family_id == request.family_id,
                    Account.status == "erased")).rowcount
                family = session.get(Family, request.family_id)
                if family is not None and not family.memberships:
                    session.delete(family)
            session.delete(request)
            done["erasure_requests"] += 1
    if any(done.values()):
        log.info("accounts_retention", **done)
    return done


def retention_loop(db: Database, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            purge(db)
        except Exception as exc:  # the database is down: the next round tries again
            log.warning("accounts_retention_failed", error=str(exc))
