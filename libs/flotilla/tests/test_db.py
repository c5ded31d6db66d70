"""The database part: SQLite pragmas, UTC timestamps, autocommit reads, pools after fork."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert, select, text

from flotilla import Database, ServiceSettings, create_service
from flotilla.data.columns import UtcDateTime
from flotilla.data.db import create_engine_from_settings
from flotilla.testing import capture_logs, postgres_database

metadata = MetaData()
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime()),
)
database = Database(metadata)


def make_app(url: str, tmp_path: Path) -> Flask:
    """A service bound to ``url`` with the ``events`` table created."""
    app = create_service(
        "db_sample", ServiceSettings(SERVICE_NAME="dbtest", VAR_DIR=tmp_path, DATABASE_URL=url)
    )
    database.init_app(app, app.extensions["flotilla.settings"])
    with app.app_context():
        metadata.create_all(database.engine)
    return app


@pytest.fixture(params=["sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """A service on a fresh SQLite file or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield make_app("", tmp_path)
        return
    with postgres_database() as url:
        app = make_app(url, tmp_path)
        yield app
        with app.app_context():
            database.engine.dispose()


def test_embedded_default_is_sqlite_in_wal_mode_under_var_dir(tmp_path: Path) -> None:
    app = make_app("", tmp_path)
    with app.app_context(), database.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "dbtest.db").exists()


def test_timestamps_come_back_aware_in_utc(app: Flask) -> None:
    paris = datetime(2026, 1, 2, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    with app.app_context():
        database.session.execute(insert(events).values(id=1, at=paris))
        database.session.commit()
        with database.reading() as session:
            stored = session.execute(select(events.c.at)).scalar_one()
    assert stored == paris
    assert stored.tzinfo == UTC


def test_naive_timestamps_are_refused(app: Flask) -> None:
    with app.app_context(), pytest.raises(Exception, match="naive datetime"):
        database.session.execute(insert(events).values(id=2, at=datetime(2026, 1, 1)))


def test_reads_run_without_a_transaction_on_postgres(tmp_path: Path) -> None:
    with postgres_database() as url:
        app = make_app(url, tmp_path)
        with app.app_context():
            with database.reading() as session:
                session.execute(text("SELECT pg_sleep(0.01)"))
                # Each statement is its own transaction: now() is this statement's start.
                in_transaction = session.execute(text("SELECT now() < statement_timestamp()"))
                assert in_transaction.scalar() is False
            session = database.session()
            session.execute(text("SELECT pg_sleep(0.01)"))
            assert session.execute(text("SELECT now() < statement_timestamp()")).scalar() is True
            session.rollback()
            database.engine.dispose()


def _query_in_child(app: Flask, results: multiprocessing.Queue[int]) -> None:
    with app.app_context(), database.reading() as session:
        results.put(session.execute(text("SELECT 41 + 1")).scalar_one())


def test_a_forked_child_opens_its_own_connections(app: Flask) -> None:
    with app.app_context(), database.reading() as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    context = multiprocessing.get_context("fork")
    results: multiprocessing.Queue[int] = context.Queue()
    child = context.Process(target=_query_in_child, args=(app, results))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert results.get(timeout=5) == 42
    # The parent's pooled connection was not closed or used by the child.
    with app.app_context(), database.reading() as session:
        assert session.execute(text("SELECT 2")).scalar_one() == 2


def test_bare_postgres_urls_use_psycopg_3(tmp_path: Path) -> None:
    for scheme in ("postgres", "postgresql"):
        settings = ServiceSettings(DATABASE_URL=f"{scheme}://u@127.0.0.1:5432/d", VAR_DIR=tmp_path)
        engine = create_engine_from_settings(settings)
        assert engine.url.drivername == "postgresql+psycopg"
        engine.dispose()


def test_a_value_postgresql_refuses_is_a_422_problem_and_changes_nothing(tmp_path: Path) -> None:
    notes = Table(
        "notes", MetaData(), Column("id", Integer, primary_key=True), Column("text", Text)
    )
    with postgres_database() as url:
        app = make_app(url, tmp_path)

        @app.post("/notes")
        def add_note() -> dict[str, str]:
            database.session.execute(insert(notes).values(id=1, text="a\x00b"))
            database.session.commit()
            return {}

        with app.app_context():
            notes.create(database.engine)
        with capture_logs() as logs:
            response = app.test_client().post("/notes")
        assert response.status_code == 422
        assert response.json is not None
        assert response.json["type"] == "urn:flotilla:problem:unstorable-value"
        assert [record["message"] for record in logs if record["level"] == "WARNING"] == [
            "database refused a value"
        ]
        with app.app_context():
            with database.reading() as session:
                assert session.execute(select(notes.c.id)).all() == []
            database.engine.dispose()
