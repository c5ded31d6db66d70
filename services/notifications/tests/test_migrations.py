"""Migrations upgrade and downgrade on both databases and agree with the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect

from flotilla.migrations import differences, downgrade, upgrade
from flotilla.testing import postgres_database
from notifications import create_app
from notifications.models import db

from .conftest import BACKENDS, make_settings


@pytest.fixture(params=BACKENDS)
def empty_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """A notifications app on a brand-new, empty database."""
    if request.param == "postgres":
        with postgres_database() as url:
            app = create_app(make_settings(url, tmp_path))
            yield app
            with app.app_context():
                db.engine.dispose()
    else:
        yield create_app(make_settings(f"sqlite:///{tmp_path / 'fresh.db'}", tmp_path))


def table_names(app: Flask) -> set[str]:
    """Tables that exist in the app's database now."""
    with app.app_context():
        return set(inspect(db.engine).get_table_names())


def test_upgrade_creates_the_schema_the_models_describe(empty_app: Flask) -> None:
    upgrade(empty_app)
    assert {"processed_events", "sent_emails", "alembic_version"} <= table_names(empty_app)
    assert differences(empty_app, db.metadata) == []


def test_downgrade_to_base_removes_everything_and_upgrade_again_works(empty_app: Flask) -> None:
    upgrade(empty_app)
    downgrade(empty_app, "base")
    assert table_names(empty_app) <= {"alembic_version"}
    upgrade(empty_app)
    assert differences(empty_app, db.metadata) == []


def test_upgrade_twice_is_a_no_op(empty_app: Flask) -> None:
    upgrade(empty_app)
    upgrade(empty_app)
    assert differences(empty_app, db.metadata) == []
