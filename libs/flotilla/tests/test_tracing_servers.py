"""Under both servers, each worker starts its own SDK after the fork and exports on SIGTERM.

The batch processor is told to wait ten minutes between exports, so every span that reaches
the receiver was sent by the worker's shutdown: the SDK started in the worker (a provider
started in the preloading main process would have no export thread there), and the worker
flushed it before leaving with ``os._exit``. Health probes, which the servers' start-up polls,
are not traced.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flotilla.testing import SERVERS
from flotilla.testing.telemetry import OtlpReceiver

from .web_servers import get, start_server

pytestmark = [pytest.mark.process, pytest.mark.parametrize("server", sorted(SERVERS))]

REQUESTS = 20


def test_workers_trace_after_the_fork_and_flush_when_stopped(server: str, tmp_path: Path) -> None:
    with OtlpReceiver() as receiver:
        started = start_server(
            server,
            tmp_path,
            workers=2,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
            OTEL_BSP_SCHEDULE_DELAY="600000",
        )
        try:
            answers = [get(f"{started.url}/ok") for _ in range(REQUESTS)]
            assert {status for status, _ in answers} == {200}
            time.sleep(0.5)
            assert receiver.spans() == []  # held in the workers' batches
        finally:
            assert started.stop() == 0
        spans = receiver.spans()
    assert len(spans) == REQUESTS
    assert {(span.name, span.kind, span.service) for span in spans} == {
        ("GET /ok", "SERVER", "sample")
    }
    started_lines = [r for r in started.log_records() if r.get("message") == "tracing started"]
    # Once in each worker that served (a probe counts), never in the main process.
    assert len({body["pid"] for _, body in answers}) <= len(started_lines) <= 2
