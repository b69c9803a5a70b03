"""Which provider a payment uses, from the environment and the commune's settings.

- A commune whose settings (tenancy read model, ``accounts.commune.*``) name a
  ``payment_config_ref`` configured in the environment uses that configuration's provider:
  PayFiP when ``PAYFIP_<REF>_NUMCLI`` is set, SystemPay when ``SYSTEMPAY_<REF>_SITE_ID`` is
  (``<REF>``: the ref in capitals, other characters as ``_``). Credentials come from the
  environment only, never from the database or a request.
- Any other commune uses ``PAYMENT_PROVIDER``: ``simulator`` (the default in dev and test) or
  ``none`` (the default in production: no online payment there). The simulator is built, and
  its pages and callback answer, only in dev/test or when ``PAYMENT_PROVIDER=simulator`` is set
  explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.config import ConfigError, Settings

from . import payfip, systempay
from .base import Provider, config_token
from .simulator import SimulatorProvider, simulator_key

DEFAULTS = ("simulator", "none")


@dataclass
class PaymentProviders:
    default: str | None  # the provider of communes without their own configuration
    by_name: dict[str, Provider] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # config token -> provider name

    def kind_of(self, config_ref: str | None) -> str | None:
        """The provider configured for ``config_ref`` (None when the environment has none)."""
        return self.kinds.get(config_token(config_ref)) if config_ref else None

    def for_ref(self, config_ref: str | None) -> str | None:
        """The provider a commune with this ``payment_config_ref`` pays with; None: online
        payment is not offered there."""
        return self.kind_of(config_ref) or self.default


def load_providers(settings: Settings) -> PaymentProviders:
    """Every provider the environment configures; raises ConfigError listing every problem."""
    environ = dict(settings.extra)
    problems: list[str] = []
    given = (environ.get("PAYMENT_PROVIDER") or "").strip().lower()
    default = given or ("simulator" if settings.dev else "none")
    if default not in DEFAULTS:
        problems.append(
            f"PAYMENT_PROVIDER inconnu : {given!r} (simulator ou none ; PayFiP et SystemPay se "
            "configurent par commune : PAYFIP_<REF>_NUMCLI, SYSTEMPAY_<REF>_SITE_ID)")
    payfip_accounts = payfip.accounts_from_env(environ, problems)
    systempay_accounts = systempay.accounts_from_env(environ, problems)
    try:
        timeout = float(environ.get("PAYFIP_TIMEOUT") or 10)
    except ValueError:
        problems.append("PAYFIP_TIMEOUT doit être un nombre de secondes")
    for token in sorted(set(payfip_accounts) & set(systempay_accounts)):
        problems.append(f"la configuration de paiement {token} est à la fois PayFiP et "
                        "SystemPay")
    if problems:
        raise ConfigError(problems)
    providers = PaymentProviders(default if default != "none" else None)
    if default == "simulator":
        providers.by_name["simulator"] = SimulatorProvider(simulator_key(settings),
                                                           settings.public_url)
    if payfip_accounts:
        providers.by_name["payfip"] = payfip.PayFiPProvider(payfip_accounts, settings.public_url,
                                                            timeout=timeout)
        providers.kinds.update(dict.fromkeys(payfip_accounts, "payfip"))
    if systempay_accounts:
        providers.by_name["systempay"] = systempay.SystemPayProvider(systempay_accounts,
                                                                     settings.public_url)
        providers.kinds.update(dict.fromkeys(systempay_accounts, "systempay"))
    return providers


def providers_from_settings(settings: Settings) -> tuple[str, dict[str, Provider]]:
    """The default provider's name (``none`` when online payment needs a commune's own
    configuration) and every provider that may be used or call back."""
    providers = load_providers(settings)
    return providers.default or "none", providers.by_name
