"""The second factor's use cases (TOTP of agents and platform admins), for the gateway only.

The gateway calls these through ``/internal/second-factor/{account_id}/...`` with its service
token, for the account of a session that passed the password and waits for its second factor
(docs/contract.md, "Second factor"). Each call is one transaction; rules are in ``totp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from services.common.db import Database
from services.common.errors import Problem
from services.common.logging import get_logger

from . import totp
from .models import Account, AgentRole, RecoveryCode, SecondFactor

log = get_logger(__name__)

WRONG_CODE = "Code incorrect ou déjà utilisé. Saisissez le code actuel de votre application."
WRONG_RECOVERY = "Ce code de secours n'est pas valable ou a déjà servi."
LOCKED = ("Trop de codes erronés : la double authentification de ce compte est bloquée "
          "pendant {minutes} minutes.")
NOT_ENROLLED = "La double authentification n'est pas encore configurée pour ce compte."
ALREADY_ENROLLED = "La double authentification est déjà configurée pour ce compte."
NOT_REQUIRED = "Ce compte n'utilise pas de double authentification."


def requires_second_factor(session: Session, account: Account) -> bool:
    """Agents and platform admins: the accounts that reach back-office data."""
    return bool(account.platform_admin or session.get(AgentRole, account.id) is not None)


def state(session: Session, account: Account) -> dict[str, bool]:
    """``{required, enrolled}``, added to the gateway's authentication answer."""
    factor = session.get(SecondFactor, account.id)
    return {"required": requires_second_factor(session, account),
            "enrolled": bool(factor and factor.confirmed_at)}


@dataclass
class SecondFactors:
    db: Database
    box: totp.SecretBox

    def _account(self, session: Session, account_id: str) -> Account:
        account = session.get(Account, account_id)
        if account is None or account.status != "active":
            raise Problem(404)
        if not requires_second_factor(session, account):
            raise Problem(409, NOT_REQUIRED)
        return account

    @staticmethod
    def _check_lock(factor: SecondFactor, now: datetime) -> None:
        if factor.locked_until and factor.locked_until > now:
            minutes = max(1, int((factor.locked_until - now).total_seconds() // 60) + 1)
            raise Problem(429, LOCKED.format(minutes=minutes))

    @staticmethod
    def _failed(factor: SecondFactor, now: datetime) -> None:
        factor.failures += 1
        if factor.failures >= totp.MAX_FAILURES:
            factor.locked_until = now + timedelta(minutes=totp.LOCK_MINUTES)
            factor.failures = 0
            log.warning("second_factor_locked", account_id=factor.account_id)

    def start_enrolment(self, account_id: str) -> dict[str, Any]:
        """A new secret, or the one waiting for its first code: ``{secret, otpauth_uri}``.

        Once confirmed the secret is never given out again (409).
        """
        with self.db.transaction() as session:
            account = self._account(session, account_id)
            factor = session.get(SecondFactor, account_id, with_for_update=True)
            if factor is not None and factor.confirmed_at is not None:
                raise Problem(409, ALREADY_ENROLLED)
            if factor is None:
                secret = totp.new_secret()
                session.add(SecondFactor(account_id=account_id, key_id=totp.KEY_ID,
                                         secret_sealed=self.box.seal(secret), failures=0))
            else:
                secret = self.box.open(factor.secret_sealed, factor.key_id)
            return {"secret": secret, "otpauth_uri": totp.provisioning_uri(secret, account.email)}

    def confirm_enrolment(self, account_id: str, code: str) -> dict[str, Any]:
        """The first code proves the app has the secret: ``{recovery_codes}`` (shown once)."""
        now = datetime.now(UTC)
        with self.db.transaction() as session:
            self._account(session, account_id)
            factor = session.get(SecondFactor, account_id, with_for_update=True)
            if factor is None:
                raise Problem(409, NOT_ENROLLED)
            if factor.confirmed_at is not None:
                raise Problem(409, ALREADY_ENROLLED)
            self._check_lock(factor, now)
            step = totp.matching_step(self.box.open(factor.secret_sealed, factor.key_id), code,
                                      after=factor.last_step)
            if step is None:
                self._failed(factor, now)
                return {"ok": False}
            factor.confirmed_at = now
            factor.last_step = step
            factor.failures = 0
            codes = totp.new_recovery_codes()
            session.execute(delete(RecoveryCode).where(RecoveryCode.account_id == account_id))
            session.add_all(RecoveryCode(account_id=account_id, code_hash=totp.recovery_hash(c))
                            for c in codes)
            return {"ok": True, "recovery_codes": codes}

    def verify(self, account_id: str, code: str) -> dict[str, Any]:
        """A code of the app: accepted once, for a step later than the last accepted."""
        now = datetime.now(UTC)
        with self.db.transaction() as session:
            self._account(session, account_id)
            factor = session.get(SecondFactor, account_id, with_for_update=True)
            if factor is None or factor.confirmed_at is None:
                raise Problem(409, NOT_ENROLLED)
            self._check_lock(factor, now)
            step = totp.matching_step(self.box.open(factor.secret_sealed, factor.key_id), code,
                                      after=factor.last_step)
            if step is not None:
                # Conditional: two requests racing with the same code, one wins (SQLite has no
                # row lock; the WHERE makes the second update touch nothing).
                taken = session.execute(
                    update(SecondFactor)
                    .where(SecondFactor.account_id == account_id,
                           (SecondFactor.last_step.is_(None))
                           | (SecondFactor.last_step < step))
                    .values(last_step=step, failures=0)
                    .execution_options(synchronize_session=False)).rowcount
                if taken == 1:
                    return {"ok": True}
            self._failed(factor, now)
            return {"ok": False}

    def recover(self, account_id: str, code: str) -> dict[str, Any]:
        """A recovery code instead of the app's: each works once; ``{remaining}``."""
        now = datetime.now(UTC)
        with self.db.transaction() as session:
            self._account(session, account_id)
            factor = session.get(SecondFactor, account_id, with_for_update=True)
            if factor is None or factor.confirmed_at is None:
                raise Problem(409, NOT_ENROLLED)
            self._check_lock(factor, now)
            used = session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.account_id == account_id,
                       RecoveryCode.code_hash == totp.recovery_hash(code),
                       RecoveryCode.used_at.is_(None))
                .values(used_at=now).execution_options(synchronize_session=False)).rowcount
            if used != 1:
                self._failed(factor, now)
                return {"ok": False}
            factor.failures = 0
            remaining = len(list(session.scalars(select(RecoveryCode.id).where(
                RecoveryCode.account_id == account_id, RecoveryCode.used_at.is_(None)))))
            log.info("second_factor_recovery_used", account_id=account_id, remaining=remaining)
            return {"ok": True, "remaining": remaining}
