"""Contract: drop notes.note, which no running release reads or writes any more.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("note")


def downgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("note", sa.Text(), nullable=True))
    op.execute(sa.text("UPDATE notes SET note = body"))
