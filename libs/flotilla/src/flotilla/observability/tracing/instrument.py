"""What the contrib instrumentations trace, installed only when tracing is configured.

Flask's instrumentation makes the server span of each request, continuing the caller's
``traceparent``; SQLAlchemy's a span per statement; Redis's a span per command; Celery's a
span per published and per run task, continuing the trace carried in the message headers.
Each is installed here so that a service with tracing off runs none of their code, and
imported only when tracing is on: the instrumentations import what they instrument (Celery
among them, which a web worker otherwise never loads) and weigh several MiB per process.
"""

from __future__ import annotations

from flask import Flask
from opentelemetry import metrics, trace
from sqlalchemy import Engine

from flotilla.config import ServiceSettings
from flotilla.observability.tracing.provider import StartOnFirstRequest, configure


def install(app: Flask, settings: ServiceSettings, version: str) -> None:
    """Instrument ``app`` and the libraries of this process, if tracing is configured."""
    configure(settings, version)
    if not settings.tracing_enabled:
        return
    # Imported here: see the module's docstring.
    from opentelemetry.instrumentation.celery import CeleryInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: PLC0415

    # Probes and scrapes are left out by the sampler (provider.WorkSampler), not by
    # excluded_urls, which rebuilds the request's URL three times on every request; the
    # SQL commenter is off (SQLAlchemy's instrumentation is not asked to comment), so its
    # per-request context is not built either.
    FlaskInstrumentor().instrument_app(app, enable_commenter=False)  # type: ignore[no-untyped-call]
    app.wsgi_app = StartOnFirstRequest(app.wsgi_app)  # type: ignore[method-assign]
    for instrumentor in (RedisInstrumentor(), CeleryInstrumentor()):  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def instrument_engine(engine: Engine, settings: ServiceSettings) -> None:
    """A span per SQL statement run on ``engine``, if tracing is configured.

    SQLAlchemy's instrumentor, called once per process, would only patch ``create_engine``
    for engines made afterwards; each engine is instrumented here instead, as it is made.
    """
    if not settings.tracing_enabled:
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: PLC0415

    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    meter = metrics.get_meter("opentelemetry.instrumentation.sqlalchemy")
    usage = meter.create_up_down_counter(
        "db.client.connections.usage", unit="connections", description="Connections by state."
    )
    EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]
