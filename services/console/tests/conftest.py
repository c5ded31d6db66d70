"""Fixtures: the console on SQLite and on PostgreSQL, and administrators signed in to it.

The services behind the console are not running here: their addresses refuse connections,
so a page that needs one shows the "unavailable" page fast. What the console does with real
services, in a real browser, is tested end to end (tests/e2e/console).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from console import create_app, sessions, signin
from console.config import ConsoleSettings
from console.models import db
from flotilla import ADMIN
from flotilla.auth import SigningKey, issue_access_token, public_pem
from flotilla.testing import app_fixture, empty_tables

SIGNING_KEY = SigningKey.generate()
"""Stands in for the users service's key: the console verifies with its public half."""
NOWHERE = "http://127.0.0.1:1"
"""An address that refuses connections at once: the services are not running here."""
BASE_URL = "https://console.test"
"""Over HTTPS, as in production: the session cookie is Secure and ``__Host-``."""
TOKEN_LIFETIME = timedelta(hours=12)


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> ConsoleSettings:
    """Test settings for the console on ``database_url``, trusting :data:`SIGNING_KEY`."""
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "RATE_LIMITS_ENABLED": False,
        "AUTH_PUBLIC_KEYS": public_pem(SIGNING_KEY.public_key),
        "USERS_URL": NOWHERE,
        "CATALOG_URL": NOWHERE,
        "ORDERS_URL": NOWHERE,
        "HTTP_RETRIES": 0,
        "SECRET_KEY": "test-secret-key-" + "k" * 32,
        **overrides,
    }
    return ConsoleSettings(DATABASE_URL=database_url, VAR_DIR=var_dir, **values)


migrated_app = app_fixture(create_app, make_settings, scope="session", migrate=True)
"""One console app per backend for the session, migrated to head."""


@pytest.fixture
def app(migrated_app: Flask) -> Iterator[Flask]:
    """The console app with empty tables."""
    yield migrated_app
    with migrated_app.app_context():
        empty_tables(db.engine, db.metadata)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A browser of the console, over HTTPS."""
    return app.test_client()


def access_token(*roles: str, user_id: int = 7) -> str:
    """An access token as users issues it."""
    return issue_access_token(
        SIGNING_KEY,
        subject=str(user_id),
        roles=roles,
        issuer="urn:flotilla:users",
        audience="flotilla",
        lifetime=TOKEN_LIFETIME,
    )


def sign_in(client: FlaskClient, *, signed_in_at: float | None = None) -> None:
    """Give ``client`` an administrator's session, as a sign-in at users would leave it."""
    with client.session_transaction(base_url=BASE_URL) as session:
        session.update(
            {
                signin.ACCESS_TOKEN: access_token(ADMIN),
                signin.REFRESH_TOKEN: "refresh-token",
                signin.EXPIRES_AT: time.time() + TOKEN_LIFETIME.total_seconds(),
                signin.ADMINISTRATOR: {"user_id": "7", "name": "Ada Admin"},
                sessions.SIGNED_IN_AT: signed_in_at if signed_in_at is not None else time.time(),
            }
        )
        session.permanent = True


def csrf_token(client: FlaskClient) -> str:
    """A valid CSRF token of ``client``'s session, read off the sign-in form."""
    page = client.get("/console/sign-in", base_url=BASE_URL).get_data(as_text=True)
    marker = 'name="csrf_token" value="'
    start = page.index(marker) + len(marker)
    return page[start : page.index('"', start)]
