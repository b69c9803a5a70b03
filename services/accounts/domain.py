"""Rules of identity, households and communes, free of Flask and SQLAlchemy.

Passwords (argon2id, policy), e-mailed links (tokens), family codes, what a parent may change
in their household, list cursors. ``operations`` applies them inside transactions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MODULES = ("reservations", "invoices", "requests")


class RuleError(ValueError):
    """Something the rules refuse; ``errors`` are French messages keyed by field."""

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None):
        super().__init__(detail or str(errors))
        self.errors = errors
        self.detail = detail


# --------------------------------------------------------------------------------------------
# Passwords
# --------------------------------------------------------------------------------------------

# argon2id with RFC 9106's second recommended option scaled to a small server: 19 MiB and
# 2 passes (OWASP's minimum) keeps a login near 30 ms on one core, so login bursts at the
# start of a booking period do not starve the other services.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying an unknown e-mail against this keeps the timing of "no such account" and "wrong
# password" the same, so login never reveals which e-mails are registered.
_DUMMY_HASH = HASHER.hash("portail-famille-dummy-password")

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
TOO_SHORT = "Au moins 12 caractères."
TOO_LONG = "Au plus 1024 caractères."
TOO_COMMON = "Ce mot de passe est trop courant : choisissez-en un autre."
IS_EMAIL = "Le mot de passe ne doit pas être votre adresse e-mail."
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


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


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The list of passwords too common to accept (lower case, one a line)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines
                     if line.strip() and not line.startswith("#"))


def password_problems(password: str, email: str | None = None) -> list[str]:
    """Why ``password`` is refused (French messages), or an empty list.

    NIST SP 800-63B: a minimum length, a generous maximum, no composition rules, and a check
    against passwords known to be common or tied to the account.
    """
    if len(password) < PASSWORD_MIN:
        return [TOO_SHORT]
    if len(password) > PASSWORD_MAX:
        return [TOO_LONG]
    folded = password.strip().lower()
    if folded in common_passwords() or len(set(folded)) <= 2:
        return [TOO_COMMON]
    if email:
        address = normalise_email(email)
        if folded in (address, address.split("@", 1)[0]):
            return [IS_EMAIL]
    return []


# --------------------------------------------------------------------------------------------
# Links sent by e-mail (activation, password reset)
# --------------------------------------------------------------------------------------------

ACTIVATION = "activation"
RESET = "reset"
DEFAULT_ACTIVATION_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def new_token() -> tuple[str, str]:
    """A fresh link token: (what goes in the e-mail, the SHA-256 kept in the database)."""
    raw = secrets.token_urlsafe(32)
    return raw, token_hash(raw)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def plausible_token(raw: str) -> bool:
    return bool(_TOKEN_SHAPE.match(raw or ""))


def token_state(expires_at: datetime, used_at: datetime | None, now: datetime) -> str:
    """``valid``, ``used`` or ``expired``."""
    if used_at is not None:
        return "used"
    if expires_at <= now:
        return "expired"
    return "valid"


def activation_ttl(raw: str | None) -> timedelta:
    """``ACTIVATION_TTL_DAYS`` from the environment, 7 days when unset or not a number."""
    try:
        days = int(raw) if raw not in (None, "") else 0
    except ValueError:
        days = 0
    return timedelta(days=days) if days > 0 else DEFAULT_ACTIVATION_TTL


# --------------------------------------------------------------------------------------------
# Family codes
# --------------------------------------------------------------------------------------------

# No 0/O nor 1/I: a code read over the phone or copied from a letter is not mistyped.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def new_family_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_family_code(code: str) -> str:
    """What a person typed, as stored: upper case, without spaces or dashes."""
    return re.sub(r"[\s-]+", "", code or "").upper()


# --------------------------------------------------------------------------------------------
# Households
# --------------------------------------------------------------------------------------------


def sort_key(text: str) -> str:
    """Lower case without accents: ``Éloïse`` and ``eloise`` sort and match alike."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def search_text(family_name: str, children: list[dict[str, Any]]) -> str:
    """What the agents' search matches: the family name and the children's names."""
    names = [family_name, *(f"{c['first_name']} {c['last_name']}" for c in children)]
    return " | ".join(sort_key(name) for name in names)


def with_a_payer(guardians: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At creation, the first guardian pays when none was marked as paying."""
    if guardians and not any(g.get("pays") for g in guardians):
        guardians = [{**guardians[0], "pays": True}, *guardians[1:]]
    return guardians


def normalise_address(address: dict[str, Any] | None) -> dict[str, Any] | None:
    if not address:
        return None
    return {
        "line1": address["line1"],
        "line2": address.get("line2") or None,
        "postal_code": address["postal_code"],
        "city": address["city"],
    }


THROUGH_REQUESTS = ("ne se modifie pas ici : la mairie la met à jour sur justificatif. "
                    "Faites une demande depuis « Mes demandes ».")
ADDRESS_REFUSED = "L'adresse " + THROUGH_REQUESTS
CHILDREN_REFUSED = ("Les informations des enfants (noms, date de naissance, école, allergies) "
                    "ne se modifient pas ici : la mairie les met à jour sur justificatif. "
                    "Faites une demande depuis « Mes demandes ».")
FAMILY_NAME_REFUSED = ("Le nom du foyer ne se modifie pas ici : faites une demande depuis "
                       "« Mes demandes ».")
UNKNOWN_GUARDIAN = "Ce responsable ne fait pas partie de votre foyer."
NO_PAYER = "Au moins un responsable doit être désigné comme payeur."
GUARDIAN_FIELDS = ("first_name", "last_name", "relation", "email", "phones", "pays")
CHILD_FIELDS = ("first_name", "last_name", "birth_date", "school", "class_name", "allergies",
                "allergy_notes")


@dataclass(frozen=True)
class ProfileChange:
    """What a parent's PATCH changes: new values by guardian id (only what differs)."""

    guardians: dict[str, dict[str, Any]]

    @property
    def empty(self) -> bool:
        return not self.guardians


def plan_profile_change(current: dict[str, Any], patch: dict[str, Any]) -> ProfileChange:
    """Check a parent's change of their household against the rules, and say what changes.

    ``current`` is the household (as ``GET /me/family``), ``patch`` the loaded request body.
    Guardians' contact details (names, relation, e-mail, phones, who pays) change at once.
    The address, the family name and the children need a proof and an agent: sending them
    with a different value is refused (the same value, as a form sends back, is ignored).
    Raises RuleError.
    """
    errors: dict[str, list[str]] = {}
    if "family_name" in patch and patch["family_name"] != current["family_name"]:
        errors["family_name"] = [FAMILY_NAME_REFUSED]
    if "address" in patch and (normalise_address(patch["address"])
                               != normalise_address(current.get("address"))):
        errors["address"] = [ADDRESS_REFUSED]
    if "children" in patch:
        children = {c["id"]: c for c in current["children"]}
        for given in patch["children"] or []:
            known = children.get(given.get("id"))
            if known is None or any(
                field in given and _comparable(given[field]) != _comparable(known.get(field))
                for field in CHILD_FIELDS
            ):
                errors["children"] = [CHILDREN_REFUSED]
                break

    guardians = {g["id"]: g for g in current["guardians"]}
    changes: dict[str, dict[str, Any]] = {}
    for index, given in enumerate(patch.get("guardians") or []):
        known = guardians.get(given["id"])
        if known is None or given["id"] in changes:
            errors[f"guardians.{index}.id"] = [UNKNOWN_GUARDIAN]
            continue
        diff = {field: given[field] for field in GUARDIAN_FIELDS
                if field in given and given[field] != known.get(field)}
        changes[given["id"]] = diff
    if errors:
        raise RuleError(errors, "Certaines modifications ne sont pas possibles ici.")

    payers = {gid: changes.get(gid, {}).get("pays", g["pays"]) for gid, g in guardians.items()}
    if not any(payers.values()):
        raise RuleError({"guardians": [NO_PAYER]})
    return ProfileChange({gid: diff for gid, diff in changes.items() if diff})


def _comparable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value.strip()
    return value


# --------------------------------------------------------------------------------------------
# Lists
# --------------------------------------------------------------------------------------------

FAMILIES_PAGE = 50
NEWS_PAGE = 20


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    """The values of an opaque cursor; RuleError when it was not made by encode_cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not (isinstance(values, list) and len(values) == size
            and all(isinstance(v, str) for v in values)):
        raise RuleError({"cursor": ["Curseur de pagination invalide."]})
    return values


# --------------------------------------------------------------------------------------------
# Communes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommuneSettings:
    timezone: str = "Europe/Paris"
    modules: tuple[str, ...] = MODULES
    contact_email: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None
    logo_url: str | None = None
    payment_config_ref: str | None = None
    # Issue 8: {audit_log_months, notifications_months, erasure_records_months}, or null.
    retention: dict[str, Any] | None = None

    def as_dict(self) -> dict:
        return {
            "timezone": self.timezone,
            "modules": list(self.modules),
            "contact_email": self.contact_email,
            "phone": self.phone,
            "address": normalise_address(self.address),
            "logo_url": self.logo_url,
            "payment_config_ref": self.payment_config_ref,
            "retention": self.retention,
        }


def merge_commune_settings(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """The commune's settings after a PATCH: given keys replace, the others stay."""
    merged = {**CommuneSettings().as_dict(), **(current or {}), **changes}
    merged["modules"] = list(dict.fromkeys(merged.get("modules") or []))
    merged["address"] = normalise_address(merged.get("address"))
    known = CommuneSettings().as_dict().keys()
    return {key: merged.get(key) for key in known}
