"""Fixtures: the app on SQLite and on PostgreSQL, emptied after each test; tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from console import create_app
from console.config import ConsoleSettings
from console.models import db
from flotilla.auth import SigningKey, issue_access_token, public_pem
from flotilla.testing import app_fixture, empty_tables

SIGNING_KEY = SigningKey.generate()
"""Stands in for the users service's key: console verifies with its public half."""


def make_settings(
    database_url: str,
    var_dir: Path,
    **overrides: Any,
) -> ConsoleSettings:
    """Test settings for the app on ``database_url``, trusting :data:`SIGNING_KEY`."""
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "RATE_LIMITS_ENABLED": False,
        "AUTH_PUBLIC_KEYS": public_pem(SIGNING_KEY.public_key),
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
    """A test client of the console app."""
    return app.test_client()


TOKEN_LIFETIME = timedelta(hours=12)
"""The tokens below are made once, when the tests are collected, and a whole run outlasts the
15 minutes of a user's token: they would expire before the last test uses them. What expiry
does is tested in the chassis' own tests."""


def bearer(*roles: str, user_id: int) -> dict[str, str]:
    """The Authorization header of a token for ``user_id`` with ``roles``, as users issues it."""
    token = issue_access_token(
        SIGNING_KEY,
        subject=str(user_id),
        roles=roles,
        issuer="urn:flotilla:users",
        audience="flotilla",
        lifetime=TOKEN_LIFETIME,
    )
    return {"Authorization": f"Bearer {token}"}


ADMIN = bearer("customer", "admin", user_id=1)
CUSTOMER = bearer("customer", user_id=2)


def json_of(response: TestResponse) -> dict[str, Any]:
    """The JSON object a response carries."""
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    return body


def create_body(name: str = "First", **fields: Any) -> dict[str, Any]:
    """A valid ActionCreate body."""
    return {"name": name, **fields}


@pytest.fixture
def make_action(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Create actions through the API as a signed-in customer; returns their JSON."""

    def make(name: str = "First", **fields: Any) -> dict[str, Any]:
        body = create_body(name, **fields)
        response = client.post("/api/v1/actions", json=body, headers=CUSTOMER)
        assert response.status_code == 201, response.data
        return json_of(response)

    return make
