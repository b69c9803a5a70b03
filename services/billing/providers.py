"""Payment providers behind one interface, and the built-in simulator.

A provider turns a payment into the URL where the parent pays (``start``), and a notification
it sends to ``POST /payments/callback/{name}`` into a verified :class:`Notification`
(``parse``), refusing anything it cannot authenticate. Providers whose notifications are not
signed (PayFiP) verify by asking the provider for the result (``poll``), which is also what the
reconciliation loop calls for payments whose notification never came.

The simulator stands in for a bank's page in development and tests: its notifications are
signed with an HMAC-SHA256 of the raw body under ``PAYMENT_SIMULATOR_KEY`` (generated in the
data dir in dev), and its page's form carries a per-payment token under the same key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from services.common.config import ConfigError, Settings

SIGNATURE_HEADER = "X-Simulator-Signature"
REPORTED = ("paid", "denied", "cancelled", "error")


class InvalidNotification(Exception):
    """A notification that cannot be trusted (bad signature, garbled): it changes nothing."""


@dataclass(frozen=True)
class Notification:
    payment_id: str
    status: str  # paid | denied | cancelled | error
    amount: Decimal
    provider_reference: str
    raw: dict[str, Any]


class Provider(Protocol):
    name: str

    def start(self, payment_id: str, amount: Decimal, description: str) -> str:
        """The URL where the parent pays."""

    def parse(self, body: bytes, headers: dict[str, str]) -> Notification:
        """A verified notification; raises InvalidNotification."""

    def poll(self, payment_id: str) -> Notification | None:
        """The provider's answer for a payment still pending (reconciliation), or None."""


class SimulatorProvider:
    name = "simulator"

    def __init__(self, key: bytes, public_url: str):
        self.key = key
        self.public_url = public_url.rstrip("/")

    def start(self, payment_id: str, amount: Decimal, description: str) -> str:
        return f"{self.public_url}/payments/simulator/{payment_id}"

    # the page's form ---------------------------------------------------------------------------
    def form_token(self, payment_id: str) -> str:
        return hmac.new(self.key, f"form:{payment_id}".encode(), hashlib.sha256).hexdigest()

    def check_form_token(self, payment_id: str, token: str) -> bool:
        return hmac.compare_digest(self.form_token(payment_id), token or "")

    # notifications -----------------------------------------------------------------------------
    def sign(self, body: bytes) -> str:
        return hmac.new(self.key, body, hashlib.sha256).hexdigest()

    def notification(self, payment_id: str, amount: Decimal,
                     status: str) -> tuple[bytes, dict[str, str]]:
        """What the simulated bank sends to the callback: a JSON body and its signature."""
        now = datetime.now(UTC)
        body = json.dumps({
            "payment_id": payment_id,
            "status": status,
            "amount": f"{amount:.2f}",
            "reference": f"SIM-{now:%Y%m%d}-{secrets.token_hex(4).upper()}",
            "at": now.isoformat(),
        }, separators=(",", ":")).encode()
        return body, {SIGNATURE_HEADER: self.sign(body), "Content-Type": "application/json"}

    def parse(self, body: bytes, headers: dict[str, str]) -> Notification:
        given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()),
                     "")
        if not given or not hmac.compare_digest(self.sign(body), given):
            raise InvalidNotification("signature du simulateur absente ou fausse")
        try:
            raw = json.loads(body)
            status = str(raw["status"])
            amount = Decimal(str(raw["amount"]))
            notification = Notification(str(raw["payment_id"]), status, amount,
                                        str(raw.get("reference") or ""), raw)
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise InvalidNotification(f"notification illisible : {exc}") from exc
        if status not in REPORTED:
            raise InvalidNotification(f"résultat inconnu : {status}")
        return notification

    def poll(self, payment_id: str) -> Notification | None:
        return None  # the simulator always notifies


def simulator_key(settings: Settings) -> bytes:
    """``PAYMENT_SIMULATOR_KEY``; in dev, a key kept in the data dir; otherwise one derived
    from ``PORTAIL_SECRET_KEY`` (the simulator should not run in production anyway: set
    ``PAYMENT_PROVIDER``)."""
    configured = settings.extra.get("PAYMENT_SIMULATOR_KEY", "")
    if configured:
        return configured.encode()
    if not settings.dev:
        if not settings.secret_key:
            raise ConfigError(["PAYMENT_SIMULATOR_KEY est obligatoire pour le simulateur de "
                               "paiement hors mode dev"])
        return hmac.new(settings.secret_key.encode(), b"portail:payment-simulator",
                        hashlib.sha256).hexdigest().encode()
    path = Path(settings.data_dir) / "keys" / "payment-simulator.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def providers_from_settings(settings: Settings) -> tuple[str, dict[str, Provider]]:
    """The provider new payments use (``PAYMENT_PROVIDER``) and every provider that may still
    call back."""
    chosen = settings.extra.get("PAYMENT_PROVIDER", "") or "simulator"
    known: dict[str, Provider] = {}
    if chosen == "simulator" or settings.dev:
        known["simulator"] = SimulatorProvider(simulator_key(settings), settings.public_url)
    if chosen not in known:
        raise ConfigError([f"PAYMENT_PROVIDER inconnu : {chosen!r} (disponible : simulator)"])
    return chosen, known
