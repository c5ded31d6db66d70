"""The metrics port of background processes: what a scrape shows, where it listens."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import ValidationError

from flotilla import ServiceSettings
from flotilla.observability.metrics_server import parse_bind, serve_metrics


class _Fixed:
    """A collector read at scrape time, as the queue depth is."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("flotilla_test_answer", "Read at scrape time.", value=42)


def test_a_scrape_shows_the_process_and_what_collectors_read() -> None:
    server = serve_metrics("127.0.0.1:0", [_Fixed()])
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()

    assert "flotilla_test_answer 42.0" in text
    assert "process_start_time_seconds " in text  # what the worker-restart alert reads
    assert "flotilla_app_info" in text  # this process's own metrics


def test_no_bind_serves_nothing() -> None:
    assert serve_metrics("") is None


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        (":9100", ("0.0.0.0", 9100)),
        ("[::]:9100", ("::", 9100)),
    ],
)
def test_bind_is_host_and_port(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


@pytest.mark.parametrize("bind", ["9100", "localhost", "host:port"])
def test_a_bind_without_a_port_is_refused_at_start(bind: str) -> None:
    with pytest.raises(ValueError, match="METRICS_BIND"):
        parse_bind(bind)
    with pytest.raises(ValidationError, match="METRICS_BIND"):
        ServiceSettings(METRICS_BIND=bind)
