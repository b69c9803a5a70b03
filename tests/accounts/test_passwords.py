"""Forgotten password (never revealing who is registered) and password change."""

from __future__ import annotations

from tests.accounts.support import (
    AGENT,
    PARENT,
    PUBLIC_URL,
    STRONG,
    create_household,
    login_claims,
    token_of,
)
from tests.accounts.test_activation import expire_tokens

RESET = "/api/accounts/password-reset"
DEMO = "portail-demo"


def request_link(accounts, email: str = "parent@famille.test") -> str:
    response = accounts.post(RESET, json={"email": email})
    assert response.status_code == 202
    return token_of(accounts.last("accounts.password_reset.requested")["data"]["reset_url"])


def test_a_reset_never_reveals_whether_the_email_exists(accounts):
    invited = create_household(accounts)  # invited, not active: no link either
    answers = {email: accounts.post(RESET, json={"email": email})
               for email in ("parent@famille.test", "inconnu@exemple.fr",
                             invited["email"], " PARENT@famille.test ")}
    assert {a.status_code for a in answers.values()} == {202}
    assert len({a.get_data() for a in answers.values()}) == 1
    assert len({a.headers.get("Content-Type") for a in answers.values()}) == 1
    sent = accounts.events("accounts.password_reset.requested")
    assert [e["data"]["email"] for e in sent] == ["parent@famille.test"] * 2
    data = sent[0]["data"]
    assert data["reset_url"].startswith(f"{PUBLIC_URL}/mot-de-passe/reinitialiser/")
    assert data["account_id"] == PARENT.account_id and data["family_id"] == PARENT.family_id
    assert data["expires_at"]
    assert accounts.post(RESET, json={"email": "nope"}).status_code == 422


def test_a_reset_link_sets_a_new_password_and_ends_the_other_links(accounts):
    first = request_link(accounts)
    second = request_link(accounts)
    shown = accounts.get(f"{RESET}/{second}")
    assert shown.status_code == 200
    assert shown.get_json()["status"] == "valid"
    assert shown.get_json()["email"] == "parent@famille.test"

    weak = accounts.post(f"{RESET}/confirm", json={"token": second, "password": "azertyuiop"})
    assert weak.status_code == 422
    assert weak.get_json()["errors"]["password"] == ["Au moins 12 caractères."]

    done = accounts.post(f"{RESET}/confirm", json={"token": second, "password": STRONG})
    assert done.status_code == 200
    assert done.headers["X-Portail-End-Other-Sessions"] == PARENT.account_id
    assert done.get_json()["account_id"] == PARENT.account_id
    assert login_claims(accounts, "parent@famille.test", STRONG) is not None
    assert login_claims(accounts, "parent@famille.test", DEMO) is None

    for token in (first, second):
        used = accounts.post(f"{RESET}/confirm", json={"token": token,
                                                         "password": STRONG + " encore"})
        assert used.status_code == 410 and used.get_json()["status"] == "used"
        assert accounts.get(f"{RESET}/{token}").get_json()["status"] == "used"


def test_an_expired_reset_link_is_gone(accounts):
    token = request_link(accounts)
    expire_tokens(accounts, "reset")
    response = accounts.post(f"{RESET}/confirm", json={"token": token, "password": STRONG})
    assert response.status_code == 410
    assert response.get_json()["status"] == "expired"
    assert "expiré" in response.get_json()["detail"]
    assert accounts.get(f"{RESET}/{'z' * 43}").status_code == 404


def test_an_activation_link_is_not_a_reset_link(accounts):
    invited = create_household(accounts)
    assert accounts.get(f"{RESET}/{invited['token']}").status_code == 404
    reset = request_link(accounts)
    assert accounts.get(f"/api/accounts/activation/{reset}").status_code == 404


def test_changing_the_password_needs_the_current_one(accounts):
    path = "/api/accounts/me/password"
    wrong = accounts.post(path, PARENT, json={"current_password": "pas le bon",
                                              "new_password": STRONG})
    assert wrong.status_code == 422
    assert wrong.get_json()["errors"] == {"current_password": ["Mot de passe actuel incorrect."]}
    assert "X-Portail-End-Other-Sessions" not in wrong.headers
    weak = accounts.post(path, PARENT, json={"current_password": DEMO,
                                             "new_password": "parent@famille.test"})
    assert weak.get_json()["errors"] == {
        "new_password": ["Le mot de passe ne doit pas être votre adresse e-mail."]}
    same = accounts.post(path, AGENT, json={"current_password": DEMO,
                                            "new_password": DEMO})
    assert same.status_code == 422 and "new_password" in same.get_json()["errors"]

    pending_reset = request_link(accounts)
    done = accounts.post(path, PARENT, json={"current_password": DEMO, "new_password": STRONG})
    assert done.status_code == 200
    assert done.headers["X-Portail-End-Other-Sessions"] == PARENT.account_id
    assert login_claims(accounts, "parent@famille.test", STRONG) is not None
    assert login_claims(accounts, "parent@famille.test", DEMO) is None
    # A reset link asked before the change no longer works.
    assert accounts.get(f"{RESET}/{pending_reset}").get_json()["status"] == "used"
    assert accounts.post(path, None, json={"current_password": DEMO,
                                           "new_password": STRONG}).status_code == 401
