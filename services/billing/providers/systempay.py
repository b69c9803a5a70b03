"""SystemPay (Lyra's form protocol, also sold as PayZen or Sogecommerce), through eopayment's
``systempayv2`` backend: the signed-callback provider.

The parent's browser goes to billing's page ``/payments/redirect/{payment_id}``, which POSTs a
form of ``vads_`` fields to the shop's payment page. At the end SystemPay POSTs its instant
payment notification (the same kind of ``vads_`` form, with ``signature``) to
``/payments/callback/systempay``. The signature is HMAC-SHA-256 (base64) of the values of the
``vads_`` fields sorted by name, joined with ``+``, followed by ``+`` and the key, computed with
the key of the shop the notification names (``vads_site_id``) in the mode it names
(``vads_ctx_mode``, which must be the configured one) and compared in constant time. Our
payment id travels as ``vads_order_id`` (32 hexadecimal digits).

Configuration per ``payment_config_ref`` (see :mod:`.registry`): ``SYSTEMPAY_<REF>_SITE_ID``
(the shop id, 8 digits), ``SYSTEMPAY_<REF>_KEY`` (the key of the mode used),
``SYSTEMPAY_<REF>_MODE`` (``TEST`` or ``PRODUCTION``), optionally ``SYSTEMPAY_<REF>_URL`` (the
payment page of another Lyra platform, e.g. PayZen's).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from eopayment import common as eo
from eopayment import systempayv2

from .base import (
    InvalidNotification,
    Notification,
    PaymentForm,
    PaymentOrder,
    ProviderError,
    Redirect,
    cents,
    config_token,
    from_hex_id,
)

SERVICE_URL = systempayv2.Payment.service_url  # https://paiement.systempay.fr/vads-payment/
MODES = ("TEST", "PRODUCTION")
RESULTS = {eo.PAID: "paid", eo.DENIED: "denied", eo.CANCELLED: "cancelled"}
# vads_trans_status, when given: money is taken only when both it and vads_result say so
TRANS_STATUSES = {"AUTHORISED": "paid", "CAPTURED": "paid", "ACCEPTED": "paid",
                  "REFUSED": "denied", "ABANDONED": "cancelled", "CANCELLED": "cancelled",
                  "EXPIRED": "expired"}
EURO = "978"


@dataclass(frozen=True)
class SystemPayAccount:
    ref: str
    site_id: str
    key: str = ""
    mode: str = "TEST"
    url: str = SERVICE_URL

    def __repr__(self) -> str:  # never print the key
        return f"SystemPayAccount(ref={self.ref!r}, site_id={self.site_id!r}, mode={self.mode!r})"


def accounts_from_env(environ: dict[str, str],
                      problems: list[str]) -> dict[str, SystemPayAccount]:
    """Every ``SYSTEMPAY_<REF>_SITE_ID`` with its key, mode and optional URL."""
    accounts: dict[str, SystemPayAccount] = {}
    for name, value in sorted(environ.items()):
        match = re.fullmatch(r"SYSTEMPAY_([A-Z0-9_]+)_(SITE_ID|KEY|MODE|URL)", name)
        if not match:
            continue
        token, what = match.groups()
        if what != "SITE_ID":
            if f"SYSTEMPAY_{token}_SITE_ID" not in environ:
                problems.append(f"{name} est donné sans SYSTEMPAY_{token}_SITE_ID")
            continue
        site_id = (value or "").strip()
        key = (environ.get(f"SYSTEMPAY_{token}_KEY") or "").strip()
        mode = (environ.get(f"SYSTEMPAY_{token}_MODE") or "").strip().upper()
        url = (environ.get(f"SYSTEMPAY_{token}_URL") or "").strip() or SERVICE_URL
        before = len(problems)
        if not re.fullmatch(r"\d{8}", site_id):
            problems.append(f"{name} doit être l'identifiant de boutique à 8 chiffres "
                            f"(reçu {value!r})")
        if not key:
            problems.append(f"SYSTEMPAY_{token}_KEY est obligatoire (clé du mode utilisé)")
        elif not key.isalnum():
            problems.append(f"SYSTEMPAY_{token}_KEY doit être la clé alphanumérique donnée "
                            "par le back-office")
        if mode not in MODES:
            problems.append(f"SYSTEMPAY_{token}_MODE doit valoir TEST ou PRODUCTION "
                            f"(reçu {mode!r})")
        if urlsplit(url).scheme != "https":
            problems.append(f"SYSTEMPAY_{token}_URL doit être une adresse https")
        if len(problems) == before:
            accounts[token] = SystemPayAccount(token, site_id, key, mode, url)
    return accounts


class SystemPayProvider:
    name = "systempay"

    def __init__(self, accounts: dict[str, SystemPayAccount], public_url: str):
        self.accounts = accounts
        self.public_url = public_url.rstrip("/")
        self.notify_url = f"{self.public_url}/payments/callback/systempay"

    def account(self, config_ref: str | None) -> SystemPayAccount | None:
        return self.accounts.get(config_token(config_ref))

    def backend(self, account: SystemPayAccount, return_url: str | None = None
                ) -> systempayv2.Payment:
        return systempayv2.Payment({
            "vads_site_id": account.site_id,
            "vads_ctx_mode": account.mode,
            f"secret_{account.mode.lower()}": account.key,
            "signature_algo": "hmac_sha256",
            "service_url": account.url,
            "normal_return_url": return_url or "",
            "automatic_return_url": self.notify_url,
        })

    # the interface -------------------------------------------------------------------------------
    def start(self, order: PaymentOrder) -> Redirect:
        if self.account(order.config_ref) is None:
            raise ProviderError(f"aucune boutique SystemPay pour {order.config_ref!r}")
        return Redirect(self.resume(order))

    def resume(self, order: PaymentOrder) -> str:
        return f"{self.public_url}/payments/redirect/{order.payment_id}"

    def form(self, order: PaymentOrder) -> PaymentForm:
        """The signed form billing's page POSTs to the payment page (a new transaction id, and
        signature, each time the page is shown)."""
        account = self.account(order.config_ref)
        if account is None:
            raise ProviderError(f"aucune boutique SystemPay pour {order.config_ref!r}")
        info = re.sub(r"[<>]", "", order.description or "")[:255] or None
        _id, _kind, form = self.backend(account, order.return_url).request(
            order.amount, orderid=order.payment_id.replace("-", ""), info1=info,
            vads_return_mode="NONE")
        return PaymentForm(form.url, [(f["name"], str(f["value"])) for f in form.fields])

    def parse(self, body: bytes, headers: dict[str, str]) -> Notification:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidNotification("notification SystemPay illisible") from exc
        fields: dict[str, str] = {}
        for name, value in pairs:
            if name in fields:
                raise InvalidNotification(f"champ {name} répété")
            fields[name] = value
        given = fields.get("signature", "")
        site_id, mode = fields.get("vads_site_id", ""), fields.get("vads_ctx_mode", "")
        if not given or not site_id or not mode:
            raise InvalidNotification("notification SystemPay non signée")
        candidates = [a for a in self.accounts.values() if a.site_id == site_id]
        if not candidates:
            raise InvalidNotification(f"boutique SystemPay inconnue : {site_id!r}")
        account = next((a for a in candidates if a.mode == mode and hmac.compare_digest(
            self.backend(a).signature(fields).encode(), given.encode())), None)
        if account is None:
            raise InvalidNotification("signature SystemPay fausse (ou autre mode que celui "
                                      "configuré)")
        # Signed by the shop: now read it.
        if fields.get("vads_currency", EURO) != EURO:
            raise InvalidNotification("devise autre que l'euro")
        try:
            amount = cents(fields.get("vads_amount", ""))
        except ValueError as exc:
            raise InvalidNotification(f"montant SystemPay illisible : {exc}") from exc
        result, message = systempayv2.Payment.make_eopayment_result(dict(fields))
        status = RESULTS.get(result, "error")
        trans_status = fields.get("vads_trans_status")
        if trans_status:
            said = TRANS_STATUSES.get(trans_status, "waiting")
            if said != "paid":
                status = said
            elif status != "paid":
                status = "error"  # authorised, yet vads_result says otherwise
        reference = fields.get("vads_trans_uuid") or \
            f"{fields.get('vads_trans_date', '')}_{fields.get('vads_trans_id', '')}"
        return Notification(from_hex_id(fields.get("vads_order_id", "")) or "", status, amount,
                            reference, {**fields, "message": message},
                            account=account.site_id)

    def check(self, order: PaymentOrder, notification: Notification) -> str | None:
        account = self.account(order.config_ref)
        if account is None or account.site_id != notification.account or \
                account.mode != notification.raw.get("vads_ctx_mode"):
            return "rejected_account"  # signed by another commune's shop
        return None

    def poll(self, order: PaymentOrder) -> Notification | None:
        return None  # SystemPay retries its notification itself; no query is wired
