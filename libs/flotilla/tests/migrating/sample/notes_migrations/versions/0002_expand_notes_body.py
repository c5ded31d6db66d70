"""Expand: add notes.body, let note be empty, index body without blocking writes.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from flotilla.data.migrations import create_index_concurrently, drop_index_concurrently

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.add_column(sa.Column("body", sa.Text(), nullable=True))
        batch.alter_column("note", existing_type=sa.Text(), nullable=True)
    create_index_concurrently("ix_notes_body", "notes", ["body"])


def downgrade() -> None:
    drop_index_concurrently("ix_notes_body", "notes")
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("body")
