"""A migration queued behind a long transaction never stalls the table's traffic for long.

A schema change such as ``ALTER TABLE ... ADD COLUMN`` needs an ACCESS EXCLUSIVE lock. While
it waits for one behind a long transaction, PostgreSQL queues every later query on the table
behind it: without ``lock_timeout`` the table stops answering for as long as that transaction
lasts. With it, the migration gives up after ``DATABASE_MIGRATION_LOCK_TIMEOUT_MS``, the
queued queries go on, and the migration tries again after a backoff.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine, create_engine, text

from flotilla.data.migrations import MigrationLockTimeout, upgrade
from flotilla.testing import capture_logs

AppFactory = Callable[..., Flask]
LOCK_TIMEOUT_MS = 200
HELD_SECONDS = 3.0


@contextmanager
def _long_transaction(engine: Engine, seconds: float) -> Iterator[threading.Event]:
    """A transaction that reads ``notes`` and keeps its ACCESS SHARE lock for ``seconds``."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT count(*) FROM notes"))
            holding.set()
            release.wait(seconds)
            connection.rollback()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        yield release
    finally:
        release.set()
        holder.join()


def _query_latencies(engine: Engine, stop: threading.Event) -> list[float]:
    """Seconds each of a stream of reads of ``notes`` took, until ``stop`` is set."""
    latencies: list[float] = []
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        while not stop.is_set():
            began = time.monotonic()
            autocommit.execute(text("SELECT count(*) FROM notes"))
            latencies.append(time.monotonic() - began)
            time.sleep(0.01)
    return latencies


def _migrate_behind_a_long_transaction(
    database_url: str, app: Flask
) -> tuple[float, list[float], list[dict[str, Any]]]:
    """Migrate to 0002 while a transaction holds notes; how long it took, reads' latencies, logs."""
    upgrade(app, "0001")
    engine = create_engine(database_url)
    stop, latencies = threading.Event(), []
    reader = threading.Thread(target=lambda: latencies.extend(_query_latencies(engine, stop)))
    with _long_transaction(engine, HELD_SECONDS), capture_logs() as logs:
        reader.start()
        began = time.monotonic()
        upgrade(app, "0002")  # ADD COLUMN: an ACCESS EXCLUSIVE lock on notes
        migrated_after = time.monotonic() - began
    stop.set()
    reader.join()
    engine.dispose()
    return migrated_after, latencies, logs


def test_without_a_short_lock_timeout_the_table_stalls(
    database_url: str, notes_app: AppFactory
) -> None:
    # What the lock timeout prevents: reads queue behind the waiting ALTER for as long as
    # the long transaction lasts.
    app = notes_app(DATABASE_MIGRATION_LOCK_TIMEOUT_MS=60_000)
    _, latencies, _ = _migrate_behind_a_long_transaction(database_url, app)
    assert max(latencies) > HELD_SECONDS - 1.0, max(latencies)


def test_queries_wait_at_most_lock_timeout_and_the_migration_succeeds(
    database_url: str, notes_app: AppFactory
) -> None:
    app = notes_app(DATABASE_MIGRATION_LOCK_TIMEOUT_MS=LOCK_TIMEOUT_MS)
    migrated_after, latencies, logs = _migrate_behind_a_long_transaction(database_url, app)

    assert migrated_after >= HELD_SECONDS - 0.5  # it did wait for the long transaction to end
    retries = [log for log in logs if log["message"].startswith("migration timed out")]
    assert retries
    assert len(latencies) > 20
    assert max(latencies) < LOCK_TIMEOUT_MS / 1000 + 0.5, max(latencies)
    assert _version(database_url) == "0002"


def test_a_migration_that_keeps_timing_out_fails_clearly_and_changes_nothing(
    database_url: str, notes_app: AppFactory
) -> None:
    app = notes_app(DATABASE_MIGRATION_LOCK_TIMEOUT_MS=100, DATABASE_MIGRATION_LOCK_RETRIES=2)
    upgrade(app, "0001")
    engine = create_engine(database_url)
    with _long_transaction(engine, 30.0):
        result = app.test_cli_runner().invoke(args=["db", "upgrade"])
        with pytest.raises(MigrationLockTimeout, match="DATABASE_MIGRATION_LOCK_TIMEOUT_MS=100"):
            upgrade(app)
    engine.dispose()

    assert result.exit_code == 1
    assert "gave up after 2 retries" in result.output
    assert "ALTER TABLE notes ADD COLUMN body" in result.output
    assert _version(database_url) == "0001"


def _version(database_url: str) -> str:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        version: str = connection.execute(
            text("SELECT version_num FROM alembic_version")
        ).scalar_one()
    engine.dispose()
    return version
