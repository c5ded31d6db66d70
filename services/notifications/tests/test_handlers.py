"""Handlers send one e-mail per event, record it with the event id, and retry on failure."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from flask import Flask
from pydantic import ValidationError
from sqlalchemy import select

from flotilla.messaging.outbox import Event
from flotilla.messaging.tasks import tasks_state
from flotilla.testing import capture_logs
from flotilla.testing.mail import MailServer
from notifications.handlers import send_cancellation_notice, send_order_confirmation, send_welcome
from notifications.models import SentEmail, db, processed

from .conftest import cancelled_payload, make_event, order_payload, user_registered_payload


def sent(app: Flask) -> list[tuple[uuid.UUID, str, str]]:
    """(event id, kind, recipient) of every recorded e-mail."""
    with app.app_context():
        rows = db.session.scalars(select(SentEmail).order_by(SentEmail.sent_at))
        return [(row.event_id, row.kind, row.recipient) for row in rows]


def processed_ids(app: Flask) -> list[uuid.UUID]:
    """Event ids recorded as processed, by any consumer."""
    with app.app_context():
        return list(db.session.scalars(select(processed.table.c.event_id)))


def handle(app: Flask, event: Event) -> None:
    """Run the event through the worker's own dispatcher, in the app context."""
    dispatch = tasks_state(app).celery.tasks["flotilla.event"]
    with app.app_context():
        dispatch.run(event.to_dict())


def test_a_registration_sends_one_welcome_and_records_it(
    smtp_app: Flask, mail_server: MailServer
) -> None:
    event = make_event("user.registered", user_registered_payload())
    handle(smtp_app, event)
    (received,) = mail_server.to("alice@example.com")
    assert received.message["Subject"] == "Welcome to Flotilla Shop"
    assert sent(smtp_app) == [(event.id, "welcome", "alice@example.com")]
    assert processed_ids(smtp_app) == [event.id]


def test_a_redelivered_event_sends_nothing_twice(smtp_app: Flask, mail_server: MailServer) -> None:
    event = make_event("user.registered", user_registered_payload())
    with capture_logs() as logs:
        for _ in range(3):
            handle(smtp_app, event)
    assert len(mail_server.to("alice@example.com")) == 1
    assert len(sent(smtp_app)) == 1
    skipped = [line for line in logs if line["message"] == "duplicate event skipped"]
    assert [line["event_id"] for line in skipped] == [str(event.id)] * 2


def test_an_smtp_failure_records_nothing_so_the_retry_sends(
    smtp_app: Flask, mail_server: MailServer
) -> None:
    event = make_event("user.registered", user_registered_payload())
    mail_server.down()
    with pytest.raises(ConnectionRefusedError):
        handle(smtp_app, event)
    assert (sent(smtp_app), processed_ids(smtp_app)) == ([], [])
    mail_server.up()
    handle(smtp_app, event)
    assert len(mail_server.to("alice@example.com")) == 1
    assert processed_ids(smtp_app) == [event.id]


def test_orders_get_a_confirmation_and_a_cancellation_notice(
    smtp_app: Flask, mail_server: MailServer
) -> None:
    placed = make_event("order.placed", order_payload())
    cancelled = make_event("order.cancelled", cancelled_payload())
    handle(smtp_app, placed)
    handle(smtp_app, cancelled)
    subjects = [item.message["Subject"] for item in mail_server.to("alice@example.com")]
    assert subjects == [
        "Your order #1001 at Flotilla Shop is confirmed",
        "Your order #1001 at Flotilla Shop was cancelled",
    ]
    assert [kind for _, kind, _ in sent(smtp_app)] == ["order_placed", "order_cancelled"]


def test_the_same_event_id_is_processed_once_per_consumer(
    smtp_app: Flask, mail_server: MailServer
) -> None:
    event = make_event("user.registered", user_registered_payload())
    with smtp_app.app_context():
        send_welcome(event)
        send_welcome(event)
    assert len(mail_server.received()) == 1


def test_a_malformed_event_fails_before_sending_and_records_nothing(
    smtp_app: Flask, mail_server: MailServer
) -> None:
    event = make_event("order.placed", order_payload(email="nobody"))
    with pytest.raises(ValidationError), smtp_app.app_context():
        send_order_confirmation(event)
    wrong_version = make_event("order.cancelled", cancelled_payload(), version=2)
    with pytest.raises(ValueError, match="v2"), smtp_app.app_context():
        send_cancellation_notice(wrong_version)
    assert mail_server.received() == []
    assert processed_ids(smtp_app) == []


def test_the_embedded_default_writes_an_eml_file_and_logs_where(app: Flask) -> None:
    event = make_event("user.registered", user_registered_payload())
    with capture_logs() as logs:
        handle(app, event)
    (written,) = [line["via"] for line in logs if line["message"] == "e-mail sent"]
    path = Path(written)
    assert path.parent == (app.extensions["flotilla.settings"].VAR_DIR / "mail").resolve()
    assert str(event.id) in path.name
    assert b"Subject: Welcome to Flotilla Shop" in path.read_bytes()
    assert sent(app) == [(event.id, "welcome", "alice@example.com")]
    path.unlink()


def test_the_queue_is_bound_to_the_three_event_types(app: Flask) -> None:
    queue = tasks_state(app).queue
    assert queue.name == "notifications.tasks"
    bound = sorted(binding.routing_key for binding in queue.bindings)
    assert bound == ["order.cancelled", "order.placed", "user.registered"]
