"""The connection every migration runs on: one runner at a time, and never a stalled table.

On PostgreSQL a migration session

* holds an advisory lock, so that concurrent runs (several pods, a Job and a pre-start step)
  take turns instead of racing. It is *polled* with ``pg_try_advisory_lock``: waiting inside
  one ``pg_advisory_lock`` call ran under the service's ``statement_timeout``, so a second
  runner died with ``QueryCanceled`` while the first was still migrating;
* runs without ``statement_timeout``: building an index concurrently or backfilling a column
  may rightly take minutes, and holding nothing, it stalls nobody;
* runs with ``lock_timeout`` (``DATABASE_MIGRATION_LOCK_TIMEOUT_MS``): a schema change
  waiting for a table's lock behind a long transaction makes every later query on that table
  wait behind *it*; giving up after a few seconds (and retrying later, see
  :mod:`flotilla.data.migrations.commands`) bounds that stall.

Both settings are reset before the connection returns to the pool. SQLite serialises writers
itself; there, the foreign keys are turned off around the change instead.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

log = logging.getLogger(__name__)

ADVISORY_LOCK_POLL_INTERVAL = 0.2
"""Seconds between two attempts to take the migration lock while another run holds it."""


def advisory_lock_key(name: str) -> int:
    """The advisory lock key of one app's migrations: the same in every process and release."""
    return zlib.crc32(f"flotilla-migrations:{name}".encode())


@contextmanager
def migration_connection(engine: Engine, name: str, lock_timeout_ms: int) -> Iterator[Connection]:
    """A connection of ``engine`` ready to migrate app ``name``'s database (see the module)."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            with _foreign_keys_deferred(connection):
                yield connection
        elif connection.dialect.name == "postgresql":
            with _postgres_session(connection, advisory_lock_key(name), lock_timeout_ms):
                yield connection
        else:
            yield connection


@contextmanager
def _postgres_session(connection: Connection, key: int, lock_timeout_ms: int) -> Iterator[None]:
    connection.execute(
        text(
            "SELECT set_config('statement_timeout', '0', false),"
            " set_config('lock_timeout', :lock_timeout, false)"
        ),
        {"lock_timeout": f"{lock_timeout_ms}ms"},
    )
    connection.commit()
    try:
        _take_advisory_lock(connection, key)
        try:
            yield
        finally:
            connection.rollback()  # a failed migration may have left its transaction aborted
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()
    finally:
        connection.rollback()
        connection.execute(text("RESET statement_timeout"))
        connection.execute(text("RESET lock_timeout"))
        connection.commit()


def _take_advisory_lock(connection: Connection, key: int) -> None:
    """Wait for the migration lock in short statements, saying once that another run holds it."""
    waiting_since: float | None = None
    while True:
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
        if taken.scalar_one():
            connection.commit()
            if waiting_since is not None:
                waited = round(time.monotonic() - waiting_since, 3)
                log.info("migration lock taken", extra={"waited_seconds": waited})
            return
        connection.commit()
        if waiting_since is None:
            waiting_since = time.monotonic()
            log.info("migration waits for another run to finish", extra={"lock_key": key})
        time.sleep(ADVISORY_LOCK_POLL_INTERVAL)


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
        connection.rollback()
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    connection.commit()
    if broken:
        raise RuntimeError(f"the migration left rows that break foreign keys: {broken[:5]}")
