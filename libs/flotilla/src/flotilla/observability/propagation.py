"""Request id and W3C trace context, carried from the publisher to the task that runs.

The publisher puts its request id and ``traceparent`` in the message headers; the worker
makes them the logging context of the task (:mod:`flotilla.web.context`), so every log line of
the task names the request that caused it. The trace continues with a new span id, as the
W3C Trace Context specification asks of each hop.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from flask import has_request_context, request

from flotilla.observability import tracing
from flotilla.web import context

REQUEST_ID_HEADER = "flotilla_request_id"
TRACEPARENT_HEADER = "traceparent"
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_INVALID_TRACE = "0" * 32


def parse_traceparent(value: object) -> tuple[str, str] | None:
    """``(trace_id, flags)`` of a valid version-00 ``traceparent``, else ``None``."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.fullmatch(value)
    if match is None or match.group(1) == _INVALID_TRACE or match.group(2) == "0" * 16:
        return None
    return match.group(1), match.group(3)


def child_traceparent(parent: object) -> str:
    """A ``traceparent`` for the next hop: the parent's trace with a new span, or a new trace."""
    parsed = parse_traceparent(parent)
    trace_id, flags = parsed if parsed else (secrets.token_hex(16), "01")
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def current_traceparent() -> str | None:
    """The trace of the work in progress: a running task's, else the HTTP request's header."""
    request_context = context.current()
    if request_context is not None and "traceparent" in request_context.extra:
        return str(request_context.extra["traceparent"])
    if has_request_context():
        return request.headers.get("traceparent")
    return None


def outgoing_traceparent() -> str:
    """The ``traceparent`` the next hop continues: the current span's while tracing records
    (so the callee's spans are its children), else a child of the one received."""
    return tracing.current_traceparent() or child_traceparent(current_traceparent())


def outgoing_headers() -> dict[str, str]:
    """Headers for a message published now: the current request id and a child span."""
    request_context = context.current()
    request_id = request_context.request_id if request_context else context.new_request_id()
    return {
        REQUEST_ID_HEADER: request_id,
        TRACEPARENT_HEADER: outgoing_traceparent(),
    }


def task_context(
    headers: Mapping[str, Any], *, task_name: str, task_id: str
) -> context.RequestContext:
    """The logging context of a task run, from the headers its publisher sent."""
    traceparent = child_traceparent(headers.get(TRACEPARENT_HEADER))
    trace_id = traceparent.split("-")[1]
    return context.RequestContext(
        request_id=context.accept_request_id(headers.get(REQUEST_ID_HEADER)),
        method="TASK",
        path=task_name,
        extra={"task_id": task_id, "traceparent": traceparent, "trace_id": trace_id},
    )
