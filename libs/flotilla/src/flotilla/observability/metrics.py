"""Prometheus metrics that stay correct when several Gunicorn workers serve one port.

With ``PROMETHEUS_MULTIPROC_DIR`` set (the Gunicorn config sets it before any metric exists),
every worker writes its samples to memory-mapped files in that directory and ``/metrics``
merges all of them, so the scrape shows the same totals whichever worker answers it. The
Gunicorn ``child_exit`` hook removes a dead worker's live gauges; its counters stay, because
requests it served did happen. Without the variable, metrics live in process memory.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TypeVar

from flask import Blueprint, Flask, Response, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LABELS = ("method", "endpoint", "status")
_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
_STARTED_KEY = "flotilla.metrics.started"


T = TypeVar("T")

_pid = os.getpid()


def _remember_pid() -> None:
    global _pid  # noqa: PLW0603 - the one value a forked child must renew
    _pid = os.getpid()


os.register_at_fork(after_in_child=_remember_pid)


def _process_id() -> int:
    """This process's id, asked of the kernel once per process rather than once per sample.

    A file-backed metric checks on every update that its process has not forked since it
    opened its file (prometheus_client's ``process_identifier``); with ``os.getpid`` that is
    a system call for each of the six or so updates of every request.
    """
    return _pid


def created_once(factory: Callable[[], T]) -> Callable[[], T]:
    """Make a metric factory return what its first call made, even when threads race.

    prometheus_client refuses a second metric of a name (``Duplicated timeseries``), and
    ``functools.cache`` alone lets two threads of a newly started worker both run the
    factory: one of their requests then fails. Metrics made this way are usually made
    while the app is built, before any worker starts; the lock covers the ones made later.
    """
    lock = threading.Lock()
    made: list[T] = []

    @functools.wraps(factory)
    def get() -> T:
        if not made:
            with lock:
                if not made:
                    made.append(factory())
        return made[0]

    return get


@dataclass(frozen=True)
class Instruments:
    """The request metrics of this process, created once on first use."""

    requests: Counter
    latency: Histogram
    in_flight: Gauge
    app_info: Gauge


@created_once
def instruments() -> Instruments:
    """Create the metrics, after the Gunicorn config had its chance to set the directory.

    prometheus_client picks file-backed or in-memory storage when it is first imported, and
    something may import it before ``PROMETHEUS_MULTIPROC_DIR`` is set; asking it again here
    makes the choice follow the environment at the time metrics are created. The directory is
    created if missing: Gunicorn's config prepares it, but a migration, relay or worker started
    with the variable set (as a container's environment sets it for every process) may be the
    first to write there, and prometheus_client would fail on a missing directory.
    """
    if directory := os.environ.get(MULTIPROCESS_ENV):
        Path(directory).mkdir(parents=True, exist_ok=True)
        values.ValueClass = values.MultiProcessValue(process_identifier=_process_id)  # type: ignore[no-untyped-call]
    else:
        values.ValueClass = values.MutexValue
    return Instruments(
        requests=Counter("http_requests", "HTTP requests served.", _LABELS),
        latency=Histogram(
            "http_request_duration_seconds",
            "Time from the first byte of the request to the response, by route.",
            _LABELS,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        ),
        in_flight=Gauge(
            "http_requests_in_flight", "Requests being served now.", multiprocess_mode="livesum"
        ),
        app_info=Gauge(
            "flotilla_app_info",
            "Service name and version; the value is always 1.",
            ("service", "version"),
            multiprocess_mode="max",
        ),
    )


def is_multiprocess() -> bool:
    """True when samples are shared through files between worker processes."""
    return bool(os.environ.get(MULTIPROCESS_ENV))


def scrape() -> bytes:
    """Every metric of every worker, in the Prometheus text format."""
    if not is_multiprocess():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def mark_process_dead(pid: int) -> None:
    """Drop the live gauges of a worker that exited (called from the Gunicorn master)."""
    if is_multiprocess():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    """Counts every request by method, route and status, and serves ``/metrics``."""

    def __init__(self, app: Flask | None = None, *, version: str = "0") -> None:
        self.version = version
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Measure ``app``'s requests and add the ``/metrics`` endpoint."""
        app.extensions["flotilla.metrics"] = self
        instruments().app_info.labels(app.name, self.version).set(1)
        app.before_request(_start_timer)
        app.after_request(_observe)
        app.teardown_request(_leave)
        app.register_blueprint(_blueprint)


def _start_timer() -> None:
    if request.endpoint == "flotilla_metrics.metrics":
        return
    request.environ[_STARTED_KEY] = time.perf_counter()
    instruments().in_flight.inc()


def _observe(response: Response) -> Response:
    started: float | None = request.environ.get(_STARTED_KEY)
    if started is None:
        return response
    method = request.method if request.method in _KNOWN_METHODS else "OTHER"
    rule = request.url_rule
    count, latency = _series(method, rule.rule if rule else None, response.status_code)
    count.inc()
    latency.observe(time.perf_counter() - started)
    return response


@cache
def _series(method: str, rule: str | None, status: int) -> tuple[Counter, Histogram]:
    """The two labelled series one request updates, looked up once per (method, route, status).

    prometheus_client's ``labels()`` checks and converts the values and takes a lock on every
    call; the set of distinct label values is small (routes x methods x statuses), so each
    process keeps the children it has used. They are created after the fork, in the worker,
    since nothing calls this in a server's parent process.
    """
    labels = (method, _route_label(rule) if rule is not None else "<unmatched>", str(status))
    metrics = instruments()
    return metrics.requests.labels(*labels), metrics.latency.labels(*labels)


@cache
def _route_label(rule: str) -> str:
    """``/users/<int(max=9):user_id>`` becomes ``/users/<user_id>``: readable, same series."""
    return _CONVERTER.sub(r"<\1>", rule)


def _leave(_error: BaseException | None) -> None:
    if request.environ.pop(_STARTED_KEY, None) is not None:
        instruments().in_flight.dec()


METRICS_BLUEPRINT = "flotilla_metrics"
"""The blueprint serving ``/metrics``; hooks that prepare a scrape attach to it."""

_blueprint = Blueprint(METRICS_BLUEPRINT, __name__)


@_blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus scrape endpoint."""
    return Response(scrape(), content_type=CONTENT_TYPE_LATEST)
