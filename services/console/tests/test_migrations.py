"""Migrations upgrade and downgrade on both databases and agree with the models."""

from __future__ import annotations

from flask import Flask

from console import create_app
from console.models import db
from flotilla import testing

from .conftest import make_settings

empty_app = testing.app_fixture(create_app, make_settings)
"""The app on a brand-new, empty database."""


def test_upgrade_creates_the_schema_the_models_describe(empty_app: Flask) -> None:
    tables = {"samples", "alembic_version"}
    testing.check_upgrade_from_empty(empty_app, db.metadata, tables=tables)


def test_downgrade_to_base_removes_everything_and_upgrade_again_works(empty_app: Flask) -> None:
    testing.check_downgrade_to_base(empty_app, db.metadata)


def test_upgrade_twice_is_a_no_op(empty_app: Flask) -> None:
    testing.check_upgrade_twice(empty_app, db.metadata)
