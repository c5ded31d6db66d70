"""Fixtures: the notifications app on SQLite and PostgreSQL, a real SMTP server, events."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flotilla.messaging.outbox import Event
from flotilla.testing import app_fixture, empty_tables
from flotilla.testing.mail import MailServer
from notifications import create_app
from notifications.config import NotificationsSettings
from notifications.mail import Email
from notifications.models import db
from notifications.sender import SmtpSender


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> NotificationsSettings:
    """Test settings for a notifications app on ``database_url``."""
    values: dict[str, Any] = {"ENVIRONMENT": "test", **overrides}
    return NotificationsSettings(DATABASE_URL=database_url, VAR_DIR=var_dir, **values)


migrated_app = app_fixture(create_app, make_settings, scope="session", migrate=True)
"""One notifications app per backend for the session, migrated to head."""


@pytest.fixture
def app(migrated_app: Flask) -> Iterator[Flask]:
    """The notifications app with empty tables (and its embedded .eml writer)."""
    sender = migrated_app.extensions["notifications.sender"]
    yield migrated_app
    migrated_app.extensions["notifications.sender"] = sender
    with migrated_app.app_context():
        empty_tables(db.engine, db.metadata)


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""
    with MailServer() as server:
        yield server


@pytest.fixture
def smtp_app(app: Flask, mail_server: MailServer) -> Flask:
    """The app sending over SMTP (no TLS) to ``mail_server``."""
    settings = app.extensions["flotilla.settings"]
    smtp = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": mail_server.port, "SMTP_STARTTLS": False}
    app.extensions["notifications.sender"] = SmtpSender(settings.model_copy(update=smtp))
    return app


def parsed(email: Email, *, tolerate: tuple[type[Exception], ...] = ()) -> EmailMessage:
    """``email`` as a mail program reads it: parsed by the ``email`` package's strict policy.

    Fails on any defect the parser finds, in the message, a part or a header, except those
    of the ``tolerate`` types.
    """
    message = message_from_bytes(email.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    for part in message.walk():
        assert part.defects == []
        for name, value in part.items():
            found = [d for d in getattr(value, "defects", ()) if not isinstance(d, tolerate)]
            assert found == [], name
    return message


EventFactory = Callable[..., Event]


def user_registered_payload(**changes: Any) -> dict[str, Any]:
    """A valid ``user.registered`` v1 payload."""
    payload = {
        "user_id": 42,
        "username": "alice",
        "email": "alice@example.com",
        "display_name": "Alice A.",
        "registered_at": "2026-11-21T10:00:00+00:00",
    }
    return {**payload, **changes}


def order_line(**changes: Any) -> dict[str, Any]:
    """A line of an ``order.placed`` payload: two mugs at 10.25 (in the order's currency)."""
    line = {"product_id": 7, "name": "Mug", "quantity": 2, "unit_price": 1025, "line_total": 2050}
    return {**line, **changes}


def order_payload(**changes: Any) -> dict[str, Any]:
    """A valid ``order.placed`` v1 payload: 31.50 EUR, its amounts in cents."""
    payload = {
        "order_id": 1001,
        "user_id": 42,
        "email": "alice@example.com",
        "display_name": "Alice A.",
        "placed_at": "2026-11-21T10:00:00+00:00",
        "currency": "EUR",
        "lines": [
            order_line(),
            order_line(
                product_id=9, name="Tea <Earl Grey>", quantity=1, unit_price=1100, line_total=1100
            ),
        ],
        "total": 3150,
    }
    return {**payload, **changes}


def cancelled_payload(**changes: Any) -> dict[str, Any]:
    """A valid ``order.cancelled`` v1 payload."""
    payload = {
        "order_id": 1001,
        "user_id": 42,
        "email": "alice@example.com",
        "display_name": None,
        "cancelled_at": "2026-11-22T09:30:00+00:00",
        "reason": "Out of stock",
        "currency": "EUR",
        "total": 3150,
    }
    return {**payload, **changes}


def make_event(event_type: str, payload: dict[str, Any], version: int = 1) -> Event:
    """An event as a consumer receives it, with a fresh id."""
    return Event(uuid.uuid4(), event_type, version, datetime.now(UTC), payload)
