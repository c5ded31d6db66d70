"""Fixtures: the users app on SQLite and on PostgreSQL, emptied after every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import OperationalError

from flotilla.migrations import upgrade
from flotilla.testing import empty_tables, postgres_database, postgres_server_url
from users import create_app
from users.config import UsersSettings
from users.models import db

BACKENDS = ["sqlite", "postgres"]


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> UsersSettings:
    """Test settings for a users app on ``database_url``."""
    # Hashing at production cost would make every registration take ~50 ms of CPU.
    fast_hashing = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 64}
    values: dict[str, Any] = {"ENVIRONMENT": "test", **fast_hashing, **overrides}
    return UsersSettings(DATABASE_URL=database_url, VAR_DIR=var_dir, **values)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; a missing server fails the run."""
    try:
        with postgres_database() as url:
            yield url
    except OperationalError as error:
        pytest.fail(f"PostgreSQL is required at {postgres_server_url()}: {error}")


def database_url(backend: str, request: pytest.FixtureRequest, directory: Path) -> str:
    """The URL of an empty database of ``backend``."""
    if backend == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{directory / 'users.db'}"


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """One users app per backend for the session, migrated to head."""
    directory = tmp_path_factory.mktemp(request.param)
    app = create_app(make_settings(database_url(request.param, request, directory), directory))
    upgrade(app)
    yield app
    with app.app_context():
        db.engine.dispose()


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
