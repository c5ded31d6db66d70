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

The SDK itself is imported by :func:`start`, from :mod:`flotilla.observability.tracing.sdk`: a
process with tracing off never loads it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from flotilla.config import ServiceSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

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
            from flotilla.observability.tracing.sdk import new_provider  # noqa: PLC0415 - see the docstring

            _Process.provider = new_provider(settings, _Process.version)
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
