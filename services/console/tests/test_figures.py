"""What the status page and the charts read out of the services' own /metrics.

The expositions are made by prometheus_client itself, from the chassis' own metric names,
so the parsing is checked against what a service really serves.
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from console import charts
from console.charts import STEP, counters_of, grid, sampled_series
from console.models import Sample, db
from console.status import _figures, traffic_counters
from flotilla.testing import free_port

LABELS = ("method", "endpoint", "status")


def exposition() -> str:
    registry = CollectorRegistry()
    requests = Counter("http_requests", "", LABELS, registry=registry)
    latency = Histogram("http_request_duration_seconds", "", LABELS, registry=registry)
    breaker = Gauge("flotilla_http_client_breaker_state", "", ("target",), registry=registry)
    pending = Gauge("flotilla_outbox_pending_events", "", registry=registry)
    oldest = Gauge("flotilla_outbox_oldest_pending_age_seconds", "", registry=registry)
    queue = Gauge("flotilla_task_queue_messages", "", ("queue", "kind"), registry=registry)
    requests.labels("GET", "/api/v1/products", "200").inc(90)
    requests.labels("POST", "/api/v1/orders", "503").inc(10)
    requests.labels("GET", "/healthz/ready", "200").inc(1000)  # probes are not traffic
    latency.labels("GET", "/api/v1/products", "200").observe(0.5)
    latency.labels("POST", "/api/v1/orders", "503").observe(1.5)
    latency.labels("GET", "/metrics", "200").observe(100)
    breaker.labels("catalog").set(2)
    breaker.labels("users").set(0)
    pending.set(3)
    oldest.set(42.5)
    queue.labels("notifications.tasks", "work").set(4)
    queue.labels("notifications.tasks.dead", "dead_letter").set(1)
    return generate_latest(registry).decode()


def test_the_status_figures_are_read_from_the_exposition() -> None:
    figures = _figures(exposition())
    assert figures["breakers"] == {"catalog": "open", "users": "closed"}
    assert figures["outbox_pending"] == 3
    assert figures["outbox_oldest_seconds"] == 42.5
    (queue,) = figures["queues"]
    assert (queue.name, queue.waiting, queue.dead_letters) == ("notifications.tasks", 4, 1)


def test_a_process_without_those_figures_shows_none() -> None:
    figures = _figures("")
    assert figures == {
        "breakers": {},
        "outbox_pending": None,
        "outbox_oldest_seconds": None,
        "queues": [],
    }


def test_traffic_counters_leave_out_probes_and_scrapes() -> None:
    assert counters_of(exposition()) == {
        "requests": 100.0,
        "errors": 10.0,
        "latency_sum": 2.0,
        "latency_count": 2.0,
    }


class _Metrics(BaseHTTPRequestHandler):
    """A service's /metrics: the exposition above."""

    def do_GET(self) -> None:
        body = exposition().encode() if self.path == "/metrics" else b""
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_the_charts_read_every_answering_service_s_counters_and_skip_the_others() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        read = traffic_counters(
            {
                "catalog": f"http://127.0.0.1:{server.server_port}",
                "orders": f"http://127.0.0.1:{free_port()}",  # nothing listens there
                "users": f"http://127.0.0.1:{server.server_port}/elsewhere",  # a 404
            }
        )
    finally:
        server.shutdown()
        server.server_close()
    assert read == {"catalog": counters_of(exposition())}


def test_the_grid_is_the_last_hour_in_steps_up_to_now() -> None:
    points = grid(now=1_000_000.0)
    assert len(points) == 3600 // STEP
    assert points[-1] == 1_000_000
    assert {b - a for a, b in itertools.pairwise(points)} == {STEP}


def test_rates_are_the_differences_of_consecutive_samples(app: Flask) -> None:
    points = grid()
    now = datetime.fromtimestamp(points[-1], UTC)
    rows = [  # one sample per point of the grid
        (now - timedelta(seconds=2 * STEP), 100, 1, 10.0, 100),
        (now - timedelta(seconds=STEP), 400, 7, 25.0, 400),
        (now, 50, 0, 1.0, 50),  # restarted: its counters began again
    ]
    with app.app_context():
        session = db.session()
        session.add_all(
            Sample(
                service="catalog",
                taken_at=taken_at,
                requests=requests,
                errors=errors,
                latency_sum=latency_sum,
                latency_count=count,
            )
            for taken_at, requests, errors, latency_sum, count in rows
        )
        session.commit()
        series = sampled_series(points)
    assert set(series) == set(charts.FIGURES)
    assert series["requests"]["catalog"][-3:] == [None, 10.0, round(50 / STEP, 3)]
    assert series["errors"]["catalog"][-2:] == [0.2, 0.0]
    assert series["latency_ms"]["catalog"][-2:] == [50.0, 20.0]
