"""Where an app keeps its tasks: ``app.extensions["flotilla.tasks"]``.

Apart from :mod:`flotilla.messaging.tasks.extension` so that the ``flask tasks`` commands, the queue
metrics and the dead-letter tools can read it without importing the extension, which
imports the commands.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import Flask, current_app
from kombu.entity import Queue

from flotilla.config import ServiceSettings

_EXTENSION_KEY = "flotilla.tasks"


@dataclass
class TasksState:
    """What one app's tasks need at run time."""

    celery: Celery
    queue: Queue
    dead_letter_queue: Queue
    settings: ServiceSettings

    def declare_queues(self) -> None:
        """Create the work queue (with its event bindings) and the dead-letter queue now.

        Workers declare them on start; a deployment runs this first so that events the
        relay publishes before the first worker starts are kept, not dropped as unroutable.
        """
        with self.celery.connection_for_write() as connection:
            channel = connection.default_channel
            for queue in (self.queue, self.dead_letter_queue):
                queue(channel).declare()


def keep_tasks_state(app: Flask, state: TasksState) -> None:
    """Keep ``state`` on ``app`` for :func:`tasks_state`."""
    app.extensions[_EXTENSION_KEY] = state


def tasks_state(app: Flask | None = None) -> TasksState:
    """The tasks state of ``app`` (default: the current app)."""
    state: TasksState = (app or current_app).extensions[_EXTENSION_KEY]
    return state
