"""What the gateway asks accounts: authenticate, and reload a principal."""

from __future__ import annotations

from sqlalchemy import update

from services.accounts.models import Account
from services.common.auth import Principal
from tests.accounts.support import (
    AGENT,
    CASSEREAU,
    DAMMARTIN,
    JOLIEVILLE,
    PARENT,
    create_household,
    login_claims,
)

GATEWAY = Principal(account_id="service:gateway")


def test_a_parent_logs_in_with_every_commune_of_the_household(accounts):
    claims = login_claims(accounts, " Parent@Famille.test", "portail-demo")
    # Parents have no second factor; the gateway reads this beside the claims.
    assert claims.pop("second_factor") == {"required": False, "enrolled": False}
    assert claims == {
        "account_id": PARENT.account_id, "email": "parent@famille.test",
        "family_id": CASSEREAU, "platform_admin": False,
        "communes": {
            "jolieville": {"id": JOLIEVILLE, "name": "JolieVille Test", "roles": ["parent"]},
            "dammartin": {"id": DAMMARTIN, "name": "Dammartin-sur-Tigeaux",
                          "roles": ["parent"]},
        },
    }
    reloaded = accounts.get(f"/internal/principals/{PARENT.account_id}", GATEWAY)
    assert reloaded.status_code == 200 and reloaded.get_json() == claims


def test_an_agent_has_their_one_commune(accounts):
    claims = login_claims(accounts, "agent@jolieville.test", "portail-demo")
    assert claims["communes"] == {"jolieville": {"id": JOLIEVILLE, "name": "JolieVille Test",
                                                 "roles": ["agent", "agent-admin"]}}
    assert claims["family_id"] is None
    assert claims["second_factor"] == {"required": True, "enrolled": True}  # the demo secret


def test_wrong_invited_and_disabled_accounts_do_not_log_in(accounts):
    assert login_claims(accounts, "parent@famille.test", "mauvais mot de passe") is None
    assert login_claims(accounts, "personne@exemple.fr", "portail-demo") is None
    create_household(accounts)
    assert login_claims(accounts, "martin@exemple.fr", "") is None
    with accounts.db.transaction() as session:
        session.execute(update(Account).where(Account.email == "parent@famille.test")
                        .values(status="disabled"))
    refused = accounts.post("/internal/authenticate", GATEWAY,
                            json={"email": "parent@famille.test", "password": "portail-demo"})
    assert refused.status_code == 401
    assert refused.get_json()["detail"] == "Adresse e-mail ou mot de passe incorrect."
    assert accounts.get(f"/internal/principals/{PARENT.account_id}",
                        GATEWAY).status_code == 404


def test_only_the_gateway_calls_the_internal_routes(accounts):
    body = {"email": "parent@famille.test", "password": "portail-demo"}
    assert accounts.post("/internal/authenticate", AGENT, json=body).status_code == 403
    assert accounts.post("/internal/authenticate", None, json=body).status_code == 401
    assert accounts.get(f"/internal/principals/{PARENT.account_id}",
                        PARENT).status_code == 403
