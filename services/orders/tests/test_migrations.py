"""Migrations upgrade and downgrade on both databases and agree with the models."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import delete, insert, select

from flotilla import testing
from flotilla.columns import utc_now
from orders import create_app
from orders.models import Order, db

from .conftest import make_settings

empty_app = testing.app_fixture(create_app, make_settings)
"""An orders app on a brand-new, empty database."""

TABLES = {"orders", "order_lines", "idempotency_keys", "outbox_events", "alembic_version"}


def test_upgrade_creates_the_schema_the_models_describe(empty_app: Flask) -> None:
    testing.check_upgrade_from_empty(empty_app, db.metadata, tables=TABLES)


def test_downgrade_to_base_removes_everything_and_upgrade_again_works(empty_app: Flask) -> None:
    testing.check_downgrade_to_base(empty_app, db.metadata)


def test_upgrade_twice_is_a_no_op(empty_app: Flask) -> None:
    testing.check_upgrade_twice(empty_app, db.metadata)


def test_the_id_of_a_deleted_order_is_never_handed_out_again(empty_app: Flask) -> None:
    # Catalog keeps a tombstone per released order id; a reused id would be refused there.
    testing.migrate(empty_app)
    with empty_app.app_context(), db.engine.begin() as connection:
        now = utc_now()
        row = {"user_id": 1, "state": "pending", "created_at": now, "updated_at": now}
        first = connection.execute(insert(Order).values(row).returning(Order.id)).scalar_one()
        connection.execute(delete(Order).where(Order.id == first))
        second = connection.execute(insert(Order).values(row).returning(Order.id)).scalar_one()
        assert connection.scalar(select(Order.id)) == second
    assert second > first
