"""Alembic migrations driven by the app's own engine: ``flask --app users db upgrade``.

The service's ``migrations/env.py`` calls :func:`run_migrations`; the commands here hand it a
connection from the app, so the URL, pool and timeouts come from the same settings as the
service itself. On PostgreSQL an advisory lock makes concurrent runs (several pods or a Job
and a pre-start step) wait for each other instead of racing; SQLite serialises writers anyway.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic import context as alembic_context
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Connection, MetaData, text

from flotilla.columns import UtcDateTime


def alembic_config(app: Flask, connection: Connection) -> Config:
    """An Alembic config for ``app``'s migrations directory, bound to ``connection``."""
    directory: Path = app.extensions["flotilla.migrations"]
    config = Config()
    config.set_main_option("script_location", str(directory))
    config.attributes["connection"] = connection
    return config


@contextmanager
def _locked_connection(app: Flask) -> Iterator[Connection]:
    engine = app.extensions["flotilla.db"].engine
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            with _foreign_keys_deferred(connection):
                yield connection
            return
        if connection.dialect.name != "postgresql":
            yield connection
            return
        key = zlib.crc32(f"flotilla-migrations:{app.name}".encode())
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield connection
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite with its foreign keys off while migrating, checked again afterwards.

    SQLite changes a column by building a new table and dropping the old one (Alembic's
    batch mode), and with foreign keys on, dropping a table deletes every row that refers
    to it through ``ON DELETE CASCADE``: a downgrade that drops a column of ``orders`` would
    delete every order line. SQLite's documented way is to turn the keys off around the
    change (possible only outside a transaction) and run ``foreign_key_check`` after it.
    """
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    connection.commit()
    if broken:
        raise RuntimeError(f"the migration left rows that break foreign keys: {broken[:5]}")


def upgrade(app: Flask, revision: str = "head") -> None:
    """Migrate ``app``'s database up to ``revision``."""
    with _locked_connection(app) as connection:
        command.upgrade(alembic_config(app, connection), revision)


def downgrade(app: Flask, revision: str) -> None:
    """Migrate ``app``'s database down to ``revision`` (``base`` removes everything)."""
    with _locked_connection(app) as connection:
        command.downgrade(alembic_config(app, connection), revision)


def revision(app: Flask, message: str) -> None:
    """Write a new migration from the difference between models and database."""
    with _locked_connection(app) as connection:
        command.revision(alembic_config(app, connection), message=message, autogenerate=True)


def differences(app: Flask, metadata: MetaData) -> list[Any]:
    """What autogenerate would add to a new migration: empty when models and schema agree."""
    engine = app.extensions["flotilla.db"].engine
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
    )
    with alembic_context.begin_transaction():
        alembic_context.run_migrations()
    connection.commit()


def _render_item(kind: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    # Migrations must not import the chassis: they outlive its types. Write the base type.
    if kind == "type" and isinstance(item, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False
