"""Accounts' retention job (issue 8), per commune, with time travel (``purge(now=...)``):
audit log entries, spent links, erasure records and the erased household's leftovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from services.accounts.models import Account, AuditEntry, ErasureRequest, Family, Token
from services.accounts.privacy import Privacy
from services.accounts.retention import months_before, purge
from tests.accounts.support import ADMIN, CASSEREAU, DAMMARTIN, JOLIEVILLE, PARENT_ID

NOW = datetime(2027, 6, 15, 9, tzinfo=UTC)


def _entry(accounts, commune_id: str, age: timedelta) -> str:
    with accounts.db.transaction() as session:
        entry = AuditEntry(commune_id=commune_id, service="billing", account_id="a",
                           email="agent@jolieville.test", family_id=CASSEREAU,
                           action="invoice.read", at=NOW - age)
        session.add(entry)
    return entry.id


def _ids(accounts, model) -> set[str]:
    with accounts.db.sessions() as session:
        return set(session.scalars(select(model.id)))


def test_months_before_keeps_the_day_or_the_end_of_the_month():
    assert months_before(datetime(2027, 3, 31, tzinfo=UTC), 1) == datetime(2027, 2, 28,
                                                                           tzinfo=UTC)
    assert months_before(datetime(2027, 1, 15, tzinfo=UTC), 13) == datetime(2025, 12, 15,
                                                                            tzinfo=UTC)


def test_audit_entries_follow_each_communes_period(accounts):
    # JolieVille keeps its log 6 months (its settings); Dammartin the default year.
    changed = accounts.patch("/api/accounts/communes/jolieville", ADMIN,
                             json={"settings": {"retention": {"audit_log_months": 6}}})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["settings"]["retention"]["audit_log_months"] == 6
    assert accounts.events("accounts.commune.updated")[-1]["data"]["settings"][
        "retention"]["audit_log_months"] == 6
    jv_old = _entry(accounts, JOLIEVILLE, timedelta(days=200))
    jv_new = _entry(accounts, JOLIEVILLE, timedelta(days=100))
    dm_200 = _entry(accounts, DAMMARTIN, timedelta(days=200))
    dm_old = _entry(accounts, DAMMARTIN, timedelta(days=400))
    assert purge(accounts.db, NOW)["audit_entries"] == 2
    assert _ids(accounts, AuditEntry) == {jv_new, dm_200}
    assert jv_old not in _ids(accounts, AuditEntry) and dm_old not in _ids(accounts, AuditEntry)
    # Three months later JolieVille's second entry is past its six months, not Dammartin's.
    assert purge(accounts.db, NOW + timedelta(days=90))["audit_entries"] == 1
    assert _ids(accounts, AuditEntry) == {dm_200}
    # A period out of range is refused in French.
    wrong = accounts.patch("/api/accounts/communes/jolieville", ADMIN,
                           json={"settings": {"retention": {"audit_log_months": 0}}})
    assert wrong.status_code == 422
    assert "Entre 1 et 120 mois." in str(wrong.get_json())


def test_spent_links_go_after_thirty_days(accounts):
    with accounts.db.transaction() as session:
        for kind, expires, used in (("reset", NOW - timedelta(days=40), None),
                                    ("reset", NOW - timedelta(days=10), None),
                                    ("activation", NOW + timedelta(days=3),
                                     NOW - timedelta(days=31))):
            session.add(Token(kind=kind, token_hash=f"{kind}{expires.isoformat()}"[:64],
                              account_id=PARENT_ID, expires_at=expires, used_at=used))
    before = len(_ids(accounts, Token))
    assert purge(accounts.db, NOW)["tokens"] == 2
    assert len(_ids(accounts, Token)) == before - 2


def test_an_erasure_record_and_the_erased_households_leftovers_go_after_36_months(accounts):
    with accounts.db.transaction() as session:
        from services.accounts.operations import Operations

        family = Operations._family(session, CASSEREAU, lock=True)
        request = ErasureRequest(family_id=CASSEREAU, status="pending",
                                 commune_ids=[JOLIEVILLE, DAMMARTIN], decisions={},
                                 created_at=NOW - timedelta(days=3))
        session.add(request)
        session.flush()
        Privacy._erase(session, family, request)
        request.decided_at = NOW - timedelta(days=2)
    with accounts.db.sessions() as session:
        account = session.get(Account, PARENT_ID)
        assert account.status == "erased" and account.email.endswith("@invalid")
        assert session.get(Family, CASSEREAU).family_name == "Foyer supprimé"
    erased = accounts.events("accounts.household.erased")
    assert erased[-1]["data"]["family_id"] == CASSEREAU
    # Kept as proof of the erasure for 36 months, then gone with the leftovers.
    assert purge(accounts.db, NOW)["erasure_requests"] == 0
    assert purge(accounts.db, NOW + timedelta(days=35 * 31))["erasure_requests"] == 0
    done = purge(accounts.db, NOW + timedelta(days=37 * 31))
    assert done["erasure_requests"] == 1 and done["erased_households"] == 1
    with accounts.db.sessions() as session:
        assert session.get(Account, PARENT_ID) is None
        assert session.get(Family, CASSEREAU) is None
        assert session.scalar(select(ErasureRequest)) is None


def test_the_same_on_postgresql(pg_accounts):
    """PostgreSQL: row locks, aware datetimes and the cascades behave as on SQLite."""
    test_audit_entries_follow_each_communes_period(pg_accounts)
    test_an_erasure_record_and_the_erased_households_leftovers_go_after_36_months(pg_accounts)
