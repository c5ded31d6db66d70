"""The SDK's parts of tracing: the provider, its exporter and the sampler.

Imported by :func:`flotilla.observability.tracing.provider.start` only, in a process that traces:
the SDK, the OTLP exporter (with protobuf) and what they import are not loaded into a process with
tracing off, which keeps every web worker several MiB smaller.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from flotilla.config import ServiceSettings


def new_provider(settings: ServiceSettings, version: str) -> TracerProvider:
    """The tracer provider ``settings`` describe: resource, sampler and batching exporter."""
    resource = Resource.create(
        {
            "service.name": settings.OTEL_SERVICE_NAME or settings.SERVICE_NAME,
            "service.version": version,
            "deployment.environment.name": settings.ENVIRONMENT.value,
        }
    )
    # shutdown_on_exit=False: the paths out of a process call shutdown() themselves, and
    # an atexit hook would keep a reference to every provider of a test session.
    provider = TracerProvider(resource=resource, sampler=sampler(settings), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
    return provider


def _exporter(settings: ServiceSettings) -> SpanExporter:
    if settings.OTEL_TRACES_EXPORTER == "console":
        return ConsoleSpanExporter()
    return OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint())


def sampler(settings: ServiceSettings) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG`` name, for work.

    Wrapped in :class:`WorkSampler`, so traces begin only where work enters the process.
    """
    name = settings.OTEL_TRACES_SAMPLER
    root: Sampler
    if name.endswith("traceidratio"):
        root = TraceIdRatioBased(settings.OTEL_TRACES_SAMPLER_ARG)
    else:
        root = ALWAYS_OFF if name.endswith("always_off") else ALWAYS_ON
    return WorkSampler(ParentBased(root) if name.startswith("parentbased_") else root)


UNTRACED_PATHS = ("/healthz/", "/metrics")
"""Probes and scrapes: a trace each, every few seconds, would drown the traces of work."""


def _path(attributes: Attributes) -> str:
    """The request path among a server span's first attributes (either HTTP conventions)."""
    attributes = attributes or {}
    for name in ("url.path", "http.target"):
        value = attributes.get(name)
        if isinstance(value, str):
            return value
    url = attributes.get("http.url")
    return urlsplit(url).path if isinstance(url, str) else ""


class WorkSampler(Sampler):
    """Drops a trace that would begin with a client span, and the requests of probes and
    scrapes; asks ``sampler`` about the rest.

    A trace worth keeping begins with a request, a task or an event (a server, consumer,
    producer or internal span). A statement or a Redis command outside any of them is a
    readiness probe's ``SELECT 1``, a metrics scrape's gauge query or the relay's poll for
    pending rows: recorded, each would be a trace of its own, several a second, burying the
    traces of work.
    """

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def should_sample(  # noqa: PLR0917 - the Sampler interface's parameters
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """``DROP`` for a client span without a parent and a probe's or scrape's request;
        else the wrapped sampler's answer."""
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        if kind is SpanKind.SERVER and _path(attributes).startswith(UNTRACED_PATHS):
            return SamplingResult(Decision.DROP)
        return self.sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """Named after the sampler it wraps."""
        return f"WorkSampler{{{self.sampler.get_description()}}}"
