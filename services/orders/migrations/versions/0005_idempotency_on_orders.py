"""Keep each request's Idempotency-Key on the order it created, not in a table of its own.

The order and its key were always written and deleted together; keeping the key, the
request's hash and the stored answer on the order makes creating a pending order one INSERT
and placing it one UPDATE, two statements fewer per order. Existing keys are copied over.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ON_ORDERS = ("idempotency_key", "request_hash", "response_status", "response_body")
"""The columns the key's record becomes on its order."""
HELD = sa.text("idempotency_key IS NOT NULL")


def upgrade() -> None:
    # Nullable and without defaults: adding them rewrites no rows on PostgreSQL.
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("response_status", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("response_body", sa.JSON(), nullable=True))
    op.execute(
        "UPDATE orders SET "
        "idempotency_key = (SELECT k.key FROM idempotency_keys k WHERE k.order_id = orders.id), "
        "request_hash = (SELECT k.request_hash FROM idempotency_keys k "
        "WHERE k.order_id = orders.id), "
        "response_status = (SELECT k.response_status FROM idempotency_keys k "
        "WHERE k.order_id = orders.id), "
        "response_body = (SELECT k.response_body FROM idempotency_keys k "
        "WHERE k.order_id = orders.id) "
        "WHERE id IN (SELECT order_id FROM idempotency_keys)"
    )
    op.create_index(
        "uq_orders_user_id_idempotency_key",
        "orders",
        ["user_id", "idempotency_key"],
        unique=True,
    )
    # Pruning looks only at orders still holding a key.
    op.create_index(
        "ix_orders_created_at_with_key",
        "orders",
        ["created_at"],
        postgresql_where=HELD,
        sqlite_where=HELD,
    )
    op.drop_index("ix_idempotency_keys_state_created_at", table_name="idempotency_keys")
    op.drop_index(op.f("ix_idempotency_keys_order_id"), table_name="idempotency_keys")
    op.drop_table("idempotency_keys")


def downgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("order_id", ID, nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_idempotency_keys_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index(
        op.f("ix_idempotency_keys_order_id"), "idempotency_keys", ["order_id"], unique=False
    )
    op.create_index(
        "ix_idempotency_keys_state_created_at",
        "idempotency_keys",
        ["state", "created_at"],
        unique=False,
    )
    op.execute(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, state, order_id, "
        "response_status, response_body, created_at) "
        "SELECT user_id, idempotency_key, request_hash, "
        "CASE WHEN response_status IS NULL THEN 'in_progress' ELSE 'completed' END, "
        "id, response_status, response_body, created_at FROM orders "
        "WHERE idempotency_key IS NOT NULL"
    )
    op.drop_index("ix_orders_created_at_with_key", table_name="orders")
    op.drop_index("uq_orders_user_id_idempotency_key", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        for column in reversed(ON_ORDERS):
            batch.drop_column(column)
