"""nginx in front of upstreams that fail on purpose: retries, 502, 504, all replicas failing.

Each test starts its own nginx (a few milliseconds) in front of small stub apps that count
what reaches them, so no test inherits another's view of which servers are down.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from flask import Flask, Response, request

from flotilla.testing import free_port, serve_app, wait_until
from nginx import Tuning, render  # scripts/, on pytest's path

from .conftest import Nginx, fetch, upstreams_of

pytestmark = pytest.mark.process


@dataclass
class Stub:
    """An upstream that answers every request with ``status`` and remembers its methods."""

    name: str
    status: int = 200
    hold: threading.Event | None = None
    """When set, every request waits for it before answering (a service that hangs)."""
    methods: list[str] = field(default_factory=list)

    def app(self) -> Flask:
        """The stub as a Flask app."""
        app = Flask(self.name)

        @app.route("/<path:path>", methods=["GET", "POST"])
        def answer(path: str) -> Response:
            self.methods.append(request.method)
            if self.hold is not None:
                self.hold.wait(timeout=30)
            body = {"stub": self.name, "status": self.status}
            return Response(orjson.dumps(body), self.status, mimetype="application/json")

        return app


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Stops, in reverse order, whatever a test started."""
    with ExitStack() as stack:
        yield stack


def serve(stack: ExitStack, stub: Stub) -> str:
    """Serve ``stub`` until the test ends; its upstream address."""
    return stack.enter_context(serve_app(stub.app())).removeprefix("http://")


def front(
    stack: ExitStack, directory: Path, users: list[str], tuning: Tuning | None = None
) -> Nginx:
    """nginx whose users upstream is ``users``; stopped when the test ends."""
    nginx = Nginx.start(directory, upstreams_of(users, others=users[0]), tuning=tuning)
    stack.callback(nginx.stop)
    return nginx


def test_a_get_is_retried_on_the_other_server_and_a_post_is_not(
    tmp_path: Path, stack: ExitStack
) -> None:
    failing, healthy = Stub("failing", 503), Stub("healthy", 200)
    nginx = front(stack, tmp_path, [serve(stack, failing), serve(stack, healthy)])
    url = f"{nginx.url}/api/v1/users"

    posts = [fetch(url, "POST", body={}).status for _ in range(2)]
    gets = [fetch(url).status for _ in range(2)]

    assert sorted(posts) == [200, 503]  # the POST that reached the failing server stayed there
    assert failing.methods.count("POST") == 1
    assert healthy.methods.count("POST") == 1
    assert gets == [200, 200]
    assert failing.methods.count("GET") >= 1  # reached it, was answered 503, and went on
    assert healthy.methods.count("GET") == 2
    retried = [line for line in nginx.access_log() if line["method"] == "GET"]
    assert any(line["upstream_status"] == "503, 200" for line in retried), retried


def test_a_refused_connection_is_retried_for_every_method(tmp_path: Path, stack: ExitStack) -> None:
    healthy = Stub("healthy", 200)
    down, up = f"127.0.0.1:{free_port()}", serve(stack, healthy)
    nginx = front(stack, tmp_path, [down, up])
    url = f"{nginx.url}/api/v1/users"

    first = fetch(url, "POST", body={})
    rest = [fetch(url, method, body={}).status for method in ("POST", "GET", "GET")]

    assert first.status == 200  # nothing reached the server that refused: safe to send again
    assert rest == [200, 200, 200]
    assert healthy.methods == ["POST", "POST", "GET", "GET"]
    line = nginx.logged(str(first.header("X-Request-ID")))
    assert line["upstream_addr"] == f"{down}, {up}"


def test_when_every_server_answers_503_the_service_answer_still_reaches_the_client(
    tmp_path: Path, stack: ExitStack
) -> None:
    first, second = Stub("first", 503), Stub("second", 503)
    nginx = front(stack, tmp_path, [serve(stack, first), serve(stack, second)])
    url = f"{nginx.url}/api/v1/users"

    answers = [fetch(url, method, body={}) for method in ("GET",) * 4 + ("POST",) * 2]

    # Without the backup servers, nginx would mark both failed and answer its own 502 to
    # everything, POSTs included, for fail_timeout.
    assert [answer.status for answer in answers] == [503] * 6
    assert {answer.json()["stub"] for answer in answers} == {"first", "second"}


def test_a_stopped_upstream_is_a_502_problem(tmp_path: Path, stack: ExitStack) -> None:
    stub = Stub("users", 200)
    with ExitStack() as upstream:
        nginx = front(stack, tmp_path, [serve(upstream, stub)])
        assert fetch(f"{nginx.url}/api/v1/users").status == 200

    answer = fetch(f"{nginx.url}/api/v1/users")

    assert answer.status == 502
    assert answer.header("Content-Type") == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:flotilla:problem:bad-gateway"
    assert problem["request_id"] == answer.header("X-Request-ID")
    assert "instance" not in problem


def test_an_upstream_that_does_not_answer_in_time_is_a_504_problem(
    tmp_path: Path, stack: ExitStack
) -> None:
    hold = threading.Event()
    hanging = Stub("hanging", 200, hold=hold)
    address = serve(stack, hanging)
    stack.callback(hold.set)  # let its thread finish once nginx has given up
    nginx = front(stack, tmp_path, [address], Tuning(read_timeout="1s"))

    answer = fetch(f"{nginx.url}/api/v1/users")

    assert answer.status == 504
    assert answer.header("Content-Type") == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:flotilla:problem:gateway-timeout"
    assert problem["request_id"] == answer.header("X-Request-ID")
    assert hanging.methods  # it was asked, and never answered


@pytest.mark.parametrize("rate_limits", [True, False])
def test_rate_limits_can_be_turned_off_for_a_load_test(
    tmp_path: Path, stack: ExitStack, rate_limits: bool
) -> None:
    users = Stub("users", 200)
    tuning = Tuning(rate_limits=rate_limits)
    nginx = front(stack, tmp_path, [serve(stack, users)], tuning)

    statuses = [fetch(f"{nginx.url}/api/v1/tokens", "POST", body={}).status for _ in range(20)]

    assert (429 in statuses) is rate_limits
    assert len(users.methods) == statuses.count(200) > 0


def test_a_new_rendering_is_applied_by_sighup_without_a_restart(
    tmp_path: Path, stack: ExitStack
) -> None:
    old, new = Stub("old"), Stub("new")
    nginx = front(stack, tmp_path, [serve(stack, old)])
    url = f"{nginx.url}/api/v1/users"
    assert fetch(url).json()["stub"] == "old"

    render(tmp_path, upstreams_of([serve(stack, new)], others="127.0.0.1:1"), port=nginx.port)
    os.kill(nginx.process.pid, signal.SIGHUP)

    wait_until(lambda: fetch(url).json()["stub"] == "new", timeout=10, what="the new upstream")
    assert nginx.process.poll() is None  # the same master, still running


def test_a_failure_inside_nginx_is_a_500_problem_without_details(
    tmp_path: Path, stack: ExitStack
) -> None:
    users = Stub("users")
    nginx = front(stack, tmp_path, [serve(stack, users)])
    shutil.rmtree(tmp_path / "temp" / "client_body")  # where bodies over 64 KiB are kept

    answer = fetch(f"{nginx.url}/api/v1/users", "POST", body=b"x" * 200_000)

    assert answer.status == 500
    assert answer.header("Content-Type") == "application/problem+json"
    assert answer.json() == {
        "type": "urn:flotilla:problem:internal-error",
        "title": "Internal Server Error",
        "status": 500,
        "request_id": answer.header("X-Request-ID"),
    }
    assert users.methods == []
