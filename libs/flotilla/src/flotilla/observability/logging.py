"""JSON logs: one object per line on stdout, with the request context added to every record.

Modules log with ``logging.getLogger(__name__)`` and an event name plus fields in ``extra``;
only :func:`configure_logging` touches handlers. The request id, method, path, user id and
the context's extra fields (a task's id and trace) come from :mod:`flotilla.web.context`, and
the current span's ``trace_id`` and ``span_id`` from OpenTelemetry while tracing records, so
nobody passes them by hand.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

from flotilla.observability import tracing
from flotilla.web import context

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
        _add_context(log_data)

    def line(self, level: int, logger: str, message: str, fields: Mapping[str, Any]) -> str:
        """What :meth:`format` writes for a record of these, built without a ``LogRecord``."""
        log_data: dict[str, Any] = {
            "level": logging.getLevelName(level),
            "logger": logger,
            "message": message,
            "service": self.static_fields["service"],
            **fields,
            "ts": datetime.now(UTC),
        }
        _add_context(log_data)
        return self.serialize_log_record(log_data)


def _add_context(log_data: dict[str, Any]) -> None:
    span = tracing.current_ids()
    if span is not None:  # the span's ids win over a task's traceparent: they name the span
        log_data.setdefault("trace_id", span[0])
        log_data.setdefault("span_id", span[1])
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


def info_fast(logger: logging.Logger, message: str, fields: Mapping[str, Any]) -> None:
    """``logger.info(message, extra=fields)``, written straight when only stdout would see it.

    The per-request access line is the one record every request writes. When the chassis'
    stdout handler is the only one that would receive it (no other handler or filter on the
    way, as configured by :func:`configure_logging`), the line is built and written
    directly, the same JSON as through ``logging``, skipping the ``LogRecord``, the caller
    lookup and the handler chain: about two thirds of what the line costs. Anything else
    (a test capturing logs, a handler an operator added) gets the ordinary record.
    """
    if not logger.isEnabledFor(logging.INFO):
        return
    handler = _sole_stdout_handler(logger)
    if handler is None or not isinstance(handler.formatter, JsonFormatter):
        logger.info(message, extra=dict(fields))
        return
    line = handler.formatter.line(logging.INFO, logger.name, message, fields)
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    finally:
        handler.release()


def _sole_stdout_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The chassis' stdout handler, if it is the only one ``logger``'s records reach."""
    node: logging.Logger | None = logger
    while node is not None and node.parent is not None:  # every logger below the root
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    root = logging.getLogger()
    if root.filters or len(root.handlers) != 1:
        return None
    (handler,) = root.handlers
    if handler.get_name() != _HANDLER_NAME or handler.filters or handler.level > logging.INFO:
        return None
    return handler if isinstance(handler, logging.StreamHandler) else None


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
