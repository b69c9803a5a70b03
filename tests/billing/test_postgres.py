"""On PostgreSQL (production's database): the migrations, and the paths that concurrency could
break: numbering, finalisation, checkout."""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import date

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from services.billing.models import Invoice, Payment, metadata
from services.common.db import make_engine
from services.common.migrate import alembic_config, upgrade
from tests.billing.support import AGENT, CANTEEN, PARENT, open_invoices
from tests.billing.test_checkout import BODY, checkout
from tests.billing.test_payments import callback, start_payment

pytestmark = pytest.mark.services

RUNS = "/api/billing/communes/jolieville/invoicing-runs"


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
    upgrade("services.billing", url)
    assert schema_differences(url) == []
    command.downgrade(alembic_config("services.billing", url), "0001")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert "invoices" not in tables and "communes" in tables
    upgrade("services.billing", url)
    assert schema_differences(url) == []


def run_in_threads(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def target(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def months_of_bookings(billing, periods: list[str], families: int) -> None:
    for period in periods:
        year, month = map(int, period.split("-"))
        for f in range(families):
            family = str(uuid.UUID(int=(month << 16) + f + 1))
            billing.book([str(uuid.uuid4())], [date(year, month, 3).isoformat()],
                         child=str(uuid.uuid4()), family=family, activity=CANTEEN)


def test_concurrent_finalisations_number_without_gap_or_duplicate(pg_billing):
    billing = pg_billing
    periods = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    months_of_bookings(billing, periods, 5)
    runs = [billing.post(RUNS, AGENT, json={"period": p}).get_json()["id"] for p in periods]

    def finalise(index):
        if index < len(runs):
            return billing.post(f"{RUNS}/{runs[index]}/finalise", AGENT).status_code
        # meanwhile, invoices made one by one take numbers from the same counter
        answer = billing.post("/api/billing/communes/jolieville/invoices", AGENT, json={
            "payer_name": f"Payeur {index}", "lines": [{"label": "Divers", "unit_price": "1"}]})
        return answer.status_code

    statuses = run_in_threads(len(runs) + 4, finalise)
    assert statuses == [200] * len(runs) + [201] * 4
    with billing.db.sessions() as session:
        numbers = sorted(session.scalars(select(Invoice.sequence)))
        references = list(session.scalars(select(Invoice.number)))
    assert numbers == list(range(1, len(periods) * 5 + 4 + 1))
    assert len(set(references)) == len(references)


def test_one_run_finalised_by_several_agents_at_once_is_finalised_once(pg_billing):
    billing = pg_billing
    months_of_bookings(billing, ["2026-10"], 3)
    run = billing.post(RUNS, AGENT, json={"period": "2026-10"}).get_json()["id"]
    results = run_in_threads(6, lambda _i: billing.post(f"{RUNS}/{run}/finalise", AGENT)
                             .get_json()["status"])
    assert results == ["finalised"] * 6
    with billing.db.sessions() as session:
        assert len(list(session.scalars(select(Invoice.id)))) == 3
    assert len(billing.events("billing.invoice.issued")) == 3
    # and asking for the period again, concurrently, creates nothing either
    again = run_in_threads(4, lambda _i: billing.post(RUNS, AGENT, json={"period": "2026-10"})
                           .status_code)
    assert again == [200] * 4


def test_concurrent_checkouts_of_one_basket_make_one_payment(pg_billing):
    billing = pg_billing
    answers = run_in_threads(8, lambda _i: checkout(billing))
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.get_json()["payment_id"] for a in answers}) == 1
    with billing.db.sessions() as session:
        assert len(list(session.scalars(select(Payment.id)))) == 1
        assert len(list(session.scalars(select(Invoice.id)))) == 1
    other = copy.deepcopy(BODY)
    other["basket_id"] = str(uuid.uuid4())
    assert checkout(billing, other, key=other["basket_id"]).status_code == 201


def test_concurrent_notifications_pay_once(pg_billing):
    billing = pg_billing
    invoice = billing.post("/api/billing/communes/jolieville/invoices", AGENT, json={
        "family_id": PARENT.family_id, "lines": [{"label": "Divers", "unit_price": "7.00"}]}
    ).get_json()
    payment = start_payment(billing, [invoice["id"]]).get_json()["payment_id"]
    outcomes = run_in_threads(6, lambda _i: callback(billing, payment, "paid", "7.00")
                              .get_json()["outcome"])
    assert sorted(outcomes) == ["applied"] + ["ignored"] * 5
    assert len(billing.events("billing.payment.succeeded")) == 1
    assert billing.events("billing.credit_note.issued") == []
    assert open_invoices(billing) == []
