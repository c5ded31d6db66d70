"""Add orders.cancel_requested_at: when a cancel was recorded, the order's ``cancelling`` entry.

With ``created_at``, ``placed_at`` and ``cancelled_at`` it gives every state an order is
shown in the time it was entered, so an order's history needs no table of its own. Orders
whose cancel began before this revision keep it null: that time was never written.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: adding it rewrites no rows on PostgreSQL.
    with op.batch_alter_table("orders") as batch:
        batch.add_column(
            sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("cancel_requested_at")
