"""``create_index_concurrently``: outside the transaction, and safe to run again after a failure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from notes_sample import create_app
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from flotilla import ServiceSettings
from flotilla.data.migrations import downgrade, upgrade

AppFactory = Callable[..., Flask]
_INDEX = text(
    "SELECT indexrelid::int AS oid, indisvalid AS valid, pg_get_indexdef(indexrelid) AS sql"
    " FROM pg_index WHERE indexrelid = to_regclass('ix_notes_body')"
)


def _autocommit(engine: Engine, statement: str) -> None:
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text(statement))


def test_an_invalid_leftover_index_is_dropped_and_built_again(
    database_url: str, notes_app: AppFactory
) -> None:
    app = notes_app()
    upgrade(app, "0001")
    engine = create_engine(database_url)
    _autocommit(engine, "INSERT INTO notes (note) VALUES ('same'), ('same')")
    # A concurrent build that fails half-way (here on a duplicate) leaves an INVALID index.
    with pytest.raises(IntegrityError, match="could not create unique index"):
        _autocommit(engine, "CREATE UNIQUE INDEX CONCURRENTLY ix_notes_body ON notes (note)")
    with engine.connect() as connection:
        assert connection.execute(_INDEX).one().valid is False

    upgrade(app, "0002")

    with engine.connect() as connection:
        index = connection.execute(_INDEX).one()
    engine.dispose()
    assert index.valid is True
    assert index.sql.endswith("USING btree (body)")


def test_a_valid_index_of_that_name_is_kept(database_url: str, notes_app: AppFactory) -> None:
    app = notes_app()
    upgrade(app, "0001")
    engine = create_engine(database_url)
    _autocommit(engine, "CREATE INDEX ix_notes_body ON notes (note)")
    with engine.connect() as connection:
        before = connection.execute(_INDEX).one()

    upgrade(app, "0002")

    with engine.connect() as connection:
        after = connection.execute(_INDEX).one()
    engine.dispose()
    assert (after.oid, after.valid) == (before.oid, True)


def test_the_helpers_migrate_both_ways_on_postgres(notes_app: AppFactory) -> None:
    app = notes_app()
    upgrade(app)
    assert "ix_notes_body" in _index_names(app)
    downgrade(app, "0001")
    assert "ix_notes_body" not in _index_names(app)
    upgrade(app)
    assert "ix_notes_body" in _index_names(app)


def test_the_helpers_are_plain_if_not_exists_on_sqlite(tmp_path: Path) -> None:
    settings = ServiceSettings(SERVICE_NAME="notes", DATABASE_URL=f"sqlite:///{tmp_path}/n.db")
    app = create_app(settings)
    upgrade(app, "0002")
    assert "ix_notes_body" in _index_names(app)
    downgrade(app, "0001")
    assert "ix_notes_body" not in _index_names(app)
    upgrade(app)
    assert "ix_notes_body" in _index_names(app)
    app.extensions["flotilla.db"].engine.dispose()


def _index_names(app: Flask) -> set[str]:
    engine: Engine = app.extensions["flotilla.db"].engine
    return {index["name"] or "" for index in inspect(engine).get_indexes("notes")}
