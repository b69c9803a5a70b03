"""Billing's part of the GDPR rights (issue 8): what blocks a household's erasure, the
erasure itself (invoices kept with the same totals, names gone), its export, and the audit
of agents' reads."""

from __future__ import annotations

from sqlalchemy import select

from services.billing.models import BookedDay, HouseholdQuotient, Invoice, InvoiceLine
from services.common.events import Event
from tests.billing.support import (
    AGENT,
    FAMILY,
    PARENT,
    Billing,
    finalise_month,
    october_for_family,
    open_invoices,
)


def _accounts_call(billing: Billing, path: str):
    token = billing.tokens.mint("accounts", "billing")
    return billing.client().get(path, headers={"Authorization": f"Bearer {token}"})


def _blockers(billing: Billing) -> dict[str, str]:
    answer = _accounts_call(billing, f"/internal/households/{FAMILY}/erasure-blockers")
    assert answer.status_code == 200, answer.get_json()
    return {b["code"]: b["message"] for b in answer.get_json()["blockers"]}


def _erase(billing: Billing) -> None:
    billing.handle(Event.new("accounts.household.erased", {
        "family_id": FAMILY, "commune_ids": [], "version": 50,
        "erased_at": "2026-11-27T10:00:00+00:00", "request_id": None}, producer="accounts"))


def test_blockers_consumed_days_then_the_unpaid_invoice(billing):
    assert _blockers(billing) == {}
    october_for_family(billing)
    blockers = _blockers(billing)
    assert set(blockers) == {"uninvoiced_days"}
    assert "10/2026" in blockers["uninvoiced_days"]
    finalise_month(billing, "2026-10")
    blockers = _blockers(billing)
    assert set(blockers) == {"unpaid_invoices"}
    assert "restent à payer" in blockers["unpaid_invoices"] and "€" in blockers[
        "unpaid_invoices"]
    # Only accounts' service token opens these routes.
    other = billing.tokens.mint("reservations", "billing")
    assert billing.client().get(f"/internal/households/{FAMILY}/erasure-blockers", headers={
        "Authorization": f"Bearer {other}"}).status_code == 403
    assert billing.get(f"/internal/households/{FAMILY}/erasure-blockers",
                       PARENT).status_code == 401


def test_erasure_keeps_invoices_and_totals_and_removes_names(billing):
    october_for_family(billing)
    finalise_month(billing, "2026-10")
    billing.put(f"/api/billing/communes/jolieville/households/{FAMILY}/quotient", AGENT,
                json={"quotient": 700})
    before = open_invoices(billing)
    assert before
    export = _accounts_call(billing, f"/internal/households/{FAMILY}/export").get_json()
    assert {i["number"] for i in export["data"]["factures"]} == {i["number"] for i in before}
    assert "Léa" in str(export["data"]["factures"])

    _erase(billing)
    _erase(billing)  # a second delivery (past the inbox: a new event id) changes nothing
    with billing.db.sessions() as session:
        invoices = list(session.scalars(select(Invoice).where(Invoice.family_id == FAMILY)))
        lines = list(session.scalars(select(InvoiceLine).where(
            InvoiceLine.invoice_id.in_([i.id for i in invoices]))))
        assert {(i.number, str(i.total)) for i in invoices} == {
            (i["number"], i["amount"]) for i in before}
        assert all(line.child_name in (None, "Enfant") for line in lines)
        assert not any("Léa" in line.label for line in lines)
        assert session.scalar(select(HouseholdQuotient).where(
            HouseholdQuotient.family_id == FAMILY)) is None
        assert session.scalar(select(BookedDay).where(BookedDay.family_id == FAMILY)) is None
    agent_view = billing.get(f"/api/billing/invoices/{before[0]['id']}", AGENT).get_json()
    assert agent_view["amount"] == before[0]["amount"]
    assert "Léa" not in str(agent_view) and "parent@famille.test" not in str(agent_view)
    pdf = billing.get(f"/api/billing/invoices/{before[0]['id']}/pdf", AGENT)
    assert pdf.status_code == 200


def test_an_agents_read_of_a_households_invoices_is_audited(billing):
    october_for_family(billing)
    finalise_month(billing, "2026-10")
    invoice = open_invoices(billing)[0]
    billing.get(f"/api/billing/invoices/{invoice['id']}", PARENT)  # the family: not audited
    assert billing.events("billing.access.recorded") == []
    billing.get(f"/api/billing/communes/jolieville/invoices?family_id={FAMILY}", AGENT)
    billing.get(f"/api/billing/invoices/{invoice['id']}", AGENT)
    recorded = billing.events("billing.access.recorded")
    assert [e["data"]["action"] for e in recorded] == ["invoices.list", "invoice.read"]
    assert {e["data"]["family_id"] for e in recorded} == {FAMILY}
    assert {e["data"]["account_id"] for e in recorded} == {AGENT.account_id}
