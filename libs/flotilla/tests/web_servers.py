"""Helpers for the real-process server tests: start ``server_app:app``, talk HTTP, read logs.

Each test starts its own server on a free port of 127.0.0.1, talks to it only over HTTP and
signals, and stops it by PID. Every wait is bounded in time and in count; no assertion is
about speed.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flotilla.testing import SERVERS, ServerProcess, web_server

TESTS_DIR = Path(__file__).resolve().parent
WAIT_SECONDS = 15.0
POLL_SECONDS = 0.05

Record = dict[str, Any]

OWN_LOGGERS = {"gunicorn": ("gunicorn.",), "granian": ("_granian",)}
"""The loggers of each server itself, which keep the server's log level, not LOG_LEVEL."""
ACCESS_LOGGER = {"gunicorn": "gunicorn.access", "granian": "flotilla.access"}
"""Who writes the one line per request: Gunicorn after sending, else the app (ADR 0007)."""


SERVER_SETTINGS = frozenset(
    {"WORKERS", "TIMEOUT", "GRACEFUL_TIMEOUT", "KEEPALIVE_REQUESTS", "WORKER_CLASS", "THREADS"}
    | {"BLOCKING_THREADS", "STOP_LINGER", "MAX_WORKER_RSS", "WORKERS_MAX_RSS", "RSS_INTERVAL"}
)
"""Names :func:`start_server` prefixes with the server's own (``GRANIAN_``, ``GUNICORN_``)."""


def start_server(
    server: str, tmp_path: Path, *, workers: int = 2, **settings: str
) -> ServerProcess:
    """A started ``server`` serving the sample app, its state and logs under ``tmp_path``.

    ``settings`` named in :data:`SERVER_SETTINGS` are the server's own (``TIMEOUT="2"`` is
    ``GUNICORN_TIMEOUT`` or ``GRANIAN_TIMEOUT``); others are variables as given
    (``LOG_LEVEL``, ``MAX_CONTENT_LENGTH``).
    """
    server_class = SERVERS[server]
    python_path = [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    environment = {
        "PYTHONPATH": os.pathsep.join(python_path),
        "VAR_DIR": str(tmp_path),
        "SERVICE_NAME": "sample",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        server_class.setting("WORKERS"): str(workers),
        server_class.setting("GRACEFUL_TIMEOUT"): "10",
    }
    for name, value in settings.items():
        environment[server_class.setting(name) if name in SERVER_SETTINGS else name] = value
    started = web_server(
        server, "server_app:app", env=environment, log_path=tmp_path / "server.log", cwd=tmp_path
    )
    started.start(ready_timeout=WAIT_SECONDS)
    return started


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


def wait_for_record(server: ServerProcess, message: str, **fields: object) -> Record:
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


def logged_worker_pids(server: ServerProcess, message: str) -> set[int]:
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


def is_json_object(line: bytes) -> bool:
    """True when ``line`` is one JSON object, as every log line must be."""
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


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


class PidTraffic:
    """A thread asking ``/pid`` on a new connection each time, until stopped or bounded out.

    It pauses ``pause`` seconds between requests so that a fast server does not use up
    ``limit`` before a slow reload is over.
    """

    def __init__(
        self, url: str, *, limit: int = 5000, seconds: float = 30.0, pause: float = 0.005
    ) -> None:
        self.url = f"{url}/pid"
        self.limit = limit
        self.seconds = seconds
        self.pause = pause
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
            self._stop.wait(self.pause)

    def pids_sent(self, *, before: float = float("inf"), after: float = 0.0) -> set[int]:
        """The workers that answered requests sent between ``after`` and ``before``."""
        return {pid for sent, pid in self.answers if after < sent < before}

    def wait_for_answers(self, count: int) -> None:
        """Block until at least ``count`` more requests succeeded."""
        target = len(self.answers) + count
        wait_until(lambda: len(self.answers) >= target, f"{count} more answers from /pid")
