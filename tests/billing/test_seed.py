"""The demo data: tariffs and past invoices of the CASSEREAU household; idempotent."""

from __future__ import annotations

import uuid

from services.billing.seed import demo_id, seed
from services.common.auth import Principal
from tests.billing.support import build, event

NAMESPACE = uuid.UUID("6f0b8a4e-6d43-4c36-9b62-6a1f0c2f3e11")
SLUG = "demo-jolieville"  # the tests' own jolieville has another id


def test_seed_is_idempotent_and_shows_an_open_and_a_paid_invoice(tmp_path):
    billing = build(tmp_path, f"sqlite:///{tmp_path}/seed.db")
    try:
        created = seed(billing.db)
        assert "tarifs jolieville" in created
        assert any(c.startswith("facture payée") for c in created)
        assert any(c.startswith("facture à payer") for c in created)
        assert seed(billing.db) == []
        assert demo_id("commune", "jolieville") == str(uuid.uuid5(NAMESPACE,
                                                                  "commune:jolieville"))
        commune_id = demo_id("commune", "jolieville")
        billing.handle(event("accounts.commune.created", commune_id=commune_id, data={
            "commune_id": commune_id, "slug": SLUG, "name": "JolieVille Test",
            "settings": {"modules": ["invoices"]}}))
        parent = Principal(account_id=demo_id("account", "parent@famille.test"),
                           family_id=demo_id("family", "CASSEREAU"),
                           communes={SLUG: {"id": commune_id, "roles": ["parent"]}})
        base = f"/api/billing/communes/{SLUG}"
        assert billing.get(f"{base}/invoices?status=open", parent).get_json()["items"]
        (paid,) = billing.get(f"{base}/invoices?status=paid", parent).get_json()["items"]
        detail = billing.get(f"/api/billing/invoices/{paid['id']}", parent).get_json()
        assert detail["lines"][0]["detail"] == "6 jours 24,60\u00a0€"
        assert detail["label"].startswith("Facture du 01/")
        assert paid["reference"].endswith("-JOL-000001")
        agent = Principal(account_id="a", communes={SLUG: {"id": commune_id,
                                                           "roles": ["agent"]}})
        tariffs = billing.get(f"{base}/tariffs", agent).get_json()["items"]
        codes = {t["activity_code"]: t for t in tariffs}
        assert codes["REPAS"]["brackets"][-1] == {"max_quotient": None, "price": "4.10"}
        assert codes["MATIN"]["unit_price"] == "2.50"
        # The same ids as the activities reservations seeds (one key per commune and code).
        assert codes["MERCREDI"]["activity_id"] == demo_id(
            "activity", "jolieville:MERCREDI")
    finally:
        billing.db.dispose()
