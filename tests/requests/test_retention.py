"""Retention: decided requests are deleted after the commune's period, their files by the
sweep; orphan files left by a failure are swept once a day old."""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from services.requests.domain import months_before
from services.requests.models import Document, HistoryEntry, Message, Request
from tests.requests.support import AGENT, COLLEAGUE, PARENT, base, file_part, pdf, pickup_form
from tests.requests.support import submitted as submit


def ops(requests_app):
    return requests_app.runtime.operations()


def decided(requests_app, form=None, status="refused"):
    request = submit(requests_app, form)
    requests_app.post(f"{base()}/requests/{request['id']}/transition", AGENT,
                      json={"status": "in_progress"})
    requests_app.post(f"{base()}/requests/{request['id']}/transition", AGENT,
                      json={"status": status, "message": "Dossier incomplet."})
    return request


def age(requests_app, request_id: str, moment: datetime) -> None:
    with requests_app.db.transaction() as session:
        session.execute(update(Request).where(Request.id == request_id)
                        .values(status_changed_at=moment))


def count(requests_app, model) -> int:
    with requests_app.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_months_before_stays_in_the_month():
    moment = datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert months_before(moment, 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert months_before(moment, 36) == datetime(2023, 3, 31, 12, tzinfo=UTC)
    assert months_before(moment, 13) == datetime(2025, 2, 28, 12, tzinfo=UTC)


def test_decided_requests_past_the_period_are_deleted_with_their_files(requests_app):
    old = decided(requests_app, pickup_form(identity_document=file_part(pdf("ancien"),
                                                                        "a.pdf")))
    kept = decided(requests_app, pickup_form(identity_document=file_part(pdf("récent"),
                                                                         "b.pdf")))
    ongoing = submit(requests_app, pickup_form(relation="tante"))
    now = datetime.now(UTC)
    age(requests_app, old["id"], now - timedelta(days=37 * 31))
    age(requests_app, ongoing["id"], now - timedelta(days=37 * 31))  # not decided: kept
    age(requests_app, kept["id"], now - timedelta(days=30 * 31))
    assert ops(requests_app).purge_expired() == 1
    ids = {r["id"] for r in requests_app.get(f"{base()}/requests", AGENT).get_json()["items"]}
    assert ids == {kept["id"], ongoing["id"]}
    with requests_app.db.sessions() as session:
        for model in (Document, Message, HistoryEntry):
            assert session.scalar(select(func.count()).select_from(model).where(
                model.request_id == old["id"])) == 0
    # The deleted request's file is no longer referred to: the sweep removes it once it is
    # a day old, and keeps the others.
    assert len(requests_app.stored_files()) == 3
    assert ops(requests_app).sweep_files() == 0
    assert ops(requests_app).sweep_files(now + timedelta(days=2)) == 1
    assert len(requests_app.stored_files()) == 2
    for request in (kept, ongoing):
        url = request["documents"][0]["url"]
        assert requests_app.get(url, AGENT).status_code == 200
    assert ops(requests_app).purge_expired() == 0


def test_a_commune_sets_its_own_period(requests_app):
    assert requests_app.get(f"{base()}/settings", AGENT).get_json() == {"retention_months": 36}
    assert requests_app.patch(f"{base()}/settings", COLLEAGUE,
                              json={"retention_months": 12}).status_code == 403
    assert requests_app.patch(f"{base()}/settings", PARENT,
                              json={"retention_months": 12}).status_code == 403
    wrong = requests_app.patch(f"{base()}/settings", AGENT, json={"retention_months": 0})
    assert wrong.status_code == 422
    assert wrong.get_json()["errors"]["retention_months"] == ["Entre 1 et 120 mois."]
    changed = requests_app.patch(f"{base()}/settings", AGENT, json={"retention_months": 12})
    assert changed.get_json() == {"retention_months": 12}
    request = decided(requests_app, status="accepted")
    age(requests_app, request["id"], datetime.now(UTC) - timedelta(days=13 * 31))
    assert ops(requests_app).purge_expired() == 1
    assert count(requests_app, Request) == 0
    # Its file is now an orphan: swept once a day old.
    assert len(requests_app.stored_files()) == 1
    assert ops(requests_app).sweep_files(datetime.now(UTC) + timedelta(days=2)) == 1
    assert requests_app.stored_files() == []


def test_a_file_left_by_a_failed_transaction_is_removed(requests_app, monkeypatch):
    from services.requests import operations

    def broken(*args, **kwargs):
        raise RuntimeError("la base est tombée")

    monkeypatch.setattr(operations.outbox, "add", broken)
    before = requests_app.all_files()
    client = requests_app.app.test_client()
    requests_app.app.config["TESTING"] = False  # an unexpected error answers 500, no raise
    response = client.post(f"{base()}/requests", headers=requests_app.headers(PARENT),
                           data=pickup_form(), content_type="multipart/form-data")
    assert response.status_code == 500
    assert count(requests_app, Request) == 0
    assert requests_app.all_files() == before


def test_the_sweep_spares_files_in_use_and_young_orphans(requests_app):
    submit(requests_app)
    young = requests_app.store.put(b"%PDF-1.4 orphan young")
    old = requests_app.store.put(b"%PDF-1.4 orphan old")
    stamp = (datetime.now(UTC) - timedelta(days=3)).timestamp()
    os.utime(requests_app.store.path(old), (stamp, stamp))
    assert ops(requests_app).sweep_files() == 1
    assert requests_app.store.exists(young) and not requests_app.store.exists(old)
    assert len(requests_app.stored_files()) == 2


def test_the_worker_runs_the_retention_job(requests_app, monkeypatch):
    runtime = requests_app.runtime
    monkeypatch.setitem(runtime.settings.extra, "REQUESTS_RETENTION_INTERVAL", "0.05")
    ran = threading.Event()
    monkeypatch.setattr(type(runtime), "operations", lambda self: _Probe(ran))
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run_retention, args=(stop,), daemon=True)
    thread.start()
    assert ran.wait(5)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


class _Probe:
    def __init__(self, ran):
        self.ran = ran

    def purge_expired(self):
        return 0

    def sweep_files(self):
        self.ran.set()
        return 0


def test_readiness_says_when_the_document_store_cannot_be_written(requests_app, monkeypatch):
    ready = requests_app.get("/readyz")
    assert ready.status_code == 200
    assert "documents" in ready.get_json()["checks"]

    def broken():
        raise OSError("le dossier des documents n'est pas accessible en écriture")

    monkeypatch.setattr(requests_app.store, "check", broken)
    failing = requests_app.get("/readyz")
    assert failing.status_code == 503
    assert "écriture" in failing.get_json()["checks"]["documents"]
