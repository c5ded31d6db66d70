"""Both servers, held to the same operational checks: real main processes and workers running
``server_app:app``, Gunicorn with ``flotilla.serving.gunicorn`` and granian under ``flotilla
serve``.

Each test runs once per server (the ``server`` parameter); what only one server does is in
``test_gunicorn.py`` and ``test_granian.py``.
"""

from __future__ import annotations

import http.client
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from flotilla.testing import SERVERS

from .web_servers import (
    ACCESS_LOGGER,
    OWN_LOGGERS,
    WAIT_SECONDS,
    PidTraffic,
    Record,
    get,
    get_on,
    is_json_object,
    logged_worker_pids,
    metric_sample,
    post_chunked,
    process_is_gone,
    start_server,
    wait_for_record,
    wait_until,
)

pytestmark = [pytest.mark.process, pytest.mark.parametrize("server", sorted(SERVERS))]


def pids_of(answers: list[tuple[int, Record]]) -> set[int]:
    """The worker pids that answered."""
    return {body["pid"] for _, body in answers}


def test_metrics_count_every_request_whichever_worker_answers(server: str, tmp_path: Path) -> None:
    batch, max_batches, scrapes = 60, 10, 8
    ok_total = ("http_requests_total", {"endpoint": "/ok", "method": "GET", "status": "200"})
    running = start_server(server, tmp_path, workers=3)
    answers: list[tuple[int, Record]] = []
    try:
        # The kernel may hand one batch's connections all to one worker; send batches until
        # at least two workers have answered, so the sum below really spans workers.
        with ThreadPoolExecutor(max_workers=6) as pool:
            while len(answers) < batch * max_batches and len(pids_of(answers)) < 2:
                answers += pool.map(lambda _: get(f"{running.url}/ok"), range(batch))
        counted = [metric_sample(f"{running.url}/metrics", *ok_total) for _ in range(scrapes)]
    finally:
        running.stop()

    assert [status for status, _ in answers] == [200] * len(answers)
    assert len(pids_of(answers)) > 1, "one worker served every request"
    assert counted == [len(answers)] * scrapes


def test_a_whole_answer_has_its_length_and_a_generated_one_is_streamed(
    server: str, tmp_path: Path
) -> None:
    # granian gets whole answers as one list (flotilla.serving.serve.worker); a generator's
    # stays a stream, chunk by chunk, under either server.
    running = start_server(server, tmp_path, workers=1)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=WAIT_SECONDS)
        connection.request("GET", "/ok")
        whole = connection.getresponse()
        whole_body = whole.read()
        connection.request("GET", "/stream")
        streamed = connection.getresponse()
        streamed_body = streamed.read()
        connection.close()
    finally:
        running.stop()

    assert whole.status == 200
    assert whole.getheader("Content-Length") == str(len(whole_body))
    assert streamed.status == 200
    assert streamed.getheader("Content-Length") is None
    assert streamed.getheader("Transfer-Encoding") == "chunked"
    assert streamed_body == b"line 0\nline 1\nline 2\n"


def test_sigterm_lets_the_in_flight_request_finish_and_the_main_process_exit_0(
    server: str, tmp_path: Path
) -> None:
    in_flight: tuple[str, dict[str, str]] = ("http_requests_in_flight", {})
    running = start_server(server, tmp_path, workers=1)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(get, f"{running.url}/slow?seconds=2")
            wait_until(
                lambda: metric_sample(f"{running.url}/metrics", *in_flight) == 1,
                "the slow request to be in flight",
            )
            running.signal(signal.SIGTERM)
            status, body = slow.result(timeout=WAIT_SECONDS)
    finally:
        exit_code = running.stop(timeout=WAIT_SECONDS)

    assert (status, body["slept"]) == (200, 2.0)
    assert exit_code == 0


def test_sighup_replaces_every_worker_while_requests_keep_succeeding(
    server: str, tmp_path: Path
) -> None:
    running = start_server(server, tmp_path, workers=2)
    try:
        wait_until(lambda: len(logged_worker_pids(running, "worker started")) == 2, "both workers")
        old_workers = logged_worker_pids(running, "worker started")
        with PidTraffic(running.url) as traffic:
            traffic.wait_for_answers(20)
            hang_up = time.monotonic()
            running.signal(signal.SIGHUP)
            wait_until(
                lambda: old_workers <= logged_worker_pids(running, "worker exited"),
                "the old workers to exit",
            )
            old_workers_gone = time.monotonic()
            traffic.wait_for_answers(20)
    finally:
        running.stop()

    assert traffic.failures == []
    assert traffic.pids_sent(before=hang_up) <= old_workers
    served_after_reload = traffic.pids_sent(after=old_workers_gone)
    assert served_after_reload, "no request was sent after the old workers exited"
    assert served_after_reload.isdisjoint(old_workers)


def test_a_worker_holding_the_gil_past_timeout_is_killed_and_replaced(
    server: str, tmp_path: Path
) -> None:
    in_flight: tuple[str, dict[str, str]] = ("http_requests_in_flight", {})
    running = start_server(server, tmp_path, workers=1, TIMEOUT="2")
    try:
        # A request longer than the timeout that releases the GIL is no reason to kill.
        slow_status, slow = get(f"{running.url}/slow?seconds=3")
        hung_pid = slow["pid"]  # the only worker, so the one /hang will freeze
        try:
            hang_status: int | None = get(f"{running.url}/hang")[0]
        except OSError:  # the worker died with the connection open: no response at all
            hang_status = None
        timed_out = wait_for_record(running, f"WORKER TIMEOUT (pid:{hung_pid})")
        wait_until(lambda: process_is_gone(hung_pid), f"worker {hung_pid} to be gone")
        wait_until(lambda: bool(running.workers()), "a new worker")
        status, after = get(f"{running.url}/ok")
        # The killed worker's in-flight /hang must not stay counted (its gauges are dropped).
        still_in_flight = metric_sample(f"{running.url}/metrics", *in_flight)
    finally:
        running.stop()

    assert slow_status == 200
    assert hang_status is None or hang_status >= 500
    assert timed_out["level"] == "CRITICAL"
    timeouts = [line for line in running.log_records() if "WORKER TIMEOUT" in line["message"]]
    assert timeouts == [timed_out], "only /hang, not /slow, made the worker time out"
    assert status == 200
    assert after["pid"] != hung_pid
    assert still_in_flight == 0


def test_every_line_is_json_and_the_access_line_carries_the_request_id(
    server: str, tmp_path: Path
) -> None:
    running = start_server(server, tmp_path, workers=1)
    try:
        status, _ = get(f"{running.url}/ok", headers={"X-Request-ID": "test-123"})
        access = wait_for_record(running, "request finished", request_id="test-123")
    finally:
        running.stop()

    lines = running.log_path.read_bytes().splitlines()
    not_json = [line for line in lines if not is_json_object(line)]
    assert status == 200
    assert lines
    assert not_json == []
    assert any(line.startswith(OWN_LOGGERS[server]) for line in _loggers(running.log_records()))
    assert access["logger"] == ACCESS_LOGGER[server]
    assert (access["method"], access["path"], access["status"]) == ("GET", "/ok", 200)
    assert isinstance(access["duration_ms"], float)
    assert access["duration_ms"] >= 0


def _loggers(records: list[Record]) -> set[str]:
    return {str(record["logger"]) for record in records}


def test_log_level_holds_in_the_main_process_and_the_workers(server: str, tmp_path: Path) -> None:
    """The server's start-up must not put the level back to INFO after the app set it.

    The servers' own loggers keep their own settings (``GUNICORN_LOGLEVEL``,
    ``GRANIAN_LOG_LEVEL``); so does Gunicorn's access log (``GUNICORN_ACCESSLOG``), while
    under granian the access line is the app's and obeys LOG_LEVEL like the rest.
    """
    running = start_server(server, tmp_path, workers=1, LOG_LEVEL="WARNING")
    try:
        status, _ = get(f"{running.url}/ok")
    finally:
        running.stop()

    records = running.log_records()
    ours = {r["level"] for r in records if not r["logger"].startswith(OWN_LOGGERS[server])}
    assert status == 200
    assert any(r["logger"].startswith(OWN_LOGGERS[server]) for r in records)
    assert ours <= {"WARNING", "ERROR", "CRITICAL"}


def test_readiness_fails_in_a_worker_once_it_is_told_to_stop(server: str, tmp_path: Path) -> None:
    running = start_server(server, tmp_path, workers=1)
    # One worker and one kept-alive connection: both probes reach the same worker. After
    # SIGTERM a stopping worker still answers a request on a kept-alive connection for up to
    # two seconds (with "Connection: close"), so the second probe reaches it.
    connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=WAIT_SECONDS)
    try:
        before, _ = get_on(connection, "/healthz/ready")
        running.signal(signal.SIGTERM)
        wait_for_record(running, "shutdown begun, readiness now failing")
        after, body = get_on(connection, "/healthz/ready")
    finally:
        connection.close()
        exit_code = running.stop(timeout=WAIT_SECONDS)

    assert before == 200
    assert (after, body["status"]) == (503, "shutting-down")
    assert exit_code == 0


def test_a_chunked_body_over_the_limit_is_413_not_truncated(server: str, tmp_path: Path) -> None:
    running = start_server(server, tmp_path, workers=1, MAX_CONTENT_LENGTH="1000")
    try:
        small = [b'{"name": ', b'"alice"}']
        assert post_chunked(f"{running.url}/echo", small) == (200, {"received": {"name": "alice"}})
        # Valid JSON followed by padding: truncated at the limit it would still parse.
        padded = [b'{"name": "alice"}', b" " * 600, b" " * 600]
        status, body = post_chunked(f"{running.url}/echo", padded)
        assert status == 413
        assert body["type"] == "urn:flotilla:problem:payload-too-large"
    finally:
        assert running.stop() == 0


SERVER_REFUSALS = {
    "malformed": (b"GARBAGE\r\n\r\n", 400),
    "too-many-fields": (
        b"GET /ok HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-Field-%d: 1\r\n" % index for index in range(150))
        + b"\r\n",
        431,
    ),
}


def raw_exchange(url: str, raw: bytes) -> http.client.HTTPResponse:
    """Send ``raw`` as it is and read the answer's status line and headers."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=WAIT_SECONDS)
    connection.sendall(raw)
    response = http.client.HTTPResponse(connection)
    response.begin()
    response.read()
    connection.close()
    return response


def test_requests_a_server_cannot_read_are_its_own_4xx_never_the_apps(
    server: str, tmp_path: Path
) -> None:
    """The server refuses these before the app runs: no problem+json, no security headers.

    Said in docs/adr/0021-strict-inputs.md: behind the front door, nginx answers the malformed
    ones itself; only the field count, which nginx cannot limit, reaches the server.
    """
    refusals = SERVER_REFUSALS.items()
    running = start_server(server, tmp_path, workers=1)
    try:
        answers = {name: raw_exchange(running.url, raw) for name, (raw, _) in refusals}
    finally:
        running.stop()

    for name, (_, status) in SERVER_REFUSALS.items():
        assert answers[name].status == status, name
        assert answers[name].getheader("X-Request-ID") is None, name  # the app never ran
        assert answers[name].getheader("X-Content-Type-Options") is None, name
