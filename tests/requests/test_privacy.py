"""Requests' part of the GDPR rights (issue 8): the household's export with its documents,
the erasure (rows, then files once committed; a file another household also sent stays), and
the audit of agents' reads."""

from __future__ import annotations

from sqlalchemy import select

from services.common.events import Event
from services.common.households import household
from services.requests.models import Document, Request
from tests.requests.support import (
    AGENT,
    FAMILY,
    OTHER_CHILD,
    OTHER_PARENT,
    PARENT,
    base,
    file_part,
    pdf,
    pickup_form,
)


def _accounts_get(requests_app, path: str):
    token = requests_app.runtime.service_tokens.mint("accounts", "requests")
    return requests_app.app.test_client().get(path,
                                              headers={"Authorization": f"Bearer {token}"})


def _submit(requests_app, who, form):
    answer = requests_app.submit(form, who)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_export_erasure_and_audit(requests_app):
    shared, own = pdf("formulaire de la mairie"), pdf("carte d'identité de Jeanne")
    mine = _submit(requests_app, PARENT, pickup_form(identity_document=file_part(own, "c.pdf")))
    also = _submit(requests_app, PARENT, pickup_form(
        relation="tante", identity_document=file_part(shared, "f.pdf")))
    theirs = _submit(requests_app, OTHER_PARENT, pickup_form(
        child=OTHER_CHILD, identity_document=file_part(shared, "f.pdf")))
    assert len(requests_app.stored_files()) == 2  # content-addressed: the shared one once

    # Reads: the family's own are not audited, an agent's are.
    requests_app.get(f"{base()}/requests/{mine['id']}", PARENT)
    assert requests_app.events("requests.access.recorded") == []
    assert requests_app.get(f"{base()}/requests/{mine['id']}", AGENT).status_code == 200
    assert requests_app.get(mine["documents"][0]["url"], AGENT).status_code == 200
    audited = [e["data"] for e in requests_app.events("requests.access.recorded")]
    assert [(a["action"], a["family_id"]) for a in audited] == [
        ("request.read", FAMILY), ("document.download", FAMILY)]

    # The export lists both requests and serves their files to accounts only.
    export = _accounts_get(requests_app, f"/internal/households/{FAMILY}/export").get_json()
    assert len(export["data"]["demandes"]) == 2 and len(export["files"]) == 2
    first = export["files"][0]
    got = _accounts_get(requests_app,
                        f"/internal/households/{FAMILY}/documents/{first['document_id']}")
    assert got.status_code == 200 and got.data in (own, shared)
    other_doc = theirs["documents"][0]["id"]
    assert _accounts_get(requests_app, f"/internal/households/{FAMILY}/documents/"
                                       f"{other_doc}").status_code == 404
    assert requests_app.get(f"/internal/households/{FAMILY}/export", PARENT).status_code == 401

    # Erasure, through the worker's handler (the store bound): rows, then the file only this
    # household used; the shared one stays for the other household.
    event = Event.new("accounts.household.erased", {
        "family_id": FAMILY, "commune_ids": [], "version": 40,
        "erased_at": "2026-11-27T10:00:00+00:00", "request_id": None}, producer="accounts")
    handler = requests_app.runtime.handlers["accounts.household.erased"]
    for _ in range(2):  # a second delivery changes nothing
        with requests_app.db.transaction() as session:
            handler(session, event, event.data)
    with requests_app.db.sessions() as session:
        assert session.scalar(select(Request).where(Request.family_id == FAMILY)) is None
        assert household(session, FAMILY)["snapshot"]["guardians"] == []
        kept = list(session.scalars(select(Document.storage_key)))
    assert len(kept) == 1 and len(requests_app.stored_files()) == 1
    for gone in (mine, also):
        assert requests_app.get(f"{base()}/requests/{gone['id']}", AGENT).status_code == 404
    assert requests_app.get(theirs["documents"][0]["url"], AGENT).status_code == 200
    listing = requests_app.get(f"{base()}/requests", AGENT).get_data(as_text=True)
    assert "CASSEREAU" not in listing and "parent@famille.test" not in listing
