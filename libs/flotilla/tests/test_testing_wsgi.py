"""serve_app: a Flask app over real HTTP, concurrent, gone after the block."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask, request

from flotilla.testing.wsgi import serve_app


def test_the_app_answers_over_http_on_localhost() -> None:
    app = Flask("served")

    @app.post("/echo")
    def echo() -> dict[str, object]:
        return {"body": request.get_json(), "header": request.headers.get("X-Probe")}

    with serve_app(app) as url:
        response = requests.post(f"{url}/echo", json={"a": 1}, headers={"X-Probe": "p"}, timeout=5)
    assert urlsplit(url).hostname == "127.0.0.1"
    assert response.status_code == 200
    assert response.json() == {"body": {"a": 1}, "header": "p"}


def test_requests_are_served_concurrently() -> None:
    # The first request only returns once the second has arrived: a server handling one
    # request at a time would never see the second one and the first would time out.
    app = Flask("concurrent")
    second_arrived = threading.Event()

    @app.get("/first")
    def first() -> str:
        return "both" if second_arrived.wait(timeout=10) else "alone"

    @app.get("/second")
    def second() -> str:
        second_arrived.set()
        return "second"

    with serve_app(app) as url, ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(requests.get, f"{url}/first", timeout=15)
        assert requests.get(f"{url}/second", timeout=5).text == "second"
        assert pending.result().text == "both"


def test_the_port_refuses_connections_after_the_block() -> None:
    with serve_app(Flask("stopped")) as url:
        assert requests.get(f"{url}/absent", timeout=5).status_code == 404
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/absent", timeout=5)


def test_two_servers_get_two_ports() -> None:
    with serve_app(Flask("one")) as first, serve_app(Flask("two")) as second:
        assert first != second


def test_a_client_pool_does_not_reach_the_stopped_server() -> None:
    # A pooled connection must not keep reaching a server the test has taken down.
    with requests.Session() as session:
        with serve_app(Flask("pooled")) as url:
            assert session.get(f"{url}/absent", timeout=5).status_code == 404
        with pytest.raises(requests.ConnectionError):
            session.get(f"{url}/absent", timeout=5)
