"""Add orders.cancel_reason: kept when a cancel begins, so whoever finishes it sends it on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: adding it rewrites no rows on PostgreSQL.
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("cancel_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("cancel_reason")
