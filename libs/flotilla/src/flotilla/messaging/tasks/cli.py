"""``flask tasks ...``: the worker, queue declaration and the dead-letter queue."""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import click
from celery.signals import worker_process_init, worker_process_shutdown
from flask import current_app
from flask.cli import AppGroup

from flotilla.messaging.tasks.dead_letters import list_dead_letters, replay_dead_letters
from flotilla.messaging.tasks.metrics import QueueDepthCollector
from flotilla.messaging.tasks.state import tasks_state
from flotilla.observability import tracing
from flotilla.observability.metrics_server import serve_metrics

cli = AppGroup("tasks", help="Background tasks.")

CELERY_PER_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")
"""Celery's "received" and "succeeded" lines, two per task, without the request id; a task's
own lines carry it, and failures and retries are logged at WARNING and above."""


@cli.command("worker")
@click.option("--concurrency", type=int, default=None, help="Override TASK_CONCURRENCY.")
def worker_command(concurrency: int | None) -> None:
    """Run a worker for this service's task queue until SIGTERM (warm shutdown).

    With ``METRICS_BIND`` set it serves its metrics and its queues' depth there.
    """

    state = tasks_state(current_app)
    serve_metrics(state.settings.METRICS_BIND, [QueueDepthCollector(state)])
    if state.settings.LOG_LEVEL != "DEBUG":
        for name in CELERY_PER_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
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
    _trace_in(state.settings.TASK_POOL)
    try:
        worker.start()
    finally:
        tracing.shutdown()
    raise SystemExit(worker.exitcode)


def _trace_in(pool: str) -> None:
    """Start the tracing SDK where tasks run: in each prefork child, else in this process.

    A prefork pool's children are forked from this process; the SDK's export thread would
    not survive the fork, so each child starts its own and flushes it before it exits.
    """
    if pool != "prefork":
        tracing.start()
        return
    worker_process_init.connect(_start_tracing, weak=False)
    worker_process_shutdown.connect(_stop_tracing, weak=False)


def _start_tracing(**_signal: Any) -> None:
    tracing.start()


def _stop_tracing(**_signal: Any) -> None:
    tracing.shutdown()


@cli.command("declare-queues")
def declare_queues_command() -> None:
    """Create this service's queue, its event bindings and its dead-letter queue, then exit.

    Run it when deploying, before any producer's relay starts: RabbitMQ confirms an event
    that no queue is bound for yet and drops it, so the bindings must exist first.
    """

    state = tasks_state(current_app)
    state.declare_queues()
    click.echo(f"declared {state.queue.name} and {state.dead_letter_queue.name}")


@cli.command("dead-letters")
@click.option("--limit", type=int, default=100, show_default=True, help="Show at most this many.")
def dead_letters_command(limit: int) -> None:
    """List the dead-letter queue, oldest first, without changing it."""

    letters = list_dead_letters(tasks_state(current_app), limit=limit)
    for letter in letters:
        click.echo(f"{letter.task_id}  {letter.task}  {letter.arguments}  {letter.error}")
    click.echo(f"{len(letters)} dead letter(s) shown")


@cli.command("replay-dead-letters")
@click.option("--limit", type=int, default=None, help="Replay at most this many (default: all).")
def replay_dead_letters_command(limit: int | None) -> None:
    """Move dead letters back to the work queue, oldest first, once their cause is fixed."""

    moved = replay_dead_letters(tasks_state(current_app), limit=limit)
    for letter in moved:
        click.echo(f"replayed {letter.task_id}  {letter.task}")
    click.echo(f"{len(moved)} dead letter(s) replayed")
