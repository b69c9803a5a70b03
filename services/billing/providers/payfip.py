"""PayFiP, the DGFiP's payment service for French public bodies, through eopayment's
``payfip_ws`` backend (its SOAP client, WSDL and result codes).

1. ``start``: the web service ``creerPaiementSecurise`` (numcli, saisie T/X/W, year, refdet,
   amount in cents, e-mail, notification and return URLs, object) answers an ``idop``; the
   parent pays at ``https://www.payfip.gouv.fr/tpa/paiementws.web?idop=…``. The idop is kept on
   the payment (its ``provider_reference``). Our ``refdet`` is the payment id in 25 characters.
2. PayFiP then POSTs ``idOp=…`` to ``/payments/callback/payfip``. That notification is **not
   signed**: billing believes nothing in it but the idop, and asks PayFiP
   (``recupererDetailPaiementSecurise``) for the operation's detail: refdet (our payment),
   amount, numcli, saisie and ``resultrans`` (P, V paid; R, Z refused; A abandoned). ``check``
   then requires the idop to be the one we opened for that payment, and the numcli and saisie
   to be the commune's: an operation opened by someone else (even for our refdet and amount, in
   test mode) is refused.
3. Reconciliation: ``poll`` asks the same for the idop kept on a payment whose notification
   never came; eopayment reads PayFiP's P5 ("no result yet") as still waiting during two hours,
   then expired, and P1 (idop unknown, cleaned at night) as expired.

Configuration per ``payment_config_ref`` (see :mod:`.registry`): ``PAYFIP_<REF>_NUMCLI`` (six
digits given by the DGFiP) and ``PAYFIP_<REF>_ENVIRONMENT`` (``test``, ``activation`` or
``production``: PayFiP's saisie T, X, W).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import requests
import zeep
from eopayment import common as eo
from eopayment import payfip_ws

from services.common.logging import get_logger

from .base import (
    InvalidNotification,
    Notification,
    PaymentOrder,
    ProviderError,
    Redirect,
    cents,
    config_token,
    from_short_id,
    short_id,
)

log = get_logger(__name__)

ENVIRONMENTS = {"test": "T", "activation": "X", "production": "W"}
MINIMAL = Decimal("1.00")  # PayFiP refuses less
MAXIMAL = Decimal("100000.00")
IDOP = re.compile(r"[A-Za-z0-9-]{1,64}")
STATUSES = {eo.PAID: "paid", eo.DENIED: "denied", eo.CANCELLED: "cancelled",
            eo.WAITING: "waiting", eo.EXPIRED: "expired", eo.ERROR: "error"}
DETAIL_FIELDS = ("idOp", "refdet", "montant", "numcli", "saisie", "resultrans")


@dataclass(frozen=True)
class PayFiPAccount:
    ref: str  # the config token (``PAYFIP_JOLIEVILLE``...)
    numcli: str
    saisie: str  # T | X | W


def accounts_from_env(environ: dict[str, str], problems: list[str]) -> dict[str, PayFiPAccount]:
    """Every ``PAYFIP_<REF>_NUMCLI`` with its ``PAYFIP_<REF>_ENVIRONMENT``."""
    accounts: dict[str, PayFiPAccount] = {}
    for name, value in sorted(environ.items()):
        match = re.fullmatch(r"PAYFIP_([A-Z0-9_]+)_(NUMCLI|ENVIRONMENT)", name)
        if not match:
            continue
        token, what = match.groups()
        if what == "ENVIRONMENT":
            if f"PAYFIP_{token}_NUMCLI" not in environ:
                problems.append(f"{name} est donné sans PAYFIP_{token}_NUMCLI")
            continue
        numcli = (value or "").strip()
        if not re.fullmatch(r"\d{6}", numcli):
            problems.append(f"{name} doit être le numéro client PayFiP à 6 chiffres "
                            f"(reçu {value!r})")
            continue
        environment = (environ.get(f"PAYFIP_{token}_ENVIRONMENT") or "").strip().lower()
        if environment not in ENVIRONMENTS:
            problems.append(f"PAYFIP_{token}_ENVIRONMENT doit valoir test, activation ou "
                            f"production (reçu {environment!r})")
            continue
        accounts[token] = PayFiPAccount(token, numcli, ENVIRONMENTS[environment])
    return accounts


class PayFiPProvider:
    name = "payfip"

    def __init__(self, accounts: dict[str, PayFiPAccount], public_url: str, *,
                 session: requests.Session | None = None, timeout: float = 10):
        self.accounts = accounts
        self.notify_url = f"{public_url.rstrip('/')}/payments/callback/payfip"
        self.session = session or requests.Session()  # pooled, closed with the process
        self.timeout = timeout
        self._service: payfip_ws.PayFiP | None = None
        self._lock = threading.Lock()

    # eopayment -----------------------------------------------------------------------------------
    @property
    def service(self) -> payfip_ws.PayFiP:
        """eopayment's SOAP client (WSDL shipped with eopayment), on our HTTP session."""
        with self._lock:
            if self._service is None:
                transport = zeep.Transport(session=self.session, timeout=self.timeout,
                                           operation_timeout=self.timeout)
                service = payfip_ws.PayFiP(zeep_client_kwargs={"transport": transport})
                service.client  # noqa: B018 - parse the WSDL once, under the lock
                self._service = service
            return self._service

    def backend(self, account: PayFiPAccount | None,
                return_url: str | None = None) -> payfip_ws.Payment:
        backend = payfip_ws.Payment({
            "numcli": account.numcli if account else "",
            "saisie": account.saisie if account else "T",
            "normal_return_url": return_url or "",
            "automatic_return_url": self.notify_url,
        })
        backend.payfip = self.service
        return backend

    def account(self, config_ref: str | None) -> PayFiPAccount | None:
        return self.accounts.get(config_token(config_ref))

    # the interface -------------------------------------------------------------------------------
    def start(self, order: PaymentOrder) -> Redirect:
        account = self.account(order.config_ref)
        if account is None:
            raise ProviderError(f"aucun compte PayFiP pour {order.config_ref!r}")
        if not MINIMAL <= order.amount <= MAXIMAL:
            raise ProviderError("PayFiP n'accepte que les paiements de 1,00 € à 100 000,00 €.",
                                status=422)
        if not order.email:
            raise ProviderError("PayFiP demande l'adresse e-mail du payeur.", status=422)
        try:
            idop, _kind, url = self.backend(account, order.return_url).request(
                order.amount, email=order.email, refdet=short_id(order.payment_id),
                subject=order.description or None, timeout=self.timeout)
        except ValueError as exc:  # eopayment's checks (e-mail, amount)
            raise ProviderError(f"PayFiP refuse la demande : {exc}", status=422) from exc
        except eo.PaymentException as exc:
            log.warning("payfip_start_failed", payment_id=order.payment_id, error=str(exc))
            raise ProviderError(f"PayFiP ne répond pas : {exc}") from exc
        return Redirect(url, str(idop))

    def resume(self, order: PaymentOrder) -> str | None:
        return f"{payfip_ws.PAYMENT_URL}?idop={order.reference}" if order.reference else None

    def parse(self, body: bytes, headers: dict[str, str]) -> Notification:
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise InvalidNotification("notification PayFiP illisible") from exc
        given = [v for key, values in fields.items() if key.lower() == "idop" for v in values]
        if len(given) != 1 or not IDOP.fullmatch(given[0]):
            raise InvalidNotification("notification PayFiP sans idOp lisible")
        idop = given[0]
        # Not signed: only PayFiP's own answer about this idop is believed.
        try:
            detail = self.service.get_info_paiement(idop, timeout=self.timeout)
        except payfip_ws.PayFiPError as exc:
            if exc.code in ("P1", "P5"):
                raise InvalidNotification(
                    f"PayFiP ne donne pas de résultat pour cet idOp ({exc.code})") from exc
            log.warning("payfip_detail_failed", idop=idop, error=str(exc))
            raise ProviderError(f"PayFiP ne répond pas : {exc}") from exc
        raw = _fields(detail)
        missing = [name for name in DETAIL_FIELDS if not raw.get(name)]
        if missing or raw["idOp"] != idop:
            raise InvalidNotification(f"réponse PayFiP incomplète ({', '.join(missing)})"
                                      if missing else "réponse PayFiP pour un autre idOp")
        return self._notification(idop, detail, raw)

    def check(self, order: PaymentOrder, notification: Notification) -> str | None:
        account = self.account(order.config_ref)
        if account is None:
            return "rejected_account"
        if not order.reference or notification.provider_reference != order.reference:
            return "rejected_reference"  # an operation billing did not open for this payment
        raw = notification.raw
        if "resultrans" in raw:
            if raw.get("numcli") != account.numcli:
                return "rejected_account"
            if raw.get("saisie") != account.saisie:
                return "rejected_mode"
        return None

    def poll(self, order: PaymentOrder) -> Notification | None:
        if not order.reference:
            return None
        try:
            answer = self.backend(self.account(order.config_ref)).payment_status(
                order.reference, transaction_date=order.created_at, timeout=self.timeout)
        except eo.PaymentException as exc:
            raise ProviderError(f"PayFiP ne répond pas : {exc}") from exc
        status = STATUSES.get(answer.result, "error")
        raw = {str(k): (None if v is None else str(v)) for k, v in
               (answer.bank_data or {}).items()}
        if raw.get("refdet"):
            return self._notification(order.reference, None, raw, status=status)
        # P5 (no result yet) or P1 (unknown idop): a status without money
        return Notification(order.payment_id, status, None, order.reference,
                            {"idOp": order.reference, "bank_status": answer.bank_status})

    # helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _notification(idop: str, detail: Any, raw: dict[str, Any],
                      status: str | None = None) -> Notification:
        if status is None:
            answer = payfip_ws.Payment.payfip_response_to_eopayment_response(idop, detail)
            status = STATUSES.get(answer.result, "error")
        try:
            amount: Decimal | None = cents(raw.get("montant") or "")
        except ValueError as exc:
            raise InvalidNotification(f"montant PayFiP illisible : {exc}") from exc
        payment_id = from_short_id(raw.get("refdet") or "") or ""
        return Notification(payment_id, status, amount, idop, raw)


def _fields(detail: Any) -> dict[str, Any]:
    return {str(key): (None if detail[key] is None else str(detail[key])) for key in detail}

