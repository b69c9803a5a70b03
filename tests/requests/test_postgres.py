"""The migrations and the concurrency-sensitive paths on PostgreSQL (production's database)."""

from __future__ import annotations

import threading

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from services.common.db import make_engine
from services.common.migrate import alembic_config, upgrade
from services.requests.models import Request, metadata
from tests.requests.support import (
    AGENT,
    FAMILY,
    HUGO,
    PARENT,
    absence_form,
    base,
    pickup_form,
    submitted,
)

pytestmark = pytest.mark.services


def schema_differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_migrations_build_the_models_schema_and_go_back(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path}/m.db" if backend == "sqlite"
           else request.getfixturevalue("pg_url"))
    upgrade("services.requests", url)
    assert schema_differences(url) == []
    command.downgrade(alembic_config("services.requests", url), "0001")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert not {"categories", "requests", "documents", "messages", "request_history",
                "agents", "households", "children"} & tables
    upgrade("services.requests", url)
    assert schema_differences(url) == []


def test_the_journey_on_postgresql(pg_requests_app):
    app = pg_requests_app
    request = submitted(app, absence_form())
    assert app.submit(absence_form()).status_code == 200  # the same one again
    for status, message in (("in_progress", None), ("waiting_for_family", "Le certificat ?")):
        response = app.post(f"{base()}/requests/{request['id']}/transition", AGENT,
                            json={"status": status, "message": message})
        assert response.status_code == 200, response.get_json()
    answered = app.post(f"{base()}/requests/{request['id']}/messages", PARENT,
                        data={"body": "Le voici."}, content_type="multipart/form-data")
    assert answered.status_code == 201
    accepted = app.post(f"{base()}/requests/{request['id']}/transition", AGENT,
                        json={"status": "accepted", "message": "Justifiée."})
    assert accepted.status_code == 200
    event = app.events("requests.request.status_changed")[-1]["data"]
    assert event["payload"]["child_id"] == HUGO
    assert event["family_id"] == FAMILY
    page = app.get(f"{base()}/requests?limit=1", PARENT).get_json()
    assert page["next"] is None and page["items"][0]["id"] == request["id"]
    with pytest.raises(Exception, match="append-only"), app.db.transaction() as session:
        session.execute(text("UPDATE request_history SET message = 'réécrit'"))
    with pytest.raises(Exception, match="append-only"), app.db.transaction() as session:
        session.execute(text("DELETE FROM request_history"))


def test_pages_of_the_queue_on_postgresql(pg_requests_app):
    app = pg_requests_app
    made = [submitted(app, pickup_form(relation=f"voisin {i}"))["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        path = f"{base()}/requests?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = app.get(path, AGENT).get_json()
        seen.extend(r["id"] for r in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == made
    history = app.get(f"{base()}/requests?limit=3", PARENT).get_json()
    rest = app.get(f"{base()}/requests?limit=3&cursor={history['next']}", PARENT).get_json()
    assert [r["id"] for r in history["items"] + rest["items"]] == made[::-1]


def test_a_double_click_sends_one_request(pg_requests_app):
    app = pg_requests_app
    start = threading.Barrier(4, timeout=30)
    answers: list[int] = []

    def send():
        start.wait()
        answers.append(app.submit(pickup_form()).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [200, 200, 200, 201]
    with app.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 1
    assert len(app.events("requests.request.submitted")) == 1


def test_two_agents_moving_one_request_at_once(pg_requests_app):
    app = pg_requests_app
    request = submitted(app)
    start = threading.Barrier(2, timeout=30)
    answers: list[int] = []

    def move():
        start.wait()
        answers.append(app.post(f"{base()}/requests/{request['id']}/transition", AGENT,
                                json={"status": "in_progress"}).status_code)

    threads = [threading.Thread(target=move) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == [200, 409]
    assert len(app.events("requests.request.status_changed")) == 1
