"""Delivery: a real SMTP server, outages, refusals, the dev mailbox, the claim on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.common import catalogue
from services.common.config import ConfigError, Settings
from services.common.db import Database
from services.common.mailbox import list_messages
from services.common.migrate import upgrade
from services.notifications.domain import record
from services.notifications.sender import (
    MaildirTransport,
    Sender,
    SmtpConfig,
    SmtpTransport,
    backoff,
    parse_smtp_url,
    transport_from_settings,
    utc,
)
from tests.notifications.support import (
    CONFIG,
    ListTransport,
    SmtpServer,
    consumer,
    event,
    free_port,
    handle,
    messages,
    now,
    parse,
)

MAIL_FROM = "no-reply@portail-famille.test"


def smtp_sender(db: Database, port: int, **options) -> Sender:
    transport = SmtpTransport(SmtpConfig("127.0.0.1", port, timeout=3), mail_from=MAIL_FROM)
    return Sender(db, transport, mail_from=MAIL_FROM, **options)


def record_invoice(db: Database, **changes):
    ev = event("billing.invoice.issued", **changes)
    handle(consumer(db), ev)
    return ev


def test_a_real_smtp_server_receives_the_mail_with_both_parts(jolieville, smtp_server):
    ev = record_invoice(jolieville)
    [message] = messages(jolieville, event_id=ev.id)
    sender = smtp_sender(jolieville, smtp_server.port)

    assert sender.run_once() == 1

    [(envelope_from, envelope_to, raw)] = smtp_server.recorder.received
    assert envelope_from == MAIL_FROM
    assert envelope_to == ["parent@famille.test"]
    email = parse(raw)
    assert email["From"] == "Mairie de JolieVille Test <no-reply@portail-famille.test>"
    assert email["To"] == "parent@famille.test"
    assert email["Reply-To"] == "enfance@jolieville.test"
    assert email["Subject"] == "Nouvelle facture F2026-10-0042 : 82,00 €"
    assert email["Message-ID"] == f"<{message.id}@portail-famille.test>"
    assert email["X-Portail-Event"] == ev.id
    assert email["Date"]
    assert email["Auto-Submitted"] == "auto-generated"
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(preferencelist=("plain",)).get_content()
    html = email.get_body(preferencelist=("html",)).get_content()
    assert "Montant : 82,00 €" in text
    assert "https://portail.jolieville.test/factures" in text
    assert 'href="https://portail.jolieville.test/factures"' in html
    assert "<strong>82,00 €</strong>" in html

    [sent] = messages(jolieville, event_id=ev.id)
    assert sent.status == "sent"
    assert sent.sent_at is not None
    assert sent.attempts == 1
    assert sent.last_error is None
    assert sender.run_once() == 0
    assert len(smtp_server.recorder.received) == 1


def test_an_smtp_outage_delays_the_mail_and_loses_none(jolieville):
    server = SmtpServer()  # its port is chosen, nothing listens there yet
    ev = record_invoice(jolieville, recipients=["parent@famille.test", "autre@famille.test"])
    sender = smtp_sender(jolieville, server.port)
    t0 = now()

    assert sender.run_once(now=t0) == 2
    for message in messages(jolieville, event_id=ev.id):
        assert message.status == "pending"
        assert message.attempts == 1
        assert utc(message.next_attempt_at) == t0 + timedelta(seconds=10)
        assert "injoignable" in message.last_error
    # The server was out of reach: the second message was not even tried.
    assert sum("non tenté" in m.last_error for m in messages(jolieville)) == 1

    assert sender.run_once(now=t0 + timedelta(seconds=5)) == 0  # not due yet
    t1 = t0 + timedelta(seconds=11)
    assert sender.run_once(now=t1) == 2  # still down: 30 s more
    for message in messages(jolieville, event_id=ev.id):
        assert message.attempts == 2
        assert utc(message.next_attempt_at) == t1 + timedelta(seconds=30)

    server.start()
    try:
        assert sender.run_once(now=t1 + timedelta(seconds=29)) == 0
        assert sender.run_once(now=t1 + timedelta(seconds=30)) == 2
        assert sender.run_once(now=t1 + timedelta(hours=2)) == 0
        received = server.recorder.received
        assert sorted(rcpt for _, [rcpt], _ in received) == ["autre@famille.test",
                                                             "parent@famille.test"]
    finally:
        server.stop()
    for message in messages(jolieville, event_id=ev.id):
        assert message.status == "sent"
        assert message.attempts == 3


def test_backoff_grows_to_an_hour():
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [
        10, 30, 120, 300, 900, 1800, 3600, 3600, 3600]


def test_still_failing_after_a_day_the_message_fails_for_good(jolieville):
    ev = record_invoice(jolieville)
    sender = smtp_sender(jolieville, free_port())
    sender.run_once(now=now() + timedelta(hours=23))
    [message] = messages(jolieville, event_id=ev.id)
    assert message.status == "pending"
    sender.run_once(now=now() + timedelta(hours=24, seconds=1))
    [message] = messages(jolieville, event_id=ev.id)
    assert message.status == "failed"
    assert message.attempts == 2
    assert message.last_error.startswith("abandon après 2 tentatives en 24 h : serveur SMTP")
    assert message.failed_at is not None


def test_a_temporary_refusal_is_retried(jolieville, smtp_server):
    smtp_server.recorder.refuse["parent@famille.test"] = "451 4.3.0 Try again later"
    ev = record_invoice(jolieville)
    sender = smtp_sender(jolieville, smtp_server.port)
    t0 = now()
    sender.run_once(now=t0)
    [message] = messages(jolieville, event_id=ev.id)
    assert (message.status, message.attempts) == ("pending", 1)
    assert "451" in message.last_error
    del smtp_server.recorder.refuse["parent@famille.test"]
    sender.run_once(now=t0 + timedelta(seconds=10))
    [message] = messages(jolieville, event_id=ev.id)
    assert message.status == "sent"
    assert len(smtp_server.recorder.received) == 1


def test_a_refused_recipient_fails_at_once_and_others_still_go(jolieville, smtp_server):
    smtp_server.recorder.refuse["parent@famille.test"] = "550 5.1.1 Mailbox unknown"
    ev = record_invoice(jolieville, recipients=["parent@famille.test", "autre@famille.test"])
    sender = smtp_sender(jolieville, smtp_server.port)
    assert sender.run_once() == 2
    by_recipient = {m.recipient: m for m in messages(jolieville, event_id=ev.id)}
    refused = by_recipient["parent@famille.test"]
    assert refused.status == "failed"
    assert refused.attempts == 1
    assert "550 5.1.1 Mailbox unknown" in refused.last_error
    assert by_recipient["autre@famille.test"].status == "sent"
    assert sender.run_once(now=now() + timedelta(days=2)) == 0  # never tried again


def test_smtp_login_from_the_url(jolieville):
    seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"p@ss:word")

    server = SmtpServer(authenticator=authenticator, auth_require_tls=False).start()
    try:
        config = parse_smtp_url(f"smtp://mairie%40jolieville.test:p%40ss%3Aword@127.0.0.1:"
                                f"{server.port}")
        record_invoice(jolieville)
        sender = Sender(jolieville, SmtpTransport(config, mail_from=MAIL_FROM),
                        mail_from=MAIL_FROM)
        assert sender.run_once() == 1
    finally:
        server.stop()
    assert seen == [("mairie@jolieville.test", "p@ss:word")]
    assert len(server.recorder.received) == 1


def test_the_maildir_backend_fills_the_dev_mailbox(jolieville, tmp_path):
    folder = tmp_path / "mailbox"
    ev = event("accounts.family.invited")
    handle(consumer(jolieville), ev)
    sender = Sender(jolieville, MaildirTransport(folder), mail_from=MAIL_FROM)
    assert sender.run_once() == 1
    [item] = list_messages(folder)
    assert item["subject"] == "Activez votre compte sur le portail famille de JolieVille Test"
    assert item["to"] == "parent@famille.test"
    assert item["from"] == "Mairie de JolieVille Test <no-reply@portail-famille.test>"
    assert "http://localhost:8000/activation?token=abc123" in item["text"]
    assert 'href="http://localhost:8000/activation?token=abc123"' in item["html"]
    assert messages(jolieville, event_id=ev.id)[0].status == "sent"


def settings(tmp_path, env="dev", **extra) -> Settings:
    return Settings(service="notifications", env=env, data_dir=tmp_path, extra=extra)


def test_the_transport_follows_smtp_url(tmp_path):
    maildir = transport_from_settings(settings(tmp_path, SMTP_URL="maildir"))
    assert isinstance(maildir, MaildirTransport)
    assert maildir.folder == tmp_path / "mailbox"
    moved = transport_from_settings(settings(tmp_path, SMTP_URL="maildir",
                                             DEV_MAILBOX_DIR=str(tmp_path / "ailleurs")))
    assert moved.folder == tmp_path / "ailleurs"
    assert isinstance(transport_from_settings(settings(tmp_path)), MaildirTransport)  # dev
    smtp = transport_from_settings(settings(
        tmp_path, "production", SMTP_URL="smtps://u:p@mail.example.fr", SMTP_TIMEOUT="4",
        MAIL_FROM="Portail <portail@jolieville.fr>"))
    assert smtp.config == SmtpConfig("mail.example.fr", 465, "tls", "u", "p", 4.0)
    assert smtp.mail_from == "portail@jolieville.fr"
    with pytest.raises(ConfigError, match="SMTP_URL est obligatoire"):
        transport_from_settings(settings(tmp_path, "production"))
    with pytest.raises(ConfigError, match="schéma"):
        transport_from_settings(settings(tmp_path, SMTP_URL="http://mail"))


@pytest.mark.parametrize(("url", "expected"), [
    ("smtp://127.0.0.1:1025", SmtpConfig("127.0.0.1", 1025)),
    ("smtp://mail.example.fr", SmtpConfig("mail.example.fr", 25)),
    ("smtp+starttls://user:secret@mail.example.fr:587",
     SmtpConfig("mail.example.fr", 587, "starttls", "user", "secret")),
    ("smtp+starttls://mail.example.fr", SmtpConfig("mail.example.fr", 587, "starttls")),
    ("smtps://user:s%2Fcret@mail.example.fr:465?timeout=5",
     SmtpConfig("mail.example.fr", 465, "tls", "user", "s/cret", 5.0)),
])
def test_smtp_urls(url, expected):
    assert parse_smtp_url(url) == expected


# --- PostgreSQL: several senders share the work -----------------------------------------------


@pytest.fixture
def pg_db(pg_url):
    upgrade("services.notifications", pg_url)
    database = Database(pg_url)
    handle(consumer(database), event("accounts.commune.created"))
    yield database
    database.dispose()


@pytest.mark.services
@pytest.mark.timeout(60)
def test_the_claim_skips_what_another_sender_holds(pg_db):
    ids = {m.id for ev in [record_invoice(pg_db) for _ in range(3)]
           for m in messages(pg_db, event_id=ev.id)}
    sender = Sender(pg_db, ListTransport(), batch_size=10)
    when = now() + timedelta(seconds=1)
    with pg_db.sessions() as other, other.begin():
        held = {m.id for m in other.scalars(sender.due_query(when, 1))}
        assert len(held) == 1
        # Another connection: must neither wait for the locked row nor take it.
        claimed = {m.id for m in sender.claim(when)}
        assert claimed == ids - held
    # Claimed rows are leased; the one that was only held is free again.
    assert {m.id for m in sender.claim(when)} == held
    assert sender.claim(when) == []


@pytest.mark.services
@pytest.mark.timeout(120)
def test_competing_senders_send_each_message_exactly_once(pg_db):
    for _ in range(15):
        record_invoice(pg_db, recipients=["parent@famille.test", "autre@famille.test"])
    transport = ListTransport()
    senders = [Sender(pg_db, transport, batch_size=4) for _ in range(3)]
    when = now() + timedelta(seconds=1)

    def drain(sender):
        while sender.run_once(now=when):
            pass

    threads = [threading.Thread(target=drain, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [email["Message-ID"] for _, email in transport.sent]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    assert {m.status for m in messages(pg_db)} == {"sent"}


@pytest.mark.services
@pytest.mark.timeout(60)
def test_one_message_per_event_and_recipient_on_postgresql(pg_db):
    ev = event("billing.invoice.issued")
    cons = consumer(pg_db)
    assert handle(cons, ev) == "handled"
    assert handle(cons, ev) == "duplicate"
    loaded = catalogue.validate(ev.type, 1, ev.data, strict=False)
    with pg_db.transaction() as session:  # past the inbox: the unique key ignores it
        assert record(session, ev, loaded, CONFIG) == 0
    assert len(messages(pg_db, event_id=ev.id)) == 1
