"""An accounts app on its own SQLite file (or a PostgreSQL database), with the demo seed,
tokens minted as the gateway would, and the outbox read back as the events it will publish."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from services.accounts.app import build_runtime, create_app
from services.accounts.seed import demo_id, seed
from services.common import catalogue
from services.common.auth import Principal, Signer, ensure_dev_keys
from services.common.config import Settings
from services.common.migrate import upgrade
from services.common.outbox import OUTBOX

PUBLIC_URL = "https://portail.example.fr"
JOLIEVILLE = demo_id("commune", "jolieville")
DAMMARTIN = demo_id("commune", "dammartin")
CASSEREAU = demo_id("family", "CASSEREAU")
PARENT_ID = demo_id("account", "parent@famille.test")

ADMIN = Principal(account_id=demo_id("account", "admin@portail.test"),
                  email="admin@portail.test", platform_admin=True)
AGENT = Principal(account_id=demo_id("account", "agent@jolieville.test"),
                  email="agent@jolieville.test",
                  communes={"jolieville": {"id": JOLIEVILLE, "name": "JolieVille Test",
                                           "roles": ["agent", "agent-admin"]}})
PLAIN_AGENT = Principal(account_id="8a1e3c52-6f1e-4c55-9d8e-0b7c4f1a2d33",
                        email="agent2@jolieville.test",
                        communes={"jolieville": {"id": JOLIEVILLE, "name": "JolieVille Test",
                                                 "roles": ["agent"]}})
DAMMARTIN_AGENT = Principal(account_id="5b7d2e10-3c4a-4f6b-8e9d-1a2b3c4d5e6f",
                            email="agent@dammartin.test",
                            communes={"dammartin": {"id": DAMMARTIN,
                                                    "name": "Dammartin-sur-Tigeaux",
                                                    "roles": ["agent"]}})
PARENT = Principal(account_id=PARENT_ID, email="parent@famille.test", family_id=CASSEREAU,
                   communes={"jolieville": {"id": JOLIEVILLE, "name": "JolieVille Test",
                                            "roles": ["parent"]},
                             "dammartin": {"id": DAMMARTIN, "name": "Dammartin-sur-Tigeaux",
                                           "roles": ["parent"]}})


def parent_principal(claims: dict[str, Any]) -> Principal:
    """A principal from the internal claims, as the gateway builds it after login."""
    return Principal(account_id=claims["account_id"], email=claims["email"],
                     family_id=claims["family_id"], platform_admin=claims["platform_admin"],
                     communes=claims["communes"])


@dataclass
class Accounts:
    """The app under test, and what a test needs around it."""

    app: Any
    runtime: Any
    signer: Signer

    @property
    def db(self):
        return self.runtime.db

    def client(self):
        return self.app.test_client()

    def headers(self, principal: Principal | None) -> dict[str, str]:
        if principal is None:
            return {}
        return {"Authorization": f"Bearer {self.signer.mint(principal, audience='accounts')}"}

    def call(self, method: str, path: str, as_: Principal | None = None, **kwargs):
        headers = {**self.headers(as_), **kwargs.pop("headers", {})}
        return self.client().open(path, method=method, headers=headers, **kwargs)

    def get(self, path, as_=None, **kwargs):
        return self.call("GET", path, as_, **kwargs)

    def post(self, path, as_=None, **kwargs):
        return self.call("POST", path, as_, **kwargs)

    def patch(self, path, as_=None, **kwargs):
        return self.call("PATCH", path, as_, **kwargs)

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Envelopes in the outbox, oldest first; each one's data is checked against the
        catalogue as the publisher would (strict) and as a consumer would."""
        with self.db.sessions() as session:
            query = select(OUTBOX.c.envelope).order_by(OUTBOX.c.id)
            if event_type:
                query = query.where(OUTBOX.c.type == event_type)
            envelopes = list(session.scalars(query))
        for envelope in envelopes:
            catalogue.validate(envelope["type"], envelope["version"], envelope["data"],
                               strict=True)
            catalogue.validate(envelope["type"], envelope["version"], envelope["data"],
                               strict=False)
            assert envelope["producer"] == "accounts"
        return envelopes

    def last(self, event_type: str) -> dict[str, Any]:
        found = self.events(event_type)
        assert found, f"aucun événement {event_type}"
        return found[-1]


def build(tmp_path: Path, url: str, **extra: str) -> Accounts:
    upgrade("services.accounts", url)
    settings = Settings(service="accounts", env="dev", data_dir=tmp_path, database_url=url,
                        amqp_url="memory://", public_url=PUBLIC_URL, log_format="console",
                        log_level="WARNING", extra=extra)
    runtime = build_runtime(settings=settings)
    seed(runtime.db)
    app = create_app(runtime)
    app.config["TESTING"] = True
    return Accounts(app, runtime, Signer(ensure_dev_keys(tmp_path)[0]))


def household(email: str = "martin@exemple.fr", **changes: Any) -> dict[str, Any]:
    """A household as an agent types it."""
    body = {
        "family_name": "MARTIN",
        "email": email,
        "guardians": [
            {"first_name": "Claire", "last_name": "MARTIN", "relation": "mère",
             "phones": ["06 11 22 33 44"], "pays": True},
            {"first_name": "Marc", "last_name": "MARTIN", "relation": "père",
             "email": "marc@exemple.fr"},
        ],
        "children": [
            {"first_name": "Zoé", "last_name": "MARTIN", "birth_date": "2018-05-02",
             "school": "École Jules Ferry", "class_name": "CE2"},
            {"first_name": "Noé", "last_name": "MARTIN", "birth_date": "2021-01-20",
             "allergies": True, "allergy_notes": "Gluten"},
        ],
        "address": {"line1": "3 place de la Mairie", "postal_code": "77100",
                    "city": "JolieVille"},
    }
    body.update(changes)
    return body


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def create_household(accounts: Accounts, email: str = "martin@exemple.fr",
                     slug: str = "jolieville", as_: Principal = AGENT,
                     **changes: Any) -> dict[str, Any]:
    """Create a household as an agent; returns the answer with the activation token."""
    response = accounts.post(f"/api/accounts/communes/{slug}/families", as_,
                             json=household(email, **changes))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    invited = [e for e in accounts.events("accounts.family.invited")
               if e["data"]["family_id"] == body["id"]]
    if invited:
        body["token"] = token_of(invited[-1]["data"]["activation_url"])
    return body


STRONG = "un cheval bleu mange des cerises"


def activate(accounts: Accounts, token: str, password: str = STRONG):
    return accounts.post("/api/accounts/activation", json={"token": token,
                                                           "password": password})


def login_claims(accounts: Accounts, email: str, password: str) -> dict[str, Any] | None:
    gateway = Principal(account_id="service:gateway")
    response = accounts.post("/internal/authenticate", gateway,
                             json={"email": email, "password": password})
    return response.get_json() if response.status_code == 200 else None
