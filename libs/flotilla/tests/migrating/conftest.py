"""The notes sample on a fresh PostgreSQL database, for the migration tests."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "sample"))  # imported by name, as the runners' --app does

from notes_sample import create_app  # noqa: E402 - path above

from flotilla import ServiceSettings  # noqa: E402
from flotilla.testing import postgres_database  # noqa: E402


@pytest.fixture
def database_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def notes_app(database_url: str) -> Iterator[Callable[..., Flask]]:
    """Make the notes sample of a release on :func:`database_url`; pools closed afterwards."""
    apps: list[Flask] = []

    def make(*, release: int = 1, **settings: Any) -> Flask:
        settings = {"SERVICE_NAME": "notes", "DATABASE_URL": database_url, **settings}
        app = create_app(ServiceSettings(**settings), release=release)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["flotilla.db"].engine.dispose()
