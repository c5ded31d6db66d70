"""Migrations upgrade and downgrade on both databases and agree with the models."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import Connection, delete, insert, inspect, select, text

from flotilla import testing
from flotilla.data import migrations
from flotilla.data.columns import utc_now
from orders import create_app
from orders.models import Order, db

from .conftest import make_settings

empty_app = testing.app_fixture(create_app, make_settings)
"""An orders app on a brand-new, empty database."""

TABLES = {"orders", "order_lines", "outbox_events", "alembic_version"}


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


def test_keys_move_onto_their_orders_and_back(empty_app: Flask) -> None:
    # Revision 0005 keeps each request's key on its order; keys written before it survive.
    migrations.upgrade(empty_app, "0004")
    now = utc_now()
    with empty_app.app_context(), db.engine.begin() as connection:
        for order_id, state in ((1, "placed"), (2, "pending")):
            connection.execute(
                text(
                    "INSERT INTO orders (id, user_id, state, created_at, updated_at) "
                    "VALUES (:id, 7, :state, :now, :now)"
                ),
                {"id": order_id, "state": state, "now": now},
            )
        connection.execute(
            text(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, state, order_id, "
                "response_status, response_body, created_at) VALUES "
                "(7, 'done', 'h1', 'completed', 1, 201, '{\"id\": 1}', :now), "
                "(7, 'busy', 'h2', 'in_progress', 2, NULL, NULL, :now)"
            ),
            {"now": now},
        )
    migrations.upgrade(empty_app)
    columns = (Order.id, Order.idempotency_key, Order.request_hash, Order.response_status)
    with empty_app.app_context(), db.engine.begin() as connection:
        rows = connection.execute(select(*columns, Order.response_body).order_by(Order.id)).all()
    assert [tuple(row) for row in rows] == [
        (1, "done", "h1", 201, {"id": 1}),
        (2, "busy", "h2", None, None),
    ]
    migrations.downgrade(empty_app, "0004")
    with empty_app.app_context(), db.engine.begin() as connection:
        keys = connection.execute(
            text("SELECT key, state, order_id FROM idempotency_keys ORDER BY order_id")
        ).all()
    assert [tuple(key) for key in keys] == [("done", "completed", 1), ("busy", "in_progress", 2)]


def order_columns(connection: Connection) -> dict[str, bool]:
    """Each column of ``orders`` and whether it is nullable."""
    return {
        column["name"]: column["nullable"] for column in inspect(connection).get_columns("orders")
    }


def table_file(connection: Connection) -> int | None:
    """The file PostgreSQL keeps ``orders`` in, which a rewrite of the table replaces."""
    if connection.dialect.name != "postgresql":
        return None
    filenode: int = connection.execute(text("SELECT pg_relation_filenode('orders')")).scalar_one()
    return filenode


def test_cancel_requested_at_is_added_empty_without_rewriting_orders(empty_app: Flask) -> None:
    # Revision 0006: orders cancelled before it never had the time their cancel began.
    migrations.upgrade(empty_app, "0005")
    with empty_app.app_context(), db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO orders (id, user_id, state, created_at, updated_at, placed_at, "
                "cancelled_at) VALUES (1, 7, 'cancelled', :now, :now, :now, :now)"
            ),
            {"now": utc_now()},
        )
        before = table_file(connection)
    migrations.upgrade(empty_app, "0006")
    with empty_app.app_context(), db.engine.begin() as connection:
        assert order_columns(connection)["cancel_requested_at"] is True
        assert table_file(connection) == before
        row = connection.execute(select(Order.id, Order.state, Order.cancel_requested_at)).one()
    assert tuple(row) == (1, "cancelled", None)
    migrations.downgrade(empty_app, "0005")
    with empty_app.app_context(), db.engine.begin() as connection:
        assert "cancel_requested_at" not in order_columns(connection)
        orders = connection.execute(text("SELECT id, state FROM orders")).all()
    assert [tuple(order) for order in orders] == [(1, "cancelled")]
