"""``ServiceClient`` against a real HTTP server: retries, timeouts, the breaker, the deadline."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from flotilla import ServiceSettings, create_service
from flotilla.resilience.http import (
    BadGateway,
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    DownstreamTimeout,
    DownstreamUnavailable,
    RetryBudget,
    RetryPolicy,
    ServiceClient,
    grace,
)
from flotilla.resilience.http.metrics import record_transition
from flotilla.testing import ManualClock, free_port

from .http_stub import Reply, StubServer, serving

POLICY = BreakerPolicy(failures=3, failure_rate=1.0, min_calls=100, window=10.0, cooldown=5.0)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with serving() as server:
        yield server


class Harness:
    """A client of the stub whose sleeps are recorded instead of slept."""

    def __init__(self, url: str, **options: Any) -> None:
        self.clock = ManualClock()
        self.sleeps: list[float] = []
        self.target = f"stub-{uuid.uuid4().hex[:8]}"  # its own metric labels
        budget = options.pop("budget", None) or RetryBudget(
            ratio=1.0, min_per_second=10.0, window=10.0, clock=self.clock
        )
        self.breaker = CircuitBreaker(
            self.target, POLICY, clock=self.clock, listeners=[record_transition]
        )
        self.client = ServiceClient(
            self.target,
            url,
            breaker=self.breaker,
            budget=budget,
            retry=RetryPolicy(retries=options.pop("retries", 2), backoff=0.05, backoff_max=1.0),
            sleep=self.sleeps.append,
            jitter=lambda: 1.0,  # the longest delay full jitter allows
            **options,
        )

    def metric(self, name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"target": self.target, **labels}) or 0.0


def test_answers_below_500_are_returned_not_raised(stub: StubServer) -> None:
    stub.script(Reply(200, {"id": 7}), Reply(404, {"title": "Not Found"}))
    harness = Harness(stub.url)

    found = harness.client.get("/items/7")
    missing = harness.client.get("/items/8")

    assert (found.status, found.json()) == (200, {"id": 7})
    assert missing.status == 404
    assert harness.breaker.state is BreakerState.CLOSED


def test_an_idempotent_call_is_retried_after_a_503_with_backoff(stub: StubServer) -> None:
    stub.script(Reply(503), Reply(503), Reply(200, {"id": 7}))
    harness = Harness(stub.url)

    response = harness.client.get("/items/7")

    assert response.status == 200
    assert len(stub.received) == 3
    assert harness.sleeps == [0.05, 0.1]  # exponential: base, then twice the base
    assert harness.metric("flotilla_http_client_retries_total", reason="status_503") == 2


def test_a_post_without_idempotency_key_is_not_retried(stub: StubServer) -> None:
    stub.script(Reply(503), Reply(200))
    harness = Harness(stub.url)

    with pytest.raises(BadGateway) as failed:
        harness.client.post("/orders", json={"n": 1})

    assert len(stub.received) == 1
    assert failed.value.status == 502
    assert failed.value.maybe_processed is True


def test_a_post_with_an_idempotency_key_is_retried_with_the_same_key(stub: StubServer) -> None:
    stub.script(Reply(502), Reply(201, {"id": 1}))
    harness = Harness(stub.url)

    response = harness.client.post("/orders", json={"n": 1}, idempotency_key="order-42")

    assert response.status == 201
    assert [r.headers["Idempotency-Key"] for r in stub.received] == ["order-42", "order-42"]
    assert [r.body for r in stub.received] == [b'{"n":1}', b'{"n":1}']


def test_a_500_is_not_retried_but_counts_against_the_breaker(stub: StubServer) -> None:
    stub.default = Reply(500)
    harness = Harness(stub.url)

    for _ in range(POLICY.failures):
        with pytest.raises(BadGateway):
            harness.client.get("/items/7")

    assert len(stub.received) == POLICY.failures
    assert harness.breaker.state is BreakerState.OPEN


def test_a_refused_connection_is_retried_even_for_a_post_and_then_is_a_503() -> None:
    harness = Harness(f"http://127.0.0.1:{free_port()}")

    with pytest.raises(DownstreamUnavailable) as failed:
        harness.client.post("/orders", json={})

    assert failed.value.maybe_processed is False  # nothing was ever sent
    assert failed.value.status == 503
    assert len(harness.sleeps) == 2
    assert harness.metric("flotilla_http_client_retries_total", reason="connection_error") == 2


def test_a_read_timeout_is_a_504_that_may_have_been_processed(stub: StubServer) -> None:
    stub.script(Reply(200, delay=1.0))
    harness = Harness(stub.url, read_timeout=0.1, retries=0)

    with pytest.raises(DownstreamTimeout) as failed:
        harness.client.get("/slow")

    assert failed.value.status == 504
    assert failed.value.maybe_processed is True
    count = "flotilla_http_client_request_duration_seconds_count"
    assert harness.metric(count, method="GET", status="timeout") == 1


def test_an_open_breaker_refuses_without_calling_and_tells_when_to_retry(
    stub: StubServer,
) -> None:
    stub.default = Reply(503)
    harness = Harness(stub.url, retries=0)
    for _ in range(POLICY.failures):
        with pytest.raises(BadGateway):
            harness.client.get("/items/7")
    calls = len(stub.received)

    with pytest.raises(DownstreamUnavailable) as refused:
        harness.client.get("/items/7")

    assert len(stub.received) == calls
    assert refused.value.maybe_processed is False
    assert refused.value.headers["Retry-After"] == "5"
    assert harness.metric("flotilla_http_client_refused_total", reason="breaker_open") == 1


def test_after_the_cooldown_a_trial_call_closes_the_breaker(stub: StubServer) -> None:
    stub.default = Reply(503)
    harness = Harness(stub.url, retries=0)
    for _ in range(POLICY.failures):
        with pytest.raises(BadGateway):
            harness.client.get("/items/7")
    stub.default = Reply(200)
    harness.clock.advance(POLICY.cooldown)

    assert harness.client.get("/items/7").status == 200

    assert harness.breaker.state is BreakerState.CLOSED
    transitions = "flotilla_http_client_breaker_transitions_total"
    assert harness.metric(transitions, state="open") == 1
    assert harness.metric(transitions, state="half_open") == 1
    assert harness.metric(transitions, state="closed") == 1


def test_retries_stop_when_the_budget_is_spent(stub: StubServer) -> None:
    stub.default = Reply(503)
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, window=10.0)
    harness = Harness(stub.url, budget=budget)

    with pytest.raises(BadGateway):
        harness.client.get("/items/7")

    assert len(stub.received) == 1
    assert harness.metric("flotilla_http_client_refused_total", reason="retry_budget") == 1


def test_calls_through_one_client_run_concurrently(stub: StubServer) -> None:
    """Eight 200 ms calls are in flight at once: the stub's barrier opens only then."""
    stub.default = Reply(200, delay=0.2)
    stub.barrier = threading.Barrier(8)
    harness = Harness(stub.url, pool_size=8)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: harness.client.get("/items/7").status, range(8)))

    assert statuses == [200] * 8
    assert not stub.barrier.broken


def test_a_connection_is_closed_after_connection_max_requests(stub: StubServer) -> None:
    """Every third call asks for the close: seven calls use three connections, 3 + 3 + 1."""
    harness = Harness(stub.url, connection_max_requests=3)

    for _ in range(7):
        assert harness.client.get("/items/7").status == 200

    ports = [received.client_port for received in stub.received]
    closes = [received.headers.get("Connection") for received in stub.received]
    assert closes == [None, None, "close", None, None, "close", None]
    assert ports[0] == ports[1] == ports[2] != ports[3] == ports[4] == ports[5] != ports[6]


def test_connections_are_kept_for_good_with_no_request_limit(stub: StubServer) -> None:
    harness = Harness(stub.url, connection_max_requests=0)

    for _ in range(5):
        harness.client.get("/items/7")

    assert len({received.client_port for received in stub.received}) == 1
    assert all("Connection" not in received.headers for received in stub.received)


def service_calling(stub: StubServer, tmp_path: Path, **settings: Any) -> Flask:
    """A chassis service whose view calls the stub and answers what it got."""
    config = ServiceSettings(SERVICE_NAME="caller", VAR_DIR=tmp_path, **settings)
    app = create_service("caller", config)
    client = ServiceClient.from_settings(f"stub-{uuid.uuid4().hex[:8]}", stub.url, config)

    @app.get("/call")
    def call() -> Any:
        return client.get("/items/7").json()

    return app


def test_request_id_trace_and_deadline_travel_to_the_callee(
    stub: StubServer, tmp_path: Path
) -> None:
    app = service_calling(stub, tmp_path)

    app.test_client().get(
        "/call",
        headers={
            "X-Request-ID": "req-123",
            "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01",
            "X-Deadline-Ms": "1500",
        },
    )

    (received,) = stub.received
    assert received.headers["X-Request-ID"] == "req-123"
    version, trace_id, span_id, flags = received.headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert span_id != "00f067aa0ba902b7"  # a new span for this hop
    assert 0 < int(received.headers["X-Deadline-Ms"]) <= 1500


def test_the_deadline_cuts_a_call_short_with_a_504_problem(
    stub: StubServer, tmp_path: Path
) -> None:
    stub.script(Reply(200, delay=1.0))  # would answer within the 2 s read timeout
    app = service_calling(stub, tmp_path, HTTP_RETRIES=0)

    response = app.test_client().get("/call", headers={"X-Deadline-Ms": "200"})

    assert response.status_code == 504
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert response.json["type"] == "urn:flotilla:problem:dependency-timeout"


def test_a_request_arriving_after_its_deadline_is_refused_before_any_work(
    stub: StubServer, tmp_path: Path
) -> None:
    app = service_calling(stub, tmp_path)

    response = app.test_client().get("/call", headers={"X-Deadline-Ms": "0"})

    assert response.status_code == 504
    assert response.json is not None
    assert response.json["type"] == "urn:flotilla:problem:deadline-exceeded"
    assert stub.received == []


def test_an_open_breaker_is_a_503_problem_with_retry_after(
    stub: StubServer, tmp_path: Path
) -> None:
    stub.default = Reply(503)
    app = service_calling(stub, tmp_path, HTTP_RETRIES=0, HTTP_BREAKER_FAILURES=2)
    client = app.test_client()
    assert [client.get("/call").status_code for _ in range(2)] == [502, 502]

    response = client.get("/call")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.json is not None
    assert response.json["type"] == "urn:flotilla:problem:dependency-unavailable"
    assert len(stub.received) == 2


def test_timeouts_caused_by_a_callers_short_deadline_do_not_open_the_breaker(
    stub: StubServer, tmp_path: Path
) -> None:
    """A client in a hurry must not make a healthy service look broken to everyone else."""
    stub.default = Reply(200, delay=0.3)
    app = service_calling(stub, tmp_path, HTTP_BREAKER_FAILURES=2)
    client = app.test_client()

    hurried = [client.get("/call", headers={"X-Deadline-Ms": "50"}) for _ in range(3)]

    assert [r.status_code for r in hurried] == [504, 504, 504]
    assert client.get("/call").status_code == 200  # still closed: the call went through


def test_a_callees_deadline_exceeded_answer_does_not_count_against_it(
    stub: StubServer, tmp_path: Path
) -> None:
    refused = {"type": "urn:flotilla:problem:deadline-exceeded", "status": 504}
    stub.script(*[Reply(504, refused)] * 3)
    app = service_calling(stub, tmp_path, HTTP_BREAKER_FAILURES=2)
    client = app.test_client()

    assert [client.get("/call").status_code for _ in range(3)] == [504, 504, 504]

    assert client.get("/call").status_code == 200
    assert len(stub.received) == 4  # one attempt each: no time is left to retry


def test_the_deadline_sent_on_is_never_zero(stub: StubServer, tmp_path: Path) -> None:
    app = service_calling(stub, tmp_path)

    for _ in range(20):
        app.test_client().get("/call", headers={"X-Deadline-Ms": "2"})

    assert all(int(r.headers["X-Deadline-Ms"]) >= 1 for r in stub.received)


def test_a_deadline_header_that_is_not_ascii_digits_is_ignored(
    stub: StubServer, tmp_path: Path
) -> None:
    app = service_calling(stub, tmp_path)

    response = app.test_client().get("/call", headers={"X-Deadline-Ms": "\u00b2"})

    assert response.status_code == 200
    assert int(stub.received[0].headers["X-Deadline-Ms"]) > 9000  # REQUEST_DEADLINE's 10 s


def test_grace_gives_compensation_time_after_the_deadline(stub: StubServer, tmp_path: Path) -> None:
    config = ServiceSettings(SERVICE_NAME="caller", VAR_DIR=tmp_path)
    app = create_service("caller", config)
    client = ServiceClient.from_settings(f"stub-{uuid.uuid4().hex[:8]}", stub.url, config)

    @app.get("/undo")
    def undo() -> Any:
        time.sleep(0.01)  # the caller's 1 ms are gone
        with grace(2.0):
            return {"status": client.delete("/reservations/7").status}

    response = app.test_client().get("/undo", headers={"X-Deadline-Ms": "1"})

    assert response.json == {"status": 200}
    assert 1000 <= int(stub.received[0].headers["X-Deadline-Ms"]) <= 2000
