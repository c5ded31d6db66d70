"""Real Gunicorn masters and workers running ``gunicorn_app:app`` with ``flotilla.gunicorn``.

Each test starts its own server on a free port of 127.0.0.1, talks to it only over HTTP and
signals, and stops it by PID. Every wait is bounded in time and in count; no assertion is
about speed.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flotilla.testing import GunicornServer

TESTS_DIR = Path(__file__).resolve().parent
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05

Record = dict[str, Any]


def start_server(tmp_path: Path, **env: str) -> GunicornServer:
    """A started Gunicorn serving the sample app, its state and logs under ``tmp_path``."""
    python_path = [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    environment = {
        "PYTHONPATH": os.pathsep.join(python_path),
        "VAR_DIR": str(tmp_path),
        "SERVICE_NAME": "sample",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GUNICORN_WORKERS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        **env,
    }
    server = GunicornServer(
        "gunicorn_app:app", env=environment, log_path=tmp_path / "gunicorn.log", cwd=tmp_path
    )
    server.start(ready_timeout=WAIT_SECONDS)
    return server


def get(url: str, *, headers: Mapping[str, str] | None = None) -> tuple[int, Record]:
    """GET ``url`` on a new connection; the status and the JSON body, whatever the status."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, orjson.loads(error.read())


def get_on(connection: http.client.HTTPConnection, path: str) -> tuple[int, Record]:
    """GET ``path`` on an open (kept-alive) connection."""
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, orjson.loads(response.read())


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds; fail the test after ``WAIT_SECONDS``."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_SECONDS)
    pytest.fail(f"timed out after {WAIT_SECONDS}s waiting for {what}")


def wait_for_record(server: GunicornServer, message: str, **fields: object) -> Record:
    """The first log line of ``server`` with ``message`` and ``fields``, once it is written."""
    found: list[Record] = []

    def written() -> bool:
        found.extend(
            record
            for record in server.log_records()
            if record.get("message") == message
            and all(record.get(name) == value for name, value in fields.items())
        )
        return bool(found)

    wait_until(written, f"the log line {message!r} {fields}")
    return found[0]


def logged_worker_pids(server: GunicornServer, message: str) -> set[int]:
    """The ``worker_pid`` of every ``message`` line the chassis hooks logged so far."""
    return {
        record["worker_pid"]
        for record in server.log_records()
        if record.get("message") == message and "worker_pid" in record
    }


def metric_sample(url: str, name: str, labels: Mapping[str, str]) -> float:
    """Scrape ``url`` on a new connection; the value of sample ``name`` with ``labels``."""
    with urllib.request.urlopen(url, timeout=WAIT_SECONDS) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    pytest.fail(f"no sample {name}{dict(labels)} in the scrape")


def process_is_gone(pid: int) -> bool:
    """True once no process has ``pid`` (signal 0 only checks, it delivers nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class PidTraffic:
    """A thread asking ``/pid`` on a new connection each time, until stopped or bounded out."""

    def __init__(self, url: str, *, limit: int = 2000, seconds: float = 30.0) -> None:
        self.url = f"{url}/pid"
        self.limit = limit
        self.seconds = seconds
        # (when the request was sent, the pid of the worker that answered it)
        self.answers: list[tuple[float, int]] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pid-traffic")

    def __enter__(self) -> PidTraffic:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(WAIT_SECONDS)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            if len(self.answers) + len(self.failures) >= self.limit:
                return
            sent = time.monotonic()
            try:
                status, body = get(self.url)
            except OSError as error:
                self.failures.append(repr(error))
                continue
            if status == 200:
                self.answers.append((sent, body["pid"]))
            else:
                self.failures.append(f"status {status}")

    def pids_sent(self, *, before: float = float("inf"), after: float = 0.0) -> set[int]:
        """The workers that answered requests sent between ``after`` and ``before``."""
        return {pid for sent, pid in self.answers if after < sent < before}

    def wait_for_answers(self, count: int) -> None:
        """Block until at least ``count`` more requests succeeded."""
        target = len(self.answers) + count
        wait_until(lambda: len(self.answers) >= target, f"{count} more answers from /pid")


@pytest.mark.process
def test_metrics_count_every_request_whichever_worker_answers(tmp_path: Path) -> None:
    batch, max_batches, scrapes = 60, 10, 8
    ok_total = ("http_requests_total", {"endpoint": "/ok", "method": "GET", "status": "200"})
    server = start_server(tmp_path, GUNICORN_WORKERS="3")
    answers: list[tuple[int, Record]] = []
    try:
        # The kernel may hand one batch's connections all to one worker; send batches until
        # at least two workers have answered, so the sum below really spans workers.
        with ThreadPoolExecutor(max_workers=6) as pool:
            while len(answers) < batch * max_batches and len(pids_of(answers)) < 2:
                answers += pool.map(lambda _: get(f"{server.url}/ok"), range(batch))
        counted = [metric_sample(f"{server.url}/metrics", *ok_total) for _ in range(scrapes)]
    finally:
        server.stop()

    assert [status for status, _ in answers] == [200] * len(answers)
    assert len(pids_of(answers)) > 1, "one worker served every request"
    assert counted == [len(answers)] * scrapes


def pids_of(answers: list[tuple[int, Record]]) -> set[int]:
    """The worker pids that answered."""
    return {body["pid"] for _, body in answers}


@pytest.mark.process
def test_sigterm_lets_the_in_flight_request_finish_and_the_master_exit_0(tmp_path: Path) -> None:
    in_flight: tuple[str, dict[str, str]] = ("http_requests_in_flight", {})
    server = start_server(tmp_path, GUNICORN_WORKERS="1")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(get, f"{server.url}/slow?seconds=2")
            wait_until(
                lambda: metric_sample(f"{server.url}/metrics", *in_flight) == 1,
                "the slow request to be in flight",
            )
            server.signal(signal.SIGTERM)
            status, body = slow.result(timeout=WAIT_SECONDS)
    finally:
        exit_code = server.stop(timeout=WAIT_SECONDS)

    assert (status, body["slept"]) == (200, 2.0)
    assert exit_code == 0


@pytest.mark.process
def test_sighup_replaces_every_worker_while_requests_keep_succeeding(tmp_path: Path) -> None:
    server = start_server(tmp_path, GUNICORN_WORKERS="2")
    try:
        wait_until(lambda: len(logged_worker_pids(server, "worker started")) == 2, "both workers")
        old_workers = logged_worker_pids(server, "worker started")
        with PidTraffic(server.url) as traffic:
            traffic.wait_for_answers(20)
            hang_up = time.monotonic()
            server.signal(signal.SIGHUP)
            wait_until(
                lambda: old_workers <= logged_worker_pids(server, "worker exited"),
                "the old workers to exit",
            )
            old_workers_gone = time.monotonic()
            traffic.wait_for_answers(20)
    finally:
        server.stop()

    assert traffic.failures == []
    assert traffic.pids_sent(before=hang_up) <= old_workers
    served_after_reload = traffic.pids_sent(after=old_workers_gone)
    assert served_after_reload, "no request was sent after the old workers exited"
    assert served_after_reload.isdisjoint(old_workers)


@pytest.mark.process
def test_a_worker_holding_the_gil_past_timeout_is_killed_and_replaced(tmp_path: Path) -> None:
    in_flight: tuple[str, dict[str, str]] = ("http_requests_in_flight", {})
    server = start_server(tmp_path, GUNICORN_WORKERS="1", GUNICORN_TIMEOUT="2")
    try:
        # A request longer than the timeout that releases the GIL is no reason to kill.
        slow_status, slow = get(f"{server.url}/slow?seconds=3")
        hung_pid = slow["pid"]  # the only worker, so the one /hang will freeze
        try:
            hang_status: int | None = get(f"{server.url}/hang")[0]
        except OSError:  # the worker died with the connection open: no response at all
            hang_status = None
        timed_out = wait_for_record(server, f"WORKER TIMEOUT (pid:{hung_pid})")
        wait_until(lambda: process_is_gone(hung_pid), f"worker {hung_pid} to be gone")
        status, after = get(f"{server.url}/ok")
        # The killed worker's in-flight /hang must not stay counted (child_exit drops it).
        still_in_flight = metric_sample(f"{server.url}/metrics", *in_flight)
    finally:
        server.stop()

    assert slow_status == 200
    assert hang_status is None or hang_status >= 500
    assert timed_out["level"] == "CRITICAL"
    timeouts = [line for line in server.log_records() if "WORKER TIMEOUT" in line["message"]]
    assert timeouts == [timed_out], "only /hang, not /slow, made the worker time out"
    assert status == 200
    assert after["pid"] != hung_pid
    assert still_in_flight == 0


@pytest.mark.process
def test_every_line_is_json_and_the_access_line_carries_the_request_id(tmp_path: Path) -> None:
    server = start_server(tmp_path, GUNICORN_WORKERS="1")
    try:
        status, _ = get(f"{server.url}/ok", headers={"X-Request-ID": "test-123"})
        access = wait_for_record(server, "request finished", request_id="test-123")
    finally:
        server.stop()

    lines = server.log_path.read_bytes().splitlines()
    not_json = [line for line in lines if not is_json_object(line)]
    assert status == 200
    assert lines
    assert not_json == []
    assert access["logger"] == "gunicorn.access"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/ok", 200)
    assert isinstance(access["duration_ms"], float)
    assert access["duration_ms"] >= 0


@pytest.mark.process
def test_log_level_holds_in_the_master_and_the_workers(tmp_path: Path) -> None:
    """The master's start-up hook must not put the level back to INFO after the app set it.

    Gunicorn's own loggers keep their settings (``GUNICORN_LOGLEVEL``, ``GUNICORN_ACCESSLOG``).
    """
    server = start_server(tmp_path, GUNICORN_WORKERS="1", LOG_LEVEL="WARNING")
    try:
        status, _ = get(f"{server.url}/ok")
    finally:
        server.stop()

    records = server.log_records()
    ours = {r["level"] for r in records if not r["logger"].startswith("gunicorn.")}
    assert status == 200
    assert any(r["logger"] == "gunicorn.access" for r in records)
    assert ours <= {"WARNING", "ERROR", "CRITICAL"}


def is_json_object(line: bytes) -> bool:
    """True when ``line`` is one JSON object, as every log line must be."""
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


@pytest.mark.process
def test_readiness_fails_in_a_worker_once_it_is_told_to_stop(tmp_path: Path) -> None:
    server = start_server(tmp_path, GUNICORN_WORKERS="1")
    # One worker and one kept-alive connection: both probes reach the same worker. After
    # SIGTERM a draining gthread worker still answers a request on a kept-alive connection
    # for up to two seconds (with "Connection: close"), so the second probe reaches it.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_SECONDS)
    try:
        before, _ = get_on(connection, "/healthz/ready")
        server.signal(signal.SIGTERM)
        wait_for_record(server, "shutdown begun, readiness now failing")
        after, body = get_on(connection, "/healthz/ready")
    finally:
        connection.close()
        exit_code = server.stop(timeout=WAIT_SECONDS)

    assert before == 200
    assert (after, body["status"]) == (503, "shutting-down")
    assert exit_code == 0


def post_chunked(url: str, chunks: list[bytes]) -> tuple[int, Record]:
    """POST ``chunks`` with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        connection.request(
            "POST", parsed.path, body=iter(chunks), headers=headers, encode_chunked=True
        )
        response = connection.getresponse()
        return response.status, orjson.loads(response.read())
    finally:
        connection.close()


@pytest.mark.process
def test_a_chunked_body_over_the_limit_is_413_not_truncated(tmp_path: Path) -> None:
    server = start_server(tmp_path, MAX_CONTENT_LENGTH="1000", GUNICORN_WORKERS="1")
    try:
        small = [b'{"name": ', b'"alice"}']
        assert post_chunked(f"{server.url}/echo", small) == (200, {"received": {"name": "alice"}})
        # Valid JSON followed by padding: truncated at the limit it would still parse.
        padded = [b'{"name": "alice"}', b" " * 600, b" " * 600]
        status, body = post_chunked(f"{server.url}/echo", padded)
        assert status == 413
        assert body["type"] == "urn:flotilla:problem:payload-too-large"
    finally:
        assert server.stop() == 0


@pytest.mark.process
def test_a_kept_alive_connection_is_closed_after_keepalive_requests(tmp_path: Path) -> None:
    server = start_server(tmp_path, GUNICORN_KEEPALIVE_REQUESTS="3", GUNICORN_WORKERS="1")
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
