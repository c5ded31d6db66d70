"""OpenTelemetry traces, opt-in by the standard ``OTEL_*`` settings; see docs/observability.md.

:func:`install` (called by :func:`flotilla.create_service`) instruments the app, its
database engines, Redis and Celery when tracing is configured, and does nothing otherwise:
no SDK, no instrumentation, no per-request cost. :mod:`flotilla.observability.tracing.provider`
starts the SDK in each process that does work; :mod:`flotilla.observability.tracing.spans` makes the
spans no instrumentation does.
"""

from opentelemetry.trace import SpanKind

from flotilla.observability.tracing.instrument import install, instrument_engine
from flotilla.observability.tracing.provider import is_active, shutdown, start
from flotilla.observability.tracing.spans import (
    client_span,
    continued,
    current_ids,
    current_traceparent,
    publishing,
    record_failure,
    record_response,
    span,
)

__all__ = [
    "SpanKind",
    "client_span",
    "continued",
    "current_ids",
    "current_traceparent",
    "install",
    "instrument_engine",
    "is_active",
    "publishing",
    "record_failure",
    "record_response",
    "shutdown",
    "span",
    "start",
]
