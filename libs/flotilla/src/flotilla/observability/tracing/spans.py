"""Spans no contrib instrumentation makes: our HTTP client, the outbox, the relay, SMTP.

The chassis' HTTP client is its own (urllib3 underneath), and the urllib3 instrumentation
would see only the attempts that reach the network: a call the circuit breaker or the
deadline refuses never opens a connection, yet it is exactly the failure a trace must show.
The outbox and the relay publish through their own code (raw AMQP with publisher
confirms), and smtplib has no instrumentation at all. Each helper here is a no-op, without
touching the OpenTelemetry API, while the SDK has not started in the process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode

from flotilla.observability.tracing.provider import is_active

_tracer = trace.get_tracer("flotilla")
"""A proxy until the SDK starts; then the process's tracer."""
_IDLE = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)


@contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Iterator[Span]:
    """A span around the block, current inside it; an exception marks it failed."""
    if not is_active():
        yield _IDLE
        return
    with _tracer.start_as_current_span(name, kind=kind, attributes=attributes) as current:
        yield current


def client_span(target: str, method: str, url: str) -> Any:
    """The span of one attempt to call ``target``: ``GET users`` and the semantic attributes."""
    return span(
        f"{method} {target}",
        kind=SpanKind.CLIENT,
        **{
            "http.request.method": method,
            "url.path": url.partition("?")[0],  # the query may hold what a trace must not
            "peer.service": target,
        },
    )


def record_response(current: Span, status: int) -> None:
    """The answer's status; a client span fails on 4xx and 5xx (HTTP semantic conventions)."""
    current.set_attribute("http.response.status_code", status)
    if status >= 400:
        current.set_status(Status(StatusCode.ERROR))


def record_failure(current: Span, reason: str, status: int | None = None) -> None:
    """A call that did not get an answer below 500: why, as ``error.type``."""
    current.set_attribute("error.type", reason)
    if status is not None:
        current.set_attribute("http.response.status_code", status)
    current.set_status(Status(StatusCode.ERROR, reason))


@contextmanager
def continued(headers: Mapping[str, Any]) -> Iterator[None]:
    """Make the trace context in ``headers`` (a ``traceparent``) current for the block."""
    if not is_active():
        yield
        return
    token = otel_context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def publishing(event_type: str, headers: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """The span of publishing one event; the headers to send with it, which name that span.

    Its parent is the span that wrote the event's outbox row (its ``traceparent`` is in the
    row's headers), so the relay's work, and the consumer's after it, join the trace of the
    request that caused the event, however long after it the relay runs.
    """
    if not is_active():
        yield dict(headers)
        return
    with _tracer.start_as_current_span(
        f"publish {event_type}",
        context=propagate.extract(headers),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "rabbitmq", "messaging.destination.name": event_type},
    ):
        yield {**headers, "traceparent": current_traceparent() or ""}


def current_traceparent() -> str | None:
    """The current span's ``traceparent``, when a span is recording in this process."""
    if not is_active():
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    flags = f"{int(span_context.trace_flags):02x}"
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags}"


def current_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` in hex of the current span, for log lines."""
    if not is_active():
        return None
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"
