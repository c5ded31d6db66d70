"""A migration run told to stop (SIGTERM) stops at once, undoing what it had not committed.

An orchestrator stops a migration container or Job with SIGTERM and kills it when the grace
period ends. A run may be waiting then: for another runner's lock, for a table's lock, or
between retries (up to 30 s each). Waiting out the grace period would end in SIGKILL, with
the database connection cut mid-statement. Instead, SIGTERM raises :class:`MigrationStopped`
in the run: psycopg cancels the statement in flight, the migration's transaction rolls back
(each migration file has one), the advisory lock is released, and the command exits 143.

The exit says "not done": a stopped run has not migrated to its target, and a deployment
waiting for the migration to succeed (compose's ``service_completed_successfully``, a Job)
must not start the new release on the old schema. Migrations committed before the signal
stay; the next run resumes after them.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOPPED_EXIT_CODE = 128 + signal.SIGTERM
"""The conventional exit of a process ended by SIGTERM: 143."""


class MigrationStopped(KeyboardInterrupt):
    """SIGTERM reached a migration run. A ``KeyboardInterrupt``, so psycopg cancels the
    statement in flight on the server instead of leaving the connection busy."""


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`MigrationStopped` in this (main) thread."""

    def stop(_signal: int, _frame: FrameType | None) -> None:
        raise MigrationStopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
