from __future__ import annotations

import pytest

from services.common.db import Database
from services.common.migrate import upgrade
from tests.notifications.support import (
    COMMUNE_2,
    EXAMPLES,
    SmtpServer,
    consumer,
    event,
    handle,
)


@pytest.fixture
def db_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'notifications.sqlite3'}"
    upgrade("services.notifications", url)
    return url


@pytest.fixture
def db(db_url):
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture
def jolieville(db):
    """The commune JolieVille Test, known to notifications through its creation event."""
    handle(consumer(db), event("accounts.commune.created"))
    return db


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


class Service:
    """The notifications web app on its own SQLite database, with tokens the gateway would
    mint."""

    def __init__(self, runtime, app, signer):
        self.runtime = runtime
        self.db = runtime.db
        self.client = app.test_client()
        self.signer = signer

    def get(self, path: str, principal=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if principal is not None:
            headers["Authorization"] = f"Bearer {self.signer.mint(principal, 'notifications')}"
        return self.client.get(path, headers=headers, **kwargs)


def service_environ(tmp_path, url: str, **extra: str) -> dict[str, str]:
    return {
        "PORTAIL_ENV": "dev",
        "PORTAIL_DATA_DIR": str(tmp_path),
        "NOTIFICATIONS_DATABASE_URL": url,
        "AMQP_URL": "memory://",
        "PUBLIC_URL": "https://portail.jolieville.test",
        "SMTP_URL": "maildir",
        "LOG_FORMAT": "console",
        **extra,
    }


@pytest.fixture
def service(tmp_path, db_url):
    from services.common.auth import Signer, ensure_dev_keys
    from services.notifications.app import build_runtime, create_app

    runtime = build_runtime(environ=service_environ(tmp_path, db_url))
    app = create_app(runtime)
    pem, _ = ensure_dev_keys(tmp_path)
    handle(consumer(runtime.db), event("accounts.commune.created"))
    handle(consumer(runtime.db), event("accounts.commune.created", commune_id=COMMUNE_2,
                                       data={**EXAMPLES["accounts.commune.created"],
                                             "commune_id": COMMUNE_2, "slug": "dammartin",
                                             "name": "Dammartin-sur-Tigeaux"}))
    yield Service(runtime, app, Signer(pem))
    runtime.db.dispose()
