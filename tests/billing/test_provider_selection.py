"""Which provider a payment uses: the commune's own configuration (``payment_config_ref``,
credentials from the environment), else ``PAYMENT_PROVIDER``; never the simulator in production
unless asked for by name; every configuration problem reported at start, at once."""

from __future__ import annotations

import uuid

import pytest

from services.billing.operations import Billing
from services.billing.providers import config_token, load_providers
from services.billing.providers.base import from_hex_id, from_short_id, short_id
from services.common.config import ConfigError, Settings
from tests.billing.support import (
    AGENT,
    DAMMARTIN_AGENT,
    EXAMPLES,
    FAMILY,
    PARENT,
    PUBLIC_URL,
    RETURN_URL,
    build,
    event,
)

SYSTEMPAY = {
    "SYSTEMPAY_SYSTEMPAY_JOLIEVILLE_SITE_ID": "12345678",
    "SYSTEMPAY_SYSTEMPAY_JOLIEVILLE_KEY": "hUFp1dVmqJ7cP3iq",
    "SYSTEMPAY_SYSTEMPAY_JOLIEVILLE_MODE": "TEST",
}


def settings(env: str = "dev", **extra: str) -> Settings:
    return Settings(service="billing", env=env, secret_key="s" * 40, public_url=PUBLIC_URL,
                    extra=extra)


def name_ref(billing, ref: str | None) -> None:
    data = {**EXAMPLES["accounts.commune.created"], "version": 2,
            "settings": {**EXAMPLES["accounts.commune.created"]["settings"],
                         "payment_config_ref": ref}}
    billing.handle(event("accounts.commune.updated", data=data))


def pay(billing, slug: str, agent=AGENT):
    bill = billing.post(f"/api/billing/communes/{slug}/invoices", agent, json={
        "family_id": FAMILY, "lines": [{"label": "Divers", "unit_price": "12.00"}]})
    assert bill.status_code == 201, bill.get_json()
    return billing.post("/api/billing/payments", PARENT, json={
        "invoice_ids": [bill.get_json()["id"]], "return_url": RETURN_URL})


# --- names and ids ------------------------------------------------------------------------------


def test_config_refs_and_payment_ids_in_provider_references():
    assert config_token("payfip-jolieville") == "PAYFIP_JOLIEVILLE"
    assert config_token(" Dammartin sur Tigeaux ") == "DAMMARTIN_SUR_TIGEAUX"
    for value in ("00000000-0000-4000-8000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffff"
                  "ff", *(str(uuid.uuid4()) for _ in range(50))):
        short = short_id(value)
        assert len(short) == 25 and short.isalnum() and short.upper() == short
        assert from_short_id(short) == value
        assert from_hex_id(value.replace("-", "")) == value
    assert from_short_id("NOTOURS") is None
    assert from_short_id("Z" * 25) is None  # beyond 128 bits
    assert from_hex_id("not hex") is None


# --- the environment ----------------------------------------------------------------------------


def test_the_simulator_exists_in_production_only_when_named():
    dev = load_providers(settings("dev"))
    assert dev.default == "simulator" and set(dev.by_name) == {"simulator"}
    production = load_providers(settings("production"))
    assert production.default is None and production.by_name == {}
    named = load_providers(settings("production", PAYMENT_PROVIDER="simulator"))
    assert named.default == "simulator" and set(named.by_name) == {"simulator"}
    off = load_providers(settings("dev", PAYMENT_PROVIDER="none"))
    assert off.default is None and off.by_name == {}
    both = load_providers(settings("production", PAYFIP_JV_NUMCLI="123456",
                                   PAYFIP_JV_ENVIRONMENT="production", **SYSTEMPAY))
    assert set(both.by_name) == {"payfip", "systempay"}
    assert both.for_ref("jv") == "payfip"
    assert both.for_ref("systempay-jolieville") == "systempay"
    assert both.for_ref("nowhere") is None and both.for_ref(None) is None
    assert load_providers(settings("dev", **SYSTEMPAY)).for_ref("nowhere") == "simulator"


def test_every_configuration_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        load_providers(settings(
            "production", PAYMENT_PROVIDER="payfip",
            PAYFIP_A_NUMCLI="12", PAYFIP_A_ENVIRONMENT="test",
            PAYFIP_B_NUMCLI="123456",
            PAYFIP_C_ENVIRONMENT="production",
            SYSTEMPAY_D_SITE_ID="1234", SYSTEMPAY_D_MODE="LIVE",
            SYSTEMPAY_E_KEY="abc",
            PAYFIP_F_NUMCLI="123456", PAYFIP_F_ENVIRONMENT="test",
            SYSTEMPAY_F_SITE_ID="12345678", SYSTEMPAY_F_KEY="k1", SYSTEMPAY_F_MODE="TEST",
            SYSTEMPAY_G_SITE_ID="12345678", SYSTEMPAY_G_KEY="k2", SYSTEMPAY_G_MODE="TEST",
            SYSTEMPAY_G_URL="http://paiement.example/"))
    problems = raised.value.problems
    assert any(p.startswith("PAYMENT_PROVIDER inconnu : 'payfip'") for p in problems)
    assert any(p.startswith("PAYFIP_A_NUMCLI doit être le numéro client") for p in problems)
    assert any(p.startswith("PAYFIP_B_ENVIRONMENT doit valoir test") for p in problems)
    assert "PAYFIP_C_ENVIRONMENT est donné sans PAYFIP_C_NUMCLI" in problems
    assert any(p.startswith("SYSTEMPAY_D_SITE_ID doit être l'identifiant") for p in problems)
    assert "SYSTEMPAY_D_KEY est obligatoire (clé du mode utilisé)" in problems
    assert any(p.startswith("SYSTEMPAY_D_MODE doit valoir TEST ou PRODUCTION") for p in problems)
    assert "SYSTEMPAY_E_KEY est donné sans SYSTEMPAY_E_SITE_ID" in problems
    assert "la configuration de paiement F est à la fois PayFiP et SystemPay" in problems
    assert "SYSTEMPAY_G_URL doit être une adresse https" in problems
    assert not any("k1" in p or "k2" in p for p in problems)  # keys never printed


def test_a_wrong_configuration_stops_the_service_at_start(tmp_path):
    with pytest.raises(ConfigError):
        build(tmp_path, f"sqlite:///{tmp_path}/b.db", PAYFIP_X_NUMCLI="not a numcli")


# --- per commune --------------------------------------------------------------------------------


def test_each_commune_pays_with_its_own_provider(tmp_path):
    billing = build(tmp_path, f"sqlite:///{tmp_path}/b.db", **SYSTEMPAY)
    try:
        # jolieville's settings name "payfip-jolieville", configured nowhere: the default
        jolieville = pay(billing, "jolieville")
        assert jolieville.status_code == 201, jolieville.get_json()
        assert "/payments/simulator/" in jolieville.get_json()["payment_url"]
        name_ref(billing, "systempay-jolieville")
        jolieville = pay(billing, "jolieville")
        assert "/payments/redirect/" in jolieville.get_json()["payment_url"]
        dammartin = pay(billing, "dammartin", DAMMARTIN_AGENT)  # names none: the default
        assert "/payments/simulator/" in dammartin.get_json()["payment_url"]
        providers = [billing.get(f"/api/billing/payments/{p.get_json()['payment_id']}",
                                 AGENT if p is jolieville else DAMMARTIN_AGENT
                                 ).get_json()["provider"] for p in (jolieville, dammartin)]
        assert providers == ["systempay", "simulator"]
        # a SystemPay payment has no simulator page, a simulator payment no SystemPay form
        systempay_id = jolieville.get_json()["payment_id"]
        assert billing.get(f"/payments/simulator/{systempay_id}").status_code == 404
        assert billing.get(f"/payments/redirect/{dammartin.get_json()['payment_id']}"
                           ).status_code == 404
    finally:
        billing.db.dispose()


def test_in_production_without_a_provider_the_simulator_is_unreachable(tmp_path):
    billing = build(tmp_path, f"sqlite:///{tmp_path}/b.db")
    try:
        dev_payment = pay(billing, "jolieville").get_json()["payment_id"]
        billing.app.extensions["billing"] = Billing.of(billing.db,
                                                       settings("production", **SYSTEMPAY))
        refused = pay(billing, "jolieville")  # its ref is configured nowhere, no default
        assert refused.status_code == 422
        assert "mairie" in refused.get_json()["detail"]
        assert billing.get(f"/payments/simulator/{dev_payment}").status_code == 404
        forged = billing.client().post("/payments/callback/simulator", json={
            "payment_id": dev_payment, "status": "paid", "amount": "12.00"})
        assert forged.status_code == 404
        name_ref(billing, "systempay-jolieville")
        allowed = pay(billing, "jolieville")
        assert allowed.status_code == 201
        assert allowed.get_json()["payment_url"].startswith(f"{PUBLIC_URL}/payments/redirect/")
    finally:
        billing.db.dispose()
