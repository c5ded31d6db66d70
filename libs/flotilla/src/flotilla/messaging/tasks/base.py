"""The Celery task class of every Flotilla task: app context, log context, retries, dead letters.

A task runs inside its Flask app's context and with the publisher's request id and trace as
its logging context. An exception is retried with exponential backoff and full jitter; after
the last retry the message is copied to the service's dead-letter queue *before* the
original is acknowledged, so a crash in between duplicates a dead letter, never loses one.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from celery import Task
from celery.exceptions import Ignore, Reject, Retry, TimeLimitExceeded
from flask import Flask

from flotilla.config import ServiceSettings
from flotilla.messaging.tasks.config import dead_letter_queue
from flotilla.observability.propagation import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    outgoing_headers,
    task_context,
)
from flotilla.resilience.backoff import backoff_delay
from flotilla.web import context

log = logging.getLogger(__name__)

DEAD_LETTER_ERROR_HEADER = "flotilla_error"
"""Header of a dead letter naming the exception that exhausted the retries."""

_CONTROL_FLOW = (Retry, Ignore, Reject)


def request_headers(request: Any) -> dict[str, Any]:
    """The Flotilla headers of the message being run (Celery exposes them as attributes)."""
    found = {name: getattr(request, name, None) for name in (REQUEST_ID_HEADER, TRACEPARENT_HEADER)}
    return {name: value for name, value in found.items() if value is not None}


class FlotillaTask(Task):  # type: ignore[misc]  # Celery ships no type hints
    """Base class of the tasks of one app; :func:`bind_task_class` makes the per-app subclass."""

    flask_app: ClassVar[Flask]
    settings: ClassVar[ServiceSettings]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task in the app context, logging with the publisher's request id."""
        headers = request_headers(self.request)
        token = context.begin(task_context(headers, task_name=self.name, task_id=self.request.id))
        try:
            with self.flask_app.app_context():
                return self._run_or_retry(args, kwargs)
        finally:
            context.end(token)

    def _run_or_retry(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return self.run(*args, **kwargs)
        except _CONTROL_FLOW:
            raise
        except Exception as error:
            retries: int = self.request.retries
            if retries >= self.max_retries:
                self._dead_letter(error, args, kwargs)
                raise
            delay = backoff_delay(
                retries,
                base=self.settings.TASK_RETRY_BACKOFF,
                cap=self.settings.TASK_RETRY_BACKOFF_MAX,
            )
            log.warning(
                "task failed, will retry",
                extra={
                    "error": repr(error)[:500],
                    "retries": retries,
                    "countdown": round(delay, 3),
                },
            )
            raise self._retry_later(error, delay) from error

    def _retry_later(self, error: Exception, delay: float) -> BaseException:
        """Republish for a later run; if that fails, put the message back rather than lose it.

        Celery turns a failed retry publish into a reject *without* requeue, which drops the
        message. The queue is named so a retried event goes back to this service only, not
        through the events exchange to every subscriber again.
        """
        outcome: BaseException
        try:
            outcome = self.retry(exc=error, countdown=delay, queue=self.app.conf.task_default_queue)
        except Retry as retry:
            outcome = retry
        except Reject as failed:
            log.warning("retry publish failed, requeueing", extra={"error": repr(failed)[:500]})
            outcome = Reject(failed, requeue=True)
        return outcome

    def _dead_letter(self, error: BaseException, args: Any, kwargs: Any, task_id: str = "") -> None:
        """Copy the message to the dead-letter queue; if that fails, requeue the original."""
        headers = {
            **request_headers(self.request),
            DEAD_LETTER_ERROR_HEADER: f"{type(error).__name__}: {error}"[:500],
        }
        task_id = task_id or self.request.id
        try:
            super().apply_async(
                args,
                kwargs,
                task_id=task_id,
                queue=dead_letter_queue(self.settings),
                headers=headers,
            )
        except Exception as publish_error:
            log.exception("dead-letter publish failed, requeueing", extra={"task_id": task_id})
            raise Reject(publish_error, requeue=True) from error
        log.error(
            "task dead-lettered",
            extra={"task_id": task_id, "error": headers[DEAD_LETTER_ERROR_HEADER]},
        )

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """A hard time limit killed the task's process: dead-letter it from the main process."""
        if isinstance(exc, TimeLimitExceeded):
            self._dead_letter(exc, args, kwargs, task_id=task_id)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Publish with the current request id and trace in the headers."""
        options["headers"] = {**outgoing_headers(), **(options.get("headers") or {})}
        return super().apply_async(args, kwargs, **options)


def bind_task_class(app: Flask, settings: ServiceSettings) -> type[FlotillaTask]:
    """A task class whose tasks run in ``app``'s context with ``settings``' retry policy."""
    return type(
        "AppTask", (FlotillaTask,), {"flask_app": app, "settings": settings, "abstract": True}
    )
