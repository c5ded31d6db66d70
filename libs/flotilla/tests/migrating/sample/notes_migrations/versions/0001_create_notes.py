"""Create notes, and a record of which runner applied this migration.

On PostgreSQL it also sleeps, longer than the statement_timeout the concurrency test sets, so
that the other runners find the migration lock taken and wait for it.

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLEEP_SECONDS = 1.5


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("note", sa.Text(), nullable=False),
    )
    op.create_table("migration_runs", sa.Column("backend_pid", sa.Integer(), nullable=False))
    if op.get_context().dialect.name == "postgresql":
        op.execute(sa.text(f"SELECT pg_sleep({SLEEP_SECONDS})"))
        op.execute(sa.text("INSERT INTO migration_runs (backend_pid) SELECT pg_backend_pid()"))


def downgrade() -> None:
    op.drop_table("migration_runs")
    op.drop_table("notes")
