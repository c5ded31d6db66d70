"""``Tasks``: declare tasks and event handlers at import time, bind them to an app later.

Like :class:`flotilla.Database`, a ``Tasks`` object lives at module level so functions can
be decorated before any app exists; :meth:`Tasks.init_app` builds the app's own Celery app,
registers everything on it and keeps it in :mod:`flotilla.messaging.tasks.state`. Each Flask
app gets a separate Celery app, so tests can build many apps in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from celery import Celery
from flask import Flask

from flotilla.config import ServiceSettings
from flotilla.messaging.outbox.envelope import EVENT_TASK, Event
from flotilla.messaging.tasks.base import bind_task_class
from flotilla.messaging.tasks.cli import cli
from flotilla.messaging.tasks.config import celery_config, dead_letter_queue, work_queue
from flotilla.messaging.tasks.state import TasksState, keep_tasks_state, tasks_state

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
EventHandler = Callable[[Event], None]


class TaskHandle(Generic[P, R]):
    """A declared task: call it to run it here, ``delay`` it to run it on a worker."""

    def __init__(self, function: Callable[P, R], name: str, options: dict[str, Any]) -> None:
        self.function = function
        self.name = name
        self.options = options

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task in this process, now."""
        return self.function(*args, **kwargs)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Publish the task for the current app's workers; return its id.

        Never call this inside a database transaction whose outcome the task depends on:
        write an event to the outbox instead (see :mod:`flotilla.messaging.outbox`).
        """
        return self.apply_async(args, kwargs)

    def apply_async(
        self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, **options: Any
    ) -> str:
        """``delay`` with Celery's publishing options (``countdown``, ``task_id``, ...)."""
        task = tasks_state().celery.tasks[self.name]
        result = task.apply_async(args, kwargs or {}, **options)
        return str(result.id)


class Tasks:
    """The tasks and event handlers of one service."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskHandle[Any, Any]] = {}
        self._handlers: dict[str, EventHandler] = {}

    def task(
        self, *, name: str | None = None, max_retries: int | None = None
    ) -> Callable[[Callable[P, R]], TaskHandle[P, R]]:
        """Declare a task; ``max_retries`` defaults to ``TASK_MAX_RETRIES``.

        Tasks are delivered at least once (late acks), so they must be idempotent.
        """

        def declare(function: Callable[P, R]) -> TaskHandle[P, R]:
            task_name = name or f"{function.__module__}.{function.__qualname__}"
            handle = TaskHandle(function, task_name, {"max_retries": max_retries})
            self._tasks[task_name] = handle
            return handle

        return declare

    def on_event(self, event_type: str) -> Callable[[EventHandler], EventHandler]:
        """Handle events of ``event_type``: this service's queue is bound to that routing key.

        Delivery is at least once; apply each event once with
        :meth:`flotilla.ProcessedEvents.once`, which records it in the effect's transaction.
        """

        def register(handler: EventHandler) -> EventHandler:
            if event_type in self._handlers:
                raise ValueError(f"a handler for {event_type!r} is already registered")
            self._handlers[event_type] = handler
            return handler

        return register

    def init_app(self, app: Flask, settings: ServiceSettings) -> None:
        """Build ``app``'s Celery app, register tasks and handlers, add ``flask tasks``."""
        queue = work_queue(settings, sorted(self._handlers))
        celery = Celery(
            app.import_name, task_cls=bind_task_class(app, settings), set_as_current=False
        )
        celery.conf.update(celery_config(settings, queue))
        for handle in self._tasks.values():
            self._register(celery, handle.function, handle.name, handle.options, settings)
        if self._handlers:
            self._register(celery, self._dispatcher(), EVENT_TASK, {}, settings)
        keep_tasks_state(app, TasksState(celery, queue, dead_letter_queue(settings), settings))
        app.cli.add_command(cli)

    @staticmethod
    def _register(
        celery: Celery,
        function: Callable[..., Any],
        name: str,
        options: dict[str, Any],
        settings: ServiceSettings,
    ) -> None:
        max_retries = options.get("max_retries")
        if max_retries is None:
            max_retries = settings.TASK_MAX_RETRIES
        # Not shared: a shared task would be registered on every Celery app of the process.
        celery.task(name=name, max_retries=max_retries, shared=False)(function)

    def _dispatcher(self) -> Callable[[dict[str, Any]], None]:
        """The ``flotilla.event`` task: a plain function, as Celery checks its signature."""
        handlers = self._handlers

        def handle_event(envelope: dict[str, Any]) -> None:
            """Run the handler of the event's type; unknown types are logged and dropped."""
            event = Event.from_dict(envelope)
            handler = handlers.get(event.type)
            if handler is None:
                log.warning("no handler for event", extra={"event_type": event.type})
                return
            handler(event)

        return handle_event
