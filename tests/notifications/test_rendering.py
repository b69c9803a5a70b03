"""Each kind of e-mail, rendered from the catalogue examples: French, links, amounts, dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from services.notifications.domain import KINDS
from services.notifications.events import HANDLERS
from services.notifications.rendering import date_long, datetime_long, euros, month_year
from tests.notifications.support import PUBLIC_URL, consumer, event, handle, messages

# Every event of DESIGN section 5 that concerns a person.
PERSON_EVENTS = {
    "accounts.family.invited",
    "accounts.family.activated",
    "accounts.password_reset.requested",
    "reservations.booking.confirmed",
    "reservations.booking.cancelled",
    "billing.invoice.issued",
    "billing.payment.succeeded",
    "billing.payment.failed",
    "billing.credit_note.issued",
    "requests.request.submitted",
    "requests.request.status_changed",
}

# What each e-mail must say (text part), from the catalogue's example of its event.
EXPECTED = {
    "accounts.family.invited": (
        "invitation",
        "Activez votre compte sur le portail famille de JolieVille Test",
        ["http://localhost:8000/activation?token=abc123", "famille CASSEREAU",
         "valable jusqu'au lundi 12 octobre 2026 à 10 h 00", "JV-0042"],
    ),
    "accounts.family.activated": (
        "welcome",
        "Bienvenue sur votre portail famille",
        [f"{PUBLIC_URL}/connexion", "parent@famille.test", "Votre compte est activé"],
    ),
    "accounts.password_reset.requested": (
        "password_reset",
        "Réinitialisation de votre mot de passe",
        ["https://portail.example.fr/mot-de-passe/nouveau?token=xyz",
         "valable une heure, jusqu'au lundi 5 octobre 2026 à 9 h 30"],
    ),
    "reservations.booking.confirmed": (
        "booking_confirmed",
        "Réservation confirmée : Centre de loisirs mercredi pour Léa",
        ["- mercredi 7 octobre 2026", "- mercredi 14 octobre 2026",
         "12,50 € par jour, soit 25,00 €", "payées à la réservation",
         f"{PUBLIC_URL}/reservations"],
    ),
    "reservations.booking.cancelled": (
        "booking_cancelled",
        "Réservation annulée : Centre de loisirs mercredi pour Léa",
        ["- mercredi 7 octobre 2026", "Motif : Rendez-vous médical",
         "25,00 € vous seront rendus sous forme d'avoir", f"{PUBLIC_URL}/reservations"],
    ),
    "billing.invoice.issued": (
        "invoice_issued",
        "Nouvelle facture F2026-10-0042 : 82,00 €",
        ["pour octobre 2026", "Montant : 82,00 €",
         "À régler avant le : dimanche 15 novembre 2026", f"{PUBLIC_URL}/factures"],
    ),
    "billing.payment.succeeded": (
        "payment_succeeded",
        "Paiement reçu : 82,00 €",
        ["le mardi 3 novembre 2026 à 10 h 15", "Facture réglée : F2026-10-0042",
         "SIM-20261103-0001", f"{PUBLIC_URL}/factures"],
    ),
    "billing.payment.failed": (
        "payment_failed",
        "Votre paiement n'a pas abouti",
        ["Votre paiement de 28,20 € a été refusé", "Motif : Paiement refusé par la banque",
         f"{PUBLIC_URL}/reservations"],
    ),
    "billing.credit_note.issued": (
        "credit_note_issued",
        "Avoir A2026-0003 : 25,00 € en votre faveur",
        ["de 25,00 €", "l'annulation d'une réservation", f"{PUBLIC_URL}/factures"],
    ),
    "requests.request.submitted": (
        "request_submitted",
        "Demande reçue : Absence justifiée",
        ["« Absence justifiée » (référence D2026-0101)", "la mairie de JolieVille Test",
         f"{PUBLIC_URL}/demandes"],
    ),
    "requests.request.status_changed": (
        "request_status_changed",
        "Votre demande « Absence justifiée » : acceptée",
        ["est maintenant : acceptée (elle était : en cours)",
         "Absence justifiée, elle ne sera pas facturée.", f"{PUBLIC_URL}/demandes"],
    ),
}


def test_every_person_event_has_a_handler_and_the_communes_are_still_followed():
    assert set(KINDS) == PERSON_EVENTS
    assert set(HANDLERS) == PERSON_EVENTS | {"accounts.commune.created",
                                             "accounts.commune.updated",
                                             "accounts.household.erased"}  # issue 8
    assert set(EXPECTED) == PERSON_EVENTS


@pytest.mark.parametrize("event_type", sorted(PERSON_EVENTS))
def test_each_kind_is_rendered_in_french_with_its_link(jolieville, event_type):
    kind, subject, phrases = EXPECTED[event_type]
    ev = event(event_type)
    assert handle(consumer(jolieville), ev) == "handled"
    recorded = messages(jolieville, event_id=ev.id)
    assert recorded, "aucun message enregistré"
    for message in recorded:
        assert message.kind == kind
        assert message.subject == subject
        assert message.status == "pending"
        assert message.commune_id is not None
        assert message.from_name == "Mairie de JolieVille Test"
        assert message.reply_to == "enfance@jolieville.test"
        text = message.text_body
        assert text.startswith("Bonjour,")
        for phrase in phrases:
            assert phrase in text, (phrase, text)
        # The shared footer: who writes, how to reach them, the portal.
        assert "Mairie de JolieVille Test" in text
        assert "enfance@jolieville.test · 01 23 45 67 89" in text
        assert f"Votre portail famille : {PUBLIC_URL}/" in text
        html = message.html_body
        assert html.startswith("<!DOCTYPE html>")
        assert '<html lang="fr">' in html
        assert f"<title>{subject}</title>" in html.replace("&#39;", "'")
        links = [p for p in phrases if p.startswith("http")]
        for link in links:
            assert f'href="{link}"' in html
        assert f'href="{PUBLIC_URL}/"' in html


def test_family_and_recipients_come_from_the_event(jolieville):
    ev = event("reservations.booking.confirmed")
    handle(consumer(jolieville), ev)
    recorded = messages(jolieville, event_id=ev.id)
    assert sorted(m.recipient for m in recorded) == ["parent@famille.test",
                                                     "second.parent@famille.test"]
    assert {m.family_id for m in recorded} == {ev.data["family_id"]}
    assert {m.commune_id for m in recorded} == {ev.commune_id}


def test_html_is_escaped_and_text_is_not(jolieville):
    ev = event("requests.request.status_changed",
               agent_message="<script>alert('x')</script> Tom & Léa")
    handle(consumer(jolieville), ev)
    [message] = messages(jolieville, event_id=ev.id)
    assert "<script>alert('x')</script> Tom & Léa" in message.text_body
    assert "<script>" not in message.html_body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Tom &amp; Léa" in message.html_body


def test_one_day_monthly_booking(jolieville):
    ev = event("reservations.booking.confirmed", booking_ids=[EXAMPLE_BOOKING],
               dates=["2026-10-01"], payment_mode="monthly", unit_price="4.10")
    handle(consumer(jolieville), ev)
    text = messages(jolieville, event_id=ev.id)[0].text_body
    assert "est confirmée pour le jeudi 1er octobre 2026." in text
    assert "Tarif : 4,10 € par jour." in text
    assert "facturées sur votre facture mensuelle" in text


def test_a_late_cancellation_without_refund(jolieville):
    ev = event("reservations.booking.cancelled", within_deadline=False, refund_due="0.00",
               refund_lines=[], reason=None)
    handle(consumer(jolieville), ev)
    text = messages(jolieville, event_id=ev.id)[0].text_body
    assert "hors délai : les jours annulés restent dus" in text
    assert "Motif" not in text


def test_waiting_for_the_family(jolieville):
    ev = event("requests.request.status_changed", old_status="submitted",
               new_status="waiting_for_family", agent_message=None)
    handle(consumer(jolieville), ev)
    [message] = messages(jolieville, event_id=ev.id)
    assert message.subject == "Votre demande « Absence justifiée » : en attente de votre réponse"
    assert "attend une réponse ou un document de votre part" in message.text_body


def test_an_unknown_commune_still_gets_its_mail_with_what_the_event_says(db):
    # The invitation may overtake the commune's creation event: the event names the commune.
    ev = event("accounts.family.invited")
    handle(consumer(db), ev)
    [message] = messages(db, event_id=ev.id)
    assert message.from_name == "Mairie de JolieVille Test"
    assert message.reply_to is None
    assert "merci de ne pas y répondre" in message.text_body
    # Other events do not name it: the platform speaks.
    ev = event("billing.invoice.issued")
    handle(consumer(db), ev)
    [message] = messages(db, event_id=ev.id)
    assert message.from_name == "Portail Famille"
    assert "votre mairie" not in message.subject


def test_a_reset_without_commune_comes_from_the_platform(jolieville):
    ev = event("accounts.password_reset.requested", commune_id=None)
    handle(consumer(jolieville), ev)
    [message] = messages(jolieville, event_id=ev.id)
    assert message.from_name == "Portail Famille"
    assert message.commune_id is None
    assert message.family_id == ev.data["family_id"]


def test_the_commune_name_follows_its_updates(jolieville):
    handle(consumer(jolieville), event("accounts.commune.updated"))  # renamed "JolieVille"
    ev = event("billing.invoice.issued")
    handle(consumer(jolieville), ev)
    assert messages(jolieville, event_id=ev.id)[0].from_name == "Mairie de JolieVille"


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("82.00"), "82,00 €"),
    (Decimal("0.5"), "0,50 €"),
    ("1234.5", "1 234,50 €"),
    (Decimal("1234567.89"), "1 234 567,89 €"),
    (3, "3,00 €"),
])
def test_amounts_in_french(value, expected):
    assert euros(value) == expected


def test_dates_in_french():
    assert date_long(date(2026, 10, 5)) == "lundi 5 octobre 2026"
    assert date_long("2026-08-01") == "samedi 1er août 2026"
    assert date_long(date(2027, 2, 14)) == "dimanche 14 février 2027"
    # Paris time: summer (UTC+2) and winter (UTC+1).
    assert datetime_long(datetime(2026, 10, 12, 8, 0, tzinfo=UTC)) == \
        "lundi 12 octobre 2026 à 10 h 00"
    assert datetime_long(datetime(2026, 12, 24, 17, 5, tzinfo=UTC)) == \
        "jeudi 24 décembre 2026 à 18 h 05"
    assert month_year("2026-10") == "octobre 2026"


EXAMPLE_BOOKING = "b0000000-0000-4000-8000-0000000000aa"
