"""Second factor of agents and platform admins: TOTP (RFC 6238) and recovery codes.

Free of Flask and SQLAlchemy; ``second_factor`` applies these rules inside transactions.

- Secrets: 160 random bits (RFC 4226's recommended length), base32, 6 digits, 30-second steps,
  SHA-1 (what every authenticator app reads from an ``otpauth://`` URI). Stored encrypted
  (Fernet) under a key from ``TOTP_ENCRYPTION_KEY``; the demo accounts' secret is public
  (README) and is stored under the public demo key (``key_id`` ``demo``).
- Verification accepts the previous, current and next step (±30 s of clock drift) and only a
  step later than the last one accepted: a code seen once, even by a shoulder or a proxy,
  cannot open a second session.
- Recovery codes: 10 codes of 80 random bits, shown once, stored as SHA-256 (their entropy
  makes a slow hash unnecessary, as for the e-mailed tokens), each usable once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.common.config import ConfigError, Settings

ISSUER = "Portail Famille"
DIGITS = 6
STEP = 30
WINDOW = 1  # steps accepted on each side of the current one
RECOVERY_CODES = 10
# Consecutive wrong codes before the second factor is locked for LOCK_MINUTES (on top of the
# gateway's rate limits, which a pool of addresses could spread out).
MAX_FAILURES = 10
LOCK_MINUTES = 15

# The demo agents' and admin's secret, documented in the README's demo section; the portal's
# dev hint (portal/second_factor.py) repeats it and tests/security checks both agree.
DEMO_SECRET = "PORTAILDEMOTOTPJOLIEVILLEAGENTS2"
DEMO_KEY_ID = "demo"
KEY_ID = "k1"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def new_secret() -> str:
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP).provisioning_uri(
        name=email, issuer_name=ISSUER)


def current_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // STEP)


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace())


def matching_step(secret: str, code: str, *, after: int | None, at: float | None = None
                  ) -> int | None:
    """The step whose code is ``code`` within the window and later than ``after``; else None."""
    code = normalise_code(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    otp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP)
    now = current_step(at)
    found = None
    # Every candidate is compared (constant work whatever matches).
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(otp.generate_otp(step), code) and (after is None or step > after):
            found = step if found is None else found
    return found


# recovery codes ----------------------------------------------------------------------------
def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_hash(code: str) -> str:
    cleaned = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(cleaned.encode()).hexdigest()


# encryption at rest ------------------------------------------------------------------------
def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"portail-famille:totp-secrets").derive(material.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class SecretBox:
    """Encrypts the TOTP secrets; ``key_id`` says which key a stored secret needs."""

    def __init__(self, material: str):
        self.keys = {KEY_ID: _fernet(material), DEMO_KEY_ID: _fernet(DEMO_KEY_ID)}

    def seal(self, secret: str, key_id: str = KEY_ID) -> str:
        return self.keys[key_id].encrypt(secret.encode()).decode()

    def open(self, sealed: str, key_id: str) -> str:
        try:
            return self.keys[key_id].decrypt(sealed.encode()).decode()
        except (KeyError, InvalidToken) as exc:
            raise ValueError("secret TOTP illisible avec la clé configurée") from exc

    @classmethod
    def of(cls, settings: Settings) -> SecretBox:
        """``TOTP_ENCRYPTION_KEY`` (required in production); in dev a key in the data dir."""
        configured = settings.extra.get("TOTP_ENCRYPTION_KEY", "")
        if configured:
            return cls(configured)
        if not settings.dev:
            raise ConfigError(["TOTP_ENCRYPTION_KEY est obligatoire (chiffrement des secrets "
                               "de double authentification des agents)"])
        path = Path(settings.data_dir) / "keys" / "totp.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return cls(path.read_text().strip())


def demo_sealed() -> str:
    """The demo secret as the seed stores it (under the public demo key)."""
    return _fernet(DEMO_KEY_ID).encrypt(DEMO_SECRET.encode()).decode()
