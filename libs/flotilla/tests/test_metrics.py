"""Request metrics by method, route and status; the scrape itself is not counted."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from flotilla.observability.metrics import _route_label, created_once


def sample(client: FlaskClient, name: str, **labels: str) -> float:
    """The value of one sample in the scrape, 0 when absent."""
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


def test_requests_are_counted_by_route_method_and_status(client: FlaskClient) -> None:
    labels = {"endpoint": "/whoami/<user_id>", "method": "GET", "status": "200"}
    before = sample(client, "http_requests_total", **labels)
    for user_id in range(3):
        client.get(f"/whoami/{user_id}")
    assert sample(client, "http_requests_total", **labels) == before + 3
    assert sample(client, "http_request_duration_seconds_count", **labels) == before + 3


def test_unmatched_paths_share_one_series(client: FlaskClient) -> None:
    labels = {"endpoint": "<unmatched>", "method": "GET", "status": "404"}
    before = sample(client, "http_requests_total", **labels)
    client.get("/a-random-path")
    client.get("/another")
    assert sample(client, "http_requests_total", **labels) == before + 2


def test_scrapes_are_not_counted(client: FlaskClient) -> None:
    before = sample(client, "http_requests_total", endpoint="/metrics")
    client.get("/metrics")
    assert sample(client, "http_requests_total", endpoint="/metrics") == before == 0


def test_app_info_and_in_flight_are_exported(client: FlaskClient) -> None:
    assert sample(client, "flotilla_app_info", version="9.9.9") == 1
    assert sample(client, "http_requests_in_flight") == 0


def test_route_labels_hide_converters() -> None:
    assert _route_label("/users/<int(max=9):user_id>") == "/users/<user_id>"
    assert _route_label("/files/<path:name>/raw") == "/files/<name>/raw"


def test_refused_bodies_are_counted(client: FlaskClient) -> None:
    labels = {"endpoint": "/echo", "method": "POST"}
    before_415 = sample(client, "http_requests_total", status="415", **labels)
    before_413 = sample(client, "http_requests_total", status="413", **labels)
    client.post("/echo", data=b"a=1", content_type="text/plain")
    client.post("/echo", data=b"[" + b"0," * 600_000 + b"0]", content_type="application/json")
    assert sample(client, "http_requests_total", status="415", **labels) == before_415 + 1
    assert sample(client, "http_requests_total", status="413", **labels) == before_413 + 1


def test_the_scrape_has_prometheus_content_type_once(client: FlaskClient) -> None:
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.count("charset") == 1


def test_a_process_other_than_gunicorn_creates_a_missing_metrics_directory(
    tmp_path: Path,
) -> None:
    """A migration or relay started with the variable set must not fail on its first metric."""
    directory = tmp_path / "not-yet" / "metrics"
    script = (
        "from flotilla.observability.metrics import instruments\n"
        "instruments().requests.labels('GET', 'probe', '200').inc()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert list(directory.glob("counter_*.db"))


def test_a_metric_factory_runs_once_when_threads_ask_together() -> None:
    calls: list[int] = []
    start = threading.Barrier(8)

    @created_once
    def factory() -> object:
        calls.append(1)
        time.sleep(0.05)  # wide open for a second thread, were there no lock
        return object()

    def ask() -> object:
        start.wait()
        return factory()

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: ask(), range(8)))

    assert len(calls) == 1
    assert all(item is made[0] for item in made)
