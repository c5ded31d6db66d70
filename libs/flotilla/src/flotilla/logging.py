"""JSON logs: one object per line on stdout, with the request context added to every record.

Modules log with ``logging.getLogger(__name__)`` and an event name plus fields in ``extra``;
only :func:`configure_logging` touches handlers. The request id, method, path, user id and
the context's extra fields (a task's id and trace) come from :mod:`flotilla.context`, so
nobody passes them by hand.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from flotilla import context

_HANDLER_NAME = "flotilla.stdout"
_FIELD_NAMES = {"levelname": "level", "name": "logger", "asctime": "ts"}


class JsonFormatter(OrjsonFormatter):
    """Formats records as JSON with ts, level, logger, message, service and request context."""

    def __init__(self, service: str) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields=_FIELD_NAMES,
            static_fields={"service": service},
            timestamp="ts",
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Add the current context's id, method, path, user and extra fields to the record's.

        The record's own fields (``extra=`` of the logging call) win over the context's.
        Reading the context here, rather than copying it onto every record in a record
        factory, keeps process-wide logging untouched: only Flotilla's own lines carry it.
        """
        super().add_fields(log_data, record, message_dict)
        request = context.current()
        if request is None:
            return
        log_data.setdefault("request_id", request.request_id)
        log_data.setdefault("method", request.method)
        log_data.setdefault("path", request.path)
        if request.user_id is not None:
            log_data.setdefault("user_id", request.user_id)
        for name, value in request.extra.items():
            log_data.setdefault(name, value)


def configure_logging(service: str, level: str | None = None) -> None:
    """Send every record of the process to stdout as JSON; replaces earlier stream handlers.

    Idempotent, so the Gunicorn config and the app factory may both call it. Without a
    ``level``, one set by an earlier call stands (the app's ``LOG_LEVEL``: under Gunicorn
    with ``preload_app`` the app is built before the master's hook runs), else INFO.
    """
    root = logging.getLogger()
    configured = any(existing.get_name() == _HANDLER_NAME for existing in root.handlers)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.set_name(_HANDLER_NAME)
    for existing in list(root.handlers):
        if _is_plain_stream_handler(existing):
            root.removeHandler(existing)
    root.addHandler(handler)
    if level is not None or not configured:
        root.setLevel((level or "INFO").upper())
    # Werkzeug's development server logs each request in Apache format; ours already does.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at INFO on every command.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def _is_plain_stream_handler(handler: logging.Handler) -> bool:
    """Ours, or one ``logging.basicConfig`` installed; test-runner capture handlers stay."""
    return handler.get_name() == _HANDLER_NAME or type(handler) is logging.StreamHandler
