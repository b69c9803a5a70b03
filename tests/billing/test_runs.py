"""The monthly invoicing run: draft with totals and anomalies, finalisation, idempotency."""

from __future__ import annotations

from decimal import Decimal

from tests.billing.support import (
    AGENT,
    CANTEEN,
    CHILD_1,
    CHILD_2,
    DAMMARTIN_AGENT,
    FAMILY,
    OTHER_CHILD,
    OTHER_FAMILY,
    PARENT,
    finalise_month,
    october_for_family,
    open_invoices,
)

RUNS = "/api/billing/communes/jolieville/invoicing-runs"


def canteen_tariff(billing, **changes):
    body = {"label": "Restauration scolaire", "activity_id": CANTEEN,
            "brackets": [{"max_quotient": 600, "price": "2.10"},
                         {"max_quotient": 1000, "price": "3.20"},
                         {"max_quotient": None, "price": "4.10"}],
            "reduced_from_child": 3, "reduced_rate": "20", "unbooked_surcharge": "1.00",
            **changes}
    answer = billing.put("/api/billing/communes/jolieville/tariffs/REPAS", AGENT, json=body)
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_draft_shows_totals_and_anomalies_then_finalising_issues_the_invoices(billing):
    canteen_tariff(billing)
    october_for_family(billing, 6)
    billing.attend("2026-10-12")  # present without a booking
    billing.book(["b0000000-0000-4000-8000-000000002001"], ["2026-10-13"])  # never pointed
    billing.book(["b0000000-0000-4000-8000-000000002002"], ["2026-10-14"], child=CHILD_2)
    billing.attend("2026-10-14", "excused", child=CHILD_2)
    billing.book(["b0000000-0000-4000-8000-000000003001"], ["2026-10-05"], child=OTHER_CHILD,
                 family=OTHER_FAMILY)
    billing.attend("2026-10-05", "absent", child=OTHER_CHILD, family=OTHER_FAMILY)

    draft = billing.post(RUNS, AGENT, json={"period": "2026-10"})
    assert draft.status_code == 201
    run = draft.get_json()
    assert run["status"] == "draft"
    assert run["invoice_count"] == 2
    kinds = sorted(a["kind"] for a in run["anomalies"])
    assert kinds == ["booking_without_attendance", "presence_without_booking"]
    by_family = {i["family_id"]: i for i in run["invoices"]}
    lines = by_family[FAMILY]["lines"]
    # 6 attended + 1 unbooked presence + 1 never pointed = 8 days at 4.10, plus the surcharge
    assert [(ln["quantity"], ln["amount"]) for ln in lines] == [(8, "32.80"), (1, "1.00")]
    assert lines[0]["detail"] == "8 jours 32,80\u00a0€"
    assert by_family[FAMILY]["total"] == "33.80"
    assert by_family[OTHER_FAMILY]["total"] == "4.10"  # unjustified absence is billed
    assert run["total"] == "37.90"
    assert billing.events("billing.invoice.issued") == []

    done = billing.post(f"{RUNS}/{run['id']}/finalise", AGENT)
    assert done.status_code == 200
    assert done.get_json()["status"] == "finalised"
    (invoice,) = open_invoices(billing)
    assert invoice["amount"] == "33.80"
    assert invoice["reference"].startswith("2026-JOL-")
    detail = billing.get(f"/api/billing/invoices/{invoice['id']}", PARENT).get_json()
    assert sum(Decimal(ln["amount"]) for ln in detail["lines"]) == Decimal(invoice["amount"])
    issued = billing.events("billing.invoice.issued")
    assert len(issued) == 2
    mine = next(e for e in issued if e["data"]["family_id"] == FAMILY)
    assert mine["data"]["amount"] == "33.80"
    assert mine["data"]["number"] == invoice["reference"]
    assert mine["data"]["recipients"] == ["parent@famille.test"]
    assert mine["data"]["period"] == "2026-10"


def test_finalising_and_rerunning_create_nothing_twice(billing):
    october_for_family(billing)
    first = finalise_month(billing)
    again = billing.post(f"{RUNS}/{first['id']}/finalise", AGENT)
    assert again.status_code == 200
    rerun = billing.post(RUNS, AGENT, json={"period": "2026-10"})
    assert rerun.status_code == 200
    assert rerun.get_json()["id"] == first["id"]
    assert rerun.get_json()["status"] == "finalised"
    assert len(open_invoices(billing)) == 1
    assert len(billing.events("billing.invoice.issued")) == 1
    runs = billing.get(RUNS, AGENT).get_json()["items"]
    assert [(r["period"], r["status"]) for r in runs] == [("2026-10", "finalised")]


def test_asking_again_for_a_draft_refreshes_it(billing):
    october_for_family(billing, 2)
    first = billing.post(RUNS, AGENT, json={"period": "2026-10"}).get_json()
    assert first["total"] == "8.20"
    # a correction: the second day was in fact an excused absence
    billing.attend("2026-10-02", "excused")
    second = billing.post(RUNS, AGENT, json={"period": "2026-10"})
    assert second.status_code == 200
    assert second.get_json()["id"] == first["id"]
    assert second.get_json()["total"] == "4.10"


def test_latest_attendance_wins_whatever_the_order_of_arrival(billing):
    billing.book(["b0000000-0000-4000-8000-000000005001"], ["2026-10-01"])
    billing.attend("2026-10-01", "excused", recorded_at="2026-10-01T18:00:00+00:00")
    billing.attend("2026-10-01", "present", recorded_at="2026-10-01T09:00:00+00:00")  # older
    run = billing.post(RUNS, AGENT, json={"period": "2026-10"}).get_json()
    assert run["invoice_count"] == 0


def test_a_late_confirmation_does_not_revive_a_cancelled_booking(billing):
    from tests.billing.support import event

    booking = "b0000000-0000-4000-8000-000000004001"
    billing.handle(event("reservations.booking.cancelled", booking_ids=[booking],
                         dates=["2026-10-07"], child_id=CHILD_1, activity_id=CANTEEN,
                         payment_mode="monthly", refund_due="0.00", refund_lines=None))
    billing.book([booking], ["2026-10-07"])
    run = billing.post(RUNS, AGENT, json={"period": "2026-10"}).get_json()
    assert run["invoice_count"] == 0


def test_the_commune_rule_on_unjustified_absences(billing):
    october_for_family(billing, 2)
    billing.attend("2026-10-02", "absent")
    answer = billing.put("/api/billing/communes/jolieville/settings", AGENT,
                         json={"bill_unjustified_absence": False})
    assert answer.status_code == 200
    assert answer.get_json()["bill_unjustified_absence"] is False
    run = billing.post(RUNS, AGENT, json={"period": "2026-10"}).get_json()
    assert run["total"] == "4.10"


def test_quotient_and_reduced_rate_apply(billing):
    canteen_tariff(billing)
    answer = billing.put(f"/api/billing/communes/jolieville/households/{FAMILY}/quotient",
                         AGENT, json={"quotient": 550})
    assert answer.status_code == 200
    october_for_family(billing, 3)
    run = billing.post(RUNS, AGENT, json={"period": "2026-10"}).get_json()
    assert run["total"] == "6.30"


def test_tariffs_are_validated_and_listed(billing):
    bad = billing.put("/api/billing/communes/jolieville/tariffs/REPAS", AGENT,
                      json={"label": "Repas", "brackets": [{"max_quotient": 600,
                                                            "price": "2.1"}]})
    assert bad.status_code == 422
    assert "brackets" in bad.get_json()["errors"]
    assert bad.headers["Content-Type"] == "application/problem+json"
    canteen_tariff(billing)
    items = billing.get("/api/billing/communes/jolieville/tariffs", AGENT).get_json()["items"]
    assert [(t["activity_code"], t["reduced_rate"]) for t in items] == [("REPAS", "20")]
    assert billing.call("DELETE", "/api/billing/communes/jolieville/tariffs/REPAS",
                        AGENT).status_code == 204


def test_runs_are_for_the_commune_agents_only(billing):
    assert billing.post(RUNS, DAMMARTIN_AGENT, json={"period": "2026-10"}).status_code == 403
    assert billing.post(RUNS, PARENT, json={"period": "2026-10"}).status_code == 403
    assert billing.post(RUNS, json={"period": "2026-10"}).status_code == 401
    bad = billing.post(RUNS, AGENT, json={"period": "octobre"})
    assert bad.status_code == 422
    assert "period" in bad.get_json()["errors"]


def test_csv_export_of_the_period(billing):
    october_for_family(billing)
    finalise_month(billing)
    answer = billing.get("/api/billing/communes/jolieville/exports/invoices.csv?period=2026-10",
                         AGENT)
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    text = answer.get_data(as_text=True)
    assert text.startswith("\ufeffreference;")
    assert ";24,60;0,00;0,00;24,60;open" in text
    assert billing.get("/api/billing/communes/jolieville/exports/invoices.csv",
                       PARENT).status_code == 403


def test_a_run_is_drafted_and_issued_one_household_at_a_time(billing, monkeypatch):
    """The run streams households in chunks: with chunks of one, the same draft, anomalies,
    invoices and events, and numbers that follow each other without a gap."""
    from services.billing import runs

    monkeypatch.setattr(runs, "CHUNK", 1)
    test_draft_shows_totals_and_anomalies_then_finalising_issues_the_invoices(billing)
    numbers = sorted(e["data"]["number"] for e in billing.events("billing.invoice.issued"))
    assert [int(n.rsplit("-", 1)[1]) for n in numbers] == [1, 2]


def test_drafts_kept_as_json_before_0004_move_to_rows_and_back(tmp_path):
    """A run drafted before the drafts had their table is shown and finalised as drafted."""
    import json

    from alembic import command
    from sqlalchemy import text

    from services.common.db import make_engine
    from services.common.migrate import alembic_config, upgrade

    url = f"sqlite:///{tmp_path}/b.db"
    upgrade("services.billing", url, "0003")
    line = {"child_id": CHILD_1, "amount": "8.20", "label": "Repas"}
    draft = {"invoices": [{"family_id": FAMILY, "family_name": "CASSEREAU", "total": "8.20",
                           "lines": [line]}],
             "anomalies": [{"kind": "no_price", "family_id": OTHER_FAMILY, "date": "2026-10-02",
                            "child_id": OTHER_CHILD, "activity_id": CANTEEN, "label": "x"}]}
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO invoicing_runs (id, commune_id, period, status, draft, total, "
                "invoice_count, anomaly_count, created_at, updated_at) VALUES ('r1', 'c1', "
                "'2026-10', 'draft', :d, 820, 1, 1, '2026-10-31', '2026-10-31')"),
                {"d": json.dumps(draft)})
        upgrade("services.billing", url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT family_id, total, line_count, lines, anomalies "
                                     "FROM run_drafts ORDER BY family_id")).all()
            assert [(r[0], r[1], r[2]) for r in rows] == [(FAMILY, 820, 1), (OTHER_FAMILY, 0, 0)]
            assert json.loads(rows[0][3]) == [line]
            assert json.loads(rows[1][4]) == draft["anomalies"]
            assert json.loads(conn.execute(text("SELECT draft FROM invoicing_runs")).scalar()) \
                == {}
        command.downgrade(alembic_config("services.billing", url), "0003")
        with engine.connect() as conn:
            back = json.loads(conn.execute(text("SELECT draft FROM invoicing_runs")).scalar())
        assert back == draft
    finally:
        engine.dispose()
