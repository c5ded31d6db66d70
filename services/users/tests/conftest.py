"""Fixtures: the users app on SQLite and on PostgreSQL, emptied after every test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from flotilla.auth import ADMIN, CUSTOMER, issue_access_token
from flotilla.testing import app_fixture, empty_tables
from users import create_app, service
from users.config import UsersSettings
from users.keys import current_key_ring
from users.models import db


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> UsersSettings:
    """Test settings for a users app on ``database_url``."""
    # Hashing at production cost would make every registration take ~50 ms of CPU.
    fast_hashing = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64}
    # Limits are tested on their own apps (test_throttling); elsewhere they would get in the way.
    values: dict[str, Any] = {
        "ENVIRONMENT": "test",
        "RATE_LIMITS_ENABLED": False,
        **fast_hashing,
        **overrides,
    }
    return UsersSettings(DATABASE_URL=database_url, VAR_DIR=var_dir, **values)


migrated_app = app_fixture(create_app, make_settings, scope="session", migrate=True)
"""One users app per backend for the session, migrated to head."""


@pytest.fixture
def app(migrated_app: Flask) -> Iterator[Flask]:
    """The users app with empty tables."""
    yield migrated_app
    with migrated_app.app_context():
        empty_tables(db.engine, db.metadata)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the users app."""
    return app.test_client()


PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Account:
    """A registered account and an access token for it, as a test's actor."""

    id: int
    username: str
    email: str
    password: str
    roles: tuple[str, ...]
    headers: dict[str, str]


def access_token(
    app: Flask, user_id: int, roles: tuple[str, ...], *, now: datetime | None = None
) -> str:
    """An access token for ``user_id`` signed by ``app``'s key, as a login would issue it."""
    settings: UsersSettings = app.extensions["flotilla.settings"]
    with app.app_context():
        return issue_access_token(
            current_key_ring().signing,
            subject=str(user_id),
            roles=roles,
            issuer=settings.AUTH_ISSUER,
            audience=settings.AUTH_AUDIENCE,
            lifetime=timedelta(seconds=settings.ACCESS_TOKEN_LIFETIME),
            now=now,
        )


def bearer(token: str) -> dict[str, str]:
    """The Authorization header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def make_account(app: Flask) -> Callable[..., Account]:
    """Register accounts directly through the service layer, with a token each."""

    def make(username: str, *, roles: tuple[str, ...] = (CUSTOMER,)) -> Account:
        email = f"{username}@example.com"
        with app.app_context():
            user = service.register_user(
                username=username, email=email, password=PASSWORD, roles=roles
            )
        headers = bearer(access_token(app, user.id, roles))
        return Account(user.id, username, email, PASSWORD, roles, headers)

    return make


@pytest.fixture
def customer(make_account: Callable[..., Account]) -> Account:
    """A signed-in customer."""
    return make_account("carol")


@pytest.fixture
def other_customer(make_account: Callable[..., Account]) -> Account:
    """Another signed-in customer."""
    return make_account("oscar")


@pytest.fixture
def admin(make_account: Callable[..., Account]) -> Account:
    """A signed-in administrator."""
    return make_account("ada", roles=(CUSTOMER, ADMIN))


def json_of(response: TestResponse) -> dict[str, Any]:
    """The JSON object a response carries."""
    body = response.get_json()
    assert isinstance(body, dict), response.get_data(as_text=True)
    return body
