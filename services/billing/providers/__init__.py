"""Payment providers behind one interface (:mod:`.base`): the built-in simulator (dev and
tests), PayFiP (DGFiP, through eopayment) and SystemPay (signed callbacks, through eopayment);
:mod:`.registry` picks the provider of each commune from the environment.
"""

from .base import (
    REPORTED,
    InvalidNotification,
    Notification,
    PaymentForm,
    PaymentOrder,
    Provider,
    ProviderError,
    Redirect,
    config_token,
)
from .registry import PaymentProviders, load_providers, providers_from_settings
from .simulator import SIGNATURE_HEADER, SimulatorProvider, simulator_key

__all__ = [
    "REPORTED",
    "SIGNATURE_HEADER",
    "InvalidNotification",
    "Notification",
    "PaymentForm",
    "PaymentOrder",
    "PaymentProviders",
    "Provider",
    "ProviderError",
    "Redirect",
    "SimulatorProvider",
    "config_token",
    "load_providers",
    "providers_from_settings",
    "simulator_key",
]
