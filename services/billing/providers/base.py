"""What every payment provider offers billing, and what it answers.

A provider opens a payment (``start``: where the parent pays, and the provider's own reference
of the operation when it has one, kept on the payment), turns a notification it sends to
``POST /payments/callback/{name}`` into a verified :class:`Notification` (``parse``, refusing
what it cannot authenticate), checks that a verified answer really concerns the payment it
names (``check``: the commune's account, the operation we opened), and answers for a payment
whose notification never came (``poll``, the reconciliation the expiry loop runs).

Providers know no database and no Flask: billing hands them a :class:`PaymentOrder`, a plain
view of the payment and of the commune's ``payment_config_ref``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

REPORTED = ("paid", "denied", "cancelled", "error")


class InvalidNotification(Exception):
    """A notification that cannot be trusted (bad signature, garbled, unknown to the provider):
    it changes nothing."""


class ProviderError(Exception):
    """The provider could not open a payment or answer about one (down, timed out, refused the
    request). ``status`` is what billing answers: 503 when trying later may work, 422 when the
    request itself cannot be accepted by that provider (e.g. below its minimal amount)."""

    def __init__(self, message: str, status: int = 503):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Notification:
    payment_id: str
    status: str  # paid | denied | cancelled | error (and, from ``poll``: waiting | expired)
    amount: Decimal | None  # None only for a status-only answer (no money involved)
    provider_reference: str
    raw: dict[str, Any]
    account: str | None = None  # the configuration the provider recognised (signing key...)


@dataclass(frozen=True)
class PaymentOrder:
    """A payment as a provider sees it."""

    payment_id: str
    amount: Decimal
    description: str = ""
    config_ref: str | None = None  # the commune's payment_config_ref
    email: str | None = None  # where the provider may send its receipt
    return_url: str | None = None  # where the parent comes back to
    reference: str | None = None  # the provider's reference once started (PayFiP's idop)
    created_at: datetime | None = None


@dataclass(frozen=True)
class Redirect:
    """Where to send the parent, and the provider's reference of the operation (if any)."""

    url: str
    reference: str | None = None


@dataclass(frozen=True)
class PaymentForm:
    """For providers paid through a POSTed form: billing's page submits it to ``action``."""

    action: str
    fields: list[tuple[str, str]] = field(default_factory=list)


class Provider(Protocol):
    name: str

    def start(self, order: PaymentOrder) -> Redirect:
        """Open the payment at the provider; raises ProviderError."""

    def resume(self, order: PaymentOrder) -> str | None:
        """The URL of a payment already started (the same basket presented again), without
        opening another operation at the provider."""

    def parse(self, body: bytes, headers: dict[str, str]) -> Notification:
        """A verified notification; raises InvalidNotification (or ProviderError when the
        provider must be asked and does not answer)."""

    def check(self, order: PaymentOrder, notification: Notification) -> str | None:
        """Why a verified notification does not belong to ``order`` (wrong account, an
        operation we did not open...), or None when it does."""

    def poll(self, order: PaymentOrder) -> Notification | None:
        """The provider's answer for a payment still pending (reconciliation), or None."""


# --- config refs ------------------------------------------------------------------------------


def config_token(ref: str | None) -> str:
    """The part of the environment variables' names naming a ``payment_config_ref``: capitals,
    anything else than letters and digits as ``_`` (``payfip-jolieville`` → ``PAYFIP_JOLIEVILLE``).
    """
    return re.sub(r"[^A-Z0-9]+", "_", (ref or "").upper()).strip("_")


# --- payment ids in providers' references ----------------------------------------------------

_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SHORT_ID_LENGTH = 25  # 36**25 > 2**128


def short_id(payment_id: str) -> str:
    """A payment's UUID in 25 characters of [0-9A-Z] (for references limited to 30)."""
    number = uuid.UUID(payment_id).int
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits)).rjust(SHORT_ID_LENGTH, "0")


def from_short_id(value: str) -> str | None:
    """The payment id of :func:`short_id`'s answer; None for anything else."""
    if not re.fullmatch(r"[0-9A-Z]{25}", value or ""):
        return None
    number = int(value, 36)
    if number >= 1 << 128:
        return None
    return str(uuid.UUID(int=number))


def from_hex_id(value: str) -> str | None:
    """The payment id written as 32 hexadecimal digits (SystemPay's order id); None otherwise."""
    if not re.fullmatch(r"[0-9a-fA-F]{32}", value or ""):
        return None
    return str(uuid.UUID(hex=value))


def cents(value: str) -> Decimal:
    """``"2460"`` → ``Decimal("24.60")``; raises ValueError for anything but digits."""
    if not re.fullmatch(r"\d{1,12}", value or ""):
        raise ValueError(f"montant en centimes invalide : {value!r}")
    return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))
