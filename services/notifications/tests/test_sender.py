"""Sending for real: SMTP with and without STARTTLS and a login, and the .eml writer."""

from __future__ import annotations

import smtplib
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from flotilla.testing import capture_logs, wait_until
from flotilla.testing.mail import MailServer
from notifications.config import NotificationsSettings
from notifications.events import UserRegistered, parse_payload
from notifications.mail import Email, welcome_email
from notifications.sender import EmlWriter, SmtpSender

from .conftest import make_event, user_registered_payload
from .tls import Certificate, self_signed

CREDENTIALS = ("shop", "correct horse battery")


def a_welcome(settings: NotificationsSettings, **changes: Any) -> Email:
    """A welcome e-mail to be sent."""
    event = make_event("user.registered", user_registered_payload(**changes))
    return welcome_email(parse_payload(event, UserRegistered), event_id=event.id, settings=settings)


def smtp_settings(port: int, **overrides: Any) -> NotificationsSettings:
    """Settings sending to 127.0.0.1:``port``."""
    values: dict[str, Any] = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_TIMEOUT": 5}
    return NotificationsSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for the TLS server."""
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[MailServer]:
    """An SMTP server that requires STARTTLS and a login."""
    with MailServer(tls_context=certificate.server_context(), credentials=CREDENTIALS) as server:
        yield server


def test_an_email_is_delivered_over_plain_smtp(mail_server: MailServer) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    message = a_welcome(settings)
    assert SmtpSender(settings).send(message) == f"smtp://127.0.0.1:{mail_server.port}"
    (received,) = mail_server.to("alice@example.com")
    assert received.message["Message-ID"] == message.message_id
    assert received.sender == "no-reply@shop.example"
    assert received.message.get_body(("html",)) is not None


def test_starttls_and_a_login_are_used_when_configured(
    tls_server: MailServer, certificate: Certificate
) -> None:
    settings = smtp_settings(
        tls_server.port,
        SMTP_USERNAME=CREDENTIALS[0],
        SMTP_PASSWORD=CREDENTIALS[1],
        SMTP_CA_FILE=str(certificate.cert_file),
    )
    sender = SmtpSender(settings)
    for _ in range(3):
        sender.send(a_welcome(settings))
    received = tls_server.to("alice@example.com")
    assert len(received) == 3
    assert len({item.peer for item in received}) == 1  # one TLS handshake and login for all
    assert sender.opened == 1


def test_e_mails_share_one_connection_and_a_dropped_one_is_replaced(
    mail_server: MailServer,
) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    sender = SmtpSender(settings, check_after_idle=float("inf"))  # never NOOP first
    sender.send(a_welcome(settings))
    sender.send(a_welcome(settings))
    mail_server.down()  # the server drops every client between two e-mails
    mail_server.up()
    with capture_logs() as logs:
        sender.send(a_welcome(settings))  # the envelope finds it closed: a new connection
    peers = [item.peer for item in mail_server.received()]
    assert len(peers) == 3
    assert peers[0] == peers[1] != peers[2]
    assert sender.opened == 2
    reconnected = [line for line in logs if "reconnecting" in line["message"]]
    assert len(reconnected) == 1


def test_a_connection_idle_for_long_is_checked_before_it_is_reused(
    mail_server: MailServer,
) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    now = [0.0]
    sender = SmtpSender(settings, check_after_idle=5.0, clock=lambda: now[0])
    sender.send(a_welcome(settings))
    now[0] = 4.0
    sender.send(a_welcome(settings))  # recently used: no check, same connection
    mail_server.down()
    mail_server.up()
    now[0] = 10.0
    with capture_logs() as logs:
        sender.send(a_welcome(settings))  # NOOP fails, so a new connection before MAIL
    peers = [item.peer for item in mail_server.received()]
    assert peers[0] == peers[1] != peers[2]
    assert sender.opened == 2
    assert not [line for line in logs if "reconnecting" in line["message"]]


def test_a_421_to_mail_from_is_met_with_a_new_connection_once(mail_server: MailServer) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    sender = SmtpSender(settings)
    sender.send(a_welcome(settings, email="first@example.com"))
    mail_server.refuse_mail(1)  # e.g. a limit of messages per connection
    sender.send(a_welcome(settings))
    assert sender.opened == 2
    assert len(mail_server.to("alice@example.com")) == 1
    mail_server.refuse_mail(2)  # refused on the new connection too: the task retries later
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        sender.send(a_welcome(settings, email="bob@example.com"))
    assert refused.value.smtp_code == 421
    assert mail_server.to("bob@example.com") == []


def test_a_send_cut_during_data_is_not_sent_again_on_the_spot(mail_server: MailServer) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    sender = SmtpSender(settings)
    sender.send(a_welcome(settings, email="first@example.com"))
    mail_server.hold("alice@example.com")

    def cut_while_held() -> None:
        wait_until(lambda: mail_server.holding, what="the message waiting in DATA")
        mail_server.down()

    cutter = threading.Thread(target=cut_while_held)
    cutter.start()
    try:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            sender.send(a_welcome(settings))  # the server may have had it: the task retries
    finally:
        cutter.join(10)
        mail_server.release()
    assert sender.opened == 1  # no second connection, no second attempt
    assert mail_server.to("alice@example.com") == []
    mail_server.up()
    sender.send(a_welcome(settings))  # the retry: the closed connection was not kept
    assert sender.opened == 2
    assert len(mail_server.to("alice@example.com")) == 1


def test_closing_the_sender_quits_its_connections(mail_server: MailServer) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    sender = SmtpSender(settings)
    sender.send(a_welcome(settings))
    sender.close()
    sender.send(a_welcome(settings))
    assert sender.opened == 2
    assert len({item.peer for item in mail_server.received()}) == 2


def test_a_wrong_password_fails_the_send(tls_server: MailServer, certificate: Certificate) -> None:
    settings = smtp_settings(
        tls_server.port,
        SMTP_USERNAME=CREDENTIALS[0],
        SMTP_PASSWORD="wrong",
        SMTP_CA_FILE=str(certificate.cert_file),
    )
    with pytest.raises(smtplib.SMTPAuthenticationError):
        SmtpSender(settings).send(a_welcome(settings))
    assert tls_server.received() == []


def test_an_untrusted_certificate_fails_the_send(tls_server: MailServer) -> None:
    settings = smtp_settings(tls_server.port, SMTP_USERNAME="shop", SMTP_PASSWORD="x")
    with pytest.raises(smtplib.ssl.SSLCertVerificationError):  # type: ignore[attr-defined]
        SmtpSender(settings).send(a_welcome(settings))
    assert tls_server.received() == []


def test_a_server_without_starttls_gets_nothing_in_clear(mail_server: MailServer) -> None:
    settings = smtp_settings(mail_server.port)  # STARTTLS required by default
    with pytest.raises(smtplib.SMTPNotSupportedError):
        SmtpSender(settings).send(a_welcome(settings))
    assert mail_server.received() == []


def test_a_server_that_is_down_fails_the_send_at_once(mail_server: MailServer) -> None:
    settings = smtp_settings(mail_server.port, SMTP_STARTTLS=False)
    mail_server.down()
    with pytest.raises(ConnectionRefusedError):
        SmtpSender(settings).send(a_welcome(settings))
    mail_server.up()
    SmtpSender(settings).send(a_welcome(settings))
    assert len(mail_server.received()) == 1


def test_the_eml_writer_writes_one_file_per_message_id_and_says_where(tmp_path: Path) -> None:
    writer = EmlWriter(tmp_path / "mail")
    message = a_welcome(NotificationsSettings())
    first = writer.send(message)
    again = writer.send(message)  # a redelivered event: the same file, not a second one
    assert first == again == str((tmp_path / "mail" / Path(first).name).resolve())
    assert [path.name for path in (tmp_path / "mail").iterdir()] == [Path(first).name]
    assert Path(first).suffix == ".eml"
    stored = message_from_bytes(Path(first).read_bytes(), policy=policy.default)
    assert stored["Message-ID"] == message.message_id
