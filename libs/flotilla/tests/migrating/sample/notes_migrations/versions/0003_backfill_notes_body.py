"""Backfill notes.body from note, a batch per transaction, so no row stays locked for long.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 200
_COPY_BATCH = sa.text(
    "UPDATE notes SET body = note WHERE id IN"
    " (SELECT id FROM notes WHERE body IS NULL ORDER BY id LIMIT :batch)"
)


def upgrade() -> None:
    with op.get_context().autocommit_block():
        while op.get_bind().execute(_COPY_BATCH, {"batch": BATCH}).rowcount:
            pass


def downgrade() -> None:
    pass
