"""How a granian worker hands the app's answers over (``flotilla.serving.serve.worker``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from flask import Flask, Response
from werkzeug.test import EnvironBuilder

from flotilla.serving.serve.heartbeat import Heartbeats
from flotilla.serving.serve.worker import WHOLE_BODY_LIMIT, WorkerApp
from flotilla.web import health

Started = tuple[str, list[tuple[str, str]]]


@pytest.fixture
def closed() -> list[str]:
    return []


@pytest.fixture
def worker_app(closed: list[str]) -> WorkerApp:
    app = Flask(__name__)

    @app.get("/json")
    def json() -> dict[str, Any]:
        return {"id": 7}

    @app.get("/big")
    def big() -> Response:
        return Response(b"x" * (WHOLE_BODY_LIMIT + 1))

    @app.get("/stream")
    def stream() -> Response:
        return Response(f"line {number}\n" for number in range(3))

    @app.after_request
    def on_close(response: Response) -> Response:
        response.call_on_close(lambda: closed.append("closed"))
        return response

    return WorkerApp(app, heartbeats=Heartbeats(1), linger=0.0)


def call(app: WorkerApp, path: str) -> tuple[Iterable[bytes], list[Started]]:
    started: list[Started] = []

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        started.append((status, headers))

    return app(EnvironBuilder(path=path).get_environ(), start_response), started


def test_a_whole_answer_is_handed_over_as_a_list_and_closed(
    worker_app: WorkerApp, closed: list[str]
) -> None:
    body, started = call(worker_app, "/json")

    assert isinstance(body, list)
    assert b"".join(body) == b'{"id":7}\n'
    assert closed == ["closed"]  # as the server would once the answer is sent
    ((status, headers),) = started
    assert status == "200 OK"
    assert ("Content-Length", "9") in headers
    assert "Connection" not in dict(headers)


def test_a_generated_answer_stays_a_stream_for_the_server_to_walk(
    worker_app: WorkerApp, closed: list[str]
) -> None:
    body, started = call(worker_app, "/stream")

    assert not isinstance(body, list)
    assert closed == []
    assert b"".join(body) == b"line 0\nline 1\nline 2\n"
    assert "Content-Length" not in dict(started[0][1])


def test_an_answer_above_the_limit_is_not_held_in_memory_whole(worker_app: WorkerApp) -> None:
    body, _ = call(worker_app, "/big")

    assert not isinstance(body, list)
    assert sum(len(chunk) for chunk in body) == WHOLE_BODY_LIMIT + 1


def test_a_stopping_worker_asks_the_client_to_close_after_the_answer(
    worker_app: WorkerApp,
) -> None:
    health.begin_shutdown()
    try:
        body, started = call(worker_app, "/json")
    finally:
        health.reset_shutdown()

    assert b"".join(body) == b'{"id":7}\n'
    assert ("Connection", "close") in started[0][1]
