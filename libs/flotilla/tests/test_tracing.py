"""Tracing is off unless configured, samples work not polls, and names the span in logs.

The spans of real processes are checked end to end (``tests/e2e/tracing``); here, what can
be checked without starting the SDK, whose provider a process may set only once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from flotilla import ServiceSettings
from flotilla.observability import tracing
from flotilla.observability.propagation import (
    outgoing_headers,
    outgoing_traceparent,
    parse_traceparent,
)
from flotilla.observability.tracing import provider
from flotilla.observability.tracing.provider import StartOnFirstRequest
from flotilla.observability.tracing.sdk import WorkSampler, sampler
from flotilla.testing import capture_logs

from .conftest import build_app

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
SAMPLED = Decision.RECORD_AND_SAMPLE


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings.model_validate(values)


@pytest.mark.parametrize(
    ("values", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_on_only_when_an_exporter_or_endpoint_is_set(
    values: dict[str, str], enabled: bool
) -> None:
    assert settings(**values).tracing_enabled is enabled


def test_the_traces_endpoint_is_the_base_endpoint_plus_the_signal_path() -> None:
    base = settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4318/")
    assert base.otlp_traces_endpoint() == "http://collector:4318/v1/traces"
    full = settings(
        OTEL_EXPORTER_OTLP_ENDPOINT="http://a:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://b/t"
    )
    assert full.otlp_traces_endpoint() == "http://b/t"
    assert settings().otlp_traces_endpoint() is None


def test_a_service_without_tracing_settings_is_not_instrumented(tmp_path: Path) -> None:
    app = build_app(tmp_path)
    assert not isinstance(app.wsgi_app, StartOnFirstRequest)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    assert app.test_client().get("/ok").status_code == 200
    assert not tracing.is_active()


def test_a_traced_service_is_instrumented_and_starts_the_sdk_only_when_serving(
    tmp_path: Path,
) -> None:
    app = build_app(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    try:
        wrapper = app.wsgi_app
        while not isinstance(wrapper, StartOnFirstRequest):  # under ProxyFix, if any
            wrapper = wrapper.app  # type: ignore[attr-defined]
        assert getattr(app, "_is_instrumented_by_opentelemetry", False)
        assert not tracing.is_active()  # built, as a preloading server's main process does
    finally:  # the rest of this process is not traced
        provider.configure(settings(), "0")
        RedisInstrumentor().uninstrument()
        CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("name", "root_decision"),
    [
        ("parentbased_always_on", Decision.RECORD_AND_SAMPLE),
        ("always_on", Decision.RECORD_AND_SAMPLE),
        ("parentbased_always_off", Decision.DROP),
        ("traceidratio", Decision.DROP),  # with a ratio of 0
    ],
)
def test_the_sampler_is_the_one_named(name: str, root_decision: Decision) -> None:
    chosen = sampler(settings(OTEL_TRACES_SAMPLER=name, OTEL_TRACES_SAMPLER_ARG=0.0))
    result = chosen.should_sample(None, TRACE_ID, "GET /ok", SpanKind.SERVER)
    assert result.decision is root_decision


def test_a_trace_begins_with_work_never_with_a_statement_or_command() -> None:
    work = sampler(settings())
    assert isinstance(work, WorkSampler)
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.INTERNAL):
        assert work.should_sample(None, TRACE_ID, "work", kind).decision is SAMPLED
    assert work.should_sample(None, TRACE_ID, "SELECT", SpanKind.CLIENT).decision is Decision.DROP
    parent = trace.set_span_in_context(_span(sampled=True))
    in_work = work.should_sample(parent, TRACE_ID, "SELECT", SpanKind.CLIENT)
    assert in_work.decision is SAMPLED


@pytest.fixture
def active_span() -> Iterator[None]:
    """A current span, as the SDK makes one, without setting this process's provider."""
    previous = provider._Process.provider
    provider._Process.provider = TracerProvider()
    try:
        with trace.use_span(_span(sampled=True)):
            yield
    finally:
        provider._Process.provider = previous


@pytest.mark.usefixtures("active_span")
def test_log_lines_name_the_current_span() -> None:
    with capture_logs() as logs:
        logging.getLogger("test.tracing").info("inside")
    assert (logs[0]["trace_id"], logs[0]["span_id"]) == (f"{TRACE_ID:032x}", f"{SPAN_ID:016x}")


@pytest.mark.usefixtures("active_span")
def test_the_next_hop_continues_the_current_span() -> None:
    expected = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"
    assert outgoing_traceparent() == expected
    assert outgoing_headers()["traceparent"] == expected


def test_without_a_span_the_next_hop_still_gets_a_valid_traceparent() -> None:
    with capture_logs() as logs:
        logging.getLogger("test.tracing").info("outside")
    assert "trace_id" not in logs[0]
    assert parse_traceparent(outgoing_traceparent()) is not None


def _span(*, sampled: bool) -> NonRecordingSpan:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=flags))
