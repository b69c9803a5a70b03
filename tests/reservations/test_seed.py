"""The demo data: idempotent, with the ids accounts gives the same communes and children."""

from __future__ import annotations

from services.accounts.seed import demo_id as accounts_demo_id
from services.reservations.seed import HUGO, LEA, demo_id, seed
from tests.reservations.support import DAMMARTIN_REPAS, PARENT


def test_the_seed_is_idempotent(reservations):
    assert seed(reservations.db) == []


def test_ids_are_those_of_accounts():
    for kind, key in [("commune", "jolieville"), ("commune", "dammartin"),
                      ("family", "CASSEREAU"), ("child", "CASSEREAU:Léa"),
                      ("child", "CASSEREAU:Hugo")]:
        assert demo_id(kind, key) == accounts_demo_id(kind, key)
    assert accounts_demo_id("child", "CASSEREAU:Léa") == LEA
    assert accounts_demo_id("child", "CASSEREAU:Hugo") == HUGO


def test_dammartin_has_its_canteen_and_the_children_are_enrolled(reservations):
    r = reservations
    activities = r.get("dammartin/activities").get_json()["items"]
    assert [(a["code"], a["unit_price"], a["payment_mode"]) for a in activities] == [
        ("REPAS", "3.90", "monthly")]
    answer = r.get(f"dammartin/children/{HUGO}/calendar", PARENT,
                   query_string={"from": "2026-12-07", "to": "2026-12-07"})
    [cell] = answer.get_json()["days"][0]["activities"]
    assert cell["activity_id"] == DAMMARTIN_REPAS and cell["can_book"] is True
    enrolments = r.get("jolieville/enrolments", PARENT).get_json()["items"]
    assert sorted((e["child_first_name"], e["service_name"]) for e in enrolments) == [
        ("Hugo", "Accueil périscolaire"), ("Hugo", "Centre de loisirs"),
        ("Hugo", "Restauration scolaire"), ("Léa", "Accueil périscolaire"),
        ("Léa", "Centre de loisirs"), ("Léa", "Restauration scolaire"),
        ("Léa", "Étude surveillée")]
