"""Rules of identity and communes, free of Flask and SQLAlchemy."""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MODULES = ("reservations", "invoices", "requests")

# argon2id with RFC 9106's second recommended option scaled to a small server: 19 MiB and
# 2 passes (OWASP's minimum) keeps a login near 30 ms on one core, so login bursts at the
# start of a booking period do not starve the other services.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying an unknown e-mail against this keeps the timing of "no such account" and "wrong
# password" the same, so login never reveals which e-mails are registered.
_DUMMY_HASH = HASHER.hash("portail-famille-dummy-password")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


@dataclass(frozen=True)
class CommuneSettings:
    timezone: str = "Europe/Paris"
    modules: tuple[str, ...] = MODULES
    contact_email: str | None = None
    phone: str | None = None
    address: str | None = None

    def as_dict(self) -> dict:
        return {
            "timezone": self.timezone,
            "modules": list(self.modules),
            "contact_email": self.contact_email,
            "phone": self.phone,
            "address": self.address,
        }
