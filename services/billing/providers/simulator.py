"""The built-in payment simulator, standing in for a bank's page in development and tests.

Its notifications are signed with an HMAC-SHA256 of the raw body under ``PAYMENT_SIMULATOR_KEY``
(generated in the data dir in dev), and its page's form carries a per-payment token under the
same key. It is reachable in production only when ``PAYMENT_PROVIDER=simulator`` is set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from services.common.config import ConfigError, Settings

from .base import REPORTED, InvalidNotification, Notification, PaymentOrder, Redirect

SIGNATURE_HEADER = "X-Simulator-Signature"


class SimulatorProvider:
    name = "simulator"

    def __init__(self, key: bytes, public_url: str):
        self.key = key
        self.public_url = public_url.rstrip("/")
        # Where the simulated bank keeps what it decided (billing gives it a lookup into its
        # database: the provider itself knows none): payment id -> the signed notification
        # body, or None. Without it, ``poll`` has nothing to tell.
        self.decisions: Callable[[str], bytes | None] | None = None

    def start(self, order: PaymentOrder) -> Redirect:
        return Redirect(self.resume(order))

    def resume(self, order: PaymentOrder) -> str:
        return f"{self.public_url}/payments/simulator/{order.payment_id}"

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

    def check(self, order: PaymentOrder, notification: Notification) -> str | None:
        return None  # one key for every commune

    def poll(self, order: PaymentOrder) -> Notification | None:
        """What the simulated bank decided for this payment, as a real provider answers when
        asked: a notification that never arrived (dropped, or billing down when it was sent)
        is recovered by reconciliation. None: the parent never decided."""
        body = self.decisions(order.payment_id) if self.decisions is not None else None
        if body is None:
            return None
        return self.parse(body, {SIGNATURE_HEADER: self.sign(body)})


def simulator_key(settings: Settings) -> bytes:
    """``PAYMENT_SIMULATOR_KEY``; in dev, a key kept in the data dir; otherwise one derived
    from ``PORTAIL_SECRET_KEY`` (in production the simulator runs only when
    ``PAYMENT_PROVIDER=simulator`` is set explicitly)."""
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

