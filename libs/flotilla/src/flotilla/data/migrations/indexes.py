"""Indexes built without locking writers out, for use inside a migration's ``upgrade()``.

``CREATE INDEX`` blocks every write to the table until the index is built: minutes on a big
table. PostgreSQL's ``CONCURRENTLY`` lets writes go on, but cannot run inside a transaction
block, and a build that fails (a lock timeout, a duplicate under ``UNIQUE``, a cancel) leaves
an INVALID index behind that a plain retry would trip over ("already exists") while queries
ignore it. These helpers step out of the migration's transaction (Alembic's
``autocommit_block``), drop such a leftover and build again, so running the migration twice
is safe. SQLite has no concurrent build and a database-wide write lock anyway; there they are
``CREATE INDEX IF NOT EXISTS`` and ``DROP INDEX IF EXISTS``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text


def create_index_concurrently(
    name: str, table: str, columns: Sequence[str], *, unique: bool = False, where: str = ""
) -> None:
    """Create index ``name`` on ``table`` without blocking writes; nothing if a valid one exists.

    ``where`` is an optional SQL condition for a partial index. Call it from a migration's
    ``upgrade()``; the work before it in the same migration is committed first.
    """
    context = op.get_context()
    condition = text(where) if where else None
    if context.dialect.name != "postgresql":
        op.create_index(
            name, table, list(columns), unique=unique, if_not_exists=True, sqlite_where=condition
        )
        return
    with context.autocommit_block():
        valid = _index_validity(name)
        if valid:
            return
        if valid is not None:  # an INVALID leftover of a build that failed
            op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
        op.create_index(
            name,
            table,
            list(columns),
            unique=unique,
            postgresql_concurrently=True,
            postgresql_where=condition,
        )


def drop_index_concurrently(name: str, table: str) -> None:
    """Drop index ``name`` of ``table`` if it exists, without blocking reads or writes."""
    context = op.get_context()
    if context.dialect.name != "postgresql":
        op.drop_index(name, table_name=table, if_exists=True)
        return
    with context.autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)


def _index_validity(name: str) -> bool | None:
    """True for a usable index ``name``, False for an INVALID one, None when there is none."""
    found = op.get_bind().execute(
        text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
        {"name": name},
    )
    valid: bool | None = found.scalar_one_or_none()
    return valid
