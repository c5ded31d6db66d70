"""What only the granian server does: its recycling by memory, its heartbeats, its own step
in a worker's stop, and the parts of granian it reuses, held to granian's own code.

What both servers must do (metrics, signals, logs, readiness, timeouts) is in
``test_web_servers.py``.
"""

from __future__ import annotations

import ast
import http.client
import inspect
import os
import signal
import socket
import textwrap
from pathlib import Path

import orjson
import pytest
from granian.server.mp import MPServer

from flotilla.config import GranianSettings
from flotilla.serving.serve.granian import GranianServer, parse_bind
from flotilla.serving.serve.heartbeat import Beating, Heartbeats
from flotilla.serving.serve.worker import serve_wsgi_worker

from .web_servers import (
    get,
    logged_worker_pids,
    process_is_gone,
    start_server,
    wait_for_record,
    wait_until,
)


def test_the_worker_takes_what_granians_wsgi_worker_takes() -> None:
    ours = inspect.signature(serve_wsgi_worker.__wrapped__)
    granians = inspect.signature(MPServer._spawn_wsgi_worker.__wrapped__)
    assert list(ours.parameters) == list(granians.parameters)


def _spawn_arguments(method: object) -> str:
    """The ``args=(...)`` granian's ``_spawn_worker`` (or ours) passes to a worker, as an AST."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(method)))  # type: ignore[arg-type]
    call = next(node for node in ast.walk(tree) if isinstance(node, ast.Call) and node.keywords)
    (arguments,) = [keyword.value for keyword in call.keywords if keyword.arg == "args"]
    return ast.dump(arguments)


def test_workers_are_spawned_with_granians_arguments() -> None:
    assert _spawn_arguments(GranianServer._spawn_worker) == _spawn_arguments(MPServer._spawn_worker)


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("0.0.0.0:8000", ("0.0.0.0", 8000, None)),
        ("127.0.0.1:9001", ("127.0.0.1", 9001, None)),
        ("[::1]:8000", ("::1", 8000, None)),
        ("unix:/tmp/flotilla.sock", ("", 0, Path("/tmp/flotilla.sock"))),
    ],
)
def test_bind_addresses(bind: str, expected: tuple[str, int, Path | None]) -> None:
    assert parse_bind(bind) == expected


def test_a_lifetime_under_a_minute_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="GRANIAN_WORKERS_LIFETIME must be 0"):
        GranianSettings(WORKERS_LIFETIME=30)


def test_a_linger_that_leaves_no_time_to_drain_is_refused_by_name() -> None:
    GranianSettings(STOP_LINGER=2, GRACEFUL_TIMEOUT=3)  # 2.5 s of stopping, then the drain
    with pytest.raises(ValueError, match="GRANIAN_STOP_LINGER"):
        GranianSettings(STOP_LINGER=2.5, GRACEFUL_TIMEOUT=3)


def test_a_worker_is_stale_only_after_timeout_seconds_of_its_own_silence() -> None:
    heartbeats = Heartbeats(2)
    heartbeats.beat(0)
    beaten = heartbeats.last(0)
    fresh = Beating(slot=1, pid=2, started=beaten)  # never beat, just started
    silent = Beating(slot=0, pid=1, started=beaten - 100)
    assert heartbeats.stale([silent, fresh], timeout=5, now=beaten + 1) == []
    assert heartbeats.stale([silent, fresh], timeout=5, now=beaten + 6) == [silent, fresh]
    heartbeats.beat(1)
    assert heartbeats.stale([fresh], timeout=5, now=heartbeats.last(1) + 4) == []


@pytest.mark.process
def test_a_worker_over_its_memory_limit_is_replaced_and_requests_keep_succeeding(
    tmp_path: Path,
) -> None:
    # 1 MiB, checked every second: every worker is over it, so each is replaced in turn.
    server = start_server("granian", tmp_path, workers=1, WORKERS_MAX_RSS="1", RSS_INTERVAL="1")
    try:
        first = logged_worker_pids(server, "worker started")
        answers = [get(f"{server.url}/pid")]
        wait_until(
            lambda: first <= logged_worker_pids(server, "worker exited"), "the first worker gone"
        )
        answers += [get(f"{server.url}/pid") for _ in range(3)]
    finally:
        assert server.stop() == 0

    messages = [record["message"] for record in server.log_records()]
    assert [status for status, _ in answers] == [200] * 4
    assert "worker-1 RSS over threshold, gracefully respawning.." in messages
    assert {body["pid"] for _, body in answers[1:]}.isdisjoint(first)


@pytest.mark.process
def test_a_connection_whose_request_comes_after_the_worker_stopped_accepting_is_answered(
    tmp_path: Path,
) -> None:
    # The connection is accepted during the linger; its request arrives once the worker
    # accepts no more. granian's own stop, right after the linger, would close it unanswered.
    server = start_server("granian", tmp_path, workers=1, STOP_LINGER="0.5")
    try:
        [worker] = server.workers()
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as connection:
            os.kill(worker, signal.SIGTERM)
            wait_for_record(server, "worker stopped accepting", worker_pid=worker)
            connection.sendall(b"GET /pid HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = http.client.HTTPResponse(connection)
            answer.begin()
            body = answer.read()
        wait_until(lambda: worker in logged_worker_pids(server, "worker exited"), "its exit")
        after = get(f"{server.url}/pid")  # its replacement serves
    finally:
        server.stop()

    assert answer.status == 200
    assert answer.getheader("Connection") == "close"
    assert orjson.loads(body) == {"pid": worker}
    assert after[0] == 200
    assert after[1]["pid"] != worker


@pytest.mark.process
def test_workers_stop_when_the_main_process_is_killed(tmp_path: Path) -> None:
    server = start_server("granian", tmp_path, workers=2)
    workers = server.workers()
    try:
        os.kill(server.pid, signal.SIGKILL)
        wait_until(lambda: all(map(process_is_gone, workers)), "the orphaned workers to stop")
        stopping = wait_for_record(server, "main process gone, stopping")
    finally:
        for pid in workers:  # never leave one behind, whatever the test found
            if not process_is_gone(pid):
                os.kill(pid, signal.SIGKILL)
        server.stop()

    assert stopping["main_pid"] == server.pid
    assert len(workers) == 2
