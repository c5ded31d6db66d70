"""What only Gunicorn does, on real masters and workers running ``server_app:app`` with
``flotilla.serving.gunicorn``: worker classes, the kept-alive request limit, the memory limit.

What both servers must do (metrics, signals, logs, readiness, timeouts) is in
``test_web_servers.py``.
"""

from __future__ import annotations

import http.client
import itertools
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flotilla.config import GunicornSettings

from .web_servers import (
    WAIT_SECONDS,
    get,
    logged_worker_pids,
    start_server,
    wait_for_record,
    wait_until,
)

pytestmark = pytest.mark.process


def overlapping(spans: list[tuple[float, float]]) -> bool:
    """True if any two of the (began, ended) spans overlap in time."""
    ordered = sorted(spans)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))


def slow_spans(url: str, count: int) -> list[tuple[float, float]]:
    """Send ``count`` one-second requests at once; when each ran in the worker."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(lambda _: get(f"{url}/slow?seconds=1"), range(count)))
    assert [status for status, _ in answers] == [200] * count
    assert len({body["pid"] for _, body in answers}) == 1
    return [(body["began"], body["ended"]) for _, body in answers]


@pytest.mark.parametrize(("worker_class", "overlap"), [("sync", False), ("gthread", True)])
def test_a_sync_worker_serves_one_request_at_a_time_and_gthread_several(
    tmp_path: Path, worker_class: str, overlap: bool
) -> None:
    # THREADS keeps its default (4): Gunicorn would turn a sync worker with 4 threads into
    # gthread without a word, unless the chassis gives sync workers one thread.
    server = start_server("gunicorn", tmp_path, workers=1, WORKER_CLASS=worker_class)
    try:
        spans = slow_spans(server.url, 3)
    finally:
        server.stop()

    assert overlapping(spans) is overlap


@pytest.mark.parametrize("worker_class", ["gevent", "eventlet", "gevent_pywsgi"])
def test_cooperative_workers_are_refused_at_start_with_the_reason(
    tmp_path: Path, worker_class: str
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:flotilla.serving.gunicorn",
            "server_app:app",
        ],
        env={"GUNICORN_WORKER_CLASS": worker_class, "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert f"GUNICORN_WORKER_CLASS={worker_class} is refused" in result.stderr
    assert "psycopg" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_worker_classes_are_refused() -> None:
    with pytest.raises(ValueError, match="is not one of gthread, sync"):
        GunicornSettings(WORKER_CLASS="tornado")


def test_a_kept_alive_connection_is_closed_after_keepalive_requests(tmp_path: Path) -> None:
    server = start_server("gunicorn", tmp_path, workers=1, KEEPALIVE_REQUESTS="3")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_SECONDS)
    try:
        answers = []
        for _ in range(3):
            connection.request("GET", "/ok")
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.getheader("Connection")))
        assert answers == [(200, "keep-alive"), (200, "keep-alive"), (200, "close")]
    finally:
        connection.close()
        assert server.stop() == 0


def test_a_worker_over_its_memory_limit_is_replaced_and_requests_keep_succeeding(
    tmp_path: Path,
) -> None:
    # 1 MiB: every worker is over it, so each is replaced after its first checked request.
    server = start_server("gunicorn", tmp_path, workers=1, MAX_WORKER_RSS="1")
    try:
        first = logged_worker_pids(server, "worker started")
        answers = [get(f"{server.url}/pid") for _ in range(3)]
        over = wait_for_record(server, "worker over its memory limit, replacing it")
        wait_until(
            lambda: len(logged_worker_pids(server, "worker started")) > len(first),
            "a new worker",
        )
        later = [get(f"{server.url}/pid") for _ in range(3)]
    finally:
        assert server.stop() == 0

    assert [status for status, _ in answers + later] == [200] * 6
    assert over["worker_pid"] in first
    assert over["rss_mib"] >= 1
    assert over["worker_pid"] in logged_worker_pids(server, "worker exited")
