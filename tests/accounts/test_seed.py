"""The demo data of DESIGN section 7, created once."""

from __future__ import annotations

from services.accounts.seed import demo_id, seed
from tests.accounts.support import CASSEREAU, DAMMARTIN, JOLIEVILLE


def test_the_seed_publishes_the_cassereau_household_once(accounts):
    snapshot = accounts.last("accounts.family.updated")["data"]
    assert snapshot["family_id"] == CASSEREAU
    assert [c["commune_id"] for c in snapshot["communes"]] == [JOLIEVILLE, DAMMARTIN]
    assert [c["family_code"] for c in snapshot["communes"]] == ["JV7CASSE", "DM7CASSE"]
    assert [(c["first_name"], c["id"]) for c in snapshot["children"]] == [
        ("Léa", demo_id("child", "CASSEREAU:Léa")), ("Hugo", demo_id("child", "CASSEREAU:Hugo"))]
    assert snapshot["children"][1]["allergies"] is True
    assert [g["pays"] for g in snapshot["guardians"]] == [True, False]
    assert len(accounts.events("accounts.membership.created")) == 2

    before = accounts.events()
    assert seed(accounts.db) == []
    assert accounts.events() == before
