"""The rules, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.accounts import domain


def test_password_length_and_no_composition_rules():
    assert domain.password_problems("a" * 11 + "b") == [domain.TOO_COMMON]  # two characters
    assert domain.password_problems("onze carac.") == ["Au moins 12 caractères."]
    assert domain.password_problems("x" * 1025) == ["Au plus 1024 caractères."]
    assert domain.password_problems("tout simplement des mots") == []
    assert domain.password_problems("ünïcødé ☃ ok ça marche") == []
    assert domain.password_problems("é" * 5 + "abcdefg") == []


@pytest.mark.parametrize("password", [
    "motdepasse123", "MotDePasse123", "azertyuiop123", "jetaime123456", "marseille2024",
    "123456789012", "qwertyuiop123", "passwordpassword", "iloveyou1234", "soleilsoleil",
    "aaaaaaaaaaaa", "abcdefghijkl", " motdepasse123 ",
])
def test_common_passwords_are_refused(password):
    assert domain.password_problems(password) == [
        "Ce mot de passe est trop courant : choisissez-en un autre."]


def test_the_common_password_list():
    common = domain.common_passwords()
    assert len(common) >= 3000
    for french in ("motdepasse", "azertyuiop", "soleil", "doudou", "marseille",
                   "jetaime123456", "123456", "password"):
        assert french in common
    assert all(p == p.lower() for p in common)
    assert sum(len(p) >= 12 for p in common) >= 500
    assert "portail-demo" not in common


def test_the_email_is_not_a_password():
    assert domain.password_problems("Jean.Dupont@exemple.fr", "jean.dupont@exemple.fr") == [
        domain.IS_EMAIL]
    assert domain.password_problems("jean.dupont.1984", "jean.dupont.1984@exemple.fr") == [
        domain.IS_EMAIL]
    assert domain.password_problems("jean.dupont.1984!", "jean.dupont.1984@exemple.fr") == []


def test_hashes_are_argon2id_and_verify():
    hashed = domain.hash_password("un mot de passe assez long")
    assert hashed.startswith("$argon2id$")
    assert domain.verify_password(hashed, "un mot de passe assez long")
    assert not domain.verify_password(hashed, "un autre")
    assert not domain.verify_password(None, "un mot de passe assez long")
    assert not domain.verify_password("pas un hash", "x")


def test_tokens():
    raw, digest = domain.new_token()
    assert len(raw) >= 43 and domain.plausible_token(raw)
    assert digest == domain.token_hash(raw) and len(digest) == 64 and raw not in digest
    assert not domain.plausible_token("../../etc") and not domain.plausible_token("")
    now = datetime.now(UTC)
    assert domain.token_state(now + timedelta(seconds=1), None, now) == "valid"
    assert domain.token_state(now, None, now) == "expired"
    assert domain.token_state(now + timedelta(days=1), now, now) == "used"
    assert domain.activation_ttl(None) == timedelta(days=7)
    assert domain.activation_ttl("3") == timedelta(days=3)
    assert domain.activation_ttl("abc") == timedelta(days=7)
    assert domain.activation_ttl("0") == timedelta(days=7)


def test_family_codes_avoid_ambiguous_characters():
    codes = {domain.new_family_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(len(c) == 8 and not set(c) & set("0O1I") for c in codes)
    assert domain.normalise_family_code(" ab2c-d3ef ") == "AB2CD3EF"


def test_sort_and_search_keys():
    assert domain.sort_key("  Éloïse ") == "eloise"
    assert domain.search_text("Durand", [{"first_name": "Zoé", "last_name": "Durand"}]) == \
        "durand | zoe durand"


def test_cursors_round_trip_and_refuse_garbage():
    cursor = domain.encode_cursor(["dupont", "id-1"])
    assert domain.decode_cursor(cursor, 2) == ["dupont", "id-1"]
    for bad in ("", "!!!", domain.encode_cursor(["a"]), domain.encode_cursor([1, 2])):
        with pytest.raises(domain.RuleError):
            domain.decode_cursor(bad, 2)


CURRENT = {
    "family_name": "CASSEREAU",
    "address": {"line1": "1 rue", "line2": None, "postal_code": "77000", "city": "X"},
    "guardians": [
        {"id": "g1", "first_name": "Marie", "last_name": "C", "relation": "mère",
         "email": "m@x.fr", "phones": ["0600000000"], "pays": True},
        {"id": "g2", "first_name": "Paul", "last_name": "C", "relation": None, "email": None,
         "phones": [], "pays": False},
    ],
    "children": [{"id": "c1", "first_name": "Léa", "last_name": "C",
                  "birth_date": date(2017, 3, 14), "school": None, "class_name": "CM1",
                  "allergies": False, "allergy_notes": None}],
}


def test_a_profile_change_lists_only_what_differs():
    change = domain.plan_profile_change(CURRENT, {"guardians": [
        {"id": "g1", "phones": ["0600000000"], "pays": False},
        {"id": "g2", "pays": True, "email": "p@x.fr"}]})
    assert change.guardians == {"g1": {"pays": False}, "g2": {"pays": True, "email": "p@x.fr"}}
    assert domain.plan_profile_change(CURRENT, {"children": [
        {"id": "c1", "first_name": "Léa ", "birth_date": date(2017, 3, 14)}]}).empty


def test_a_profile_change_refuses_what_needs_a_proof():
    with pytest.raises(domain.RuleError) as refused:
        domain.plan_profile_change(CURRENT, {
            "address": {"line1": "2 rue", "postal_code": "77000", "city": "X"},
            "children": [{"id": "c1", "allergies": True}],
            "family_name": "AUTRE",
            "guardians": [{"id": "g9", "phones": []}],
        })
    assert set(refused.value.errors) == {"address", "children", "family_name", "guardians.0.id"}
    with pytest.raises(domain.RuleError) as no_payer:
        domain.plan_profile_change(CURRENT, {"guardians": [{"id": "g1", "pays": False}]})
    assert no_payer.value.errors == {"guardians": [domain.NO_PAYER]}


def test_commune_settings_merge():
    merged = domain.merge_commune_settings({"timezone": "Europe/Paris", "modules": ["invoices"],
                                            "contact_email": "a@b.fr", "phone": None,
                                            "address": None},
                                           {"modules": ["requests", "requests"]})
    assert merged["modules"] == ["requests"] and merged["contact_email"] == "a@b.fr"
