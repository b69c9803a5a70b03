"""Activation links: shown, used once (even under concurrency), expired, renewed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from services.accounts.models import Token
from tests.accounts.support import (
    STRONG,
    activate,
    create_household,
    login_claims,
    token_of,
)

ACTIVATION = "/api/accounts/activation"


def expire_tokens(accounts, kind: str = "activation") -> None:
    with accounts.db.transaction() as session:
        session.execute(update(Token).where(Token.kind == kind).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))


def test_the_link_shows_the_household_to_check(accounts):
    created = create_household(accounts)
    response = accounts.get(f"{ACTIVATION}/{created['token']}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "valid"
    assert body["email"] == "martin@exemple.fr"
    assert body["family_name"] == "MARTIN"
    assert [c["first_name"] for c in body["children"]] == ["Zoé", "Noé"]
    assert [g["first_name"] for g in body["guardians"]] == ["Claire", "Marc"]
    assert body["expires_at"].endswith("+00:00")


def test_an_unknown_link_is_404_in_french(accounts):
    for token in ("x" * 43, "court", "a" * 300):
        response = accounts.get(f"{ACTIVATION}/{token}")
        assert response.status_code == 404
        assert "lien n'est pas valable" in response.get_json()["detail"]


def test_activation_sets_the_password_once(accounts):
    created = create_household(accounts)
    assert login_claims(accounts, "martin@exemple.fr", STRONG) is None  # invited: no login
    response = activate(accounts, created["token"])
    assert response.status_code == 200
    assert response.get_json()["status"] == "active"
    assert response.get_json()["family_id"] == created["id"]
    claims = login_claims(accounts, "martin@exemple.fr", STRONG)
    assert claims["family_id"] == created["id"]
    assert claims["communes"]["jolieville"]["roles"] == ["parent"]

    activated = accounts.last("accounts.family.activated")["data"]
    assert activated == {"family_id": created["id"], "email": "martin@exemple.fr",
                         "account_id": claims["account_id"]}

    again = activate(accounts, created["token"], "un autre mot de passe solide")
    assert again.status_code == 410
    assert again.get_json()["status"] == "used"
    assert "déjà servi" in again.get_json()["detail"]
    shown = accounts.get(f"{ACTIVATION}/{created['token']}")
    assert shown.status_code == 410 and shown.get_json()["status"] == "used"
    assert login_claims(accounts, "martin@exemple.fr", STRONG) is not None
    assert len(accounts.events("accounts.family.activated")) == 1


def test_an_expired_link_says_so_and_offers_a_new_one(accounts):
    created = create_household(accounts)
    expire_tokens(accounts)
    shown = accounts.get(f"{ACTIVATION}/{created['token']}")
    assert shown.status_code == 410
    assert shown.mimetype == "application/problem+json"
    assert shown.get_json()["status"] == "expired"
    assert "expiré" in shown.get_json()["detail"]
    refused = activate(accounts, created["token"])
    assert refused.status_code == 410 and refused.get_json()["status"] == "expired"
    assert login_claims(accounts, "martin@exemple.fr", STRONG) is None

    renewed = accounts.post(f"{ACTIVATION}/renew", json={"token": created["token"]})
    assert renewed.status_code == 202
    invitations = accounts.events("accounts.family.invited")
    assert len(invitations) == 2
    fresh = token_of(invitations[-1]["data"]["activation_url"])
    assert invitations[-1]["data"]["commune_slug"] == "jolieville"
    assert invitations[-1]["data"]["family_code"] == created["family_code"]
    assert activate(accounts, fresh).status_code == 200


def test_renew_always_answers_the_same(accounts):
    created = create_household(accounts)
    activate(accounts, created["token"])
    before = len(accounts.events("accounts.family.invited"))
    answers = [accounts.post(f"{ACTIVATION}/renew", json={"token": token})
               for token in (created["token"], "y" * 43, "bad")]
    assert {a.status_code for a in answers} == {202}
    assert len({a.get_data() for a in answers}) == 1
    assert len(accounts.events("accounts.family.invited")) == before  # used: nothing sent
    assert accounts.post(f"{ACTIVATION}/renew", json={}).status_code == 422


def test_two_simultaneous_activations_only_one_wins(accounts):
    created = create_household(accounts)
    assert_single_winner(accounts, created["token"])


def assert_single_winner(accounts, token: str) -> None:
    barrier = threading.Barrier(4)
    results: list[int] = []

    def attempt(i: int) -> None:
        client = accounts.client()
        barrier.wait()
        response = client.post(ACTIVATION, json={"token": token,
                                                 "password": f"{STRONG} numéro {i}"})
        results.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [200, 410, 410, 410]
    assert len(accounts.events("accounts.family.activated")) == 1
    winners = [i for i in range(4)
               if login_claims(accounts, "martin@exemple.fr", f"{STRONG} numéro {i}")]
    assert len(winners) == 1


def test_the_password_policy_applies_at_activation(accounts):
    created = create_household(accounts)
    cases = {
        "court": "Au moins 12 caractères.",
        "x" * 1025: "Au plus 1024 caractères.",
        "motdepasse123": "Ce mot de passe est trop courant : choisissez-en un autre.",
        "AZERTYUIOP123": "Ce mot de passe est trop courant : choisissez-en un autre.",
        "martin@exemple.fr": "Le mot de passe ne doit pas être votre adresse e-mail.",
    }
    for password, message in cases.items():
        response = activate(accounts, created["token"], password)
        assert response.status_code == 422, password
        assert response.get_json()["errors"] == {"password": [message]}
    # Refusals do not spend the link; no composition rule stands in the way.
    assert activate(accounts, created["token"], "tout en minuscules sans chiffre").status_code \
        == 200


def test_an_activation_body_is_validated_in_french(accounts):
    response = accounts.post(ACTIVATION, json={"token": "abc"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"password": ["Ce champ est obligatoire."]}
    not_json = accounts.post(ACTIVATION, data="x", content_type="application/json")
    assert not_json.status_code in (400, 422)
