"""The OpenTelemetry SDK of one process: started after the fork, flushed before the exit.

A span processor exports from a thread of its own, and a thread does not survive ``fork``:
a provider started in a preloading server's main process would leave every worker with a
queue nobody drains. So the SDK is started per process, where the work is done:

* a web worker starts it on its first request (:class:`StartOnFirstRequest`), so the main
  process of Gunicorn or granian, which imports the app but serves nothing, never starts it;
* a Celery worker starts it in each pool process (``worker_process_init``), or in the worker
  itself when the pool is threads or solo; the outbox relay starts it when it starts.

:func:`shutdown` exports what is queued; every path out of a process calls it (a Gunicorn or
granian worker leaves with ``os._exit``, which skips ``atexit``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
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

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Process:
    """This process's provider; reset in a forked child, which must start its own."""

    settings: ServiceSettings | None = None
    version: str = "0.0.0"
    provider: TracerProvider | None = None
    lock = threading.Lock()


def _forget_after_fork() -> None:
    _Process.provider = None
    _Process.lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def configure(settings: ServiceSettings, version: str) -> None:
    """Remember how to start the SDK in this process and in its forked children."""
    _Process.settings = settings
    _Process.version = version


def is_active() -> bool:
    """Whether spans are being recorded in this process (the SDK has started)."""
    return _Process.provider is not None


def start() -> bool:
    """Start the SDK in this process, once; ``False`` when tracing is not configured."""
    if _Process.provider is not None:
        return True
    settings = _Process.settings
    if settings is None or not settings.tracing_enabled:
        return False
    with _Process.lock:
        if _Process.provider is None:
            _Process.provider = _new_provider(settings, _Process.version)
            trace.set_tracer_provider(_Process.provider)
            log.info(
                "tracing started",
                extra={
                    "endpoint": settings.otlp_traces_endpoint() or "default",
                    "sampler": settings.OTEL_TRACES_SAMPLER,
                },
            )
    return True


def shutdown() -> None:
    """Export the spans still queued, then stop exporting; nothing when never started."""
    provider = _Process.provider
    if provider is not None:
        provider.shutdown()


def _new_provider(settings: ServiceSettings, version: str) -> TracerProvider:
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


class StartOnFirstRequest:
    """WSGI layer that starts the SDK in the process serving the request, then steps aside.

    After the first request of a process it costs one attribute test per request; it is
    installed only when tracing is configured.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Start the SDK if this process has not, then serve the request."""
        if _Process.provider is None:
            start()
        return self.app(environ, start_response)
