"""PayFiP through eopayment, with recorded answers of the DGFiP's web service (no network).

``PayFiPServer`` stands in for ``https://www.payfip.gouv.fr/tpa/services/securite``: it
replaces the HTTP transport under eopayment's SOAP client (requests' adapter, which zeep
uses), answers each SOAP call with the next recorded answer of ``fixtures_payfip/``, and keeps
what billing sent. Any other address fails the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest
import requests
import requests.adapters
from sqlalchemy import select

from services.billing import operations
from services.billing.models import Payment, PaymentCallback
from services.billing.operations import expire_payments
from services.billing.providers.base import from_short_id, short_id
from tests.billing.support import (
    ACTIVITY,
    AGENT,
    CHILD_1,
    COMMUNE,
    FAMILY,
    OTHER_PARENT,
    PARENT,
    PUBLIC_URL,
    RETURN_URL,
    build,
)

FIXTURES = Path(__file__).parent / "fixtures_payfip"
SERVICE = "https://www.payfip.gouv.fr/tpa/services/securite"
PAY_PAGE = "https://www.payfip.gouv.fr/tpa/paiementws.web"
NUMCLI = "123456"
IDOP = "cc0cb210-1cd4-11ea-8cca-0213ad91a103"
# the commune of the tests names "payfip-jolieville" in its settings (tests/test_catalogue.py)
ENV = {"PAYFIP_PAYFIP_JOLIEVILLE_NUMCLI": NUMCLI, "PAYFIP_PAYFIP_JOLIEVILLE_ENVIRONMENT": "test"}
CALLBACK = "/payments/callback/payfip"


# --- the recorded web service -----------------------------------------------------------------


def recorded(name: str, **values: str) -> bytes:
    return (FIXTURES / f"{name}.xml").read_text().strip().format(**values).encode()


@dataclass
class PayFiPServer:
    answers: list[tuple[int, bytes]] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    down: bool = False

    # what the next calls answer
    def creates(self, idop: str = IDOP) -> None:
        self.answers.append((200, recorded("creerPaiementSecurise", idop=idop)))

    def details(self, payment_id: str, *, resultrans: str = "P", montant: str = "2460",
                idop: str = IDOP, numcli: str = NUMCLI, saisie: str = "T",
                refdet: str | None = None) -> None:
        self.answers.append((200, recorded(
            "recupererDetailPaiementSecurise", dattrans="12102026", heurtrans="1121",
            exer="2026", idop=idop, mel="parent@famille.test", montant=montant,
            numauto="112233445566-tip" if resultrans in "PV" else "", numcli=numcli,
            objet="Factures", refdet=refdet or short_id(payment_id), resultrans=resultrans,
            saisie=saisie)))

    def fails(self, code: str, libelle: str) -> None:
        self.answers.append((500, recorded("FonctionnelleErreur", code=code,
                                           descriptif="", libelle=libelle)))

    # the transport
    def send(self, adapter, request, **kwargs):
        assert request.url == SERVICE, f"no network in tests: {request.url}"
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        root = ElementTree.fromstring(body)
        operation = root.find("{*}Body")[0]
        call = {"operation": operation.tag.split("}")[1]}
        for element in operation.find("arg0"):
            call[element.tag] = element.text or ""
        self.calls.append(call)
        if self.down:
            raise requests.ConnectionError("PayFiP injoignable")
        assert self.answers, f"no recorded answer left for {call}"
        status, content = self.answers.pop(0)
        response = requests.Response()
        response.status_code = status
        response._content = content
        response.headers["Content-Type"] = "text/xml;charset=utf-8"
        response.url = request.url
        response.request = request
        return response


@pytest.fixture
def payfip(monkeypatch) -> PayFiPServer:
    server = PayFiPServer()
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send",
                        lambda adapter, request, **kw: server.send(adapter, request, **kw))
    yield server
    assert server.answers == [], "recorded answers left unused"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def billing(request, tmp_path, payfip):
    url = (f"sqlite:///{tmp_path}/billing.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    built = build(tmp_path, url, **ENV)
    yield built
    built.db.dispose()


@pytest.fixture
def security_events(monkeypatch) -> list[dict]:
    """What billing logs as security events (its structured logger, recorded)."""
    events: list[dict] = []
    real = operations.log

    class Recorder:
        def warning(self, event, **kw):
            if event == "security_event":
                events.append(kw)
            real.warning(event, **kw)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(operations, "log", Recorder())
    return events


# --- helpers ----------------------------------------------------------------------------------


def invoice(billing, amount: str = "24.60", label: str = "Restauration scolaire") -> dict:
    answer = billing.post("/api/billing/communes/jolieville/invoices", AGENT, json={
        "family_id": FAMILY, "lines": [{"label": label, "unit_price": amount}]})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def pay(billing, payfip, invoice_ids: list[str]) -> dict:
    payfip.creates()
    started = billing.post("/api/billing/payments", PARENT,
                           json={"invoice_ids": invoice_ids, "return_url": RETURN_URL})
    assert started.status_code == 201, started.get_json()
    return started.get_json()


def notify(billing, idop: str = IDOP, body: bytes | None = None):
    return billing.client().post(CALLBACK, data=body if body is not None else
                                 f"idOp={idop}".encode(),
                                 content_type="application/x-www-form-urlencoded")


def status(billing, payment_id: str) -> str:
    return billing.get(f"/api/billing/payments/{payment_id}", PARENT).get_json()["status"]


def outcomes(billing) -> list[str]:
    with billing.db.sessions() as session:
        return [c.outcome for c in session.scalars(
            select(PaymentCallback).order_by(PaymentCallback.received_at))]


# --- creation ---------------------------------------------------------------------------------


def test_creation_asks_payfip_for_an_idop_and_sends_the_parent_there(billing, payfip):
    bill = invoice(billing)
    payment = pay(billing, payfip, [bill["id"]])
    assert payment["payment_url"] == f"{PAY_PAGE}?idop={IDOP}"
    assert payment["status"] == "created" and payment["amount"] == "24.60"
    (call,) = payfip.calls
    assert call == {
        "operation": "creerPaiementSecurise", "exer": call["exer"],
        "mel": "parent@famille.test", "montant": "2460", "numcli": NUMCLI,
        "objet": "Factures " + bill["reference"].replace("-", " "),
        "refdet": short_id(payment["payment_id"]), "saisie": "T",
        "urlnotif": f"{PUBLIC_URL}/payments/callback/payfip", "urlredirect": RETURN_URL,
    }
    assert len(call["refdet"]) == 25 and from_short_id(call["refdet"]) == payment["payment_id"]
    seen = billing.get(f"/api/billing/payments/{payment['payment_id']}", AGENT).get_json()
    assert seen["provider"] == "payfip" and seen["provider_reference"] == IDOP


def test_payfip_down_or_refusing_at_creation_leaves_no_payment(billing, payfip):
    bill = invoice(billing)
    payfip.down = True
    down = billing.post("/api/billing/payments", PARENT,
                        json={"invoice_ids": [bill["id"]], "return_url": RETURN_URL})
    assert down.status_code == 503
    assert down.headers["Content-Type"] == "application/problem+json"
    payfip.down = False
    payfip.fails("R3", "Le format du paramètre REFDET n'est pas conforme")
    refused = billing.post("/api/billing/payments", PARENT,
                           json={"invoice_ids": [bill["id"]], "return_url": RETURN_URL})
    assert refused.status_code == 503
    small = invoice(billing, "0.50")
    below = billing.post("/api/billing/payments", PARENT,
                         json={"invoice_ids": [small["id"]], "return_url": RETURN_URL})
    assert below.status_code == 422 and "1,00" in below.get_json()["detail"]
    assert len(payfip.calls) == 2  # nothing asked of PayFiP below its minimum
    with billing.db.sessions() as session:
        assert list(session.scalars(select(Payment))) == []


# --- notifications ----------------------------------------------------------------------------


def test_a_success_notification_is_believed_only_from_payfip_and_pays(billing, payfip):
    first, second = invoice(billing), invoice(billing, "10.00", "Sortie au musée")
    payment = pay(billing, payfip, [first["id"], second["id"]])
    payment_id = payment["payment_id"]
    payfip.details(payment_id, montant="3460")
    answer = notify(billing)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {"status": "ok", "outcome": "applied"}
    assert payfip.calls[-1] == {"operation": "recupererDetailPaiementSecurise", "idOp": IDOP}
    assert status(billing, payment_id) == "paid"
    for bill in (first, second):
        got = billing.get(f"/api/billing/invoices/{bill['id']}", PARENT).get_json()
        assert got["status"] == "paid"
    (succeeded,) = billing.events("billing.payment.succeeded")
    assert succeeded["data"]["provider"] == "payfip"
    assert succeeded["data"]["provider_reference"] == IDOP
    assert succeeded["data"]["amount"] == "34.60"
    assert outcomes(billing) == ["applied"]


def test_a_refusal_denies_the_payment_and_leaves_the_invoice_open(billing, payfip):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.details(payment_id, resultrans="R")
    assert notify(billing).get_json()["outcome"] == "applied"
    assert status(billing, payment_id) == "denied"
    (failed,) = billing.events("billing.payment.failed")
    assert failed["data"]["status"] == "denied"
    got = billing.get(f"/api/billing/invoices/{bill['id']}", PARENT).get_json()
    assert got["status"] == "open"


def test_a_replayed_notification_changes_nothing(billing, payfip):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.details(payment_id)
    payfip.details(payment_id)
    payfip.details(payment_id, resultrans="A")  # abandoned, reported after paid: ignored
    assert notify(billing).get_json()["outcome"] == "applied"
    replay = notify(billing)
    assert replay.status_code == 200 and replay.get_json()["outcome"] == "ignored"
    late = notify(billing)
    assert late.status_code == 200 and late.get_json()["outcome"] == "ignored"
    assert status(billing, payment_id) == "paid"
    assert len(billing.events("billing.payment.succeeded")) == 1
    assert billing.events("billing.payment.failed") == []
    assert outcomes(billing) == ["applied", "ignored", "ignored"]


def test_a_fetched_amount_that_differs_is_refused_as_a_security_event(billing, payfip,
                                                                       security_events):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.details(payment_id, montant="100")  # paid 1,00 € for a 24,60 € payment
    answer = notify(billing)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert status(billing, payment_id) == "created"
    assert billing.events("billing.payment.succeeded") == []
    assert outcomes(billing) == ["rejected_amount"]
    assert security_events == [{"kind": "payment_callback_rejected", "provider": "payfip",
                                "reason": "rejected_amount", "payment_id": payment_id,
                                "remote_addr": security_events[0]["remote_addr"]}]


def test_an_operation_billing_did_not_open_is_refused(billing, payfip, security_events):
    """Anyone may open a PayFiP operation with a commune's numcli, and even our refdet and
    amount, in test mode: only the idop billing opened for the payment counts."""
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    other = "dd0cb210-1cd4-11ea-8cca-0213ad91a1ff"
    payfip.details(payment_id, idop=other)
    answer = notify(billing, other)
    assert answer.status_code == 400
    payfip.details(payment_id, numcli="654321")  # our idop, another commune's account
    assert notify(billing).status_code == 400
    payfip.details(payment_id, saisie="W")  # the account is in test mode, not production
    assert notify(billing).status_code == 400
    assert status(billing, payment_id) == "created"
    assert outcomes(billing) == ["rejected_reference", "rejected_account", "rejected_mode"]
    assert [e["reason"] for e in security_events] == [
        "rejected_reference", "rejected_account", "rejected_mode"]


def test_notifications_payfip_does_not_confirm_change_nothing(billing, payfip,
                                                             security_events):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.fails("P1", "IdOp incorrect")  # a made-up idop
    assert notify(billing, "00000000-0000-0000-0000-000000000000").status_code == 400
    assert notify(billing, body=b"").status_code == 400  # no idop: PayFiP is not even asked
    assert notify(billing, body=b"idOp=a&idOp=b").status_code == 400
    payfip.details(payment_id, refdet="NOTOURS")  # an idop of another application
    assert notify(billing).status_code == 400
    payfip.down = True
    unreachable = notify(billing)
    assert unreachable.status_code == 503  # not verified: the reconciliation will ask again
    assert status(billing, payment_id) == "created"
    assert outcomes(billing) == ["rejected_signature", "rejected_signature",
                                 "rejected_signature", "unknown_payment",
                                 "provider_unavailable"]
    assert len(security_events) == 4
    assert [c["operation"] for c in payfip.calls] == [
        "creerPaiementSecurise", "recupererDetailPaiementSecurise",
        "recupererDetailPaiementSecurise", "recupererDetailPaiementSecurise"]


# --- reconciliation ---------------------------------------------------------------------------


def test_a_lost_notification_is_recovered_by_reconciliation(billing, payfip):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.details(payment_id)
    assert expire_payments(billing.db, timedelta(seconds=-1),
                           providers=billing.ops.providers) == 1
    assert payfip.calls[-1] == {"operation": "recupererDetailPaiementSecurise", "idOp": IDOP}
    assert status(billing, payment_id) == "paid"
    assert billing.get(f"/api/billing/invoices/{bill['id']}", PARENT).get_json()["status"] == \
        "paid"
    (succeeded,) = billing.events("billing.payment.succeeded")
    assert succeeded["data"]["provider_reference"] == IDOP
    assert billing.events("billing.payment.failed") == []
    seen = billing.get(f"/api/billing/payments/{payment_id}", AGENT).get_json()
    assert [c["outcome"] for c in seen["callbacks"]] == ["reconciliation_applied"]
    # the notification arriving after all changes nothing
    payfip.details(payment_id)
    assert notify(billing).get_json()["outcome"] == "ignored"


def test_reconciliation_waits_while_payfip_has_no_result_then_expires(billing, payfip):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.fails("P5", "Résultat de la transaction non connu")  # the parent is still paying
    assert expire_payments(billing.db, timedelta(seconds=-1),
                           providers=billing.ops.providers) == 0
    assert status(billing, payment_id) == "waiting"
    assert billing.events("billing.payment.failed") == []
    payfip.fails("P1", "IdOp incorrect")  # cleaned at night: the operation never happened
    assert expire_payments(billing.db, timedelta(seconds=-1),
                           providers=billing.ops.providers) == 1
    assert status(billing, payment_id) == "expired"
    (failed,) = billing.events("billing.payment.failed")
    assert failed["data"]["status"] == "expired"


def test_reconciliation_refuses_an_answer_that_does_not_match(billing, payfip,
                                                              security_events):
    bill = invoice(billing)
    payment_id = pay(billing, payfip, [bill["id"]])["payment_id"]
    payfip.details(payment_id, montant="100")
    expire_payments(billing.db, timedelta(seconds=-1), providers=billing.ops.providers)
    assert status(billing, payment_id) == "expired"
    assert billing.events("billing.payment.succeeded") == []
    assert [e["reason"] for e in security_events] == ["rejected_amount"]
    assert outcomes(billing) == ["reconciliation_rejected_amount"]


# --- baskets ----------------------------------------------------------------------------------


def test_a_basket_presented_again_keeps_its_idop(billing, payfip):
    basket = "ba000000-0000-4000-8000-0000000000f1"
    body = {"basket_id": basket, "family_id": FAMILY, "commune_id": COMMUNE,
            "lines": [{"booking_ids": [], "child_id": CHILD_1, "child_name": "Léa",
                       "activity_id": ACTIVITY, "activity_name": "Centre de loisirs",
                       "dates": ["2026-12-02"], "unit_price": "14.00", "amount": "14.00"}],
            "amount": "14.00", "return_url": f"{PUBLIC_URL}/reservations/panier/retour"}
    payfip.creates()
    first = billing.internal("/internal/checkouts", body, key=basket)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["payment_url"] == f"{PAY_PAGE}?idop={IDOP}"
    again = billing.internal("/internal/checkouts", body, key=basket)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert [c["operation"] for c in payfip.calls] == ["creerPaiementSecurise"]
    assert payfip.calls[0]["montant"] == "1400"
    assert payfip.calls[0]["mel"] == "parent@famille.test"


def test_someone_elses_invoice_is_not_sent_to_payfip(billing, payfip):
    bill = invoice(billing)
    answer = billing.post("/api/billing/payments", OTHER_PARENT,
                          json={"invoice_ids": [bill["id"]], "return_url": RETURN_URL})
    assert answer.status_code == 404
    assert payfip.calls == []

