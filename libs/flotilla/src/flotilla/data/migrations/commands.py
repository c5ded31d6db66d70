"""Alembic commands on the app's own engine, retried when a migration times out on a lock.

Each migration file runs in a transaction of its own (``transaction_per_migration``), so a
retry resumes at the migration that gave up rather than redoing those before it, and a
migration may leave its transaction for work PostgreSQL refuses inside one
(:func:`flotilla.data.migrations.create_index_concurrently`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from alembic import command
from alembic import context as alembic_context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Connection, MetaData
from sqlalchemy.exc import OperationalError

from flotilla.config import ServiceSettings
from flotilla.data.columns import UtcDateTime
from flotilla.data.db_state import database_settings_of, engine_of, migrations_of
from flotilla.data.migrations.session import migration_connection
from flotilla.resilience.backoff import backoff_delay

log = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's SQLSTATE for a statement that waited longer than ``lock_timeout``."""
RETRY_BACKOFF = 0.5
"""Base delay in seconds between retries of a migration that timed out on a lock."""
RETRY_BACKOFF_MAX = 30.0
"""Longest delay in seconds between two such retries."""


class MigrationLockTimeout(RuntimeError):
    """A migration kept timing out waiting for a lock; the database is left as it was."""


def alembic_config(app: Flask, connection: Connection) -> Config:
    """An Alembic config for ``app``'s migrations directory, bound to ``connection``."""
    directory = migrations_of(app)
    config = Config()
    config.set_main_option("script_location", str(directory))
    config.attributes["connection"] = connection
    return config


def upgrade(app: Flask, revision: str = "head") -> None:
    """Migrate ``app``'s database up to ``revision``, retrying migrations that time out."""
    with _migrating(app) as connection:
        _retrying_lock_timeouts(
            database_settings_of(app),
            connection,
            lambda: command.upgrade(alembic_config(app, connection), revision),
        )


def downgrade(app: Flask, revision: str) -> None:
    """Migrate ``app``'s database down to ``revision`` (``base`` removes everything)."""
    with _migrating(app) as connection:
        _retrying_lock_timeouts(
            database_settings_of(app),
            connection,
            lambda: command.downgrade(alembic_config(app, connection), revision),
        )


def revision(app: Flask, message: str) -> None:
    """Write a new migration from the difference between models and database."""
    with _migrating(app) as connection:
        command.revision(alembic_config(app, connection), message=message, autogenerate=True)


def differences(app: Flask, metadata: MetaData) -> list[Any]:
    """What autogenerate would add to a new migration: empty when models and schema agree."""
    engine = engine_of(app)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def run_migrations(metadata: MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    connection: Connection = alembic_context.config.attributes["connection"]
    alembic_context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        transaction_per_migration=True,
    )
    with alembic_context.begin_transaction():
        alembic_context.run_migrations()
    connection.commit()


@contextmanager
def _migrating(app: Flask) -> Iterator[Connection]:
    settings = database_settings_of(app)
    engine = engine_of(app)
    with migration_connection(
        engine, app.name, settings.DATABASE_MIGRATION_LOCK_TIMEOUT_MS
    ) as connection:
        yield connection


def _retrying_lock_timeouts(
    settings: ServiceSettings,
    connection: Connection,
    migrate: Callable[[], None],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run ``migrate``; after a lock timeout, back off and run it again, a bounded number of times.

    The migration that timed out rolled back, so the queries that queued behind it went on;
    trying again a little later finds the long transaction finished more often than not.
    """
    retries = settings.DATABASE_MIGRATION_LOCK_RETRIES
    for attempt in range(retries + 1):
        if attempt:
            delay = backoff_delay(attempt - 1, base=RETRY_BACKOFF, cap=RETRY_BACKOFF_MAX)
            log.warning(
                "migration timed out waiting for a lock; retrying",
                extra={"retry": attempt, "retry_in_seconds": round(delay, 3)},
            )
            sleep(delay)
        try:
            migrate()
        except OperationalError as error:
            if not is_lock_timeout(error):
                raise
            connection.rollback()
            if attempt == retries:
                raise _gave_up(settings, error) from error
        else:
            return


def is_lock_timeout(error: OperationalError) -> bool:
    """Whether ``error`` is PostgreSQL giving up on a lock after ``lock_timeout``."""
    return getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


def _gave_up(settings: ServiceSettings, error: OperationalError) -> MigrationLockTimeout:
    statement = " ".join(str(error.statement or "").split())[:200]
    return MigrationLockTimeout(
        f"gave up after {settings.DATABASE_MIGRATION_LOCK_RETRIES} retries: each time the "
        f"statement waited more than DATABASE_MIGRATION_LOCK_TIMEOUT_MS="
        f"{settings.DATABASE_MIGRATION_LOCK_TIMEOUT_MS} for a lock another transaction held "
        f"(statement: {statement}); the migration was rolled back, run it again later"
    )


def _render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations must not import the chassis: they outlive its types. Write the base type.
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False
