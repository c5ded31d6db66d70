"""``/metrics`` for processes that serve no HTTP: outbox relays, recovery loops, task workers.

Prometheus can only scrape what answers. A web service's ``/metrics`` cannot speak for its
relay or its worker: those run in other processes, other containers, often other machines,
and when one of them dies its numbers must disappear with it (that is what ``up`` and the
alerts on it see). So each background process serves its own, on ``METRICS_BIND``, with
prometheus_client's small threaded HTTP server: no extra dependency, one daemon thread, and
nothing on the process's own work path (docs/adr/0025-monitoring.md).

A scrape shows this process's metrics, its ``process_*`` figures (start time, memory, CPU)
and whatever ``collectors`` read at scrape time, such as the depth of the task queues. With
``PROMETHEUS_MULTIPROC_DIR`` set the samples of every process writing to that directory are
merged, as a web service's ``/metrics`` does (a prefork worker's children, for instance).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, ProcessCollector, multiprocess
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from flotilla.observability.metrics import instruments, is_multiprocess

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricsServer:
    """A running metrics endpoint: where it listens, and how to stop it."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when ``METRICS_BIND`` asked for port 0)."""
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self.server.shutdown()
        self.server.server_close()


class _Everything:
    """This process's default registry, seen through another (which adds ``collectors``)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def parse_bind(bind: str) -> tuple[str, int]:
    """``host:port`` (``[::]:9100`` for IPv6) as its host and port; ``:9100`` is all hosts."""
    host, separator, port = bind.rpartition(":")
    if not separator or not port.isdigit():
        raise ValueError(f"METRICS_BIND {bind!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - a container's own address


def metrics_registry(collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    """What a scrape of this process shows: its metrics, its process figures, ``collectors``."""
    # lets prometheus_client choose file-backed values first (flotilla.observability.metrics)
    instruments()
    registry = CollectorRegistry(auto_describe=False)
    if is_multiprocess():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        ProcessCollector(registry=registry)
    else:
        registry.register(_Everything())
    for collector in collectors:
        registry.register(collector)
    return registry


def serve_metrics(bind: str, collectors: Iterable[Collector] = ()) -> MetricsServer | None:
    """Answer scrapes on ``bind`` (``METRICS_BIND``) from a daemon thread; None if empty."""
    if not bind:
        return None
    host, port = parse_bind(bind)
    server, thread = start_http_server(port, host, metrics_registry(collectors))
    started = MetricsServer(server, thread)
    log.info("metrics server started", extra={"host": host, "port": started.port})
    return started
