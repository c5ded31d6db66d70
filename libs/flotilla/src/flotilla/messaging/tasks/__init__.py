"""Celery bound to a Flask app, with the delivery guarantees the classic recipe lacks.

Declare tasks and event handlers on a module-level :class:`Tasks`, bind it with
``tasks.init_app(app, settings)``, run workers with ``flask --app <service> tasks worker``.
See :mod:`flotilla.messaging.tasks.config` for the Celery settings and why each is chosen.
"""

from flotilla.messaging.tasks.base import DEAD_LETTER_ERROR_HEADER, FlotillaTask
from flotilla.messaging.tasks.extension import EventHandler, TaskHandle, Tasks
from flotilla.messaging.tasks.state import TasksState, tasks_state
from flotilla.observability.propagation import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    outgoing_headers,
)
from flotilla.resilience.backoff import backoff_delay

__all__ = [
    "DEAD_LETTER_ERROR_HEADER",
    "REQUEST_ID_HEADER",
    "TRACEPARENT_HEADER",
    "EventHandler",
    "FlotillaTask",
    "TaskHandle",
    "Tasks",
    "TasksState",
    "backoff_delay",
    "outgoing_headers",
    "tasks_state",
]
