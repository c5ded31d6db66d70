"""Alembic migrations driven by the app's own engine: ``flask --app users db upgrade``.

The service's ``migrations/env.py`` calls :func:`run_migrations`; the commands hand it a
connection from the app, so the URL and pool come from the same settings as the service
itself. Safe with several runners at once and under traffic on PostgreSQL: one runner
migrates while the others wait for it and then find nothing to do, a schema change gives up
on a table's lock after ``DATABASE_MIGRATION_LOCK_TIMEOUT_MS`` and is retried rather than
stalling the queries queued behind it, and :func:`create_index_concurrently` builds indexes
outside the migration's transaction; SIGTERM stops a run at once, rolling back what it had
not committed (:mod:`flotilla.data.migrations.stopping`). Why and how:
``docs/adr/0022-migrations-and-configuration-at-scale.md``.
"""

from flotilla.data.migrations.commands import (
    MigrationLockTimeout,
    alembic_config,
    differences,
    downgrade,
    is_lock_timeout,
    revision,
    run_migrations,
    upgrade,
)
from flotilla.data.migrations.indexes import create_index_concurrently, drop_index_concurrently
from flotilla.data.migrations.stopping import (
    STOPPED_EXIT_CODE,
    MigrationStopped,
    stopped_by_sigterm,
)

__all__ = [
    "STOPPED_EXIT_CODE",
    "MigrationLockTimeout",
    "MigrationStopped",
    "alembic_config",
    "create_index_concurrently",
    "differences",
    "downgrade",
    "drop_index_concurrently",
    "is_lock_timeout",
    "revision",
    "run_migrations",
    "stopped_by_sigterm",
    "upgrade",
]
