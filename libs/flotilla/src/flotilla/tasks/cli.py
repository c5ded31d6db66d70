"""``flask tasks worker``: the service's Celery worker, configured by the chassis."""

from __future__ import annotations

import os
import socket

import click
from flask import current_app
from flask.cli import AppGroup

cli = AppGroup("tasks", help="Background tasks.")


@cli.command("worker")
@click.option("--concurrency", type=int, default=None, help="Override TASK_CONCURRENCY.")
def worker_command(concurrency: int | None) -> None:
    """Run a worker for this service's task queue until SIGTERM (warm shutdown)."""
    from flotilla.tasks.extension import tasks_state  # noqa: PLC0415 - cli is imported by it

    state = tasks_state(current_app)
    worker = state.celery.Worker(
        quiet=True,  # no ASCII banner on stdout: every line stays JSON
        loglevel=state.settings.LOG_LEVEL,
        queues=[state.queue.name],
        concurrency=concurrency or state.settings.TASK_CONCURRENCY,
        hostname=f"{state.settings.SERVICE_NAME}@{socket.gethostname()}.{os.getpid()}",
        # Gossip, mingle and heartbeats are cluster chatter on broadcast queues; the
        # workers of a service share nothing that needs them.
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    worker.start()
    raise SystemExit(worker.exitcode)
