"""``flask db ...`` commands; Alembic is imported only when one of them runs.

Importing Alembic costs about half a second, paid by every Gunicorn worker and test process
if it happened at app start-up, so the commands import it on demand.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import click
from flask import current_app
from flask.cli import AppGroup

log = logging.getLogger(__name__)

cli = AppGroup("db", help="Database migrations.")


@cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade_command(revision: str) -> None:
    """Migrate the database up to REVISION (default: head)."""
    from flotilla.data import migrations  # noqa: PLC0415 - keep Alembic out of worker start-up

    try:
        with migrations.stopped_by_sigterm():
            migrations.upgrade(current_app._get_current_object(), revision)  # type: ignore[attr-defined]
    except migrations.MigrationLockTimeout as error:
        raise click.ClickException(str(error)) from None
    except migrations.MigrationStopped:
        _stopped(migrations.STOPPED_EXIT_CODE)


@cli.command("downgrade")
@click.argument("revision")
def downgrade_command(revision: str) -> None:
    """Migrate the database down to REVISION ('base' removes everything)."""
    from flotilla.data import migrations  # noqa: PLC0415 - keep Alembic out of worker start-up

    try:
        with migrations.stopped_by_sigterm():
            migrations.downgrade(current_app._get_current_object(), revision)  # type: ignore[attr-defined]
    except migrations.MigrationLockTimeout as error:
        raise click.ClickException(str(error)) from None
    except migrations.MigrationStopped:
        _stopped(migrations.STOPPED_EXIT_CODE)


@cli.command("revision")
@click.option("-m", "--message", required=True, help="What the migration does.")
def revision_command(message: str) -> None:
    """Write a new migration from the difference between models and database."""
    from flotilla.data import migrations  # noqa: PLC0415 - keep Alembic out of worker start-up

    migrations.revision(current_app._get_current_object(), message)  # type: ignore[attr-defined]


def _stopped(exit_code: int) -> NoReturn:
    """Say that SIGTERM stopped the run, and exit ``exit_code``: the target was not reached."""
    log.warning(
        "migration stopped by SIGTERM; what it had not committed was rolled back",
        extra={"exit_code": exit_code},
    )
    raise SystemExit(exit_code)
